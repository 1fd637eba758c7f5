//! The third-party actions generated workflows may use, pinned by full commit SHA.
//!
//! `actions.toml` is a copy of `shared/reference/github-actions.toml`: facts read from each
//! action's own git tags. A workflow writes `uses: <repo>@<sha> # <tag>`, which passes zizmor's
//! `unpinned-uses` audit and still tells a reader (and Dependabot) which release it is.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::platform::Platform;

const PINS: &str = include_str!("actions.toml");

/// One pinned action.
#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    /// `owner/name`.
    pub repo: String,
    /// Release tag the SHA belongs to.
    pub tag: String,
    /// Full commit SHA.
    pub sha: String,
    /// Node runtime the release uses.
    pub runtime: String,
    /// Inputs the action accepts (when listed).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Outputs the action sets (when listed).
    #[serde(default)]
    pub outputs: Vec<String>,
}

impl Action {
    /// The `uses:` value: `repo@sha # tag`.
    pub fn uses(&self) -> String {
        format!("{}@{} # {}", self.repo, self.sha, self.tag)
    }
}

#[derive(Debug, Deserialize)]
struct Pins {
    action: Vec<Action>,
    runners: BTreeMap<String, String>,
}

fn pins() -> Pins {
    toml::from_str(PINS).expect("src/ci/actions.toml parses")
}

/// Every pinned action, by repository.
pub fn all() -> BTreeMap<String, Action> {
    pins()
        .action
        .into_iter()
        .map(|a| (a.repo.clone(), a))
        .collect()
}

/// GitHub-hosted runners that run a platform natively (`linux/arm64` -> `ubuntu-24.04-arm`).
pub fn default_runners() -> Vec<(Platform, String)> {
    pins()
        .runners
        .into_iter()
        .map(|(p, r)| {
            (
                p.parse().expect("runner platforms in actions.toml parse"),
                r,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_full_shas() {
        let all = all();
        assert!(all.len() >= 8);
        for a in all.values() {
            assert_eq!(a.sha.len(), 40, "{}", a.repo);
            assert!(a.sha.chars().all(|c| c.is_ascii_hexdigit()), "{}", a.repo);
            assert!(a.tag.starts_with('v'), "{}", a.repo);
        }
        assert_eq!(default_runners().len(), 2);
    }
}
