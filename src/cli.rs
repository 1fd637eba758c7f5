//! Command-line types (clap). Their doc comments are the `--help` text; no logic lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Release multi-arch container images from one declarative file.
#[derive(Debug, Parser)]
#[command(name = "multiarch", version, about, long_about = None, arg_required_else_help = true)]
pub struct Cli {
    /// Project file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "multiarch.toml",
        value_name = "PATH"
    )]
    pub file: PathBuf,

    /// When to use colour in messages.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Colour when stderr is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter multiarch.toml from the Dockerfiles found here.
    Init(InitArgs),
    /// Validate the project file; report every problem at once, with file:line:col.
    Check,
    /// Print the JSON Schema of multiarch.toml (or of a saved plan).
    Schema(SchemaArgs),
    /// Print the release plan.
    Plan(PlanArgs),
    /// Run the plan (or a saved plan file).
    Apply(ApplyArgs),
    /// Check that the registries hold every declared image:tag with exactly the declared platforms.
    Verify(VerifyArgs),
    /// List the platforms, digests and sizes of any image reference.
    Inspect(InspectArgs),
    /// Copy a multi-arch image (index and all children) to another tag or registry, keeping its digest.
    Copy(CopyArgs),
    /// Generate CI workflows.
    #[command(subcommand)]
    Ci(CiCommand),
    /// Check this machine: engine, buildx, builder, QEMU, credentials, registries.
    Doctor(DoctorArgs),
}

/// `init` flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing project file.
    #[arg(long)]
    pub force: bool,
}

/// `schema` flags.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The schema of a saved plan (`plan --format json`) instead.
    #[arg(long)]
    pub plan: bool,
}

/// Plan output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A numbered list with dependencies.
    Text,
    /// The plan data (input for `apply PLAN.json`).
    Json,
    /// A bash script running the same commands in order.
    Shell,
}

/// Build backends.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// docker buildx (default).
    Buildx,
    /// A plain Docker Engine without buildx: one build per platform, `docker manifest`.
    Docker,
    /// podman, daemonless.
    Podman,
}

/// Flags that choose what is planned (shared by `plan` and `apply`).
#[derive(Debug, Args, Clone)]
pub struct Selection {
    /// Build backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Buildx)]
    pub backend: BackendKind,
    /// Release version (overrides [release] version-from).
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Only these images (and the images they depend on).
    #[arg(long, num_args = 1.., value_name = "IMAGE")]
    pub only: Vec<String>,
    /// Local try-out: build what the local image store can hold, push nothing.
    #[arg(long)]
    pub load: bool,
}

/// `plan` flags.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What to plan.
    #[command(flatten)]
    pub selection: Selection,
}

/// `apply` flags.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `plan --format json -o FILE`; without it, plan now.
    pub plan: Option<PathBuf>,
    /// What to plan (ignored with a saved plan).
    #[command(flatten)]
    pub selection: Selection,
    /// Print what would run, in order, and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Steps run at once (default: number of CPUs).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Skip verification of written tags (not recommended).
    #[arg(long)]
    pub no_verify: bool,
    /// Continue after the last finished step of an interrupted run.
    #[arg(long)]
    pub resume: bool,
}

/// Output formats of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

/// `verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Release version whose tags are checked.
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Only these images.
    #[arg(long, num_args = 1.., value_name = "IMAGE")]
    pub only: Vec<String>,
    /// Only these registries (names from the project file).
    #[arg(long = "registry", num_args = 1.., value_name = "NAME")]
    pub registries: Vec<String>,
    /// Only these tags (as rendered, e.g. 1.2.3); the release's other tags are not checked.
    #[arg(long = "tag", num_args = 1.., value_name = "TAG")]
    pub tags: Vec<String>,
    /// Also read each platform's entrypoint binary and compare its ELF machine.
    #[arg(long)]
    pub deep: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// `inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image reference, e.g. docker.io/library/alpine:3.20 or localhost:5000/app@sha256:...
    pub reference: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
}

/// `copy` flags.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source reference.
    pub source: String,
    /// Destination reference.
    pub destination: String,
    /// Use plain HTTP for both registries.
    #[arg(long)]
    pub insecure: bool,
}

/// `ci` subcommands.
#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Render .github/workflows/<name>.yml.
    Github(GithubArgs),
}

/// CI strategies on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// One runner per platform, push by digest, merge job.
    Native,
    /// One job with QEMU.
    Emulated,
}

/// `ci github` flags.
#[derive(Debug, Args)]
pub struct GithubArgs {
    /// Strategy (default: [ci.github] strategy).
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Write the workflow file.
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Compare the committed workflow with a fresh render; exit 1 with a diff when they differ.
    #[arg(long)]
    pub check: bool,
}

/// `doctor` flags.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Also reach each registry (ping and token request) and read base images' platforms.
    #[arg(long)]
    pub online: bool,
    /// Build backend to check for.
    #[arg(long, value_enum, default_value_t = BackendKind::Buildx)]
    pub backend: BackendKind,
}
