//! Registry authentication: the `WWW-Authenticate` challenge, credentials that never print
//! themselves, and the token request of Docker's token authentication specification.
//!
//! A registry answers an unauthenticated request with `401` and a challenge:
//!
//! ```text
//! WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"
//! WWW-Authenticate: Basic realm="Registry Realm"
//! ```
//!
//! For `Basic`, the client repeats the request with `Authorization: Basic base64(user:password)`.
//! For `Bearer`, it asks the realm for a token (`GET realm?service=S&scope=A&scope=B`, with Basic
//! credentials when it has some, or an OAuth2 `refresh_token` POST when the credential is an
//! identity token) and repeats the request with `Authorization: Bearer TOKEN`. Anonymous pulls
//! of public images on Docker Hub and GHCR are bearer tokens obtained without credentials.

use std::fmt;

use base64::Engine;

/// A secret value (password, identity token, bearer token). Its `Debug` and `Display` print
/// `****`, so a secret cannot leak through `{:?}` in a log line or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself: call only where it is sent to the registry.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Where a credential came from: named in messages so the user knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The registry's `username-env` / `password-env` variables.
    Env {
        /// Variable holding the user name.
        username_var: String,
        /// Variable holding the password.
        password_var: String,
    },
    /// An `auths` entry of the docker config file.
    DockerConfig {
        /// The config file.
        path: String,
        /// The key of the entry.
        key: String,
    },
    /// A credential helper (`docker-credential-NAME`).
    Helper {
        /// The helper's suffix (`desktop`, `osxkeychain`, `ecr-login`, ...).
        name: String,
    },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Env {
                username_var,
                password_var,
            } => write!(f, "${username_var} / ${password_var}"),
            CredentialSource::DockerConfig { path, key } => write!(f, "{path} (auths.\"{key}\")"),
            CredentialSource::Helper { name } => write!(f, "docker-credential-{name}"),
        }
    }
}

/// A user name with a password or an identity token. `Debug` hides the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (`<token>` for an identity token from a helper).
    pub username: String,
    /// Password or identity token.
    pub secret: Secret,
    /// True when `secret` is an OAuth2 refresh ("identity") token rather than a password.
    pub identity_token: bool,
    /// Where it came from.
    pub source: CredentialSource,
}

impl Credentials {
    /// The `Authorization: Basic ...` value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// One authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`.
    Bearer {
        /// The token service URL.
        realm: String,
        /// The `service` parameter to pass back.
        service: Option<String>,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235: a header may hold several,
/// `Basic realm="a", Bearer realm="b"`). Unknown schemes are skipped. Parameter names are
/// case-insensitive; values may be quoted strings with `\` escapes or bare tokens.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    let mut rest = header.trim();
    let flush = |c: Option<(String, Vec<(String, String)>)>, out: &mut Vec<Challenge>| {
        let Some((scheme, params)) = c else { return };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = get("realm") {
                    out.push(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    });
                }
            }
            _ => {}
        }
    };
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        let after = rest[end..].trim_start_matches([' ', '\t']);
        if let Some(value_part) = after.strip_prefix('=') {
            // A parameter of the current challenge.
            let value_part = value_part.trim_start();
            let (value, remaining) = if let Some(q) = value_part.strip_prefix('"') {
                let mut v = String::new();
                let mut chars = q.char_indices();
                let mut consumed = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                v.push(n);
                            }
                        }
                        '"' => {
                            consumed = i + 1;
                            break;
                        }
                        _ => v.push(c),
                    }
                }
                (v, &q[consumed..])
            } else {
                let e = value_part.find(',').unwrap_or(value_part.len());
                (value_part[..e].trim().to_string(), &value_part[e..])
            };
            if let Some((_, params)) = current.as_mut() {
                params.push((token.to_ascii_lowercase(), value));
            }
            rest = remaining;
        } else {
            // A new scheme.
            flush(current.take(), &mut out);
            current = Some((token.to_string(), Vec::new()));
            rest = after;
        }
    }
    flush(current, &mut out);
    out
}

/// The scope string for a repository: `repository:NAME:pull` or `repository:NAME:pull,push`.
pub fn repository_scope(repository: &str, push: bool) -> String {
    format!(
        "repository:{repository}:{}",
        if push { "pull,push" } else { "pull" }
    )
}

/// The token service's answer: Docker's `token`, or OAuth2's `access_token`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
}

impl TokenResponse {
    pub fn into_secret(self) -> Option<Secret> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
    }
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_bearer_challenge() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            }]
        );
    }

    #[test]
    fn parses_basic_and_several_challenges() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        let both = r#"Basic realm="a b, c", Bearer Realm="https://ghcr.io/token", service=ghcr.io"#;
        assert_eq!(
            parse_challenges(both),
            vec![
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "https://ghcr.io/token".into(),
                    service: Some("ghcr.io".into()),
                    scope: None,
                }
            ]
        );
    }

    #[test]
    fn tolerates_escapes_unknown_schemes_and_junk() {
        let h = r#"Negotiate, Bearer realm="https://x/t\"q\"",service="s""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://x/t\"q\"".into(),
                service: Some("s".into()),
                scope: None,
            }]
        );
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("Bearer service=\"no-realm\"").is_empty());
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            username: "u".into(),
            secret: Secret::new("hunter2"),
            identity_token: false,
            source: CredentialSource::Helper { name: "x".into() },
        };
        let dbg = format!("{c:?} {}", c.secret);
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert_eq!(c.basic_header(), "Basic dTpodW50ZXIy");
    }

    #[test]
    fn escapes_query_values() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
