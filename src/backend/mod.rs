//! Backends: steps to command lines.
