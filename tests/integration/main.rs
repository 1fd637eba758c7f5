//! All integration tests, linked into one test binary (as `just` does): one link step, one
//! place for the shared helpers in `common`.

mod common;

mod check;
mod ci;
mod doctor;
mod e2e;
mod plan;
mod registry;
