//! The buildx backend: one `docker buildx build` per image for all its platforms, on a
//! docker-container (or remote, kubernetes, multi-node) builder, pushed by digest; tags
//! written with `docker buildx imagetools create`, which also copies across registries.
//!
//! Command lines follow the buildx reference (`docker buildx create`, `build`,
//! `imagetools create`): every build names its output (`--output type=image,...,push=true` or
//! `--load`), so the "build result will only remain in the build cache" trap cannot happen.

use crate::config::{Driver, Emulation};
use crate::error::{Error, Problem, Result};
use crate::model::{Cache, Image};
use crate::plan::{process, slug, Action, Capture, Phase, Process, Steps};
use crate::platform::{join, Platform};
use crate::reference;
use crate::release::Publication;

use super::{
    anchor_tag, args_and_labels, context_path, emulated, logins, network_flag, qemu_step, Context,
};

fn driver_name(d: Driver) -> &'static str {
    match d {
        Driver::DockerContainer => "docker-container",
        Driver::Remote => "remote",
        Driver::Kubernetes => "kubernetes",
        Driver::Docker => "docker",
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Builder set-up: create it (with its nodes) unless it already exists.
fn builder_steps(ctx: &Context, steps: &mut Steps) -> Result<Vec<String>> {
    let b = &ctx.project.builder;
    if b.driver == Driver::Docker {
        return Ok(Vec::new()); // the engine's own builder: nothing to create
    }
    let probe = s(&["docker", "buildx", "inspect", &b.name]);
    let covered: Vec<Platform> = b.nodes.iter().flat_map(|n| n.platforms.clone()).collect();
    let uncovered: Vec<Platform> = ctx
        .all_platforms()
        .into_iter()
        .filter(|p| !covered.contains(p))
        .collect();
    let mut base = s(&[
        "buildx",
        "create",
        "--name",
        &b.name,
        "--driver",
        driver_name(b.driver),
    ]);
    if b.driver == Driver::DockerContainer && ctx.pushed_registries().iter().any(|r| r.plain_http) {
        // BuildKit runs in a container: host networking lets it reach loopback registries.
        base.extend(s(&["--driver-opt", "network=host"]));
    }
    let mut ids: Vec<String> = Vec::new();
    // Registries said to be plain HTTP (beyond loopback, which BuildKit reaches over HTTP by
    // itself) go into a buildkitd configuration, so that pulls of bases, the registry cache and
    // `imagetools create` (which reads the builder's configuration) use HTTP too.
    let http: Vec<&str> = ctx
        .pushed_registries()
        .iter()
        .filter(|r| r.plain_http && !reference::is_plain_http(&r.host, false))
        .map(|r| r.host.as_str())
        .collect();
    if !http.is_empty() {
        let dir = ctx.project.root.join(".multiarch");
        let file = dir.join("buildkitd.toml");
        let mut text = String::from(
            "# Written by multiarch: registries the project marks `insecure = true`.\n",
        );
        for h in &http {
            text.push_str(&format!(
                "[registry.\"{h}\"]\n  http = true\n  insecure = true\n"
            ));
        }
        let mkdir = steps.add(process(
            "buildkitd-dir",
            Phase::Setup,
            format!("make {}", dir.display()),
            "mkdir",
            vec!["-p".into(), crate::plan::lit_path(&dir)],
        ));
        let write = steps.add(
            process(
                "buildkitd-config",
                Phase::Setup,
                format!(
                    "write the buildkitd configuration for plain-HTTP registries {}",
                    http.join(", ")
                ),
                "tee",
                vec![crate::plan::lit_path(&file)],
            )
            .needs([mkdir])
            .with_process(|p| p.stdin = Some(crate::plan::Stdin::Text(text))),
        );
        ids.push(write);
        base.extend(["--buildkitd-config".into(), crate::plan::lit_path(&file)]);
    }
    let add = |steps: &mut Steps,
               id: String,
               desc: String,
               args: Vec<String>,
               prev: &[String]|
     -> String {
        let step = process(id, Phase::Setup, desc, "docker", args)
            .needs(prev.iter().cloned())
            .with_process(|p| p.skip_if = Some(probe.clone()));
        steps.add(step)
    };
    if b.nodes.is_empty() {
        if b.driver == Driver::Remote {
            return Err(Error::invalid(
                Problem::new("[builder] driver = \"remote\" needs the BuildKit endpoint")
                    .help("add a [[builder.nodes]] entry with endpoint = \"tcp://buildkitd:1234\" and its platforms"),
            ));
        }
        let mut args = base.clone();
        args.push("--bootstrap".into());
        let id = add(
            steps,
            "builder".into(),
            format!(
                "create builder {} ({} driver), unless it exists",
                b.name,
                driver_name(b.driver)
            ),
            args,
            &ids,
        );
        ids.push(id);
        return Ok(ids);
    }
    // Every node is written with `create --append`: buildx creates the builder when it is
    // missing and updates a node that exists, so a run interrupted half-way through the nodes
    // is completed by the next one (a single "exists?" probe would skip the missing nodes).
    let mut append = |steps: &mut Steps,
                      id: String,
                      desc: String,
                      node: String,
                      platforms: &[Platform],
                      endpoint: Option<String>| {
        let mut args = base.clone();
        args.insert(2, "--append".into());
        args.extend(["--node".into(), node, "--platform".into(), join(platforms)]);
        args.extend(endpoint);
        let step = process(id, Phase::Setup, desc, "docker", args).needs(ids.last().cloned());
        ids.push(steps.add(step));
    };
    if !uncovered.is_empty() && b.driver != Driver::Remote {
        let node = format!("{}-local", b.name);
        append(
            steps,
            "builder".into(),
            format!(
                "builder {}: local node {node} for {}",
                b.name,
                join(&uncovered)
            ),
            node,
            &uncovered,
            None,
        );
    }
    for n in &b.nodes {
        append(
            steps,
            format!("builder-node-{}", slug(&n.name)),
            format!(
                "builder {}: node {} ({}) for {}",
                b.name,
                n.name,
                n.endpoint,
                join(&n.platforms)
            ),
            n.name.clone(),
            &n.platforms,
            Some(crate::plan::lit(&n.endpoint)),
        );
    }
    Ok(ids)
}

fn cache_flags(image: &Image, primary: &Publication) -> Vec<String> {
    match &image.cache {
        Cache::None => vec![],
        Cache::Registry => {
            let r = format!("{}:buildcache", primary.name());
            vec![
                "--cache-from".into(),
                format!("type=registry,ref={r}"),
                "--cache-to".into(),
                format!("type=registry,ref={r},mode=max"),
            ]
        }
        Cache::Gha => {
            let scope = slug(&image.key);
            vec![
                "--cache-from".into(),
                format!("type=gha,scope={scope}"),
                "--cache-to".into(),
                format!("type=gha,scope={scope},mode=max"),
            ]
        }
        Cache::Local(dir) => vec![
            "--cache-from".into(),
            format!("type=local,src={}", crate::plan::lit_path(dir)),
            "--cache-to".into(),
            format!("type=local,dest={},mode=max", crate::plan::lit_path(dir)),
        ],
    }
}

/// Plans a release (or a `--load` try-out) with buildx.
pub fn plan(ctx: &Context, steps: &mut Steps) -> Result<()> {
    let b = &ctx.project.builder;
    // `--load` builds on the engine's own builder (docker driver): it loads straight into the
    // local image store, and a dependant's `docker-image://` context then finds its base there
    // (a docker-container builder would look in the registry instead).
    let builder_ids = if ctx.load {
        Vec::new()
    } else {
        builder_steps(ctx, steps)?
    };
    let covered: Vec<Platform> = if ctx.load {
        Vec::new()
    } else {
        b.nodes.iter().flat_map(|n| n.platforms.clone()).collect()
    };
    let emu = emulated(ctx, &covered)?;
    let mut setup = builder_ids.clone();
    if b.emulation != Emulation::Never {
        if let Some(q) = qemu_step("docker", &emu) {
            setup.push(steps.add(q));
        }
    }
    let login_ids = logins(ctx, steps, "docker");
    let mut build_ids: std::collections::HashMap<String, Vec<String>> = Default::default();
    let meta_dir = ctx.project.root.join(".multiarch").join("meta");
    for image in ctx.images() {
        let pubs = ctx.publications(&image.key);
        let primary = ctx.primary(image, &pubs);
        let (context, link) = context_path(ctx, image);
        let mut needs: Vec<String> = setup.clone();
        for l in link {
            needs.push(steps.add(l));
        }
        for d in &image.depends_on {
            needs.extend(build_ids.get(d).cloned().unwrap_or_default());
        }
        let mut common = s(&["buildx", "build"]);
        if ctx.load {
            common.extend(s(&["--builder", "default"]));
        } else if b.driver != Driver::Docker {
            common.extend(["--builder".into(), b.name.clone()]);
        }
        if ctx.load {
            let ids = plan_load(ctx, steps, image, &pubs, primary, &context, &common, &needs);
            build_ids.insert(image.key.clone(), ids);
            continue;
        }
        needs.extend(login_ids.iter().cloned());
        let reg = ctx.registry(&primary.registry);
        let mut args = common.clone();
        args.extend(["--platform".into(), join(&image.platforms)]);
        args.extend(["--file".into(), crate::plan::lit_path(&image.dockerfile)]);
        args.extend(args_and_labels(image));
        args.extend(network_flag(image));
        for d in &image.depends_on {
            let dprimary = ctx.primary_of(d);
            args.extend([
                "--build-context".into(),
                format!(
                    "{d}=docker-image://{}@${{digest.{}}}",
                    dprimary.name(),
                    slug(d)
                ),
            ]);
        }
        args.extend(cache_flags(image, primary));
        let mut output = format!(
            "type=image,name={},push-by-digest=true,name-canonical=true,push=true",
            primary.name()
        );
        if reg.plain_http {
            output.push_str(",registry.insecure=true");
        }
        let meta = meta_dir.join(format!("{}.json", slug(&image.key)));
        args.extend(["--output".into(), output]);
        args.extend(["--metadata-file".into(), crate::plan::lit_path(&meta)]);
        args.extend(["--progress".into(), "plain".into()]);
        args.push(crate::plan::lit_path(&context));
        let build = process(
            format!("build-{}", slug(&image.key)),
            Phase::Build,
            format!(
                "build {} for {} and push it by digest to {}",
                image.key,
                join(&image.platforms),
                primary.name()
            ),
            "docker",
            args,
        )
        .needs(needs)
        .image(&image.key)
        .registry(&primary.registry)
        .with_process(|p| {
            p.cwd = Some("/".into());
            p.captures = Some(Capture {
                name: slug(&image.key),
                metadata_file: meta.clone(),
            });
        });
        let build_id = steps.add(build);
        build_ids.insert(image.key.clone(), vec![build_id.clone()]);
        // Immutable tags, per registry, from the pushed index.
        for publ in &pubs {
            let tags = super::first_tags(publ);
            let mut args = s(&["buildx", "imagetools", "create"]);
            if b.driver != Driver::Docker {
                // imagetools reads registry settings (plain HTTP) from the builder's config.
                args.extend(["--builder".into(), b.name.clone()]);
            }
            if publ.platforms.len() != image.platforms.len() {
                args.extend(["--platform".into(), join(&publ.platforms)]);
            }
            for t in &tags {
                args.extend(["--tag".into(), format!("{}:{t}", publ.name())]);
            }
            args.push(format!(
                "{}@${{digest.{}}}",
                primary.name(),
                slug(&image.key)
            ));
            let step = process(
                format!("tag-{}-{}", slug(&image.key), slug(&publ.registry)),
                Phase::Tag,
                format!(
                    "write {}:{} ({})",
                    publ.name(),
                    tags.join(","),
                    join(&publ.platforms)
                ),
                "docker",
                args,
            )
            .needs([build_id.clone()])
            .image(&image.key)
            .registry(&publ.registry)
            .with_process(|p| p.retry = true);
            steps.add(step);
        }
    }
    Ok(())
}

/// `--load`: the local image store of a classic engine holds one platform per tag, so each
/// platform is built and loaded under an arch-suffixed tag, and the host's platform also gets
/// the release's names with `docker tag`. With the containerd image store, one build loads all.
#[allow(clippy::too_many_arguments)]
fn plan_load(
    ctx: &Context,
    steps: &mut Steps,
    image: &Image,
    pubs: &[&Publication],
    primary: &Publication,
    context: &std::path::Path,
    common: &[String],
    needs: &[String],
) -> Vec<String> {
    let anchor = anchor_tag(primary);
    let names: Vec<String> = pubs
        .iter()
        .flat_map(|p| {
            p.tags
                .iter()
                .map(move |t| format!("{}:{}", p.name(), t.name))
        })
        .collect();
    let mut base_args = common.to_vec();
    base_args.extend(["--file".into(), crate::plan::lit_path(&image.dockerfile)]);
    base_args.extend(args_and_labels(image));
    base_args.extend(network_flag(image));
    if ctx.facts.containerd_store {
        let mut args = base_args.clone();
        args.extend(["--platform".into(), join(&image.platforms)]);
        for d in &image.depends_on {
            let dprim = ctx.primary_of(d);
            args.extend([
                "--build-context".into(),
                format!("{d}=docker-image://{}:{}", dprim.name(), anchor_tag(dprim)),
            ]);
        }
        for n in &names {
            args.extend(["--tag".into(), n.clone()]);
        }
        args.extend([
            "--load".into(),
            "--progress".into(),
            "plain".into(),
            crate::plan::lit_path(context),
        ]);
        let step = process(
            format!("load-{}", slug(&image.key)),
            Phase::Build,
            format!(
                "build {} for {} into the local containerd image store",
                image.key,
                join(&image.platforms)
            ),
            "docker",
            args,
        )
        .needs(needs.iter().cloned())
        .image(&image.key)
        .with_process(|p| p.cwd = Some("/".into()));
        return vec![steps.add(step)];
    }
    let mut ids = Vec::new();
    for p in &image.platforms {
        let local = format!("{}:{anchor}-{}", primary.name(), p.tag_suffix());
        let mut args = base_args.clone();
        args.extend(["--platform".into(), p.to_string()]);
        for d in &image.depends_on {
            let dprim = ctx.primary_of(d);
            args.extend([
                "--build-context".into(),
                format!(
                    "{d}=docker-image://{}:{}-{}",
                    dprim.name(),
                    anchor_tag(dprim),
                    p.tag_suffix()
                ),
            ]);
        }
        args.extend([
            "--tag".into(),
            local.clone(),
            "--load".into(),
            "--progress".into(),
            "plain".into(),
        ]);
        args.push(crate::plan::lit_path(context));
        let id = steps.add(
            process(
                format!("load-{}-{}", slug(&image.key), slug(&p.to_string())),
                Phase::Build,
                format!("build {} for {p} and load it as {local}", image.key),
                "docker",
                args,
            )
            .needs(needs.iter().cloned())
            .image(&image.key)
            .with_process(|pr| pr.cwd = Some("/".into())),
        );
        ids.push(id.clone());
        if *p == host_choice(ctx, image) {
            ids.extend(local_tags(steps, image, &local, &names, &id, "docker"));
        }
    }
    ids
}

/// The platform whose image gets the release's own names locally: the host's if built, else
/// the first one.
pub fn host_choice(ctx: &Context, image: &Image) -> Platform {
    image
        .platforms
        .iter()
        .find(|p| ctx.facts.native.runs_natively(p) && p.arch == ctx.facts.native.arch)
        .or_else(|| image.platforms.first())
        .cloned()
        .expect("images have platforms")
}

/// `docker tag` steps that give a loaded image the registry names, locally.
pub fn local_tags(
    steps: &mut Steps,
    image: &Image,
    local: &str,
    names: &[String],
    after: &str,
    program: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let id = steps.add(
            process(
                format!("local-tag-{}-{i}", slug(&image.key)),
                Phase::Build,
                format!("name {local} {n} locally"),
                program,
                vec!["tag".into(), local.into(), n.clone()],
            )
            .needs([after.to_string()])
            .image(&image.key),
        );
        ids.push(id);
    }
    ids
}

/// A floating tag: a carbon copy of the verified index (`imagetools create` with one index
/// source keeps its digest).
pub fn float(
    publ: &Publication,
    anchor: &str,
    tag: &str,
    builder: &crate::model::Builder,
) -> Action {
    let mut args = s(&["buildx", "imagetools", "create"]);
    if builder.driver != Driver::Docker {
        args.extend(["--builder".into(), builder.name.clone()]);
    }
    args.extend([
        "--tag".into(),
        format!("{}:{tag}", publ.name()),
        format!("{}:{anchor}", publ.name()),
    ]);
    Action::Process(Process {
        program: "docker".into(),
        args,
        env: vec![],
        set_env: Default::default(),
        stdin: None,
        cwd: None,
        skip_if: None,
        captures: None,
        retry: true,
        may_fail: false,
        only_with_env: false,
    })
}
