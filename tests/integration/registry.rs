//! Integration tests: the registry client against the reference registry (`docker-registry`)
//! on loopback, with images built by the real engine from static busybox, `FROM scratch`.
//!
//! Needs `scripts/setup-test-env.sh`: dockerd, 127.0.0.1:5000 (open), 127.0.0.1:5001
//! (htpasswd `multiarch` / `multiarch-secret-pw`), busybox under /var/lib/multiarch-test.
//! Each test uses its own repository names, so they run in parallel.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{require, Test};

const OPEN: &str = "127.0.0.1:5000";
const AUTH: &str = "127.0.0.1:5001";
const USER: &str = "multiarch";
const PASSWORD: &str = "multiarch-secret-pw";
const DOCKER: &str = "/usr/bin/docker";

fn busybox(arch: &str) -> PathBuf {
    PathBuf::from(format!("/var/lib/multiarch-test/busybox/{arch}/busybox"))
}

fn reachable(addr: &str) -> bool {
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok()
}

/// The registries, the engine and busybox are there (or the test is skipped, or fails under
/// MULTIARCH_E2E=1).
fn ready() -> bool {
    let engine = Path::new(DOCKER).exists()
        && Command::new(DOCKER)
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .is_ok_and(|o| o.status.success());
    require("the local registry on 127.0.0.1:5000", reachable(OPEN))
        && require("the htpasswd registry on 127.0.0.1:5001", reachable(AUTH))
        && require("a running docker engine (/usr/bin/docker)", engine)
        && require(
            "static busybox under /var/lib/multiarch-test/busybox",
            busybox("amd64").exists() && busybox("arm64").exists(),
        )
}

/// A repository name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!(
        "mt/{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{:?} failed\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn docker(config: &Path) -> Command {
    let mut c = Command::new(DOCKER);
    c.env("DOCKER_BUILDKIT", "1").env("DOCKER_CONFIG", config);
    c
}

/// Builds `FROM scratch` + busybox for `platform` (with the busybox of `binary_arch`), pushes it
/// as `OPEN/repo:tag`.
fn build_and_push(dir: &Path, repo: &str, tag: &str, platform: &str, binary_arch: &str) -> String {
    let ctx = dir.join(format!("ctx-{tag}"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(busybox(binary_arch), ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"echo\", \"hello\"]\n",
    )
    .unwrap();
    let image = format!("{OPEN}/{repo}:{tag}");
    let cfg = dir.join("docker-config");
    run(docker(&cfg)
        .args([
            "build",
            "--network",
            "none",
            "--platform",
            platform,
            "-t",
            &image,
        ])
        .arg(&ctx));
    run(docker(&cfg).args(["push", &image]));
    image
}

/// Pushes an index `OPEN/repo:tag` made of these (platform, busybox arch) images.
fn push_index(dir: &Path, repo: &str, tag: &str, parts: &[(&str, &str)]) -> String {
    let cfg = dir.join("docker-config");
    let mut images = Vec::new();
    for (platform, arch) in parts {
        let suffix = platform.replace('/', "-");
        images.push(build_and_push(
            dir,
            repo,
            &format!("{tag}-{suffix}"),
            platform,
            arch,
        ));
    }
    let list = format!("{OPEN}/{repo}:{tag}");
    run(docker(&cfg)
        .args(["manifest", "create", "--insecure", &list])
        .args(&images));
    run(docker(&cfg).args(["manifest", "push", "--insecure", &list]));
    list
}

/// A project publishing `repo` to the open registry (and the authenticated one as "auth").
fn project(dir: &Path, repo: &str, registries: &str, platforms: &str) -> PathBuf {
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    let file = dir.join("multiarch.toml");
    std::fs::write(
        &file,
        format!(
            r#"[project]
name = "registry-test"

[release]
version-from = "1.0.0"

[registries.local]
host = "{OPEN}"

[registries.auth]
host = "{AUTH}"
username-env = "MT_REGISTRY_USER"
password-env = "MT_REGISTRY_PASSWORD"

[images.app]
context = "."
repository = "{repo}"
platforms = [{platforms}]
registries = [{registries}]
tags = ["{{{{ version }}}}"]
"#
        ),
    )
    .unwrap();
    file
}

fn verify(dir: &Path, extra: &[&str]) -> Test {
    Test::new()
        .dir(dir)
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .args(["verify"])
        .args(extra)
}

const TWO: &str = r#""linux/amd64", "linux/arm64""#;

#[test]
fn a_two_platform_index_verifies() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = unique("two");
    push_index(
        d.path(),
        &repo,
        "1.0.0",
        &[("linux/amd64", "amd64"), ("linux/arm64", "arm64")],
    );
    project(d.path(), &repo, r#""local""#, TWO);
    let out = verify(d.path(), &["--deep"]).code(0);
    assert!(
        out.stdout.contains(&format!("ok   {OPEN}/{repo}:1.0.0")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("linux/arm64: /bin/busybox is ELF 64-bit LSB AArch64"),
        "{}",
        out.stdout
    );
    // JSON for scripts.
    let out = verify(d.path(), &["--format", "json"]).code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let plats: Vec<&str> = v["checks"][0]["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);
    // inspect lists the same.
    let out = Test::new()
        .dir(d.path())
        .args([
            "inspect",
            "--format",
            "json",
            &format!("{OPEN}/{repo}:1.0.0"),
        ])
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["index"], true);
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["digest"],
        serde_json::Value::from(
            serde_json::from_str::<serde_json::Value>(
                &verify(d.path(), &["--format", "json"]).code(0).stdout
            )
            .unwrap()["checks"][0]["digest"]
                .as_str()
                .unwrap()
        )
    );
}

#[test]
fn an_arm64_only_tag_fails_naming_amd64() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = unique("armonly");
    // The seed's story: an index holding only arm64, and a bare arm64 image under a tag.
    push_index(d.path(), &repo, "1.0.0", &[("linux/arm64", "arm64")]);
    project(d.path(), &repo, r#""local""#, TWO);
    let out = verify(d.path(), &[]).code(1);
    assert!(
        out.stdout.contains("missing platform linux/amd64"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("FAIL"), "{}", out.stdout);

    let single = build_and_push(d.path(), &repo, "2.0.0", "linux/arm64", "arm64");
    assert!(single.ends_with(":2.0.0"));
    let out = verify(d.path(), &["--version", "2.0.0", "--format", "json"]).code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let kinds: Vec<&str> = v["checks"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["not-an-index", "missing-platform"],
        "{}",
        out.stdout
    );
    assert_eq!(v["checks"][0]["findings"][1]["platform"], "linux/amd64");
    // A tag that does not exist at all.
    let out = verify(d.path(), &["--version", "9.9.9"]).code(1);
    assert!(out.stdout.contains("does not exist"), "{}", out.stdout);
}

#[test]
fn an_index_with_an_attestation_entry_verifies() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = unique("attest");
    push_index(
        d.path(),
        &repo,
        "base",
        &[("linux/amd64", "amd64"), ("linux/arm64", "arm64")],
    );
    // Craft what BuildKit pushes: an attestation manifest (in-toto layer), and the index with
    // an extra entry for it, platform unknown/unknown, annotated vnd.docker.reference.type.
    let agent = ureq::Agent::new_with_defaults();
    let base = format!("http://{OPEN}/v2/{repo}");
    let put_blob = |bytes: &[u8]| -> String {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let resp = agent
            .post(&format!("{base}/blobs/uploads/"))
            .send_empty()
            .unwrap();
        let loc = resp
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let loc = if loc.starts_with('/') {
            format!("http://{OPEN}{loc}")
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = agent
            .put(&format!("{loc}{sep}digest={digest}"))
            .send(bytes)
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        digest
    };
    let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[]}"#;
    let cfg_digest = put_blob(config);
    let layer_digest = put_blob(statement);
    let index_raw = agent
        .get(&format!("{base}/manifests/base"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let index: serde_json::Value = serde_json::from_str(&index_raw).unwrap();
    let amd64_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let att = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer_digest, "size": statement.len(),
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]
    });
    let att_bytes = serde_json::to_vec(&att).unwrap();
    let att_digest = format!("sha256:{}", sha256_hex(&att_bytes));
    let r = agent
        .put(&format!("{base}/manifests/{att_digest}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(&att_bytes[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let mut entries = index["manifests"].as_array().unwrap().clone();
    for e in &mut entries {
        e["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into();
    }
    entries.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": att_digest, "size": att_bytes.len(),
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {"vnd.docker.reference.digest": amd64_digest, "vnd.docker.reference.type": "attestation-manifest"}
    }));
    let new_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let r = agent
        .put(&format!("{base}/manifests/1.0.0"))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .send(&serde_json::to_vec(&new_index).unwrap()[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{:?}", r);
    project(d.path(), &repo, r#""local""#, TWO);
    let out = verify(d.path(), &["--deep"]).code(0);
    assert!(
        out.stdout.contains("[linux/amd64, linux/arm64]"),
        "{}",
        out.stdout
    );
    // inspect shows the attestation for what it is.
    let out = Test::new()
        .dir(d.path())
        .args(["inspect", &format!("{OPEN}/{repo}:1.0.0")])
        .code(0);
    assert!(out.stdout.contains("unknown/unknown"), "{}", out.stdout);
    assert!(out.stdout.contains("(attestation)"), "{}", out.stdout);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn an_x86_binary_in_the_arm64_entry_fails_only_deep() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = unique("wrongbin");
    // "Downloaded the amd64 release in the Dockerfile": arm64 metadata, x86-64 busybox.
    push_index(
        d.path(),
        &repo,
        "1.0.0",
        &[("linux/amd64", "amd64"), ("linux/arm64", "amd64")],
    );
    project(d.path(), &repo, r#""local""#, TWO);
    verify(d.path(), &[]).code(0);
    let out = verify(d.path(), &["--deep"]).code(1);
    assert!(
        out.stdout.contains("the linux/arm64 image runs /bin/busybox, which is ELF 64-bit LSB x86-64, a linux/amd64 binary"),
        "{}",
        out.stdout
    );
    let out = verify(d.path(), &["--deep", "--format", "json"]).code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let f = &v["checks"][0]["findings"][0];
    assert_eq!(f["kind"], "wrong-binary");
    assert_eq!(f["platform"], "linux/arm64");
}

fn auth_config(dir: &Path, password: &str) -> PathBuf {
    use base64::Engine;
    let cfg = dir.join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    std::fs::write(
        cfg.join("config.json"),
        format!(r#"{{"auths":{{"{AUTH}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    cfg
}

#[test]
fn copy_to_the_authenticated_registry_keeps_the_digest() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = unique("copy");
    push_index(
        d.path(),
        &repo,
        "1.0.0",
        &[("linux/amd64", "amd64"), ("linux/arm64", "arm64")],
    );
    let src_digest = Test::new()
        .args([
            "inspect",
            "--format",
            "json",
            &format!("{OPEN}/{repo}:1.0.0"),
        ])
        .code(0)
        .stdout;
    let src_digest = serde_json::from_str::<serde_json::Value>(&src_digest).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let cfg = auth_config(d.path(), PASSWORD);
    let out = Test::new()
        .env("DOCKER_CONFIG", &cfg)
        .args([
            "copy",
            &format!("{OPEN}/{repo}:1.0.0"),
            &format!("{AUTH}/{repo}:1.0.0"),
        ])
        .code(0);
    assert_eq!(out.stdout.trim(), src_digest);
    assert!(out.stderr.contains("blobs uploaded"), "{}", out.stderr);
    // Within one registry, blobs are mounted, not uploaded again.
    let out = Test::new()
        .env("DOCKER_CONFIG", &cfg)
        .args([
            "copy",
            &format!("{AUTH}/{repo}:1.0.0"),
            &format!("{AUTH}/{repo}-mirror:stable"),
        ])
        .code(0);
    assert_eq!(out.stdout.trim(), src_digest);
    assert!(out.stderr.contains("0 blobs uploaded"), "{}", out.stderr);
    assert!(!out.stderr.contains(" 0 mounted"), "{}", out.stderr);
    // A second copy finds everything there.
    let out = Test::new()
        .env("DOCKER_CONFIG", &cfg)
        .args([
            "copy",
            &format!("{OPEN}/{repo}:1.0.0"),
            &format!("{AUTH}/{repo}:1.0"),
        ])
        .code(0);
    assert!(out.stderr.contains("0 blobs uploaded"), "{}", out.stderr);
    // The project's env credentials verify it there, digest included.
    project(d.path(), &repo, r#""auth""#, TWO);
    let out = Test::new()
        .dir(d.path())
        .env("DOCKER_CONFIG", d.path().join("empty-config"))
        .env("MT_REGISTRY_USER", USER)
        .env("MT_REGISTRY_PASSWORD", PASSWORD)
        .args(["verify", "--deep", "--format", "json"])
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["checks"][0]["digest"], src_digest.as_str());
}

#[test]
fn wrong_credentials_name_the_registry_never_the_password() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let repo = unique("badauth");
    project(d.path(), &repo, r#""auth""#, TWO);
    let wrong = "not-the-Secret-9f3k";
    let out = Test::new()
        .dir(d.path())
        .env("DOCKER_CONFIG", d.path().join("empty-config"))
        .env("MT_REGISTRY_USER", USER)
        .env("MT_REGISTRY_PASSWORD", wrong)
        .args(["verify"])
        .code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(&format!(
            "{AUTH} refused the credentials of user \"{USER}\""
        )),
        "{all}"
    );
    assert!(all.contains("401"), "{all}");
    assert!(all.contains("$MT_REGISTRY_PASSWORD"), "{all}");
    assert!(!all.contains(wrong), "{all}");
    // The same through the docker config, with inspect.
    let cfg = auth_config(d.path(), wrong);
    let out = Test::new()
        .env("DOCKER_CONFIG", &cfg)
        .args(["inspect", &format!("{AUTH}/{repo}:1.0.0")])
        .code(1);
    assert!(
        out.stderr.contains(AUTH) && out.stderr.contains("401"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("docker login 127.0.0.1:5001"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(wrong), "{}", out.stderr);
    // No credentials at all.
    let out = Test::new()
        .env("DOCKER_CONFIG", d.path().join("empty-config"))
        .args(["inspect", &format!("{AUTH}/{repo}:1.0.0")])
        .code(1);
    assert!(out.stderr.contains("requires a login"), "{}", out.stderr);
}

#[test]
fn bad_input_is_exit_2() {
    let d = tempfile::tempdir().unwrap();
    project(d.path(), "mt/x", r#""local""#, TWO);
    let out = verify(d.path(), &["--registry", "locl"]).code(2);
    assert!(
        out.stderr.contains("did you mean \"local\""),
        "{}",
        out.stderr
    );
    Test::new().args(["inspect", "Not A Ref"]).code(2);
    Test::new()
        .args(["copy", "127.0.0.1:5000/a:1", "127.0.0.1:5000/b"])
        .code(2);
}
