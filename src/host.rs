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
    let secrets: Vec<&String> = project
        .registries
        .values()
        .filter_map(|r| r.password_env.as_ref())
        .collect();
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
    // A password is never read for planning (resolve() refuses such templates anyway).
    names.retain(|n| !secrets.contains(&n));
    names
}

/// The facts tag rendering needs (git, the project's variables, today) without the engine,
/// buildx and podman probes, which cost a few hundred milliseconds of process spawns that
/// `verify` and `ci` do not need. Engine facts are left empty.
pub fn probe_release(project: &Project) -> HostFacts {
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
    HostFacts {
        native: Platform::host(),
        docker_client: None,
        docker_version: None,
        engine_version: None,
        containerd_store: false,
        buildx_version: None,
        podman_version: None,
        binfmt: Vec::new(),
        git: gitfacts,
        env,
        date: today_utc(),
    }
}

/// Probes this machine once: [`probe_release`], plus the docker client and engine, buildx,
/// podman and the binfmt_misc handlers. Never fails: what cannot be found is `None`.
pub fn probe(project: &Project) -> HostFacts {
    // One engine probe for the planner and doctor alike; the planner skips doctor's details.
    let engine = probe_engine(&project.builder.name, true, false);
    HostFacts {
        docker_client: engine
            .client_version
            .as_ref()
            .map(|_| engine.client.clone()),
        docker_version: engine.client_version,
        engine_version: engine.server_version,
        containerd_store: engine.containerd_store,
        buildx_version: engine.buildx_version,
        podman_version: engine.podman_version,
        binfmt: engine
            .binfmt
            .into_iter()
            .filter(|h| h.enabled)
            .map(|h| h.name)
            .collect(),
        ..probe_release(project)
    }
}

/// The docker client to use: `MULTIARCH_DOCKER`, else `docker` on PATH.
pub fn docker_client() -> String {
    std::env::var("MULTIARCH_DOCKER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "docker".into())
}

/// What `doctor` needs to know about the engine beyond [`HostFacts`]: where the client is,
/// why the daemon did not answer, the buildx builder, the binfmt handlers with their flags.
/// Probed by [`probe_engine`]; built by hand in tests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EngineFacts {
    /// The docker client as configured: `MULTIARCH_DOCKER`, else `docker`.
    pub client: String,
    /// True when `MULTIARCH_DOCKER` chose the client.
    pub client_from_env: bool,
    /// The client's file, found on PATH (or as given), when it exists.
    pub client_path: Option<String>,
    /// Client version (answered even when the daemon is down).
    pub client_version: Option<String>,
    /// Engine version, when the daemon answered.
    pub server_version: Option<String>,
    /// First line of the client's complaint when the daemon did not answer.
    pub server_error: Option<String>,
    /// `DOCKER_HOST`, when set.
    pub docker_host: Option<String>,
    /// The current docker context (`docker context show`).
    pub context: Option<String>,
    /// The engine stores images in containerd.
    pub containerd_store: bool,
    /// `docker buildx version`, when buildx answers.
    pub buildx_version: Option<String>,
    /// The buildx builder the project names (`docker buildx inspect NAME`), when it exists.
    pub builder: Option<BuilderInfo>,
    /// The builder buildx uses by default (`docker buildx inspect`).
    pub current_builder: Option<BuilderInfo>,
    /// podman version, when installed.
    pub podman_version: Option<String>,
    /// First line of `podman info`'s complaint, when podman is installed but cannot run.
    pub podman_error: Option<String>,
    /// `/proc/sys/fs/binfmt_misc` is mounted (its `status` file exists).
    pub binfmt_mounted: bool,
    /// Registered QEMU binfmt handlers.
    pub binfmt: Vec<BinfmtHandler>,
}

/// A buildx builder as `docker buildx inspect` describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BuilderInfo {
    /// Builder name.
    pub name: String,
    /// Driver (`docker`, `docker-container`, `remote`, `kubernetes`).
    pub driver: String,
    /// Its nodes.
    pub nodes: Vec<BuilderNode>,
}

/// One node of a buildx builder.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BuilderNode {
    /// Node name.
    pub name: String,
    /// Endpoint.
    pub endpoint: String,
    /// Status (`running`, `inactive`, ...).
    pub status: String,
    /// Platforms the node reports, as written (`linux/amd64*` marks configured ones).
    pub platforms: Vec<String>,
}

/// A binfmt_misc handler registered for QEMU.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BinfmtHandler {
    /// QEMU name (`aarch64` for `qemu-aarch64`).
    pub name: String,
    /// The handler is enabled.
    pub enabled: bool,
    /// Interpreter path.
    pub interpreter: String,
    /// Flags (`F` = the interpreter is opened at registration, so containers can use it).
    pub flags: String,
}

/// Parses the text of `docker buildx inspect` (stable across buildx versions, unlike `ls`).
pub fn parse_buildx_inspect(text: &str) -> Option<BuilderInfo> {
    let mut info = BuilderInfo::default();
    let mut in_nodes = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "Name" if !in_nodes => info.name = value.to_string(),
            "Driver" if !in_nodes => info.driver = value.to_string(),
            "Nodes" => in_nodes = true,
            "Name" => {
                in_nodes = true;
                info.nodes.push(BuilderNode {
                    name: value.to_string(),
                    ..BuilderNode::default()
                });
            }
            "Endpoint" => {
                if let Some(n) = info.nodes.last_mut() {
                    n.endpoint = value.to_string();
                }
            }
            "Status" => {
                if let Some(n) = info.nodes.last_mut() {
                    n.status = value.to_string();
                }
            }
            "Platforms" => {
                if let Some(n) = info.nodes.last_mut() {
                    n.platforms = value
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect();
                }
            }
            _ => {}
        }
    }
    (!info.name.is_empty()).then_some(info)
}

/// Finds a program the way a shell would: a path with a `/` as is, else the first match on PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let is_exe = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_exe(p))
}

/// Runs a program and returns (success, stdout, first non-empty line of stderr), or `None`
/// when it cannot be started.
fn run_capture(prog: &str, args: &[&str]) -> Option<(bool, String, String)> {
    let out = duct::cmd(prog, args)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        first,
    ))
}

/// Probes the engine, buildx, podman (only when `podman` is true: it is slow to start) and
/// binfmt_misc. With `detail`, also what only `doctor` reports: the docker context, the
/// builder named `builder` and the current one, and why podman cannot run. Never fails.
pub fn probe_engine(builder: &str, podman: bool, detail: bool) -> EngineFacts {
    let client = docker_client();
    let client_path = which(&client).map(|p| p.display().to_string());
    let mut f = EngineFacts {
        client_from_env: std::env::var("MULTIARCH_DOCKER").is_ok_and(|s| !s.is_empty()),
        client: client.clone(),
        docker_host: std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()),
        ..EngineFacts::default()
    };
    if let Some(path) = &client_path {
        // `docker version` exits 1 when the daemon is down but still prints the client part.
        if let Some((ok, out, err)) =
            run_capture(path, &["version", "--format", "{{.Client.Version}}"])
        {
            f.client_version = out
                .lines()
                .next()
                .map(str::to_string)
                .filter(|s| !s.is_empty());
            if !ok && f.client_version.is_none() {
                f.server_error = Some(err);
            }
        }
        if f.client_version.is_some() {
            match run_capture(path, &["version", "--format", "{{.Server.Version}}"]) {
                Some((true, out, _)) if !out.is_empty() => f.server_version = Some(out),
                Some((_, _, err)) => {
                    f.server_error = Some(if err.is_empty() {
                        "the daemon did not answer".into()
                    } else {
                        err
                    })
                }
                None => {}
            }
            f.context = detail
                .then(|| run_capture(path, &["context", "show"]))
                .flatten()
                .filter(|(ok, _, _)| *ok)
                .map(|(_, out, _)| out)
                .filter(|s| !s.is_empty());
            if f.server_version.is_some() {
                f.containerd_store =
                    run_capture(path, &["info", "--format", "{{json .DriverStatus}}"]).is_some_and(
                        |(ok, out, _)| ok && out.contains("io.containerd.snapshotter"),
                    );
            }
            f.buildx_version = run_capture(path, &["buildx", "version"])
                .filter(|(ok, _, _)| *ok)
                .and_then(|(_, out, _)| {
                    out.split_whitespace()
                        .nth(1)
                        .map(|v| v.trim_start_matches('v').to_string())
                });
            if detail && f.buildx_version.is_some() {
                let inspect = |args: &[&str]| {
                    run_capture(path, args)
                        .filter(|(ok, _, _)| *ok)
                        .and_then(|(_, out, _)| parse_buildx_inspect(&out))
                };
                f.builder = inspect(&["buildx", "inspect", builder]);
                f.current_builder = inspect(&["buildx", "inspect"]);
            }
        }
    }
    f.client_path = client_path;
    if podman {
        if let Some((ok, out, err)) =
            run_capture("podman", &["version", "--format", "{{.Client.Version}}"])
        {
            f.podman_version = Some(out).filter(|s| !s.is_empty());
            if !ok {
                f.podman_error = Some(err);
            } else if let Some((false, _, err)) = detail
                .then(|| run_capture("podman", &["info", "--format", "{{.Host.Arch}}"]))
                .flatten()
            {
                f.podman_error = Some(err);
            }
        }
    }
    f.binfmt_mounted = std::path::Path::new(BINFMT_DIR).join("status").exists();
    f.binfmt = binfmt_details();
    f
}

/// Where the kernel lists binfmt_misc handlers.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Every `qemu-*` handler in binfmt_misc, enabled or not, with its interpreter and flags.
pub fn binfmt_details() -> Vec<BinfmtHandler> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir(BINFMT_DIR) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(q) = name.strip_prefix("qemu-") else {
                continue;
            };
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            out.push(BinfmtHandler {
                name: q.to_string(),
                enabled: text.starts_with("enabled"),
                interpreter: field("interpreter "),
                flags: field("flags:"),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
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
    fn buildx_inspect_text() {
        let text = "Name:   multiarch\nDriver: docker-container\n\nNodes:\nName:      multiarch0\nEndpoint:  unix:///var/run/docker.sock\nStatus:    running\nPlatforms: linux/amd64*, linux/arm64, linux/386\n\nName:      arm\nEndpoint:  ssh://builder@arm-box\nStatus:    inactive\nPlatforms:\n";
        let b = parse_buildx_inspect(text).unwrap();
        assert_eq!(b.name, "multiarch");
        assert_eq!(b.driver, "docker-container");
        assert_eq!(b.nodes.len(), 2);
        assert_eq!(
            b.nodes[0].platforms,
            ["linux/amd64*", "linux/arm64", "linux/386"]
        );
        assert_eq!(b.nodes[1].endpoint, "ssh://builder@arm-box");
        assert_eq!(b.nodes[1].status, "inactive");
        assert!(parse_buildx_inspect("ERROR: no builder \"x\" found").is_none());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_791), (2026, 12, 4));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
