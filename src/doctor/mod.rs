//! `multiarch doctor`: checks this machine against the project before a build starts, and names
//! the command or edit that fixes each problem.
//!
//! The seed's author lost hours to errors a check could have named in a second: no buildx, a
//! builder that cannot build several platforms, a QEMU handler missing, a Chinese folder name
//! (buildx issue 2793), a registry login missing, a Dockerfile downloading the amd64 binary into
//! the arm64 image. Each of those is one check here.
//!
//! How it is built:
//!
//! 1. **Facts are gathered once** ([`gather`]): [`crate::host::probe`] (shared with the
//!    planner), [`crate::host::probe_engine`] (client path, daemon error, buildx builder, binfmt
//!    flags), which environment variables are *set* (names only: no secret is ever read into a
//!    report), the docker config's credential entries, the Dockerfiles' text and, with
//!    `--online`, what each registry answered.
//! 2. **Checks are pure functions** of the project and those [`Facts`] ([`checks`]), so every
//!    one is unit-tested with made-up facts. Each returns [`Check`]s: an id, a [`Status`], what
//!    was found, and the fix.
//! 3. [`command`] renders them (one line per check, then a summary; or `--format json`) and
//!    exits 0 when nothing failed, 1 otherwise; an invalid project file is exit 2 as everywhere.
//!
//! # Preflight
//!
//! [`preflight`] is the fast subset that `apply` runs before building anything, from the
//! [`HostFacts`] the planner already has (no extra probing, no network):
//!
//! * the engine answers (docker for the `buildx` and `docker` backends, podman for `podman`);
//! * buildx is installed (the `buildx` backend);
//! * a QEMU binfmt handler is registered for every platform that will be emulated.
//!
//! ```no_run
//! # use multiarch::{doctor, host, cli::BackendKind, model::Project};
//! # let project = Project::load("multiarch.toml".as_ref()).unwrap();
//! let facts = host::probe(&project);
//! let checks = doctor::preflight(&project, &facts, BackendKind::Buildx);
//! if doctor::any_failed(&checks) {
//!     eprint!("{}", doctor::render_text(&checks, false));
//!     // stop before the first build
//! }
//! ```

pub mod checks;
pub mod dockerfile;
pub mod online;

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{BackendKind, Cli, Color, DoctorArgs, ReportFormat};
use crate::error::{Result, EXIT_FAILED, EXIT_OK};
use crate::host::{self, BinfmtHandler, EngineFacts, HostFacts};
use crate::model::Project;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but a trap is near.
    Warn,
    /// A release would fail.
    Fail,
}

/// One finding: what was checked, how it came out, and the fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable id (`engine.daemon`, `emulation.linux/s390x`, `credentials.dockerhub`, ...).
    pub id: String,
    /// Outcome.
    pub status: Status,
    /// What was found, one line.
    pub summary: String,
    /// The exact command or edit that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A passing check.
    pub fn ok(id: impl Into<String>, summary: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status: Status::Ok,
            summary: summary.into(),
            fix: None,
        }
    }

    /// A warning with its fix.
    pub fn warn(
        id: impl Into<String>,
        summary: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            status: Status::Warn,
            summary: summary.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failure with its fix.
    pub fn fail(
        id: impl Into<String>,
        summary: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            status: Status::Fail,
            summary: summary.into(),
            fix: Some(fix.into()),
        }
    }
}

/// True when any check failed.
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// Credential entries of one docker (or podman) auth file; never the secrets themselves.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuthFile {
    /// Path read.
    pub path: PathBuf,
    /// The file exists.
    pub exists: bool,
    /// Why it could not be read or parsed.
    pub error: Option<String>,
    /// Registry hosts (normalised, see [`checks::registry_key`]) under `auths`, with whether the
    /// entry holds the credentials itself (`auth`/`identitytoken`) or is an empty marker left
    /// by a credential store.
    pub auths: BTreeMap<String, bool>,
    /// `credHelpers`: host -> helper name.
    pub helpers: BTreeMap<String, String>,
    /// `credsStore`.
    pub store: Option<String>,
}

impl AuthFile {
    /// Reads an auth file (docker's `config.json` and podman's `auth.json` share the format).
    pub fn read(path: &Path) -> AuthFile {
        let mut f = AuthFile {
            path: path.to_path_buf(),
            ..AuthFile::default()
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return f,
            Err(e) => {
                f.exists = true;
                f.error = Some(e.to_string());
                return f;
            }
        };
        f.exists = true;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => f.fill(&v),
            Err(e) => f.error = Some(format!("not valid JSON: {e}")),
        }
        f
    }

    fn fill(&mut self, v: &serde_json::Value) {
        if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
            for (k, entry) in auths {
                let inline = ["auth", "identitytoken", "password"].iter().any(|f| {
                    entry
                        .get(f)
                        .and_then(|x| x.as_str())
                        .is_some_and(|s| !s.is_empty())
                });
                let slot = self.auths.entry(checks::registry_key(k)).or_insert(false);
                *slot |= inline;
            }
        }
        if let Some(h) = v.get("credHelpers").and_then(|a| a.as_object()) {
            for (k, name) in h {
                if let Some(n) = name.as_str() {
                    self.helpers.insert(checks::registry_key(k), n.to_string());
                }
            }
        }
        self.store = v
            .get("credsStore")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    }
}

/// What doctor knows about one image's files.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageFiles {
    /// The build context is a folder.
    pub context_is_dir: bool,
    /// The Dockerfile's text, when it could be read.
    pub dockerfile: Option<String>,
}

/// Everything the checks look at, gathered once by [`gather`] (or made up in tests).
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// The backend checked for.
    pub backend: BackendKind,
    /// The facts the planner uses.
    pub host: HostFacts,
    /// Engine details only doctor needs.
    pub engine: EngineFacts,
    /// Names of the environment variables the project mentions that are set (non-empty).
    /// Values are never read into the facts.
    pub env_set: BTreeSet<String>,
    /// `DOCKER_BUILDKIT`, when set (`0` turns the engine's BuildKit off).
    pub docker_buildkit: Option<String>,
    /// The docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: AuthFile,
    /// podman's auth files, in the order podman reads them (only for the podman backend).
    pub podman_auth: Vec<AuthFile>,
    /// Per image key.
    pub files: BTreeMap<String, ImageFiles>,
    /// What the registries answered, with `--online`.
    pub online: Option<online::OnlineFacts>,
}

/// The docker config file the docker client reads.
pub fn docker_config_path() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG").filter(|s| !s.is_empty()) {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => home().join(".docker").join("config.json"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// podman's auth files: `REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`,
/// then `~/.config/containers/auth.json`; it also falls back to the docker config.
pub fn podman_auth_paths() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|s| !s.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|s| !s.is_empty()) {
        out.push(PathBuf::from(x).join("containers/auth.json"));
    } else {
        let uid = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap_or(0);
        out.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    }
    out.push(home().join(".config/containers/auth.json"));
    out
}

/// Probes this machine once for everything the checks need. Only the registries are reached
/// over the network, and only when `online` is true.
pub fn gather(project: &Project, backend: BackendKind, online: bool) -> Facts {
    let host = host::probe(project);
    let engine = host::probe_engine(&project.builder.name, backend == BackendKind::Podman, true);
    let mut env_set = BTreeSet::new();
    for r in project.registries.values() {
        for n in [&r.username_env, &r.password_env].into_iter().flatten() {
            if std::env::var_os(n).is_some_and(|v| !v.is_empty()) {
                env_set.insert(n.clone());
            }
        }
    }
    let files = project
        .images
        .values()
        .map(|img| {
            let f = ImageFiles {
                context_is_dir: img.context.is_dir(),
                dockerfile: std::fs::read_to_string(&img.dockerfile).ok(),
            };
            (img.key.clone(), f)
        })
        .collect();
    let podman_auth = if backend == BackendKind::Podman {
        podman_auth_paths()
            .iter()
            .map(|p| AuthFile::read(p))
            .collect()
    } else {
        Vec::new()
    };
    let mut facts = Facts {
        backend,
        host,
        engine,
        env_set,
        docker_buildkit: std::env::var("DOCKER_BUILDKIT").ok(),
        docker_config: AuthFile::read(&docker_config_path()),
        podman_auth,
        files,
        online: None,
    };
    if online {
        facts.online = Some(online::gather(project, &facts));
    }
    facts
}

/// Every check doctor makes, in the order they are shown.
pub fn run_checks(project: &Project, facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    out.extend(checks::engine(facts));
    out.extend(checks::buildx(project, facts));
    out.extend(checks::emulation(
        project,
        facts.backend,
        &facts.host.native,
        &facts.engine.binfmt,
        facts.engine.binfmt_mounted,
    ));
    out.extend(checks::credentials(project, facts));
    out.extend(checks::project(project, facts));
    if let Some(o) = &facts.online {
        out.extend(online::checks(project, facts, o));
    }
    out
}

/// The fast checks `apply` runs before building, from the planner's [`HostFacts`] alone: the
/// engine answers, buildx is there (for the buildx backend), and every emulated platform has a
/// QEMU binfmt handler. Pure: no process, no network.
pub fn preflight(project: &Project, facts: &HostFacts, backend: BackendKind) -> Vec<Check> {
    let mut out = Vec::new();
    let client = facts
        .docker_client
        .clone()
        .unwrap_or_else(host::docker_client);
    match backend {
        BackendKind::Podman => out.push(match &facts.podman_version {
            Some(v) => Check::ok("engine.podman", format!("podman {v}")),
            None => Check::fail(
                "engine.podman",
                "podman is not installed or does not run",
                "install it (Debian/Ubuntu: `sudo apt-get install podman`); `multiarch doctor --backend podman` says more",
            ),
        }),
        BackendKind::Buildx | BackendKind::Docker => out.push(match &facts.engine_version {
            Some(v) => Check::ok("engine.daemon", format!("docker engine {v} answers `{client}`")),
            None => Check::fail(
                "engine.daemon",
                format!("the docker engine does not answer `{client}`"),
                "start the daemon (`sudo systemctl start docker`), or point MULTIARCH_DOCKER at a client that reaches one; `multiarch doctor` says more",
            ),
        }),
    }
    if backend == BackendKind::Buildx && facts.engine_version.is_some() {
        out.push(match &facts.buildx_version {
            Some(v) => Check::ok("buildx.installed", format!("docker buildx {v}")),
            None => checks::buildx_missing(&client),
        });
    }
    let handlers: Vec<BinfmtHandler> = facts
        .binfmt
        .iter()
        .map(|n| BinfmtHandler {
            name: n.clone(),
            enabled: true,
            ..BinfmtHandler::default()
        })
        .collect();
    out.extend(checks::emulation(
        project,
        backend,
        &facts.native,
        &handlers,
        true,
    ));
    out
}

/// The JSON report: every check and the counts.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// True when nothing failed.
    pub ok: bool,
    /// Counts per status.
    pub summary: Counts,
    /// The checks, in order.
    pub checks: &'a [Check],
}

/// How many checks came out each way.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub ok: usize,
    /// Warnings.
    pub warn: usize,
    /// Failed.
    pub fail: usize,
}

/// Counts the checks per status.
pub fn counts(checks: &[Check]) -> Counts {
    let mut c = Counts::default();
    for k in checks {
        match k.status {
            Status::Ok => c.ok += 1,
            Status::Warn => c.warn += 1,
            Status::Fail => c.fail += 1,
        }
    }
    c
}

/// One line per check (`ok`, `warn`, `FAIL`), its fix indented below, then a summary line.
pub fn render_text(checks: &[Check], color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let width = checks
        .iter()
        .map(|c| c.id.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = match c.status {
            Status::Ok => paint("32", "ok  "),
            Status::Warn => paint("33", "warn"),
            Status::Fail => paint("1;31", "FAIL"),
        };
        out.push_str(&format!("{mark}  {:<width$}  {}\n", c.id, c.summary));
        if let Some(fix) = &c.fix {
            let mut lines = fix.lines();
            if let Some(first) = lines.next() {
                out.push_str(&format!("      fix: {first}\n"));
            }
            for l in lines {
                out.push_str(&format!("           {l}\n"));
            }
        }
    }
    let n = counts(checks);
    let plural =
        |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    out.push_str(&format!(
        "{}: {} ok, {}, {}\n",
        plural(checks.len(), "check", "checks"),
        n.ok,
        plural(n.warn, "warning", "warnings"),
        plural(n.fail, "failure", "failures"),
    ));
    out
}

/// Entry point of `multiarch doctor`.
pub fn command(cli: &Cli, args: &DoctorArgs) -> Result<i32> {
    let project = Project::load(&cli.file)?;
    eprintln!(
        "checking this machine for {} ({} backend{})...",
        project.file.display(),
        match args.backend {
            BackendKind::Buildx => "buildx",
            BackendKind::Docker => "docker",
            BackendKind::Podman => "podman",
        },
        if args.online { ", online" } else { "" }
    );
    let facts = gather(&project, args.backend, args.online);
    let checks = run_checks(&project, &facts);
    match args.format {
        ReportFormat::Json => {
            let report = Report {
                ok: !any_failed(&checks),
                summary: counts(&checks),
                checks: &checks,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("the report serialises")
            );
        }
        ReportFormat::Text => {
            let color = match cli.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
                }
            };
            print!("{}", render_text(&checks, color));
        }
    }
    Ok(if any_failed(&checks) {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
