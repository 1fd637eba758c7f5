//! Generated CI workflows.

pub mod github;
