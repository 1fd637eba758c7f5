//! The validated project: what `multiarch.toml` means once every default is applied and every
//! rule is checked.
//!
//! [`resolve`] is the only way to get a [`Project`]. It runs in three passes and reports every
//! problem it can find before giving up, so a user fixes a file in one round:
//!
//! 1. the structural walk against the schema ([`crate::shape`]): unknown keys, types, enums;
//! 2. serde, into [`crate::config::RawConfig`];
//! 3. the rules no schema can say: platforms, references, templates, files on disk, the
//!    dependency graph, collisions between images. Defaults are applied here, once.
//!
//! Everything downstream (planner, CI renderer, doctor) trusts the model and never re-checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::{self, Driver, Emulation, Network, RawConfig, RawDefaults, Strategy};
use crate::document::{display_path, Document, Seg};
use crate::error::{Error, Problem};
use crate::path;
use crate::platform::Platform;
use crate::reference::{self, validate_host, validate_repository};
use crate::suggest::did_you_mean;
use crate::version::TagTemplate;

/// Tags used when neither the image nor `[defaults]` lists any.
pub const DEFAULT_TAGS: &[&str] = &["{{ version }}", "latest"];

/// A validated project.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// The project file, as given.
    pub file: PathBuf,
    /// Absolute folder of the project file; relative paths start here.
    pub root: PathBuf,
    /// Project name.
    pub name: String,
    /// Release settings.
    pub release: Release,
    /// Registries, in file order.
    pub registries: IndexMap<String, Registry>,
    /// Images, in file order.
    pub images: IndexMap<String, Image>,
    /// The buildx builder.
    pub builder: Builder,
    /// GitHub Actions settings.
    pub github: Github,
}

/// Where the release version comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum VersionSource {
    /// The git tag on HEAD.
    GitTag,
    /// An environment variable.
    Env(String),
    /// A fixed version.
    Literal(String),
}

/// `[release]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    /// Version source.
    pub version_from: VersionSource,
    /// Prefix stripped from git tags.
    pub tag_prefix: String,
    /// Move floating tags for prereleases too.
    pub floating_on_prerelease: bool,
}

/// A registry to publish to.
#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    /// Name in the project file.
    pub name: String,
    /// Host (and port).
    pub host: String,
    /// Path before each repository.
    pub namespace: Option<String>,
    /// Name of the variable holding the user name.
    pub username_env: Option<String>,
    /// Name of the variable holding the password.
    pub password_env: Option<String>,
    /// Only these platforms are published here.
    pub platforms: Option<Vec<Platform>>,
    /// Plain HTTP (said so, or loopback).
    pub plain_http: bool,
}

impl Registry {
    /// Repository path inside this registry for an image repository.
    pub fn repository(&self, repo: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{repo}"),
            None => repo.to_string(),
        }
    }

    /// Full image name (`host/namespace/repo`) without a tag.
    pub fn image_name(&self, repo: &str) -> String {
        format!("{}/{}", self.host, self.repository(repo))
    }

    /// True when credentials come from environment variables.
    pub fn has_env_credentials(&self) -> bool {
        self.username_env.is_some() && self.password_env.is_some()
    }
}

/// Build cache setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum Cache {
    /// No cache import/export.
    None,
    /// A `buildcache` tag per image in the image's first registry.
    Registry,
    /// GitHub Actions cache, one scope per image (and platform in native CI).
    Gha,
    /// A local folder (absolute).
    Local(PathBuf),
}

/// An image to build and publish.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// Key in `[images.*]`.
    pub key: String,
    /// Absolute build context.
    pub context: PathBuf,
    /// Absolute Dockerfile.
    pub dockerfile: PathBuf,
    /// Repository name under each registry's namespace.
    pub repository: String,
    /// Images this one is built from.
    pub depends_on: Vec<String>,
    /// Dockerfile stage.
    pub target: Option<String>,
    /// Build arguments.
    pub build_args: IndexMap<String, String>,
    /// Labels.
    pub labels: IndexMap<String, String>,
    /// Target platforms, normalised, in the order written.
    pub platforms: Vec<Platform>,
    /// Registry names.
    pub registries: Vec<String>,
    /// Tag templates.
    pub tags: Vec<TagTemplate>,
    /// Cache.
    pub cache: Cache,
    /// Network of RUN steps.
    pub network: Network,
}

impl Image {
    /// The platforms published to `registry`: the image's, narrowed by the registry's own list.
    pub fn platforms_for(&self, registry: &Registry) -> Vec<Platform> {
        match &registry.platforms {
            Some(allowed) => self
                .platforms
                .iter()
                .filter(|p| allowed.contains(p))
                .cloned()
                .collect(),
            None => self.platforms.clone(),
        }
    }
}

/// A native BuildKit node.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// Docker endpoint.
    pub endpoint: String,
    /// Platforms it builds natively.
    pub platforms: Vec<Platform>,
}

/// `[builder]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Builder {
    /// Builder name.
    pub name: String,
    /// Driver.
    pub driver: Driver,
    /// Emulation policy.
    pub emulation: Emulation,
    /// Native nodes.
    pub nodes: Vec<Node>,
}

/// `[ci.github]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Github {
    /// Strategy.
    pub strategy: Strategy,
    /// Workflow file stem.
    pub workflow: String,
    /// Tag patterns that release.
    pub on_tags: Vec<String>,
    /// Branches that build without publishing.
    pub on_branches: Vec<String>,
    /// Build pull requests.
    pub pull_requests: bool,
    /// Runner per platform.
    pub runners: IndexMap<Platform, String>,
}

impl Project {
    /// Loads and resolves a project file.
    pub fn load(path: &Path) -> Result<Project, Error> {
        let doc = Document::load(path)?;
        resolve(&doc)
    }

    /// Images in dependency order (bases first), file order among equals.
    pub fn build_order(&self) -> Vec<&Image> {
        let mut done: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        while out.len() < self.images.len() {
            let before = out.len();
            for img in self.images.values() {
                if done.contains(&img.key.as_str()) {
                    continue;
                }
                if img.depends_on.iter().all(|d| done.contains(&d.as_str())) {
                    done.push(&img.key);
                    out.push(img);
                }
            }
            if out.len() == before {
                break; // unreachable after resolve(): cycles are refused there
            }
        }
        out
    }

    /// An image and every image it depends on, transitively.
    pub fn with_dependencies(&self, keys: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut stack: Vec<String> = keys.to_vec();
        while let Some(k) = stack.pop() {
            if out.contains(&k) {
                continue;
            }
            if let Some(img) = self.images.get(&k) {
                stack.extend(img.depends_on.iter().cloned());
            }
            out.push(k);
        }
        out
    }
}

/// Collects problems while resolving.
struct Ctx<'a> {
    doc: &'a Document,
    problems: Vec<Problem>,
    /// Keys set aside after a structural problem; "missing" rules stay quiet about them.
    pruned: Vec<Vec<Seg>>,
}

impl Ctx<'_> {
    /// True when the key at `path` was set aside (so its absence is already explained).
    fn was_pruned(&self, path: &[Seg]) -> bool {
        self.pruned.iter().any(|p| path.starts_with(p))
    }

    fn at(&mut self, path: &[Seg], message: impl Into<String>, help: impl Into<Option<String>>) {
        let p = self.doc.problem_at(path, message).maybe_help(help.into());
        self.problems.push(p);
    }

    fn at_key(
        &mut self,
        path: &[Seg],
        message: impl Into<String>,
        help: impl Into<Option<String>>,
    ) {
        let p = self
            .doc
            .problem_at_key(path, message)
            .maybe_help(help.into());
        self.problems.push(p);
    }

    /// Parses a platform list; reports unparsable, duplicate and empty lists.
    fn platforms(&mut self, path: &[Seg], list: &[String]) -> Option<Vec<Platform>> {
        if list.is_empty() {
            self.at(
                path,
                format!("`{}` is empty", display_path(path)),
                Some(
                    "list at least one platform, e.g. [\"linux/amd64\", \"linux/arm64\"]"
                        .to_string(),
                ),
            );
            return None;
        }
        let mut out: Vec<Platform> = Vec::new();
        let mut ok = true;
        for (i, s) in list.iter().enumerate() {
            let mut p = path.to_vec();
            p.push(Seg::Index(i));
            match s.parse::<Platform>() {
                Ok(plat) => {
                    if let Some(j) = out.iter().position(|o| *o == plat) {
                        let same = if list[j] == *s {
                            format!("\"{s}\" is listed twice")
                        } else {
                            format!("\"{s}\" is the same platform as \"{}\" ({plat})", list[j])
                        };
                        self.at(&p, same, Some("remove one of them".to_string()));
                        ok = false;
                    } else {
                        out.push(plat);
                    }
                }
                Err(e) => {
                    self.at(&p, e.message, e.help);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn tags(&mut self, path: &[Seg], list: &[String]) -> Option<Vec<TagTemplate>> {
        if list.is_empty() {
            self.at(
                path,
                format!(
                    "`{}` is empty: nothing would be published",
                    display_path(path)
                ),
                Some("list at least one tag, e.g. [\"{{ version }}\", \"latest\"]".to_string()),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, s) in list.iter().enumerate() {
            let mut p = path.to_vec();
            p.push(Seg::Index(i));
            if list[..i].contains(s) {
                self.at(
                    &p,
                    format!("tag \"{s}\" is listed twice"),
                    Some("remove one".to_string()),
                );
                ok = false;
                continue;
            }
            match TagTemplate::compile(s) {
                Ok(t) => out.push(t),
                Err(e) => {
                    self.at(&p, e.message, e.help);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn registry_refs(
        &mut self,
        path: &[Seg],
        list: &[String],
        known: &IndexMap<String, config::RawRegistry>,
    ) -> Option<Vec<String>> {
        if list.is_empty() {
            self.at(
                path,
                format!(
                    "`{}` is empty: nothing would be published",
                    display_path(path)
                ),
                Some("name at least one [registries.*] entry".to_string()),
            );
            return None;
        }
        let mut ok = true;
        for (i, r) in list.iter().enumerate() {
            let mut p = path.to_vec();
            p.push(Seg::Index(i));
            if !known.contains_key(r) {
                let help = match did_you_mean(r, known.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None if known.is_empty() => {
                        format!("declare it:\n[registries.{r}]\nhost = \"docker.io\"\nnamespace = \"your-user\"")
                    }
                    None => format!(
                        "declared registries: {}",
                        known.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                };
                self.at(&p, format!("unknown registry \"{r}\""), Some(help));
                ok = false;
            } else if list[..i].contains(r) {
                self.at(
                    &p,
                    format!("registry \"{r}\" is listed twice"),
                    Some("remove one".to_string()),
                );
                ok = false;
            }
        }
        ok.then(|| list.to_vec())
    }

    /// Checks the name of an environment variable that holds a secret: a value that is not a
    /// name may be the secret itself, so it is shown masked.
    fn env_name(&mut self, path: &[Seg], name: &str) -> bool {
        let valid = is_env_name(name);
        if !valid {
            let key = display_path(path);
            self.at(
                path,
                format!("`{key}` must be the NAME of an environment variable, and \"{}\" is not one", mask(name)),
                Some(
                    "if that was the secret itself, remove it from the file (and rotate it if committed); write the variable's name instead, e.g. \"DOCKER_PASSWORD\"".to_string(),
                ),
            );
        }
        valid
    }
}

/// True for a POSIX-style environment variable name: letters, digits and '_', not starting
/// with a digit.
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Shows a value that may be a secret without revealing it.
fn mask(s: &str) -> String {
    if s.len() <= 4 {
        "****".into()
    } else {
        format!("{}****", s.chars().take(2).collect::<String>())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// An environment variable name close to `s` (`APP VERSION` -> `APP_VERSION`).
fn env_suggestion(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Removes `.` and resolves `..` without touching the file system, so that plans show
/// `/app/Dockerfile` rather than `/app/./Dockerfile`.
pub fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Makes a folder name a valid project name (`My App` -> `my-app`).
pub fn sanitize_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "project".into()
    } else {
        out
    }
}

/// Removes the keys at `paths` from a TOML text.
fn prune(text: &str, paths: &[Vec<Seg>]) -> String {
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return text.to_string();
    };
    fn remove_at(item: &mut toml_edit::Item, path: &[Seg]) {
        match path {
            [Seg::Key(k)] => {
                if let Some(t) = item.as_table_like_mut() {
                    t.remove(k);
                }
            }
            [first, rest @ ..] => {
                let child = match first {
                    Seg::Key(k) => item.get_mut(k.as_str()),
                    Seg::Index(i) => item.get_mut(*i),
                };
                if let Some(child) = child {
                    remove_at(child, rest);
                }
            }
            [] => {}
        }
    }
    for path in paths {
        remove_at(doc.as_item_mut(), path);
    }
    doc.to_string()
}

/// Resolves a parsed document into a [`Project`], or every problem found.
pub fn resolve(doc: &Document) -> Result<Project, Error> {
    let schema = config::schema();
    let shape = crate::shape::check(doc, &schema);
    // Keys with structural problems are set aside so that the rules below still run over the
    // rest of the file: the user gets every problem in one round.
    let pruned: Vec<Vec<Seg>> = shape.iter().map(|(p, _)| p.clone()).collect();
    let text = if pruned.is_empty() {
        doc.source.text.to_string()
    } else {
        prune(&doc.source.text, &pruned)
    };
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
        Error::invalid(
            Problem::new(e.message().to_string())
                .at(&doc.source, e.span())
                .help("see `multiarch schema` for the file's format"),
        )
    })?;
    let mut cx = Ctx {
        doc,
        problems: shape.into_iter().map(|(_, p)| p).collect(),
        pruned,
    };
    let root = doc.root();

    // [project]
    let name = match raw.project.as_ref().and_then(|p| p.name.clone()) {
        Some(n) => {
            if !valid_name(&n) {
                cx.at(
                    &path!["project", "name"],
                    format!("project name \"{n}\" is not valid"),
                    Some(format!(
                        "use lowercase letters, digits, '-', '_' or '.', e.g. \"{}\"",
                        sanitize_name(&n)
                    )),
                );
            }
            n
        }
        None => sanitize_name(
            &root
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };

    // [release]
    let rel = raw.release.clone().unwrap_or_default();
    let version_from = match rel.version_from.as_deref() {
        None | Some("git-tag") => VersionSource::GitTag,
        Some(s) if s.starts_with("env:") => {
            let var = &s[4..];
            if !is_env_name(var) {
                cx.at(
                    &path!["release", "version-from"],
                    format!("\"{var}\" in `release.version-from` is not an environment variable name"),
                    Some(format!(
                        "variable names are letters, digits and '_', not starting with a digit, e.g. \"env:{}\"",
                        env_suggestion(var)
                    )),
                );
            }
            VersionSource::Env(var.to_string())
        }
        Some(s) => {
            let p = path!["release", "version-from"];
            if s.trim().is_empty() {
                cx.at(
                    &p,
                    "`release.version-from` is empty",
                    Some("write \"git-tag\", \"env:NAME\" or a version like \"1.0.0\"".to_string()),
                );
            } else if !s
                .strip_prefix(rel.tag_prefix.as_deref().unwrap_or("v"))
                .unwrap_or(s)
                .starts_with(|c: char| c.is_ascii_digit())
            {
                // "tag", "latest", "main": a word where a version belongs is a mistake (most
                // often for "git-tag"); a release version starts with a number.
                let hint = did_you_mean(s, ["git-tag"])
                    .map(|g| format!("did you mean \"{g}\"? "))
                    .unwrap_or_default();
                cx.at(
                    &p,
                    format!("`release.version-from` cannot be \"{s}\": it is neither \"git-tag\", \"env:NAME\" nor a version"),
                    Some(format!("{hint}write \"git-tag\" (the tag on HEAD), \"env:NAME\" or a version like \"1.0.0\"")),
                );
            } else if let Err(e) = reference::validate_tag(s.trim_start_matches('v')) {
                cx.at(
                    &p,
                    format!(
                        "\"{s}\" is neither \"git-tag\", \"env:NAME\" nor a usable version: {}",
                        e.message
                    ),
                    Some("write \"git-tag\", \"env:NAME\" or a version like \"1.0.0\"".to_string()),
                );
            }
            VersionSource::Literal(s.to_string())
        }
    };
    let release = Release {
        version_from,
        tag_prefix: rel.tag_prefix.clone().unwrap_or_else(|| "v".into()),
        floating_on_prerelease: rel.floating_on_prerelease.unwrap_or(false),
    };

    // [registries.*]
    let raw_regs = raw.registries.clone().unwrap_or_default();
    let mut registries = IndexMap::new();
    for (rname, r) in &raw_regs {
        let base = path!["registries", rname];
        let host = match &r.host {
            Some(h) => {
                if let Err(e) = validate_host(h) {
                    cx.at(&path!["registries", rname, "host"], e.message, e.help);
                }
                h.clone()
            }
            None if cx.was_pruned(&path!["registries", rname, "host"]) => String::new(),
            None => {
                cx.at_key(
                    &base,
                    format!("registry \"{rname}\" has no `host`"),
                    Some("add host = \"docker.io\" (or ghcr.io, localhost:5000, ...)".to_string()),
                );
                String::new()
            }
        };
        let host = if host == "index.docker.io" || host == "registry-1.docker.io" {
            reference::DOCKER_HUB.to_string()
        } else {
            host
        };
        if let Some(ns) = &r.namespace {
            if let Err(e) = validate_repository(ns) {
                // The checks are a repository's; the message names what the user wrote.
                let message = e.message.replacen("repository", "namespace", 1);
                cx.at(&path!["registries", rname, "namespace"], message, e.help);
            }
        } else if host == reference::DOCKER_HUB {
            cx.at_key(
                &base,
                format!("registry \"{rname}\" is Docker Hub but has no `namespace`"),
                Some("Docker Hub repositories live under a user or organisation: add namespace = \"your-user\"".to_string()),
            );
        }
        for (key, v) in [
            ("username-env", &r.username_env),
            ("password-env", &r.password_env),
        ] {
            if let Some(v) = v {
                cx.env_name(&path!["registries", rname, key], v);
            }
        }
        // A `password = ...` set aside above already explains the missing `password-env`.
        let secret_set_aside = cx.pruned.iter().any(|p| {
            p.len() == 3
                && p[..2] == base[..]
                && matches!(&p[2], Seg::Key(k) if k.contains("password") || k.contains("token") || k.contains("user"))
        });
        match (&r.username_env, &r.password_env) {
            _ if secret_set_aside => {}
            (Some(_), None) | (None, Some(_)) => cx.at_key(
                &base,
                format!("registry \"{rname}\" names only one of `username-env` and `password-env`"),
                Some(
                    "name both, or neither (then credentials come from `docker login`)".to_string(),
                ),
            ),
            _ => {}
        }
        let platforms = r
            .platforms
            .as_ref()
            .and_then(|l| cx.platforms(&path!["registries", rname, "platforms"], l));
        let plain_http = reference::is_plain_http(&host, r.insecure.unwrap_or(false));
        registries.insert(
            rname.clone(),
            Registry {
                name: rname.clone(),
                host,
                namespace: r.namespace.clone(),
                username_env: r.username_env.clone(),
                password_env: r.password_env.clone(),
                platforms,
                plain_http,
            },
        );
    }

    // [defaults]
    let defaults: RawDefaults = raw.defaults.clone().unwrap_or_default();
    let d_platforms = defaults
        .platforms
        .as_ref()
        .map(|l| cx.platforms(&path!["defaults", "platforms"], l));
    let d_registries = defaults
        .registries
        .as_ref()
        .map(|l| cx.registry_refs(&path!["defaults", "registries"], l, &raw_regs));
    let d_tags = defaults
        .tags
        .as_ref()
        .map(|l| cx.tags(&path!["defaults", "tags"], l));
    let d_cache = defaults
        .cache
        .as_ref()
        .map(|c| parse_cache(&mut cx, &path!["defaults", "cache"], c, &root));
    if let Some(args) = &defaults.build_args {
        check_build_args(&mut cx, &path!["defaults", "build-args"], args);
    }

    // [images.*]
    let raw_images = raw.images.clone().unwrap_or_default();
    // `[image.app]` set aside as an unknown key already says where the images went.
    let misspelt_images = cx
        .pruned
        .iter()
        .any(|p| matches!(p.as_slice(), [Seg::Key(k)] if did_you_mean(k, ["images"]).is_some()));
    if raw_images.is_empty() && !cx.was_pruned(&path!["images"]) && !misspelt_images {
        cx.problems.push(
            Problem::new(format!("{} declares no images", doc.source.name)).help(
                "add one, e.g.\n[images.app]\ncontext = \".\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]",
            ),
        );
    }
    let mut images = IndexMap::new();
    for (key, im) in &raw_images {
        let base = path!["images", key];
        let p = |k: &str| path!["images", key, k];
        let context_rel = im.context.clone().unwrap_or_else(|| ".".into());
        let context = lexical(&root.join(&context_rel));
        if !context.is_dir() {
            let at = if im.context.is_some() {
                p("context")
            } else {
                base.clone()
            };
            cx.at(
                &at,
                format!("build context \"{context_rel}\" of image \"{key}\" is not a folder"),
                Some(format!(
                    "create it, or fix the path; it is relative to {}",
                    root.display()
                )),
            );
        }
        let dockerfile = match &im.dockerfile {
            Some(d) => lexical(&root.join(d)),
            None => context.join("Dockerfile"),
        };
        if context.is_dir() && !dockerfile.is_file() {
            let at = if im.dockerfile.is_some() {
                p("dockerfile")
            } else {
                base.clone()
            };
            let shown = im
                .dockerfile
                .clone()
                .unwrap_or_else(|| format!("{}/Dockerfile", context_rel.trim_end_matches('/')));
            cx.at(
                &at,
                format!("image \"{key}\": Dockerfile \"{shown}\" does not exist"),
                Some("create it, or set `dockerfile` (relative to the project file)".to_string()),
            );
        }
        let repository = im.repository.clone().unwrap_or_else(|| key.clone());
        if let Err(e) = validate_repository(&repository) {
            let (at, help) = if im.repository.is_some() {
                (p("repository"), e.help)
            } else {
                (
                    base.clone(),
                    Some(format!(
                        "the image key is its default repository name; set repository = \"{}\"",
                        sanitize_name(key)
                    )),
                )
            };
            if im.repository.is_some() {
                cx.at(&at, format!("image \"{key}\": {}", e.message), help);
            } else {
                cx.at_key(&at, format!("image \"{key}\": {}", e.message), help);
            }
        }
        let depends_on = im.depends_on.clone().unwrap_or_default();
        for (i, d) in depends_on.iter().enumerate() {
            let at = path!["images", key, "depends-on", i];
            if d == key {
                cx.at(
                    &at,
                    format!("image \"{key}\" depends on itself"),
                    Some("remove it from depends-on".to_string()),
                );
            } else if !raw_images.contains_key(d) {
                let help = did_you_mean(d, raw_images.keys().map(String::as_str))
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| {
                        format!(
                            "images: {}",
                            raw_images.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    });
                cx.at(
                    &at,
                    format!("image \"{key}\" depends on unknown image \"{d}\""),
                    Some(help),
                );
            }
        }
        let platforms = match &im.platforms {
            Some(l) => cx.platforms(&p("platforms"), l),
            None => match &d_platforms {
                Some(d) => d.clone(),
                None if cx.was_pruned(&p("platforms"))
                    || cx.was_pruned(&path!["defaults", "platforms"]) =>
                {
                    None
                }
                None => {
                    cx.at_key(
                        &base,
                        format!("image \"{key}\" declares no platforms"),
                        Some("add platforms = [\"linux/amd64\", \"linux/arm64\"] to the image or to [defaults]".to_string()),
                    );
                    None
                }
            },
        };
        let regs = match &im.registries {
            Some(l) => cx.registry_refs(&p("registries"), l, &raw_regs),
            None => match &d_registries {
                Some(d) => d.clone(),
                None if cx.was_pruned(&p("registries"))
                    || cx.was_pruned(&path!["defaults", "registries"]) =>
                {
                    None
                }
                None => {
                    cx.at_key(
                        &base,
                        format!("image \"{key}\" has no registries to publish to"),
                        Some("add registries = [\"NAME\"] to the image or to [defaults], naming a [registries.NAME] entry".to_string()),
                    );
                    None
                }
            },
        };
        let tags = match &im.tags {
            Some(l) => cx.tags(&p("tags"), l),
            None => match &d_tags {
                Some(d) => d.clone(),
                None => Some(
                    DEFAULT_TAGS
                        .iter()
                        .map(|t| TagTemplate::compile(t).expect("default tags compile"))
                        .collect(),
                ),
            },
        };
        let cache = match &im.cache {
            Some(c) => parse_cache(&mut cx, &p("cache"), c, &root).unwrap_or(Cache::None),
            None => d_cache.clone().flatten().unwrap_or(Cache::None),
        };
        if let Some(args) = &im.build_args {
            check_build_args(&mut cx, &p("build-args"), args);
        }
        let mut build_args = defaults.build_args.clone().unwrap_or_default();
        build_args.extend(im.build_args.clone().unwrap_or_default());
        let mut labels = defaults.labels.clone().unwrap_or_default();
        labels.extend(im.labels.clone().unwrap_or_default());
        let target = im.target.clone().or_else(|| defaults.target.clone());
        let network = im.network.or(defaults.network).unwrap_or_default();

        if let (Some(platforms), Some(regs)) = (&platforms, &regs) {
            for rname in regs {
                let Some(reg) = registries.get(rname) else {
                    continue;
                };
                if let Some(allowed) = &reg.platforms {
                    if !platforms.iter().any(|p| allowed.contains(p)) {
                        cx.at(
                            &path!["registries", rname, "platforms"],
                            format!(
                                "registry \"{rname}\" accepts only {} but image \"{key}\" is built for {}: nothing would be published there",
                                crate::platform::join(allowed),
                                crate::platform::join(platforms)
                            ),
                            Some(format!("add one of the image's platforms here, or remove \"{rname}\" from the image's registries")),
                        );
                    }
                }
                let full = format!("{}/{}", reg.host, reg.repository(&repository));
                if full.len() > reference::NAME_MAX {
                    cx.at_key(
                        &base,
                        format!("image \"{key}\" would be published as \"{full}\", longer than Docker's {} characters", reference::NAME_MAX),
                        Some("shorten the namespace or repository".to_string()),
                    );
                }
            }
        }

        if let (Some(platforms), Some(regs), Some(tags)) = (platforms, regs, tags) {
            images.insert(
                key.clone(),
                Image {
                    key: key.clone(),
                    context,
                    dockerfile,
                    repository,
                    depends_on,
                    target,
                    build_args,
                    labels,
                    platforms,
                    registries: regs,
                    tags,
                    cache,
                    network,
                },
            );
        }
    }

    check_cycles(&mut cx, &raw_images);
    check_collisions(&mut cx, &images, &registries);
    check_secrets_in_tags(&mut cx, &raw, &defaults, &registries, &release);

    // [builder]
    let rb = raw.builder.clone().unwrap_or_default();
    let builder_name = rb
        .name
        .clone()
        .unwrap_or_else(|| format!("multiarch-{name}"));
    if rb.name.is_some() && !valid_name(&builder_name) {
        cx.at(
            &path!["builder", "name"],
            format!("builder name \"{builder_name}\" is not valid"),
            Some("use lowercase letters, digits, '-', '_' or '.'".to_string()),
        );
    }
    let mut nodes: Vec<Node> = Vec::new();
    for (i, n) in rb.nodes.clone().unwrap_or_default().iter().enumerate() {
        let base = path!["builder", "nodes", i];
        let nname = n.name.clone().unwrap_or_else(|| format!("node{i}"));
        if !valid_name(&nname) {
            cx.at(
                &path!["builder", "nodes", i, "name"],
                format!("node name \"{nname}\" is not valid"),
                Some("use lowercase letters, digits, '-', '_' or '.'".to_string()),
            );
        }
        if nodes.iter().any(|o| o.name == nname) {
            cx.at(
                &path!["builder", "nodes", i, "name"],
                format!("node name \"{nname}\" is used twice"),
                Some("give every node its own name".to_string()),
            );
        }
        let platforms = match &n.platforms {
            Some(l) => cx
                .platforms(&path!["builder", "nodes", i, "platforms"], l)
                .unwrap_or_default(),
            None if cx.was_pruned(&path!["builder", "nodes", i, "platforms"]) => Vec::new(),
            None => {
                cx.at(
                    &base,
                    format!("builder node \"{nname}\" has no `platforms`"),
                    Some(
                        "add the platforms it builds natively, e.g. platforms = [\"linux/arm64\"]"
                            .to_string(),
                    ),
                );
                Vec::new()
            }
        };
        let Some(endpoint) = n.endpoint.clone() else {
            if cx.was_pruned(&path!["builder", "nodes", i, "endpoint"]) {
                continue;
            }
            cx.at(&base, format!("builder node \"{nname}\" has no `endpoint`"), Some("add endpoint = \"ssh://user@host\" (or tcp://host:2376, or a docker context name)".to_string()));
            continue;
        };
        nodes.push(Node {
            name: nname,
            endpoint,
            platforms,
        });
    }
    if !nodes.is_empty() && rb.driver == Some(Driver::Docker) {
        cx.at(
            &path!["builder", "driver"],
            "the \"docker\" driver cannot have extra nodes",
            Some(
                "use driver = \"docker-container\" (or \"remote\") for a multi-node builder"
                    .to_string(),
            ),
        );
    }
    let builder = Builder {
        name: builder_name,
        driver: rb.driver.unwrap_or_default(),
        emulation: rb.emulation.unwrap_or_default(),
        nodes,
    };

    // [ci.github]
    let gh = raw.ci.clone().and_then(|c| c.github).unwrap_or_default();
    let workflow = gh.workflow.clone().unwrap_or_else(|| "release".into());
    if let Some(stem) = workflow
        .strip_suffix(".yml")
        .or_else(|| workflow.strip_suffix(".yaml"))
    {
        cx.at(
            &path!["ci", "github", "workflow"],
            format!("workflow name \"{workflow}\" ends in its extension"),
            Some(format!("write workflow = \"{stem}\"; multiarch adds .yml")),
        );
    } else if !valid_name(&workflow) {
        cx.at(
            &path!["ci", "github", "workflow"],
            format!("workflow name \"{workflow}\" is not a valid file name"),
            Some("use lowercase letters, digits, '-', '_' or '.', without .yml".to_string()),
        );
    }
    let on_tags = gh.on_tags.clone().unwrap_or_else(|| vec!["v*".into()]);
    for (i, t) in on_tags.iter().enumerate() {
        if t.trim().is_empty() {
            cx.at(
                &path!["ci", "github", "on-tags", i],
                "an empty tag pattern matches nothing",
                Some("write a pattern like \"v*\"".to_string()),
            );
        }
    }
    let mut runners = IndexMap::new();
    for (pname, label) in gh.runners.clone().unwrap_or_default() {
        match pname.parse::<Platform>() {
            Ok(p) => {
                runners.insert(p, label);
            }
            Err(e) => cx.at_key(&path!["ci", "github", "runners", &pname], e.message, e.help),
        }
    }

    if !cx.problems.is_empty() {
        // In file order, as a user fixes them; problems without a place (no images) last.
        cx.problems
            .sort_by_key(|p| p.span.as_ref().map_or(usize::MAX, |s| s.start));
        return Err(Error::Invalid(cx.problems));
    }
    Ok(Project {
        file: doc.path.clone(),
        root,
        name,
        release,
        registries,
        images,
        builder,
        github: Github {
            strategy: gh.strategy.unwrap_or_default(),
            workflow,
            on_tags,
            on_branches: gh.on_branches.clone().unwrap_or_default(),
            pull_requests: gh.pull_requests.unwrap_or(true),
            runners,
        },
    })
}

fn parse_cache(cx: &mut Ctx, path: &[Seg], value: &str, root: &Path) -> Option<Cache> {
    Some(match value {
        "none" => Cache::None,
        "registry" => Cache::Registry,
        "gha" => Cache::Gha,
        s if s.starts_with("local:") && s.len() > 6 => Cache::Local(root.join(&s[6..])),
        other => {
            let help = match did_you_mean(other, ["none", "registry", "gha"]) {
                Some(s) => format!("did you mean \"{s}\"? allowed: \"none\", \"registry\", \"gha\", \"local:<dir>\""),
                None => "allowed: \"none\", \"registry\", \"gha\", \"local:<dir>\"".to_string(),
            };
            cx.at(path, format!("unknown cache \"{other}\""), Some(help));
            return None;
        }
    })
}

fn check_build_args(cx: &mut Ctx, path: &[Seg], args: &IndexMap<String, String>) {
    for name in args.keys() {
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut p = path.to_vec();
        p.push(Seg::Key(name.clone()));
        if !valid {
            cx.at_key(
                &p,
                format!("build argument name \"{name}\" is not valid"),
                Some("build argument names are letters, digits and '_'".to_string()),
            );
        }
        let upper = name.to_ascii_uppercase();
        if ["PASSWORD", "TOKEN", "SECRET"]
            .iter()
            .any(|w| upper.contains(w))
        {
            cx.at_key(
                &p,
                format!("build argument \"{name}\" looks like a secret; build arguments are stored in the image history"),
                Some("pass secrets with a BuildKit secret mount (RUN --mount=type=secret) instead".to_string()),
            );
        }
    }
}

/// Refuses a tag template or version source that reads a registry's password variable: it
/// would print the secret in plans and publish it as a tag.
fn check_secrets_in_tags(
    cx: &mut Ctx,
    raw: &RawConfig,
    defaults: &RawDefaults,
    registries: &IndexMap<String, Registry>,
    release: &Release,
) {
    let secret = |name: &str| -> Option<String> {
        registries
            .values()
            .find(|r| r.password_env.as_deref() == Some(name))
            .map(|r| r.name.clone())
    };
    let help = "a tag is public and plans are printed: use a non-secret variable".to_string();
    if let VersionSource::Env(var) = &release.version_from {
        if let Some(reg) = secret(var) {
            cx.at(
                &path!["release", "version-from"],
                format!("`version-from` reads ${var}, the password of registry \"{reg}\""),
                Some(help.clone()),
            );
        }
    }
    let mut lists: Vec<(Vec<Seg>, &Vec<String>)> = Vec::new();
    if let Some(t) = &defaults.tags {
        lists.push((path!["defaults", "tags"], t));
    }
    for (key, im) in raw.images.iter().flatten() {
        if let Some(t) = &im.tags {
            lists.push((path!["images", key, "tags"], t));
        }
    }
    for (base, tags) in lists {
        for (i, t) in tags.iter().enumerate() {
            let Ok(tmpl) = TagTemplate::compile(t) else {
                continue;
            };
            for var in tmpl.env_names() {
                if let Some(reg) = secret(var) {
                    let mut at = base.clone();
                    at.push(Seg::Index(i));
                    cx.at(
                        &at,
                        format!(
                            "tag template \"{t}\" reads ${var}, the password of registry \"{reg}\""
                        ),
                        Some(help.clone()),
                    );
                }
            }
        }
    }
}

/// Refuses `depends-on` cycles, naming the whole cycle.
fn check_cycles(cx: &mut Ctx, images: &IndexMap<String, config::RawImage>) {
    let deps = |k: &str| -> Vec<String> {
        images
            .get(k)
            .and_then(|i| i.depends_on.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d != k && images.contains_key(d))
            .collect()
    };
    let mut reported: Vec<Vec<String>> = Vec::new();
    for start in images.keys() {
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = std::collections::HashSet::new();
        while let Some((node, trail)) = stack.pop() {
            for d in deps(&node) {
                if d == *start {
                    let mut cycle = trail.clone();
                    let mut canon = cycle.clone();
                    canon.sort();
                    if !reported.contains(&canon) {
                        reported.push(canon);
                        cycle.push(start.clone());
                        cx.at(
                            &path!["images", start, "depends-on"],
                            format!("depends-on cycle: {}", cycle.join(" -> ")),
                            Some("an image cannot be built from an image that is built from it; remove one edge of the cycle".to_string()),
                        );
                    }
                } else if seen.insert(d.clone()) {
                    let mut t = trail.clone();
                    t.push(d.clone());
                    stack.push((d, t));
                }
            }
        }
    }
}

/// Refuses two images that would write the same repository:tag in one registry: the second
/// release would silently replace the first one's index. One problem per pair of images and
/// repository, listing every tag they share.
fn check_collisions(
    cx: &mut Ctx,
    images: &IndexMap<String, Image>,
    registries: &IndexMap<String, Registry>,
) {
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    // (earlier image, later image, repository) -> shared tags, in the order found.
    let mut clashes: IndexMap<(String, String, String), Vec<String>> = IndexMap::new();
    for img in images.values() {
        for rname in &img.registries {
            let Some(reg) = registries.get(rname) else {
                continue;
            };
            let repo = format!("{}/{}", reg.host, reg.repository(&img.repository));
            for t in &img.tags {
                if t.variables.iter().any(|v| v == "image") {
                    continue; // differs per image by construction
                }
                let k = (repo.clone(), t.source.clone());
                match seen.get(&k) {
                    Some(other) if other != &img.key => {
                        let tags = clashes
                            .entry((other.clone(), img.key.clone(), repo.clone()))
                            .or_default();
                        if !tags.contains(&t.source) {
                            tags.push(t.source.clone());
                        }
                    }
                    _ => {
                        seen.insert(k, img.key.clone());
                    }
                }
            }
        }
    }
    for ((first, second, repo), tags) in clashes {
        let img = &images[&second];
        let at = if cx
            .doc
            .get(&path!["images", &second, "repository"])
            .is_some()
        {
            path!["images", &second, "repository"]
        } else {
            path!["images", &second]
        };
        let shown: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        let problem = format!(
            "images \"{first}\" and \"{second}\" would both publish {repo} with the tag{} {}",
            if tags.len() == 1 { "" } else { "s" },
            shown.join(", ")
        );
        let help = format!(
            "the later release would replace the other's image; give \"{second}\" its own repository, e.g. repository = \"{}\"",
            {
                let own = reference::suggest_repository(&second);
                if own != img.repository { own } else { format!("{own}-2") }
            }
        );
        if at.len() == 3 {
            cx.at(&at, problem, Some(help));
        } else {
            cx.at_key(&at, problem, Some(help));
        }
    }
}
