//! multiarch: release multi-arch container images from one declarative file.
//!
//! Data flows one way (see DESIGN.md, "Architecture"):
//!
//! ```text
//! multiarch.toml --document/shape/config--> raw config --model::resolve--> Project
//!     host facts (host::probe, once) --plan::plan--> Plan (pure data)
//!         --> render (text/json/shell), CI YAML (ci), or exec (the only side effects)
//! ```
#![warn(missing_docs)]

pub mod backend;
pub mod ci;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod document;
pub mod error;
pub mod exec;
pub mod host;
pub mod init;
pub mod model;
pub mod plan;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod release;
pub mod run;
pub mod shape;
pub mod suggest;
pub mod version;

pub use error::{Error, Problem};
pub use run::main_with_args;
