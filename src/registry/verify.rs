//! `verify`: prove from the registry itself that each declared tag holds exactly the declared
//! platforms.
//!
//! For every publication x tag (from [`crate::release::expand`], the one list of what a release
//! publishes):
//! 1. the tag exists, and is an index or manifest list (a single-platform manifest fails, naming
//!    the platforms it lacks);
//! 2. the index's entries, attestations left out, are exactly the declared platforms, compared
//!    normalised (`arm64/v8` is `arm64`); missing, extra and duplicated ones are named;
//! 3. each platform's image config states the same os/architecture/variant as its entry;
//! 4. with `deep`, the binary the image runs (entrypoint, else cmd; found through `PATH`,
//!    symlinks and `#!` interpreters in the stacked layers) is an ELF file for that
//!    architecture.
//!
//! Tags are checked concurrently on one [`Client`]. Per-platform work (child manifest, config,
//! layers) is keyed by digest and done once however many tags share it, which is the common
//! case: `1.2.3`, `1.2` and `latest` of one release are the same index.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use super::client::{Client, Endpoint, ErrorKind, RegistryError};
use super::elf::{self, LayerFs, Node};
use super::manifest::{ImageConfig, Kind, RawManifest};
use crate::model::Project;
use crate::platform::Platform;
use crate::release::Publication;

/// Which tags of a publication to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagFilter {
    /// Only immutable tags (`1.2.3`): what `apply` checks before floating tags move.
    Immutable,
    /// Only floating tags (`latest`, `1`, `1.2`).
    Floating,
    /// Every tag.
    All,
}

impl TagFilter {
    fn wants(self, floating: bool) -> bool {
        match self {
            TagFilter::Immutable => !floating,
            TagFilter::Floating => floating,
            TagFilter::All => true,
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The tag does not exist.
    TagMissing,
    /// The tag is a single-platform manifest, not an index.
    NotAnIndex,
    /// A declared platform is not in the index.
    MissingPlatform,
    /// The index holds a platform that was not declared.
    ExtraPlatform,
    /// Two index entries have the same platform.
    DuplicatePlatform,
    /// The image config states another platform than the index entry.
    ConfigMismatch,
    /// `--deep`: the entrypoint binary is built for another architecture.
    WrongBinary,
    /// `--deep`: the entrypoint binary is not in the image.
    BinaryNotFound,
    /// `--deep`: the binary could not be checked (not a failure).
    DeepSkipped,
    /// The registry could not be asked (network, auth, rate limit).
    Registry,
}

/// One thing verify found about a tag.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The platform concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Said for people.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// True when it makes the tag fail (false for notes such as a skipped deep check).
    pub failure: bool,
}

impl Finding {
    fn fail(kind: FindingKind, platform: Option<&Platform>, message: String) -> Finding {
        Finding {
            kind,
            platform: platform.map(Platform::to_string),
            message,
            help: None,
            failure: true,
        }
    }

    fn help(mut self, h: impl Into<String>) -> Finding {
        self.help = Some(h.into());
        self
    }
}

/// The entrypoint binary `--deep` looked at.
#[derive(Debug, Clone, Serialize)]
pub struct BinaryCheck {
    /// Path in the image (after symlinks and interpreters).
    pub path: String,
    /// What its ELF header says (`ELF 64-bit LSB x86-64`).
    pub elf: String,
    /// Its architecture in OCI spelling, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

/// One platform of a checked tag.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformCheck {
    /// The platform (as the index states it, normalised).
    pub platform: String,
    /// Digest of its image manifest.
    pub digest: String,
    /// The platform its image config states.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// The binary checked by `--deep`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinaryCheck>,
}

/// The result for one tag in one registry.
#[derive(Debug, Clone, Serialize)]
pub struct TagCheck {
    /// Image key.
    pub image: String,
    /// Registry name.
    pub registry: String,
    /// `host/repository:tag`.
    pub reference: String,
    /// The tag.
    pub tag: String,
    /// Floating tag (`latest`, ...).
    pub floating: bool,
    /// The declared platforms.
    pub expected: Vec<String>,
    /// Digest of what the tag points at, if it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The platforms found (attestations left out).
    pub platforms: Vec<PlatformCheck>,
    /// What is wrong (and notes).
    pub findings: Vec<Finding>,
    /// No failing finding.
    pub ok: bool,
}

/// Everything verify found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// True when every checked tag is right.
    pub ok: bool,
    /// Whether `--deep` checks ran.
    pub deep: bool,
    /// One entry per tag per registry, in publication order.
    pub checks: Vec<TagCheck>,
}

impl VerifyReport {
    /// True when every checked tag is right.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// The tags that failed.
    pub fn failures(&self) -> impl Iterator<Item = &TagCheck> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// The report for people: one line per tag, the problems under failing ones, a summary.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let digest = c
                .digest
                .as_deref()
                .map(|d| format!("  {}", short(d)))
                .unwrap_or_default();
            let plats: Vec<&str> = c.platforms.iter().map(|p| p.platform.as_str()).collect();
            let plats = if plats.is_empty() {
                String::new()
            } else {
                format!("  [{}]", plats.join(", "))
            };
            out.push_str(&format!(
                "{} {}{digest}{plats}\n",
                if c.ok { "ok  " } else { "FAIL" },
                c.reference
            ));
            for f in &c.findings {
                out.push_str(&format!(
                    "     {} {}\n",
                    if f.failure { "-" } else { "note:" },
                    f.message
                ));
                if let Some(h) = &f.help {
                    out.push_str(&format!("       help: {h}\n"));
                }
            }
            if self.deep {
                for p in &c.platforms {
                    if let Some(b) = &p.binary {
                        if c.ok {
                            out.push_str(&format!(
                                "     {}: {} is {}\n",
                                p.platform, b.path, b.elf
                            ));
                        }
                    }
                }
            }
        }
        let failed = self.failures().count();
        let total = self.checks.len();
        if total == 0 {
            out.push_str("verify: no tag to check\n");
        } else if failed == 0 {
            out.push_str(&format!(
                "verify: ok: {total} {} hold exactly the declared platforms{}\n",
                if total == 1 { "tag" } else { "tags" },
                if self.deep {
                    ", and their entrypoints match them"
                } else {
                    ""
                }
            ));
        } else {
            out.push_str(&format!("verify: {failed} of {total} tags failed\n"));
        }
        out
    }
}

fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
        _ => digest.to_string(),
    }
}

/// Checks every wanted tag of these publications in their registries, credentials taken from
/// the project's registries (env variables, else the docker config). Never fails as a whole:
/// registry errors become findings of the tags concerned.
pub fn verify_publications(
    project: &Project,
    publications: &[Publication],
    which: TagFilter,
    deep: bool,
) -> VerifyReport {
    let client = Client::new();
    let mut endpoints = HashMap::new();
    for p in publications {
        endpoints.entry(p.registry.clone()).or_insert_with(|| {
            match project.registries.get(&p.registry) {
                Some(reg) => Endpoint::for_registry(reg),
                None => Endpoint::for_host(&p.host, false, Some(project)),
            }
        });
    }
    verify_with(&client, &endpoints, publications, which, deep)
}

/// What is learned once per platform manifest, shared by the tags that reference it.
#[derive(Debug, Clone)]
struct ChildInfo {
    config: Option<Platform>,
    binary: Option<BinaryCheck>,
    findings: Vec<(FindingKind, String, bool)>,
}

type ChildCache =
    Mutex<HashMap<(String, String, String), Arc<OnceLock<Result<ChildInfo, RegistryError>>>>>;

/// [`verify_publications`] with a given client and endpoints (keyed by registry name).
pub fn verify_with(
    client: &Client,
    endpoints: &HashMap<String, Endpoint>,
    publications: &[Publication],
    which: TagFilter,
    deep: bool,
) -> VerifyReport {
    // Reach each registry once first: auth is learned before the tags run concurrently, and an
    // unreachable registry or refused login is one clear message per tag, not forty timeouts.
    let mut reachable: HashMap<String, Result<(), RegistryError>> = HashMap::new();
    for p in publications {
        if !reachable.contains_key(&p.registry) {
            let r = match endpoints.get(&p.registry) {
                Some(ep) => client.ping(ep),
                None => Err(RegistryError {
                    kind: ErrorKind::Protocol,
                    message: format!("no endpoint for registry \"{}\"", p.registry),
                    help: None,
                }),
            };
            reachable.insert(p.registry.clone(), r);
        }
    }
    let jobs: Vec<(&Publication, &crate::release::Tag)> = publications
        .iter()
        .flat_map(|p| {
            p.tags
                .iter()
                .filter(|t| which.wants(t.floating))
                .map(move |t| (p, t))
        })
        .collect();
    let results: Mutex<Vec<Option<TagCheck>>> = Mutex::new(vec![None; jobs.len()]);
    let next = AtomicUsize::new(0);
    let cache: ChildCache = Mutex::new(HashMap::new());
    let workers = jobs.len().clamp(1, 16);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((p, t)) = jobs.get(i) else { break };
                let check = match (&reachable[&p.registry], endpoints.get(&p.registry)) {
                    (Ok(()), Some(ep)) => {
                        check_tag(client, ep, p, &t.name, t.floating, deep, &cache)
                    }
                    (Err(e), _) => {
                        let mut c = blank(p, &t.name, t.floating);
                        c.findings.push(registry_finding(e));
                        c.ok = false;
                        c
                    }
                    (Ok(()), None) => unreachable!("ping fails without an endpoint"),
                };
                results.lock().unwrap()[i] = Some(check);
            });
        }
    });
    let checks: Vec<TagCheck> = results
        .into_inner()
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    VerifyReport {
        ok: checks.iter().all(|c| c.ok),
        deep,
        checks,
    }
}

fn blank(p: &Publication, tag: &str, floating: bool) -> TagCheck {
    TagCheck {
        image: p.image.clone(),
        registry: p.registry.clone(),
        reference: format!("{}/{}:{tag}", p.host, p.repository),
        tag: tag.to_string(),
        floating,
        expected: p.platforms.iter().map(Platform::to_string).collect(),
        digest: None,
        platforms: Vec::new(),
        findings: Vec::new(),
        ok: true,
    }
}

fn registry_finding(e: &RegistryError) -> Finding {
    Finding {
        kind: FindingKind::Registry,
        platform: None,
        message: e.message.clone(),
        help: e.help.clone(),
        failure: true,
    }
}

fn check_tag(
    client: &Client,
    ep: &Endpoint,
    p: &Publication,
    tag: &str,
    floating: bool,
    deep: bool,
    cache: &ChildCache,
) -> TagCheck {
    let mut c = blank(p, tag, floating);
    let list = |ps: &[Platform]| {
        ps.iter()
            .map(Platform::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let raw = match client.get_manifest(ep, &p.repository, tag) {
        Ok(Some(m)) => m,
        Ok(None) => {
            c.findings.push(
                Finding::fail(
                    FindingKind::TagMissing,
                    None,
                    format!("{} does not exist", c.reference),
                )
                .help("publish it (multiarch apply) or check --version"),
            );
            c.ok = false;
            return c;
        }
        Err(e) => {
            c.findings.push(registry_finding(&e));
            c.ok = false;
            return c;
        }
    };
    c.digest = Some(raw.digest.clone());
    // (platform, manifest digest) of each entry.
    let entries: Vec<(Platform, String)> = match raw.kind() {
        Kind::Index => match raw.parse() {
            Ok(m) => {
                let mut v = Vec::new();
                for d in m.manifests.iter().filter(|d| !d.is_attestation()) {
                    match d.platform() {
                        Some(pl) => v.push((pl, d.digest.clone())),
                        None => c.findings.push(Finding::fail(
                            FindingKind::ExtraPlatform,
                            None,
                            format!(
                                "the index has an entry without a platform ({})",
                                short(&d.digest)
                            ),
                        )),
                    }
                }
                v
            }
            Err(e) => {
                c.findings.push(Finding::fail(
                    FindingKind::Registry,
                    None,
                    format!("the index at {} cannot be read: {e}", c.reference),
                ));
                c.ok = false;
                return c;
            }
        },
        Kind::Image => {
            let plat = child(
                client,
                ep,
                &p.repository,
                &raw.digest,
                Some(raw.clone()),
                None,
                false,
                cache,
            )
            .ok()
            .and_then(|i| i.config);
            let what = plat.as_ref().map(|p| format!(" ({p})")).unwrap_or_default();
            let missing: Vec<Platform> = p
                .platforms
                .iter()
                .filter(|d| Some(*d) != plat.as_ref())
                .cloned()
                .collect();
            let mut f = Finding::fail(
                FindingKind::NotAnIndex,
                plat.as_ref(),
                format!("{} is a single-platform image{what}, not an index", c.reference),
            )
            .help("publish all platforms in one index: build with --platform for each (multiarch apply does)");
            if !missing.is_empty() {
                f.message.push_str(&format!("; missing {}", list(&missing)));
            }
            c.findings.push(f);
            for m in &missing {
                c.findings.push(Finding::fail(
                    FindingKind::MissingPlatform,
                    Some(m),
                    format!("missing platform {m}"),
                ));
            }
            if let Some(pl) = plat {
                c.platforms.push(PlatformCheck {
                    platform: pl.to_string(),
                    digest: raw.digest.clone(),
                    config: Some(pl.to_string()),
                    binary: None,
                });
            }
            c.ok = false;
            return c;
        }
        Kind::Other => {
            c.findings.push(Finding::fail(
                FindingKind::NotAnIndex,
                None,
                format!(
                    "{} is not an image index nor an image (media type \"{}\")",
                    c.reference, raw.media_type
                ),
            ));
            c.ok = false;
            return c;
        }
    };
    let found: Vec<Platform> = entries.iter().map(|(p, _)| p.clone()).collect();
    for d in &p.platforms {
        if !found.contains(d) {
            let holds = if found.is_empty() {
                "the index holds no platform".to_string()
            } else {
                format!("the index holds {}", list(&found))
            };
            c.findings.push(
                Finding::fail(
                    FindingKind::MissingPlatform,
                    Some(d),
                    format!("missing platform {d} ({holds})"),
                )
                .help(format!(
                    "build and push {d} too; a {} machine cannot run this tag",
                    d
                )),
            );
        }
    }
    let mut seen: Vec<&Platform> = Vec::new();
    for (pl, _) in &entries {
        if seen.contains(&pl) {
            c.findings.push(Finding::fail(
                FindingKind::DuplicatePlatform,
                Some(pl),
                format!("platform {pl} appears twice in the index"),
            ));
            continue;
        }
        seen.push(pl);
        if !p.platforms.contains(pl) {
            c.findings.push(
                Finding::fail(
                    FindingKind::ExtraPlatform,
                    Some(pl),
                    format!("extra platform {pl}, which is not declared for this registry"),
                )
                .help(format!(
                    "declare {pl} in the image's platforms, or stop building it"
                )),
            );
        }
    }
    for (pl, digest) in &entries {
        let info = child(
            client,
            ep,
            &p.repository,
            digest,
            None,
            Some(pl),
            deep,
            cache,
        );
        let mut pc = PlatformCheck {
            platform: pl.to_string(),
            digest: digest.clone(),
            config: None,
            binary: None,
        };
        match info {
            Ok(info) => {
                pc.config = info.config.as_ref().map(Platform::to_string);
                pc.binary = info.binary.clone();
                if let Some(cfg) = &info.config {
                    if cfg != pl {
                        c.findings.push(
                            Finding::fail(
                                FindingKind::ConfigMismatch,
                                Some(pl),
                                format!("the {pl} entry's image config says it is {cfg}"),
                            )
                            .help("the image was built or assembled for the wrong platform; rebuild it with --platform"),
                        );
                    }
                }
                for (kind, message, failure) in &info.findings {
                    c.findings.push(Finding {
                        kind: *kind,
                        platform: Some(pl.to_string()),
                        message: message.clone(),
                        help: (*kind == FindingKind::WrongBinary).then(|| {
                            format!(
                                "the Dockerfile probably installs the same binary for every platform; pick it by TARGETARCH ({})",
                                pl.arch
                            )
                        }),
                        failure: *failure,
                    });
                }
            }
            Err(e) => c.findings.push(registry_finding(&e)),
        }
        c.platforms.push(pc);
    }
    c.ok = !c.findings.iter().any(|f| f.failure);
    c
}

/// Reads (once per digest) a platform's manifest, its config, and with `deep` its binary.
#[allow(clippy::too_many_arguments)]
fn child(
    client: &Client,
    ep: &Endpoint,
    repository: &str,
    digest: &str,
    known: Option<RawManifest>,
    platform: Option<&Platform>,
    deep: bool,
    cache: &ChildCache,
) -> Result<ChildInfo, RegistryError> {
    let key = (
        ep.api_host.clone(),
        repository.to_string(),
        format!("{digest}{}", if deep { "+deep" } else { "" }),
    );
    let cell = cache.lock().unwrap().entry(key).or_default().clone();
    cell.get_or_init(|| {
        let raw = match known {
            Some(r) => r,
            None => client.get_manifest(ep, repository, digest)?.ok_or_else(|| RegistryError {
                kind: ErrorKind::NotFound,
                message: format!("{}/{repository}@{digest} is in the index but not in the registry", ep.name),
                help: Some("the index points at a manifest the repository does not have; push the image again".into()),
            })?,
        };
        let m = raw.parse().map_err(|e| RegistryError {
            kind: ErrorKind::Protocol,
            message: format!("{}/{repository}@{digest} cannot be read: {e}", ep.name),
            help: None,
        })?;
        let Some(cfg_desc) = m.config else {
            return Ok(ChildInfo { config: None, binary: None, findings: Vec::new() });
        };
        let bytes = client.get_blob(ep, repository, &cfg_desc.digest)?;
        let config: ImageConfig = serde_json::from_slice(&bytes).unwrap_or_default();
        let mut info = ChildInfo {
            config: Some(config.platform()),
            binary: None,
            findings: Vec::new(),
        };
        if deep {
            let target = platform.cloned().unwrap_or_else(|| config.platform());
            deep_check(client, ep, repository, &m.layers, &config, &target, &mut info)?;
        }
        Ok(info)
    })
    .clone()
}

/// Reads the layers and checks the entrypoint binary's ELF machine against `platform`.
fn deep_check(
    client: &Client,
    ep: &Endpoint,
    repository: &str,
    layers: &[super::manifest::Descriptor],
    config: &ImageConfig,
    platform: &Platform,
    info: &mut ChildInfo,
) -> Result<(), RegistryError> {
    let run = config.config.clone().unwrap_or_default();
    let argv: Vec<String> = match (&run.entrypoint, &run.cmd) {
        (Some(e), _) if !e.is_empty() => e.clone(),
        (_, Some(c)) if !c.is_empty() => c.clone(),
        _ => {
            info.findings.push((
                FindingKind::DeepSkipped,
                "no entrypoint or cmd to check".into(),
                false,
            ));
            return Ok(());
        }
    };
    let mut fs = LayerFs::new();
    for l in layers {
        if !l.urls.is_empty() {
            continue;
        }
        let reader = client.open_blob(ep, repository, &l.digest)?;
        if let Err(e) = fs.apply(reader) {
            info.findings.push((
                FindingKind::DeepSkipped,
                format!("layer {}: {e}", short(&l.digest)),
                false,
            ));
            return Ok(());
        }
    }
    let env_path = run
        .env
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("PATH=").map(str::to_string))
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let workdir = run.working_dir.clone().unwrap_or_else(|| "/".into());
    let mut command = argv[0].clone();
    let mut via: Vec<String> = Vec::new();
    for _ in 0..4 {
        let (path, node) = match fs.find_command(&command, &env_path, &workdir) {
            Ok(x) => x,
            Err(e) => {
                info.findings.push((
                    FindingKind::BinaryNotFound,
                    format!("the entrypoint {e}"),
                    true,
                ));
                return Ok(());
            }
        };
        let head = match node {
            Node::File(h) => h,
            _ => {
                info.findings.push((
                    FindingKind::BinaryNotFound,
                    format!("the entrypoint {path} is not a regular file"),
                    true,
                ));
                return Ok(());
            }
        };
        let shown = if via.is_empty() {
            path.clone()
        } else {
            format!("{path} (interpreter of {})", via.join(" -> "))
        };
        if let Some(e) = elf::read_elf(head) {
            info.binary = Some(BinaryCheck {
                path: shown.clone(),
                elf: e.describe(),
                arch: e.arch().map(str::to_string),
            });
            if !e.matches(platform) {
                let arch = e
                    .arch()
                    .map(|a| format!(", a linux/{a} binary"))
                    .unwrap_or_default();
                info.findings.push((
                    FindingKind::WrongBinary,
                    format!("the {platform} image runs {shown}, which is {}{arch}: it will fail with \"exec format error\" on {platform}", e.describe()),
                    true,
                ));
            }
            return Ok(());
        }
        match elf::shebang(head) {
            Some(interp) => {
                via.push(path);
                command = interp;
            }
            None => {
                info.findings.push((
                    FindingKind::DeepSkipped,
                    format!("the entrypoint {shown} is neither an ELF binary nor a #! script"),
                    false,
                ));
                return Ok(());
            }
        }
    }
    info.findings.push((
        FindingKind::DeepSkipped,
        "the #! interpreters nest too deep".into(),
        false,
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_filters() {
        assert!(TagFilter::Immutable.wants(false));
        assert!(!TagFilter::Immutable.wants(true));
        assert!(TagFilter::Floating.wants(true));
        assert!(TagFilter::All.wants(true) && TagFilter::All.wants(false));
    }

    #[test]
    fn platform_matching_is_normalised() {
        // What the index says and what the project declares meet in normal form.
        let idx = Platform::from_parts("linux", "arm64", Some("v8"));
        let declared: Platform = "linux/aarch64".parse().unwrap();
        assert_eq!(idx, declared);
        let cfg = Platform::from_parts("linux", "arm", None);
        assert_eq!(cfg, "linux/arm/v7".parse::<Platform>().unwrap());
        assert_ne!(Platform::from_parts("linux", "arm", Some("v6")), cfg);
        assert_eq!(
            Platform::from_parts("linux", "x86_64", None).to_string(),
            "linux/amd64"
        );
    }

    #[test]
    fn renders_failures_with_their_problems() {
        let r = VerifyReport {
            ok: false,
            deep: false,
            checks: vec![TagCheck {
                image: "app".into(),
                registry: "local".into(),
                reference: "localhost:5000/app:1.0".into(),
                tag: "1.0".into(),
                floating: false,
                expected: vec!["linux/amd64".into(), "linux/arm64".into()],
                digest: Some(format!("sha256:{}", "a".repeat(64))),
                platforms: vec![],
                findings: vec![Finding::fail(
                    FindingKind::MissingPlatform,
                    None,
                    "missing platform linux/amd64".into(),
                )],
                ok: false,
            }],
        };
        let t = r.render_text();
        assert!(
            t.contains("FAIL localhost:5000/app:1.0  sha256:aaaaaaaaaaaa"),
            "{t}"
        );
        assert!(t.contains("- missing platform linux/amd64"), "{t}");
        assert!(t.ends_with("verify: 1 of 1 tags failed\n"), "{t}");
    }
}
