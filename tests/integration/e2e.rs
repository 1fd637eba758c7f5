//! End to end, on real parts: the Debian docker.io engine, the reference registry (open on
//! 127.0.0.1:5000, htpasswd on 127.0.0.1:5001), QEMU binfmt handlers, podman and skopeo, all
//! started by `scripts/setup-test-env.sh`. Projects live in folders with non-ASCII names
//! (the seed's story 1). Registries are checked with skopeo, independently of multiarch.
//!
//! Each test uses its own repository names and its own docker config, so tests run in
//! parallel without seeing each other's logins or tags.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{example, require, Output, Test};

const DOCKER: &str = "/usr/bin/docker";
const USER: &str = "multiarch";
const PASSWORD: &str = "multiarch-secret-pw";
const BUSYBOX: &str = "/var/lib/multiarch-test/busybox";

fn reachable(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        std::time::Duration::from_secs(2),
    )
    .is_ok()
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// True when every real component is there; false (test skipped) or a panic under
/// MULTIARCH_E2E=1 otherwise.
fn ready(podman: bool) -> bool {
    let mut missing = Vec::new();
    if !runs(DOCKER, &["info"]) {
        missing.push("a running docker engine (/usr/bin/docker)");
    }
    if !reachable(5000) || !reachable(5001) {
        missing.push("registries on 127.0.0.1:5000 and :5001");
    }
    if !Path::new(BUSYBOX).join("arm64/busybox").is_file() {
        missing.push("static busybox binaries");
    }
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists() {
        missing.push("the qemu-aarch64 binfmt handler");
    }
    if !runs("skopeo", &["--version"]) {
        missing.push("skopeo");
    }
    if podman && !runs("podman", &["--version"]) {
        missing.push("podman");
    }
    require(&missing.join(", "), missing.is_empty())
}

/// A copy of examples/local-e2e in a folder with a non-ASCII name, with the busybox binaries
/// and repository names unique to this test.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
    repo: String,
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("multiarch-e2e/{name}-{}-{nanos}", std::process::id())
}

fn project(name: &str, edit: impl FnOnce(&mut String, &Path)) -> Project {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("发布 项目");
    std::fs::create_dir_all(&dir).unwrap();
    let src = example("local-e2e");
    for f in ["Dockerfile", "multiarch.toml", ".dockerignore"] {
        if src.join(f).exists() {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
    }
    for arch in ["amd64", "arm64"] {
        std::fs::create_dir_all(dir.join(arch)).unwrap();
        std::fs::copy(
            Path::new(BUSYBOX).join(arch).join("busybox"),
            dir.join(arch).join("busybox"),
        )
        .unwrap();
    }
    let repo = unique(name);
    let mut toml = std::fs::read_to_string(dir.join("multiarch.toml")).unwrap();
    toml = toml.replace(
        "repository = \"multiarch-e2e/hello\"",
        &format!("repository = \"{repo}\""),
    );
    assert!(
        toml.contains(&repo),
        "the example's repository line changed"
    );
    edit(&mut toml, &dir);
    std::fs::write(dir.join("multiarch.toml"), toml).unwrap();
    let config = tmp.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    Project {
        _tmp: tmp,
        dir,
        config,
        repo,
    }
}

impl Project {
    fn multiarch(&self) -> Test {
        Test::new()
            .dir(&self.dir)
            .env("MULTIARCH_DOCKER", DOCKER)
            .env("DOCKER_CONFIG", &self.config)
            .env("REGISTRY_AUTH_FILE", self.config.join("auth.json"))
            .env("DOCKER_BUILDKIT", "1")
            .env("MULTIARCH_TEST_USER", USER)
            .env("MULTIARCH_TEST_PASSWORD", PASSWORD)
    }
}

/// A second build context `name/` in a test project: busybox for both architectures, and a
/// Dockerfile that copies the right one and then runs `steps`.
fn busybox_context(dir: &Path, name: &str, steps: &str) {
    for arch in ["amd64", "arm64"] {
        std::fs::create_dir_all(dir.join(name).join(arch)).unwrap();
        std::fs::copy(
            Path::new(BUSYBOX).join(arch).join("busybox"),
            dir.join(name).join(arch).join("busybox"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join(name).join("Dockerfile"),
        format!("FROM scratch\nARG TARGETARCH\nCOPY ${{TARGETARCH}}/busybox /bin/busybox\n{steps}"),
    )
    .unwrap();
}

/// The raw manifest at a tag, read by skopeo (not by multiarch).
fn raw_manifest(port: u16, repo: &str, tag: &str) -> Option<serde_json::Value> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if port == 5001 {
        cmd.args(["--creds", &format!("{USER}:{PASSWORD}")]);
    }
    cmd.arg(format!("docker://127.0.0.1:{port}/{repo}:{tag}"));
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn platforms_of(index: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|d| d["platform"]["os"] != "unknown")
                .map(|d| {
                    format!(
                        "{}/{}",
                        d["platform"]["os"].as_str().unwrap_or(""),
                        d["platform"]["architecture"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn assert_index(port: u16, repo: &str, tag: &str) -> serde_json::Value {
    let m = raw_manifest(port, repo, tag)
        .unwrap_or_else(|| panic!("127.0.0.1:{port}/{repo}:{tag} is missing"));
    let mt = m["mediaType"].as_str().unwrap_or("");
    assert!(
        mt.contains("manifest.list") || mt.contains("image.index"),
        "{tag} is not an index: {mt}"
    );
    assert_eq!(
        platforms_of(&m),
        vec!["linux/amd64", "linux/arm64"],
        "{repo}:{tag}"
    );
    m
}

/// Messages as one line: miette wraps long lines and draws a margin.
fn flat(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn no_secret(out: &Output) {
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password was printed"
    );
}

fn release_and_check(backend: &str) {
    let p = project(backend, |_, _| {});
    let out = p
        .multiarch()
        .args(["apply", "--backend", backend, "--version", "1.2.3"])
        .run();
    assert_eq!(out.code, 0, "apply failed:\n{}", out.stderr);
    no_secret(&out);
    for port in [5000, 5001] {
        let first = assert_index(port, &p.repo, "1.2.3");
        for tag in ["1.2", "latest"] {
            let m = assert_index(port, &p.repo, tag);
            assert_eq!(m, first, "{tag} is not the same index as 1.2.3");
        }
    }
    // The arm64 image really is arm64: it runs under QEMU and says so.
    let image = format!("127.0.0.1:5000/{}:1.2.3", p.repo);
    let run = Command::new(DOCKER)
        .args(["run", "--rm", "--platform", "linux/arm64", &image])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "aarch64");
    // And multiarch's own verify agrees, for every tag.
    let v = p.multiarch().args(["verify", "--version", "1.2.3"]).run();
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

#[test]
fn docker_backend_releases_two_platforms() {
    if ready(false) {
        release_and_check("docker");
    }
}

#[test]
fn podman_backend_releases_two_platforms() {
    if ready(true) {
        release_and_check("podman");
    }
}

#[test]
fn load_with_two_platforms_builds_each_into_the_local_store() {
    if !ready(false) {
        return;
    }
    let p = project("load", |_, _| {});
    let out = p
        .multiarch()
        .args([
            "apply",
            "--load",
            "--backend",
            "docker",
            "--version",
            "0.9.0",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out
        .stderr
        .contains("does not currently support exporting manifest lists"));
    for sfx in ["amd64", "arm64"] {
        let name = format!("127.0.0.1:5000/{}:0.9.0-{sfx}", p.repo);
        let arch = Command::new(DOCKER)
            .args(["image", "inspect", "--format", "{{.Architecture}}", &name])
            .output()
            .unwrap();
        assert!(arch.status.success(), "{name} was not loaded");
        assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), sfx);
    }
    // The host's platform also carries the release's names; nothing was pushed.
    let local = format!("127.0.0.1:5000/{}:0.9.0", p.repo);
    assert!(
        runs(DOCKER, &["image", "inspect", &local]),
        "{local} missing"
    );
    assert!(
        raw_manifest(5000, &p.repo, "0.9.0").is_none(),
        "--load pushed"
    );
}

#[test]
fn a_failed_build_publishes_no_tag_at_all() {
    if !ready(false) {
        return;
    }
    let broken_repo = unique("broken");
    let p = project("fails", |toml, dir| {
        busybox_context(
            dir,
            "broken",
            "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo about to fail; exit 3\"]\n",
        );
        toml.push_str(&format!(
            "\n[images.broken]\ncontext = \"broken\"\nrepository = \"{broken_repo}\"\n"
        ));
    });
    let out = p
        .multiarch()
        .args([
            "apply",
            "--backend",
            "docker",
            "--version",
            "2.0.0",
            "--jobs",
            "2",
        ])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("failed"), "{}", out.stderr);
    assert!(out.stderr.contains("exit code"), "{}", out.stderr);
    assert!(
        out.stderr.contains("about to fail"),
        "the failing step's last lines are shown:\n{}",
        out.stderr
    );
    assert!(
        flat(&out.stderr).contains("no floating tag was moved"),
        "{}",
        out.stderr
    );
    for tag in ["2.0.0", "2.0", "latest"] {
        assert!(
            raw_manifest(5000, &p.repo, tag).is_none(),
            "{tag} was published despite the failure"
        );
    }
}

#[test]
fn a_registry_that_needs_a_login_is_refused_up_front_then_released() {
    if !ready(false) {
        return;
    }
    let p = project("auth", |toml, _| {
        *toml = toml.replace(
            "registries = [\"local\", \"auth\"]",
            "registries = [\"auth\"]",
        );
    });
    let out = p
        .multiarch()
        .env_remove("MULTIARCH_TEST_USER")
        .env_remove("MULTIARCH_TEST_PASSWORD")
        .args(["apply", "--backend", "docker", "--version", "1.0.0"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let msg = flat(&out.stderr);
    assert!(
        msg.contains("no credentials for registry \"auth\""),
        "{}",
        out.stderr
    );
    assert!(
        msg.contains("docker login 127.0.0.1:5001"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("MULTIARCH_TEST_USER"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("build-"),
        "something was built:\n{}",
        out.stderr
    );
    let out = p
        .multiarch()
        .args(["apply", "--backend", "docker", "--version", "1.0.0"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    no_secret(&out);
    assert_index(5001, &p.repo, "1.0.0");
    assert_index(5001, &p.repo, "latest");
}

#[test]
fn resume_finishes_without_rebuilding_what_was_pushed() {
    if !ready(false) {
        return;
    }
    let dep_repo = unique("late");
    let p = project("resume", |toml, dir| {
        busybox_context(dir, "late", "RUN [\"/bin/busybox\", \"test\", \"-e\", \"/bin/busybox\"]\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"test -e /ready-$TARGETARCH || { echo not ready; exit 1; }\"]\n");
        toml.push_str(&format!("\n[images.late]\ncontext = \"late\"\nrepository = \"{dep_repo}\"\nregistries = [\"local\"]\n"));
    });
    let first = p
        .multiarch()
        .args([
            "apply",
            "--backend",
            "docker",
            "--version",
            "3.0.0",
            "--jobs",
            "1",
        ])
        .run();
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(first.stderr.contains("--resume"), "{}", first.stderr);
    // Fix the cause (same plan: the Dockerfile's content is not part of it) and resume.
    std::fs::write(
        p.dir.join("late/Dockerfile"),
        "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"test\", \"-e\", \"/bin/busybox\"]\n",
    )
    .unwrap();
    let second = p
        .multiarch()
        .args([
            "apply",
            "--backend",
            "docker",
            "--version",
            "3.0.0",
            "--jobs",
            "1",
            "--resume",
        ])
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("resuming:"), "{}", second.stderr);
    for hello_step in [
        "build-hello-linux-amd64",
        "build-hello-linux-arm64",
        "push-hello-local-linux-amd64",
    ] {
        assert!(
            !second.stderr.contains(&format!("[{hello_step}] start")),
            "{hello_step} ran again:\n{}",
            second.stderr
        );
    }
    assert_index(5000, &p.repo, "3.0.0");
    assert_index(5000, &dep_repo, "latest");
}

#[test]
fn dry_run_touches_nothing() {
    if !ready(false) {
        return;
    }
    let p = project("dry", |_, _| {});
    let out = p
        .multiarch()
        .args([
            "apply",
            "--dry-run",
            "--backend",
            "docker",
            "--version",
            "1.0.0",
        ])
        .code(0);
    assert!(
        out.stdout.contains("docker build --platform linux/arm64"),
        "{}",
        out.stdout
    );
    assert!(raw_manifest(5000, &p.repo, "1.0.0").is_none());
    assert!(!p.dir.join(".multiarch/journal.json").exists());
}

#[test]
fn apply_checks_the_machine_before_building() {
    if !ready(false) {
        return;
    }
    // buildx is not installed here: the default backend must stop before anything runs.
    let p = project("preflight", |_, _| {});
    let out = p.multiarch().args(["apply", "--version", "1.0.0"]).run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let msg = flat(&out.stderr);
    assert!(msg.contains("buildx"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("start:"),
        "a step ran:\n{}",
        out.stderr
    );
    assert!(raw_manifest(5000, &p.repo, "1.0.0").is_none());
}

#[test]
fn apply_runs_a_saved_plan_and_refuses_one_of_another_format() {
    if !ready(false) {
        return;
    }
    let p = project("saved", |_, _| {});
    let plan = p.dir.join("plan.json");
    p.multiarch()
        .args([
            "plan",
            "--backend",
            "docker",
            "--version",
            "4.0.0",
            "--format",
            "json",
            "-o",
        ])
        .arg(&plan)
        .code(0);
    let out = p.multiarch().arg("apply").arg(&plan).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_index(5000, &p.repo, "4.0.0");
    assert_index(5001, &p.repo, "latest");
    // A plan written by another format version is refused before anything runs.
    let text = std::fs::read_to_string(&plan).unwrap();
    let old = p.dir.join("old-plan.json");
    std::fs::write(
        &old,
        text.replacen("\"format-version\": 1", "\"format-version\": 0", 1),
    )
    .unwrap();
    let out = p.multiarch().arg("apply").arg(&old).run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        flat(&out.stderr).contains("format version 0"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_existing_docker_login_serves_when_the_variables_are_unset() {
    if !ready(false) {
        return;
    }
    let p = project("config-login", |toml, _| {
        *toml = toml.replace(
            "registries = [\"local\", \"auth\"]",
            "registries = [\"auth\"]",
        );
    });
    let mut login = Command::new(DOCKER)
        .args([
            "login",
            "127.0.0.1:5001",
            "--username",
            USER,
            "--password-stdin",
        ])
        .env("DOCKER_CONFIG", &p.config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    login
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(login.wait().unwrap().success());
    let out = p
        .multiarch()
        .env_remove("MULTIARCH_TEST_USER")
        .env_remove("MULTIARCH_TEST_PASSWORD")
        .args(["apply", "--backend", "docker", "--version", "5.0.0"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    no_secret(&out);
    assert_index(5001, &p.repo, "5.0.0");
}
