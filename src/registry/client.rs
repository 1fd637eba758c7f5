//! A blocking OCI distribution client over one shared `ureq` agent.
//!
//! One [`Client`] serves every registry of a run. It is cheap to clone and safe to share
//! between threads: the agent pools connections per host (so forty manifest requests reuse a
//! handful of keep-alive connections), and what was learned about each registry's auth (its
//! challenge, and bearer tokens per scope) is cached so the `401` round trip happens once per
//! registry and scope, not once per request.
//!
//! Every request goes through [`Client::send`], which:
//! 1. adds the cached `Authorization` for the registry and scope (never to another host);
//! 2. on `401`, reads the `WWW-Authenticate` challenge, fetches a token (or switches to Basic)
//!    and repeats the request once;
//! 3. on `429` and `5xx`, and on connection errors, retries with exponential backoff, waiting
//!    what `Retry-After` says when the registry says it (capped);
//! 4. maps what is left into a [`RegistryError`] that names the registry and says what to do,
//!    without the secret.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use ureq::http::{Response, StatusCode};
use ureq::Body;

use super::auth::{self, Challenge, Credentials, Secret};
use super::credentials::{self, Environment, ProcessEnv};
use super::manifest::{self, RawManifest};
use crate::error::Problem;
use crate::model::{Project, Registry};
use crate::reference::{self, api_host, is_plain_http};

/// Largest manifest or config read into memory (the spec suggests registries accept 4 MiB).
const DOC_LIMIT: u64 = 16 * 1024 * 1024;

/// One registry as the client reaches it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The registry as the user wrote it (`docker.io`, `127.0.0.1:5001`): used in messages.
    pub name: String,
    /// The host serving the API (`registry-1.docker.io` for Docker Hub).
    pub api_host: String,
    /// Plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Credentials, if any were found (else anonymous). `Debug` hides the secret.
    pub credentials: Option<Credentials>,
}

impl Endpoint {
    /// A registry of the project: its env variables, else the docker config.
    pub fn for_registry(reg: &Registry) -> Endpoint {
        Endpoint::with_env(reg, &ProcessEnv)
    }

    /// [`Endpoint::for_registry`] with a given environment.
    pub fn with_env(reg: &Registry, env: &dyn Environment) -> Endpoint {
        let vars = match (&reg.username_env, &reg.password_env) {
            (Some(u), Some(p)) => Some((u.as_str(), p.as_str())),
            _ => None,
        };
        Endpoint {
            name: reg.host.clone(),
            api_host: api_host(&reg.host).to_string(),
            plain_http: reg.plain_http,
            credentials: credentials::find(&reg.host, vars, env),
        }
    }

    /// Any registry host: the project's registry with that host if there is one (its env
    /// variables and `insecure`), else the docker config. `insecure` forces plain HTTP.
    pub fn for_host(host: &str, insecure: bool, project: Option<&Project>) -> Endpoint {
        let canonical = |h: &str| api_host(h).to_string();
        if let Some(reg) = project.and_then(|p| {
            p.registries
                .values()
                .find(|r| canonical(&r.host) == canonical(host))
        }) {
            let mut ep = Endpoint::for_registry(reg);
            ep.plain_http |= insecure;
            return ep;
        }
        Endpoint {
            name: host.to_string(),
            api_host: api_host(host).to_string(),
            plain_http: is_plain_http(host, insecure),
            credentials: credentials::find(host, None, &ProcessEnv),
        }
    }

    /// `http(s)://host`.
    pub fn base(&self) -> String {
        format!(
            "{}://{}",
            if self.plain_http { "http" } else { "https" },
            self.api_host
        )
    }

    fn is_docker_hub(&self) -> bool {
        self.api_host == reference::DOCKER_HUB_API
    }

    fn login_hint(&self) -> String {
        let server = if self.is_docker_hub() {
            String::new()
        } else {
            format!(" {}", self.name)
        };
        match &self.credentials {
            Some(c) => match &c.source {
                auth::CredentialSource::Env { password_var, .. } => format!(
                    "check the user name and the password in ${password_var} for {}",
                    self.name
                ),
                other => format!(
                    "the credentials come from {other}; log in again: docker login{server}"
                ),
            },
            None => format!(
                "log in first: docker login{server}, or set the registry's username-env and password-env"
            ),
        }
    }
}

/// What went wrong talking to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// 401: no or wrong credentials.
    Unauthorized,
    /// 403: the credentials are not allowed this.
    Denied,
    /// 404.
    NotFound,
    /// 429 after the retries.
    RateLimited,
    /// Could not connect, timed out, TLS.
    Network,
    /// The registry answered something unexpected.
    Protocol,
    /// Content did not match its digest.
    Digest,
}

/// A registry failure, said for people: which registry, what, and what to do.
#[derive(Debug, Clone)]
pub struct RegistryError {
    /// Classification.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl RegistryError {
    fn new(kind: ErrorKind, message: impl Into<String>, help: Option<String>) -> RegistryError {
        RegistryError {
            kind,
            message: message.into(),
            help,
        }
    }
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegistryError {}

impl From<RegistryError> for Problem {
    fn from(e: RegistryError) -> Problem {
        Problem::new(e.message).maybe_help(e.help)
    }
}

impl From<RegistryError> for crate::error::Error {
    fn from(e: RegistryError) -> crate::error::Error {
        crate::error::Error::failed(e.into())
    }
}

/// How a registry wants to be authenticated, learned from its first challenge.
#[derive(Debug, Clone)]
enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A request body that can be sent again on a retry.
#[derive(Clone, Copy)]
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled each time.
    pub base: Duration,
    /// Longest wait, also for `Retry-After`.
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 4,
            base: Duration::from_millis(400),
            max_wait: Duration::from_secs(30),
        }
    }
}

struct Inner {
    agent: ureq::Agent,
    hosts: Mutex<HashMap<String, HostAuth>>,
    tokens: Mutex<HashMap<(String, String), Secret>>,
    retry: Retry,
}

/// The registry client. Clone it freely; clones share connections and tokens.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client { .. }")
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

/// Whether a blob mount worked.
pub(crate) enum Mount {
    Mounted,
    /// The registry started an ordinary upload instead, at this location.
    Upload(String),
}

impl Client {
    /// A client with default timeouts and retries.
    pub fn new() -> Client {
        Client::with_retry(Retry::default())
    }

    /// A client with these retry settings.
    pub fn with_retry(retry: Retry) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(format!("multiarch/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .max_idle_connections(64)
            .max_idle_connections_per_host(32)
            .build();
        Client {
            inner: Arc::new(Inner {
                agent: ureq::Agent::new_with_config(config),
                hosts: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                retry,
            }),
        }
    }

    /// `GET /v2/`: reachable, and (with credentials) accepting them.
    pub fn ping(&self, ep: &Endpoint) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", ep.base());
        let mut resp = self.send(ep, &[], "GET", &url, &[], ReqBody::Empty)?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(self.status_error(ep, &mut resp, "the API root /v2/")),
        }
    }

    /// Fetches a manifest by tag or digest, checking its sha256 against `Docker-Content-Digest`
    /// and against the digest asked for. `Ok(None)` when the registry has no such manifest.
    pub fn get_manifest(
        &self,
        ep: &Endpoint,
        repository: &str,
        reference: &str,
    ) -> Result<Option<RawManifest>, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", ep.base());
        let scope = [auth::repository_scope(repository, false)];
        let mut resp = self.send(
            ep,
            &scope,
            "GET",
            &url,
            &[("Accept", manifest::ACCEPT)],
            ReqBody::Empty,
        )?;
        let what = format!("{}/{repository}:{reference}", ep.name);
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.status_error(ep, &mut resp, &what)),
        }
        let header_digest = header(&resp, "docker-content-digest");
        let content_type = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let bytes = read_body(&mut resp, DOC_LIMIT).map_err(|e| net(ep, &what, e))?;
        let digest = sha256_digest(&bytes);
        for expected in [header_digest.as_deref(), Some(reference)]
            .into_iter()
            .flatten()
            .filter(|d| d.starts_with("sha256:"))
        {
            if expected != digest {
                return Err(RegistryError::new(
                    ErrorKind::Digest,
                    format!("{what}: the manifest's sha256 is {digest}, but the registry said {expected}"),
                    Some("the content was changed in transit or by a proxy; retry, and report it if it persists".into()),
                ));
            }
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .or(content_type)
            .unwrap_or_default();
        Ok(Some(RawManifest {
            bytes,
            media_type,
            digest,
        }))
    }

    /// Reads a small blob (an image config) and checks its digest.
    pub fn get_blob(
        &self,
        ep: &Endpoint,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut reader = self.open_blob(ep, repository, digest)?;
        let what = format!("{}/{repository}@{digest}", ep.name);
        let mut out = Vec::new();
        (&mut reader)
            .take(DOC_LIMIT)
            .read_to_end(&mut out)
            .map_err(|e| io_err(&what, e))?;
        Ok(out)
    }

    /// Opens a blob as a stream whose sha256 is checked when it is read to the end (the last
    /// `read` fails on a mismatch).
    pub fn open_blob(
        &self,
        ep: &Endpoint,
        repository: &str,
        digest: &str,
    ) -> Result<BlobReader, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", ep.base());
        let scope = [auth::repository_scope(repository, false)];
        let mut resp = self.send(ep, &scope, "GET", &url, &[], ReqBody::Empty)?;
        let what = format!("{}/{repository}@{digest}", ep.name);
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(ep, &mut resp, &what));
        }
        Ok(BlobReader {
            inner: Box::new(resp.into_body().into_reader()),
            hasher: Sha256::new(),
            expected: digest.to_string(),
            checked: false,
        })
    }

    /// `HEAD` a blob: does the repository have it?
    pub fn blob_exists(
        &self,
        ep: &Endpoint,
        repository: &str,
        digest: &str,
        push: bool,
    ) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", ep.base());
        let scope = [auth::repository_scope(repository, push)];
        let mut resp = self.send(ep, &scope, "HEAD", &url, &[], ReqBody::Empty)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => {
                Err(self.status_error(ep, &mut resp, &format!("{}/{repository}@{digest}", ep.name)))
            }
        }
    }

    /// `HEAD` of a manifest by digest: true when the repository already holds it.
    pub fn manifest_exists(
        &self,
        ep: &Endpoint,
        repository: &str,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{digest}", ep.base());
        let scope = [auth::repository_scope(repository, true)];
        let accept = [("Accept", crate::registry::manifest::ACCEPT)];
        let mut resp = self.send(ep, &scope, "HEAD", &url, &accept, ReqBody::Empty)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => {
                Err(self.status_error(ep, &mut resp, &format!("{}/{repository}@{digest}", ep.name)))
            }
        }
    }

    /// Tries a cross-repository mount of `digest` from `from` into `repository`.
    pub(crate) fn mount_blob(
        &self,
        ep: &Endpoint,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={}&from={}",
            ep.base(),
            auth::query_escape(digest),
            auth::query_escape(from)
        );
        let scopes = [
            auth::repository_scope(repository, true),
            auth::repository_scope(from, false),
        ];
        let mut resp = self.send(ep, &scopes, "POST", &url, &[], ReqBody::Empty)?;
        let what = format!("{}/{repository} (mount from {from})", ep.name);
        match resp.status().as_u16() {
            201 => Ok(Mount::Mounted),
            202 => Ok(Mount::Upload(self.location(ep, &resp, &what)?)),
            _ => Err(self.status_error(ep, &mut resp, &what)),
        }
    }

    /// Starts an upload; returns its location.
    pub(crate) fn start_upload(
        &self,
        ep: &Endpoint,
        repository: &str,
    ) -> Result<String, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/uploads/", ep.base());
        let scope = [auth::repository_scope(repository, true)];
        let mut resp = self.send(ep, &scope, "POST", &url, &[], ReqBody::Empty)?;
        let what = format!("{}/{repository} (blob upload)", ep.name);
        match resp.status().as_u16() {
            202 => self.location(ep, &resp, &what),
            _ => Err(self.status_error(ep, &mut resp, &what)),
        }
    }

    /// Finishes an upload with the whole blob in one `PUT` (monolithic upload).
    pub(crate) fn finish_upload(
        &self,
        ep: &Endpoint,
        repository: &str,
        location: &str,
        digest: &str,
        file: &Path,
    ) -> Result<(), RegistryError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", auth::query_escape(digest));
        let scope = [auth::repository_scope(repository, true)];
        let mut resp = self.send(
            ep,
            &scope,
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            ReqBody::File(file),
        )?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(self.status_error(
                ep,
                &mut resp,
                &format!("{}/{repository}@{digest} (upload)", ep.name),
            )),
        }
    }

    /// Writes a manifest under a tag or digest; returns the digest the registry reports.
    pub fn put_manifest(
        &self,
        ep: &Endpoint,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", ep.base());
        let scope = [auth::repository_scope(repository, true)];
        let mut resp = self.send(
            ep,
            &scope,
            "PUT",
            &url,
            &[("Content-Type", media_type)],
            ReqBody::Bytes(bytes),
        )?;
        let what = format!("{}/{repository}:{reference}", ep.name);
        match resp.status().as_u16() {
            200..=299 => {
                Ok(header(&resp, "docker-content-digest").unwrap_or_else(|| sha256_digest(bytes)))
            }
            _ => Err(self.status_error(ep, &mut resp, &what)),
        }
    }

    fn location(
        &self,
        ep: &Endpoint,
        resp: &Response<Body>,
        what: &str,
    ) -> Result<String, RegistryError> {
        let loc = header(resp, "location").ok_or_else(|| {
            RegistryError::new(
                ErrorKind::Protocol,
                format!("{what}: the registry started an upload without a Location"),
                None,
            )
        })?;
        Ok(
            if loc.starts_with("http://") || loc.starts_with("https://") {
                loc
            } else if loc.starts_with('/') {
                format!("{}{loc}", ep.base())
            } else {
                format!("{}/{loc}", ep.base())
            },
        )
    }

    /// Sends one request with auth, challenge handling and retries (see the module doc).
    pub(crate) fn send(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: ReqBody<'_>,
    ) -> Result<Response<Body>, RegistryError> {
        let retry = self.inner.retry;
        let same_host = url.starts_with(&format!("{}/", ep.base()));
        let mut attempt = 0u32;
        let mut challenged = false;
        loop {
            attempt += 1;
            let authorization = if same_host {
                self.authorization(ep, scopes)?
            } else {
                None
            };
            let result = self.raw(method, url, headers, authorization.as_deref(), body);
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    if attempt < retry.attempts && transient(&e) {
                        std::thread::sleep(backoff(retry, attempt, None));
                        continue;
                    }
                    return Err(net(ep, url, e));
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && same_host && !challenged {
                challenged = true;
                let challenges: Vec<Challenge> = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(auth::parse_challenges)
                    .collect();
                let learned = challenges
                    .iter()
                    .find_map(|c| match c {
                        Challenge::Bearer { realm, service, .. } => Some(HostAuth::Bearer {
                            realm: realm.clone(),
                            service: service.clone(),
                        }),
                        Challenge::Basic => None,
                    })
                    .or_else(|| {
                        challenges
                            .contains(&Challenge::Basic)
                            .then_some(HostAuth::Basic)
                    });
                let Some(learned) = learned else {
                    return Ok(resp);
                };
                if matches!(learned, HostAuth::Basic) && ep.credentials.is_none() {
                    return Ok(resp);
                }
                self.inner
                    .hosts
                    .lock()
                    .unwrap()
                    .insert(ep.api_host.clone(), learned);
                self.inner
                    .tokens
                    .lock()
                    .unwrap()
                    .remove(&(ep.api_host.clone(), scopes.join(" ")));
                attempt -= 1;
                continue;
            }
            let code = status.as_u16();
            if (code == 429 || matches!(code, 500 | 502 | 503 | 504)) && attempt < retry.attempts {
                let after = header(&resp, "retry-after").and_then(|s| s.trim().parse::<u64>().ok());
                std::thread::sleep(backoff(retry, attempt, after));
                continue;
            }
            return Ok(resp);
        }
    }

    /// Sends once, no auth logic.
    fn raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
        body: ReqBody<'_>,
    ) -> Result<Response<Body>, ureq::Error> {
        let agent = &self.inner.agent;
        macro_rules! with_headers {
            ($b:expr) => {{
                let mut b = $b;
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                if let Some(a) = authorization {
                    b = b.header("Authorization", a);
                }
                b
            }};
        }
        let send = |b: ureq::RequestBuilder<ureq::typestate::WithBody>| match body {
            ReqBody::Empty => b.send_empty(),
            ReqBody::Bytes(bytes) => b.send(bytes),
            ReqBody::File(p) => b.send(std::fs::File::open(p)?),
        };
        match method {
            "GET" => with_headers!(agent.get(url)).call(),
            "HEAD" => with_headers!(agent.head(url)).call(),
            "DELETE" => with_headers!(agent.delete(url)).call(),
            "PUT" => send(with_headers!(agent.put(url))),
            "POST" => send(with_headers!(agent.post(url))),
            "PATCH" => send(with_headers!(agent.patch(url))),
            other => unreachable!("method {other}"),
        }
    }

    /// The `Authorization` value for a request, fetching a token when the registry uses them.
    fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
    ) -> Result<Option<String>, RegistryError> {
        let known = self.inner.hosts.lock().unwrap().get(&ep.api_host).cloned();
        match known {
            None => Ok(None),
            Some(HostAuth::Basic) => Ok(ep.credentials.as_ref().map(Credentials::basic_header)),
            Some(HostAuth::Bearer { realm, service }) => {
                let key = (ep.api_host.clone(), scopes.join(" "));
                if let Some(t) = self.inner.tokens.lock().unwrap().get(&key) {
                    return Ok(Some(format!("Bearer {}", t.expose())));
                }
                let token = self.fetch_token(ep, &realm, service.as_deref(), scopes)?;
                let value = format!("Bearer {}", token.expose());
                self.inner.tokens.lock().unwrap().insert(key, token);
                Ok(Some(value))
            }
        }
    }

    /// Asks the token service for a bearer token for these scopes.
    fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Secret, RegistryError> {
        let what = format!("the token service of {} ({realm})", ep.name);
        let creds = ep.credentials.as_ref();
        let mut attempt = 0;
        let mut resp = loop {
            attempt += 1;
            let result = match creds {
                Some(c) if c.identity_token => {
                    // OAuth2 refresh-token grant, as the docker CLI does for identity tokens.
                    let mut form = format!(
                        "grant_type=refresh_token&client_id=multiarch&refresh_token={}",
                        auth::query_escape(c.secret.expose())
                    );
                    if let Some(s) = service {
                        form.push_str(&format!("&service={}", auth::query_escape(s)));
                    }
                    if !scopes.is_empty() {
                        form.push_str(&format!("&scope={}", auth::query_escape(&scopes.join(" "))));
                    }
                    self.inner
                        .agent
                        .post(realm)
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .send(form.as_bytes())
                }
                _ => {
                    let mut url = realm.to_string();
                    let mut sep = if url.contains('?') { '&' } else { '?' };
                    if let Some(s) = service {
                        url.push_str(&format!("{sep}service={}", auth::query_escape(s)));
                        sep = '&';
                    }
                    for s in scopes {
                        url.push_str(&format!("{sep}scope={}", auth::query_escape(s)));
                        sep = '&';
                    }
                    let mut b = self.inner.agent.get(&url);
                    if let Some(c) = creds {
                        b = b.header("Authorization", c.basic_header());
                    }
                    b.call()
                }
            };
            match result {
                Ok(r)
                    if matches!(r.status().as_u16(), 429 | 500 | 502 | 503 | 504)
                        && attempt < self.inner.retry.attempts =>
                {
                    let after = header(&r, "retry-after").and_then(|s| s.trim().parse().ok());
                    std::thread::sleep(backoff(self.inner.retry, attempt, after));
                }
                Ok(r) => break r,
                Err(e) if transient(&e) && attempt < self.inner.retry.attempts => {
                    std::thread::sleep(backoff(self.inner.retry, attempt, None));
                }
                Err(e) => return Err(net(ep, &what, e)),
            }
        };
        match resp.status().as_u16() {
            200 => {
                let parsed: auth::TokenResponse = resp
                    .body_mut()
                    .with_config()
                    .limit(DOC_LIMIT)
                    .read_json()
                    .map_err(|e| {
                        RegistryError::new(
                            ErrorKind::Protocol,
                            format!("{what} answered something that is not a token: {e}"),
                            None,
                        )
                    })?;
                parsed.into_secret().ok_or_else(|| {
                    RegistryError::new(
                        ErrorKind::Protocol,
                        format!("{what} answered without a token"),
                        None,
                    )
                })
            }
            401 | 403 => Err(self.unauthorized(ep, resp.status().as_u16())),
            _ => Err(self.status_error(ep, &mut resp, &what)),
        }
    }

    fn unauthorized(&self, ep: &Endpoint, code: u16) -> RegistryError {
        let (kind, word) = if code == 403 {
            (ErrorKind::Denied, "403 Forbidden")
        } else {
            (ErrorKind::Unauthorized, "401 Unauthorized")
        };
        let message = match &ep.credentials {
            Some(c) => format!(
                "{} refused the credentials of user \"{}\" (from {}): {word}",
                ep.name, c.username, c.source
            ),
            None => format!(
                "{} requires a login, and no credentials were found for it: {word}",
                ep.name
            ),
        };
        RegistryError::new(kind, message, Some(ep.login_hint()))
    }

    /// Turns an unexpected answer into an error naming the registry and the object.
    pub(crate) fn status_error(
        &self,
        ep: &Endpoint,
        resp: &mut Response<Body>,
        what: &str,
    ) -> RegistryError {
        let code = resp.status().as_u16();
        let rate = rate_limit_note(resp);
        let body = read_body(resp, 64 * 1024).unwrap_or_default();
        let detail = registry_errors(&body);
        match code {
            401 => {
                let mut e = self.unauthorized(ep, 401);
                if ep.credentials.is_some() {
                    e.message = format!("{} (while reading {what})", e.message);
                }
                e
            }
            403 => RegistryError::new(
                ErrorKind::Denied,
                format!("{} denied access to {what}: 403 Forbidden{detail}", ep.name),
                Some(format!(
                    "the account needs pull (and for writes, push) permission on that repository; {}",
                    ep.login_hint()
                )),
            ),
            404 => RegistryError::new(
                ErrorKind::NotFound,
                format!("{what} was not found: 404{detail}"),
                None,
            ),
            429 => RegistryError::new(
                ErrorKind::RateLimited,
                format!("{} is rate-limiting requests: 429 Too Many Requests{detail}{rate}", ep.name),
                Some(if ep.is_docker_hub() {
                    "log in (docker login) for a higher Docker Hub pull limit, or wait for the window to reset".into()
                } else {
                    "wait and retry".into()
                }),
            ),
            _ => RegistryError::new(
                ErrorKind::Protocol,
                format!("{} answered {code} for {what}{detail}", ep.name),
                None,
            ),
        }
    }
}

/// A blob being read, hashed as it goes; the final read fails if the digest does not match.
pub struct BlobReader {
    inner: Box<dyn Read + Send>,
    hasher: Sha256,
    expected: String,
    checked: bool,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
        } else if !self.checked && !buf.is_empty() {
            self.checked = true;
            let got = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
            if self.expected.starts_with("sha256:") && got != self.expected {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("blob content is {got}, not {}", self.expected),
                ));
            }
        }
        Ok(n)
    }
}

/// `sha256:` + hex of the bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn read_body(resp: &mut Response<Body>, limit: u64) -> Result<Vec<u8>, ureq::Error> {
    resp.body_mut().with_config().limit(limit).read_to_vec()
}

/// `: code: message` from a registry's `{"errors":[...]}` body, if it has one.
fn registry_errors(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(errs) = v.get("errors").and_then(|e| e.as_array()) else {
        return String::new();
    };
    let parts: Vec<String> = errs
        .iter()
        .filter_map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            (!code.is_empty() || !msg.is_empty())
                .then(|| format!("{code} {msg}").trim().to_string())
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// Docker Hub's pull-limit headers, said for people.
fn rate_limit_note(resp: &Response<Body>) -> String {
    let limit = header(resp, "ratelimit-limit");
    let remaining = header(resp, "ratelimit-remaining");
    let source = header(resp, "docker-ratelimit-source");
    let window = |v: &str| {
        v.split(";w=")
            .nth(1)
            .and_then(|w| w.trim().parse::<u64>().ok())
            .map(|s| format!(" per {}h", s / 3600))
            .unwrap_or_default()
    };
    match (limit, remaining) {
        (Some(l), Some(r)) => format!(
            "; Docker Hub pull limit: {} of {}{} left{}",
            r.split(';').next().unwrap_or(&r),
            l.split(';').next().unwrap_or(&l),
            window(&l),
            source
                .map(|s| format!(" (counted for {s})"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}

fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed
    )
}

fn backoff(retry: Retry, attempt: u32, retry_after: Option<u64>) -> Duration {
    let wait = match retry_after {
        Some(s) => Duration::from_secs(s),
        None => retry.base * 2u32.saturating_pow(attempt.saturating_sub(1)),
    };
    wait.min(retry.max_wait)
}

fn net(ep: &Endpoint, what: &str, e: ureq::Error) -> RegistryError {
    let https_hint = if !ep.plain_http
        && matches!(
            &e,
            ureq::Error::Tls(_) | ureq::Error::Io(_) | ureq::Error::Protocol(_)
        ) {
        Some(format!(
            "if {} serves plain HTTP, set `insecure = true` on its registry (or pass --insecure)",
            ep.name
        ))
    } else {
        None
    };
    RegistryError::new(
        ErrorKind::Network,
        format!("could not reach {} ({what}): {e}", ep.name),
        https_hint.or_else(|| {
            Some(format!(
                "check that {} is up and reachable from here",
                ep.base()
            ))
        }),
    )
}

fn io_err(what: &str, e: std::io::Error) -> RegistryError {
    let kind = if e.kind() == std::io::ErrorKind::InvalidData {
        ErrorKind::Digest
    } else {
        ErrorKind::Network
    };
    RegistryError::new(kind, format!("reading {what}: {e}"), None)
}

pub(crate) fn io_error(what: &str, e: std::io::Error) -> RegistryError {
    io_err(what, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        let r = Retry::default();
        assert_eq!(backoff(r, 1, None), Duration::from_millis(400));
        assert_eq!(backoff(r, 3, None), Duration::from_millis(1600));
        assert_eq!(backoff(r, 1, Some(7)), Duration::from_secs(7));
        assert_eq!(backoff(r, 1, Some(3600)), r.max_wait);
    }

    /// A one-request-per-connection HTTP server on loopback answering with `answer(request)`;
    /// returns its address and the requests it saw.
    fn serve(
        answer: impl Fn(&str, &str) -> String + Send + 'static,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let me = addr.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                log.lock().unwrap().push(head.clone());
                let resp = answer(&head, &me);
                let _ = stream.write_all(resp.as_bytes());
            }
        });
        (addr, seen)
    }

    fn reply(status: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        format!("{r}\r\n{body}")
    }

    fn local(addr: &str, creds: Option<Credentials>) -> Endpoint {
        Endpoint {
            name: addr.to_string(),
            api_host: addr.to_string(),
            plain_http: true,
            credentials: creds,
        }
    }

    fn quick() -> Client {
        Client::with_retry(Retry {
            attempts: 3,
            base: Duration::from_millis(1),
            max_wait: Duration::from_millis(20),
        })
    }

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

    #[test]
    fn retries_5xx_then_checks_the_digest() {
        let n = Arc::new(Mutex::new(0));
        let count = n.clone();
        let (addr, seen) = serve(move |_, _| {
            let mut c = count.lock().unwrap();
            *c += 1;
            if *c == 1 {
                reply("503 Service Unavailable", &[("Retry-After", "0")], "")
            } else {
                let d = sha256_digest(INDEX.as_bytes());
                reply("200 OK", &[("Docker-Content-Digest", &d)], INDEX)
            }
        });
        let m = quick()
            .get_manifest(&local(&addr, None), "a/b", "1.0")
            .unwrap()
            .unwrap();
        assert_eq!(m.kind(), manifest::Kind::Index);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].to_ascii_lowercase().contains("accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"), "{}", seen[1]);
        // A digest that does not match the body is refused.
        let (addr, _) = serve(|_, _| {
            reply(
                "200 OK",
                &[(
                    "Docker-Content-Digest",
                    &format!("sha256:{}", "0".repeat(64)),
                )],
                INDEX,
            )
        });
        let e = quick()
            .get_manifest(&local(&addr, None), "a/b", "1.0")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Digest);
    }

    #[test]
    fn rate_limits_are_reported_with_docker_hub_headers() {
        let (addr, seen) = serve(|_, _| {
            reply(
                "429 Too Many Requests",
                &[
                    ("RateLimit-Limit", "100;w=21600"),
                    ("RateLimit-Remaining", "0;w=21600"),
                    ("Docker-RateLimit-Source", "203.0.113.7"),
                    ("Retry-After", "0"),
                ],
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#,
            )
        });
        let e = quick()
            .get_manifest(&local(&addr, None), "library/alpine", "3")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert!(e.message.contains("TOOMANYREQUESTS"), "{}", e.message);
        assert!(
            e.message
                .contains("pull limit: 0 of 100 per 6h left (counted for 203.0.113.7)"),
            "{}",
            e.message
        );
        assert_eq!(seen.lock().unwrap().len(), 3, "three attempts");
    }

    #[test]
    fn bearer_challenge_fetches_a_scoped_token_with_basic_credentials() {
        let (addr, seen) = serve(|head, me| {
            let first = head.lines().next().unwrap_or("");
            let authz = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .unwrap_or("");
            if first.starts_with("GET /token") {
                if authz.contains(
                    &Credentials {
                        username: "u".into(),
                        secret: Secret::new("p"),
                        identity_token: false,
                        source: auth::CredentialSource::Helper { name: "t".into() },
                    }
                    .basic_header(),
                ) {
                    reply("200 OK", &[], r#"{"token":"tok-123"}"#)
                } else {
                    reply("401 Unauthorized", &[], "")
                }
            } else if authz.ends_with("Bearer tok-123") {
                reply(
                    "200 OK",
                    &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
                    INDEX,
                )
            } else {
                let c = format!(r#"Bearer realm="http://{me}/token",service="fake""#);
                reply("401 Unauthorized", &[("WWW-Authenticate", &c)], "")
            }
        });
        let creds = Credentials {
            username: "u".into(),
            secret: Secret::new("p"),
            identity_token: false,
            source: auth::CredentialSource::Env {
                username_var: "U".into(),
                password_var: "P".into(),
            },
        };
        let client = quick();
        let ep = local(&addr, Some(creds.clone()));
        client.get_manifest(&ep, "org/app", "1").unwrap().unwrap();
        // The token is reused: one more request, no second token fetch.
        client.get_manifest(&ep, "org/app", "2").unwrap().unwrap();
        let seen = seen.lock().unwrap().clone();
        let lines: Vec<&str> = seen.iter().map(|h| h.lines().next().unwrap()).collect();
        assert_eq!(
            lines,
            [
                "GET /v2/org/app/manifests/1 HTTP/1.1",
                "GET /token?service=fake&scope=repository%3Aorg%2Fapp%3Apull HTTP/1.1",
                "GET /v2/org/app/manifests/1 HTTP/1.1",
                "GET /v2/org/app/manifests/2 HTTP/1.1",
            ]
        );
        // Wrong credentials: the token service refuses; the message names the registry and the
        // variables, never the secret.
        let bad = Credentials {
            secret: Secret::new("wrong-secret"),
            ..creds
        };
        let e = quick()
            .get_manifest(&local(&addr, Some(bad)), "org/app", "1")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(
            e.message.contains(&format!(
                "{addr} refused the credentials of user \"u\" (from $U / $P)"
            )),
            "{}",
            e.message
        );
        assert!(!format!("{e:?}").contains("wrong-secret"));
    }

    #[test]
    fn registry_error_bodies_are_summarised() {
        let b =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(registry_errors(b), " (MANIFEST_UNKNOWN manifest unknown)");
        assert_eq!(registry_errors(b"<html>"), "");
    }
}
