//! The OCI distribution client, and the commands built on it: `verify`, `inspect`, `copy`.
//!
//! # Library API (for `apply`, `doctor` and the planner)
//!
//! ```ignore
//! use multiarch::registry::{self, TagFilter};
//!
//! // After the immutable tags are written, before floating tags move:
//! let report = registry::verify_publications(&project, &release.publications, TagFilter::Immutable, false);
//! eprint!("{}", report.render_text());
//! if !report.ok() { /* stop: floating tags must not move */ }
//!
//! // A registry copy step (extra tag, or a further registry), keeping the index digest:
//! let client = registry::Client::new();
//! let src = registry::Location { image: ImageRef::parse("localhost:5000/app:1.2.3")?,
//!                                endpoint: registry::Endpoint::for_registry(&project.registries["local"]) };
//! let dst = registry::Location { image: ImageRef::parse("ghcr.io/org/app:1.2.3")?,
//!                                endpoint: registry::Endpoint::for_registry(&project.registries["ghcr"]) };
//! let done: registry::CopyReport = registry::copy_image(&client, &src, &dst, 4)?;
//!
//! // doctor: can we reach and log in to a registry?
//! client.ping(&registry::Endpoint::for_registry(reg))?;   // Err(RegistryError) says what to do
//! ```
//!
//! * [`verify_publications`] never fails as a whole: registry errors (unreachable, 401, rate
//!   limit) become failing findings of the tags concerned, so one report says everything.
//!   [`VerifyReport`] serialises to the JSON that `verify --format json` prints.
//! * [`Endpoint::for_registry`] takes credentials from the registry's `username-env` /
//!   `password-env`, else the docker config (helpers, `credsStore`, `auths`).
//! * [`RegistryError`] converts into [`crate::Problem`] and [`crate::Error`] (exit code 1).
//!
//! # Modules
//!
//! * `client`: requests, auth challenges and tokens, retries, digest checks;
//! * `auth`, `credentials`: challenges, secrets that never print, where credentials come from;
//! * `manifest`: the few manifest/index/config fields read (plain serde; see why there);
//! * `verify`, `elf`: the checks, and the layer walk of `--deep`;
//! * `copy`: index + children + blobs, digest kept.

pub mod auth;
pub mod client;
pub mod copy;
pub mod credentials;
pub mod elf;
pub mod manifest;
pub mod verify;

use serde::Serialize;

pub use client::{Client, Endpoint, ErrorKind, RegistryError, Retry};
pub use copy::{copy_image, CopyReport, Location};
pub use verify::{
    verify_publications, verify_with, Finding, FindingKind, TagCheck, TagFilter, VerifyReport,
};

use crate::cli::{Cli, CopyArgs, InspectArgs, ReportFormat, VerifyArgs};
use crate::error::{Error, Problem, Result, EXIT_FAILED, EXIT_OK};
use crate::model::Project;
use crate::reference::ImageRef;
use manifest::{ImageConfig, Kind};

/// Entry point of `multiarch verify`.
pub fn verify_command(cli: &Cli, args: &VerifyArgs) -> Result<i32> {
    let project = Project::load(&cli.file)?;
    let facts = crate::host::probe_release(&project);
    let release = crate::release::expand(&project, &facts, args.version.as_deref(), &args.only)?;
    let publications = select(release.publications, &project, &args.registries, &args.tags)?;
    let report = verify_publications(&project, &publications, TagFilter::All, args.deep);
    match args.format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        ),
        ReportFormat::Text => print!("{}", report.render_text()),
    }
    Ok(if report.ok() { EXIT_OK } else { EXIT_FAILED })
}

/// Narrows publications to `--registry` names and `--tag` tags; a name that matches nothing is
/// invalid input.
fn select(
    publications: Vec<crate::release::Publication>,
    project: &Project,
    registries: &[String],
    tags: &[String],
) -> Result<Vec<crate::release::Publication>> {
    let mut problems = Vec::new();
    for r in registries {
        if !project.registries.contains_key(r) {
            let help =
                crate::suggest::did_you_mean(r, project.registries.keys().map(String::as_str))
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| {
                        format!(
                            "registries: {}",
                            project
                                .registries
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
            problems.push(
                Problem::new(format!("--registry names unknown registry \"{r}\"")).help(help),
            );
        }
    }
    for t in tags {
        if !publications
            .iter()
            .any(|p| p.tags.iter().any(|x| x.name == *t))
        {
            let all: Vec<&str> = publications
                .iter()
                .flat_map(|p| p.tags.iter().map(|x| x.name.as_str()))
                .fold(Vec::new(), |mut v, n| {
                    if !v.contains(&n) {
                        v.push(n);
                    }
                    v
                });
            problems.push(
                Problem::new(format!("--tag \"{t}\" is not a tag of this release")).help(format!(
                    "this release publishes: {} (pass --version to choose the release)",
                    all.join(", ")
                )),
            );
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok(publications
        .into_iter()
        .filter(|p| registries.is_empty() || registries.contains(&p.registry))
        .map(|mut p| {
            if !tags.is_empty() {
                p.tags.retain(|t| tags.contains(&t.name));
            }
            p
        })
        .filter(|p| !p.tags.is_empty())
        .collect())
}

/// The project next to the command, if there is a valid one: its registries lend credentials
/// and `insecure` to `inspect` and `copy`. Without one, the docker config is used.
fn optional_project(cli: &Cli) -> Option<Project> {
    cli.file
        .is_file()
        .then(|| Project::load(&cli.file).ok())
        .flatten()
}

fn parse_ref(s: &str, what: &str) -> Result<ImageRef> {
    ImageRef::parse(s).map_err(|e| {
        Error::invalid(Problem::new(format!("{what} \"{s}\": {}", e.message)).maybe_help(e.help))
    })
}

/// One platform of an inspected image.
#[derive(Debug, Clone, Serialize)]
pub struct InspectEntry {
    /// `linux/arm64`, or `unknown/unknown` for an attestation.
    pub platform: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest media type.
    pub media_type: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// Sum of the layer sizes (compressed), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers_size: Option<u64>,
    /// An attestation (provenance, SBOM) rather than a runnable image.
    pub attestation: bool,
}

/// What `inspect` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The reference, as parsed.
    pub reference: String,
    /// Digest of what it points at.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// True for an index / manifest list.
    pub index: bool,
    /// The platforms (one for a single manifest).
    pub manifests: Vec<InspectEntry>,
}

/// Reads an image reference's platforms, digests and sizes.
pub fn inspect(
    client: &Client,
    ep: &Endpoint,
    image: &ImageRef,
) -> std::result::Result<Inspection, RegistryError> {
    let raw = client
        .get_manifest(ep, &image.repository, image.reference())?
        .ok_or_else(|| RegistryError {
            kind: ErrorKind::NotFound,
            message: format!("{image} does not exist"),
            help: Some(
                "check the repository and tag; `docker push` it first if it is yours".into(),
            ),
        })?;
    let parse_err = |e: serde_json::Error| RegistryError {
        kind: ErrorKind::Protocol,
        message: format!("the manifest of {image} cannot be read: {e}"),
        help: None,
    };
    let doc = raw.parse().map_err(parse_err)?;
    let layers_of = |m: &manifest::Manifest| m.layers.iter().map(|l| l.size).sum::<u64>();
    let mut entries = Vec::new();
    let index = raw.kind() == Kind::Index;
    if index {
        // Child manifests are read concurrently for their layer sizes.
        let sizes: Vec<Option<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = doc
                .manifests
                .iter()
                .map(|d| {
                    s.spawn(move || {
                        client
                            .get_manifest(ep, &image.repository, &d.digest)
                            .ok()
                            .flatten()
                            .and_then(|m| m.parse().ok())
                            .map(|m| layers_of(&m))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        });
        for (d, layers_size) in doc.manifests.iter().zip(sizes) {
            entries.push(InspectEntry {
                platform: d
                    .platform()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "(none)".into()),
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                layers_size,
                attestation: d.is_attestation(),
            });
        }
    } else if raw.kind() == Kind::Image {
        let platform = match &doc.config {
            Some(c) => client
                .get_blob(ep, &image.repository, &c.digest)
                .ok()
                .and_then(|b| serde_json::from_slice::<ImageConfig>(&b).ok())
                .map(|c| c.platform().to_string())
                .unwrap_or_else(|| "(unknown)".into()),
            None => "(unknown)".into(),
        };
        entries.push(InspectEntry {
            platform,
            digest: raw.digest.clone(),
            media_type: raw.media_type.clone(),
            size: raw.bytes.len() as u64,
            layers_size: Some(layers_of(&doc)),
            attestation: false,
        });
    }
    Ok(Inspection {
        reference: image.to_string(),
        digest: raw.digest.clone(),
        media_type: raw.media_type.clone(),
        size: raw.bytes.len() as u64,
        index,
        manifests: entries,
    })
}

impl Inspection {
    /// The text `inspect` prints.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "{}\n  {}  {}  {} bytes{}\n",
            self.reference,
            self.digest,
            self.media_type,
            self.size,
            if self.index {
                ""
            } else {
                "  (single-platform image, not an index)"
            }
        );
        let w = self
            .manifests
            .iter()
            .map(|m| m.platform.len())
            .max()
            .unwrap_or(0);
        for m in &self.manifests {
            let layers = m
                .layers_size
                .map(|s| format!("  layers {}", human_size(s)))
                .unwrap_or_default();
            let note = if m.attestation { "  (attestation)" } else { "" };
            out.push_str(&format!(
                "  {:w$}  {}  {} bytes{layers}{note}\n",
                m.platform, m.digest, m.size
            ));
        }
        out
    }
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Entry point of `multiarch inspect`.
pub fn inspect_command(cli: &Cli, args: &InspectArgs) -> Result<i32> {
    let image = parse_ref(&args.reference, "reference")?;
    let project = optional_project(cli);
    let ep = Endpoint::for_host(&image.registry, args.insecure, project.as_ref());
    let client = Client::new();
    let found = inspect(&client, &ep, &image)?;
    match args.format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&found).expect("inspection serialises")
        ),
        ReportFormat::Text => print!("{}", found.render_text()),
    }
    Ok(EXIT_OK)
}

/// Entry point of `multiarch copy`.
pub fn copy_command(cli: &Cli, args: &CopyArgs) -> Result<i32> {
    let src = parse_ref(&args.source, "source")?;
    let dst = parse_ref(&args.destination, "destination")?;
    if dst.tag.is_none() && dst.digest.is_none() {
        return Err(Error::invalid(
            Problem::new(format!("destination \"{}\" names no tag", args.destination))
                .help(format!("write the tag, e.g. {}:latest", dst.name())),
        ));
    }
    let project = optional_project(cli);
    let client = Client::new();
    let from = Location {
        endpoint: Endpoint::for_host(&src.registry, args.insecure, project.as_ref()),
        image: src,
    };
    let to = Location {
        endpoint: Endpoint::for_host(&dst.registry, args.insecure, project.as_ref()),
        image: dst,
    };
    let started = std::time::Instant::now();
    let r = copy_image(&client, &from, &to, 4)?;
    eprintln!(
        "copied {} -> {} ({}): {} manifests, {} blobs uploaded ({}), {} mounted, {} already there, in {:.1}s",
        from.image,
        to.image,
        r.digest,
        r.manifests,
        r.blobs_uploaded,
        human_size(r.bytes_uploaded),
        r.blobs_mounted,
        r.blobs_skipped,
        started.elapsed().as_secs_f64()
    );
    println!("{}", r.digest);
    Ok(EXIT_OK)
}
