//! Integration tests: doctor.
//!
//! The hermetic tests run anywhere (a client that does not exist, an invalid project file). The
//! end-to-end tests run the real engine set up by scripts/setup-test-env.sh: docker.io 20.10 at
//! /usr/bin/docker (no buildx), the other client /usr/local/bin/docker (28.x, no buildx, so no
//! BuildKit), podman, QEMU binfmt handlers, the htpasswd registry on 127.0.0.1:5001.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::common::{require, Output, Test};

/// Typed mirror of `doctor --format json`: a change of shape breaks this test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    ok: bool,
    summary: Counts,
    checks: Vec<CheckOut>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Counts {
    ok: usize,
    warn: usize,
    fail: usize,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct CheckOut {
    id: String,
    status: String,
    summary: String,
    fix: Option<String>,
}

impl Report {
    fn get(&self, id: &str) -> &CheckOut {
        self.checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no check {id} in {:#?}", self.checks))
    }
}

fn parse(out: &Output) -> Report {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --format json: {e}\n{}\n{}", out.stdout, out.stderr))
}

const REAL_DOCKER: &str = "/usr/bin/docker";
const OTHER_DOCKER: &str = "/usr/local/bin/docker";

fn engine_present() -> bool {
    Command::new(REAL_DOCKER)
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// (platform, QEMU name) pairs an amd64 test host does not run natively.
const CANDIDATES: &[(&str, &str)] = &[
    ("linux/loong64", "loongarch64"),
    ("linux/mips64le", "mips64el"),
    ("linux/s390x", "s390x"),
    ("linux/riscv64", "riscv64"),
    ("linux/ppc64le", "ppc64le"),
];

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";

fn registered(q: &str) -> bool {
    std::fs::read_to_string(Path::new(BINFMT).join(format!("qemu-{q}")))
        .is_ok_and(|s| s.starts_with("enabled"))
}

/// A project in a temp dir: amd64 + arm64 + `extra`, the auth registry with two unset
/// variables, the open registry, and a Dockerfile that falls into the seed's trap.
fn project(extra: Option<&str>) -> tempfile::TempDir {
    let extra = extra.map(|p| format!(", \"{p}\"")).unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"[project]
name = "doctor-e2e"

[registries.auth]
host = "127.0.0.1:5001"
username-env = "MULTIARCH_DOCTOR_E2E_USER"
password-env = "MULTIARCH_DOCTOR_E2E_PASSWORD"

[registries.open]
host = "127.0.0.1:5000"

[images.app]
context = "."
platforms = ["linux/amd64", "linux/arm64"{extra}]
registries = ["auth", "open"]
"#
    );
    std::fs::write(dir.path().join("multiarch.toml"), toml).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nADD https://example.com/releases/v1/tool_linux_amd64 /tool\n",
    )
    .unwrap();
    dir
}

/// The doctor run, with an empty docker config and the credential variables unset.
fn doctor(dir: &Path, config: &Path) -> Test {
    Test::new()
        .dir(dir)
        .env("MULTIARCH_DOCKER", REAL_DOCKER)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("MULTIARCH_DOCTOR_E2E_USER")
        .env_remove("MULTIARCH_DOCTOR_E2E_PASSWORD")
}

#[test]
fn invalid_project_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("multiarch.toml"),
        "[images.app]\nplatfroms = 1\n",
    )
    .unwrap();
    let out = Test::new().dir(dir.path()).args(["doctor"]).code(2);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn missing_client_fails_with_the_fix() {
    let dir = project(None);
    let conf = tempfile::tempdir().unwrap();
    let out = doctor(dir.path(), conf.path())
        .env("MULTIARCH_DOCKER", "/nonexistent/docker")
        .args(["doctor", "--format", "json"])
        .code(1);
    let r = parse(&out);
    assert!(!r.ok);
    let c = r.get("engine.client");
    assert_eq!(c.status, "fail");
    assert!(c.summary.contains("/nonexistent/docker") && c.summary.contains("MULTIARCH_DOCKER"));
    assert!(c.fix.as_deref().unwrap().contains("MULTIARCH_DOCKER"));
    assert_eq!(
        r.summary.fail,
        r.checks.iter().filter(|c| c.status == "fail").count()
    );
    // progress on stderr, JSON alone on stdout
    assert!(out.stderr.contains("checking this machine"));
}

/// Picks a declared platform whose binfmt handler is missing. When the host has every handler
/// registered, the run happens in a private mount namespace where a copy of binfmt_misc
/// without `qemu-loongarch64` hides it: the system's handlers, which other tests use, are
/// never touched.
fn missing_platform() -> Option<(&'static str, &'static str, bool)> {
    if let Some((p, q)) = CANDIDATES.iter().find(|(_, q)| !registered(q)) {
        return Some((p, q, false));
    }
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let unshare = Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    (root && unshare).then_some((CANDIDATES[0].0, CANDIDATES[0].1, true))
}

/// Runs the binary inside `unshare -m` with `hide` removed from its view of binfmt_misc.
fn run_hiding(hide: &str, dir: &Path, config: &Path, args: &[&str]) -> Output {
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(BINFMT).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "register" || name == format!("qemu-{hide}") {
            continue;
        }
        std::fs::write(copy.path().join(&name), std::fs::read(e.path()).unwrap()).unwrap();
    }
    let script = format!(
        "mount --bind '{}' {BINFMT} && exec \"$0\" \"$@\"",
        copy.path().display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(crate::common::bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("MULTIARCH_DOCKER", REAL_DOCKER)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("MULTIARCH_DOCTOR_E2E_USER")
        .env_remove("MULTIARCH_DOCTOR_E2E_PASSWORD")
        .output()
        .expect("unshare runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn real_engine_without_buildx_missing_handler_and_credentials() {
    if !require("the docker engine (/usr/bin/docker)", engine_present()) {
        return;
    }
    let picked = missing_platform();
    if !require(
        "a platform without a binfmt handler (or root + unshare to hide one)",
        picked.is_some(),
    ) {
        return;
    }
    let (platform, qemu, hidden) = picked.unwrap();
    let dir = project(Some(platform));
    let conf = tempfile::tempdir().unwrap();
    let args = ["doctor", "--format", "json"];
    let out = if hidden {
        run_hiding(qemu, dir.path(), conf.path(), &args)
    } else {
        doctor(dir.path(), conf.path()).args(args).run()
    };
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let r = parse(&out);

    let client = r.get("engine.client");
    assert_eq!(client.status, "ok");
    assert!(client.summary.contains(REAL_DOCKER) && client.summary.contains("MULTIARCH_DOCKER"));
    assert!(client.summary.contains("20.10"), "{}", client.summary);
    assert_eq!(r.get("engine.daemon").status, "ok");

    let bx = r.get("buildx.installed");
    assert_eq!(bx.status, "fail");
    let fix = bx.fix.as_deref().unwrap();
    assert!(fix.contains("apt-get install docker-buildx"), "{fix}");
    assert!(fix.contains("~/.docker/cli-plugins/docker-buildx"), "{fix}");
    assert_eq!(r.get("engine.containerd-store").status, "ok");

    assert_eq!(r.get("emulation.linux/arm64").status, "ok");
    assert!(r.checks.iter().all(|c| c.id != "emulation.linux/amd64"));
    let em = r.get(&format!("emulation.{platform}"));
    assert_eq!(em.status, "fail", "{em:?}");
    assert!(em.summary.contains(platform) && em.summary.contains(&format!("qemu-{qemu}")));
    let fix = em.fix.as_deref().unwrap();
    assert!(fix.contains("tonistiigi/binfmt --install"), "{fix}");
    assert!(
        fix.contains(&format!("/usr/lib/binfmt.d/qemu-{qemu}.conf")),
        "{fix}"
    );

    let cred = r.get("credentials.auth");
    assert_eq!(cred.status, "fail");
    assert!(cred.summary.contains("127.0.0.1:5001"));
    assert!(cred
        .summary
        .contains("$MULTIARCH_DOCTOR_E2E_USER and $MULTIARCH_DOCTOR_E2E_PASSWORD not set"));
    let fix = cred.fix.as_deref().unwrap();
    assert!(fix.contains("docker login 127.0.0.1:5001"), "{fix}");
    assert_eq!(r.get("credentials.open").status, "warn");

    let df = r.get("dockerfile.app");
    assert_eq!(df.status, "warn");
    assert!(df.summary.contains("Dockerfile:2") && df.summary.contains("linux/arm64"));

    // the text form: one mark per check, the fix under it, a summary line
    let text = if hidden {
        run_hiding(qemu, dir.path(), conf.path(), &["doctor"])
    } else {
        doctor(dir.path(), conf.path()).args(["doctor"]).run()
    };
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("FAIL  buildx.installed"),
        "{}",
        text.stdout
    );
    assert!(text
        .stdout
        .contains("fix: `docker run --privileged --rm tonistiigi/binfmt --install"));
    assert!(text.stdout.lines().last().unwrap().contains(&format!(
        "{} checks: {} ok, {} warning",
        r.checks.len(),
        r.summary.ok,
        r.summary.warn
    )));
}

#[test]
fn real_login_is_found_and_never_printed() {
    if !require("the docker engine (/usr/bin/docker)", engine_present()) {
        return;
    }
    let dir = project(None);
    let conf = tempfile::tempdir().unwrap();
    let secret = "multiarch-secret-pw";
    let mut login = Command::new(REAL_DOCKER)
        .args([
            "login",
            "127.0.0.1:5001",
            "-u",
            "multiarch",
            "--password-stdin",
        ])
        .env("DOCKER_CONFIG", conf.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    login
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    let done = login.wait_with_output().unwrap();
    if !require(
        "the htpasswd registry on 127.0.0.1:5001",
        done.status.success(),
    ) {
        return;
    }
    let out = doctor(dir.path(), conf.path())
        .args(["doctor", "--format", "json"])
        .run();
    let r = parse(&out);
    let cred = r.get("credentials.auth");
    assert_eq!(cred.status, "warn", "{cred:?}");
    assert!(cred.summary.contains(&format!(
        "a login in {}",
        conf.path().join("config.json").display()
    )));
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    let encoded = "bXVsdGlhcmNoOm11bHRpYXJjaC1zZWNyZXQtcHc"; // base64 of user:password
    assert!(!out.stdout.contains(encoded));
    // with the variables set, they win
    let out = doctor(dir.path(), conf.path())
        .env("MULTIARCH_DOCTOR_E2E_USER", "multiarch")
        .env("MULTIARCH_DOCTOR_E2E_PASSWORD", secret)
        .args(["doctor", "--format", "json"])
        .run();
    let r = parse(&out);
    assert_eq!(r.get("credentials.auth").status, "ok");
    assert!(!out.stdout.contains(secret));
}

#[test]
fn docker_backend_with_a_client_that_cannot_use_buildkit() {
    let present = engine_present() && PathBuf::from(OTHER_DOCKER).exists();
    if !require(
        "the engine and the second client /usr/local/bin/docker",
        present,
    ) {
        return;
    }
    let dir = project(None);
    let conf = tempfile::tempdir().unwrap();
    let r = parse(
        &doctor(dir.path(), conf.path())
            .env("MULTIARCH_DOCKER", OTHER_DOCKER)
            .args(["doctor", "--backend", "docker", "--format", "json"])
            .run(),
    );
    let bk = r.get("engine.buildkit");
    assert_eq!(bk.status, "fail", "{bk:?}");
    assert!(bk.fix.as_deref().unwrap().contains("MULTIARCH_DOCKER"));
    assert!(r.checks.iter().all(|c| c.id != "buildx.installed"));
    // the Debian client builds on the engine's BuildKit
    let r = parse(
        &doctor(dir.path(), conf.path())
            .args(["doctor", "--backend", "docker", "--format", "json"])
            .run(),
    );
    assert_eq!(r.get("engine.buildkit").status, "ok");
}

#[test]
fn podman_backend() {
    let present = Command::new("podman")
        .args(["version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("podman", present) {
        return;
    }
    let dir = project(None);
    let conf = tempfile::tempdir().unwrap();
    let r = parse(
        &doctor(dir.path(), conf.path())
            .args(["doctor", "--backend", "podman", "--format", "json"])
            .run(),
    );
    let p = r.get("engine.podman");
    assert_eq!(p.status, "ok", "{p:?}");
    assert!(r
        .checks
        .iter()
        .all(|c| !c.id.starts_with("buildx.") && c.id != "engine.daemon"));
    assert!(r
        .get("credentials.auth")
        .fix
        .as_deref()
        .unwrap()
        .contains("podman login 127.0.0.1:5001"));
}

fn registry_up(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Pushes a single-platform (amd64) image to the open registry: busybox imported with
/// `docker import`, which labels it with the engine's own architecture.
fn push_amd64_base(reference: &str) -> bool {
    let busybox = Path::new("/var/lib/multiarch-test/busybox/amd64/busybox");
    if !busybox.exists() {
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(busybox, dir.path().join("busybox")).unwrap();
    let tar = Command::new("tar")
        .args([
            "-C",
            &dir.path().display().to_string(),
            "-cf",
            "-",
            "busybox",
        ])
        .output()
        .unwrap();
    let mut import = Command::new(REAL_DOCKER)
        .args(["import", "-", reference])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    let ok = import.wait().unwrap().success()
        && Command::new(REAL_DOCKER)
            .args(["push", reference])
            .output()
            .is_ok_and(|o| o.status.success());
    let _ = Command::new(REAL_DOCKER).args(["rmi", reference]).output();
    ok
}

#[test]
fn online_registries_and_base_platforms() {
    let present = engine_present() && registry_up(5000) && registry_up(5001);
    if !require(
        "the engine and the registries on 127.0.0.1:5000/5001",
        present,
    ) {
        return;
    }
    let base = "127.0.0.1:5000/multiarch-doctor-e2e/base:amd64-only";
    assert!(push_amd64_base(base), "could not push {base}");
    let dir = project(None);
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("ARG BASE={base}\nFROM $BASE\nENTRYPOINT [\"/busybox\"]\n"),
    )
    .unwrap();
    let conf = tempfile::tempdir().unwrap();

    // no credentials: the 401 is named, with the registry
    let out = doctor(dir.path(), conf.path())
        .args(["doctor", "--online", "--format", "json"])
        .run();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let r = parse(&out);
    let auth = r.get("registry.auth");
    assert_eq!(auth.status, "fail");
    assert!(auth.summary.contains("127.0.0.1:5001") && auth.summary.contains("401 Unauthorized"));
    let open = r.get("registry.open");
    assert_eq!(open.status, "ok", "{open:?}");
    // the open registry needs no login: no warning for it online
    assert_eq!(r.get("credentials.open").status, "ok");
    let b = r.get("base.app");
    assert_eq!(b.status, "fail", "{b:?}");
    assert!(b.summary.contains("Dockerfile:2") && b.summary.contains("has no linux/arm64"));
    assert!(b.summary.contains("offers linux/amd64"), "{}", b.summary);

    // wrong password: refused, 401, the variable named
    let out = doctor(dir.path(), conf.path())
        .env("MULTIARCH_DOCTOR_E2E_USER", "multiarch")
        .env("MULTIARCH_DOCTOR_E2E_PASSWORD", "not-the-password")
        .args(["doctor", "--online", "--format", "json"])
        .run();
    let r = parse(&out);
    let auth = r.get("registry.auth");
    assert_eq!(auth.status, "fail");
    assert!(auth
        .summary
        .contains("refused the credentials from $MULTIARCH_DOCTOR_E2E_USER"));
    assert!(!out.stdout.contains("not-the-password"));

    // the right password: logged in
    let out = doctor(dir.path(), conf.path())
        .env("MULTIARCH_DOCTOR_E2E_USER", "multiarch")
        .env("MULTIARCH_DOCTOR_E2E_PASSWORD", "multiarch-secret-pw")
        .args(["doctor", "--online", "--format", "json"])
        .run();
    let r = parse(&out);
    assert_eq!(
        r.get("registry.auth").status,
        "ok",
        "{:?}",
        r.get("registry.auth")
    );
    assert!(!out.stdout.contains("multiarch-secret-pw"));
}
