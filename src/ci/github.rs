//! GitHub Actions workflows: `multiarch ci github`.
//!
//! How a workflow is made:
//!
//! 1. [`generate`] builds a view of the project (jobs, matrix entries, registries, logins,
//!    cache settings, the publish steps' arguments) in plain Rust, where it is easy to test;
//! 2. the templates in `templates/github/` lay that view out as YAML; they hold no logic beyond
//!    loops and conditions;
//! 3. the tags step comes from [`super::tags`], which compiles the tag templates into bash.
//!
//! The workflow follows Docker's documented patterns. `emulated`: one job per image on an x86
//! runner, QEMU for the other platforms, all platforms in one build. `native` ("Distribute build
//! across multiple runners"): per image, a matrix job per platform on a runner of that
//! architecture, each pushing by digest and uploading the digest as an artifact, then a publish
//! job that downloads the digests and writes the tags with `docker buildx imagetools create`.
//!
//! Both keep DESIGN.md's publishing order: every platform is pushed by digest first, then the
//! immutable tags are written, then verified (`imagetools inspect`), and only then do the
//! floating tags move. Nothing in the workflow needs `multiarch` itself: actions and bash only.
//!
//! Safety, by construction: actions pinned by commit SHA (from `actions.toml`), `permissions: {}`
//! at the top and the least per job, no persisted checkout credentials, no `${{ }}` expression
//! inside a `run:` script (values reach scripts through `env:`), a concurrency group that never
//! cancels a release half-way.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::config::{Network, Strategy};
use crate::error::{Error, Problem, Result, EXIT_FAILED, EXIT_OK};
use crate::model::{Cache, Image, Project, Registry};
use crate::platform::Platform;

use super::tags::{self, in_ci};

/// The x86 runner: the emulated strategy's runner, and the fallback (with QEMU) of the native
/// strategy for platforms without a native runner.
const X86_RUNNER: &str = "ubuntu-24.04";

/// Entry point of `multiarch ci github`.
pub fn command(cli: &crate::cli::Cli, args: &crate::cli::GithubArgs) -> Result<i32> {
    let project = Project::load(&cli.file)?;
    let strategy = match args.strategy {
        Some(crate::cli::StrategyArg::Native) => Strategy::Native,
        Some(crate::cli::StrategyArg::Emulated) => Strategy::Emulated,
        None => project.github.strategy,
    };
    let text = generate(&project, strategy)?;
    let path = workflow_path(&project);
    if args.write {
        write(&path, &text)?;
        eprintln!("wrote {}", path.display());
        Ok(EXIT_OK)
    } else if args.check {
        match check(&path, &text)? {
            None => {
                eprintln!("{} is up to date", path.display());
                Ok(EXIT_OK)
            }
            Some(diff) => {
                print!("{diff}");
                eprintln!(
                    "{} is not what `multiarch ci github` generates from {}; run `multiarch ci github --write`",
                    path.display(),
                    project.file.display()
                );
                Ok(EXIT_FAILED)
            }
        }
    } else {
        print!("{text}");
        Ok(EXIT_OK)
    }
}

/// `.github/workflows/<workflow>.yml` under the project root.
pub fn workflow_path(project: &Project) -> PathBuf {
    project
        .root
        .join(".github")
        .join("workflows")
        .join(format!("{}.yml", project.github.workflow))
}

/// Writes the workflow, creating its folders.
pub fn write(path: &Path, text: &str) -> Result<()> {
    let io = |e: std::io::Error| {
        Error::failed(Problem::new(format!(
            "cannot write {}: {e}",
            path.display()
        )))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// Compares the committed workflow with a fresh render: `None` when equal, else a unified diff
/// (committed -> generated). A missing file differs from everything.
pub fn check(path: &Path, generated: &str) -> Result<Option<String>> {
    let committed = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::failed(Problem::new(format!(
                "cannot read {}: {e}",
                path.display()
            ))));
        }
    };
    if committed == generated {
        return Ok(None);
    }
    let shown = path.display().to_string();
    let diff = similar::TextDiff::from_lines(committed.as_str(), generated)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{shown} (committed)"),
            &format!("{shown} (generated)"),
        )
        .to_string();
    Ok(Some(diff))
}

/// Renders the workflow for `project` with `strategy`. Pure: reads no file and no environment.
pub fn generate(project: &Project, strategy: Strategy) -> Result<String> {
    let script = tags::script(project)?;
    let view = view(project, strategy, script)?;
    let mut env = super::environment();
    env.add_filter("yaml", yaml_scalar);
    for (name, text) in [
        (
            "workflow.yml",
            include_str!("templates/github/workflow.yml.j2"),
        ),
        ("native.yml", include_str!("templates/github/native.yml.j2")),
        (
            "emulated.yml",
            include_str!("templates/github/emulated.yml.j2"),
        ),
        ("steps.yml", include_str!("templates/github/steps.yml.j2")),
    ] {
        env.add_template(name, text)
            .map_err(|e| Error::failed(Problem::new(format!("template {name}: {e:#}"))))?;
    }
    let text = env
        .get_template("workflow.yml")
        .and_then(|t| t.render(minijinja::value::Serde(&view)))
        .map_err(|e| {
            Error::failed(Problem::new(format!(
                "rendering the workflow failed: {e:#}"
            )))
        })?;
    Ok(tidy(&text))
}

/// Trailing spaces removed, runs of blank lines (left by templates' empty loops) made one.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = true; // no blank line at the top either
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if blank {
                continue;
            }
            blank = true;
        } else {
            blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// A YAML scalar: bare when that cannot be misread, else a JSON (= YAML double-quoted) string.
fn yaml_scalar(s: String) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '.' || c == '/' || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,=@+".contains(c))
        && !["true", "false", "yes", "no", "on", "off", "null", "y", "n"]
            .contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s
    } else {
        serde_json::to_string(&s).expect("a string serialises")
    }
}

#[derive(Serialize)]
struct View {
    name: String,
    strategy: &'static str,
    on_tags: Vec<String>,
    on_branches: Vec<String>,
    pull_requests: bool,
    uses: BTreeMap<String, String>,
    tags_script: String,
    tags_env: Vec<(String, String)>,
    images: Vec<ImageView>,
    skipped: Vec<String>,
}

#[derive(Serialize)]
struct ImageView {
    key: String,
    /// Job-id-safe key.
    id: String,
    /// The job that builds (native: the matrix job; emulated: the only job).
    build_job: String,
    /// The job whose end means "published" (native: the publish job; emulated: the only job).
    done_job: String,
    /// build-push-action inputs every build step of the image has, as YAML lines.
    build_inputs: Vec<String>,
    network: Option<&'static str>,
    /// Every platform, comma-separated.
    platforms: String,
    /// Native matrix entries.
    matrix: Vec<MatrixEntry>,
    /// Emulated: QEMU platforms for the x86 runner (`arm64,arm`), empty when none.
    qemu: String,
    runner: String,
    /// Emulated: one build step per distinct set of platforms among the registries.
    groups: Vec<Group>,
    /// Emulated: `DIGEST_<n>: ${{ steps.build-<n>.outputs.digest }}` for the publish steps.
    digest_env: Vec<String>,
    registries: Vec<RegistryView>,
    /// Registries to log in to (publish targets, plus registries of pinned bases).
    logins: Vec<Login>,
    /// Jobs of the images this one is built from.
    needs: Vec<String>,
    /// `build-contexts` lines (expressions reading the bases' pin outputs).
    contexts: Vec<String>,
    /// Set when another image is built from this one and a registry holds every platform it needs.
    pin: Option<Pin>,
    /// Why no pin, when some image depends on this one but none can be had.
    pin_missing: Option<String>,
    cache_from: Option<String>,
    cache_to: Option<String>,
    /// Emulated: build steps after the first export no cache.
    packages_write: bool,
    publishes: bool,
}

#[derive(Serialize)]
struct MatrixEntry {
    platform: String,
    pair: String,
    runner: String,
    qemu: String,
    push: bool,
    names: String,
}

#[derive(Serialize)]
struct Group {
    id: String,
    platforms: String,
    names: String,
    registries: String,
}

#[derive(Serialize)]
struct RegistryView {
    name: String,
    image_name: String,
    /// Expected platforms, sorted, comma-separated (what verify compares with).
    expected: String,
    /// Bash words naming the per-platform (native) or per-group (emulated) pushes.
    sources: Vec<String>,
}

#[derive(Serialize, Clone, PartialEq)]
struct Login {
    name: String,
    host: String,
    /// `registry:` input; None for Docker Hub (login-action's default).
    registry: Option<String>,
    username: Option<String>,
    password: Option<String>,
    note: Option<String>,
}

#[derive(Serialize)]
struct Pin {
    registry: String,
    image_name: String,
}

fn job_id(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn pair(p: &Platform) -> String {
    p.to_string().replace('/', "-")
}

/// `path` relative to `root`, with '/' separators ("." for the root itself).
fn relative(root: &Path, path: &Path) -> String {
    let r: Vec<Component> = root.components().collect();
    let p: Vec<Component> = path.components().collect();
    let common = r.iter().zip(&p).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); r.len() - common];
    parts.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

fn login(reg: &Registry) -> Login {
    let registry = (!is_docker_hub(&reg.host)).then(|| reg.host.clone());
    let (username, password, note) = match (&reg.username_env, &reg.password_env) {
        (Some(u), Some(p)) => (Some(credential(u)), Some(credential(p)), None),
        _ if reg.host == "ghcr.io" => (
            Some("${{ github.actor }}".to_string()),
            Some("${{ secrets.GITHUB_TOKEN }}".to_string()),
            None,
        ),
        _ => (
            None,
            None,
            Some(format!(
                "registry \"{}\" declares no username-env/password-env: no login, pushes to {} rely on it accepting them",
                reg.name, reg.host
            )),
        ),
    };
    Login {
        name: reg.name.clone(),
        host: reg.host.clone(),
        registry,
        username,
        password,
        note,
    }
}

/// The expression giving a credential named by `username-env`/`password-env`: the secret of
/// that name, except for the names GitHub reserves (no secret may start with `GITHUB_`), which
/// are the run's own values: `GITHUB_TOKEN` the workflow token, `GITHUB_ACTOR` the actor, ...
fn credential(name: &str) -> String {
    let expr = match name {
        "GITHUB_TOKEN" => "secrets.GITHUB_TOKEN".to_string(),
        "GITHUB_ACTOR" => "github.actor".to_string(),
        "GITHUB_TRIGGERING_ACTOR" => "github.triggering_actor".to_string(),
        "GITHUB_REPOSITORY_OWNER" => "github.repository_owner".to_string(),
        other => format!("secrets.{other}"),
    };
    format!("${{{{ {expr} }}}}")
}

fn runners(project: &Project) -> Vec<(Platform, String)> {
    let mut out = super::actions::default_runners();
    for (p, r) in &project.github.runners {
        match out.iter_mut().find(|(q, _)| q == p) {
            Some(entry) => entry.1 = r.clone(),
            None => out.push((p.clone(), r.clone())),
        }
    }
    out
}

fn view(project: &Project, strategy: Strategy, script: tags::Script) -> Result<View> {
    let native = strategy == Strategy::Native;
    let runners = runners(project);
    let x86 = Platform::new("linux", "amd64", None);
    let x86_runner = runners
        .iter()
        .find(|(p, _)| *p == x86)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| X86_RUNNER.into());
    let mut problems = Vec::new();
    let mut skipped = Vec::new();
    for reg in project.registries.values() {
        if !in_ci(reg)
            && project
                .images
                .values()
                .any(|i| i.registries.contains(&reg.name))
        {
            skipped.push(format!(
                "registry \"{}\" ({}) is plain HTTP, for local use: a GitHub runner cannot reach it, so CI does not publish there",
                reg.name, reg.host
            ));
        }
    }

    for reg in project.registries.values().filter(|r| in_ci(r)) {
        for name in [&reg.username_env, &reg.password_env].into_iter().flatten() {
            if name.starts_with("GITHUB_")
                && credential(name).starts_with("${{ secrets.GITHUB_")
                && name != "GITHUB_TOKEN"
            {
                problems.push(
                    Problem::new(format!(
                        "registry \"{}\": GitHub reserves names starting with GITHUB_, so no secret can be called {name}",
                        reg.name
                    ))
                    .help("name a repository secret without the GITHUB_ prefix, or use GITHUB_TOKEN / GITHUB_ACTOR"),
                );
            }
        }
    }

    let mut images = Vec::new();
    for img in project.build_order() {
        let id = job_id(&img.key);
        let (build_job, done_job) = if native {
            (format!("build-{id}"), format!("publish-{id}"))
        } else {
            (format!("image-{id}"), format!("image-{id}"))
        };
        let regs: Vec<&Registry> = img
            .registries
            .iter()
            .map(|r| &project.registries[r])
            .filter(|r| in_ci(r))
            .collect();

        // Lines of block scalars must stay one line each.
        let lines = |what: &str,
                     map: &indexmap::IndexMap<String, String>,
                     problems: &mut Vec<Problem>| {
            map.iter()
                .filter_map(|(k, v)| {
                    if v.contains('\n') {
                        problems.push(
                            Problem::new(format!("image \"{}\": {what} \"{k}\" spans several lines", img.key))
                                .help("the generated workflow passes one KEY=VALUE per line; keep the value on one line"),
                        );
                        None
                    } else {
                        Some(format!("{k}={v}"))
                    }
                })
                .collect::<Vec<_>>()
        };
        let build_args = lines("build argument", &img.build_args, &mut problems);
        let labels = lines("label", &img.labels, &mut problems);

        let accepting = |p: &Platform| -> Vec<&Registry> {
            regs.iter()
                .copied()
                .filter(|r| img.platforms_for(r).contains(p))
                .collect()
        };
        let names = |rs: &[&Registry]| -> String {
            rs.iter()
                .map(|r| r.image_name(&img.repository))
                .collect::<Vec<_>>()
                .join(",")
        };

        let matrix: Vec<MatrixEntry> = img
            .platforms
            .iter()
            .map(|p| {
                let (runner, qemu) = match runners.iter().find(|(q, _)| q == p) {
                    Some((_, r)) => (r.clone(), String::new()),
                    None if x86.runs_natively(p) => (x86_runner.clone(), String::new()),
                    None => (x86_runner.clone(), p.arch.clone()),
                };
                let acc = accepting(p);
                MatrixEntry {
                    platform: p.to_string(),
                    pair: pair(p),
                    runner,
                    qemu,
                    push: !acc.is_empty(),
                    names: names(&acc),
                }
            })
            .collect();

        // Emulated: registries grouped by the platforms they receive, one build step each
        // (the second and later builds are answered from the builder's cache).
        let mut groups: Vec<(Vec<Platform>, Vec<&Registry>)> = Vec::new();
        for r in &regs {
            let ps = img.platforms_for(r);
            match groups.iter_mut().find(|(q, _)| *q == ps) {
                Some(g) => g.1.push(r),
                None => groups.push((ps, vec![r])),
            }
        }

        let registries = regs
            .iter()
            .map(|r| {
                let name = r.image_name(&img.repository);
                let ps = img.platforms_for(r);
                let mut expected: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                expected.sort();
                let sources = if native {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "\"{name}@sha256:$(ls \"$RUNNER_TEMP/digests/{}\")\"",
                                pair(p)
                            )
                        })
                        .collect()
                } else {
                    let g = groups
                        .iter()
                        .position(|(q, _)| *q == ps)
                        .expect("grouped above");
                    vec![format!("\"{name}@$DIGEST_{g}\"")]
                };
                RegistryView {
                    name: r.name.clone(),
                    image_name: name,
                    expected: expected.join(","),
                    sources,
                }
            })
            .collect();

        let digest_env = (0..groups.len())
            .map(|i| format!("DIGEST_{i}: ${{{{ steps.build-{i}.outputs.digest }}}}"))
            .collect();
        let groups = groups
            .iter()
            .enumerate()
            .map(|(i, (ps, rs))| Group {
                id: format!("build-{i}"),
                platforms: ps
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                names: names(rs),
                registries: rs
                    .iter()
                    .map(|r| r.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect();

        let mut logins: Vec<Login> = regs.iter().map(|r| login(r)).collect();

        // Bases: wait for them, and take each pinned by digest when it could be pinned.
        let mut needs = Vec::new();
        let mut contexts = Vec::new();
        for d in &img.depends_on {
            let base = &project.images[d];
            let base_done = if native {
                format!("publish-{}", job_id(d))
            } else {
                format!("image-{}", job_id(d))
            };
            if let Some(reg) = pin_registry(project, base) {
                contexts.push(format!("${{{{ needs.{base_done}.outputs.context }}}}"));
                let l = login(reg);
                if !logins.iter().any(|x| x.name == l.name) {
                    logins.push(l);
                }
            }
            needs.push(base_done);
        }

        let dependants: Vec<&Image> = project
            .images
            .values()
            .filter(|i| i.depends_on.contains(&img.key))
            .collect();
        let (pin, pin_missing) = if dependants.is_empty() {
            (None, None)
        } else {
            match pin_registry(project, img) {
                Some(r) => (
                    Some(Pin {
                        registry: r.name.clone(),
                        image_name: r.image_name(&img.repository),
                    }),
                    None,
                ),
                None => (
                    None,
                    Some(format!(
                        "no registry CI publishes {} to holds every platform its dependants build, so they are not given it pinned by digest",
                        img.key
                    )),
                ),
            }
        };

        let cache_name = regs.first().map(|r| r.image_name(&img.repository));
        let publish = "needs.prepare.outputs.publish == 'true'";
        let (cache_from, cache_to) = match (&img.cache, native) {
            (Cache::Gha, true) => (
                Some(format!("type=gha,scope={id}-${{{{ matrix.pair }}}}")),
                Some(format!("type=gha,mode=max,scope={id}-${{{{ matrix.pair }}}}")),
            ),
            (Cache::Gha, false) => (
                Some(format!("type=gha,scope={id}")),
                Some(format!("type=gha,mode=max,scope={id}")),
            ),
            (Cache::Registry, true) => match &cache_name {
                Some(n) => (
                    Some(format!("type=registry,ref={n}:buildcache-${{{{ matrix.pair }}}}")),
                    Some(format!(
                        "${{{{ {publish} && format('type=registry,ref={n}:buildcache-{{0}},mode=max', matrix.pair) || '' }}}}"
                    )),
                ),
                None => (None, None),
            },
            (Cache::Registry, false) => match &cache_name {
                Some(n) => (
                    Some(format!("type=registry,ref={n}:buildcache")),
                    Some(format!("${{{{ {publish} && 'type=registry,ref={n}:buildcache,mode=max' || '' }}}}")),
                ),
                None => (None, None),
            },
            // A local cache folder means nothing on a fresh runner.
            (Cache::None | Cache::Local(_), _) => (None, None),
        };

        let qemu = img
            .platforms
            .iter()
            .filter(|p| !x86.runs_natively(p))
            .map(|p| p.arch.clone())
            .fold(Vec::<String>::new(), |mut v, a| {
                if !v.contains(&a) {
                    v.push(a);
                }
                v
            })
            .join(",");

        images.push(ImageView {
            key: img.key.clone(),
            id,
            build_job,
            done_job,
            build_inputs: build_inputs(project, img, build_args, labels, &contexts),
            network: (img.network == Network::Host).then_some("host"),
            platforms: img
                .platforms
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            matrix,
            qemu,
            runner: x86_runner.clone(),
            groups,
            digest_env,
            registries,
            packages_write: logins.iter().any(|l| l.host == "ghcr.io"),
            logins,
            needs,
            contexts,
            pin,
            pin_missing,
            cache_from,
            cache_to,
            publishes: !regs.is_empty(),
        });
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let uses = super::actions::all()
        .into_values()
        .map(|a| (a.repo.clone(), a.uses()))
        .collect();
    Ok(View {
        name: format!("Release {}", project.name),
        strategy: if native { "native" } else { "emulated" },
        on_tags: project.github.on_tags.clone(),
        on_branches: project.github.on_branches.clone(),
        pull_requests: project.github.pull_requests,
        uses,
        tags_script: script.text,
        tags_env: script
            .env_names
            .iter()
            .map(|n| (format!("{}{n}", tags::ENV_PREFIX), n.clone()))
            .collect(),
        images,
        skipped,
    })
}

/// The inputs of build-push-action that do not change between an image's build steps.
fn build_inputs(
    project: &Project,
    img: &Image,
    build_args: Vec<String>,
    labels: Vec<String>,
    contexts: &[String],
) -> Vec<String> {
    let mut out = vec![
        format!(
            "context: {}",
            yaml_scalar(relative(&project.root, &img.context))
        ),
        format!(
            "file: {}",
            yaml_scalar(relative(&project.root, &img.dockerfile))
        ),
    ];
    if let Some(t) = &img.target {
        out.push(format!("target: {}", yaml_scalar(t.clone())));
    }
    let mut block = |key: &str, lines: &[String]| {
        if !lines.is_empty() {
            out.push(format!("{key}: |"));
            out.extend(lines.iter().map(|l| format!("  {l}")));
        }
    };
    block("build-args", &build_args);
    block("labels", &labels);
    block("build-contexts", contexts);
    match img.network {
        Network::Default => {}
        Network::Host => {
            out.push("network: host".into());
            out.push("allow: network.host".into());
        }
        Network::None => out.push("network: none".into()),
    }
    out
}

/// The registry a base image is taken from by its dependants: the first one CI publishes it to
/// that holds every platform they build.
fn pin_registry<'a>(project: &'a Project, base: &Image) -> Option<&'a Registry> {
    let needed: Vec<&Platform> = project
        .images
        .values()
        .filter(|i| i.depends_on.contains(&base.key))
        .flat_map(|i| i.platforms.iter())
        .collect();
    base.registries
        .iter()
        .map(|r| &project.registries[r])
        .filter(|r| in_ci(r))
        .find(|r| {
            let held = base.platforms_for(r);
            needed.iter().all(|p| held.contains(p))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars() {
        assert_eq!(
            yaml_scalar("linux/amd64,linux/arm64".into()),
            "linux/amd64,linux/arm64"
        );
        assert_eq!(yaml_scalar("base".into()), "base");
        assert_eq!(yaml_scalar(".".into()), ".");
        assert_eq!(yaml_scalar("on".into()), "\"on\"");
        assert_eq!(yaml_scalar("1.0".into()), "\"1.0\"");
        assert_eq!(yaml_scalar("a: b".into()), "\"a: b\"");
        assert_eq!(yaml_scalar("x #y".into()), "\"x #y\"");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/p"), Path::new("/p")), ".");
        assert_eq!(
            relative(Path::new("/p"), Path::new("/p/base/Dockerfile")),
            "base/Dockerfile"
        );
        assert_eq!(relative(Path::new("/p/x"), Path::new("/p/y")), "../y");
    }
}
