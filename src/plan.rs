//! The planner: a pure function from the project, the host facts and the options to an
//! ordered, reviewable [`Plan`].
//!
//! How a plan is built:
//!
//! 1. **Tags.** [`crate::release::expand`] renders every tag of every selected image in every
//!    registry, immutable and floating apart (floating ones dropped for a prerelease).
//! 2. **Setup.** The backend adds what must exist before any build: the buildx builder (one
//!    node per `[[builder.nodes]]`, reused when it already exists), QEMU handlers for the
//!    platforms that neither a node nor the host runs, and one `login --password-stdin` per
//!    registry whose credentials come from environment variables.
//! 3. **Builds.** Images in dependency order; each build waits for its bases and receives them
//!    pinned by digest. Every build names its output: pushed by digest (nothing human-facing
//!    moves yet) or, with `--load`, loaded into the local store one platform at a time unless
//!    the engine uses the containerd image store.
//! 4. **Immutable tags.** The index is written under the immutable tags (`1.2.3`) in every
//!    registry, narrowed to the registry's platforms.
//! 5. **Verify.** Each written tag is checked against the registry: an index, exactly the
//!    declared platforms.
//! 6. **Floating tags.** Only after *every* verification passed do `latest`, `1`, `1.2` move.
//!
//! The plan spawns nothing and reads no network: [`plan`] is a function of its inputs, so the
//! same inputs always give the same plan, and `apply plan.json` runs exactly what was reviewed.
//!
//! Values that exist only at run time appear as placeholders in arguments: `${env.NAME}` (an
//! environment variable, never a secret: passwords only ever travel through stdin) and
//! `${digest.NAME}` (a digest captured from an earlier step's metadata file).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cli::{BackendKind, Cli, PlanArgs, PlanFormat, Selection};
use crate::error::{Error, Problem, Result, EXIT_OK};
use crate::host::HostFacts;
use crate::model::Project;
use crate::release::{Publication, Release};

/// Version of the plan file format; `apply` refuses a plan of another version.
pub const FORMAT_VERSION: u32 = 1;

/// A complete release plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Plan {
    /// Plan file format version.
    pub format_version: u32,
    /// Version of multiarch that made the plan.
    pub multiarch_version: String,
    /// Project name.
    pub project: String,
    /// Absolute project folder (the run journal lives in `.multiarch/` there).
    pub root: PathBuf,
    /// The project file the plan was made from.
    pub file: PathBuf,
    /// Backend.
    pub backend: BackendKind,
    /// Release version, if the tags needed one.
    pub version: Option<String>,
    /// Local try-out: nothing is pushed.
    pub load: bool,
    /// What the release publishes (empty for `--load`).
    pub publications: Vec<Publication>,
    /// Steps, in an order that respects their dependencies.
    pub steps: Vec<Step>,
}

/// Where a step belongs in the publishing order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Builder, emulation.
    Setup,
    /// Registry logins.
    Login,
    /// Builds and platform pushes (by digest).
    Build,
    /// Immutable tags.
    Tag,
    /// Verification of written tags.
    Verify,
    /// Floating tags, last.
    Floating,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Step {
    /// Unique id, stable across runs of the same plan (the journal records ids).
    pub id: String,
    /// Publishing phase.
    pub phase: Phase,
    /// One line for people.
    pub description: String,
    /// Ids of the steps that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Image the step works on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Registry (name) the step writes to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// What the step does.
    pub action: Action,
}

/// What a step does: a closed set, carried out by one dispatcher in the executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Action {
    /// Run a program.
    Process(Process),
    /// Copy an index (with its children) to another tag or registry, keeping its digest.
    Copy(Copy),
    /// Check tags in a registry: an index holding exactly the declared platforms.
    Verify(Verify),
    /// A checkpoint of the publishing order: does nothing, finishes when every step it needs
    /// has finished ("every platform is pushed", "every written tag is verified"). One gate
    /// instead of an edge from each build to each tag keeps plans linear in size.
    Gate,
}

/// A process to run, by argv (never through a shell).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Process {
    /// Program: `docker` (the executor uses `MULTIARCH_DOCKER` if set), `podman`, `ln`.
    pub program: String,
    /// Arguments; may hold `${env.NAME}` and `${digest.NAME}` placeholders.
    pub args: Vec<String>,
    /// Names of environment variables the step reads (placeholders and stdin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Literal, non-secret environment values to set (`DOCKER_BUILDKIT=1`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub set_env: IndexMap<String, String>,
    /// What goes to stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<Stdin>,
    /// Working directory (absolute, ASCII: buildx issue 2793).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// A probe (argv) evaluated once before the run starts: when it succeeds, this step is
    /// already done (e.g. the builder exists) and is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_if: Option<Vec<String>>,
    /// A digest this step produces, read from a buildx metadata file after it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captures: Option<Capture>,
    /// Retry with backoff on failure (pushes and registry writes: transient errors are common).
    #[serde(default)]
    pub retry: bool,
    /// The step's purpose holds whether or not the command succeeds (dropping something that
    /// may not exist): a failure is logged, not fatal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_fail: bool,
    /// Run only when every variable in `env` is set and not empty; skipped otherwise (a login
    /// whose credentials may also come from the docker config).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub only_with_env: bool,
}

/// Stdin of a process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "from", content = "name")]
pub enum Stdin {
    /// The value of an environment variable (a password: never on the command line).
    Env(String),
    /// Fixed, non-secret text (a configuration file written with `tee`).
    Text(String),
}

/// A digest to capture after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Capture {
    /// Name later steps use as `${digest.NAME}`.
    pub name: String,
    /// The `--metadata-file` the step writes; its `containerimage.digest` is the value.
    pub metadata_file: PathBuf,
}

/// A registry copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Copy {
    /// Source reference.
    pub source: String,
    /// Destination reference.
    pub destination: String,
    /// Registry name of the source (its credentials and HTTP setting).
    pub source_registry: String,
    /// Registry name of the destination.
    pub destination_registry: String,
}

/// A verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Verify {
    /// Image key.
    pub image: String,
    /// Registry name.
    pub registry: String,
    /// `host/repository`.
    pub repository: String,
    /// Tags to check.
    pub tags: Vec<String>,
    /// Exactly these platforms must be there.
    pub platforms: Vec<crate::platform::Platform>,
}

/// Planning options (the "low" arguments: no system calls).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Backend.
    pub backend: Option<BackendKind>,
    /// `--version`.
    pub version: Option<String>,
    /// `--only`.
    pub only: Vec<String>,
    /// `--load`.
    pub load: bool,
}

impl From<&Selection> for Options {
    fn from(s: &Selection) -> Options {
        Options {
            backend: Some(s.backend),
            version: s.version.clone(),
            only: s.only.clone(),
            load: s.load,
        }
    }
}

/// Accumulates steps and hands out unique ids.
#[derive(Debug, Default)]
pub struct Steps {
    steps: Vec<Step>,
}

impl Steps {
    /// Adds a step; returns its id.
    pub fn add(&mut self, step: Step) -> String {
        debug_assert!(
            !self.steps.iter().any(|s| s.id == step.id),
            "duplicate id {}",
            step.id
        );
        let id = step.id.clone();
        self.steps.push(step);
        id
    }

    /// The steps so far.
    pub fn all(&self) -> &[Step] {
        &self.steps
    }
}

/// Builds a process step.
pub fn process(
    id: impl Into<String>,
    phase: Phase,
    description: impl Into<String>,
    program: &str,
    args: Vec<String>,
) -> Step {
    Step {
        id: id.into(),
        phase,
        description: description.into(),
        needs: Vec::new(),
        image: None,
        registry: None,
        action: Action::Process(Process {
            program: program.into(),
            args,
            env: Vec::new(),
            set_env: IndexMap::new(),
            stdin: None,
            cwd: None,
            skip_if: None,
            captures: None,
            retry: false,
            may_fail: false,
            only_with_env: false,
        }),
    }
}

impl Step {
    /// Adds dependencies.
    pub fn needs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Step {
        for id in ids {
            let id = id.into();
            if !self.needs.contains(&id) {
                self.needs.push(id);
            }
        }
        self
    }

    /// Sets the image.
    pub fn image(mut self, key: &str) -> Step {
        self.image = Some(key.to_string());
        self
    }

    /// Sets the registry the step writes to.
    pub fn registry(mut self, name: &str) -> Step {
        self.registry = Some(name.to_string());
        self
    }

    /// Changes the process part (no-op for other actions).
    pub fn with_process(mut self, f: impl FnOnce(&mut Process)) -> Step {
        if let Action::Process(p) = &mut self.action {
            f(p);
        }
        self
    }
}

/// Turns arbitrary text into an id fragment: `linux/arm/v7` -> `linux-arm-v7`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Makes the plan. Pure: no process, no network, no environment.
pub fn plan(project: &Project, facts: &HostFacts, opts: &Options) -> Result<Plan> {
    let backend = opts.backend.unwrap_or(BackendKind::Buildx);
    // A local try-out needs no real version: without one, tags render for "0.0.0-local" (a
    // prerelease, so no floating tag is made).
    let version = match &opts.version {
        Some(v) => Some(v.clone()),
        None if opts.load && crate::release::find_version(project, facts, None)?.is_none() => {
            Some("0.0.0-local".to_string())
        }
        None => None,
    };
    let release = crate::release::expand(project, facts, version.as_deref(), &opts.only)?;
    if !opts.load {
        // Floating tags move only after the release is verified under an immutable one.
        let problems: Vec<Problem> = release
            .publications
            .iter()
            .filter(|p| !p.tags.is_empty() && p.tags.iter().all(|t| t.floating))
            .map(|p| {
                let tags: Vec<&str> = p.tags.iter().map(|t| t.name.as_str()).collect();
                Problem::new(format!(
                    "image \"{}\" would publish only floating tags ({}) in \"{}\": nothing could be verified before they move",
                    p.image,
                    tags.join(", "),
                    p.registry
                ))
                .help("add an immutable tag, such as \"{{ version }}\" or \"sha-{{ short_sha }}\"")
            })
            .collect();
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
    }
    let selected: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for p in &release.publications {
            if !v.contains(&p.image) {
                v.push(p.image.clone());
            }
        }
        v
    };
    let mut steps = Steps::default();
    let ctx = crate::backend::Context {
        project,
        facts,
        release: &release,
        selected: &selected,
        load: opts.load,
    };
    match backend {
        BackendKind::Buildx => crate::backend::buildx::plan(&ctx, &mut steps)?,
        BackendKind::Docker => crate::backend::docker::plan(&ctx, &mut steps)?,
        BackendKind::Podman => crate::backend::podman::plan(&ctx, &mut steps)?,
    }
    // Publishing order: every build has pushed before any human-facing tag is written, so a
    // failed build (of any image) leaves every tag where it was.
    steps.steps.sort_by_key(|s| s.phase);
    let builds: Vec<String> = steps
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Build)
        .map(|s| s.id.clone())
        .collect();
    if !opts.load && !builds.is_empty() {
        let build_set: std::collections::HashSet<String> = builds.iter().cloned().collect();
        let at = steps
            .steps
            .iter()
            .position(|s| s.phase > Phase::Build)
            .unwrap_or(steps.steps.len());
        steps.steps.insert(
            at,
            Step {
                id: "all-pushed".into(),
                phase: Phase::Build,
                description: "every platform of every image is pushed by digest".into(),
                needs: builds,
                image: None,
                registry: None,
                action: Action::Gate,
            },
        );
        for s in steps.steps.iter_mut().filter(|s| s.phase == Phase::Tag) {
            s.needs.retain(|n| !build_set.contains(n));
            s.needs.insert(0, "all-pushed".into());
        }
    }
    if !opts.load {
        let builder = &project.builder;
        let buildx_float = |p: &Publication, anchor: &str, tag: &str| {
            crate::backend::buildx::float(p, anchor, tag, builder)
        };
        let float: &dyn Fn(&Publication, &str, &str) -> Action = match backend {
            BackendKind::Buildx => &buildx_float,
            BackendKind::Docker | BackendKind::Podman => &crate::backend::registry_copy,
        };
        add_verify_and_floating(project, &release, &mut steps, float);
    }
    let plan = Plan {
        format_version: FORMAT_VERSION,
        multiarch_version: env!("CARGO_PKG_VERSION").to_string(),
        project: project.name.clone(),
        root: project.root.clone(),
        file: project.file.clone(),
        backend,
        version: release.version.as_ref().map(|v| v.raw.clone()),
        load: opts.load,
        publications: if opts.load {
            Vec::new()
        } else {
            release.publications.clone()
        },
        steps: steps.steps,
    };
    debug_assert!(check_order(&plan).is_ok());
    Ok(plan)
}

/// Adds verification after the immutable tags, and floating tags after every verification.
///
/// Backends tag each publication's immutable tags in steps whose ids they record in the
/// step list with phase [`Phase::Tag`] and `image` set; verification of a publication waits for
/// all of them, and every floating-tag step waits for every verification.
fn add_verify_and_floating(
    project: &Project,
    release: &Release,
    steps: &mut Steps,
    float: &dyn Fn(&Publication, &str, &str) -> Action,
) {
    let tag_steps: Vec<(String, Option<String>, Option<String>)> = steps
        .all()
        .iter()
        .filter(|s| s.phase == Phase::Tag)
        .map(|s| (s.id.clone(), s.image.clone(), s.registry.clone()))
        .collect();
    let mut verify_ids = Vec::new();
    for publ in &release.publications {
        let tags = crate::backend::first_tags(publ);
        let needs: Vec<String> = tag_steps
            .iter()
            .filter(|(_, img, reg)| {
                img.as_deref() == Some(&publ.image) && reg.as_deref() == Some(&publ.registry)
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        let id = format!("verify-{}-{}", slug(&publ.image), slug(&publ.registry));
        let step = Step {
            id: id.clone(),
            phase: Phase::Verify,
            description: format!(
                "verify {}:{} holds exactly {}",
                publ.name(),
                tags.join(","),
                crate::platform::join(&publ.platforms)
            ),
            needs,
            image: Some(publ.image.clone()),
            registry: Some(publ.registry.clone()),
            action: Action::Verify(Verify {
                image: publ.image.clone(),
                registry: publ.registry.clone(),
                repository: publ.name(),
                tags,
                platforms: publ.platforms.clone(),
            }),
        };
        verify_ids.push(steps.add(step));
    }
    let _ = project;
    let has_floating = release.publications.iter().any(|p| {
        let anchor = crate::backend::anchor_tag(p);
        p.tags.iter().any(|t| t.floating && t.name != anchor)
    });
    if has_floating {
        steps.add(Step {
            id: "all-verified".into(),
            phase: Phase::Verify,
            description: "every written tag is verified".into(),
            needs: verify_ids,
            image: None,
            registry: None,
            action: Action::Gate,
        });
    }
    let verify_ids = vec!["all-verified".to_string()];
    // Floating tags: copied from the verified anchor, only after every verification.
    for publ in &release.publications {
        let anchor = crate::backend::anchor_tag(publ);
        // Writes to one repository go one after another: the same index written under two
        // tags at once races in some registries' storage (the reference registry's among them).
        let mut previous: Option<String> = None;
        for t in publ.tags.iter().filter(|t| t.floating) {
            if t.name == anchor {
                continue;
            }
            let id = format!(
                "float-{}-{}-{}",
                slug(&publ.image),
                slug(&publ.registry),
                slug(&t.name)
            );
            let mut needs = verify_ids.clone();
            needs.extend(previous.replace(id.clone()));
            steps.add(Step {
                id,
                phase: Phase::Floating,
                description: format!("move {}:{} to the verified {anchor}", publ.name(), t.name),
                needs,
                image: Some(publ.image.clone()),
                registry: Some(publ.registry.clone()),
                action: float(publ, &anchor, &t.name),
            });
        }
    }
}

/// Checks that every dependency names an earlier step: the order a plan is printed in is an
/// order it can run in.
pub fn check_order(plan: &Plan) -> std::result::Result<(), String> {
    let mut seen = BTreeSet::new();
    for s in &plan.steps {
        for n in &s.needs {
            if !seen.contains(n.as_str()) {
                return Err(format!(
                    "step {} needs {n}, which does not come before it",
                    s.id
                ));
            }
        }
        if !seen.insert(s.id.as_str()) {
            return Err(format!("step id {} is used twice", s.id));
        }
    }
    Ok(())
}

/// Loads a saved plan, refusing one of another format version (exit 2).
pub fn load(path: &std::path::Path) -> Result<Plan> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(Problem::new(format!("cannot read plan {name}: {e}"))))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            Problem::new(format!(
                "{name}:{}:{}: not a plan file: {e}",
                e.line(),
                e.column()
            ))
            .help("make one with `multiarch plan --format json -o plan.json`"),
        )
    })?;
    let found = value
        .get("format-version")
        .and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(FORMAT_VERSION)) {
        let found = found.map_or("none".to_string(), |v| v.to_string());
        return Err(Error::invalid(
            Problem::new(format!(
                "{name} is a plan of format version {found}; this multiarch ({}) runs format version {FORMAT_VERSION}",
                env!("CARGO_PKG_VERSION")
            ))
            .help("make the plan again with this multiarch: `multiarch plan --format json -o plan.json`"),
        ));
    }
    let plan: Plan = serde_json::from_value(value).map_err(|e| {
        Error::invalid(
            Problem::new(format!("{name}: the plan file is damaged: {e}"))
                .help("make the plan again"),
        )
    })?;
    check_order(&plan).map_err(|e| Error::invalid(Problem::new(format!("{name}: {e}"))))?;
    Ok(plan)
}

/// The JSON Schema of a saved plan.
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    serde_json::to_value(generator.into_root_schema_for::<Plan>()).expect("a schema is JSON")
}

/// Renders the plan as a numbered list with dependencies.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let version = plan.version.as_deref().unwrap_or("(none)");
    let _ = writeln!(
        out,
        "plan for {} {version} ({} backend{}), {} steps",
        plan.project,
        backend_name(plan.backend),
        if plan.load {
            ", --load: nothing is pushed"
        } else {
            ""
        },
        plan.steps.len()
    );
    let index: IndexMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i + 1))
        .collect();
    let mut phase = None;
    for (i, s) in plan.steps.iter().enumerate() {
        if phase != Some(s.phase) {
            phase = Some(s.phase);
            let _ = writeln!(out, "\n{}", phase_title(s.phase));
        }
        let needs = if s.needs.is_empty() {
            String::new()
        } else {
            let nums: Vec<String> = s
                .needs
                .iter()
                .map(|n| index.get(n.as_str()).map_or(n.clone(), |i| i.to_string()))
                .collect();
            if matches!(s.action, Action::Gate) && nums.len() > 3 {
                format!(
                    "  (after {} steps: {} .. {})",
                    nums.len(),
                    nums[0],
                    nums[nums.len() - 1]
                )
            } else {
                format!("  (after {})", nums.join(", "))
            }
        };
        let _ = writeln!(out, "{:>3}. {}{needs}", i + 1, s.description);
        match &s.action {
            Action::Process(p) => {
                let _ = writeln!(out, "     $ {}", display_command(p));
            }
            Action::Copy(c) => {
                let _ = writeln!(
                    out,
                    "     copy {} -> {} (registry API, digest kept)",
                    c.source, c.destination
                );
            }
            Action::Verify(v) => {
                let _ = writeln!(
                    out,
                    "     verify {} tags {} = {}",
                    v.repository,
                    v.tags.join(","),
                    crate::platform::join(&v.platforms)
                );
            }
            Action::Gate => {}
        }
    }
    out
}

fn backend_name(b: BackendKind) -> &'static str {
    match b {
        BackendKind::Buildx => "buildx",
        BackendKind::Docker => "docker",
        BackendKind::Podman => "podman",
    }
}

fn phase_title(p: Phase) -> &'static str {
    match p {
        Phase::Setup => "setup:",
        Phase::Login => "logins (passwords from the environment, through stdin):",
        Phase::Build => "build and push by digest (no tag moves yet):",
        Phase::Tag => "immutable tags:",
        Phase::Verify => "verify (from the registry itself):",
        Phase::Floating => "floating tags (only after every verification passed):",
    }
}

/// A command line for display: shell-quoted where needed, placeholders as written.
pub fn display_command(p: &Process) -> String {
    let mut parts = Vec::new();
    for (k, v) in &p.set_env {
        parts.push(format!("{k}={}", shell_quote(v)));
    }
    parts.push(p.program.clone());
    parts.extend(p.args.iter().map(|a| {
        let shown = display_arg(a);
        if matches!(parse_arg(a).as_slice(), [ArgPiece::Lit(_)]) {
            shell_quote(&shown)
        } else {
            format!("\"{shown}\"")
        }
    }));
    let mut s = parts.join(" ");
    match &p.stdin {
        Some(Stdin::Env(name)) => s.push_str(&format!(" < ${name}")),
        Some(Stdin::Text(t)) => s.push_str(&format!(" <<< {}", shell_quote(t))),
        None => {}
    }
    s
}

/// One piece of a plan argument: literal text, or a value known only at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgPiece {
    /// Literal text.
    Lit(String),
    /// `${env.NAME}`: an environment variable.
    Env(String),
    /// `${digest.NAME}`: a digest captured by an earlier step.
    Digest(String),
}

/// Escapes text from the project file for use in a plan argument: `$` is written `$$`, so that
/// a label or build argument can never be taken for a placeholder (or reach a shell as one).
pub fn lit(s: &str) -> String {
    s.replace('$', "$$")
}

/// A path as a plan argument.
pub fn lit_path(p: &std::path::Path) -> String {
    lit(&p.display().to_string())
}

/// Splits an argument into its pieces: `$$` is a literal `$`, `${env.X}` and `${digest.X}` are
/// placeholders; anything else is literal.
pub fn parse_arg(arg: &str) -> Vec<ArgPiece> {
    let mut out: Vec<ArgPiece> = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            text.push('$');
            rest = r;
            continue;
        }
        let placeholder = after.strip_prefix('{').and_then(|a| {
            let end = a.find('}')?;
            let name = &a[..end];
            let piece = if let Some(e) = name.strip_prefix("env.") {
                ArgPiece::Env(e.to_string())
            } else if let Some(d) = name.strip_prefix("digest.") {
                ArgPiece::Digest(d.to_string())
            } else {
                return None;
            };
            Some((piece, &a[end + 1..]))
        });
        match placeholder {
            Some((piece, r)) => {
                if !text.is_empty() {
                    out.push(ArgPiece::Lit(std::mem::take(&mut text)));
                }
                out.push(piece);
                rest = r;
            }
            None => {
                text.push('$');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() || out.is_empty() {
        out.push(ArgPiece::Lit(text));
    }
    out
}

/// An argument for people: literal `$` shown once, placeholders as written.
pub fn display_arg(arg: &str) -> String {
    parse_arg(arg)
        .into_iter()
        .map(|p| match p {
            ArgPiece::Lit(t) => t,
            ArgPiece::Env(e) => format!("${{env.{e}}}"),
            ArgPiece::Digest(d) => format!("${{digest.{d}}}"),
        })
        .collect()
}

/// Quotes a word for bash when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Converts an argument with placeholders into a bash word: `${env.X}` -> `${X}`,
/// `${digest.Y}` -> `${DIGEST_Y}`; everything else is quoted.
fn shell_word(arg: &str) -> String {
    let pieces = parse_arg(arg);
    if let [ArgPiece::Lit(t)] = pieces.as_slice() {
        return shell_quote(t);
    }
    let mut out = String::from("\"");
    for p in pieces {
        match p {
            ArgPiece::Lit(t) => out.push_str(&escape_dq(&t)),
            ArgPiece::Env(e) => out.push_str(&format!("${{{e}}}")),
            ArgPiece::Digest(d) => out.push_str(&format!("${{{}}}", digest_var(&d))),
        }
    }
    out.push('"');
    out
}

fn escape_dq(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$")
        .replace('`', "\\`")
}

/// The shell variable holding a captured digest. Letters and digits are kept; any other
/// character becomes `_XX` (its hex code), so two names never share a variable.
fn digest_var(name: &str) -> String {
    let mut v = String::from("DIGEST_");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            v.push(c);
        } else {
            v.push_str(&format!("_{:02x}", c as u32));
        }
    }
    v
}

/// Renders the plan as a bash script that runs the same commands in the same order.
pub fn render_shell(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#!/usr/bin/env bash");
    let _ = writeln!(
        out,
        "# Release plan for {} {} ({} backend), made by multiarch {}.",
        plan.project,
        plan.version.as_deref().unwrap_or("(no version)"),
        backend_name(plan.backend),
        plan.multiarch_version
    );
    let _ = writeln!(
        out,
        "# Secrets are read from the named environment variables when the script runs,"
    );
    let _ = writeln!(out, "# and reach the tools only through stdin.");
    let _ = writeln!(out, "set -euo pipefail\n");
    let envs: BTreeSet<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Process(p) if !p.only_with_env => Some(p.env.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    let uses_docker = plan
        .steps
        .iter()
        .any(|s| matches!(&s.action, Action::Process(p) if p.program == "docker"));
    if uses_docker {
        let _ = writeln!(out, "DOCKER=\"${{MULTIARCH_DOCKER:-docker}}\"");
    }
    let _ = writeln!(out, "MULTIARCH=\"${{MULTIARCH:-multiarch}}\"");
    for e in &envs {
        let _ = writeln!(out, ": \"${{{e}:?set {e} first}}\"");
    }
    if plan
        .steps
        .iter()
        .any(|s| matches!(&s.action, Action::Process(p) if p.captures.is_some()))
    {
        let _ = writeln!(
            out,
            "\n# The index digest buildx wrote to a --metadata-file.\nread_digest() {{ grep -o '\"containerimage.digest\": *\"sha256:[0-9a-f]*\"' \"$1\" | grep -o 'sha256:[0-9a-f]*'; }}"
        );
    }
    // Probes are evaluated once, before anything runs (see Process::skip_if).
    let mut probes: Vec<&Vec<String>> = Vec::new();
    for s in &plan.steps {
        if let Action::Process(Process {
            skip_if: Some(p), ..
        }) = &s.action
        {
            if !probes.contains(&p) {
                probes.push(p);
            }
        }
    }
    for (i, p) in probes.iter().enumerate() {
        let cmd = program_word(&p[0])
            + " "
            + &p[1..]
                .iter()
                .map(|a| shell_word(a))
                .collect::<Vec<_>>()
                .join(" ");
        let _ = writeln!(
            out,
            "\nDONE_{i}=0; if {cmd} >/dev/null 2>&1; then DONE_{i}=1; fi"
        );
    }
    let file = plan.file.display().to_string();
    for (n, s) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "\n# {}. {} [{}]", n + 1, s.description, s.id);
        match &s.action {
            Action::Process(p) => {
                if let Some(dir) = p.captures.as_ref().and_then(|c| c.metadata_file.parent()) {
                    let _ = writeln!(out, "mkdir -p {}", shell_quote(&dir.display().to_string()));
                }
                let mut line = String::new();
                match &p.stdin {
                    Some(Stdin::Env(name)) => {
                        line.push_str(&format!("printf '%s' \"${{{name}}}\" | "))
                    }
                    Some(Stdin::Text(t)) => {
                        line.push_str(&format!("printf '%s' {} | ", shell_quote(t)))
                    }
                    None => {}
                }
                for (k, v) in &p.set_env {
                    line.push_str(&format!("{k}={} ", shell_quote(v)));
                }
                line.push_str(&program_word(&p.program));
                for a in &p.args {
                    line.push(' ');
                    line.push_str(&shell_word(a));
                }
                if let Some(cwd) = &p.cwd {
                    line = format!("(cd {} && {line})", shell_quote(&cwd.display().to_string()));
                }
                if p.may_fail {
                    line = format!("{line} || true");
                }
                if p.retry {
                    line = format!("for try in 1 2 3; do {line} && break; [ \"$try\" = 3 ] && exit 1; sleep $((try * 5)); done");
                }
                if p.only_with_env && !p.env.is_empty() {
                    let cond: Vec<String> = p
                        .env
                        .iter()
                        .map(|e| format!("[ -n \"${{{e}:-}}\" ]"))
                        .collect();
                    line = format!("if {}; then {line}; fi", cond.join(" && "));
                }
                if let Some(probe) = &p.skip_if {
                    let i = probes.iter().position(|x| *x == probe).unwrap_or(0);
                    line = format!("if [ \"$DONE_{i}\" = 0 ]; then {line}; fi");
                }
                let _ = writeln!(out, "{line}");
                if let Some(c) = &p.captures {
                    let _ = writeln!(
                        out,
                        "{}=$(read_digest {})",
                        digest_var(&c.name),
                        shell_quote(&c.metadata_file.display().to_string())
                    );
                }
            }
            Action::Copy(c) => {
                let _ = writeln!(
                    out,
                    "\"$MULTIARCH\" -f {} copy {} {}",
                    shell_quote(&file),
                    shell_word(&c.source),
                    shell_word(&c.destination)
                );
            }
            Action::Gate => {
                let _ = writeln!(out, ": # checkpoint: the steps above have finished");
            }
            Action::Verify(v) => {
                let mut line = format!(
                    "\"$MULTIARCH\" -f {} verify --only {} --registry {} --tag",
                    shell_quote(&file),
                    shell_quote(&v.image),
                    shell_quote(&v.registry)
                );
                for t in &v.tags {
                    line.push(' ');
                    line.push_str(&shell_quote(t));
                }
                if let Some(ver) = &plan.version {
                    line.push_str(&format!(" --version {}", shell_quote(ver)));
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let _ = writeln!(out, "\necho 'release plan finished' >&2");
    out
}

fn program_word(p: &str) -> String {
    if p == "docker" {
        "\"$DOCKER\"".into()
    } else {
        shell_quote(p)
    }
}

/// Entry point of `multiarch plan`.
pub fn command(cli: &Cli, args: &PlanArgs) -> Result<i32> {
    let project = Project::load(&cli.file)?;
    let facts = crate::host::probe(&project);
    let plan = plan(&project, &facts, &Options::from(&args.selection))?;
    let text = match args.format {
        PlanFormat::Text => render_text(&plan),
        PlanFormat::Json => serde_json::to_string_pretty(&plan).expect("a plan is JSON") + "\n",
        PlanFormat::Shell => render_shell(&plan),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| {
                Error::failed(Problem::new(format!(
                    "cannot write {}: {e}",
                    path.display()
                )))
            })?;
            eprintln!("wrote {} ({} steps)", path.display(), plan.steps.len());
        }
        None => print!("{text}"),
    }
    Ok(EXIT_OK)
}
