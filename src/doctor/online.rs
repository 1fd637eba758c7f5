//! `doctor --online`: what the registries answer.
//!
//! Per registry: an anonymous `/v2/` ping (reachable? does it ask for auth, and how?) and, when
//! it asks and credentials are found, an authenticated request through the registry client,
//! which fetches a token with them (a 401 is reported as such, naming the registry). Per image:
//! the platforms of the base images in `FROM`, against the declared ones. [`gather`] talks to
//! the network; [`checks`] is pure.
//!
//! The anonymous ping is a bare request rather than [`Client::ping`]: the client would answer a
//! Bearer challenge with an anonymous token, and Docker Hub would then look open when a push
//! needs a login.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use crate::model::{Image, Project};
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::registry::auth::{parse_challenges, Challenge};
use crate::registry::manifest::{ImageConfig, Kind};
use crate::registry::{Client, Endpoint, ErrorKind, Retry};

use super::{dockerfile, Check, Facts};

/// What one registry answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryProbe {
    /// The `/v2/` URL asked.
    pub url: String,
    /// HTTP status of the anonymous ping, or why there was none.
    pub ping: Result<u16, String>,
    /// The auth scheme the registry asked for (`Bearer`, `Basic`), if any.
    pub challenge: Option<String>,
    /// Where the credentials the release would use come from (never the secret), if found.
    pub credentials: Option<String>,
    /// The authenticated request, when one was made.
    pub login: Option<Result<(), LoginError>>,
}

/// Why the authenticated request failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoginError {
    /// The registry said 401: the credentials were refused.
    pub unauthorized: bool,
    /// What happened (names the registry).
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

impl RegistryProbe {
    /// True when the registry answered the bare ping with 200: it asks for no login at all.
    pub fn anonymous(&self) -> bool {
        self.ping == Ok(200)
    }
}

/// The platforms of one base image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseImage {
    /// Image key in the project.
    pub image: String,
    /// Dockerfile line of the FROM.
    pub line: usize,
    /// The reference as written (ARGs substituted).
    pub reference: String,
    /// Its platforms, or why they could not be read.
    pub platforms: Result<Vec<Platform>, String>,
}

/// What `--online` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OnlineFacts {
    /// Per registry name.
    pub registries: IndexMap<String, RegistryProbe>,
    /// Per FROM line.
    pub bases: Vec<BaseImage>,
}

fn bare_ping(url: &str) -> (Result<u16, String>, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .user_agent(format!("multiarch/{} (doctor)", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    match agent.get(url).call() {
        Ok(resp) => {
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(|h| {
                    parse_challenges(h).into_iter().next().map(|c| match c {
                        Challenge::Basic => "Basic".to_string(),
                        Challenge::Bearer { realm, .. } => format!("Bearer, token service {realm}"),
                    })
                });
            (Ok(resp.status().as_u16()), challenge)
        }
        Err(e) => (Err(e.to_string()), None),
    }
}

/// Asks every registry, and every base image's registry, what it holds. Never fails.
pub fn gather(project: &Project, facts: &Facts) -> OnlineFacts {
    let client = Client::with_retry(Retry {
        attempts: 1,
        ..Retry::default()
    });
    let mut out = OnlineFacts::default();
    for r in project.registries.values() {
        eprintln!("asking {} ...", r.host);
        let ep = Endpoint::for_registry(r);
        let url = format!("{}/v2/", ep.base());
        let (ping, challenge) = bare_ping(&url);
        let credentials = ep.credentials.as_ref().map(|c| c.source.to_string());
        let login = match (&ping, &ep.credentials) {
            (Ok(401), Some(_)) => Some(client.ping(&ep).map_err(|e| LoginError {
                unauthorized: e.kind == ErrorKind::Unauthorized,
                message: e.message,
                help: e.help,
            })),
            _ => None,
        };
        out.registries.insert(
            r.name.clone(),
            RegistryProbe {
                url,
                ping,
                challenge,
                credentials,
                login,
            },
        );
    }
    for img in project.images.values() {
        let Some(text) = facts
            .files
            .get(&img.key)
            .and_then(|f| f.dockerfile.as_ref())
        else {
            continue;
        };
        for (line, reference) in dockerfile::base_images(project, img, text) {
            eprintln!("reading the platforms of {reference} ...");
            out.bases.push(BaseImage {
                image: img.key.clone(),
                line,
                platforms: platforms_of(&client, project, &reference),
                reference,
            });
        }
    }
    out
}

/// The platforms an image reference offers: an index's entries (attestations left out), or a
/// single manifest's config.
pub fn platforms_of(
    client: &Client,
    project: &Project,
    reference: &str,
) -> Result<Vec<Platform>, String> {
    let r = ImageRef::parse(reference).map_err(|e| e.to_string())?;
    let ep = Endpoint::for_host(&r.registry, false, Some(project));
    let raw = client
        .get_manifest(&ep, &r.repository, r.reference())
        .map_err(|e| e.message)?
        .ok_or_else(|| format!("{r} does not exist"))?;
    let m = raw
        .parse()
        .map_err(|e| format!("{r}: unreadable manifest: {e}"))?;
    match raw.kind() {
        Kind::Index => Ok(m
            .manifests
            .iter()
            .filter(|d| !d.is_attestation())
            .filter_map(|d| d.platform())
            .collect()),
        Kind::Image => {
            let cfg = m
                .config
                .ok_or_else(|| format!("{r}: the manifest has no config"))?;
            let bytes = client
                .get_blob(&ep, &r.repository, &cfg.digest)
                .map_err(|e| e.message)?;
            let c: ImageConfig = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{r}: unreadable config: {e}"))?;
            Ok(vec![c.platform()])
        }
        Kind::Other => Err(format!("{r}: not an image ({})", raw.media_type)),
    }
}

/// True when an image offering `offered` can be used for `wanted` (a variant-less entry serves
/// every variant of its architecture).
pub fn covers(offered: &[Platform], wanted: &Platform) -> bool {
    offered.iter().any(|o| {
        o.os == wanted.os
            && o.arch == wanted.arch
            && (o.variant.is_none() || wanted.variant.is_none() || o.variant == wanted.variant)
    })
}

/// The checks of `--online`.
pub fn checks(project: &Project, facts: &Facts, online: &OnlineFacts) -> Vec<Check> {
    let mut out = Vec::new();
    for (name, p) in &online.registries {
        let Some(reg) = project.registries.get(name) else {
            continue;
        };
        let id = format!("registry.{name}");
        let login = super::checks::login_cmd(reg, facts);
        out.push(match (&p.ping, &p.login) {
            (Err(e), _) => Check::fail(
                id,
                format!("{}: cannot reach {}: {e}", reg.host, p.url),
                if reg.plain_http {
                    "start the registry, or check the host and port in [registries.".to_string() + name + "]"
                } else {
                    format!(
                        "check the host name, the network and any proxy; a plain-HTTP registry needs `insecure = true` in [registries.{name}]"
                    )
                },
            ),
            (Ok(200), _) => Check::ok(id, format!("{}: {} answers 200 without a login", reg.host, p.url)),
            (Ok(401), None) => Check::fail(
                id,
                format!(
                    "{}: 401 Unauthorized at {} ({}) and no credentials were found for it",
                    reg.host,
                    p.url,
                    p.challenge.as_deref().unwrap_or("no challenge")
                ),
                format!("`{login}`, or export the variables named in [registries.{name}]"),
            ),
            (Ok(401), Some(Ok(()))) => Check::ok(
                id,
                format!(
                    "{}: logged in with the credentials from {} ({})",
                    reg.host,
                    p.credentials.as_deref().unwrap_or("?"),
                    p.challenge.as_deref().unwrap_or("auth")
                ),
            ),
            (Ok(401), Some(Err(e))) => Check::fail(
                id,
                if e.unauthorized {
                    format!(
                        "{}: 401 Unauthorized: the registry refused the credentials from {}",
                        reg.host,
                        p.credentials.as_deref().unwrap_or("?")
                    )
                } else {
                    format!("{}: the authenticated request failed: {}", reg.host, e.message)
                },
                e.help.clone().unwrap_or_else(|| format!("`{login}` again")),
            ),
            (Ok(code), _) => Check::warn(
                id,
                format!("{}: {} answered HTTP {code}, not the registry API's 200 or 401", reg.host, p.url),
                format!("check host (and a path prefix) in [registries.{name}]"),
            ),
        });
    }
    for b in &online.bases {
        let Some(img) = project.images.get(&b.image) else {
            continue;
        };
        out.push(base_check(project, img, b));
    }
    out
}

fn base_check(project: &Project, img: &Image, b: &BaseImage) -> Check {
    let file = super::checks::rel(project, &img.dockerfile);
    let id = format!("base.{}", img.key);
    match &b.platforms {
        Err(e) => Check::warn(
            id,
            format!("{file}:{}: cannot read the platforms of {}: {e}", b.line, b.reference),
            format!("check the reference, or `docker login` to its registry, then `docker buildx imagetools inspect {}`", b.reference),
        ),
        Ok(offered) => {
            let missing: Vec<String> = img
                .platforms
                .iter()
                .filter(|p| !covers(offered, p))
                .map(|p| p.to_string())
                .collect();
            let have: Vec<String> = offered.iter().map(|p| p.to_string()).collect();
            if missing.is_empty() {
                Check::ok(
                    id,
                    format!("{file}:{}: {} offers every declared platform ({})", b.line, b.reference, have.join(", ")),
                )
            } else {
                Check::fail(
                    id,
                    format!(
                        "{file}:{}: {} has no {} (it offers {}); those builds fail or run the wrong architecture",
                        b.line,
                        b.reference,
                        missing.join(", "),
                        if have.is_empty() { "nothing".into() } else { have.join(", ") }
                    ),
                    format!(
                        "use a base image published for {}, or drop them from [images.{}] platforms",
                        missing.join(", "),
                        img.key
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::tests::{healthy, project_with, BASIC};
    use crate::doctor::Status;

    fn probe(ping: Result<u16, String>, login: Option<Result<(), LoginError>>) -> RegistryProbe {
        RegistryProbe {
            url: "https://x/v2/".into(),
            ping,
            challenge: Some("Bearer, token service https://auth.x/token".into()),
            credentials: login.as_ref().map(|_| "$HUB_USER / $HUB_TOKEN".into()),
            login,
        }
    }

    #[test]
    fn registry_answers() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let f = healthy(&p);
        let mut o = OnlineFacts::default();
        o.registries.insert(
            "hub".into(),
            probe(
                Ok(401),
                Some(Err(LoginError {
                    unauthorized: true,
                    message: "401".into(),
                    help: Some(
                        "check the user name and the password in $HUB_TOKEN for docker.io".into(),
                    ),
                })),
            ),
        );
        o.registries.insert(
            "local".into(),
            probe(Err("connection refused".into()), None),
        );
        let c = checks(&p, &f, &o);
        assert_eq!(c[0].status, Status::Fail);
        assert!(c[0].summary.contains("401 Unauthorized") && c[0].summary.contains("docker.io"));
        assert!(c[0].summary.contains("$HUB_USER / $HUB_TOKEN"));
        assert!(c[1].summary.contains("connection refused"));
        o.registries["hub"] = probe(Ok(401), None);
        assert!(checks(&p, &f, &o)[0]
            .fix
            .as_ref()
            .unwrap()
            .contains("docker login"));
        o.registries["hub"] = probe(Ok(401), Some(Ok(())));
        assert_eq!(checks(&p, &f, &o)[0].status, Status::Ok);
        o.registries["local"] = probe(Ok(200), None);
        assert_eq!(checks(&p, &f, &o)[1].status, Status::Ok);
        // an open registry needs no credentials
        let mut f2 = f.clone();
        f2.online = Some(o);
        let cred = crate::doctor::checks::credentials(&p, &f2);
        assert_eq!(cred[1].status, Status::Ok, "{cred:?}");
    }

    #[test]
    fn base_platforms() {
        let (_d, p) = project_with(BASIC, &[("Dockerfile", "FROM alpine\n")]);
        let f = healthy(&p);
        let pl = |s: &str| s.parse::<Platform>().unwrap();
        let mut o = OnlineFacts::default();
        o.bases.push(BaseImage {
            image: "app".into(),
            line: 1,
            reference: "alpine:3.20".into(),
            platforms: Ok(vec![
                pl("linux/amd64"),
                pl("linux/arm64"),
                pl("linux/arm/v7"),
            ]),
        });
        let c = checks(&p, &f, &o);
        assert_eq!(c[0].status, Status::Fail);
        assert!(
            c[0].summary.contains("has no linux/s390x"),
            "{}",
            c[0].summary
        );
        o.bases[0]
            .platforms
            .as_mut()
            .unwrap()
            .push(pl("linux/s390x"));
        assert_eq!(checks(&p, &f, &o)[0].status, Status::Ok);
        o.bases[0].platforms = Err("401".into());
        assert_eq!(checks(&p, &f, &o)[0].status, Status::Warn);
        assert!(covers(
            &[Platform::new("linux", "arm", None)],
            &pl("linux/arm/v7")
        ));
        assert!(!covers(&[pl("linux/arm/v6")], &pl("linux/arm/v7")));
    }
}
