//! Dispatch: one function per command, and the single place where results become output and
//! exit codes.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use clap::Parser;

use crate::cli::{Cli, Color, Command, SchemaArgs};
use crate::error::{Result, EXIT_INVALID, EXIT_OK};
use crate::model::Project;

/// Runs the program with these arguments and returns the process exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_INVALID
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return code;
        }
    };
    let color = use_color(cli.color);
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(e.render(color).as_bytes());
            e.exit_code()
        }
    }
}

/// Whether messages on stderr get colour.
pub fn use_color(choice: Color) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
    }
}

fn dispatch(cli: &Cli) -> Result<i32> {
    match &cli.command {
        Command::Check => check(cli),
        Command::Schema(args) => schema(args),
        Command::Init(args) => crate::init::init(&cli.file, args.force),
        Command::Plan(args) => crate::plan::command(cli, args),
        Command::Apply(args) => crate::exec::command(cli, args),
        Command::Verify(args) => crate::registry::verify_command(cli, args),
        Command::Inspect(args) => crate::registry::inspect_command(cli, args),
        Command::Copy(args) => crate::registry::copy_command(cli, args),
        Command::Ci(crate::cli::CiCommand::Github(args)) => crate::ci::github::command(cli, args),
        Command::Doctor(args) => crate::doctor::command(cli, args),
    }
}

fn check(cli: &Cli) -> Result<i32> {
    let project = Project::load(&cli.file)?;
    println!("{}", summary(&project));
    Ok(EXIT_OK)
}

/// One line saying what a valid project holds.
pub fn summary(p: &Project) -> String {
    let mut platforms: Vec<String> = Vec::new();
    let mut tags = 0;
    for img in p.images.values() {
        for pl in &img.platforms {
            let s = pl.to_string();
            if !platforms.contains(&s) {
                platforms.push(s);
            }
        }
        tags += img.tags.len() * img.registries.len();
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}: ok: {} ({}), {} ({}), {} ({}), {} per release",
        p.file.display(),
        plural(p.images.len(), "image", "images"),
        p.images.keys().cloned().collect::<Vec<_>>().join(", "),
        plural(p.registries.len(), "registry", "registries"),
        p.registries.keys().cloned().collect::<Vec<_>>().join(", "),
        plural(platforms.len(), "platform", "platforms"),
        platforms.join(", "),
        plural(tags, "tag", "tags"),
    )
}

fn schema(args: &SchemaArgs) -> Result<i32> {
    let schema = if args.plan {
        crate::plan::schema()
    } else {
        crate::config::schema()
    };
    let text = serde_json::to_string_pretty(&schema).expect("schema serialises");
    println!("{text}");
    Ok(EXIT_OK)
}
