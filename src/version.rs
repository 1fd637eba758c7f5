//! The release version and the tag templates that turn it into tags.
//!
//! Templates are minijinja expressions (`"{{ major }}.{{ minor }}"`). They are compiled when the
//! project file is checked, so a typo in a variable name fails `multiarch check` on a laptop, not
//! the release job in CI. A tag is *floating* (moves between releases: `latest`, `1`, `1.2`) unless
//! it names something unique to this release (`version`, `patch`, `prerelease`, `sha`,
//! `short_sha`, `date` or an `env.NAME`); floating tags are written last, after verification, and
//! not at all for a prerelease unless the project asks.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::reference::validate_tag;

/// Variables a tag template may use.
pub const VARIABLES: &[&str] = &[
    "version",
    "major",
    "minor",
    "patch",
    "prerelease",
    "sha",
    "short_sha",
    "branch",
    "date",
    "image",
    "registry",
    "env",
];

/// Variables whose value is unique to one release; a tag that uses one is immutable.
const IMMUTABLE_VARIABLES: &[&str] = &[
    "version",
    "patch",
    "prerelease",
    "sha",
    "short_sha",
    "date",
    "env",
];

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// A compiled tag template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagTemplate {
    /// The template as written.
    pub source: String,
    /// True when the tag moves between releases.
    pub floating: bool,
    /// Root variables the template reads (`env.NAME` is kept whole).
    pub variables: Vec<String>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

impl TagTemplate {
    /// Compiles a template, checking its syntax and its variables; a template with no
    /// `{{`/`{%` is a literal tag and must match Docker's tag grammar.
    pub fn compile(source: &str) -> Result<TagTemplate, TemplateError> {
        let env = environment();
        let tmpl = env.template_from_str(source).map_err(|e| TemplateError {
            message: format!(
                "tag template \"{source}\" does not compile: {}",
                e.detail().unwrap_or(&e.to_string())
            ),
            help: Some(
                "templates are minijinja expressions, e.g. \"{{ major }}.{{ minor }}\"".into(),
            ),
        })?;
        let mut variables: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
        variables.sort();
        for v in &variables {
            let root = v.split('.').next().unwrap_or(v);
            if !VARIABLES.contains(&root) {
                let hint = crate::suggest::did_you_mean(root, VARIABLES.iter().copied())
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                return Err(TemplateError {
                    message: format!("tag template \"{source}\" uses unknown variable `{root}`"),
                    help: Some(format!(
                        "{hint}variables: {}, env.NAME",
                        VARIABLES[..VARIABLES.len() - 1].join(", ")
                    )),
                });
            }
            if root == "env" && v == "env" {
                return Err(TemplateError {
                    message: format!("tag template \"{source}\" uses `env` without a name"),
                    help: Some("write env.NAME, e.g. {{ env.BUILD_NUMBER }}".into()),
                });
            }
        }
        if !source.contains("{{") && !source.contains("{%") {
            validate_tag(source).map_err(|e| TemplateError {
                message: e.message,
                help: e.help,
            })?;
        }
        let floating = !variables.iter().any(|v| {
            let root = v.split('.').next().unwrap_or(v);
            IMMUTABLE_VARIABLES.contains(&root)
        });
        Ok(TagTemplate {
            source: source.to_string(),
            floating,
            variables,
        })
    }

    /// Names of environment variables the template reads (`env.NAME` -> `NAME`).
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().filter_map(|v| v.strip_prefix("env."))
    }

    /// Renders the tag. `Ok(None)` when it renders empty (the tag is dropped).
    pub fn render(&self, vars: &TagVars) -> Result<Option<String>, TemplateError> {
        let env = environment();
        let out = env
            .render_str(&self.source, minijinja::value::Serde(vars))
            .map_err(|e| {
                let missing = self
                    .variables
                    .iter()
                    .find(|v| vars.lookup(v).is_none())
                    .cloned();
                match missing {
                    Some(v) => TemplateError {
                        message: format!(
                            "tag template \"{}\" needs `{v}`, which has no value for this release",
                            self.source
                        ),
                        help: Some(vars.why_missing(&v)),
                    },
                    None => TemplateError {
                        message: format!("tag template \"{}\" failed: {e}", self.source),
                        help: None,
                    },
                }
            })?;
        let out = out.trim().to_string();
        if out.is_empty() {
            return Ok(None);
        }
        validate_tag(&out).map_err(|e| TemplateError {
            message: format!(
                "tag template \"{}\" rendered \"{out}\": {}",
                self.source, e.message
            ),
            help: e.help,
        })?;
        Ok(Some(out))
    }
}

/// A release version; semver parts when it parses as semver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Version {
    /// As given (tag prefix already stripped).
    pub raw: String,
    /// Semver major, when the version is semver.
    pub major: Option<u64>,
    /// Semver minor.
    pub minor: Option<u64>,
    /// Semver patch.
    pub patch: Option<u64>,
    /// Semver prerelease (`rc.1`), empty for a release.
    pub prerelease: String,
}

impl Version {
    /// Parses a version, stripping `prefix` if present (`v1.2.3` -> `1.2.3`).
    pub fn parse(input: &str, prefix: &str) -> Version {
        let raw = input.trim();
        let raw = if !prefix.is_empty() {
            raw.strip_prefix(prefix).unwrap_or(raw)
        } else {
            raw
        };
        match semver::Version::parse(raw) {
            Ok(v) => Version {
                raw: raw.to_string(),
                major: Some(v.major),
                minor: Some(v.minor),
                patch: Some(v.patch),
                prerelease: v.pre.to_string(),
            },
            Err(_) => Version {
                raw: raw.to_string(),
                major: None,
                minor: None,
                patch: None,
                prerelease: String::new(),
            },
        }
    }

    /// True for `1.2.3-rc.1`.
    pub fn is_prerelease(&self) -> bool {
        !self.prerelease.is_empty()
    }

    /// True when the version parsed as semver.
    pub fn is_semver(&self) -> bool {
        self.major.is_some()
    }
}

/// Values of the template variables for one image in one registry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TagVars {
    /// Release version (prefix stripped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Semver major.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<u64>,
    /// Semver minor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<u64>,
    /// Semver patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<u64>,
    /// Semver prerelease, "" for a release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prerelease: Option<String>,
    /// Full commit id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// First 7 characters of the commit id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_sha: Option<String>,
    /// Branch name, made tag-safe (`feature/x` -> `feature-x`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// UTC date, YYYYMMDD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Image key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Registry name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Environment variables the templates read.
    pub env: BTreeMap<String, String>,
}

impl TagVars {
    /// Fills the version variables.
    pub fn with_version(mut self, v: &Version) -> TagVars {
        self.version = Some(v.raw.clone());
        self.major = v.major;
        self.minor = v.minor;
        self.patch = v.patch;
        self.prerelease = v.is_semver().then(|| v.prerelease.clone());
        self
    }

    fn lookup(&self, var: &str) -> Option<String> {
        Some(match var {
            "version" => self.version.clone()?,
            "major" => self.major?.to_string(),
            "minor" => self.minor?.to_string(),
            "patch" => self.patch?.to_string(),
            "prerelease" => self.prerelease.clone()?,
            "sha" => self.sha.clone()?,
            "short_sha" => self.short_sha.clone()?,
            "branch" => self.branch.clone()?,
            "date" => self.date.clone()?,
            "image" => self.image.clone()?,
            "registry" => self.registry.clone()?,
            other => self.env.get(other.strip_prefix("env.")?)?.clone(),
        })
    }

    fn why_missing(&self, var: &str) -> String {
        match var {
            "version" => "give a version with --version V, or set [release] version-from".into(),
            "major" | "minor" | "patch" | "prerelease" => format!(
                "`{var}` needs a semver version like 1.2.3, and \"{}\" is not one",
                self.version.as_deref().unwrap_or("")
            ),
            "sha" | "short_sha" | "branch" => {
                format!("`{var}` comes from git; run in a git checkout with at least one commit")
            }
            v if v.starts_with("env.") => format!(
                "set the environment variable {}",
                v.trim_start_matches("env.")
            ),
            _ => String::new(),
        }
    }
}

/// Makes a branch name tag-safe the way docker/metadata-action does: every character outside
/// the tag alphabet becomes '-'.
pub fn sanitize_ref(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(['.', '-']).to_string();
    s.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(version: &str) -> TagVars {
        TagVars::default().with_version(&Version::parse(version, "v"))
    }

    #[test]
    fn floating_or_immutable() {
        for (t, floating) in [
            ("latest", true),
            ("{{ major }}", true),
            ("{{ major }}.{{ minor }}", true),
            ("{{ version }}", false),
            ("{{ major }}.{{ minor }}.{{ patch }}", false),
            ("sha-{{ short_sha }}", false),
            ("{{ branch }}", true),
            ("build-{{ env.BUILD_ID }}", false),
        ] {
            assert_eq!(TagTemplate::compile(t).unwrap().floating, floating, "{t}");
        }
    }

    #[test]
    fn compile_errors() {
        let e = TagTemplate::compile("{{ verison }}").unwrap_err();
        assert!(e.message.contains("unknown variable `verison`"));
        assert!(e.help.unwrap().contains("did you mean `version`"));
        assert!(TagTemplate::compile("{{ version").is_err());
        assert!(TagTemplate::compile("bad tag").is_err());
        assert!(TagTemplate::compile("{{ env }}").is_err());
    }

    #[test]
    fn renders_semver_parts() {
        let v = vars("v1.4.2-rc.1");
        let r = |t: &str| TagTemplate::compile(t).unwrap().render(&v).unwrap();
        assert_eq!(r("{{ version }}").as_deref(), Some("1.4.2-rc.1"));
        assert_eq!(r("{{ major }}.{{ minor }}").as_deref(), Some("1.4"));
        assert_eq!(r("{{ prerelease }}").as_deref(), Some("rc.1"));
        assert_eq!(r("{% if prerelease %}{% else %}stable{% endif %}"), None);
    }

    #[test]
    fn render_errors_name_the_cause() {
        let v = vars("nightly");
        let e = TagTemplate::compile("{{ major }}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(e.help.clone().unwrap().contains("semver"), "{e:?}");
        let e = TagTemplate::compile("{{ env.BUILD }}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(e.help.unwrap().contains("BUILD"));
        let e = TagTemplate::compile("{{ version }}")
            .unwrap()
            .render(&vars("1.0.0+meta"))
            .unwrap_err();
        assert!(e.message.contains("rendered \"1.0.0+meta\""));
    }

    #[test]
    fn version_parsing() {
        let v = Version::parse("v2.0.0", "v");
        assert_eq!((v.major, v.minor, v.patch), (Some(2), Some(0), Some(0)));
        assert!(!v.is_prerelease());
        assert!(Version::parse("2.0.0-beta.1", "v").is_prerelease());
        assert!(!Version::parse("edge", "v").is_semver());
        assert_eq!(sanitize_ref("feature/New_x"), "feature-New_x");
    }
}
