//! `doctor --online`: what the registries answer.
//!
//! Per registry: a `/v2/` ping (reachable? does it ask for auth?) and an authenticated token
//! request with the credentials the release would use (a 401 is reported as such, naming the
//! registry). Per image: the platforms of the base images in `FROM`, against the declared ones.
//! Gathering talks to the network; [`checks`] is pure.

use indexmap::IndexMap;
use serde::Serialize;

use crate::model::Project;

use super::{Check, Facts};

/// What one registry answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryProbe {
    /// The `/v2/` URL asked.
    pub url: String,
    /// HTTP status of the anonymous ping, or why there was none.
    pub ping: Result<u16, String>,
    /// The auth scheme the registry asked for (`Bearer`, `Basic`), if any.
    pub challenge: Option<String>,
    /// The authenticated request: `Ok(())`, or what went wrong (a 401 says so). `None` when
    /// no credentials were available or none were needed.
    pub login: Option<Result<(), String>>,
}

impl RegistryProbe {
    /// True when the registry answered the anonymous ping with 200: no login needed.
    pub fn anonymous(&self) -> bool {
        self.ping == Ok(200)
    }
}

/// The platforms of one base image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseImage {
    /// Image key in the project.
    pub image: String,
    /// Dockerfile line of the FROM.
    pub line: usize,
    /// The reference as written (ARGs substituted).
    pub reference: String,
    /// Its platforms (`linux/amd64`, ...), or why they could not be read.
    pub platforms: Result<Vec<String>, String>,
}

/// What `--online` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OnlineFacts {
    /// Per registry name.
    pub registries: IndexMap<String, RegistryProbe>,
    /// Per FROM line.
    pub bases: Vec<BaseImage>,
}

/// Asks the registries. Not built yet: waits for the registry client (src/registry).
pub fn gather(_project: &Project, _facts: &Facts) -> OnlineFacts {
    OnlineFacts::default()
}

/// The checks of `--online`.
pub fn checks(_project: &Project, _facts: &Facts, _online: &OnlineFacts) -> Vec<Check> {
    Vec::new()
}
