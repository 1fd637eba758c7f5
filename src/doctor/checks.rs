//! The checks themselves: pure functions of the project and the gathered [`Facts`].

use crate::cli::BackendKind;
use crate::config::{Driver, Emulation};
use crate::host::BinfmtHandler;
use crate::model::{Project, Registry};
use crate::platform::Platform;

use super::{dockerfile, AuthFile, Check, Facts};

/// buildx versions before this one fail in a non-ASCII working directory (buildx issue 2793).
pub const BUILDX_ASCII_FIXED: (u64, u64) = (0, 17);

/// `major.minor` of a version string such as `0.16.2`, `v0.17.1` or `0.10.5+ds1`.
pub fn major_minor(v: &str) -> Option<(u64, u64)> {
    let v = v.trim().trim_start_matches('v');
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The key a registry host has in a docker config: scheme and path dropped, Docker Hub's many
/// names folded into `docker.io` (docker itself writes `https://index.docker.io/v1/`).
pub fn registry_key(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "docker.io" => {
            "docker.io".into()
        }
        _ => host,
    }
}

/// How the user names a docker client in a command line: the path MULTIARCH_DOCKER gave, else
/// `docker`.
fn client_cmd(facts: &Facts) -> String {
    if facts.engine.client_from_env {
        facts.engine.client.clone()
    } else {
        "docker".into()
    }
}

/// The engine: the client, the daemon (or podman), and for the docker backend the BuildKit
/// that makes `TARGETARCH` work.
pub fn engine(facts: &Facts) -> Vec<Check> {
    let e = &facts.engine;
    let mut out = Vec::new();
    if facts.backend == BackendKind::Podman {
        out.push(match (&e.podman_version, &e.podman_error) {
            (Some(v), None) => Check::ok("engine.podman", format!("podman {v}")),
            (Some(v), Some(err)) => Check::fail(
                "engine.podman",
                format!("podman {v} is installed but does not run: {err}"),
                "run `podman info` to see why (storage, cgroups, rootless setup)",
            ),
            (None, Some(err)) => Check::fail(
                "engine.podman",
                format!("podman does not run: {err}"),
                "run `podman info` to see why",
            ),
            (None, None) => Check::fail(
                "engine.podman",
                "podman is not installed",
                "install it: `sudo apt-get install podman` (Debian/Ubuntu), `sudo dnf install podman` (Fedora)",
            ),
        });
        return out;
    }
    let chosen = if e.client_from_env {
        "chosen by MULTIARCH_DOCKER".to_string()
    } else {
        "the first `docker` on PATH; set MULTIARCH_DOCKER to use another".to_string()
    };
    let Some(path) = &e.client_path else {
        out.push(Check::fail(
            "engine.client",
            format!("docker client `{}` not found ({chosen})", e.client),
            if e.client_from_env {
                format!(
                    "point MULTIARCH_DOCKER at an existing client, or unset it to use `docker` from PATH (it is `{}` now)",
                    e.client
                )
            } else {
                "install Docker Engine (Debian/Ubuntu: `sudo apt-get install docker.io`), or set MULTIARCH_DOCKER=/path/to/docker".into()
            },
        ));
        return out;
    };
    let Some(cv) = &e.client_version else {
        out.push(Check::fail(
            "engine.client",
            format!(
                "`{path} version` did not answer{}",
                e.server_error
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ),
            format!("run `{path} version` to see why; set MULTIARCH_DOCKER to another client"),
        ));
        return out;
    };
    out.push(Check::ok(
        "engine.client",
        format!("docker client {cv} at {path} ({chosen})"),
    ));
    let via = match (&e.docker_host, &e.context) {
        (Some(h), _) => format!("DOCKER_HOST={h}"),
        (None, Some(c)) => format!("context {c}"),
        (None, None) => "default context".into(),
    };
    match &e.server_version {
        Some(sv) => out.push(Check::ok(
            "engine.daemon",
            format!("docker engine {sv} answers ({via})"),
        )),
        None => {
            let err = e.server_error.clone().unwrap_or_default();
            let fix = if err.contains("permission denied") {
                "let your user reach the socket: `sudo usermod -aG docker $USER`, then log in again (or run as root)".to_string()
            } else if e.docker_host.is_some() {
                "check DOCKER_HOST (unset it to use the local engine), then `docker version`".into()
            } else {
                "start the daemon: `sudo systemctl start docker` (without systemd: `sudo dockerd &`); check `docker context ls`".into()
            };
            out.push(Check::fail(
                "engine.daemon",
                format!("the docker engine does not answer ({via}): {err}"),
                fix,
            ));
        }
    }
    if facts.backend == BackendKind::Docker {
        out.extend(docker_backend_buildkit(facts, cv));
    }
    out
}

/// The docker backend builds with `docker build --platform X`; only BuildKit sets `TARGETARCH`.
/// Clients from 23.0 on refuse BuildKit builds without buildx, and `DOCKER_BUILDKIT=0` selects
/// the legacy builder.
fn docker_backend_buildkit(facts: &Facts, client_version: &str) -> Vec<Check> {
    let mut out = Vec::new();
    let modern = major_minor(client_version).is_some_and(|(m, _)| m >= 23);
    if facts.docker_buildkit.as_deref() == Some("0") {
        out.push(Check::warn(
            "engine.buildkit",
            "DOCKER_BUILDKIT=0 selects the legacy builder: it does not set TARGETARCH, so every platform gets the same downloads",
            "unset DOCKER_BUILDKIT (or export DOCKER_BUILDKIT=1)",
        ));
    } else if modern && facts.engine.buildx_version.is_none() {
        out.push(Check::fail(
            "engine.buildkit",
            format!(
                "docker client {client_version} has no buildx, so it refuses BuildKit builds (\"BuildKit is enabled but the buildx component is missing\")"
            ),
            "install buildx for this client (`sudo apt-get install docker-buildx`), or set MULTIARCH_DOCKER to a client that builds with the engine's BuildKit (a 20.10 client such as /usr/bin/docker from Debian's docker.io)",
        ));
    } else {
        out.push(Check::ok(
            "engine.buildkit",
            "`docker build --platform` runs on the engine's BuildKit (TARGETARCH is set)",
        ));
    }
    out
}

/// The fix for a missing buildx.
pub fn buildx_missing(client: &str) -> Check {
    Check::fail(
        "buildx.installed",
        format!("docker buildx is not installed (`{client} buildx version` fails)"),
        "install it: `sudo apt-get install docker-buildx` (Debian/Ubuntu; `docker-buildx-plugin` from Docker's repository),\n\
         or download docker-buildx from https://github.com/docker/buildx/releases to ~/.docker/cli-plugins/docker-buildx and `chmod +x` it;\n\
         or build without buildx: `--backend docker` (one build per platform) or `--backend podman`",
    )
}

/// Paths of the project that are not ASCII (buildx issue 2793).
pub fn non_ascii_paths(project: &Project) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &std::path::Path| {
        let s = p.display().to_string();
        if !s.is_ascii() && !out.contains(&s) {
            out.push(s);
        }
    };
    add(&project.root);
    for img in project.images.values() {
        add(&img.context);
        add(&img.dockerfile);
    }
    out
}

fn all_platforms(project: &Project) -> Vec<Platform> {
    let mut out: Vec<Platform> = Vec::new();
    for img in project.images.values() {
        for p in &img.platforms {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

/// buildx: installed, its version against the non-ASCII bug, the builder and its driver, the
/// containerd image store. Only for the buildx backend, and only when the engine answers.
pub fn buildx(project: &Project, facts: &Facts) -> Vec<Check> {
    let e = &facts.engine;
    let mut out = Vec::new();
    if facts.backend == BackendKind::Podman || e.client_version.is_none() {
        return out;
    }
    let multi = project.images.values().any(|i| i.platforms.len() > 1);
    if facts.backend == BackendKind::Buildx {
        match &e.buildx_version {
            None => out.push(buildx_missing(&client_cmd(facts))),
            Some(v) => out.extend(buildx_details(project, facts, v, multi)),
        }
    }
    if e.server_version.is_some() {
        out.push(Check::ok(
            "engine.containerd-store",
            if e.containerd_store {
                "containerd image store on: `--load` keeps every platform".to_string()
            } else {
                "containerd image store off: `plan --load` loads one platform per tag".to_string()
            },
        ));
    }
    out
}

/// buildx is there: its version, the builder, the driver.
fn buildx_details(project: &Project, facts: &Facts, v: &str, multi: bool) -> Vec<Check> {
    let e = &facts.engine;
    let mut out = Vec::new();
    {
        let bad = non_ascii_paths(project);
        let old = major_minor(v).is_some_and(|mm| mm < BUILDX_ASCII_FIXED);
        out.push(if old && !bad.is_empty() {
            Check::warn(
                "buildx.version",
                format!(
                    "docker buildx {v} (< 0.17) fails in non-ASCII folders (\"header key x-docker-expose-session-name contains value with non-printable ASCII characters\", buildx issue 2793): {}",
                    bad.join(", ")
                ),
                "upgrade buildx to 0.17 or later, or move the project to an ASCII-only path (multiarch itself runs buildx from an ASCII folder, but hand-run builds here fail)",
            )
        } else if old {
            Check::ok(
                "buildx.version",
                format!("docker buildx {v} (< 0.17: keep project paths ASCII, buildx issue 2793)"),
            )
        } else {
            Check::ok("buildx.version", format!("docker buildx {v}"))
        });
        let want = driver_name(project.builder.driver);
        let name = &project.builder.name;
        match &e.builder {
            None => out.push(Check::ok(
                "buildx.builder",
                format!("builder `{name}` does not exist yet; `multiarch apply` creates it (driver {want})"),
            )),
            Some(b) if b.driver != want => out.push(Check::warn(
                "buildx.builder",
                format!("builder `{name}` exists with driver {}, but [builder] says {want}", b.driver),
                format!("remove it so that `apply` creates it as declared: `{} buildx rm {name}`", client_cmd(facts)),
            )),
            Some(b) => {
                let missing: Vec<&str> = project
                    .builder
                    .nodes
                    .iter()
                    .filter(|n| !b.nodes.iter().any(|bn| bn.name == n.name || bn.endpoint == n.endpoint))
                    .map(|n| n.name.as_str())
                    .collect();
                if missing.is_empty() {
                    out.push(Check::ok(
                        "buildx.builder",
                        format!("builder `{name}` (driver {}, {} node(s))", b.driver, b.nodes.len()),
                    ));
                } else {
                    out.push(Check::warn(
                        "buildx.builder",
                        format!("builder `{name}` lacks the node(s) {} of [builder]", missing.join(", ")),
                        format!("remove it so that `apply` creates it with every node: `{} buildx rm {name}`", client_cmd(facts)),
                    ));
                }
            }
        }
        if project.builder.driver == Driver::Docker
            && multi
            && !e.containerd_store
            && e.server_version.is_some()
        {
            out.push(Check::fail(
                "buildx.driver",
                "the `docker` driver builds several platforms only with the containerd image store, which is off",
                "in multiarch.toml, [builder] driver = \"docker-container\";\n\
                 or turn the containerd image store on: /etc/docker/daemon.json {\"features\": {\"containerd-snapshotter\": true}}, then restart dockerd",
            ));
        }
    }
    out
}

fn driver_name(d: Driver) -> &'static str {
    match d {
        Driver::DockerContainer => "docker-container",
        Driver::Remote => "remote",
        Driver::Kubernetes => "kubernetes",
        Driver::Docker => "docker",
    }
}

/// The name `tonistiigi/binfmt --install` takes for a platform.
fn binfmt_install_name(p: &Platform) -> String {
    match p.arch.as_str() {
        "arm" => "arm".into(),
        a => a.to_string(),
    }
}

/// Emulation: every declared platform that the host does not run natively and no builder node
/// covers needs a QEMU binfmt handler on the engine's machine. One check per such platform.
pub fn emulation(
    project: &Project,
    backend: BackendKind,
    native: &Platform,
    handlers: &[BinfmtHandler],
    mounted: bool,
) -> Vec<Check> {
    let mut out = Vec::new();
    let by_node = |p: &Platform| {
        backend == BackendKind::Buildx
            && project
                .builder
                .nodes
                .iter()
                .any(|n| n.platforms.contains(p))
    };
    for p in all_platforms(project) {
        if by_node(&p) {
            continue;
        }
        let needs = match project.builder.emulation {
            Emulation::Always => p != *native && !(native.os == p.os && native.arch == p.arch),
            _ => !native.runs_natively(&p),
        };
        if !needs {
            continue;
        }
        let id = format!("emulation.{p}");
        if project.builder.emulation == Emulation::Never {
            out.push(Check::fail(
                id,
                format!("{p} needs emulation on this {native} host, but [builder] emulation = \"never\""),
                format!("add a [[builder.nodes]] entry that runs {p} natively, or set emulation = \"auto\""),
            ));
            continue;
        }
        let Some(q) = p.qemu_name() else {
            out.push(Check::fail(
                id,
                format!("{p}: QEMU has no emulator for this platform"),
                format!(
                    "build {p} on a native node ([[builder.nodes]] with platforms = [\"{p}\"])"
                ),
            ));
            continue;
        };
        match handlers.iter().find(|h| h.name == q && h.enabled) {
            Some(h) if !h.flags.is_empty() && !h.flags.contains('F') => out.push(Check::warn(
                id,
                format!("{p}: binfmt handler qemu-{q} is registered without the F flag, so containers cannot use it"),
                format!("re-register it with F: `docker run --privileged --rm tonistiigi/binfmt --install {}`", binfmt_install_name(&p)),
            )),
            Some(_) => out.push(Check::ok(id, format!("{p}: QEMU binfmt handler qemu-{q} registered"))),
            None => {
                let mount = if mounted {
                    String::new()
                } else {
                    "mount binfmt_misc first: `sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`;\n".into()
                };
                let disabled = handlers.iter().any(|h| h.name == q);
                let fix = if disabled {
                    format!("enable it: `echo 1 | sudo tee /proc/sys/fs/binfmt_misc/qemu-{q}`")
                } else {
                    format!(
                        "{mount}`docker run --privileged --rm tonistiigi/binfmt --install {}`\n\
                         or on Debian/Ubuntu: `sudo apt-get install qemu-user-static`, then `sudo systemctl restart systemd-binfmt`\n\
                         (without systemd: `grep -v '^#' /usr/lib/binfmt.d/qemu-{q}.conf | sudo tee /proc/sys/fs/binfmt_misc/register`)",
                        binfmt_install_name(&p)
                    )
                };
                out.push(Check::fail(
                    id,
                    format!(
                        "{p}: no QEMU binfmt handler qemu-{q}{} on this {native} host, so building {p} fails with \"exec format error\"",
                        if disabled { " enabled" } else { "" }
                    ),
                    fix,
                ));
            }
        }
    }
    out
}

/// Where a registry's credentials come from in one auth file, if anywhere.
fn auth_source(file: &AuthFile, host: &str) -> Option<String> {
    if let Some(h) = file.helpers.get(host) {
        return Some(format!(
            "credential helper docker-credential-{h} in {}",
            file.path.display()
        ));
    }
    match file.auths.get(host) {
        Some(true) => Some(format!("a login in {}", file.path.display())),
        Some(false) => file.store.as_ref().map(|s| {
            format!(
                "a login kept by docker-credential-{s} ({})",
                file.path.display()
            )
        }),
        None => None,
    }
}

/// Credentials, per registry: the named environment variables are set, or the docker config
/// (or podman's auth file) has a login or a helper for the host. Never reads a secret.
pub fn credentials(project: &Project, facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    for r in project.registries.values() {
        out.push(registry_credentials(r, facts));
    }
    out
}

/// The login command for a registry, with the client the release uses.
pub fn login_cmd(r: &Registry, facts: &Facts) -> String {
    let tool = if facts.backend == BackendKind::Podman {
        "podman".to_string()
    } else {
        client_cmd(facts)
    };
    let key = registry_key(&r.host);
    if key == "docker.io" {
        format!("{tool} login")
    } else {
        format!("{tool} login {}", r.host)
    }
}

fn registry_credentials(r: &Registry, facts: &Facts) -> Check {
    let id = format!("credentials.{}", r.name);
    let key = registry_key(&r.host);
    let mut files: Vec<&AuthFile> = facts.podman_auth.iter().collect();
    files.push(&facts.docker_config);
    let source = files.iter().find_map(|f| auth_source(f, &key));
    let broken: Vec<String> = files
        .iter()
        .filter_map(|f| {
            f.error
                .as_ref()
                .map(|e| format!("{}: {e}", f.path.display()))
        })
        .collect();
    let names: Vec<&String> = [&r.username_env, &r.password_env]
        .into_iter()
        .flatten()
        .collect();
    let unset: Vec<&str> = names
        .iter()
        .filter(|n| !facts.env_set.contains(n.as_str()))
        .map(|n| n.as_str())
        .collect();
    let export = |unset: &[&str]| {
        unset
            .iter()
            .map(|n| format!("{n}=..."))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let anonymous_ok = facts
        .online
        .as_ref()
        .and_then(|o| o.registries.get(&r.name))
        .is_some_and(|p| p.anonymous());
    if !names.is_empty() && unset.is_empty() {
        let shown: Vec<String> = names.iter().map(|n| format!("${n}")).collect();
        return Check::ok(
            id,
            format!("{}: credentials from {} (set)", r.host, shown.join(" and ")),
        );
    }
    if !names.is_empty() {
        let which = unset
            .iter()
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(" and ");
        return match source {
            Some(s) => Check::warn(
                id,
                format!("{}: {which} not set; {s} will be used instead", r.host),
                format!(
                    "export {} (the names [registries.{}] gives), or keep relying on `{}`",
                    export(&unset),
                    r.name,
                    login_cmd(r, facts)
                ),
            ),
            None if anonymous_ok => Check::ok(
                id,
                format!(
                    "{}: {which} not set, but the registry accepts anonymous access",
                    r.host
                ),
            ),
            None => Check::fail(
                id,
                format!(
                    "{}: no credentials: {which} not set and {} has no login for {key}{}",
                    r.host,
                    facts.docker_config.path.display(),
                    if broken.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", broken.join("; "))
                    }
                ),
                format!("export {}, or `{}`", export(&unset), login_cmd(r, facts)),
            ),
        };
    }
    match source {
        Some(s) => Check::ok(id, format!("{}: {s}", r.host)),
        None if anonymous_ok => Check::ok(id, format!("{}: no credentials needed (anonymous access)", r.host)),
        None if r.plain_http => Check::warn(
            id,
            format!("{}: no credentials found; fine only if this registry accepts anonymous pushes", r.host),
            format!("`{}`, or name username-env/password-env in [registries.{}]", login_cmd(r, facts), r.name),
        ),
        None => Check::fail(
            id,
            format!(
                "{}: no credentials: [registries.{}] names no variables and {} has no login for {key}{}",
                r.host,
                r.name,
                facts.docker_config.path.display(),
                if broken.is_empty() { String::new() } else { format!(" ({})", broken.join("; ")) }
            ),
            format!("`{}`, or set username-env/password-env in [registries.{}] and export them", login_cmd(r, facts), r.name),
        ),
    }
}

/// A project path as the user wrote it: relative to the project folder, `.` for the folder.
pub fn rel(project: &Project, path: &std::path::Path) -> String {
    let clean: std::path::PathBuf = path
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    match clean.strip_prefix(&project.root) {
        Ok(r) if r.as_os_str().is_empty() => ".".into(),
        Ok(r) => r.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// The project: context folders and Dockerfiles exist, paths are ASCII, Dockerfiles download
/// per-platform binaries, base images are listed.
pub fn project(project: &Project, facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    for img in project.images.values() {
        let f = facts.files.get(&img.key).cloned().unwrap_or_default();
        let id = format!("project.{}", img.key);
        if !f.context_is_dir {
            out.push(Check::fail(
                id,
                format!(
                    "image `{}`: context {} is not a folder",
                    img.key,
                    rel(project, &img.context)
                ),
                format!("create it, or fix `context` in [images.{}]", img.key),
            ));
            continue;
        }
        let Some(text) = &f.dockerfile else {
            out.push(Check::fail(
                id,
                format!(
                    "image `{}`: Dockerfile {} cannot be read",
                    img.key,
                    rel(project, &img.dockerfile)
                ),
                format!("create it, or fix `dockerfile` in [images.{}]", img.key),
            ));
            continue;
        };
        out.push(Check::ok(
            id,
            format!(
                "image `{}`: context {} and {} found",
                img.key,
                rel(project, &img.context),
                rel(project, &img.dockerfile)
            ),
        ));
        out.extend(dockerfile::checks(project, img, text));
    }
    let bad = non_ascii_paths(project);
    out.push(if bad.is_empty() {
        Check::ok("project.paths", "every project path is ASCII")
    } else {
        Check::ok(
            "project.paths",
            format!(
                "non-ASCII paths: {}; multiarch runs builds from an ASCII folder (buildx issue 2793)",
                bad.join(", ")
            ),
        )
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::doctor::{ImageFiles, Status};
    use crate::host::{BuilderInfo, EngineFacts, HostFacts};

    /// Writes a project (multiarch.toml + files) into a temp dir and loads it.
    pub fn project_with(toml: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("multiarch.toml"), toml).unwrap();
        for (p, text) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = Project::load(&dir.path().join("multiarch.toml")).unwrap();
        (dir, project)
    }

    pub const BASIC: &str = r#"
[project]
name = "demo"
[registries.hub]
host = "docker.io"
namespace = "me"
username-env = "HUB_USER"
password-env = "HUB_TOKEN"
[registries.local]
host = "127.0.0.1:5000"
[images.app]
context = "."
platforms = ["linux/amd64", "linux/arm64", "linux/s390x"]
registries = ["hub", "local"]
"#;

    /// Facts of a healthy amd64 machine with docker 27, buildx 0.20, QEMU for arm64 and arm.
    pub fn healthy(project: &Project) -> Facts {
        let host = HostFacts::fixed();
        let handler = |n: &str| BinfmtHandler {
            name: n.into(),
            enabled: true,
            interpreter: format!("/usr/bin/qemu-{n}-static"),
            flags: "F".into(),
        };
        Facts {
            backend: BackendKind::Buildx,
            engine: EngineFacts {
                client: "docker".into(),
                client_from_env: false,
                client_path: Some("/usr/bin/docker".into()),
                client_version: Some("27.5.1".into()),
                server_version: Some("27.5.1".into()),
                context: Some("default".into()),
                buildx_version: Some("0.20.1".into()),
                binfmt_mounted: true,
                binfmt: vec![handler("aarch64"), handler("arm")],
                ..EngineFacts::default()
            },
            host,
            env_set: BTreeSet::new(),
            docker_buildkit: None,
            docker_config: AuthFile {
                path: "/home/u/.docker/config.json".into(),
                exists: true,
                ..AuthFile::default()
            },
            podman_auth: vec![],
            files: project
                .images
                .values()
                .map(|i| {
                    (
                        i.key.clone(),
                        ImageFiles {
                            context_is_dir: true,
                            dockerfile: Some("FROM alpine:3.20\n".into()),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            online: None,
        }
    }

    fn find<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no check {id} in {checks:#?}"))
    }

    #[test]
    fn versions() {
        assert_eq!(major_minor("0.16.2"), Some((0, 16)));
        assert_eq!(major_minor("v0.17.1"), Some((0, 17)));
        assert_eq!(major_minor("0.10.5+ds1"), Some((0, 10)));
        assert_eq!(major_minor("20.10.24+dfsg1"), Some((20, 10)));
        assert_eq!(major_minor("garbage"), None);
    }

    #[test]
    fn registry_keys() {
        assert_eq!(registry_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_key("docker.io"), "docker.io");
        assert_eq!(registry_key("registry-1.docker.io"), "docker.io");
        assert_eq!(registry_key("https://ghcr.io"), "ghcr.io");
        assert_eq!(registry_key("127.0.0.1:5001"), "127.0.0.1:5001");
        assert_eq!(
            registry_key("http://Registry.Lazycat.cloud/v2/"),
            "registry.lazycat.cloud"
        );
    }

    #[test]
    fn engine_healthy_and_client_choice() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        let c = engine(&f);
        assert_eq!(find(&c, "engine.client").status, Status::Ok);
        assert!(find(&c, "engine.client")
            .summary
            .contains("first `docker` on PATH"));
        assert_eq!(find(&c, "engine.daemon").status, Status::Ok);
        f.engine.client_from_env = true;
        f.engine.client = "/usr/bin/docker".into();
        assert!(engine(&f)[0].summary.contains("MULTIARCH_DOCKER"));
    }

    #[test]
    fn engine_missing_client_and_daemon() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        f.engine.client_path = None;
        let c = engine(&f);
        assert_eq!(c[0].status, Status::Fail);
        assert!(c[0]
            .fix
            .as_ref()
            .unwrap()
            .contains("apt-get install docker.io"));

        let mut f = healthy(&p);
        f.engine.server_version = None;
        f.engine.server_error = Some(
            "Got permission denied while trying to connect to the Docker daemon socket".into(),
        );
        let d = find(&engine(&f), "engine.daemon").clone();
        assert_eq!(d.status, Status::Fail);
        assert!(d.fix.unwrap().contains("usermod -aG docker"));

        f.engine.server_error =
            Some("Cannot connect to the Docker daemon at unix:///var/run/docker.sock".into());
        let d = find(&engine(&f), "engine.daemon").clone();
        assert!(d.summary.contains("Cannot connect"));
        assert!(d.fix.unwrap().contains("systemctl start docker"));
    }

    #[test]
    fn podman_engine() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        f.backend = BackendKind::Podman;
        assert_eq!(engine(&f)[0].status, Status::Fail);
        f.engine.podman_version = Some("4.3.1".into());
        assert_eq!(engine(&f)[0].status, Status::Ok);
        assert!(buildx(&p, &f).is_empty());
    }

    #[test]
    fn docker_backend_needs_buildkit() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        f.backend = BackendKind::Docker;
        f.engine.buildx_version = None;
        f.engine.client_version = Some("28.2.2".into());
        let k = find(&engine(&f), "engine.buildkit").clone();
        assert_eq!(k.status, Status::Fail);
        assert!(k.fix.unwrap().contains("MULTIARCH_DOCKER"));
        f.engine.client_version = Some("20.10.24+dfsg1".into());
        assert_eq!(find(&engine(&f), "engine.buildkit").status, Status::Ok);
        f.docker_buildkit = Some("0".into());
        assert_eq!(find(&engine(&f), "engine.buildkit").status, Status::Warn);
        // no buildx check for the docker backend
        assert!(buildx(&p, &f).iter().all(|c| !c.id.starts_with("buildx.")));
    }

    #[test]
    fn buildx_missing_names_the_package_and_plugin_dir() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        f.engine.buildx_version = None;
        let c = buildx(&p, &f);
        assert!(c
            .iter()
            .all(|c| c.id != "buildx.version" && c.id != "buildx.builder"));
        let b = find(&c, "buildx.installed");
        assert_eq!(b.status, Status::Fail);
        let fix = b.fix.as_ref().unwrap();
        assert!(fix.contains("docker-buildx") && fix.contains("~/.docker/cli-plugins"));
    }

    #[test]
    fn old_buildx_with_non_ascii_path_warns() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("打包");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("multiarch.toml"), BASIC).unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM alpine\n").unwrap();
        let p = Project::load(&root.join("multiarch.toml")).unwrap();
        let mut f = healthy(&p);
        f.engine.buildx_version = Some("0.16.2".into());
        let v = find(&buildx(&p, &f), "buildx.version").clone();
        assert_eq!(v.status, Status::Warn);
        assert!(v.summary.contains("2793") && v.summary.contains("打包"));
        f.engine.buildx_version = Some("0.17.0".into());
        assert_eq!(find(&buildx(&p, &f), "buildx.version").status, Status::Ok);
        // ASCII path with an old buildx: fine
        let (_d, p2) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f2 = healthy(&p2);
        f2.engine.buildx_version = Some("0.12.1".into());
        assert_eq!(find(&buildx(&p2, &f2), "buildx.version").status, Status::Ok);
    }

    #[test]
    fn builder_driver() {
        let toml = BASIC.replace(
            "[images.app]",
            "[builder]\ndriver = \"docker\"\n[images.app]",
        );
        let (_d, p) = project_with(&toml, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        let d = find(&buildx(&p, &f), "buildx.driver").clone();
        assert_eq!(d.status, Status::Fail);
        assert!(d.fix.unwrap().contains("containerd-snapshotter"));
        f.engine.containerd_store = true;
        let c = buildx(&p, &f);
        assert!(c.iter().all(|c| c.id != "buildx.driver"));
        assert!(find(&c, "engine.containerd-store").summary.contains("on"));
        // an existing builder with another driver
        f.engine.builder = Some(BuilderInfo {
            name: "multiarch-demo".into(),
            driver: "docker-container".into(),
            nodes: vec![],
        });
        let b = find(&buildx(&p, &f), "buildx.builder").clone();
        assert_eq!(b.status, Status::Warn);
        assert!(b.fix.unwrap().contains("buildx rm"));
    }

    #[test]
    fn emulation_names_each_missing_platform() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let f = healthy(&p);
        let c = emulation(
            &p,
            BackendKind::Buildx,
            &f.host.native,
            &f.engine.binfmt,
            true,
        );
        assert_eq!(c.len(), 2, "{c:#?}"); // amd64 is native
        assert_eq!(find(&c, "emulation.linux/arm64").status, Status::Ok);
        let s = find(&c, "emulation.linux/s390x");
        assert_eq!(s.status, Status::Fail);
        assert!(s.summary.contains("qemu-s390x"));
        let fix = s.fix.as_ref().unwrap();
        assert!(fix.contains("tonistiigi/binfmt --install s390x"));
        assert!(fix.contains("qemu-user-static"));
        assert!(fix.contains("/usr/lib/binfmt.d/qemu-s390x.conf"));
        // not mounted: the fix says to mount it
        let c = emulation(&p, BackendKind::Buildx, &f.host.native, &[], false);
        assert!(find(&c, "emulation.linux/arm64")
            .fix
            .as_ref()
            .unwrap()
            .contains("mount -t binfmt_misc"));
    }

    #[test]
    fn emulation_flags_nodes_and_policy() {
        let toml = BASIC.replace(
            "[images.app]",
            "[builder]\n[[builder.nodes]]\nname = \"z\"\nendpoint = \"ssh://z\"\nplatforms = [\"linux/s390x\"]\n[images.app]",
        );
        let (_d, p) = project_with(&toml, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        f.engine.binfmt[0].flags = "P".into();
        let c = emulation(
            &p,
            BackendKind::Buildx,
            &f.host.native,
            &f.engine.binfmt,
            true,
        );
        assert!(
            c.iter().all(|c| c.id != "emulation.linux/s390x"),
            "s390x is built on a node"
        );
        assert_eq!(find(&c, "emulation.linux/arm64").status, Status::Warn);
        // podman has no nodes: s390x needs QEMU there
        let c = emulation(
            &p,
            BackendKind::Podman,
            &f.host.native,
            &f.engine.binfmt,
            true,
        );
        assert_eq!(find(&c, "emulation.linux/s390x").status, Status::Fail);
        // emulation = never
        let toml = BASIC.replace(
            "[images.app]",
            "[builder]\nemulation = \"never\"\n[images.app]",
        );
        let (_d, p) = project_with(&toml, &[("Dockerfile", "FROM alpine\n")]);
        let c = emulation(
            &p,
            BackendKind::Buildx,
            &f.host.native,
            &f.engine.binfmt,
            true,
        );
        assert!(find(&c, "emulation.linux/arm64").summary.contains("never"));
        // a disabled handler
        let mut hs = f.engine.binfmt.clone();
        hs[0].enabled = false;
        let c = emulation(
            &project_with(BASIC, &[("Dockerfile", "x")]).1,
            BackendKind::Buildx,
            &f.host.native,
            &hs,
            true,
        );
        assert!(find(&c, "emulation.linux/arm64")
            .fix
            .as_ref()
            .unwrap()
            .contains("echo 1"));
    }

    #[test]
    fn credentials_from_env_config_or_nowhere() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        let c = credentials(&p, &f);
        let hub = find(&c, "credentials.hub");
        assert_eq!(hub.status, Status::Fail);
        assert!(hub.summary.contains("$HUB_USER and $HUB_TOKEN not set"));
        assert!(hub.fix.as_ref().unwrap().contains("docker login"));
        let local = find(&c, "credentials.local");
        assert_eq!(local.status, Status::Warn, "loopback: maybe anonymous");
        assert!(local
            .fix
            .as_ref()
            .unwrap()
            .contains("docker login 127.0.0.1:5000"));

        f.env_set.insert("HUB_USER".into());
        let hub = find(&credentials(&p, &f), "credentials.hub").clone();
        assert!(hub.summary.contains("$HUB_TOKEN not set"));
        assert!(hub.fix.unwrap().contains("export HUB_TOKEN=..."));

        f.env_set.insert("HUB_TOKEN".into());
        assert_eq!(
            find(&credentials(&p, &f), "credentials.hub").status,
            Status::Ok
        );

        // docker login wrote https://index.docker.io/v1/ into config.json
        f.env_set.clear();
        f.docker_config
            .auths
            .insert(registry_key("https://index.docker.io/v1/"), true);
        f.docker_config
            .helpers
            .insert("127.0.0.1:5000".into(), "pass".into());
        let c = credentials(&p, &f);
        assert_eq!(find(&c, "credentials.hub").status, Status::Warn);
        let local = find(&c, "credentials.local");
        assert_eq!(local.status, Status::Ok);
        assert!(local.summary.contains("docker-credential-pass"));
    }

    #[test]
    fn credentials_never_print_values() {
        std::env::set_var("MULTIARCH_DOCTOR_SECRET_TEST", "hunter2-s3cret");
        let toml = BASIC.replace("HUB_TOKEN", "MULTIARCH_DOCTOR_SECRET_TEST");
        let (_d, p) = project_with(&toml, &[("Dockerfile", "FROM alpine\n")]);
        let f = crate::doctor::gather(&p, BackendKind::Podman, false);
        let text = serde_json::to_string(&f).unwrap() + &format!("{:?}", credentials(&p, &f));
        assert!(!text.contains("hunter2"));
        assert!(f.env_set.contains("MULTIARCH_DOCTOR_SECRET_TEST"));
    }

    #[test]
    fn auth_file_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{},"127.0.0.1:5001":{"auth":"bXVsdGlhcmNo"}},"credsStore":"desktop","credHelpers":{"ghcr.io":"gh"}}"#,
        )
        .unwrap();
        let a = AuthFile::read(&path);
        assert_eq!(a.auths.get("docker.io"), Some(&false));
        assert_eq!(a.auths.get("127.0.0.1:5001"), Some(&true));
        assert_eq!(a.store.as_deref(), Some("desktop"));
        assert!(auth_source(&a, "docker.io")
            .unwrap()
            .contains("docker-credential-desktop"));
        assert!(auth_source(&a, "ghcr.io")
            .unwrap()
            .contains("docker-credential-gh"));
        assert!(auth_source(&a, "quay.io").is_none());
        std::fs::write(&path, "{not json").unwrap();
        assert!(AuthFile::read(&path).error.is_some());
        assert!(!AuthFile::read(&dir.path().join("none.json")).exists);
    }

    #[test]
    fn project_files() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut f = healthy(&p);
        assert_eq!(find(&project(&p, &f), "project.app").status, Status::Ok);
        f.files.get_mut("app").unwrap().dockerfile = None;
        assert_eq!(find(&project(&p, &f), "project.app").status, Status::Fail);
        f.files.get_mut("app").unwrap().context_is_dir = false;
        assert!(find(&project(&p, &f), "project.app")
            .summary
            .contains("not a folder"));
    }
}

#[cfg(test)]
mod preflight_tests {
    use super::tests::{project_with, BASIC};
    use crate::cli::BackendKind;
    use crate::doctor::{any_failed, preflight, Status};
    use crate::host::HostFacts;

    #[test]
    fn preflight_uses_the_planners_facts_only() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let mut facts = HostFacts::fixed();
        let c = preflight(&p, &facts, BackendKind::Buildx);
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "engine.daemon",
                "buildx.installed",
                "emulation.linux/arm64",
                "emulation.linux/s390x"
            ]
        );
        assert!(any_failed(&c), "s390x has no handler in the fixed facts");
        facts.binfmt.push("s390x".into());
        assert!(!any_failed(&preflight(&p, &facts, BackendKind::Buildx)));
        facts.buildx_version = None;
        let c = preflight(&p, &facts, BackendKind::Buildx);
        assert_eq!(c[1].status, Status::Fail);
        assert!(!any_failed(&preflight(&p, &facts, BackendKind::Docker)));
        facts.engine_version = None;
        let c = preflight(&p, &facts, BackendKind::Docker);
        assert_eq!(c[0].status, Status::Fail);
        facts.podman_version = None;
        let c = preflight(&p, &facts, BackendKind::Podman);
        assert_eq!(
            (c[0].id.as_str(), c[0].status),
            ("engine.podman", Status::Fail)
        );
    }
}
