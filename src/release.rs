//! What one release publishes: for each image and registry, the repository, the platforms and
//! the rendered tags, split into immutable and floating ones.
//!
//! `plan`, `verify` and `ci github` all ask this one module, so the tags a laptop release
//! writes, the tags verify checks and the tags CI writes cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Problem};
use crate::host::HostFacts;
use crate::model::{Project, VersionSource};
use crate::platform::Platform;
use crate::version::{sanitize_ref, TagVars, Version};

/// One rendered tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tag {
    /// The tag.
    pub name: String,
    /// Moves between releases (`latest`, `1`, `1.2`): written last, after verification.
    pub floating: bool,
}

/// An image in one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Publication {
    /// Image key.
    pub image: String,
    /// Registry name.
    pub registry: String,
    /// Registry host.
    pub host: String,
    /// Repository path in that registry (namespace included).
    pub repository: String,
    /// Platforms published there.
    pub platforms: Vec<Platform>,
    /// Tags, immutable ones first.
    pub tags: Vec<Tag>,
    /// Floating tags left out because the version is a prerelease.
    pub skipped_floating: Vec<String>,
}

impl Publication {
    /// `host/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

/// Everything one release publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The version, if one was needed and found.
    pub version: Option<Version>,
    /// Publications, images in build order, registries in image order.
    pub publications: Vec<Publication>,
}

/// Finds the version: `--version`, else `[release] version-from`. `None` when none is to be had.
pub fn find_version(
    project: &Project,
    facts: &HostFacts,
    explicit: Option<&str>,
) -> Result<Option<Version>, Error> {
    let prefix = &project.release.tag_prefix;
    if let Some(v) = explicit {
        return Ok(Some(Version::parse(v, prefix)));
    }
    Ok(match &project.release.version_from {
        VersionSource::Literal(v) => Some(Version::parse(v, prefix)),
        VersionSource::Env(name) => facts
            .env
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| Version::parse(v, prefix)),
        VersionSource::GitTag => {
            // Prefer a tag with the prefix (v1.2.3) among those on HEAD.
            let tags = &facts.git.tags;
            tags.iter()
                .find(|t| t.starts_with(prefix.as_str()) && Version::parse(t, prefix).is_semver())
                .or_else(|| tags.first())
                .map(|t| Version::parse(t, prefix))
        }
    })
}

fn no_version(project: &Project) -> Problem {
    let why = match &project.release.version_from {
        VersionSource::GitTag => "no git tag points at HEAD".to_string(),
        VersionSource::Env(n) => format!("the environment variable {n} is not set"),
        VersionSource::Literal(_) => "no version was given".to_string(),
    };
    Problem::new(format!("the tags need a release version, and {why}")).help(
        "pass --version 1.2.3, tag the commit (git tag v1.2.3), or set [release] version-from",
    )
}

/// Renders every tag of every selected image in every registry.
pub fn expand(
    project: &Project,
    facts: &HostFacts,
    explicit_version: Option<&str>,
    only: &[String],
) -> Result<Release, Error> {
    let version = find_version(project, facts, explicit_version)?;
    let selected: Vec<String> = if only.is_empty() {
        project.images.keys().cloned().collect()
    } else {
        for k in only {
            if !project.images.contains_key(k) {
                let help =
                    crate::suggest::did_you_mean(k, project.images.keys().map(String::as_str))
                        .map(|s| format!("did you mean \"{s}\"?"))
                        .unwrap_or_else(|| {
                            format!(
                                "images: {}",
                                project
                                    .images
                                    .keys()
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        });
                return Err(Error::invalid(
                    Problem::new(format!("--only names unknown image \"{k}\"")).help(help),
                ));
            }
        }
        project.with_dependencies(only)
    };
    let mut base = TagVars {
        sha: facts.git.sha.clone(),
        short_sha: facts.git.sha.as_ref().map(|s| s.chars().take(7).collect()),
        branch: facts.git.branch.as_deref().map(sanitize_ref),
        date: Some(facts.date.clone()),
        env: facts.env.clone(),
        ..TagVars::default()
    };
    if let Some(v) = &version {
        base = base.with_version(v);
    }
    let prerelease = version.as_ref().is_some_and(Version::is_prerelease);
    let mut problems = Vec::new();
    let mut publications = Vec::new();
    for img in project.build_order() {
        if !selected.contains(&img.key) {
            continue;
        }
        for rname in &img.registries {
            let reg = &project.registries[rname];
            let vars = TagVars {
                image: Some(img.key.clone()),
                registry: Some(rname.clone()),
                ..base.clone()
            };
            let mut tags: Vec<Tag> = Vec::new();
            let mut skipped = Vec::new();
            for t in &img.tags {
                if t.variables.iter().any(|v| v == "version") && version.is_none() {
                    if problems.is_empty() {
                        problems.push(no_version(project));
                    }
                    continue;
                }
                match t.render(&vars) {
                    Ok(Some(name)) => {
                        if t.floating && prerelease && !project.release.floating_on_prerelease {
                            skipped.push(name);
                        } else if !tags.iter().any(|x| x.name == name) {
                            tags.push(Tag {
                                name,
                                floating: t.floating,
                            });
                        } else if !t.floating {
                            // The same name from an immutable template wins: it must not wait.
                            if let Some(x) = tags.iter_mut().find(|x| x.name == name) {
                                x.floating = false;
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let msg = format!("image \"{}\": {}", img.key, e.message);
                        if !problems.iter().any(|p: &Problem| p.message == msg) {
                            problems.push(Problem::new(msg).maybe_help(e.help));
                        }
                    }
                }
            }
            tags.sort_by_key(|t| t.floating);
            if tags.is_empty() && problems.is_empty() {
                problems.push(
                    Problem::new(format!("image \"{}\" has no tag to publish in \"{rname}\" for this release", img.key))
                        .help(if skipped.is_empty() {
                            "every tag template rendered empty; add a tag such as \"{{ version }}\"".to_string()
                        } else {
                            format!("only floating tags ({}) were left, and this is a prerelease; add \"{{{{ version }}}}\" or set [release] floating-on-prerelease = true", skipped.join(", "))
                        }),
                );
            }
            publications.push(Publication {
                image: img.key.clone(),
                registry: rname.clone(),
                host: reg.host.clone(),
                repository: reg.repository(&img.repository),
                platforms: img.platforms_for(reg),
                tags,
                skipped_floating: skipped,
            });
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok(Release {
        version,
        publications,
    })
}
