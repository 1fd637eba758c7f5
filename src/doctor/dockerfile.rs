//! What a Dockerfile tells about the platforms it can build: the seed's wrong-architecture
//! trap (a release binary downloaded for one architecture, whatever the target), stages pinned
//! to one platform, and the base images in `FROM`.
//!
//! This is a line scanner, not a BuildKit parser: it joins continuation lines, splits stages at
//! `FROM`, and looks at URLs in `RUN curl/wget` and `ADD`. It is meant to find the common trap,
//! and stays quiet whenever a stage shows any sign of being platform-aware.

use crate::model::{Image, Project};
use crate::platform::Platform;

use super::Check;

/// One logical instruction: continuation lines joined, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line number of the first line.
    pub line: usize,
    /// Upper-cased keyword (`FROM`, `RUN`, ...).
    pub keyword: String,
    /// Everything after the keyword.
    pub args: String,
}

/// Splits a Dockerfile into instructions (comments and blank lines dropped).
pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (cont, body) = match trimmed.strip_suffix('\\') {
            Some(b) => (true, b),
            None => (false, trimmed),
        };
        match &mut current {
            Some((_, acc)) => {
                acc.push(' ');
                acc.push_str(body.trim());
            }
            None => current = Some((i + 1, body.trim().to_string())),
        }
        if !cont {
            if let Some((line, acc)) = current.take() {
                let (kw, args) = acc.split_once(char::is_whitespace).unwrap_or((&acc, ""));
                out.push(Instruction {
                    line,
                    keyword: kw.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
            }
        }
    }
    if let Some((line, acc)) = current {
        let (kw, args) = acc.split_once(char::is_whitespace).unwrap_or((&acc, ""));
        out.push(Instruction {
            line,
            keyword: kw.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
    }
    out
}

/// Spellings of architectures in release file names, and the platform arch each means.
const ARCH_TOKENS: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("x86-64", "amd64"),
    ("amd64", "amd64"),
    ("x64", "amd64"),
    ("aarch64", "arm64"),
    ("arm64", "arm64"),
    ("armv7l", "arm"),
    ("armv7", "arm"),
    ("armhf", "arm"),
    ("i386", "386"),
    ("i686", "386"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
];

/// Signs that a stage picks its downloads per platform.
const PLATFORM_AWARE: &[&str] = &[
    "TARGETARCH",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETVARIANT",
    "uname -m",
    "dpkg --print-architecture",
    "apk --print-arch",
    "$(arch)",
    "`arch`",
];

/// The architectures hard-coded in a URL, as platform arch names (`x86_64` -> `amd64`).
pub fn arches_in(url: &str) -> Vec<&'static str> {
    let lower = url.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut out: Vec<&'static str> = Vec::new();
    for (token, arch) in ARCH_TOKENS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(token) {
            let start = from + pos;
            let end = start + token.len();
            let before = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            let after = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
            if before && after && !out.contains(arch) {
                out.push(arch);
            }
            from = end;
        }
    }
    out
}

fn urls(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for scheme in ["https://", "http://"] {
        let mut from = 0;
        while let Some(pos) = s[from..].find(scheme) {
            let start = from + pos;
            let end = s[start..]
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ')' || c == ';')
                .map_or(s.len(), |e| start + e);
            out.push(s[start..end].to_string());
            from = end;
        }
    }
    out
}

fn downloads(ins: &Instruction) -> Vec<String> {
    match ins.keyword.as_str() {
        "ADD" => urls(&ins.args),
        "RUN" => {
            let words = |w: &str| {
                ins.args
                    .split(|c: char| {
                        c.is_whitespace() || c == ';' || c == '&' || c == '|' || c == '('
                    })
                    .any(|x| x == w)
            };
            if words("curl") || words("wget") {
                urls(&ins.args)
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// A `FROM` line: the image, its `--platform`, its stage name.
#[derive(Debug, Clone, PartialEq)]
pub struct From {
    /// Line number.
    pub line: usize,
    /// The image as written (`golang:1.22`, `${BASE}`, a stage name, `scratch`).
    pub image: String,
    /// `--platform=...`, when given.
    pub platform: Option<String>,
    /// `AS name`, when given.
    pub stage: Option<String>,
}

fn parse_from(ins: &Instruction) -> From {
    let mut platform = None;
    let mut rest = Vec::new();
    for w in ins.args.split_whitespace() {
        if let Some(p) = w.strip_prefix("--platform=") {
            platform = Some(p.to_string());
        } else if !w.starts_with("--") {
            rest.push(w);
        }
    }
    let stage = match rest.as_slice() {
        [_, kw, name, ..] if kw.eq_ignore_ascii_case("as") => Some(name.to_string()),
        _ => None,
    };
    From {
        line: ins.line,
        image: rest.first().map(|s| s.to_string()).unwrap_or_default(),
        platform,
        stage,
    }
}

/// Every `FROM` of a Dockerfile.
pub fn froms(text: &str) -> Vec<From> {
    instructions(text)
        .iter()
        .filter(|i| i.keyword == "FROM")
        .map(parse_from)
        .collect()
}

/// Base images pulled from a registry for the target platforms: `FROM` images that are not an
/// earlier stage, not `scratch`, not an image of this project, and not pulled for one fixed
/// or the build platform (`--platform=`), with global `ARG` defaults and the image's build
/// args substituted; images still holding a variable are left out.
pub fn base_images(project: &Project, image: &Image, text: &str) -> Vec<(usize, String)> {
    let mut args: Vec<(String, String)> = image
        .build_args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut stages: Vec<String> = Vec::new();
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut seen_from = false;
    for ins in instructions(text) {
        if ins.keyword == "ARG" && !seen_from {
            if let Some((k, v)) = ins.args.split_once('=') {
                if !args.iter().any(|(a, _)| a == k.trim()) {
                    args.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
                }
            }
        }
        if ins.keyword != "FROM" {
            continue;
        }
        seen_from = true;
        let f = parse_from(&ins);
        let mut img = f.image.clone();
        for (k, v) in &args {
            img = img
                .replace(&format!("${{{k}}}"), v)
                .replace(&format!("${k}"), v);
        }
        let lower = img.to_ascii_lowercase();
        let ours = project.images.values().any(|i| {
            lower == i.key
                || lower.split(':').next() == Some(&i.repository)
                || lower.ends_with(&format!("/{}", i.repository))
        });
        if !img.is_empty()
            && f.platform.is_none()
            && !img.contains('$')
            && lower != "scratch"
            && !stages.iter().any(|s| s.eq_ignore_ascii_case(&img))
            && !ours
            && !out.iter().any(|(_, i)| *i == img)
        {
            out.push((f.line, img));
        }
        if let Some(s) = f.stage {
            stages.push(s);
        }
    }
    out
}

/// The Dockerfile checks of one image: downloads that ignore the target platform, stages
/// pinned to one platform.
pub fn checks(project: &Project, image: &Image, text: &str) -> Vec<Check> {
    let name = super::checks::rel(project, &image.dockerfile);
    let id = format!("dockerfile.{}", image.key);
    let ins = instructions(text);
    // Split into stages: the instructions from one FROM to the next.
    let mut stages: Vec<Vec<&Instruction>> = Vec::new();
    for i in &ins {
        if i.keyword == "FROM" || stages.is_empty() {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("pushed").push(i);
    }
    let mut findings: Vec<Check> = Vec::new();
    for stage in &stages {
        let aware = stage
            .iter()
            .any(|i| PLATFORM_AWARE.iter().any(|m| i.args.contains(m)));
        if let Some(from) = stage.first().filter(|i| i.keyword == "FROM") {
            let f = parse_from(from);
            if let Some(p) = f.platform.filter(|p| !p.contains('$')) {
                let pinned: Option<Platform> = p.parse().ok();
                let others: Vec<String> = image
                    .platforms
                    .iter()
                    .filter(|d| pinned.as_ref() != Some(*d))
                    .map(|d| d.to_string())
                    .collect();
                if !others.is_empty() {
                    findings.push(Check::warn(
                        id.clone(),
                        format!(
                            "{name}:{}: FROM --platform={p} pins this stage to one platform, so what it builds is {p} in the {} image(s) too",
                            f.line,
                            others.join(", ")
                        ),
                        format!(
                            "{name}:{}: use `FROM --platform=$BUILDPLATFORM` and cross-compile for $TARGETARCH, or drop --platform",
                            f.line
                        ),
                    ));
                }
            }
        }
        if aware {
            continue;
        }
        for i in stage {
            for url in downloads(i) {
                let arches = arches_in(&url);
                let wrong: Vec<String> = image
                    .platforms
                    .iter()
                    .filter(|p| !arches.is_empty() && !arches.contains(&p.arch.as_str()))
                    .map(|p| p.to_string())
                    .collect();
                if wrong.is_empty() {
                    continue;
                }
                let example = url.replacen(
                    ARCH_TOKENS
                        .iter()
                        .find(|(t, a)| *a == arches[0] && url.to_ascii_lowercase().contains(t))
                        .map_or(arches[0], |(t, _)| t),
                    "${TARGETARCH}",
                    1,
                );
                findings.push(Check::warn(
                    id.clone(),
                    format!(
                        "{name}:{}: downloads the {} build ({url}) without TARGETARCH/TARGETPLATFORM, so the {} image(s) get a binary that cannot run (the seed's wrong-architecture trap)",
                        i.line,
                        arches.join("/"),
                        wrong.join(", ")
                    ),
                    format!(
                        "{name}:{}: add `ARG TARGETARCH` to this stage and download {example} (map amd64->x86_64, arm64->aarch64 with a `case` where the project names them so)",
                        i.line
                    ),
                ));
            }
        }
    }
    if findings.is_empty() {
        findings.push(Check::ok(
            id,
            format!("{name}: no download hard-codes an architecture"),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::tests::project_with;
    use crate::doctor::Status;

    const TOML: &str = r#"
[project]
name = "demo"
[registries.local]
host = "127.0.0.1:5000"
[images.app]
context = "."
platforms = ["linux/amd64", "linux/arm64"]
registries = ["local"]
[images.one]
context = "one"
platforms = ["linux/amd64"]
registries = ["local"]
depends-on = ["app"]
"#;

    fn run(dockerfile: &str, key: &str) -> Vec<Check> {
        let (_d, p) = project_with(
            TOML,
            &[("Dockerfile", dockerfile), ("one/Dockerfile", dockerfile)],
        );
        checks(&p, &p.images[key], dockerfile)
    }

    #[test]
    fn joins_continuations_and_keeps_line_numbers() {
        let ins = instructions("# c\nFROM a AS b\n\nRUN x \\\n  # inside\n  && y\nCOPY . .\n");
        assert_eq!(ins.len(), 3);
        assert_eq!(ins[1].line, 4);
        assert_eq!(ins[1].args, "x && y");
        assert_eq!(ins[2].keyword, "COPY");
    }

    #[test]
    fn arch_tokens_are_delimited() {
        assert_eq!(
            arches_in("https://x/tool_1.2_linux_amd64.tar.gz"),
            ["amd64"]
        );
        assert_eq!(
            arches_in("https://x/tool-x86_64-unknown-linux-musl.tgz"),
            ["amd64"]
        );
        assert_eq!(arches_in("https://x/node-v20-linux-x64.tar.xz"), ["amd64"]);
        assert_eq!(arches_in("https://x/tool-aarch64.zip"), ["arm64"]);
        assert!(arches_in("https://x/tool-${TARGETARCH}.zip").is_empty());
        assert!(arches_in("https://example.com/samd640/readme").is_empty());
    }

    #[test]
    fn hard_coded_download_warns_with_line_and_fix() {
        let df = "FROM alpine:3.20\nRUN apk add curl \\\n && curl -fsSL https://github.com/o/t/releases/download/v1/t_linux_amd64.tar.gz | tar xz\n";
        let c = run(df, "app");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, Status::Warn);
        assert!(c[0].summary.contains("Dockerfile:2"), "{}", c[0].summary);
        assert!(c[0].summary.contains("linux/arm64"));
        assert!(c[0]
            .fix
            .as_ref()
            .unwrap()
            .contains("t_linux_${TARGETARCH}.tar.gz"));
        // an amd64-only image may download the amd64 binary
        assert_eq!(run(df, "one")[0].status, Status::Ok);
    }

    #[test]
    fn add_url_and_wget_warn() {
        let df = "FROM debian\nADD https://x/y/tool-aarch64 /usr/bin/tool\nRUN wget -q https://x/z-x86_64.tgz\n";
        let c = run(df, "app");
        assert_eq!(c.len(), 2);
        assert!(c[0].summary.contains("linux/amd64"));
        assert!(c[1].summary.contains("linux/arm64"));
    }

    #[test]
    fn platform_aware_stages_are_quiet() {
        let df = "FROM alpine\nARG TARGETARCH\nRUN case $TARGETARCH in amd64) a=x86_64;; arm64) a=aarch64;; esac \\\n && curl -L https://x/t-amd64.tgz\n";
        assert_eq!(run(df, "app")[0].status, Status::Ok);
        let df = "FROM alpine\nRUN curl -L https://x/t-$(uname -m).tgz https://x/t-amd64.tgz\n";
        assert_eq!(run(df, "app")[0].status, Status::Ok);
        // but awareness in another stage does not count
        let df =
            "FROM alpine AS a\nARG TARGETARCH\nFROM alpine\nRUN curl -LO https://x/t-amd64.tgz\n";
        assert_eq!(run(df, "app")[0].status, Status::Warn);
        // no download at all, or an arch-neutral one
        assert_eq!(
            run("FROM alpine\nRUN curl -LO https://x/script.sh\n", "app")[0].status,
            Status::Ok
        );
    }

    #[test]
    fn pinned_stage_warns() {
        let c = run(
            "FROM --platform=linux/amd64 golang:1.22 AS build\nFROM scratch\n",
            "app",
        );
        assert_eq!(c[0].status, Status::Warn);
        assert!(c[0].fix.as_ref().unwrap().contains("$BUILDPLATFORM"));
        assert_eq!(
            run("FROM --platform=$BUILDPLATFORM golang:1.22\n", "app")[0].status,
            Status::Ok
        );
        assert_eq!(
            run("FROM --platform=linux/amd64 golang\n", "one")[0].status,
            Status::Ok
        );
    }

    #[test]
    fn base_images_skip_stages_scratch_ours_and_substitute_args() {
        let (_d, p) = project_with(TOML, &[("Dockerfile", "x"), ("one/Dockerfile", "x")]);
        let df = "ARG GO=1.22\nFROM golang:${GO} AS build\nFROM build AS again\nFROM app\nFROM scratch\nFROM $UNKNOWN\nFROM --platform=$BUILDPLATFORM alpine:3.20\n";
        let b = base_images(&p, &p.images["one"], df);
        assert_eq!(
            b,
            vec![(2, "golang:1.22".to_string())],
            "--platform stages are pulled for one platform"
        );
        let b = base_images(
            &p,
            &p.images["one"],
            "FROM alpine:3.20\nFROM --platform=linux/amd64 debian\n",
        );
        assert_eq!(b, vec![(1, "alpine:3.20".to_string())]);
    }
}
