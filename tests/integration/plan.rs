//! Plans: one snapshot per example per backend (text and shell), ordering rules, prerelease
//! handling, dependency pinning, node distribution, `--load` splitting, JSON round trip, and
//! the shell plan checked by `bash -n`.

use multiarch::cli::BackendKind;
use multiarch::host::HostFacts;
use multiarch::model::Project;
use multiarch::plan::{self, Action, Options, Phase, Plan};

use crate::common::{example, repo, Test};

const BACKENDS: [BackendKind; 3] = [
    BackendKind::Buildx,
    BackendKind::Docker,
    BackendKind::Podman,
];

fn examples() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/ exists")
        .flatten()
        .filter(|e| e.path().join("multiarch.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn load(name: &str) -> Project {
    Project::load(&example(name).join("multiarch.toml")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn make(project: &Project, backend: BackendKind, version: &str, load: bool) -> Plan {
    let opts = Options {
        backend: Some(backend),
        version: Some(version.into()),
        only: vec![],
        load,
    };
    plan::plan(project, &HostFacts::fixed(), &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Absolute paths differ between checkouts; snapshots hold `<repo>` instead.
fn normalise(s: &str) -> String {
    s.replace(&repo().display().to_string(), "<repo>")
}

fn name(b: BackendKind) -> &'static str {
    match b {
        BackendKind::Buildx => "buildx",
        BackendKind::Docker => "docker",
        BackendKind::Podman => "podman",
    }
}

#[test]
fn every_example_plans_with_every_backend() {
    let list = examples();
    assert!(
        list.len() >= 4,
        "expected at least four examples, found {list:?}"
    );
    for ex in &list {
        let project = load(ex);
        for b in BACKENDS {
            let p = make(&project, b, "1.4.2", false);
            plan::check_order(&p).unwrap();
            insta::assert_snapshot!(
                format!("plan-{ex}-{}-text", name(b)),
                normalise(&plan::render_text(&p))
            );
            let shell = plan::render_shell(&p);
            insta::assert_snapshot!(format!("plan-{ex}-{}-shell", name(b)), normalise(&shell));
            let status = std::process::Command::new("bash")
                .arg("-n")
                .stdin(std::process::Stdio::piped())
                .arg("-c")
                .arg(&shell)
                .status()
                .unwrap();
            assert!(
                status.success(),
                "{ex}/{}: the shell plan is not valid bash",
                name(b)
            );
        }
    }
}

#[test]
fn json_plan_round_trips() {
    for ex in examples() {
        let p = make(&load(&ex), BackendKind::Buildx, "2.0.0", false);
        let json = serde_json::to_string(&p).unwrap();
        let back: Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(p, back, "{ex}");
    }
}

fn phase_index(p: &Plan, pred: impl Fn(&plan::Step) -> bool) -> Vec<usize> {
    p.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| pred(s))
        .map(|(i, _)| i)
        .collect()
}

/// Every step that writes a floating tag comes after every verification, which comes after
/// every immutable tag, which comes after every build.
#[test]
fn publishing_order_holds_for_every_backend() {
    for ex in examples() {
        let project = load(&ex);
        for b in BACKENDS {
            let p = make(&project, b, "1.4.2", false);
            let verify = phase_index(&p, |s| s.phase == Phase::Verify);
            let floating = phase_index(&p, |s| s.phase == Phase::Floating);
            let tags = phase_index(&p, |s| s.phase == Phase::Tag);
            let builds = phase_index(&p, |s| s.phase == Phase::Build);
            assert!(!verify.is_empty(), "{ex}: no verify step");
            if let (Some(lv), Some(ff)) = (verify.iter().max(), floating.iter().min()) {
                assert!(
                    lv < ff,
                    "{ex}/{}: a floating tag moves before verification",
                    name(b)
                );
            }
            // Every floating tag waits for the gate that waits for every verification.
            let gate = p.steps.iter().find(|s| s.id == "all-verified");
            for f in &floating {
                let needs = &p.steps[*f].needs;
                assert!(needs.contains(&"all-verified".to_string()), "{ex}");
                for n in needs.iter().filter(|n| *n != "all-verified") {
                    assert!(n.starts_with("float-"), "{ex}: a floating step needs {n}");
                }
                let gate = gate.expect("a verification gate");
                for v in verify
                    .iter()
                    .filter(|v| matches!(p.steps[**v].action, Action::Verify(_)))
                {
                    assert!(
                        gate.needs.contains(&p.steps[*v].id),
                        "{ex}: the gate does not wait for {}",
                        p.steps[*v].id
                    );
                }
            }
            // Every tag step waits for the gate that waits for every build.
            if let Some(pushed) = p.steps.iter().find(|s| s.id == "all-pushed") {
                for b in &builds {
                    if p.steps[*b].id != "all-pushed" {
                        assert!(
                            pushed.needs.contains(&p.steps[*b].id),
                            "{ex}: all-pushed misses {}",
                            p.steps[*b].id
                        );
                    }
                }
                for t in &tags {
                    assert!(
                        p.steps[*t].needs.contains(&"all-pushed".to_string())
                            || p.steps[*t].needs.iter().any(|n| p
                                .steps
                                .iter()
                                .any(|s| &s.id == n && s.phase == Phase::Tag)),
                        "{ex}: {} does not wait for all-pushed",
                        p.steps[*t].id
                    );
                }
            }
            if let (Some(lb), Some(ft)) = (builds.iter().max(), tags.iter().min()) {
                assert!(lb < ft, "{ex}: a tag is written before the last build");
            }
        }
    }
}

#[test]
fn prerelease_moves_no_floating_tag() {
    let project = load("seed-release");
    let p = make(&project, BackendKind::Buildx, "1.4.2-rc.1", false);
    assert!(
        p.steps.iter().all(|s| s.phase != Phase::Floating),
        "{}",
        plan::render_text(&p)
    );
    for publ in &p.publications {
        assert!(publ.tags.iter().all(|t| !t.floating));
        assert!(publ.skipped_floating.iter().any(|t| t == "latest"));
    }
    let p = make(&project, BackendKind::Buildx, "1.4.2", false);
    assert!(p.steps.iter().any(|s| s.phase == Phase::Floating));
}

#[test]
fn dependants_get_their_base_pinned_by_digest() {
    let project = load("monorepo");
    let p = make(&project, BackendKind::Buildx, "3.1.0", false);
    let dependant = project
        .images
        .values()
        .find(|i| !i.depends_on.is_empty())
        .expect("a dependant");
    let base = &dependant.depends_on[0];
    let build = p
        .steps
        .iter()
        .find(|s| s.id == format!("build-{}", plan::slug(&dependant.key)))
        .unwrap();
    assert!(build.needs.contains(&format!("build-{}", plan::slug(base))));
    let Action::Process(pr) = &build.action else {
        panic!()
    };
    let ctx = pr
        .args
        .iter()
        .position(|a| a == "--build-context")
        .expect("a build context");
    let value = &pr.args[ctx + 1];
    assert!(
        value.starts_with(&format!("{base}=docker-image://")),
        "{value}"
    );
    assert!(
        value.ends_with(&format!("@${{digest.{}}}", plan::slug(base))),
        "{value}"
    );
    let base_build = p
        .steps
        .iter()
        .find(|s| s.id == format!("build-{}", plan::slug(base)))
        .unwrap();
    let Action::Process(bp) = &base_build.action else {
        panic!()
    };
    assert_eq!(bp.captures.as_ref().unwrap().name, plan::slug(base));
}

#[test]
fn nodes_share_one_builder() {
    let project = load("native-nodes");
    let p = make(&project, BackendKind::Buildx, "1.0.0", false);
    let creates: Vec<_> = p
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Process(pr) if pr.args.starts_with(&["buildx".into(), "create".into()]) => {
                Some(pr)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        creates.len(),
        project.builder.nodes.len() + usize::from(creates.len() > project.builder.nodes.len())
    );
    for n in &project.builder.nodes {
        let c = creates
            .iter()
            .find(|c| c.args.contains(&n.name))
            .expect("a create per node");
        let i = c.args.iter().position(|a| a == "--platform").unwrap();
        assert_eq!(c.args[i + 1], multiarch::platform::join(&n.platforms));
        assert_eq!(c.args.last().unwrap(), &n.endpoint);
        assert!(
            c.args.contains(&"--append".to_string()),
            "create --append is idempotent"
        );
    }
    assert!(creates
        .iter()
        .all(|c| c.args.contains(&"--append".to_string())));
    // Platforms a native node covers need no QEMU.
    let qemu = p.steps.iter().find(|s| s.id == "qemu");
    if let Some(q) = qemu {
        let Action::Process(pr) = &q.action else {
            panic!()
        };
        for n in &project.builder.nodes {
            for pl in &n.platforms {
                assert!(
                    !pr.args.last().unwrap().split(',').any(|a| a == pl.arch),
                    "{pl} is native on {}",
                    n.name
                );
            }
        }
    }
}

#[test]
fn load_never_puts_two_platforms_in_one_load() {
    for ex in examples() {
        let project = load(&ex);
        for b in BACKENDS {
            let p = make(&project, b, "1.0.0", true);
            assert!(p.publications.is_empty());
            for s in &p.steps {
                assert!(!matches!(s.action, Action::Verify(_) | Action::Copy(_)));
                if let Action::Process(pr) = &s.action {
                    assert!(
                        !pr.args
                            .iter()
                            .any(|a| a == "push" || a.contains("push=true")),
                        "{ex}: {s:?}"
                    );
                    if pr.args.iter().any(|a| a == "--load") {
                        let i = pr.args.iter().position(|a| a == "--platform").unwrap();
                        assert!(
                            !pr.args[i + 1].contains(','),
                            "{ex}: several platforms in one --load"
                        );
                    }
                }
            }
        }
        // With the containerd image store one --load takes every platform.
        let mut facts = HostFacts::fixed();
        facts.containerd_store = true;
        let opts = Options {
            backend: Some(BackendKind::Buildx),
            version: Some("1.0.0".into()),
            only: vec![],
            load: true,
        };
        let p = plan::plan(&project, &facts, &opts).unwrap();
        assert!(p.steps.iter().any(|s| s.id.starts_with("load-")));
    }
}

#[test]
fn secrets_stay_out_of_every_plan() {
    let project = load("seed-release");
    for b in BACKENDS {
        let p = make(&project, b, "1.0.0", false);
        let text =
            plan::render_text(&p) + &plan::render_shell(&p) + &serde_json::to_string(&p).unwrap();
        for s in &p.steps {
            if let Action::Process(pr) = &s.action {
                if pr.args.iter().any(|a| a == "login") {
                    assert!(pr.args.contains(&"--password-stdin".to_string()));
                    assert!(pr.stdin.is_some());
                    assert!(
                        !pr.args.iter().any(|a| a.contains("PASSWORD")),
                        "{:?}",
                        pr.args
                    );
                }
            }
        }
        assert!(text.contains("DOCKER_PASSWORD"), "the variable is named");
    }
}

#[test]
fn only_selects_an_image_and_its_bases() {
    let project = load("monorepo");
    let dependant = project
        .images
        .values()
        .find(|i| !i.depends_on.is_empty())
        .unwrap();
    let opts = Options {
        backend: None,
        version: Some("1.0.0".into()),
        only: vec![dependant.key.clone()],
        load: false,
    };
    let p = plan::plan(&project, &HostFacts::fixed(), &opts).unwrap();
    let images: std::collections::BTreeSet<_> =
        p.steps.iter().filter_map(|s| s.image.clone()).collect();
    let mut expected: std::collections::BTreeSet<String> =
        dependant.depends_on.iter().cloned().collect();
    expected.insert(dependant.key.clone());
    assert_eq!(images, expected);
}

#[test]
fn plan_command_needs_a_version_and_says_how() {
    let out = Test::new()
        .args([
            "-f",
            example("seed-release")
                .join("multiarch.toml")
                .to_str()
                .unwrap(),
            "plan",
        ])
        .env("GIT_DIR", "/nonexistent")
        .code(2);
    assert!(out.stderr.contains("--version"), "{}", out.stderr);
    let out = Test::new()
        .args([
            "-f",
            example("seed-release")
                .join("multiarch.toml")
                .to_str()
                .unwrap(),
            "plan",
            "--version",
            "1.2.3",
            "--format",
            "json",
        ])
        .code(0);
    let p: Plan = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(p.version.as_deref(), Some("1.2.3"));
}

#[test]
fn saved_plan_of_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("plan.json");
    std::fs::write(&f, r#"{"format-version": 999, "steps": []}"#).unwrap();
    let err = plan::load(&f).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("format version 999"));
}

#[test]
fn checked_in_plan_schema_is_current() {
    crate::common::assert_checked_in(
        &["schema", "--plan"],
        "schema/plan.schema.json",
        "plan::checked_in_plan_schema_is_current",
    );
}

/// buildx issue 2793: from a folder with a non-ASCII name, buildx runs from `/` and reaches
/// the context through an ASCII symlink made by earlier steps.
#[test]
fn buildx_reaches_a_non_ascii_context_through_an_ascii_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("斗地主-计分器");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["multiarch.toml", "Dockerfile"] {
        std::fs::copy(example("seed-release").join(f), dir.join(f)).unwrap();
    }
    let project = Project::load(&dir.join("multiarch.toml")).unwrap();
    let p = make(&project, BackendKind::Buildx, "1.0.0", false);
    let link = p
        .steps
        .iter()
        .find(|s| s.id.starts_with("link-context-"))
        .expect("a link step");
    let Action::Process(ln) = &link.action else {
        panic!()
    };
    assert_eq!(ln.program, "ln");
    let target = ln.args.last().unwrap();
    let build = p.steps.iter().find(|s| s.id.starts_with("build-")).unwrap();
    assert!(build.needs.contains(&link.id));
    let Action::Process(b) = &build.action else {
        panic!()
    };
    assert_eq!(b.cwd.as_deref(), Some(std::path::Path::new("/")));
    assert_eq!(
        b.args.last().unwrap(),
        target,
        "the build context is the link"
    );
    assert!(std::path::Path::new(target)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .is_ascii());
    let meta = b.captures.as_ref().unwrap();
    assert!(meta.metadata_file.is_absolute());
}

/// Values from the project file are data, never code: a label or build argument holding `$(..)`
/// or `${env.X}` reaches the tool literally, in the plan, in the shell script, and in the
/// executor. The shell plan is run for real with `echo` standing in for docker.
#[test]
fn values_from_the_file_never_run_as_shell_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("it's $HOME");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    let marker = tmp.path().join("pwned");
    std::fs::write(
        dir.join("multiarch.toml"),
        format!(
            r#"
[defaults]
platforms = ["linux/amd64"]
registries = ["local"]
tags = ["{{{{ version }}}}"]

[registries.local]
host = "127.0.0.1:5999"

[images.app]
context = "."
labels = {{ a = "$(touch {m})", b = "${{env.SECRET}}", c = "`touch {m}`", d = "$$", e = "x'y\"z" }}
build-args = {{ B = "${{digest.app}}" }}
"#,
            m = marker.display()
        ),
    )
    .unwrap();
    let project = Project::load(&dir.join("multiarch.toml")).unwrap();
    let p = make(&project, BackendKind::Docker, "1.0.0", false);
    let shell = plan::render_shell(&p);
    let script = tmp.path().join("release.sh");
    std::fs::write(&script, &shell).unwrap();
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("MULTIARCH_DOCKER", "echo")
        .env("MULTIARCH", "true")
        .env("SECRET", "hunter2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{shell}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!marker.exists(), "a label ran as shell code");
    assert!(
        !stdout.contains("hunter2"),
        "a label expanded an environment variable"
    );
    for literal in [
        format!("a=$(touch {})", marker.display()),
        "b=${env.SECRET}".to_string(),
        format!("c=`touch {}`", marker.display()),
        "d=$$".to_string(),
        "e=x'y\"z".to_string(),
        "B=${digest.app}".to_string(),
    ] {
        assert!(
            stdout.contains(&literal),
            "{literal} missing from:\n{stdout}"
        );
    }
    assert!(stdout.contains(&dir.display().to_string()), "{stdout}");
}

#[test]
fn placeholders_parse() {
    use plan::ArgPiece::{Digest, Env, Lit};
    assert_eq!(
        plan::parse_arg("a=${env.X}b"),
        vec![Lit("a=".into()), Env("X".into()), Lit("b".into())]
    );
    assert_eq!(
        plan::parse_arg("r@${digest.base}"),
        vec![Lit("r@".into()), Digest("base".into())]
    );
    assert_eq!(
        plan::parse_arg(&plan::lit("${env.X}$$")),
        vec![Lit("${env.X}$$".into())]
    );
    assert_eq!(
        plan::parse_arg("$HOME ${other}"),
        vec![Lit("$HOME ${other}".into())]
    );
    assert_eq!(plan::parse_arg(""), vec![Lit(String::new())]);
}

/// A plain-HTTP registry off loopback: buildx gets a buildkitd configuration that says so, and
/// `imagetools create` runs on that builder.
#[test]
fn buildx_learns_about_plain_http_registries() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        tmp.path().join("multiarch.toml"),
        r#"
[defaults]
platforms = ["linux/amd64", "linux/arm64"]
registries = ["lan"]

[registries.lan]
host = "registry.lan:5000"
insecure = true

[images.app]
context = "."
"#,
    )
    .unwrap();
    let project = Project::load(&tmp.path().join("multiarch.toml")).unwrap();
    let p = make(&project, BackendKind::Buildx, "1.0.0", false);
    let config = p
        .steps
        .iter()
        .find(|s| s.id == "buildkitd-config")
        .expect("a config step");
    let Action::Process(tee) = &config.action else {
        panic!()
    };
    let Some(plan::Stdin::Text(text)) = &tee.stdin else {
        panic!("{tee:?}")
    };
    assert!(
        text.contains("[registry.\"registry.lan:5000\"]") && text.contains("http = true"),
        "{text}"
    );
    let builder = p.steps.iter().find(|s| s.id == "builder").unwrap();
    assert!(builder.needs.contains(&config.id));
    let Action::Process(create) = &builder.action else {
        panic!()
    };
    let i = create
        .args
        .iter()
        .position(|a| a == "--buildkitd-config")
        .expect("--buildkitd-config");
    assert_eq!(&create.args[i + 1], tee.args.last().unwrap());
    let tag = p.steps.iter().find(|s| s.id == "tag-app-lan").unwrap();
    let Action::Process(it) = &tag.action else {
        panic!()
    };
    assert!(
        it.args.windows(2).any(|w| w[0] == "--builder"),
        "{:?}",
        it.args
    );
    let build = p.steps.iter().find(|s| s.id == "build-app").unwrap();
    let Action::Process(b) = &build.action else {
        panic!()
    };
    assert!(b.args.iter().any(|a| a.contains("registry.insecure=true")));
    // The shell plan writes the same file.
    let shell = plan::render_shell(&p);
    assert!(shell.contains("| tee "), "{shell}");
}
