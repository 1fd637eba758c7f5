//! The raw project file: serde types that mirror `multiarch.toml` key for key.
//!
//! Everything here is optional and unvalidated; [`crate::model::resolve`] turns it into the
//! checked [`crate::model::Project`]. The JSON Schema that `multiarch schema` prints and that
//! [`crate::shape`] checks the file against is derived from these types, so the doc comments
//! below are also what editors show on hover.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Generates an image-settings struct: the settings that `[defaults]` and `[images.*]` share,
/// plus the given extra fields. A macro because serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, and unknown keys must stay errors.
macro_rules! image_settings {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Target platforms, os/arch[/variant]. Spellings are normalised (aarch64 ->
            /// arm64, armhf -> arm/v7).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub platforms: Option<Vec<String>>,
            /// Names of `[registries.*]` entries to publish to.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub registries: Option<Vec<String>>,
            /// Tag templates (minijinja): variables version, major, minor, patch, prerelease,
            /// sha, short_sha, branch, date, image, registry, env.NAME.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub tags: Option<Vec<String>>,
            /// Dockerfile stage to build (`--target`).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub target: Option<String>,
            /// Build arguments (`--build-arg NAME=VALUE`). Not for secrets: they end up in
            /// the image history.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub build_args: Option<IndexMap<String, String>>,
            /// Image labels (`--label`).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub labels: Option<IndexMap<String, String>>,
            /// Build cache: "none", "registry" (a `buildcache` tag per image in the first
            /// registry), "gha" (GitHub Actions cache, one scope per image) or "local:<dir>".
            #[serde(skip_serializing_if = "Option::is_none")]
            pub cache: Option<String>,
            /// Network for RUN steps: "default", "host" or "none" (`--network`).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub network: Option<Network>,
        }
    };
}

/// The whole `multiarch.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    title = "multiarch.toml",
    description = "A multiarch project file: images, platforms, tags and registries to release."
)]
pub struct RawConfig {
    /// The project: its name names the builder and the CI workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<RawProject>,
    /// Where the release version comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<RawRelease>,
    /// Settings every image inherits unless it sets its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defaults: Option<RawDefaults>,
    /// Registries to publish to, by a name of your choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registries: Option<IndexMap<String, RawRegistry>>,
    /// Images to build, by key; the key is the default repository name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<IndexMap<String, RawImage>>,
    /// The buildx builder: driver, emulation and native nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder: Option<RawBuilder>,
    /// Generated CI workflows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<RawCi>,
}

/// `[project]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawProject {
    /// Project name (lowercase letters, digits, '-', '_', '.'); names the builder and the CI
    /// workflow. Defaults to the folder's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `[release]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawRelease {
    /// Where `{{ version }}` comes from when `--version` is not given: "git-tag" (the tag on
    /// HEAD), "env:NAME" (an environment variable), or a literal version such as "1.4.0".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_from: Option<String>,
    /// Prefix stripped from git tags (default "v": v1.2.3 -> 1.2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_prefix: Option<String>,
    /// Also move floating tags (latest, major, major.minor) for prerelease versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floating_on_prerelease: Option<bool>,
}

image_settings! {
    /// `[defaults]`: image settings inherited by every image.
    pub struct RawDefaults {}
}

image_settings! {
    /// `[images.NAME]`: one image to build and publish.
    pub struct RawImage {
        /// Build context folder, relative to the project file.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub context: Option<String>,
        /// Dockerfile, relative to the project file (default: <context>/Dockerfile).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub dockerfile: Option<String>,
        /// Repository name under each registry's namespace (default: the image key).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub repository: Option<String>,
        /// Images built first; each reaches this build as a named build context pinned by
        /// digest (`FROM <key>` in the Dockerfile).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub depends_on: Option<Vec<String>>,
    }
}

/// `[registries.NAME]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawRegistry {
    /// Registry host, without scheme: "docker.io", "ghcr.io", "localhost:5000".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path in front of each repository: a user, an organisation, or deeper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// NAME of the environment variable holding the user name (never the user name itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_env: Option<String>,
    /// NAME of the environment variable holding the password or token (never the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Only these platforms are published here (what this registry's consumers run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
    /// Plain HTTP. Loopback hosts (localhost, 127.0.0.0/8) are plain HTTP anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
}

/// `[builder]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBuilder {
    /// Builder name (default: "multiarch-<project>").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// buildx driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    /// QEMU emulation for platforms no node runs natively.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulation: Option<Emulation>,
    /// Native BuildKit nodes of this one builder; platforms are spread over them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<RawNode>>,
}

/// `[[builder.nodes]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNode {
    /// Node name, unique within the builder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Docker endpoint of the node: "ssh://user@host", "tcp://host:2376", a context name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Platforms this node builds natively.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
}

/// buildx builder drivers.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    /// BuildKit in a container managed by buildx (default; multi-platform capable).
    #[default]
    DockerContainer,
    /// A BuildKit daemon you run yourself, reached over tcp:// or unix://.
    Remote,
    /// BuildKit pods in a Kubernetes cluster.
    Kubernetes,
    /// The engine's own BuildKit; multi-platform only with the containerd image store.
    Docker,
}

/// Network mode of RUN steps during a build.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// The builder's default network.
    #[default]
    Default,
    /// The host's network (buildx needs the `network.host` entitlement).
    Host,
    /// No network at all.
    None,
}

/// When QEMU is set up.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Emulation {
    /// Only for platforms no node and not the host runs natively.
    #[default]
    Auto,
    /// For every non-host platform.
    Always,
    /// Never; platforms nothing runs natively are an error.
    Never,
}

/// `[ci]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCi {
    /// GitHub Actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<RawGithub>,
}

/// `[ci.github]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGithub {
    /// "native": one runner per platform, push by digest, then a merge job; "emulated": one
    /// job with QEMU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Workflow file name without .yml (default "release").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Git tag patterns that trigger a release (default ["v*"]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_tags: Option<Vec<String>>,
    /// Branches whose pushes build without publishing (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_branches: Option<Vec<String>>,
    /// Build pull requests without publishing (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<bool>,
    /// Runner label per platform (defaults: linux/amd64 = ubuntu-24.04,
    /// linux/arm64 = ubuntu-24.04-arm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runners: Option<IndexMap<String, String>>,
}

/// CI strategies.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// A runner per platform, pushed by digest, merged into an index.
    #[default]
    Native,
    /// One job, QEMU for foreign platforms.
    Emulated,
}

/// The JSON Schema of `multiarch.toml`, as `multiarch schema` prints it.
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut value = serde_json::to_value(generator.into_root_schema_for::<RawConfig>())
        .expect("a schema is JSON");
    strip_null(&mut value);
    value
}

/// TOML has no null: an optional key is simply absent. schemars describes `Option<T>` as
/// "T or null"; this removes the null alternative everywhere so that editors do not offer it.
pub fn strip_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(alts)) = map.get_mut(key) {
                    alts.retain(|a| a.get("type").and_then(Value::as_str) != Some("null"));
                    if alts.len() == 1 {
                        let only = alts.remove(0);
                        map.remove(key);
                        if let Value::Object(inner) = only {
                            for (k, val) in inner {
                                map.entry(k).or_insert(val);
                            }
                        }
                    }
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            for val in map.values_mut() {
                strip_null(val);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}
