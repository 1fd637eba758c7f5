//! The executor: the only module that spawns processes, and (through [`crate::registry`]) the
//! only one that writes to registries.
//!
//! How `apply` runs a plan:
//!
//! 1. **Before anything is built**: every registry the plan pushes to must have credentials
//!    (its named environment variables, or the docker config), or be open to anonymous pushes;
//!    otherwise the run stops at once, naming each registry and the `docker login` to run.
//! 2. **Probes** (`skip_if`) are evaluated once: a builder that exists is not created again.
//! 3. **Scheduling**: a step starts when every step it needs has finished; up to `--jobs` run at
//!    once. Each step's output is captured and printed as whole lines prefixed with its id (or
//!    as a `::group::` in GitHub Actions), so parallel output never interleaves mid-line.
//! 4. **Failure**: the first failing step stops new work; running steps finish; the failing
//!    command, its exit code and its last lines are reported. The publishing order of the plan
//!    means no floating tag has moved. Pushes and registry writes are retried with backoff.
//! 5. **Journal**: finished steps and captured digests are recorded in
//!    `.multiarch/journal.json`, so `apply --resume` continues after the last finished step.
//!
//! Secrets: passwords reach processes only through stdin, never argv; a `${env.NAME}`
//! placeholder naming a password variable is refused; any secret value that a tool echoes
//! back is masked in the output.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cli::{ApplyArgs, Cli};
use crate::error::{Error, Problem, Result, EXIT_FAILED, EXIT_OK};
use crate::model::Project;
use crate::plan::{self, Action, Plan, Process, Stdin, Step};

/// Run options.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Steps at once.
    pub jobs: usize,
    /// Skip verification steps.
    pub no_verify: bool,
    /// Continue from the journal.
    pub resume: bool,
}

/// What the journal remembers between runs of one plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Journal {
    /// sha256 of the plan's JSON: a journal only resumes the plan it was written for.
    pub plan: String,
    /// Ids of finished steps, in finishing order.
    pub finished: Vec<String>,
    /// Captured digests by name.
    pub digests: BTreeMap<String, String>,
    /// Id of the step that failed last, if any.
    pub failed: Option<String>,
}

fn journal_path(plan: &Plan) -> PathBuf {
    plan.root.join(".multiarch").join("journal.json")
}

fn plan_hash(plan: &Plan) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(plan).expect("a plan is JSON");
    hex::encode(sha2::Sha256::digest(json))
}

fn save_journal(plan: &Plan, j: &Journal) {
    let path = journal_path(plan);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
        // The journal folder is the tool's own: keep it out of the user's commits.
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            let _ = std::fs::write(ignore, "*\n");
        }
    }
    let tmp = path.with_extension("json.tmp");
    if std::fs::write(&tmp, serde_json::to_vec_pretty(j).expect("journal is JSON")).is_ok() {
        let _ = std::fs::rename(tmp, path);
    }
}

/// Entry point of `multiarch apply`.
pub fn command(cli: &Cli, args: &ApplyArgs) -> Result<i32> {
    let (plan, project, facts) = match &args.plan {
        Some(path) => {
            let plan = plan::load(path)?;
            let project = Project::load(&plan.file).map_err(|e| match e {
                Error::Invalid(mut ps) => {
                    ps.push(Problem::new(format!(
                        "the plan was made from {}, which must still be valid to run it",
                        plan.file.display()
                    )));
                    Error::Invalid(ps)
                }
                other => other,
            })?;
            let facts = (!args.dry_run).then(|| crate::host::probe(&project));
            (plan, project, facts)
        }
        None => {
            let project = Project::load(&cli.file)?;
            let facts = crate::host::probe(&project);
            let plan = plan::plan(&project, &facts, &plan::Options::from(&args.selection))?;
            (plan, project, Some(facts))
        }
    };
    if args.dry_run {
        print!("{}", plan::render_text(&plan));
        eprintln!("dry run: nothing was run");
        return Ok(EXIT_OK);
    }
    // The fast part of `doctor`: engine, buildx, QEMU handlers, before anything is built.
    if let Some(facts) = &facts {
        let mut checks = crate::doctor::preflight(&project, facts, plan.backend);
        // A missing QEMU handler is what the plan's own QEMU step registers.
        if plan.steps.iter().any(|s| s.id == "qemu") {
            checks.retain(|c| {
                !(c.id.starts_with("emulation.") && c.summary.contains("no QEMU binfmt handler"))
            });
        }
        if crate::doctor::any_failed(&checks) {
            let problems = checks
                .iter()
                .filter(|c| c.status == crate::doctor::Status::Fail)
                .map(|c| {
                    Problem::new(format!("this machine cannot run the plan: {}", c.summary))
                        .maybe_help(c.fix.clone())
                })
                .collect();
            return Err(Error::Failed(problems));
        }
    }
    warn_state_in_context(&plan, &project);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let opts = RunOptions {
        jobs,
        no_verify: args.no_verify,
        resume: args.resume,
    };
    let outcome = run(&plan, &project, &opts)?;
    Ok(if outcome.ok { EXIT_OK } else { EXIT_FAILED })
}

/// `.multiarch/` (journal, logs, metadata files) changes on every run; inside a build context
/// that does not ignore it, it would invalidate `COPY . .` layers on every release.
fn warn_state_in_context(plan: &Plan, project: &Project) {
    let state = plan.root.join(".multiarch");
    for img in project.images.values() {
        if !state.starts_with(&img.context) {
            continue;
        }
        let ignore = std::fs::read_to_string(img.context.join(".dockerignore")).unwrap_or_default();
        if !ignore.lines().any(|l| {
            l.trim()
                .trim_start_matches("**/")
                .trim_matches('/')
                .starts_with(".multiarch")
        }) {
            eprintln!(
                "warning: multiarch keeps its journal in {}, inside the build context of {}; add `.multiarch` to {} so it never busts the build cache",
                state.display(),
                img.key,
                img.context.join(".dockerignore").display()
            );
        }
    }
}

/// Registries the plan writes to, with what it writes there.
fn pushed_registries(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &plan.publications {
        if !out.contains(&p.registry) {
            out.push(p.registry.clone());
        }
    }
    out
}

/// Step 1: credentials for every registry pushed to, checked before anything runs.
pub fn check_credentials(plan: &Plan, project: &Project) -> Result<()> {
    let client = crate::registry::Client::with_retry(crate::registry::Retry {
        attempts: 1,
        ..Default::default()
    });
    let mut problems = Vec::new();
    for name in pushed_registries(plan) {
        let Some(reg) = project.registries.get(&name) else {
            problems.push(Problem::new(format!(
                "the plan pushes to registry \"{name}\", which the project file no longer declares"
            )));
            continue;
        };
        let ep = crate::registry::Endpoint::for_registry(reg);
        if ep.credentials.is_some() {
            continue;
        }
        // No credentials: fine only for a registry that takes anonymous pushes (a local one).
        match client.ping(&ep) {
            Ok(()) => continue,
            Err(e)
                if matches!(
                    e.kind,
                    crate::registry::ErrorKind::Unauthorized | crate::registry::ErrorKind::Denied
                ) =>
            {
                let vars = match (&reg.username_env, &reg.password_env) {
                    (Some(u), Some(p)) => format!("export {u} and {p}, or "),
                    _ => String::new(),
                };
                problems.push(
                    Problem::new(format!(
                        "no credentials for registry \"{name}\" ({}), which requires a login",
                        reg.host
                    ))
                    .help(format!(
                        "{vars}run `docker login {}`; nothing was built or pushed",
                        reg.host
                    )),
                );
            }
            Err(e) => problems.push(
                Problem::new(format!(
                    "registry \"{name}\" ({}) cannot be reached: {}",
                    reg.host, e.message
                ))
                .maybe_help(e.help),
            ),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(problems))
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// Every step finished (or was skipped).
    pub ok: bool,
    /// Steps that ran in this invocation.
    pub ran: usize,
    /// Steps skipped (journal, probe, --no-verify).
    pub skipped: usize,
}

/// How the run talks to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// A terminal: a spinner per running step.
    Tty,
    /// GitHub Actions: a collapsible group per step.
    Github,
    /// Anything else: plain prefixed lines.
    Plain,
}

struct Shared {
    digests: Mutex<BTreeMap<String, String>>,
    children: Mutex<Vec<Arc<duct::ReaderHandle>>>,
    interrupted: AtomicBool,
    secrets: Vec<String>,
    style: Style,
    out: Mutex<()>,
    progress: Option<indicatif::MultiProgress>,
    log_dir: PathBuf,
}

/// Runs a plan.
pub fn run(plan: &Plan, project: &Project, opts: &RunOptions) -> Result<Outcome> {
    let hash = plan_hash(plan);
    let mut journal = if opts.resume {
        let path = journal_path(plan);
        let j: Journal = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                Error::invalid(
                    Problem::new(format!("--resume: no journal at {}", path.display()))
                        .help("run `multiarch apply` without --resume"),
                )
            })?;
        if j.plan != hash {
            return Err(Error::invalid(
                Problem::new("--resume: the journal belongs to another plan (the project, version or flags changed)")
                    .help("run the same command as the interrupted run, or start afresh without --resume"),
            ));
        }
        j
    } else {
        Journal {
            plan: hash,
            ..Journal::default()
        }
    };
    if !plan.load {
        check_credentials(plan, project)?;
    }
    let secrets: Vec<String> = project
        .registries
        .values()
        .filter_map(|r| r.password_env.as_ref())
        .filter_map(|n| std::env::var(n).ok())
        .filter(|v| v.len() >= 3)
        .collect();
    let style = if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        Style::Github
    } else if std::io::stderr().is_terminal() {
        Style::Tty
    } else {
        Style::Plain
    };
    let shared = Arc::new(Shared {
        digests: Mutex::new(journal.digests.clone()),
        children: Mutex::new(Vec::new()),
        interrupted: AtomicBool::new(false),
        secrets,
        style,
        out: Mutex::new(()),
        progress: (style == Style::Tty).then(indicatif::MultiProgress::new),
        log_dir: plan.root.join(".multiarch").join("logs"),
    });
    {
        let s = shared.clone();
        // Ctrl-C: stop the children, record where we are, exit non-zero.
        let _ = ctrlc::set_handler(move || {
            s.interrupted.store(true, Ordering::SeqCst);
            for c in s.children.lock().map(|c| c.clone()).unwrap_or_default() {
                let _ = c.kill();
            }
        });
    }
    let _ = std::fs::create_dir_all(&shared.log_dir);

    let mut done: HashSet<String> = journal.finished.iter().cloned().collect();
    let mut skipped = done.len();
    if opts.resume && skipped > 0 {
        eprintln!(
            "resuming: {skipped} of {} steps already finished",
            plan.steps.len()
        );
    }
    // Probes, once, before anything runs.
    let mut probe_results: HashMap<Vec<String>, bool> = HashMap::new();
    for s in &plan.steps {
        if let Action::Process(Process {
            skip_if: Some(p), ..
        }) = &s.action
        {
            if !probe_results.contains_key(p) && !done.contains(&s.id) {
                let ok = duct::cmd(program(&p[0]), &p[1..])
                    .stdout_null()
                    .stderr_null()
                    .stdin_null()
                    .unchecked()
                    .run()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                probe_results.insert(p.clone(), ok);
            }
        }
    }
    for s in &plan.steps {
        let probe_done = matches!(&s.action, Action::Process(Process { skip_if: Some(p), .. }) if probe_results.get(p) == Some(&true));
        let verify_off = opts.no_verify && matches!(s.action, Action::Verify(_));
        if !done.contains(&s.id) && (probe_done || verify_off) {
            if probe_done {
                say(
                    &shared,
                    &format!("skip {}: already done ({})", s.id, s.description),
                );
            } else {
                say(
                    &shared,
                    &format!(
                        "warning: --no-verify: {} skipped; the registry was not checked",
                        s.description
                    ),
                );
            }
            done.insert(s.id.clone());
            skipped += 1;
        }
    }

    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<(String, StepResult)>();
    let mut running: HashSet<String> = HashSet::new();
    let mut failed: Option<(String, StepResult)> = None;
    let mut ran = 0usize;
    let mut timings: Vec<(String, Duration)> = Vec::new();
    loop {
        if failed.is_none() && !shared.interrupted.load(Ordering::SeqCst) {
            for s in &plan.steps {
                if running.len() >= opts.jobs {
                    break;
                }
                if done.contains(&s.id) || running.contains(&s.id) {
                    continue;
                }
                if s.needs.iter().all(|n| done.contains(n)) {
                    running.insert(s.id.clone());
                    let step = s.clone();
                    let tx = tx.clone();
                    let sh = shared.clone();
                    let pr = project.clone();
                    let publications = plan.publications.clone();
                    std::thread::spawn(move || {
                        // A step that panics still reports, so the run never waits forever.
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run_step(&step, &sh, &pr, &publications)
                        }))
                        .unwrap_or_else(|_| fail("internal error: the step panicked".into()));
                        let _ = tx.send((step.id.clone(), r));
                    });
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let Ok((id, result)) = rx.recv() else { break };
        running.remove(&id);
        ran += 1;
        timings.push((id.clone(), result.duration));
        if result.ok {
            done.insert(id.clone());
            journal.finished.push(id.clone());
            journal.digests = shared.digests.lock().map(|d| d.clone()).unwrap_or_default();
            save_journal(plan, &journal);
        } else if failed.is_none() {
            journal.failed = Some(id.clone());
            save_journal(plan, &journal);
            failed = Some((id, result));
        }
    }
    if let Some(p) = &shared.progress {
        let _ = p.clear();
    }
    let elapsed = started.elapsed();
    if shared.interrupted.load(Ordering::SeqCst) {
        return Err(Error::failed(
            Problem::new(format!(
                "interrupted after {} finished steps; running steps were stopped",
                journal.finished.len()
            ))
            .help("continue with `multiarch apply --resume` (same flags)"),
        ));
    }
    if let Some((id, r)) = failed {
        let step = plan
            .steps
            .iter()
            .find(|s| s.id == id)
            .expect("a step of the plan");
        let moved = plan
            .steps
            .iter()
            .any(|s| s.phase == plan::Phase::Floating && done.contains(&s.id));
        let mut msg = format!("step {} failed: {}\n{}", id, step.description, r.detail);
        if !r.tail.is_empty() {
            msg.push_str("\nlast lines of its output:\n");
            for l in &r.tail {
                msg.push_str("  | ");
                msg.push_str(l);
                msg.push('\n');
            }
        }
        let help = format!(
            "{}fix the cause, then continue with `multiarch apply --resume` (same flags); the full log is {}",
            if moved { "" } else { "no floating tag was moved. " },
            shared.log_dir.join(format!("{id}.log")).display()
        );
        return Err(Error::failed(
            Problem::new(msg.trim_end().to_string()).help(help),
        ));
    }
    print_summary(plan, project, &shared, elapsed, ran, skipped, &timings);
    Ok(Outcome {
        ok: true,
        ran,
        skipped,
    })
}

/// The program to spawn for a plan's program name: `docker` is `MULTIARCH_DOCKER` if set.
fn program(name: &str) -> String {
    if name == "docker" {
        crate::host::docker_client()
    } else {
        name.to_string()
    }
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepResult {
    ok: bool,
    detail: String,
    tail: Vec<String>,
    duration: Duration,
}

fn mask(shared: &Shared, line: &str) -> String {
    let mut l = line.to_string();
    for s in &shared.secrets {
        if l.contains(s.as_str()) {
            l = l.replace(s.as_str(), "****");
        }
    }
    l
}

fn say(shared: &Shared, line: &str) {
    let _g = shared.out.lock();
    match &shared.progress {
        Some(p) => {
            let _ = p.println(line);
        }
        None => eprintln!("{line}"),
    }
}

/// Replaces `${env.X}` and `${digest.Y}` in an argument (and `$$` by `$`).
fn expand(
    arg: &str,
    env_allowed: &[String],
    shared: &Shared,
    forbidden: &HashSet<String>,
) -> std::result::Result<String, String> {
    use crate::plan::ArgPiece;
    let mut out = String::new();
    for piece in plan::parse_arg(arg) {
        match piece {
            ArgPiece::Lit(t) => out.push_str(&t),
            ArgPiece::Env(var) => {
                if forbidden.contains(&var) {
                    return Err(format!(
                        "refusing to put the secret ${var} on a command line"
                    ));
                }
                if !env_allowed.contains(&var) {
                    return Err(format!("the step reads ${var} without declaring it"));
                }
                let v = std::env::var(&var)
                    .map_err(|_| format!("the environment variable {var} is not set"))?;
                out.push_str(&v);
            }
            ArgPiece::Digest(d) => {
                let digests = shared
                    .digests
                    .lock()
                    .map_err(|_| "internal lock".to_string())?;
                let v = digests
                    .get(&d)
                    .ok_or_else(|| format!("no digest {d} was captured (did its build run?)"))?;
                out.push_str(v);
            }
        }
    }
    Ok(out)
}

fn run_step(
    step: &Step,
    shared: &Arc<Shared>,
    project: &Project,
    publications: &[crate::release::Publication],
) -> StepResult {
    let start = Instant::now();
    let bar = shared.progress.as_ref().map(|p| {
        let b = p.add(indicatif::ProgressBar::new_spinner());
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .expect("template"),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b.set_message(step.description.clone());
        b
    });
    if shared.style == Style::Plain {
        say(
            shared,
            &format!("[{}] start: {}", step.id, step.description),
        );
    }
    let mut result = match &step.action {
        Action::Process(p) => run_process(step, p, shared, project, bar.as_ref()),
        Action::Copy(c) => {
            // Registry writes are retried like pushes: transient errors are common.
            let mut r = run_copy(c, shared, project);
            for attempt in 1..3 {
                if r.ok || shared.interrupted.load(Ordering::SeqCst) {
                    break;
                }
                let wait = Duration::from_secs(2u64.pow(attempt));
                say(
                    shared,
                    &format!(
                        "retry {} in {}s (attempt {attempt} of 3 failed: {})",
                        step.id,
                        wait.as_secs(),
                        r.detail.lines().next().unwrap_or("")
                    ),
                );
                std::thread::sleep(wait);
                r = run_copy(c, shared, project);
            }
            r
        }
        Action::Verify(v) => run_verify(v, project, publications),
        Action::Gate => ok_with(String::new()),
    };
    result.duration = start.elapsed();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mark = if result.ok { "done" } else { "FAILED" };
    let secs = result.duration.as_secs_f32();
    say(
        shared,
        &format!("{mark} {} ({secs:.1}s): {}", step.id, step.description),
    );
    result
}

fn run_process(
    step: &Step,
    p: &Process,
    shared: &Arc<Shared>,
    project: &Project,
    bar: Option<&indicatif::ProgressBar>,
) -> StepResult {
    if p.only_with_env
        && p.env
            .iter()
            .any(|e| std::env::var(e).map_or(true, |v| v.is_empty()))
    {
        return ok_with(format!(
            "skipped: {} not set; the docker config's credentials serve",
            p.env.join(" and ")
        ));
    }
    let forbidden: HashSet<String> = project
        .registries
        .values()
        .filter_map(|r| r.password_env.clone())
        .collect();
    let mut args = Vec::new();
    for a in &p.args {
        match expand(a, &p.env, shared, &forbidden) {
            Ok(v) => args.push(v),
            Err(e) => return fail(e),
        }
    }
    let stdin = match &p.stdin {
        Some(Stdin::Env(name)) => match std::env::var(name) {
            Ok(v) => Some(v),
            Err(_) => return fail(format!("the environment variable {name} is not set")),
        },
        Some(Stdin::Text(t)) => Some(t.clone()),
        None => None,
    };
    if let Some(c) = &p.captures {
        if let Some(dir) = c.metadata_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let attempts = if p.retry { 3 } else { 1 };
    let mut last = fail("not run".into());
    for attempt in 1..=attempts {
        if shared.interrupted.load(Ordering::SeqCst) {
            return fail("interrupted".into());
        }
        last = spawn_once(step, p, &args, stdin.as_deref(), shared, bar);
        if !last.ok && p.may_fail {
            say(
                shared,
                &format!(
                    "{}: the command failed, which this step allows ({})",
                    step.id, step.description
                ),
            );
            last.ok = true;
        }
        if last.ok {
            break;
        }
        if attempt < attempts {
            let wait = Duration::from_secs(2u64.pow(attempt));
            say(
                shared,
                &format!(
                    "retry {} in {}s (attempt {} of {attempts} failed)",
                    step.id,
                    wait.as_secs(),
                    attempt
                ),
            );
            std::thread::sleep(wait);
        }
    }
    if last.ok {
        if let Some(c) = &p.captures {
            match read_digest(&c.metadata_file) {
                Some(d) => {
                    if let Ok(mut m) = shared.digests.lock() {
                        m.insert(c.name.clone(), d);
                    }
                }
                None => {
                    return fail(format!(
                        "the build succeeded but {} holds no containerimage.digest",
                        c.metadata_file.display()
                    ))
                }
            }
        }
    }
    last
}

fn spawn_once(
    step: &Step,
    p: &Process,
    args: &[String],
    stdin: Option<&str>,
    shared: &Arc<Shared>,
    bar: Option<&indicatif::ProgressBar>,
) -> StepResult {
    let prog = program(&p.program);
    let mut expr = duct::cmd(&prog, args).stderr_to_stdout().unchecked();
    expr = match stdin {
        Some(v) => expr.stdin_bytes(v.as_bytes().to_vec()),
        None => expr.stdin_null(),
    };
    for (k, v) in &p.set_env {
        expr = expr.env(k, v);
    }
    if let Some(cwd) = &p.cwd {
        expr = expr.dir(cwd);
    }
    let handle = match expr.reader() {
        Ok(h) => Arc::new(h),
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(" (is {prog} installed? run `multiarch doctor`)")
            } else {
                String::new()
            };
            return fail(format!("cannot start {prog}: {e}{hint}"));
        }
    };
    if let Ok(mut c) = shared.children.lock() {
        c.push(handle.clone());
    }
    let log_path = shared.log_dir.join(format!("{}.log", step.id));
    let mut log = std::fs::File::create(&log_path).ok();
    let mut tail: std::collections::VecDeque<String> = Default::default();
    let mut group: Vec<String> = Vec::new();
    let reader = BufReader::new(&*handle);
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        let line = mask(
            shared,
            String::from_utf8_lossy(&line).trim_end_matches('\r'),
        );
        if let Some(f) = log.as_mut() {
            let _ = writeln!(f, "{line}");
        }
        match shared.style {
            Style::Plain => say(shared, &format!("[{}] {line}", step.id)),
            Style::Github => group.push(line.clone()),
            Style::Tty => {
                if let Some(b) = bar {
                    let short: String = line.chars().take(100).collect();
                    b.set_message(format!("{}: {short}", step.id));
                }
            }
        }
        tail.push_back(line);
        if tail.len() > 20 {
            tail.pop_front();
        }
    }
    let status = handle.try_wait().ok().flatten().map(|o| o.status);
    if let Ok(mut c) = shared.children.lock() {
        c.retain(|h| !Arc::ptr_eq(h, &handle));
    }
    if shared.style == Style::Github {
        let _g = shared.out.lock();
        eprintln!("::group::{} {}", step.id, step.description);
        for l in &group {
            eprintln!("{l}");
        }
        eprintln!("::endgroup::");
    }
    let display = plan::display_command(&Process {
        args: p.args.clone(),
        ..p.clone()
    });
    match status {
        Some(s) if s.success() => StepResult {
            ok: true,
            detail: String::new(),
            tail: Vec::new(),
            duration: Duration::ZERO,
        },
        Some(s) => StepResult {
            ok: false,
            detail: format!(
                "command: {display}\nexit code: {}",
                s.code()
                    .map_or("killed by a signal".to_string(), |c| c.to_string())
            ),
            tail: tail.into_iter().collect(),
            duration: Duration::ZERO,
        },
        None => StepResult {
            ok: false,
            detail: format!("command: {display}\nthe process did not report an exit status"),
            tail: tail.into_iter().collect(),
            duration: Duration::ZERO,
        },
    }
}

fn fail(detail: String) -> StepResult {
    StepResult {
        ok: false,
        detail,
        tail: Vec::new(),
        duration: Duration::ZERO,
    }
}

fn ok_with(detail: String) -> StepResult {
    StepResult {
        ok: true,
        detail,
        tail: Vec::new(),
        duration: Duration::ZERO,
    }
}

/// The index digest buildx wrote to its `--metadata-file`.
fn read_digest(path: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v.get("containerimage.digest")?.as_str().map(str::to_string)
}

fn run_copy(c: &plan::Copy, shared: &Arc<Shared>, project: &Project) -> StepResult {
    use crate::reference::ImageRef;
    use crate::registry::{copy_image, Client, Endpoint, Location};
    let (Some(sreg), Some(dreg)) = (
        project.registries.get(&c.source_registry),
        project.registries.get(&c.destination_registry),
    ) else {
        return fail(format!(
            "registry {} or {} is not in the project file",
            c.source_registry, c.destination_registry
        ));
    };
    let none = HashSet::new();
    let (src, dst) = match (
        expand(&c.source, &[], shared, &none),
        expand(&c.destination, &[], shared, &none),
    ) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let (src, dst) = match (ImageRef::parse(&src), ImageRef::parse(&dst)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return fail(e.message),
    };
    let client = Client::new();
    let from = Location {
        image: src,
        endpoint: Endpoint::for_registry(sreg),
    };
    let to = Location {
        image: dst,
        endpoint: Endpoint::for_registry(dreg),
    };
    match copy_image(&client, &from, &to, 4) {
        Ok(r) => ok_with(format!("{} ({} manifests)", r.digest, r.manifests)),
        Err(e) => fail(match e.help {
            Some(h) => format!("{}\nhelp: {h}", e.message),
            None => e.message,
        }),
    }
}

fn run_verify(
    v: &plan::Verify,
    project: &Project,
    publications: &[crate::release::Publication],
) -> StepResult {
    use crate::registry::{verify_publications, TagFilter};
    let Some(publ) = publications
        .iter()
        .find(|p| p.image == v.image && p.registry == v.registry)
    else {
        return fail(format!("no publication of {} in {}", v.image, v.registry));
    };
    let mut publ = publ.clone();
    publ.platforms = v.platforms.clone();
    publ.tags = v
        .tags
        .iter()
        .map(|t| crate::release::Tag {
            name: t.clone(),
            floating: false,
        })
        .collect();
    let report = verify_publications(project, &[publ], TagFilter::All, false);
    if report.ok() {
        ok_with(String::new())
    } else {
        let text = report.render_text();
        StepResult {
            ok: false,
            detail: "the registry does not hold what was declared; floating tags were not moved"
                .into(),
            tail: text.lines().map(str::to_string).collect(),
            duration: Duration::ZERO,
        }
    }
}

fn print_summary(
    plan: &Plan,
    project: &Project,
    shared: &Shared,
    elapsed: Duration,
    ran: usize,
    skipped: usize,
    timings: &[(String, Duration)],
) {
    let mut out = String::new();
    if plan.load {
        out.push_str(&format!(
            "loaded locally in {:.1}s ({ran} steps run, {skipped} skipped); nothing was pushed\n",
            elapsed.as_secs_f32()
        ));
    } else {
        out.push_str(&format!(
            "released {} in {:.1}s ({ran} steps run, {skipped} skipped)\n",
            plan.version.as_deref().unwrap_or("(no version)"),
            elapsed.as_secs_f32()
        ));
        // Time spent on each image's own steps (parallel steps add up).
        let mut per_image: HashMap<&str, Duration> = HashMap::new();
        for (id, d) in timings {
            if let Some(img) = plan
                .steps
                .iter()
                .find(|s| &s.id == id)
                .and_then(|s| s.image.as_deref())
            {
                *per_image.entry(img).or_default() += *d;
            }
        }
        let client = crate::registry::Client::new();
        let rows: Vec<[String; 5]> = plan
            .publications
            .iter()
            .map(|p| {
                // The digest every tag of this publication names, read back from the registry.
                let anchor = crate::backend::anchor_tag(p);
                let digest = project
                    .registries
                    .get(&p.registry)
                    .map(crate::registry::Endpoint::for_registry)
                    .and_then(|ep| {
                        client
                            .get_manifest(&ep, &p.repository, &anchor)
                            .ok()
                            .flatten()
                    })
                    .map(|m| m.digest.chars().take(19).collect::<String>())
                    .unwrap_or_else(|| "-".into());
                let tags: Vec<&str> = p.tags.iter().map(|t| t.name.as_str()).collect();
                let time = per_image
                    .get(p.image.as_str())
                    .map_or("-".into(), |d| format!("{:.1}s", d.as_secs_f32()));
                [
                    p.name(),
                    crate::platform::join(&p.platforms),
                    tags.join(","),
                    digest,
                    time,
                ]
            })
            .collect();
        let header = ["image", "platforms", "tags", "digest", "step time"].map(String::from);
        let mut widths = [0usize; 5];
        for r in std::iter::once(&header).chain(rows.iter()) {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        for r in std::iter::once(&header).chain(rows.iter()) {
            let line: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
    }
    let _g = shared.out.lock();
    eprint!("{out}");
    let _ = std::io::stderr().flush();
}
