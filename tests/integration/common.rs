//! Shared test helpers: a fluent builder that runs the real `multiarch` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Path of the compiled binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_multiarch"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of an example project folder.
pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// The output of one run.
#[derive(Debug)]
pub struct Output {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A run of the binary, built step by step: `Test::new().args(["check"]).dir(d).run()`.
pub struct Test {
    cmd: Command,
}

impl Test {
    /// A run with colour off and a clean, predictable environment.
    pub fn new() -> Test {
        let mut cmd = Command::new(bin());
        cmd.env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_REF_NAME")
            .env_remove("GITHUB_REF_TYPE");
        Test { cmd }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Adds one argument (a path, say).
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Test {
        self.cmd.arg(arg);
        self
    }

    /// Sets the working directory.
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Test {
        self.cmd.current_dir(dir);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Test {
        self.cmd.env(k, v);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, k: &str) -> Test {
        self.cmd.env_remove(k);
        self
    }

    /// Runs and captures.
    pub fn run(mut self) -> Output {
        let out = self.cmd.output().expect("the multiarch binary runs");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs, asserts the exit code, and returns the output.
    pub fn code(self, expected: i32) -> Output {
        let out = self.run();
        assert_eq!(
            out.code, expected,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        );
        out
    }
}

/// True when end-to-end tests must run (CI sets MULTIARCH_E2E=1): a missing engine is then a
/// failure rather than a skip.
pub fn e2e_required() -> bool {
    std::env::var("MULTIARCH_E2E").as_deref() == Ok("1")
}

/// Skips (returns false, printing why) or fails when a real component is missing.
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if e2e_required() {
        panic!("{what} is required (MULTIARCH_E2E=1) but missing; run scripts/setup-test-env.sh");
    }
    eprintln!("skipped: {what} is not available (run scripts/setup-test-env.sh, or set MULTIARCH_E2E=1 to make this a failure)");
    false
}

/// Asserts that a checked-in file is exactly what `multiarch ARGS` prints; with
/// `SNAPSHOTS=overwrite` the file is rewritten instead.
pub fn assert_checked_in(args: &[&str], file: &str, test: &str) {
    let out = Test::new().args(args).code(0);
    let path = repo().join(file);
    if std::env::var("SNAPSHOTS").as_deref() == Ok("overwrite") {
        std::fs::write(&path, &out.stdout).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "{file} is not what `multiarch {}` prints; regenerate it with\n  SNAPSHOTS=overwrite cargo test --test integration {test}",
        args.join(" ")
    );
}
