//! Integration tests: ci.
