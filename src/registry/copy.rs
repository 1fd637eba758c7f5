//! `copy`: an index with all its children and blobs, to another tag, repository or registry.
//!
//! The digest of an index is the sha256 of its bytes, so keeping it means never re-serialising:
//! every manifest is written back exactly as it was read, children by digest before the index
//! that names them (a registry may refuse an index whose children it lacks). Blobs the
//! destination has are skipped (`HEAD`); within one registry they are mounted from the source
//! repository (`POST ...?mount=&from=`), which costs no transfer; otherwise they are streamed
//! through a temporary file (checked against their digest) and uploaded in one `PUT`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::client::{self, Client, Endpoint, ErrorKind, Mount, RegistryError};
use super::manifest::{Kind, RawManifest};
use crate::reference::ImageRef;

/// One side of a copy.
#[derive(Debug, Clone)]
pub struct Location {
    /// The image reference (tag or digest).
    pub image: ImageRef,
    /// How to reach its registry.
    pub endpoint: Endpoint,
}

/// What a copy did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    /// Digest of the copied index (or manifest): the same at both ends.
    pub digest: String,
    /// Manifests written (children and the top one).
    pub manifests: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs mounted from the source repository.
    pub blobs_mounted: usize,
    /// Blobs the destination already had.
    pub blobs_skipped: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
}

/// Copies `src` to `dst`, keeping the digest. Blobs are copied on up to `jobs` threads.
pub fn copy_image(
    client: &Client,
    src: &Location,
    dst: &Location,
    jobs: usize,
) -> Result<CopyReport, RegistryError> {
    let top = client
        .get_manifest(&src.endpoint, &src.image.repository, src.image.reference())?
        .ok_or_else(|| not_found(&src.image))?;
    if let Some(d) = &dst.image.digest {
        if *d != top.digest {
            return Err(RegistryError {
                kind: ErrorKind::Digest,
                message: format!(
                    "{} is {}, not the digest {d} the destination names",
                    src.image, top.digest
                ),
                help: Some("name the destination by tag, or by the source's digest".into()),
            });
        }
    }
    let mut report = CopyReport {
        digest: top.digest.clone(),
        ..CopyReport::default()
    };
    // Manifests to write, children first; blobs to copy.
    let mut manifests: Vec<RawManifest> = Vec::new();
    let mut blobs: Vec<(String, u64)> = Vec::new();
    walk(client, src, &top, 0, &mut manifests, &mut blobs)?;
    let same_registry = src.endpoint.api_host == dst.endpoint.api_host;
    let stats = Mutex::new(&mut report);
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 8).min(blobs.len().max(1)) {
            s.spawn(|| loop {
                if first_error.lock().unwrap().is_some() {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((digest, size)) = blobs.get(i) else {
                    break;
                };
                match copy_blob(client, src, dst, digest, same_registry) {
                    Ok(how) => {
                        let mut r = stats.lock().unwrap();
                        match how {
                            Copied::Skipped => r.blobs_skipped += 1,
                            Copied::Mounted => r.blobs_mounted += 1,
                            Copied::Uploaded => {
                                r.blobs_uploaded += 1;
                                r.bytes_uploaded += size;
                            }
                        }
                    }
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let repo = &dst.image.repository;
    for m in &manifests {
        // A child the destination already holds is not written again: rewriting it gains
        // nothing, and the reference registry's storage races on concurrent rewrites.
        if client.manifest_exists(&dst.endpoint, repo, &m.digest)? {
            continue;
        }
        client.put_manifest(&dst.endpoint, repo, &m.digest, &m.media_type, &m.bytes)?;
        report.manifests += 1;
    }
    let written = client.put_manifest(
        &dst.endpoint,
        repo,
        dst.image.reference_for_push(&top.digest),
        &top.media_type,
        &top.bytes,
    )?;
    report.manifests += 1;
    if written != top.digest {
        return Err(RegistryError {
            kind: ErrorKind::Digest,
            message: format!(
                "{} stored the index as {written}, not {}",
                dst.endpoint.name, top.digest
            ),
            help: None,
        });
    }
    Ok(report)
}

trait PushReference {
    fn reference_for_push<'a>(&'a self, digest: &'a str) -> &'a str;
}

impl PushReference for ImageRef {
    /// The tag if there is one, else the digest.
    fn reference_for_push<'a>(&'a self, digest: &'a str) -> &'a str {
        self.tag.as_deref().unwrap_or(digest)
    }
}

enum Copied {
    Skipped,
    Mounted,
    Uploaded,
}

fn copy_blob(
    client: &Client,
    src: &Location,
    dst: &Location,
    digest: &str,
    same_registry: bool,
) -> Result<Copied, RegistryError> {
    let repo = &dst.image.repository;
    if client.blob_exists(&dst.endpoint, repo, digest, true)? {
        return Ok(Copied::Skipped);
    }
    let location = if same_registry && src.image.repository != *repo {
        match client.mount_blob(&dst.endpoint, repo, digest, &src.image.repository)? {
            Mount::Mounted => return Ok(Copied::Mounted),
            Mount::Upload(loc) => loc,
        }
    } else {
        client.start_upload(&dst.endpoint, repo)?
    };
    // Stream the blob to a temporary file, checking its digest, then upload the file: the
    // upload then has a length and can be retried without fetching the blob again.
    let what = format!("{}@{digest}", src.image.name());
    let mut reader = client.open_blob(&src.endpoint, &src.image.repository, digest)?;
    let mut tmp = tempfile_in_tmp().map_err(|e| client::io_error(&what, e))?;
    std::io::copy(&mut reader, tmp.file()).map_err(|e| client::io_error(&what, e))?;
    tmp.file().flush().map_err(|e| client::io_error(&what, e))?;
    client.finish_upload(&dst.endpoint, repo, &location, digest, &tmp.path)?;
    Ok(Copied::Uploaded)
}

/// A temporary file removed when dropped (the crate has no runtime `tempfile` dependency).
struct TempFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl TempFile {
    fn file(&mut self) -> &mut std::fs::File {
        self.file.as_mut().expect("open")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_in_tmp() -> std::io::Result<TempFile> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path =
        std::env::temp_dir().join(format!("multiarch-blob-{}-{n}-{nanos}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok(TempFile {
        path,
        file: Some(file),
    })
}

/// Collects the children of `m` (depth first, children before the index naming them, nested
/// indexes included) and the blobs of every image manifest.
fn walk(
    client: &Client,
    src: &Location,
    m: &RawManifest,
    depth: usize,
    manifests: &mut Vec<RawManifest>,
    blobs: &mut Vec<(String, u64)>,
) -> Result<(), RegistryError> {
    if m.kind() != Kind::Index {
        return collect_blobs(m, &src.image, blobs);
    }
    if depth > 4 {
        return Err(RegistryError {
            kind: ErrorKind::Protocol,
            message: format!("{} nests indexes more than 4 deep", src.image),
            help: None,
        });
    }
    let index = m.parse().map_err(|e| parse_err(&src.image, e))?;
    for d in &index.manifests {
        if manifests.iter().any(|x| x.digest == d.digest) {
            continue;
        }
        let child = client
            .get_manifest(&src.endpoint, &src.image.repository, &d.digest)?
            .ok_or_else(|| not_found(&src.image.with_digest(&d.digest)))?;
        walk(client, src, &child, depth + 1, manifests, blobs)?;
        manifests.push(child);
    }
    Ok(())
}

fn collect_blobs(
    m: &RawManifest,
    image: &ImageRef,
    out: &mut Vec<(String, u64)>,
) -> Result<(), RegistryError> {
    let doc = m.parse().map_err(|e| parse_err(image, e))?;
    for d in doc.config.iter().chain(doc.layers.iter()) {
        // Foreign layers (with `urls`) are not in the registry, and need not be.
        if d.urls.is_empty() && !out.iter().any(|(x, _)| *x == d.digest) {
            out.push((d.digest.clone(), d.size));
        }
    }
    Ok(())
}

fn not_found(image: &ImageRef) -> RegistryError {
    RegistryError {
        kind: ErrorKind::NotFound,
        message: format!("{image} does not exist"),
        help: Some("check the reference with `multiarch inspect`".into()),
    }
}

fn parse_err(image: &ImageRef, e: serde_json::Error) -> RegistryError {
    RegistryError {
        kind: ErrorKind::Protocol,
        message: format!("the manifest of {image} cannot be read: {e}"),
        help: None,
    }
}
