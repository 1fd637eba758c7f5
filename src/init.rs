//! `multiarch init`: a starter project file from the Dockerfiles found next to it.
//!
//! 1. The project folder is the folder of `-f PATH` (default `./multiarch.toml`). An existing
//!    project file is never overwritten without `--force`.
//! 2. Dockerfiles (`Dockerfile`, `*.Dockerfile`, `Dockerfile.*`) are looked for up to three
//!    folders deep, skipping hidden folders (`.git`, `.multiarch`, ...) and dependency or build
//!    output folders (`node_modules`, `target`, `vendor`).
//! 3. Each becomes an `[images.KEY]`, its key made from its folder (and file) name so that it is
//!    also a valid repository name; keys stay unique.
//! 4. The file is rendered as commented text rather than serialised: a starter is read by a
//!    person before it is run, and comments are what make it readable. It names
//!    `multiarch.schema.json`, written next to it, so editors (Taplo) complete and check keys.
//!
//! What [`render`] returns passes `multiarch check` whenever at least one Dockerfile was found;
//! the tests hold it to that.

use std::path::{Path, PathBuf};

use crate::error::{Error, Problem, Result, EXIT_OK};
use crate::model::sanitize_name;

/// Folders never searched for Dockerfiles: dependencies and build output, whose Dockerfiles
/// belong to someone else. Hidden folders are skipped as well.
const SKIPPED: &[&str] = &["node_modules", "target", "vendor"];

/// How many folders below the project folder are searched.
const MAX_DEPTH: usize = 3;

/// File name of the schema written next to the project file.
pub const SCHEMA_FILE: &str = "multiarch.schema.json";

/// A Dockerfile found by the scan, and the image made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Image key (also the default repository name).
    pub key: String,
    /// Build context, relative to the project folder, `/`-separated (`.` for the folder itself).
    pub context: String,
    /// The Dockerfile, relative to the project folder, `/`-separated.
    pub dockerfile: String,
    /// True when the Dockerfile names an architecture literally and never reads TARGETARCH:
    /// the trap of an image that holds the build machine's binaries on every platform.
    pub hardcoded_arch: bool,
}

impl Found {
    /// True when the Dockerfile is `<context>/Dockerfile`, the default, so the starter need
    /// not name it.
    fn is_default_dockerfile(&self) -> bool {
        let default = if self.context == "." {
            "Dockerfile".to_string()
        } else {
            format!("{}/Dockerfile", self.context)
        };
        self.dockerfile == default
    }
}

/// Runs `multiarch init`: writes the project file at `file` and the schema next to it.
pub fn init(file: &Path, force: bool) -> Result<i32> {
    let shown = file.display().to_string();
    let root = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !root.is_dir() {
        return Err(Error::invalid(
            Problem::new(format!(
                "cannot write {shown}: folder {} does not exist",
                root.display()
            ))
            .help("create the folder first, or pass another path with -f PATH"),
        ));
    }
    if file.is_dir() {
        return Err(Error::invalid(
            Problem::new(format!("cannot write {shown}: it is a folder")).help(format!(
                "pass the file's path, e.g. -f {}",
                file.join("multiarch.toml").display()
            )),
        ));
    }
    if file.exists() && !force {
        return Err(Error::invalid(
            Problem::new(format!("{shown} already exists; init leaves it as it is"))
                .help("check it with `multiarch check`, or run `multiarch init --force` to replace it with a new starter"),
        ));
    }

    let found = scan(&root);
    let name = project_name(&root);
    let text = render(&name, &found);
    let schema_path = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(SCHEMA_FILE),
        _ => PathBuf::from(SCHEMA_FILE),
    };
    let schema =
        serde_json::to_string_pretty(&crate::config::schema()).expect("schema serialises") + "\n";

    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| {
            Error::failed(
                Problem::new(format!("cannot write {}: {e}", path.display()))
                    .help("check the folder's permissions"),
            )
        })
    };
    write(file, &text)?;
    write(&schema_path, &schema)?;

    let mut msg = String::new();
    if found.is_empty() {
        msg.push_str(&format!(
            "wrote {shown}: no Dockerfile found under {} (searched {MAX_DEPTH} folders deep), so it declares one image, \"{name}\", built from ./Dockerfile\n",
            root.display()
        ));
        msg.push_str("  write that Dockerfile (or fix `context` and `dockerfile`), then run `multiarch check`\n");
    } else {
        let plural = if found.len() == 1 { "image" } else { "images" };
        msg.push_str(&format!(
            "wrote {shown}: {} {plural} from the Dockerfiles found\n",
            found.len()
        ));
        for f in &found {
            msg.push_str(&format!("  {:<16} {}\n", f.key, f.dockerfile));
        }
    }
    msg.push_str(&format!(
        "wrote {}: the schema editors use to check the file\n",
        schema_path.display()
    ));
    msg.push_str("next: set `namespace` in [registries.ghcr] to your GitHub user or organisation, then `multiarch check`\n");
    eprint!("{msg}");
    Ok(EXIT_OK)
}

/// The project name, from the project folder's name.
fn project_name(root: &Path) -> String {
    let abs = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    sanitize_name(
        &abs.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// True for the file names a Dockerfile goes by.
fn is_dockerfile(name: &str) -> bool {
    name == "Dockerfile"
        || (name.starts_with("Dockerfile.") && name.len() > "Dockerfile.".len())
        || (name.ends_with(".Dockerfile") && name.len() > ".Dockerfile".len())
}

/// Finds the Dockerfiles under `root`, in a stable order (the folder's own first, then by path).
pub fn scan(root: &Path) -> Vec<Found> {
    let mut files: Vec<String> = Vec::new();
    walk(root, "", 0, &mut files);
    files.sort_by(|a, b| {
        let depth = |s: &str| s.matches('/').count();
        (depth(a), a).cmp(&(depth(b), b))
    });
    let project = project_name(root);
    let mut out: Vec<Found> = Vec::new();
    for rel in files {
        let (dir, file) = match rel.rsplit_once('/') {
            Some((d, f)) => (d.to_string(), f.to_string()),
            None => (String::new(), rel.clone()),
        };
        let folder = dir
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(&project);
        // `Dockerfile.debug` is a variant of the folder's image (`api-debug`); `migrate.Dockerfile`
        // names its own image (`migrate`).
        let wanted = if let Some(variant) = file.strip_prefix("Dockerfile.") {
            sanitize_name(&format!("{folder}-{variant}"))
        } else if let Some(name) = file.strip_suffix(".Dockerfile") {
            sanitize_name(name)
        } else {
            sanitize_name(folder)
        };
        let mut key = wanted.clone();
        let mut n = 2;
        while out.iter().any(|f| f.key == key) {
            key = format!("{wanted}-{n}");
            n += 1;
        }
        let text = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        out.push(Found {
            key,
            context: if dir.is_empty() { ".".into() } else { dir },
            dockerfile: rel,
            hardcoded_arch: names_arch_literally(&text),
        });
    }
    out
}

fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(String::from) else {
            continue; // a name that is not UTF-8 cannot be written into the file
        };
        let path = entry.path();
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        // file_type() does not follow symlinks: a linked folder is not entered (no loops).
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth < MAX_DEPTH && !name.starts_with('.') && !SKIPPED.contains(&name.as_str()) {
                walk(&path, &child, depth + 1, out);
            }
        } else if is_dockerfile(&name) && path.is_file() {
            out.push(child);
        }
    }
}

/// True when a Dockerfile names amd64/x86_64/arm64/aarch64 and never reads TARGETARCH or
/// TARGETPLATFORM: whatever it downloads is then one architecture for every platform.
fn names_arch_literally(text: &str) -> bool {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let names = ["amd64", "x86_64", "arm64", "aarch64"]
        .iter()
        .any(|a| code.contains(a));
    names && !code.contains("TARGETARCH") && !code.contains("TARGETPLATFORM")
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_string()
}

/// The starter file's text.
pub fn render(name: &str, found: &[Found]) -> String {
    let mut t = String::new();
    t.push_str(&format!("#:schema ./{SCHEMA_FILE}\n"));
    t.push_str(
        "# multiarch.toml: the images of this project and where they are released, for which CPU
# architectures. Written by `multiarch init`; edit it freely.
#
#   multiarch check      validate this file (every problem at once)
#   multiarch plan       show what a release would run, step by step
#   multiarch apply      release: build every platform, push, verify, then move `latest`
#   multiarch schema     every key, with its documentation
",
    );
    t.push_str(&format!(
        "
[project]
name = {}     # names the buildx builder and the CI workflow

[release]
version-from = \"git-tag\"   # git tag v1.2.3 on HEAD releases 1.2.3; or \"env:NAME\", or \"1.2.3\"
tag-prefix = \"v\"

[defaults]                 # every image inherits these unless it sets its own
platforms = [\"linux/amd64\", \"linux/arm64\"]
registries = [\"ghcr\"]
tags = [\"{{{{ version }}}}\", \"{{{{ major }}}}.{{{{ minor }}}}\", \"latest\"]

[registries.ghcr]
host = \"ghcr.io\"
namespace = \"your-github-user\"    # TODO: the user or organisation that owns the images
# NAMES of environment variables, never the secrets themselves. GitHub Actions sets both;
# locally, export GITHUB_ACTOR and a GITHUB_TOKEN allowed to write packages.
username-env = \"GITHUB_ACTOR\"
password-env = \"GITHUB_TOKEN\"
",
        quote(name)
    ));
    if found.is_empty() {
        t.push_str(&format!(
            "
# No Dockerfile was found here: this image expects ./Dockerfile. Build it FROM an image that
# exists for every platform above, and use `ARG TARGETARCH` for anything per architecture.
[images.{name}]
context = \".\"
"
        ));
    }
    for f in found {
        t.push_str(&format!("\n[images.{}]\n", f.key));
        if f.hardcoded_arch {
            t.push_str(
                "# Its Dockerfile names an architecture (amd64, arm64, ...) and never reads TARGETARCH:
# every platform would get the same binaries. Declare `ARG TARGETARCH` and use it instead.
",
            );
        }
        t.push_str(&format!("context = {}\n", quote(&f.context)));
        if !f.is_default_dockerfile() {
            t.push_str(&format!("dockerfile = {}\n", quote(&f.dockerfile)));
        }
    }
    t.push_str(
        "
[ci.github]                # `multiarch ci github --write` renders .github/workflows/release.yml
strategy = \"native\"        # one runner per platform (no QEMU); \"emulated\": one job with QEMU
on-tags = [\"v*\"]
",
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_names() {
        for yes in ["Dockerfile", "Dockerfile.dev", "api.Dockerfile"] {
            assert!(is_dockerfile(yes), "{yes}");
        }
        for no in [
            "Dockerfile.",
            ".Dockerfile",
            "dockerfile.txt",
            "Dockerfiles",
            "README.md",
        ] {
            assert!(!is_dockerfile(no), "{no}");
        }
    }

    #[test]
    fn literal_architectures_are_noticed() {
        assert!(names_arch_literally(
            "FROM x\nRUN curl -o t https://e.com/tini-amd64\n"
        ));
        assert!(!names_arch_literally(
            "FROM x\nARG TARGETARCH\nRUN curl https://e.com/tini-${TARGETARCH}\n"
        ));
        assert!(!names_arch_literally(
            "# builds for amd64 and arm64\nFROM x\n"
        ));
    }

    #[test]
    fn the_starter_is_valid_toml_with_the_keys_found() {
        let found = vec![
            Found {
                key: "api".into(),
                context: "services/api".into(),
                dockerfile: "services/api/Dockerfile".into(),
                hardcoded_arch: false,
            },
            Found {
                key: "api-dev".into(),
                context: "services/api".into(),
                dockerfile: "services/api/Dockerfile.dev".into(),
                hardcoded_arch: true,
            },
        ];
        let text = render("shop", &found);
        let raw: crate::config::RawConfig = toml::from_str(&text).unwrap();
        let images = raw.images.unwrap();
        assert_eq!(images.keys().collect::<Vec<_>>(), ["api", "api-dev"]);
        assert_eq!(images["api"].dockerfile, None);
        assert_eq!(
            images["api-dev"].dockerfile.as_deref(),
            Some("services/api/Dockerfile.dev")
        );
        assert!(text.starts_with("#:schema ./multiarch.schema.json\n"));
        assert!(text.contains("{{ version }}"));
    }
}
