//! Integration tests: doctor.
