//! Backends turn the release into steps with exact command lines. Pure: no process is run.
//!
//! | backend | builds | index |
//! |---|---|---|
//! | [`buildx`] | `docker buildx build --platform a,b`, pushed by digest | `docker buildx imagetools create` |
//! | [`docker`] | one `docker build --platform X` per platform | `docker push` per platform, `docker manifest create/push` |
//! | [`podman`] | one `podman build --platform X` per platform | `podman manifest create/add`, `podman manifest push --all` |
//!
//! What the three share lives here: logins, QEMU set-up, the anchor tag, registry copies.

pub mod buildx;
pub mod docker;
pub mod podman;

use std::path::{Path, PathBuf};

use crate::error::{Error, Problem, Result};
use crate::host::HostFacts;
use crate::model::{Image, Project, Registry};
use crate::plan::{process, slug, Action, Copy, Phase, Stdin, Step, Steps};
use crate::platform::Platform;
use crate::release::{Publication, Release};

/// What a backend plans from.
pub struct Context<'a> {
    /// The project.
    pub project: &'a Project,
    /// Host facts.
    pub facts: &'a HostFacts,
    /// Rendered tags.
    pub release: &'a Release,
    /// Selected image keys, in build order.
    pub selected: &'a [String],
    /// `--load`: local try-out.
    pub load: bool,
}

impl Context<'_> {
    /// Selected images in build order.
    pub fn images(&self) -> Vec<&Image> {
        self.project
            .build_order()
            .into_iter()
            .filter(|i| self.selected.contains(&i.key))
            .collect()
    }

    /// Publications of one image.
    pub fn publications(&self, key: &str) -> Vec<&Publication> {
        self.release
            .publications
            .iter()
            .filter(|p| p.image == key)
            .collect()
    }

    /// The registry of a publication.
    pub fn registry(&self, name: &str) -> &Registry {
        &self.project.registries[name]
    }

    /// The registry an image is built into: the first that takes all its platforms (a
    /// restricted registry gets its narrower index copied from there).
    pub fn primary<'p>(&self, image: &Image, pubs: &[&'p Publication]) -> &'p Publication {
        pubs.iter()
            .find(|p| p.platforms.len() == image.platforms.len())
            .or_else(|| pubs.first())
            .copied()
            .expect("every image publishes somewhere")
    }

    /// The primary publication of an image, by key (see [`Context::primary`]).
    pub fn primary_of(&self, key: &str) -> &Publication {
        let image = &self.project.images[key];
        let pubs = self.publications(key);
        self.primary(image, &pubs)
    }

    /// All platforms any selected image needs.
    pub fn all_platforms(&self) -> Vec<Platform> {
        let mut out: Vec<Platform> = Vec::new();
        for img in self.images() {
            for p in &img.platforms {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// Registries that are pushed to, in file order.
    pub fn pushed_registries(&self) -> Vec<&Registry> {
        if self.load {
            return Vec::new();
        }
        self.project
            .registries
            .values()
            .filter(|r| {
                self.release
                    .publications
                    .iter()
                    .any(|p| p.registry == r.name)
            })
            .collect()
    }
}

/// The tag an index is first written under, and the source of every later tag: the first
/// immutable tag, or the first tag when all are floating.
pub fn anchor_tag(publ: &Publication) -> String {
    publ.tags
        .iter()
        .find(|t| !t.floating)
        .or_else(|| publ.tags.first())
        .map(|t| t.name.clone())
        .unwrap_or_else(|| "latest".into())
}

/// The tags written (and verified) before any floating tag moves: the immutable ones, or the
/// anchor alone when there are none (possible only for `--load`, which writes nothing).
pub fn first_tags(publ: &Publication) -> Vec<String> {
    let tags: Vec<String> = publ
        .tags
        .iter()
        .filter(|t| !t.floating)
        .map(|t| t.name.clone())
        .collect();
    if tags.is_empty() {
        vec![anchor_tag(publ)]
    } else {
        tags
    }
}

/// A floating tag written through the registry API (docker and podman backends).
pub fn registry_copy(publ: &Publication, anchor: &str, tag: &str) -> Action {
    Action::Copy(Copy {
        source: format!("{}:{anchor}", publ.name()),
        destination: format!("{}:{tag}", publ.name()),
        source_registry: publ.registry.clone(),
        destination_registry: publ.registry.clone(),
    })
}

/// One `login --password-stdin` per pushed registry with credentials in the environment.
/// Registries without them rely on an existing `docker login` (checked before the run).
pub fn logins(ctx: &Context, steps: &mut Steps, program: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for reg in ctx.pushed_registries() {
        let (Some(user), Some(pass)) = (&reg.username_env, &reg.password_env) else {
            continue;
        };
        let mut args = vec!["login".to_string()];
        args.push(reg.host.clone());
        args.extend([
            "--username".into(),
            format!("${{env.{user}}}"),
            "--password-stdin".into(),
        ]);
        if program == "podman" && reg.plain_http {
            args.push("--tls-verify=false".into());
        }
        let step = process(
            format!("login-{}", slug(&reg.name)),
            Phase::Login,
            format!("log in to {} ({}) as ${user}", reg.name, reg.host),
            program,
            args,
        )
        .registry(&reg.name)
        // One login at a time: each docker login rewrites the whole config.json, and two at
        // once would lose one of the credentials.
        .needs(ids.last().cloned())
        .with_process(|p| {
            p.env = vec![user.clone(), pass.clone()];
            p.stdin = Some(Stdin::Env(pass.clone()));
            p.retry = true;
            // Without the variables, an existing `docker login` serves (checked before the run).
            p.only_with_env = true;
        });
        ids.push(steps.add(step));
    }
    ids
}

/// Platforms that need QEMU: not the host's and not on a native node. Whether a handler is
/// registered already is not part of the plan (the QEMU step probes for it when it runs), so
/// a plan stays the same before and after QEMU is set up and `apply --resume` can continue it.
/// Refuses platforms no one can build when emulation is "never".
pub fn emulated(ctx: &Context, covered_by_nodes: &[Platform]) -> Result<Vec<Platform>> {
    use crate::config::Emulation;
    let mut out = Vec::new();
    for p in ctx.all_platforms() {
        if covered_by_nodes.contains(&p) {
            continue;
        }
        let native = match ctx.project.builder.emulation {
            // "always": everything but the host's own architecture goes through QEMU.
            Emulation::Always => p.os == ctx.facts.native.os && p.arch == ctx.facts.native.arch,
            _ => ctx.facts.native.runs_natively(&p),
        };
        if native {
            continue;
        }
        if ctx.project.builder.emulation == Emulation::Never {
            return Err(Error::invalid(
                Problem::new(format!(
                    "no builder node runs {p} natively, and [builder] emulation = \"never\""
                ))
                .help(format!(
                    "add a [[builder.nodes]] entry for {p}, or set emulation = \"auto\""
                )),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// The QEMU set-up step (tonistiigi/binfmt, as docker/setup-qemu-action uses), if any platform
/// needs it; skipped at run time when every handler is registered already.
pub fn qemu_step(program: &str, platforms: &[Platform]) -> Option<Step> {
    if platforms.is_empty() {
        return None;
    }
    let mut archs: Vec<String> = Vec::new();
    let mut probe: Vec<String> = vec!["test".into()];
    for p in platforms {
        if !archs.contains(&p.arch) {
            archs.push(p.arch.clone());
            if let Some(q) = p.qemu_name() {
                if probe.len() > 1 {
                    probe.push("-a".into());
                }
                probe.extend(["-e".into(), format!("/proc/sys/fs/binfmt_misc/qemu-{q}")]);
            }
        }
    }
    let image = if program == "podman" {
        "docker.io/tonistiigi/binfmt"
    } else {
        "tonistiigi/binfmt"
    };
    Some(
        process(
            "qemu",
            Phase::Setup,
            format!(
                "register QEMU handlers for {}, unless they are registered",
                crate::platform::join(platforms)
            ),
            program,
            vec![
                "run".into(),
                "--privileged".into(),
                "--rm".into(),
                image.into(),
                "--install".into(),
                archs.join(","),
            ],
        )
        .with_process(|p| {
            if probe.len() > 1 {
                p.skip_if = Some(probe);
            }
        }),
    )
}

/// True when a path has characters outside ASCII (buildx issue 2793).
pub fn non_ascii(p: &Path) -> bool {
    !p.to_string_lossy().is_ascii()
}

/// Where buildx reaches the build context from: the context itself, or an ASCII symlink under
/// `.multiarch/ctx/` when its folder name is not ASCII (buildx issue 2793), with the steps that
/// make the link.
pub fn context_path(ctx: &Context, image: &Image) -> (PathBuf, Vec<Step>) {
    let base_ascii = image
        .context
        .file_name()
        .is_none_or(|n| n.to_string_lossy().is_ascii());
    if base_ascii {
        return (image.context.clone(), Vec::new());
    }
    let dir = ctx.project.root.join(".multiarch").join("ctx");
    let link = dir.join(slug(&image.key));
    let mkdir = process(
        format!("link-dir-{}", slug(&image.key)),
        Phase::Setup,
        format!(
            "make {} for the context link of {}",
            dir.display(),
            image.key
        ),
        "mkdir",
        vec!["-p".into(), crate::plan::lit_path(&dir)],
    )
    .image(&image.key);
    let ln = process(
        format!("link-context-{}", slug(&image.key)),
        Phase::Setup,
        format!(
            "reach the context of {} through an ASCII symlink (buildx issue 2793)",
            image.key
        ),
        "ln",
        vec![
            "-sfn".into(),
            crate::plan::lit_path(&image.context),
            crate::plan::lit_path(&link),
        ],
    )
    .needs([mkdir.id.clone()])
    .image(&image.key);
    (link, vec![mkdir, ln])
}

/// `--build-arg` and `--label` flags, in file order.
pub fn args_and_labels(image: &Image) -> Vec<String> {
    let mut out = Vec::new();
    use crate::plan::lit;
    if let Some(t) = &image.target {
        out.extend(["--target".to_string(), lit(t)]);
    }
    for (k, v) in &image.build_args {
        out.extend(["--build-arg".to_string(), lit(&format!("{k}={v}"))]);
    }
    for (k, v) in &image.labels {
        out.extend(["--label".to_string(), lit(&format!("{k}={v}"))]);
    }
    out
}

/// `--network` flag, when not the default.
pub fn network_flag(image: &Image) -> Vec<String> {
    use crate::config::Network;
    match image.network {
        Network::Default => vec![],
        Network::Host => vec!["--network".into(), "host".into()],
        Network::None => vec!["--network".into(), "none".into()],
    }
}
