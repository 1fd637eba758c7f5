//! The docker backend, for a Docker Engine without buildx (as Debian and Ubuntu ship it):
//! one `docker build --platform X` per platform on the engine's own BuildKit (which sets
//! `TARGETARCH`), `docker push` of arch-suffixed tags, then `docker manifest create` and
//! `docker manifest push` for the index. Further tags are registry copies, so every tag of a
//! release names the very same index digest.
//!
//! A dependant's `FROM <base>` resolves to the base's per-platform image through a local
//! `docker tag`; the dependant's platform builds then run one after another so that the local
//! name always points at the right platform.

use crate::error::Result;
use crate::plan::{process, slug, Action, Copy, Phase, Steps};
use crate::platform::join;

use super::buildx::{host_choice, local_tags};
use super::{anchor_tag, args_and_labels, emulated, logins, network_flag, qemu_step, Context};

/// Plans a release (or a `--load` try-out) with plain `docker build`.
pub fn plan(ctx: &Context, steps: &mut Steps) -> Result<()> {
    per_platform_plan(ctx, steps, "docker")
}

/// Shared by the docker and podman backends: per-platform builds under arch-suffixed tags.
pub(crate) fn per_platform_plan(ctx: &Context, steps: &mut Steps, program: &str) -> Result<()> {
    let podman = program == "podman";
    let emu = emulated(ctx, &[])?;
    let mut setup = Vec::new();
    if ctx.project.builder.emulation != crate::config::Emulation::Never {
        if let Some(q) = qemu_step(program, &emu) {
            setup.push(steps.add(q));
        }
    }
    let login_ids = logins(ctx, steps, program);
    let mut built: std::collections::HashMap<String, Vec<String>> = Default::default();
    // The last build that read each base's local short name: the next `tag` of that name
    // waits for it, so parallel dependants never see each other's platform.
    let mut last_use: std::collections::HashMap<String, String> = Default::default();
    for image in ctx.images() {
        let pubs = ctx.publications(&image.key);
        let primary = ctx.primary(image, &pubs);
        let anchor = anchor_tag(primary);
        // Where each platform's image lives locally: under its registry name for docker
        // (pushed as is), under localhost/<repository> for podman (manifest lists are made
        // locally from them).
        let local = |key: &str, anchor: &str, sfx: &str| -> String {
            let primary = ctx.primary_of(key);
            if podman {
                format!("localhost/{}:{anchor}-{sfx}", primary.repository)
            } else {
                format!("{}:{anchor}-{sfx}", primary.name())
            }
        };
        // `docker build` and `podman build` take the context's path as it is: the non-ASCII
        // session-name bug is buildx's alone. They run from an ASCII working directory too.
        let context = image.context.clone();
        let mut needs = setup.clone();
        for d in &image.depends_on {
            needs.extend(built.get(d).cloned().unwrap_or_default());
        }
        let mut ids = Vec::new();
        let mut previous: Option<String> = None;
        for p in &image.platforms {
            let sfx = p.tag_suffix();
            let name = local(&image.key, &anchor, &sfx);
            let mut pre = needs.clone();
            // FROM <base>: point the base's short name at this platform's base image.
            for d in &image.depends_on {
                let danchor = anchor_tag(ctx.primary_of(d));
                let target = if podman {
                    format!("localhost/{d}:latest")
                } else {
                    format!("{d}:latest")
                };
                let id = steps.add(
                    process(
                        format!(
                            "base-{}-{}-{}",
                            slug(&image.key),
                            slug(d),
                            slug(&p.to_string())
                        ),
                        crate::plan::Phase::Build,
                        format!("let FROM {d} in {} resolve to its {p} image", image.key),
                        program,
                        vec!["tag".into(), local(d, &danchor, &sfx), target],
                    )
                    .needs(
                        needs
                            .iter()
                            .cloned()
                            .chain(previous.clone())
                            .chain(last_use.get(d).cloned()),
                    )
                    .image(&image.key),
                );
                pre.push(id);
            }
            let mut args = vec!["build".to_string(), "--platform".into(), p.to_string()];
            args.extend(["--file".into(), crate::plan::lit_path(&image.dockerfile)]);
            args.extend(args_and_labels(image));
            args.extend(network_flag(image));
            args.extend(["--tag".into(), name.clone()]);
            args.push(crate::plan::lit_path(&context));
            let mut step = process(
                format!("build-{}-{}", slug(&image.key), slug(&p.to_string())),
                Phase::Build,
                format!("build {} for {p} as {name}", image.key),
                program,
                args,
            )
            .needs(pre)
            .image(&image.key)
            .with_process(|pr| {
                pr.cwd = Some("/".into());
                if !podman {
                    // The engine's BuildKit sets TARGETARCH; the legacy builder does not.
                    pr.set_env.insert("DOCKER_BUILDKIT".into(), "1".into());
                }
            });
            if !image.depends_on.is_empty() {
                step = step.needs(previous.clone());
            }
            let id = steps.add(step);
            for d in &image.depends_on {
                last_use.insert(d.clone(), id.clone());
            }
            previous = Some(id.clone());
            ids.push(id.clone());
            if ctx.load && *p == host_choice(ctx, image) {
                let names: Vec<String> = pubs
                    .iter()
                    .flat_map(|pb| {
                        pb.tags
                            .iter()
                            .map(move |t| format!("{}:{}", pb.name(), t.name))
                    })
                    .collect();
                ids.extend(local_tags(steps, image, &name, &names, &id, program));
            }
        }
        built.insert(image.key.clone(), ids.clone());
        if ctx.load {
            continue;
        }
        for publ in &pubs {
            let reg = ctx.registry(&publ.registry);
            let key = format!("{}-{}", slug(&image.key), slug(&publ.registry));
            let index = format!("{}:{anchor}", publ.name());
            let mut pushed = Vec::new();
            let mut members = Vec::new();
            if podman {
                // Every platform's image is pushed while building (the Build phase), so that a
                // failed push stops the release before any tag is written.
                for p in &publ.platforms {
                    let sfx = p.tag_suffix();
                    let mut args = vec!["push".to_string()];
                    if reg.plain_http {
                        args.push("--tls-verify=false".into());
                    }
                    let remote = format!("{}:{anchor}-{sfx}", publ.name());
                    args.extend([
                        local(&image.key, &anchor, &sfx),
                        format!("docker://{remote}"),
                    ]);
                    steps.add(
                        process(
                            format!("push-{key}-{}", slug(&p.to_string())),
                            Phase::Build,
                            format!("push the {p} image as {remote}"),
                            program,
                            args,
                        )
                        .needs(
                            [format!(
                                "build-{}-{}",
                                slug(&image.key),
                                slug(&p.to_string())
                            )]
                            .into_iter()
                            .chain(login_ids.iter().cloned()),
                        )
                        .image(&image.key)
                        .registry(&publ.registry)
                        .with_process(|pr| pr.retry = true),
                    );
                }
                // A fresh local list with exactly this registry's platforms.
                let list = format!(
                    "localhost/{}:{anchor}-for-{}",
                    primary.repository,
                    slug(&publ.registry)
                );
                // `podman manifest rm` drops the list alone (`podman rmi` of a list would
                // delete the images it holds); it fails when there is no list, which is fine.
                let rm = steps.add(
                    process(
                        format!("list-clear-{key}"),
                        Phase::Tag,
                        format!("drop a stale local list {list}, if any"),
                        program,
                        vec!["manifest".into(), "rm".into(), list.clone()],
                    )
                    .needs(ids.iter().cloned())
                    .image(&image.key)
                    .registry(&publ.registry)
                    .with_process(|p| p.may_fail = true),
                );
                let create = steps.add(
                    process(
                        format!("list-create-{key}"),
                        Phase::Tag,
                        format!("create local list {list}"),
                        program,
                        vec!["manifest".into(), "create".into(), list.clone()],
                    )
                    .needs([rm])
                    .image(&image.key)
                    .registry(&publ.registry),
                );
                let mut prev = create;
                for p in &publ.platforms {
                    let member = local(&image.key, &anchor, &p.tag_suffix());
                    prev = steps.add(
                        process(
                            format!("list-add-{key}-{}", slug(&p.to_string())),
                            Phase::Tag,
                            format!("add the {p} image to {list}"),
                            program,
                            vec![
                                "manifest".into(),
                                "add".into(),
                                list.clone(),
                                format!("containers-storage:{member}"),
                            ],
                        )
                        .needs([prev])
                        .image(&image.key)
                        .registry(&publ.registry),
                    );
                }
                let tags = super::first_tags(publ);
                let mut last = prev.clone();
                for t in &tags {
                    let mut args = vec!["manifest".to_string(), "push".into(), "--all".into()];
                    if reg.plain_http {
                        args.push("--tls-verify=false".into());
                    }
                    args.extend([list.clone(), format!("docker://{}:{t}", publ.name())]);
                    last = steps.add(
                        process(
                            format!("tag-{key}-{}", slug(t)),
                            Phase::Tag,
                            format!(
                                "push {list} as {}:{t} ({})",
                                publ.name(),
                                join(&publ.platforms)
                            ),
                            program,
                            args,
                        )
                        // One write to the repository at a time (see plan.rs, floating tags).
                        .needs([last.clone()].into_iter().chain(login_ids.iter().cloned()))
                        .image(&image.key)
                        .registry(&publ.registry)
                        .with_process(|pr| pr.retry = true),
                    );
                }
                // The list was scaffolding for the push: drop it, so that local storage does not
                // keep one list per release (podman 4.3 also stumbles over lists that lack the
                // host's platform).
                steps.add(
                    process(
                        format!("list-drop-{key}"),
                        Phase::Tag,
                        format!("drop the local list {list}"),
                        program,
                        vec!["manifest".into(), "rm".into(), list.clone()],
                    )
                    .needs([last])
                    .image(&image.key)
                    .registry(&publ.registry)
                    .with_process(|p| p.may_fail = true),
                );
                continue;
            }
            for p in &publ.platforms {
                let sfx = p.tag_suffix();
                let built_name = local(&image.key, &anchor, &sfx);
                let remote = format!("{}:{anchor}-{sfx}", publ.name());
                let build_id = format!("build-{}-{}", slug(&image.key), slug(&p.to_string()));
                let mut after = vec![build_id];
                if remote != built_name {
                    after = vec![steps.add(
                        process(
                            format!("retag-{key}-{}", slug(&p.to_string())),
                            Phase::Build,
                            format!("name the {p} image {remote}"),
                            program,
                            vec!["tag".into(), built_name, remote.clone()],
                        )
                        .needs(after)
                        .image(&image.key)
                        .registry(&publ.registry),
                    )];
                }
                pushed.push(
                    steps.add(
                        process(
                            format!("push-{key}-{}", slug(&p.to_string())),
                            Phase::Build,
                            format!("push the {p} image as {remote}"),
                            program,
                            vec!["push".into(), remote.clone()],
                        )
                        .needs(after.into_iter().chain(login_ids.iter().cloned()))
                        .image(&image.key)
                        .registry(&publ.registry)
                        .with_process(|pr| pr.retry = true),
                    ),
                );
                members.push(remote);
            }
            let insecure: Vec<String> = if reg.plain_http {
                vec!["--insecure".into()]
            } else {
                vec![]
            };
            let mut args = vec!["manifest".to_string(), "create".into()];
            args.extend(insecure.clone());
            args.extend(["--amend".into(), index.clone()]);
            args.extend(members);
            let create = steps.add(
                process(
                    format!("index-{key}"),
                    Phase::Tag,
                    format!(
                        "create the manifest list {index} ({})",
                        join(&publ.platforms)
                    ),
                    program,
                    args,
                )
                .needs(pushed)
                .image(&image.key)
                .registry(&publ.registry),
            );
            let mut args = vec!["manifest".to_string(), "push".into()];
            args.extend(insecure);
            args.extend(["--purge".into(), index.clone()]);
            let push = steps.add(
                process(
                    format!("tag-{key}"),
                    Phase::Tag,
                    format!("push the manifest list {index}"),
                    program,
                    args,
                )
                .needs([create])
                .image(&image.key)
                .registry(&publ.registry)
                .with_process(|pr| pr.retry = true),
            );
            // One write to the repository at a time (see plan.rs, floating tags).
            let mut previous = push.clone();
            for t in publ.tags.iter().filter(|t| !t.floating && t.name != anchor) {
                previous = steps.add(crate::plan::Step {
                    id: format!("tag-{key}-{}", slug(&t.name)),
                    phase: Phase::Tag,
                    description: format!("copy {index} to {}:{}", publ.name(), t.name),
                    needs: vec![previous.clone()],
                    image: Some(image.key.clone()),
                    registry: Some(publ.registry.clone()),
                    action: Action::Copy(Copy {
                        source: index.clone(),
                        destination: format!("{}:{}", publ.name(), t.name),
                        source_registry: publ.registry.clone(),
                        destination_registry: publ.registry.clone(),
                    }),
                });
            }
        }
    }
    Ok(())
}
