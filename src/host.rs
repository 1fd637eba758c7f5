//! Facts about this machine, probed once before planning and passed to the pure planner.
//!
//! The planner never spawns a process or reads the environment; everything it needs to know
//! about the host is here. Tests build `HostFacts` by hand ([`HostFacts::fixed`]) so plans are
//! reproducible; [`probe`] fills it from the real machine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Project, VersionSource};
use crate::platform::Platform;

/// What the planner and doctor know about this machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostFacts {
    /// The host's own platform.
    pub native: Platform,
    /// The docker client used (`MULTIARCH_DOCKER`, else `docker` on PATH), if found.
    pub docker_client: Option<String>,
    /// Docker client version.
    pub docker_version: Option<String>,
    /// Docker engine (server) version, if the daemon answered.
    pub engine_version: Option<String>,
    /// The engine stores images in containerd (multi-platform `--load` works).
    pub containerd_store: bool,
    /// `docker buildx version`, if buildx is installed.
    pub buildx_version: Option<String>,
    /// podman version, if installed.
    pub podman_version: Option<String>,
    /// QEMU names of registered binfmt_misc handlers (`aarch64`, `arm`, `s390x`, ...).
    pub binfmt: Vec<String>,
    /// Git facts of the project folder.
    pub git: GitFacts,
    /// Values of the environment variables the project reads for versions and tags (never
    /// credentials: those are read by the executor at run time only).
    pub env: BTreeMap<String, String>,
    /// Today, UTC, YYYYMMDD.
    pub date: String,
}

/// Git facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GitFacts {
    /// Commit id of HEAD.
    pub sha: Option<String>,
    /// Current branch.
    pub branch: Option<String>,
    /// Tags pointing at HEAD.
    pub tags: Vec<String>,
}

impl HostFacts {
    /// Facts for tests and reproducible plans: an amd64 host with docker and buildx, QEMU for
    /// arm64 and arm, a clean git checkout of `main`.
    pub fn fixed() -> HostFacts {
        HostFacts {
            native: Platform::new("linux", "amd64", None),
            docker_client: Some("docker".into()),
            docker_version: Some("27.5.1".into()),
            engine_version: Some("27.5.1".into()),
            containerd_store: false,
            buildx_version: Some("0.20.1".into()),
            podman_version: Some("5.4.0".into()),
            binfmt: vec!["aarch64".into(), "arm".into()],
            git: GitFacts {
                sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
                branch: Some("main".into()),
                tags: vec![],
            },
            env: BTreeMap::new(),
            date: "20261204".into(),
        }
    }

    /// True when the host can run `p`: natively, or through a registered QEMU handler.
    pub fn can_run(&self, p: &Platform) -> bool {
        self.native.runs_natively(p)
            || p.qemu_name()
                .is_some_and(|q| self.binfmt.iter().any(|b| b == q))
    }
}

/// Names of environment variables the project reads while planning (version and tag
/// templates). Credentials are not among them.
pub fn env_names(project: &Project) -> Vec<String> {
    let mut names = Vec::new();
    if let VersionSource::Env(n) = &project.release.version_from {
        names.push(n.clone());
    }
    for img in project.images.values() {
        for t in &img.tags {
            for n in t.env_names() {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_string());
                }
            }
        }
    }
    names
}

/// Probes this machine once. Spawns `git`, the docker client, `podman`; reads
/// `/proc/sys/fs/binfmt_misc`. Never fails: what cannot be found is `None`.
pub fn probe(project: &Project) -> HostFacts {
    let root = &project.root;
    let git = |args: &[&str]| -> Option<String> {
        duct::cmd("git", args)
            .dir(root)
            .stderr_null()
            .stdout_capture()
            .unchecked()
            .run()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let gitfacts = GitFacts {
        sha: git(&["rev-parse", "HEAD"]),
        branch: std::env::var("GITHUB_REF_NAME")
            .ok()
            .filter(|_| std::env::var("GITHUB_REF_TYPE").as_deref() == Ok("branch"))
            .or_else(|| git(&["symbolic-ref", "--short", "-q", "HEAD"])),
        tags: git(&["tag", "--points-at", "HEAD"])
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default(),
    };
    let env = env_names(project)
        .into_iter()
        .filter_map(|n| std::env::var(&n).ok().map(|v| (n, v)))
        .collect();
    let docker = docker_client();
    let out = |prog: &str, args: &[&str]| -> Option<String> {
        duct::cmd(prog, args)
            .stderr_null()
            .stdout_capture()
            .unchecked()
            .run()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let docker_version = out(&docker, &["version", "--format", "{{.Client.Version}}"]);
    let engine_version = docker_version
        .as_ref()
        .and_then(|_| out(&docker, &["version", "--format", "{{.Server.Version}}"]))
        .filter(|s| !s.is_empty());
    let containerd_store = engine_version.is_some()
        && out(&docker, &["info", "--format", "{{json .DriverStatus}}"])
            .is_some_and(|s| s.contains("io.containerd.snapshotter"));
    let buildx_version = docker_version
        .as_ref()
        .and_then(|_| out(&docker, &["buildx", "version"]))
        .and_then(|s| s.split_whitespace().nth(1).map(|v| v.trim_start_matches('v').to_string()));
    let podman_version = out("podman", &["version", "--format", "{{.Client.Version}}"]);
    HostFacts {
        native: Platform::host(),
        docker_client: docker_version.as_ref().map(|_| docker.clone()),
        docker_version,
        engine_version,
        containerd_store,
        buildx_version,
        podman_version,
        binfmt: binfmt_handlers(),
        git: gitfacts,
        env,
        date: today_utc(),
    }
}

/// The docker client to use: `MULTIARCH_DOCKER`, else `docker` on PATH.
pub fn docker_client() -> String {
    std::env::var("MULTIARCH_DOCKER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "docker".into())
}

/// QEMU names of the enabled binfmt_misc handlers (`qemu-aarch64` -> `aarch64`).
pub fn binfmt_handlers() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/sys/fs/binfmt_misc") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(q) = name.strip_prefix("qemu-") {
                let enabled = std::fs::read_to_string(e.path())
                    .map(|s| s.starts_with("enabled"))
                    .unwrap_or(false);
                if enabled {
                    out.push(q.to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// Today's date in UTC as YYYYMMDD (civil-from-days, Howard Hinnant's algorithm).
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}{m:02}{d:02}")
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_791), (2026, 12, 4));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
