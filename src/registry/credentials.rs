//! Where credentials for a registry come from, in this order:
//!
//! 1. the registry's `username-env` / `password-env` variables, when both are set and non-empty;
//! 2. the docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    a. `credHelpers[host]`: run `docker-credential-NAME get` with the server on stdin;
//!    b. `credsStore`: the same with the default helper;
//!    c. `auths[host].auth` (base64 `user:password`) or `auths[host].identitytoken`.
//!
//! Docker keeps Docker Hub's entry under `https://index.docker.io/v1/`, and other registries
//! under the host, sometimes with a scheme or a `/v1/` or `/v2/` path; every spelling is tried.
//! `credsStore` is asked before `auths` because that is what the docker CLI does, but a store
//! whose program is missing (a config copied from a Mac naming `osxkeychain`) falls through to
//! `auths` instead of failing.
//!
//! Every lookup goes through a [`Environment`], so tests give a fake environment (PATH, HOME,
//! variables) instead of changing the process's own, which parallel tests share.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use super::auth::{CredentialSource, Credentials, Secret};
use crate::reference::{DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_AUTH_KEY};

/// Reads environment variables; the process environment by default, a map in tests.
pub trait Environment: Send + Sync {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// The parts of `config.json` that hold credentials. No `Debug`: it holds secrets.
#[derive(Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The docker config file this environment uses.
pub fn docker_config_path(env: &dyn Environment) -> Option<PathBuf> {
    if let Some(dir) = env.var("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    env.var("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The keys under which docker may have stored credentials for `host`, best first.
pub fn config_keys(host: &str) -> Vec<String> {
    if host == DOCKER_HUB || host == DOCKER_HUB_API || host == "index.docker.io" {
        return vec![
            DOCKER_HUB_AUTH_KEY.to_string(),
            "index.docker.io".to_string(),
            "docker.io".to_string(),
            "registry-1.docker.io".to_string(),
            "https://registry-1.docker.io".to_string(),
        ];
    }
    vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
        format!("http://{host}/v1/"),
    ]
}

/// Normalises a config key the way the docker CLI does: no scheme, no path.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Finds credentials for `host` (a registry name as the project writes it: `docker.io`,
/// `ghcr.io`, `127.0.0.1:5001`). `env_vars` are the registry's `username-env` and
/// `password-env`, if it names them. `None` means anonymous.
pub fn find(
    host: &str,
    env_vars: Option<(&str, &str)>,
    env: &dyn Environment,
) -> Option<Credentials> {
    if let Some((u, p)) = env_vars {
        if let (Some(user), Some(pass)) = (env.var(u), env.var(p)) {
            if !user.is_empty() && !pass.is_empty() {
                return Some(Credentials {
                    username: user,
                    secret: Secret::new(pass),
                    identity_token: false,
                    source: CredentialSource::Env {
                        username_var: u.to_string(),
                        password_var: p.to_string(),
                    },
                });
            }
        }
    }
    let path = docker_config_path(env)?;
    let text = std::fs::read_to_string(&path).ok()?;
    let config: DockerConfig = serde_json::from_str(&text).ok()?;
    from_config(host, &config, &path, env)
}

fn from_config(
    host: &str,
    config: &DockerConfig,
    path: &Path,
    env: &dyn Environment,
) -> Option<Credentials> {
    let keys = config_keys(host);
    let wanted = key_host(&keys[0]).to_string();
    let hub = keys[0] == DOCKER_HUB_AUTH_KEY;
    let matches = |k: &str| keys.iter().any(|x| x == k) || (!hub && key_host(k) == wanted);
    // The server name handed to a helper: what `docker login` stored it under.
    let server = if hub {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        host.to_string()
    };
    if let Some((_, helper)) = config.cred_helpers.iter().find(|(k, _)| matches(k)) {
        if let Some(c) = run_helper(helper, &server, env) {
            return Some(c);
        }
    }
    if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
        if let Some(c) = run_helper(store, &server, env) {
            return Some(c);
        }
    }
    // Exact keys first, in preference order, then any spelling of the same host.
    let entry = keys
        .iter()
        .find_map(|k| config.auths.get(k).map(|e| (k.clone(), e)))
        .or_else(|| {
            config
                .auths
                .iter()
                .find(|(k, _)| matches(k))
                .map(|(k, e)| (k.clone(), e))
        })?;
    let (key, entry) = entry;
    let source = CredentialSource::DockerConfig {
        path: path.display().to_string(),
        key,
    };
    if let Some(tok) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        let username = entry
            .auth
            .as_deref()
            .and_then(decode_auth)
            .map(|(u, _)| u)
            .unwrap_or_else(|| "<token>".into());
        return Some(Credentials {
            username,
            secret: Secret::new(tok),
            identity_token: true,
            source,
        });
    }
    let (username, password) = entry.auth.as_deref().and_then(decode_auth)?;
    Some(Credentials {
        username,
        secret: Secret::new(password),
        identity_token: false,
        source,
    })
}

/// Decodes an `auths` entry: base64 of `user:password`.
fn decode_auth(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    if u.is_empty() && p.is_empty() {
        return None;
    }
    Some((u.to_string(), p.to_string()))
}

/// Finds `docker-credential-NAME` on the environment's PATH.
fn find_helper(name: &str, env: &dyn Environment) -> Option<PathBuf> {
    if name.contains('/') {
        return None;
    }
    let exe = format!("docker-credential-{name}");
    let path = env.var("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(&exe))
        .find(|p| p.is_file())
}

/// Runs `docker-credential-NAME get` with the server on stdin. A helper that is missing, fails
/// ("credentials not found in native keychain") or answers with nothing gives `None`.
fn run_helper(name: &str, server: &str, env: &dyn Environment) -> Option<Credentials> {
    let program = find_helper(name, env)?;
    let mut cmd = Command::new(&program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = env.var("PATH") {
        cmd.env("PATH", p);
    }
    let mut child = cmd.spawn().ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).ok()?;
    if answer.secret.is_empty() {
        return None;
    }
    Some(Credentials {
        identity_token: answer.username == "<token>",
        username: answer.username,
        secret: Secret::new(answer.secret),
        source: CredentialSource::Helper {
            name: name.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn env_with(dir: &Path, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("DOCKER_CONFIG".into(), dir.display().to_string());
        m.insert("PATH".into(), dir.join("bin").display().to_string());
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn write_config(dir: &Path, json: &str) {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    #[test]
    fn env_variables_come_first() {
        let d = tempfile::tempdir().unwrap();
        write_config(
            d.path(),
            &format!(
                r#"{{"auths":{{"r.example":{{"auth":"{}"}}}}}}"#,
                b64("cfg:pw")
            ),
        );
        let env = env_with(d.path(), &[("U", "envuser"), ("P", "envpw")]);
        let c = find("r.example", Some(("U", "P")), &env).unwrap();
        assert_eq!(c.username, "envuser");
        assert_eq!(c.secret.expose(), "envpw");
        assert!(matches!(c.source, CredentialSource::Env { .. }));
        // Unset variables fall back to the docker config.
        let env = env_with(d.path(), &[]);
        let c = find("r.example", Some(("U", "P")), &env).unwrap();
        assert_eq!(c.username, "cfg");
    }

    #[test]
    fn auths_entries_with_any_spelling_of_the_host() {
        let d = tempfile::tempdir().unwrap();
        write_config(
            d.path(),
            &format!(
                r#"{{"auths":{{"https://127.0.0.1:5001/v2/":{{"auth":"{}"}},"other":{{}}}}}}"#,
                b64("multiarch:pw:with:colons")
            ),
        );
        let env = env_with(d.path(), &[]);
        let c = find("127.0.0.1:5001", None, &env).unwrap();
        assert_eq!(c.username, "multiarch");
        assert_eq!(c.secret.expose(), "pw:with:colons");
        assert!(find("127.0.0.1:5000", None, &env).is_none());
    }

    #[test]
    fn docker_hub_uses_the_index_key() {
        let d = tempfile::tempdir().unwrap();
        write_config(
            d.path(),
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
                b64("hubuser:hubpw")
            ),
        );
        let env = env_with(d.path(), &[]);
        for host in ["docker.io", "registry-1.docker.io"] {
            let c = find(host, None, &env).unwrap();
            assert_eq!(c.username, "hubuser");
        }
        assert!(find("ghcr.io", None, &env).is_none());
    }

    #[cfg(unix)]
    fn write_helper(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("bin").join(format!("docker-credential-{name}"));
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn helpers_get_the_server_on_stdin() {
        let d = tempfile::tempdir().unwrap();
        write_config(
            d.path(),
            &format!(
                r#"{{"credHelpers":{{"ghcr.io":"fake"}},"credsStore":"store","auths":{{"plain.example":{{"auth":"{}"}}}}}}"#,
                b64("fileuser:filepw")
            ),
        );
        // The helper answers only for the server it was asked about, echoing it back.
        let dir = d.path().display();
        write_helper(
            d.path(),
            "fake",
            &format!(
                "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread s\necho \"$s\" > {dir}/asked\n[ \"$s\" = ghcr.io ] || {{ echo 'credentials not found' >&2; exit 1; }}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"ghuser\",\"Secret\":\"ghp_x\"}}' \"$s\"\n"
            ),
        );
        write_helper(
            d.path(),
            "store",
            "#!/bin/sh\nread s\n[ \"$s\" = https://index.docker.io/v1/ ] || exit 1\necho '{\"Username\":\"<token>\",\"Secret\":\"idtok\"}'\n",
        );
        let env = env_with(d.path(), &[]);
        let c = find("ghcr.io", None, &env).unwrap();
        assert_eq!(c.username, "ghuser");
        assert_eq!(c.secret.expose(), "ghp_x");
        assert_eq!(
            c.source,
            CredentialSource::Helper {
                name: "fake".into()
            }
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("asked"))
                .unwrap()
                .trim(),
            "ghcr.io"
        );
        // credsStore answers Docker Hub with an identity token.
        let c = find("docker.io", None, &env).unwrap();
        assert!(c.identity_token);
        assert_eq!(c.secret.expose(), "idtok");
        // The store knows nothing of this host: auths is used.
        let c = find("plain.example", None, &env).unwrap();
        assert_eq!(c.username, "fileuser");
        // A store whose program is missing falls through too.
        write_config(d.path(), r#"{"credsStore":"missing","auths":{}}"#);
        assert!(find("plain.example", None, &env).is_none());
    }
}
