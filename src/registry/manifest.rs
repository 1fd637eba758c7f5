//! The few manifest, index and config fields multiarch reads, as plain serde structs.
//!
//! Why not the `oci-spec` crate: multiarch never builds or re-serialises a manifest (copy moves
//! the registry's raw bytes so digests stay the same), and it must read Docker's media types
//! (`manifest.list.v2`, `manifest.v2`) as readily as OCI's, including documents from older
//! tools that leave out fields `oci-spec` requires. A dozen lenient fields, every one optional
//! where registries disagree, is less code to trust than a strict model of the whole spec.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::platform::Platform;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The `Accept` header of every manifest request: all four, so no registry down-converts.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// The annotation BuildKit puts on attestation (provenance, SBOM) entries of an index.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An OCI index or Docker manifest list.
    Index,
    /// One image manifest.
    Image,
    /// Anything else (schema 1, an artifact).
    Other,
}

/// A manifest as fetched: the raw bytes (what the digest is of), its media type and digest.
#[derive(Debug, Clone)]
pub struct RawManifest {
    /// The exact bytes the registry served.
    pub bytes: Vec<u8>,
    /// Media type (from the document, else the `Content-Type` header).
    pub media_type: String,
    /// `sha256:...` of `bytes`.
    pub digest: String,
}

impl RawManifest {
    /// Index, image or other.
    pub fn kind(&self) -> Kind {
        kind_of(&self.media_type)
    }

    /// Parses the document.
    pub fn parse(&self) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }
}

/// Classifies a media type.
pub fn kind_of(media_type: &str) -> Kind {
    match media_type {
        OCI_INDEX | DOCKER_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Image,
        _ => Kind::Other,
    }
}

/// An index or a manifest: the fields of both, each optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// `mediaType`, if the document states it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Index entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Image config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Image layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:...`.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Platform of an index entry.
    #[serde(default)]
    pub platform: Option<PlatformField>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Foreign layers' download URLs (Windows base layers): such blobs are not in the registry.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// `platform` of an index entry.
#[derive(Debug, Clone, Deserialize)]
pub struct PlatformField {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default)]
    pub variant: Option<String>,
}

impl Descriptor {
    /// The entry's platform, normalised; `None` when it states none.
    pub fn platform(&self) -> Option<Platform> {
        let p = self.platform.as_ref()?;
        Some(Platform::from_parts(
            &p.os,
            &p.architecture,
            p.variant.as_deref(),
        ))
    }

    /// True for attestation entries (provenance, SBOM) that BuildKit adds to an index:
    /// annotated `vnd.docker.reference.type`, or platform `unknown/unknown`.
    pub fn is_attestation(&self) -> bool {
        if self.annotations.contains_key(REFERENCE_TYPE) {
            return true;
        }
        matches!(&self.platform, Some(p) if p.os == "unknown" && p.architecture == "unknown")
    }
}

/// The image config fields verify reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    /// Architecture the image says it is for.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// Run settings.
    #[serde(default)]
    pub config: Option<RunConfig>,
}

impl ImageConfig {
    /// The platform the config states, normalised.
    pub fn platform(&self) -> Platform {
        Platform::from_parts(&self.os, &self.architecture, self.variant.as_deref())
    }
}

/// `config` of an image config: what runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `ENTRYPOINT`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `ENV`, `NAME=value`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `WORKDIR`.
    #[serde(default)]
    pub working_dir: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_index_with_an_attestation() {
        let doc = r#"{
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.index.v1+json",
          "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa", "size": 10,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:bb", "size": 5,
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.digest": "sha256:aa", "vnd.docker.reference.type": "attestation-manifest"}}
          ]
        }"#;
        let m: Manifest = serde_json::from_str(doc).unwrap();
        assert_eq!(m.manifests.len(), 2);
        assert_eq!(
            m.manifests[0].platform().unwrap().to_string(),
            "linux/arm64"
        );
        assert!(!m.manifests[0].is_attestation());
        assert!(m.manifests[1].is_attestation());
        assert_eq!(kind_of(m.media_type.as_deref().unwrap()), Kind::Index);
    }

    #[test]
    fn config_platforms_normalise() {
        let c: ImageConfig = serde_json::from_str(
            r#"{"architecture":"arm","os":"linux","variant":"v7","config":{"Entrypoint":["/bin/app"],"Env":["PATH=/bin"]}}"#,
        )
        .unwrap();
        assert_eq!(c.platform().to_string(), "linux/arm/v7");
        let c: ImageConfig =
            serde_json::from_str(r#"{"architecture":"aarch64","os":"linux"}"#).unwrap();
        assert_eq!(c.platform(), Platform::new("linux", "arm64", None));
    }
}
