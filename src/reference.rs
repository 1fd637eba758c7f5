//! Image references, repositories and tags, checked against Docker's reference grammar
//! (`distribution/reference`), so that a name the engine would refuse at push time is refused
//! by `check` instead, before anything is built.
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [domain '/'] path-component ['/' path-component]*
//! domain          := host [':' port]
//! path-component  := [a-z0-9]+ (separator [a-z0-9]+)*      separator := [_.] | __ | [-]+
//! tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest          := algorithm ":" hex
//! ```

use std::fmt;

/// Docker Hub's canonical name, as users write it.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key under which `docker login` stores Docker Hub credentials in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// Longest repository name (host included) Docker accepts.
pub const NAME_MAX: usize = 255;

/// Why a reference, repository, host or tag was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RefError {}

fn err(message: impl Into<String>, help: impl Into<Option<String>>) -> RefError {
    RefError {
        message: message.into(),
        help: help.into(),
    }
}

/// A parsed image reference: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host as written (`docker.io` when none was written), with port if any.
    pub registry: String,
    /// Repository path inside the registry (`library/alpine` on Docker Hub for `alpine`).
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest (`sha256:...`), if given.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference as the docker CLI does (`alpine` means `docker.io/library/alpine:latest`
    /// once [`ImageRef::reference`] is asked for).
    pub fn parse(input: &str) -> Result<ImageRef, RefError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err("an image reference cannot be empty", None));
        }
        if s.contains("://") {
            return Err(err(
                format!("\"{input}\" has a URL scheme; image references have none"),
                format!("write \"{}\"", s.split_once("://").unwrap().1),
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A ':' after the last '/' separates the tag; one before it belongs to a port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            validate_tag(t)?;
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_host(first)?;
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" || registry == DOCKER_HUB_API {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        validate_repository(&repository)?;
        let full = format!("{registry}/{repository}");
        if full.len() > NAME_MAX {
            return Err(err(
                format!(
                    "\"{full}\" is {} characters long; Docker allows {NAME_MAX}",
                    full.len()
                ),
                Some("shorten the namespace or repository".to_string()),
            ));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What goes after `/manifests/` in the registry API: the digest if pinned, else the tag,
    /// else `latest`.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host that serves the registry API (Docker Hub's API lives elsewhere than its name).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to a digest.
    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The host that serves the registry API for a registry name.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// True when the registry is reached over plain HTTP: when the project says `insecure`, or when
/// it is on loopback (`localhost`, `127.0.0.0/8`, `[::1]`), as the docker engine assumes too.
pub fn is_plain_http(host: &str, insecure: bool) -> bool {
    if insecure {
        return true;
    }
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Checks one path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0] as char) || !is_alnum_lower(b[b.len() - 1] as char) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i] as char;
        if is_alnum_lower(ch) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or any number of '-'.
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i] as char) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "."
            || sep == "_"
            || sep == "__"
            || (!sep.is_empty() && sep.chars().all(|x| x == '-'));
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a repository path (`namespace/name`), component by component.
pub fn validate_repository(path: &str) -> Result<(), RefError> {
    if path.is_empty() {
        return Err(err(
            "a repository name cannot be empty",
            Some("write a name such as \"my-app\"".to_string()),
        ));
    }
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err(err(
                format!("repository \"{path}\" has an empty path component"),
                Some("remove the doubled or trailing '/'".to_string()),
            ));
        }
        if comp.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err(
                format!("repository \"{path}\" has uppercase letters; Docker requires lowercase"),
                Some(format!("write \"{}\"", path.to_ascii_lowercase())),
            ));
        }
        let bad: Vec<String> = comp
            .chars()
            .filter(|c| {
                !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
            })
            .map(|c| format!("{c:?}"))
            .fold(Vec::new(), |mut acc, c| {
                if !acc.contains(&c) {
                    acc.push(c);
                }
                acc
            });
        if !bad.is_empty() {
            return Err(err(
                format!(
                    "repository \"{path}\" contains {}, which Docker does not allow",
                    bad.join(", ")
                ),
                Some(format!(
                    "use lowercase letters, digits and '.', '_', '-' between them, e.g. \"{}\"",
                    suggest_repository(path)
                )),
            ));
        }
        if !valid_component(comp) {
            return Err(err(
                format!("\"{comp}\" in repository \"{path}\" is not a valid path component"),
                Some(
                    "use lowercase letters and digits, separated by '.', '_', '__' or '-', \
                     starting and ending with a letter or digit"
                        .to_string(),
                ),
            ));
        }
    }
    if path.len() > NAME_MAX {
        return Err(err(
            format!(
                "repository \"{path}\" is {} characters long; Docker allows {NAME_MAX}",
                path.len()
            ),
            Some("shorten the namespace or repository".to_string()),
        ));
    }
    Ok(())
}

/// A valid repository path close to `path`: lowercase, every run of other characters made '-'.
pub fn suggest_repository(path: &str) -> String {
    let parts: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|comp| {
            let mut out = String::new();
            for c in comp.chars() {
                if c.is_ascii_alphanumeric() {
                    out.push(c.to_ascii_lowercase());
                } else if !out.ends_with('-') {
                    out.push('-');
                }
            }
            out.trim_matches('-').to_string()
        })
        .filter(|c| !c.is_empty())
        .collect();
    if parts.is_empty() {
        "app".to_string()
    } else {
        parts.join("/")
    }
}

/// Checks a registry host: a domain name, IPv4 or `[IPv6]`, with an optional port; no scheme,
/// no path.
pub fn validate_host(host: &str) -> Result<(), RefError> {
    if host.is_empty() {
        return Err(err(
            "a registry host cannot be empty",
            Some("write one, e.g. host = \"ghcr.io\" or host = \"localhost:5000\"".to_string()),
        ));
    }
    if let Some((scheme, rest)) = host.split_once("://") {
        return Err(err(
            format!("registry host \"{host}\" has a URL scheme ({scheme}://)"),
            Some(format!(
                "write the host alone: \"{}\"{}",
                rest.trim_end_matches('/'),
                if scheme == "http" {
                    ", and `insecure = true` for plain HTTP"
                } else {
                    ""
                }
            )),
        ));
    }
    if let Some((name, path)) = host.split_once('/') {
        return Err(err(
            format!("registry host \"{host}\" contains a path"),
            Some(format!(
                "the path goes in `namespace`: host = \"{name}\", namespace = \"{}\"",
                path.trim_matches('/')
            )),
        ));
    }
    let (name, port) = if let Some(stripped) = host.strip_prefix('[') {
        match stripped.split_once(']') {
            Some((ip6, rest)) => {
                if ip6.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(err(
                        format!("\"{host}\" is not a valid IPv6 host"),
                        Some("write an IPv6 address in brackets, e.g. \"[::1]:5000\"".to_string()),
                    ));
                }
                (None, rest.strip_prefix(':'))
            }
            None => {
                return Err(err(
                    format!("\"{host}\" is missing its closing ']'"),
                    Some("write an IPv6 address in brackets, e.g. \"[::1]:5000\"".to_string()),
                ))
            }
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty()
            || !p.chars().all(|c| c.is_ascii_digit())
            || p.parse::<u16>().is_err()
            || p == "0"
        {
            return Err(err(
                format!("\"{host}\" has an invalid port \"{p}\""),
                Some("a port is a number from 1 to 65535".to_string()),
            ));
        }
    }
    if let Some(n) = name {
        let ok = !n.is_empty()
            && n.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(err(
                format!("\"{host}\" is not a valid registry host"),
                Some("a host is a domain name or IP address, with an optional :port".to_string()),
            ));
        }
    }
    Ok(())
}

/// Checks a tag against `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), RefError> {
    let help = "a tag is 1 to 128 of A-Z a-z 0-9 _ . - and cannot start with '.' or '-'";
    if tag.is_empty() {
        return Err(err("a tag cannot be empty", Some(help.to_string())));
    }
    if tag.len() > 128 {
        return Err(err(
            format!(
                "tag \"{tag}\" is {} characters long; Docker allows 128",
                tag.len()
            ),
            Some(help.to_string()),
        ));
    }
    let mut chars = tag.chars();
    let first = chars.next().unwrap_or(' ');
    let bad = |c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(err(
            format!("tag \"{tag}\" starts with '{first}'"),
            Some(help.to_string()),
        ));
    }
    if let Some(c) = tag.chars().find(|&c| bad(c)) {
        let fix = if c == '+' {
            " (semver build metadata \"+\" is not allowed in tags; Docker users write \"_\" or drop it)"
        } else {
            ""
        };
        return Err(err(
            format!("tag \"{tag}\" contains '{c}', which Docker does not allow in tags{fix}"),
            Some(help.to_string()),
        ));
    }
    Ok(())
}

/// Checks a digest `algorithm:hex` (sha256 with 64 hex digits, sha512 with 128).
pub fn validate_digest(d: &str) -> Result<(), RefError> {
    let ok = match d.split_once(':') {
        Some(("sha256", h)) => {
            h.len() == 64 && h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        }
        Some(("sha512", h)) => {
            h.len() == 128 && h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            format!("\"{d}\" is not a valid digest"),
            Some("a digest is sha256: followed by 64 lowercase hex digits".to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_short_names() {
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.reference(), "latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("cloudsmithy/doudizhu-scorer:1.2.3").unwrap();
        assert_eq!(r.repository, "cloudsmithy/doudizhu-scorer");
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn parses_hosts_ports_and_digests() {
        let r = ImageRef::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("127.0.0.1:5000/app@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.reference(), d);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/app@{d}"));
        let r = ImageRef::parse("registry.lazycat.cloud/u04123229/you/app").unwrap();
        assert_eq!(r.repository, "u04123229/you/app");
        assert!(
            ImageRef::parse("index.docker.io/library/busybox")
                .unwrap()
                .registry
                == "docker.io"
        );
    }

    #[test]
    fn refuses_bad_references() {
        assert!(ImageRef::parse("https://ghcr.io/x/y").is_err());
        assert!(ImageRef::parse("ghcr.io/Org/app").is_err());
        assert!(ImageRef::parse("app:").is_err());
        assert!(ImageRef::parse("app@sha256:abc").is_err());
        assert!(ImageRef::parse("a//b").is_err());
        let long = format!("ghcr.io/{}", "a".repeat(300));
        assert!(ImageRef::parse(&long).unwrap_err().message.contains("255"));
    }

    #[test]
    fn path_components() {
        for ok in ["a", "a.b", "a_b", "a__b", "a-b", "a---b", "a0", "0a"] {
            assert!(valid_component(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a..b", "a___b", "_a", "a.", "a._b", "A"] {
            assert!(!valid_component(bad), "{bad}");
        }
        assert!(validate_repository("Team/App")
            .unwrap_err()
            .help
            .unwrap()
            .contains("team/app"));
    }

    #[test]
    fn hosts() {
        for ok in [
            "docker.io",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "my-reg.example.com",
        ] {
            assert!(validate_host(ok).is_ok(), "{ok}");
        }
        let e = validate_host("https://ghcr.io").unwrap_err();
        assert!(e.help.unwrap().contains("\"ghcr.io\""));
        assert!(validate_host("ghcr.io/org").is_err());
        assert!(validate_host("host:99999").is_err());
        assert!(validate_host("-bad.com").is_err());
        assert!(validate_host("under_score.com").is_err());
    }

    #[test]
    fn tags() {
        for ok in [
            "latest",
            "1.2.3",
            "v1.2.3-rc.1",
            "_x",
            "A_b-c.d",
            &"a".repeat(128),
        ] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        assert!(validate_tag("").is_err());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("-x").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag("1.2.3+build")
            .unwrap_err()
            .message
            .contains("build metadata"));
        assert!(validate_tag("feature/x").is_err());
    }

    #[test]
    fn plain_http() {
        assert!(is_plain_http("localhost:5000", false));
        assert!(is_plain_http("127.0.0.1:5001", false));
        assert!(is_plain_http("[::1]:5000", false));
        assert!(!is_plain_http("ghcr.io", false));
        assert!(is_plain_http("registry.internal:5000", true));
    }
}
