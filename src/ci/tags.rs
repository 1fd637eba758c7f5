//! The release tags, computed inside the workflow exactly as `multiarch plan` computes them.
//!
//! A local release renders each tag template with minijinja ([`crate::release::expand`]). A
//! workflow should not need `multiarch` installed to do the same, so the templates are compiled
//! here, at generation time, into one bash step (template `tags.sh.j2`):
//!
//! 1. the version is the pushed tag without `[release] tag-prefix` (or the fixed
//!    `version-from`), split into semver parts by a regex equivalent to the `semver` crate's;
//! 2. each template becomes a bash concatenation of its literal text and variables; `image` and
//!    `registry` are known now and written in as text; `env.NAME` reads the repository
//!    variable `vars.NAME`;
//! 3. the rendered tag is trimmed, dropped when empty, checked against Docker's tag grammar,
//!    skipped when floating on a prerelease (unless `floating-on-prerelease`), de-duplicated
//!    with immutable winning, and listed immutable first: the rules of `release::expand`.
//!
//! Why not docker/metadata-action: its `type=semver` patterns cover `{{ major }}.{{ minor }}`
//! but not `sha-{{ short_sha }}`, `{{ version }}-{{ image }}` or `env.NAME`, and its rules for
//! prereleases and `latest` differ from ours. One renderer whose equivalence is tested (see the
//! tests below, which run the generated bash and compare with `release::expand`) is safer than
//! a translation into another tool's vocabulary.
//!
//! Only `{{ variable }}` substitutions can be compiled; a template with blocks or filters is
//! refused with a message saying so. `{{ branch }}` is refused too: a tag push has no branch.

use serde::Serialize;

use crate::error::{Error, Problem};
use crate::model::{Project, Registry, VersionSource};
use crate::version::TagTemplate;

/// Prefix of the step environment variables that carry `env.NAME` values (`vars.NAME`).
pub const ENV_PREFIX: &str = "MULTIARCH_ENV_";

/// True when CI publishes to this registry. Plain-HTTP registries (loopback, or marked
/// `insecure`) are local ones a GitHub runner cannot reach, so the workflow leaves them out.
pub fn in_ci(registry: &Registry) -> bool {
    !registry.plain_http
}

/// A piece of a tag template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// Splits a template into text and `{{ variable }}` pieces, honouring `{{-`/`-}}`.
fn parse(source: &str) -> Result<Vec<Piece>, String> {
    for open in ["{%", "{#"] {
        if source.contains(open) {
            return Err("blocks and comments".into());
        }
    }
    let mut pieces = Vec::new();
    let mut rest = source;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("an unclosed `{{`")?;
        let mut inner = &after[..end];
        if let Some(i) = inner.strip_prefix('-') {
            text = text.trim_end().to_string();
            inner = i;
        } else if let Some(i) = inner.strip_prefix('+') {
            inner = i;
        }
        trim_next = false;
        if let Some(i) = inner.strip_suffix('-') {
            trim_next = true;
            inner = i;
        } else if let Some(i) = inner.strip_suffix('+') {
            inner = i;
        }
        let name = inner.trim();
        let ident = |s: &str| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let ok = match name.split_once('.') {
            Some((root, attr)) => root == "env" && ident(attr),
            None => ident(name),
        };
        if !ok {
            return Err(format!("the expression `{name}`"));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        pieces.push(Piece::Var(name.to_string()));
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next {
        text = text.trim_start().to_string();
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// One template, compiled for one image in one registry.
#[derive(Debug, Serialize)]
struct CompiledTag {
    source: String,
    floating: bool,
    /// Variables that must have a value (constants excluded).
    needs: Vec<String>,
    /// The bash word that renders it.
    expr: String,
}

fn compile(
    t: &TagTemplate,
    image: &str,
    registry: &str,
    env_names: &mut Vec<String>,
) -> Result<CompiledTag, Problem> {
    let pieces = parse(&t.source).map_err(|what| {
        Problem::new(format!(
            "image \"{image}\": tag template \"{}\" uses {what}, which the generated workflow cannot render",
            t.source
        ))
        .help("in CI, tag templates may only put variables side by side with text, e.g. \"{{ major }}.{{ minor }}\" or \"sha-{{ short_sha }}\"")
    })?;
    let mut needs = Vec::new();
    let mut expr = String::new();
    for p in pieces {
        match p {
            Piece::Text(s) => expr.push_str(&super::shell_quote(&s)),
            Piece::Var(v) => match v.as_str() {
                "image" => expr.push_str(&super::shell_quote(image)),
                "registry" => expr.push_str(&super::shell_quote(registry)),
                "branch" => {
                    return Err(Problem::new(format!(
                        "image \"{image}\": tag template \"{}\" uses `branch`, and a release started by a tag push has no branch",
                        t.source
                    ))
                    .help("use \"{{ version }}\", \"sha-{{ short_sha }}\" or \"{{ date }}\" in CI tags"))
                }
                _ => {
                    let var = match v.strip_prefix("env.") {
                        Some(name) => {
                            if !env_names.iter().any(|n| n == name) {
                                env_names.push(name.to_string());
                            }
                            format!("{ENV_PREFIX}{name}")
                        }
                        None => v.clone(),
                    };
                    expr.push_str(&format!("\"${{{var}}}\""));
                    if !needs.contains(&v) {
                        needs.push(v);
                    }
                }
            },
        }
    }
    if expr.is_empty() {
        expr = "''".into();
    }
    Ok(CompiledTag {
        source: t.source.clone(),
        floating: t.floating,
        needs,
        expr,
    })
}

#[derive(Serialize)]
struct PublicationCtx {
    registry: String,
    registry_json: String,
    templates: Vec<CompiledTag>,
}

#[derive(Serialize)]
struct ImageCtx {
    key: String,
    key_json: String,
    publications: Vec<PublicationCtx>,
}

#[derive(Serialize)]
struct EnvCtx {
    name: String,
    var: String,
}

/// The tag step's script and the `env.NAME` variables it reads.
pub struct Script {
    /// The bash script.
    pub text: String,
    /// Names used as `env.NAME`; the step passes `vars.NAME` as `MULTIARCH_ENV_NAME`.
    pub env_names: Vec<String>,
}

/// Compiles every image's tag templates, for every registry CI publishes to, into the bash of
/// the "Release tags" step. Its outputs: `publish` (`true` for a release), `version`, and
/// `tags`, a JSON object `{image: {registry: {"immutable": [..], "floating": [..]}}}`.
pub fn script(project: &Project) -> Result<Script, Error> {
    let mut problems = Vec::new();
    let mut refused: Vec<&str> = Vec::new(); // each template reported once, not once per image
    let mut env_names = Vec::new();
    let mut images = Vec::new();
    for img in project.build_order() {
        let mut publications = Vec::new();
        for rname in &img.registries {
            let reg = &project.registries[rname];
            if !in_ci(reg) {
                continue;
            }
            let mut templates = Vec::new();
            for t in &img.tags {
                match compile(t, &img.key, rname, &mut env_names) {
                    Ok(c) => templates.push(c),
                    Err(p) => {
                        if !refused.contains(&t.source.as_str()) {
                            refused.push(&t.source);
                            problems.push(p)
                        }
                    }
                }
            }
            publications.push(PublicationCtx {
                registry: rname.clone(),
                registry_json: json(rname),
                templates,
            });
        }
        images.push(ImageCtx {
            key: img.key.clone(),
            key_json: json(&img.key),
            publications,
        });
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let literal_version = match &project.release.version_from {
        VersionSource::Literal(v) => {
            Some(crate::version::Version::parse(v, &project.release.tag_prefix).raw)
        }
        // A tag-triggered release takes its version from the tag, whatever the local source.
        VersionSource::GitTag | VersionSource::Env(_) => None,
    };
    let env: Vec<EnvCtx> = env_names
        .iter()
        .map(|n| EnvCtx {
            name: n.clone(),
            var: format!("{ENV_PREFIX}{n}"),
        })
        .collect();
    let mut jinja = super::environment();
    jinja
        .add_template("tags.sh", include_str!("templates/github/tags.sh.j2"))
        .expect("tags.sh.j2 compiles");
    let text = jinja
        .get_template("tags.sh")
        .and_then(|t| {
            t.render(minijinja::value::Serde(serde_json::json!({
                "literal_version": literal_version,
                "tag_prefix": project.release.tag_prefix,
                "floating_on_prerelease": project.release.floating_on_prerelease,
                "env": env,
                "images": images,
            })))
        })
        .map_err(|e| {
            Error::failed(Problem::new(format!(
                "rendering the tag step failed: {e:#}"
            )))
        })?;
    Ok(Script { text, env_names })
}

fn json(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostFacts;
    use std::collections::BTreeMap;
    use std::process::Command;

    #[test]
    fn parses_substitutions() {
        use Piece::*;
        assert_eq!(
            parse("{{ major }}.{{minor}}").unwrap(),
            vec![Var("major".into()), Text(".".into()), Var("minor".into())]
        );
        assert_eq!(
            parse("a {{- version -}} b").unwrap(),
            vec![Text("a".into()), Var("version".into()), Text("b".into())]
        );
        assert_eq!(parse("{{ env.X_1 }}").unwrap(), vec![Var("env.X_1".into())]);
        assert!(parse("{% if prerelease %}x{% endif %}").is_err());
        assert!(parse("{{ version | lower }}").is_err());
        assert!(parse("{{ version").is_err());
    }

    /// Writes a project with these `[release]` lines and tags, two images, three registries
    /// (one restricted to amd64, one plain-HTTP that CI leaves out).
    fn project(release: &str, tags: &[&str]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("base")).unwrap();
        std::fs::write(dir.path().join("base/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM base\n").unwrap();
        let tags = tags
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            r#"[project]
name = "demo"
[release]
{release}
[defaults]
platforms = ["linux/amd64", "linux/arm64"]
registries = ["hub", "lazy", "local"]
tags = [{tags}]
[registries.hub]
host = "docker.io"
namespace = "me"
[registries.lazy]
host = "registry.lazycat.cloud"
namespace = "u/you"
platforms = ["linux/amd64"]
[registries.local]
host = "localhost:5000"
[images.base]
context = "base"
[images.app]
context = "."
depends-on = ["base"]
"#
        );
        let file = dir.path().join("multiarch.toml");
        std::fs::write(&file, text).unwrap();
        let p = Project::load(&file).unwrap_or_else(|e| panic!("{}", e.render(false)));
        (dir, p)
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    /// Runs the generated step for a push of `git_ref`; the `tags` output, or None when the
    /// step failed.
    fn run_bash(p: &Project, git_ref: &str, env: &[(&str, &str)]) -> Option<serde_json::Value> {
        let s = script(p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::write(&out, "").unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(&s.text)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("GITHUB_OUTPUT", &out)
            .env("GITHUB_REF_TYPE", "tag")
            .env("GITHUB_REF_NAME", git_ref)
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_SHA", SHA);
        for (k, v) in env {
            cmd.env(format!("{ENV_PREFIX}{k}"), v);
        }
        let res = cmd.output().unwrap();
        if !res.status.success() {
            return None;
        }
        let text = std::fs::read_to_string(&out).unwrap();
        let line = text.lines().find_map(|l| l.strip_prefix("tags=")).unwrap();
        Some(serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
    }

    fn today() -> String {
        let out = Command::new("date")
            .args(["-u", "+%Y%m%d"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// What `release::expand` says for the same version, in the same shape.
    fn expected(p: &Project, git_ref: &str, env: &[(&str, &str)]) -> Option<serde_json::Value> {
        let mut facts = HostFacts::fixed();
        facts.git.sha = Some(SHA.into());
        facts.git.branch = None;
        facts.date = today();
        facts.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        let explicit = match p.release.version_from {
            VersionSource::Literal(_) => None,
            _ => Some(git_ref),
        };
        let release = crate::release::expand(p, &facts, explicit, &[]).ok()?;
        let mut out = serde_json::Map::new();
        for publ in &release.publications {
            if !in_ci(&p.registries[&publ.registry]) {
                continue;
            }
            let names = |floating: bool| -> Vec<String> {
                publ.tags
                    .iter()
                    .filter(|t| t.floating == floating)
                    .map(|t| t.name.clone())
                    .collect()
            };
            let entry = serde_json::json!({"immutable": names(false), "floating": names(true)});
            out.entry(publ.image.clone())
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .unwrap()
                .insert(publ.registry.clone(), entry);
        }
        Some(serde_json::Value::Object(out))
    }

    fn same(release: &str, tags: &[&str], refs: &[&str], env: &[(&str, &str)]) {
        let (_dir, p) = project(release, tags);
        for r in refs {
            let want = expected(&p, r, env);
            let got = run_bash(&p, r, env);
            assert_eq!(got, want, "tags {tags:?}, [release] {release:?}, ref {r}");
        }
    }

    const VERSIONS: &[&str] = &[
        "v1.2.3",
        "v1.2.3-rc.1",
        "v0.1.0",
        "v10.20.30-alpha.beta-1.0",
        "v2.0.0--x.7z",
        "v1.0.0+build.5",
        "v1.0.0-01",
        "v1.02.3",
        "v1.2",
        "nightly",
        "1.2.3",
    ];

    #[test]
    fn same_tags_as_a_local_release() {
        same(
            "",
            &[
                "{{ version }}",
                "{{ major }}.{{ minor }}",
                "{{ major }}",
                "latest",
            ],
            VERSIONS,
            &[],
        );
        same("", &["{{ version }}", "latest"], VERSIONS, &[]);
        same("", &["{{ version }}"], VERSIONS, &[]);
    }

    #[test]
    fn every_variable() {
        same(
            "",
            &[
                "{{ version }}",
                "sha-{{ short_sha }}",
                "{{ sha }}",
                "{{ date }}",
                "{{ version }}-{{ image }}-{{ registry }}",
                "{{ prerelease }}",
                "p{{ patch }}",
                "build-{{ env.BUILD_ID }}",
                " {{- major -}} x ",
            ],
            &["v1.2.3", "v1.2.3-rc.1", "v0.1.0", "v9.9.9-beta"],
            &[("BUILD_ID", "42")],
        );
        // Without the variable, both refuse.
        same("", &["build-{{ env.BUILD_ID }}"], &["v1.2.3"], &[]);
    }

    #[test]
    fn prerelease_and_duplicates() {
        // "1.2" is floating from the first template and immutable from the third: immutable wins.
        let tags = &[
            "{{ major }}.{{ minor }}",
            "latest",
            "{{ major }}.{{ patch }}",
        ];
        same("", tags, &["v1.2.2", "v1.2.2-rc.1", "v1.2.3"], &[]);
        same(
            "floating-on-prerelease = true",
            tags,
            &["v1.2.2-rc.1", "v3.0.0-beta.2"],
            &[],
        );
        // Only floating tags on a prerelease: nothing to publish, both refuse.
        same(
            "",
            &["latest", "{{ major }}"],
            &["v1.0.0-rc.1", "v1.0.0"],
            &[],
        );
    }

    #[test]
    fn prefixes_and_fixed_versions() {
        same(
            "tag-prefix = \"release-\"",
            &["{{ version }}", "{{ major }}"],
            &["release-1.4.0", "v1.4.0", "release-2.0.0-rc.2"],
            &[],
        );
        same(
            "tag-prefix = \"\"",
            &["{{ version }}", "{{ major }}"],
            &["1.4.0", "v1.4.0"],
            &[],
        );
        same(
            "version-from = \"v3.1.4\"",
            &["{{ version }}", "{{ major }}.{{ minor }}"],
            &["v9.9.9"],
            &[],
        );
    }

    #[test]
    fn no_release_no_tags() {
        let (_dir, p) = project("", &["{{ version }}"]);
        let s = script(&p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let status = Command::new("bash")
            .arg("-c")
            .arg(&s.text)
            .env("GITHUB_OUTPUT", &out)
            .env("GITHUB_REF_TYPE", "branch")
            .env("GITHUB_REF_NAME", "main")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_SHA", SHA)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "publish=false\ntags={}\n"
        );
    }

    #[test]
    fn refuses_what_bash_cannot_render() {
        let (_dir, p) = project(
            "",
            &[
                "{% if prerelease %}{% else %}stable{% endif %}",
                "{{ branch }}",
            ],
        );
        let Err(Error::Invalid(problems)) = script(&p) else {
            panic!("refused")
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].message.contains("blocks"),
            "{}",
            problems[0].message
        );
        assert!(
            problems[1].message.contains("no branch"),
            "{}",
            problems[1].message
        );
    }

    #[test]
    fn script_has_no_github_expressions() {
        let (_dir, p) = project("", &["{{ version }}", "x-{{ env.A }}"]);
        let s = script(&p).unwrap();
        assert!(!s.text.contains("${{"), "{}", s.text);
        assert_eq!(s.env_names, vec!["A".to_string()]);
    }
}
