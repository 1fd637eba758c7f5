//! `multiarch check`, `schema` and `init` as a user meets them:
//!
//! * every project under `examples/` checks clean and validates against the checked-in schema;
//! * `schema/multiarch.schema.json` is exactly what `multiarch schema` prints
//!   (`SNAPSHOTS=overwrite cargo test --test integration check::` rewrites it);
//! * every file under `tests/invalid/` is refused with exit code 2, nothing on stdout, and its
//!   messages snapshotted (review them with `cargo insta review`);
//! * `init` writes a starter file that passes `check`.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::common::{repo, Test};

/// Every example project folder (those holding a multiarch.toml), sorted.
fn examples() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.join("multiarch.toml").is_file())
        .collect();
    out.sort();
    out
}

/// Replaces this checkout's absolute path, which differs between machines.
fn normalise(text: &str) -> String {
    let root = repo().display().to_string();
    text.replace(&root, "[REPO]")
}

#[test]
fn every_example_checks_clean() {
    let all = examples();
    assert!(
        all.len() >= 5,
        "expected at least five examples, found {all:?}"
    );
    for dir in all {
        let out = Test::new()
            .args(["check", "--color", "never", "-f"])
            .args([dir.join("multiarch.toml")])
            .code(0);
        assert!(
            out.stdout.contains(": ok: "),
            "{}: {}",
            dir.display(),
            out.stdout
        );
        assert_eq!(out.stderr, "", "{}", dir.display());
    }
}

#[test]
fn every_example_names_the_schema_for_editors() {
    for dir in examples() {
        let text = std::fs::read_to_string(dir.join("multiarch.toml")).unwrap();
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            "#:schema ../../schema/multiarch.schema.json",
            "{}",
            dir.display()
        );
        assert!(dir.join(&first["#:schema ".len()..]).is_file());
    }
}

#[test]
fn examples_are_checked_from_their_own_folder_too() {
    // A relative `-f` and the default file name resolve paths the same way.
    let out = Test::new()
        .dir(repo().join("examples/monorepo"))
        .args(["check", "--color", "never"])
        .code(0);
    assert!(
        out.stdout
            .starts_with("multiarch.toml: ok: 3 images (base, api, worker)"),
        "{}",
        out.stdout
    );
}

fn schema_path() -> PathBuf {
    repo().join("schema/multiarch.schema.json")
}

#[test]
fn checked_in_schema_is_current() {
    crate::common::assert_checked_in(
        &["schema"],
        "schema/multiarch.schema.json",
        "check::checked_in_schema_is_current",
    );
}

#[test]
fn every_example_validates_against_the_schema() {
    let schema: Json =
        serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    for dir in examples() {
        let text = std::fs::read_to_string(dir.join("multiarch.toml")).unwrap();
        let value: Json = toml::from_str(&text).unwrap();
        let mut errors = Vec::new();
        validate(&schema, &schema, &value, "", &mut errors);
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            dir.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn the_schema_validator_catches_what_it_should() {
    // The validator below is ours, so it is tested too: against files it must refuse.
    let schema: Json =
        serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    for (text, expect) in [
        ("[image.app]\n", "/image: unknown key"),
        (
            "[images.app]\nplatforms = \"linux/amd64\"\n",
            "/images/app/platforms: expected array",
        ),
        (
            "[builder]\ndriver = \"docker_container\"\n",
            "/builder/driver: not one of",
        ),
        (
            "[[builder.nodes]]\nname = 1\n",
            "/builder/nodes/0/name: expected string",
        ),
    ] {
        let value: Json = toml::from_str(text).unwrap();
        let mut errors = Vec::new();
        validate(&schema, &schema, &value, "", &mut errors);
        assert!(
            errors.iter().any(|e| e.starts_with(expect)),
            "{text:?}: {errors:?}"
        );
    }
}

/// A small JSON Schema (draft 7) validator for the keywords our schema uses. It is
/// deliberately independent of `src/shape.rs`, which walks the same schema: two readings of
/// one schema that agree on the examples. An unknown keyword fails loudly, so the validator
/// cannot silently skip a rule the schema grows later.
fn validate(root: &Json, schema: &Json, value: &Json, at: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        return; // `true`: anything goes
    };
    for key in obj.keys() {
        let known = [
            "$schema",
            "$ref",
            "title",
            "description",
            "type",
            "properties",
            "additionalProperties",
            "items",
            "oneOf",
            "anyOf",
            "const",
            "enum",
            "definitions",
            "default",
            "examples",
            "pattern",
            "format",
            "minimum",
            "maximum",
        ];
        assert!(
            known.contains(&key.as_str()),
            "the test validator does not know `{key}`"
        );
    }
    if let Some(r) = obj.get("$ref").and_then(Json::as_str) {
        let target = root
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
        validate(root, target, value, at, errors);
    }
    if let Some(t) = obj.get("type").and_then(Json::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            other => panic!("type {other}"),
        };
        if !ok {
            errors.push(format!("{at}: expected {t}, found {value}"));
            return;
        }
    }
    if let Some(c) = obj.get("const") {
        if c != value {
            errors.push(format!("{at}: expected {c}"));
        }
    }
    if let Some(e) = obj.get("enum").and_then(Json::as_array) {
        if !e.contains(value) {
            errors.push(format!("{at}: not one of {e:?}"));
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = obj.get(key).and_then(Json::as_array) {
            let passing = alts
                .iter()
                .filter(|alt| {
                    let mut e = Vec::new();
                    validate(root, alt, value, at, &mut e);
                    e.is_empty()
                })
                .count();
            let ok = if key == "oneOf" {
                passing == 1
            } else {
                passing >= 1
            };
            if !ok {
                errors.push(format!("{at}: not one of the {} alternatives", alts.len()));
            }
        }
    }
    if let (Some(map), true) = (
        value.as_object(),
        obj.contains_key("properties") || obj.contains_key("additionalProperties"),
    ) {
        let props = obj.get("properties").and_then(Json::as_object);
        for (k, v) in map {
            let here = format!("{at}/{k}");
            match (
                props.and_then(|p| p.get(k)),
                obj.get("additionalProperties"),
            ) {
                (Some(sub), _) => validate(root, sub, v, &here, errors),
                (None, Some(Json::Bool(false))) => errors.push(format!("{here}: unknown key")),
                (None, Some(sub)) => validate(root, sub, v, &here, errors),
                (None, None) => {}
            }
        }
    }
    if let (Some(items), Some(list)) = (obj.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            validate(root, items, v, &format!("{at}/{i}"), errors);
        }
    }
}

/// Runs `check` on one invalid case (a path under tests/invalid/, run from that folder so the
/// file name shown is short) and returns its stderr, after asserting what every refusal shares.
fn refused(case: &str) -> String {
    let out = Test::new()
        .dir(repo().join("tests/invalid"))
        .args(["check", "--color", "never", "-f", case])
        .run();
    assert_eq!(
        out.code, 2,
        "{case}: expected exit code 2 (invalid input), got {}\n--- stderr\n{}",
        out.code, out.stderr
    );
    assert_eq!(
        out.stdout, "",
        "{case}: nothing belongs on stdout when the file is refused"
    );
    assert!(!out.stderr.contains("panicked"), "{case}: {}", out.stderr);
    let problems = out.stderr.matches("  × ").count();
    assert!(problems > 0, "{case}: no problem reported\n{}", out.stderr);
    assert_eq!(
        out.stderr.matches("  help: ").count(),
        problems,
        "{case}: every problem says how to fix it\n{}",
        out.stderr
    );
    normalise(&out.stderr)
}

macro_rules! invalid_cases {
    ($($name:ident => $file:literal,)*) => {
        /// One test per file of the invalid catalogue.
        mod invalid {
            use super::refused;
            $(
                #[test]
                fn $name() {
                    let stderr = refused($file);
                    insta::assert_snapshot!(stringify!($name), stderr);
                }
            )*
        }

        /// Every file of tests/invalid/ has its test (and no test names a missing file).
        const INVALID_CASES: &[&str] = &[$($file),*];
    };
}

invalid_cases! {
    bad_build_arg_name => "bad-build-arg-name.toml",
    bad_version_from_env => "bad-version-from-env.toml",
    bad_version_from => "bad-version-from.toml",
    build_arg_looks_like_secret => "build-arg-looks-like-secret.toml",
    tag_reads_password => "tag-reads-password.toml",
    comments_only => "comments-only.toml",
    cycle_three_images => "cycle-three-images.toml",
    cycle_two_images => "cycle-two-images.toml",
    docker_driver_with_nodes => "docker-driver-with-nodes.toml",
    dockerhub_without_namespace => "dockerhub-without-namespace.toml",
    duplicate_key => "duplicate-key.toml",
    duplicate_node_names => "duplicate-node-names.toml",
    empty_registries => "empty-registries.toml",
    empty_tags => "empty-tags.toml",
    empty => "empty.toml",
    enum_cache => "enum-cache.toml",
    enum_driver => "enum-driver.toml",
    enum_emulation => "enum-emulation.toml",
    enum_network => "enum-network.toml",
    enum_strategy => "enum-strategy.toml",
    host_bad_port => "host-bad-port.toml",
    host_with_path => "host-with-path.toml",
    host_with_scheme => "host-with-scheme.toml",
    image_key_not_a_repository => "image-key-not-a-repository.toml",
    image_without_platforms => "image-without-platforms.toml",
    image_without_registries => "image-without-registries.toml",
    invalid_project_name => "invalid-project-name.toml",
    invalid_workflow_name => "invalid-workflow-name.toml",
    many_errors => "many-errors.toml",
    missing_context => "missing-context.toml",
    missing_dockerfile => "missing-dockerfile.toml",
    namespace_invalid => "namespace-invalid.toml",
    no_images => "no-images.toml",
    node_without_endpoint => "node-without-endpoint.toml",
    not_utf8 => "not-utf8.toml",
    password_env_is_the_secret => "password-env-is-the-secret.toml",
    password_key => "password-key.toml",
    platform_duplicate_alias => "platform-duplicate-alias.toml",
    platform_empty_list => "platform-empty-list.toml",
    platform_no_os => "platform-no-os.toml",
    platform_os_arch_swapped => "platform-os-arch-swapped.toml",
    platform_unknown_arch => "platform-unknown-arch.toml",
    platform_unknown_os => "platform-unknown-os.toml",
    platform_uppercase => "platform-uppercase.toml",
    registry_platforms_leave_nothing => "registry-platforms-leave-nothing.toml",
    registry_without_host => "registry-without-host.toml",
    repository_invalid_characters => "repository-invalid-characters.toml",
    repository_uppercase => "repository-uppercase.toml",
    runner_bad_platform => "runner-bad-platform.toml",
    same_repository_and_tag => "same-repository-and-tag.toml",
    self_dependency => "self-dependency.toml",
    snake_case_key => "snake-case-key.toml",
    tag_listed_twice => "tag-listed-twice.toml",
    tag_literal_invalid => "tag-literal-invalid.toml",
    tag_template_env_without_name => "tag-template-env-without-name.toml",
    tag_template_syntax_error => "tag-template-syntax-error.toml",
    tag_template_unknown_variable => "tag-template-unknown-variable.toml",
    token_value => "token-value.toml",
    toml_syntax_error => "toml-syntax-error.toml",
    type_array_of_images => "type-array-of-images.toml",
    type_int_for_string => "type-int-for-string.toml",
    type_string_for_bool => "type-string-for-bool.toml",
    type_string_for_list => "type-string-for-list.toml",
    type_table_for_string => "type-table-for-string.toml",
    unknown_depends_on => "unknown-depends-on.toml",
    unknown_key_nested => "unknown-key-nested.toml",
    unknown_key_top_level => "unknown-key-top-level.toml",
    unknown_registry => "unknown-registry.toml",
    username_env_without_password_env => "username-env-without-password-env.toml",
    context_without_dockerfile => "context-without-dockerfile/multiarch.toml",
}

#[test]
fn every_invalid_file_has_a_test() {
    let dir = repo().join("tests/invalid");
    let mut on_disk: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            assert!(
                path.join("multiarch.toml").is_file(),
                "{name}/ holds no multiarch.toml"
            );
            on_disk.push(format!("{name}/multiarch.toml"));
        } else if name.ends_with(".toml") {
            on_disk.push(name);
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = INVALID_CASES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "add the new file to invalid_cases! in tests/integration/check.rs"
    );
    assert!(
        listed.len() >= 45,
        "the catalogue has only {} cases",
        listed.len()
    );
}

#[test]
fn a_file_with_many_problems_reports_them_all() {
    let stderr = refused("many-errors.toml");
    for expected in [
        "project name \"Shop Front\" is not valid",
        "`release.version-from` cannot be \"tag\"",
        "platform \"aarch64\" has no operating system",
        "unknown registry \"gchr\"",
        "does not compile",
        "\"latest!\"",
        "https://docker.io",
        "`password`",
        "namespace",
        "unknown key `platfroms`",
        "unknown cache \"s3\"",
        "`images.api.network` cannot be \"bridge\"",
        "depends-on cycle: api -> worker -> api",
        "keys are kebab-case: write `build-args`",
        "`builder.emulation` cannot be \"sometimes\"",
        "has no `endpoint`",
        "platform \"arm64\" has no operating system",
        "an empty tag pattern matches nothing",
        "build context \"web\" of image \"web\" is not a folder",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
    let summary = stderr.lines().last().unwrap();
    assert!(
        summary.starts_with("error: ") && summary.ends_with("problems found; nothing was done"),
        "{summary}"
    );
}

#[test]
fn a_missing_project_file_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = Test::new()
        .dir(dir.path())
        .args(["check", "--color", "never"])
        .code(2);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("cannot read multiarch.toml"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("multiarch init"), "{}", out.stderr);
}

#[test]
fn a_schema_line_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let body = "#:schema https://example.com/multiarch.schema.json\n[defaults]\nplatforms = [\"linux/amd64\"]\nregistries = [\"local\"]\n[registries.local]\nhost = \"localhost:5000\"\n[images.app]\n";
    std::fs::write(dir.path().join("multiarch.toml"), body).unwrap();
    Test::new().dir(dir.path()).args(["check"]).code(0);
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `multiarch init`.
mod init {
    use super::{normalise, write};
    use crate::common::Test;

    /// A project folder with a recognisable name, inside a temporary folder.
    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("My Shop");
        std::fs::create_dir(&dir).unwrap();
        for (rel, text) in files {
            write(&dir, rel, text);
        }
        (tmp, dir)
    }

    #[test]
    fn writes_a_starter_from_the_dockerfiles_found_and_it_checks_clean() {
        let (_tmp, dir) = project(&[
            ("Dockerfile", "FROM scratch\n"),
            ("services/api/Dockerfile", "FROM scratch\nARG TARGETARCH\n"),
            ("services/api/Dockerfile.debug", "FROM scratch\n"),
            (
                "web/Web_UI/Dockerfile",
                "FROM nginx\nADD https://example.com/tool-amd64 /usr/bin/tool\n",
            ),
            ("tools/migrate.Dockerfile", "FROM scratch\n"),
            ("node_modules/pkg/Dockerfile", "FROM scratch\n"),
            (".git/Dockerfile", "FROM scratch\n"),
            ("target/Dockerfile", "FROM scratch\n"),
            ("vendor/lib/Dockerfile", "FROM scratch\n"),
            ("a/b/c/d/Dockerfile", "FROM scratch\n"),
            ("docs/README.md", "no Dockerfile here\n"),
        ]);
        let out = Test::new().dir(&dir).args(["init"]).code(0);
        assert_eq!(out.stdout, "");
        insta::assert_snapshot!(
            "init_stderr",
            normalise(&out.stderr).replace(&dir.display().to_string(), "[DIR]")
        );
        let text = std::fs::read_to_string(dir.join("multiarch.toml")).unwrap();
        insta::assert_snapshot!("init_starter", text);
        // The schema it names is written next to it, and is the current one.
        let schema = std::fs::read_to_string(dir.join("multiarch.schema.json")).unwrap();
        assert_eq!(schema, Test::new().args(["schema"]).code(0).stdout);
        // What init writes is a valid project as it stands.
        let out = Test::new()
            .dir(&dir)
            .args(["check", "--color", "never"])
            .code(0);
        assert!(
            out.stdout.starts_with(
                "multiarch.toml: ok: 5 images (my-shop, migrate, api, api-debug, web-ui)"
            ),
            "{}",
            out.stdout
        );
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let (_tmp, dir) = project(&[
            ("Dockerfile", "FROM scratch\n"),
            ("multiarch.toml", "# mine\n"),
        ]);
        let out = Test::new()
            .dir(&dir)
            .args(["init", "--color", "never"])
            .code(2);
        assert_eq!(out.stdout, "");
        assert!(
            out.stderr.contains("multiarch.toml already exists"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("--force"), "{}", out.stderr);
        assert_eq!(
            std::fs::read_to_string(dir.join("multiarch.toml")).unwrap(),
            "# mine\n"
        );
        assert!(
            !dir.join("multiarch.schema.json").exists(),
            "nothing is written when refused"
        );

        Test::new().dir(&dir).args(["init", "--force"]).code(0);
        let text = std::fs::read_to_string(dir.join("multiarch.toml")).unwrap();
        assert!(text.contains("[images.my-shop]"), "{text}");
        Test::new().dir(&dir).args(["check"]).code(0);
    }

    #[test]
    fn without_a_dockerfile_writes_one_image_and_says_so() {
        let (_tmp, dir) = project(&[("src/main.c", "int main(void) { return 0; }\n")]);
        let out = Test::new().dir(&dir).args(["init"]).code(0);
        assert!(out.stderr.contains("no Dockerfile found"), "{}", out.stderr);
        let text = std::fs::read_to_string(dir.join("multiarch.toml")).unwrap();
        assert!(
            text.contains("[images.my-shop]\ncontext = \".\"\n"),
            "{text}"
        );
        // check names exactly what is missing; once it exists, the file is valid.
        let out = Test::new()
            .dir(&dir)
            .args(["check", "--color", "never"])
            .code(2);
        assert!(
            out.stderr
                .contains("Dockerfile \"./Dockerfile\" does not exist"),
            "{}",
            out.stderr
        );
        write(&dir, "Dockerfile", "FROM scratch\n");
        Test::new().dir(&dir).args(["check"]).code(0);
    }

    #[test]
    fn writes_where_dash_f_points() {
        let (_tmp, dir) = project(&[("deploy/app/Dockerfile", "FROM scratch\n")]);
        let out = Test::new()
            .dir(&dir)
            .args(["-f", "deploy/multiarch.toml", "init"])
            .code(0);
        assert!(
            out.stderr.contains("wrote deploy/multiarch.toml"),
            "{}",
            out.stderr
        );
        assert!(dir.join("deploy/multiarch.schema.json").is_file());
        let text = std::fs::read_to_string(dir.join("deploy/multiarch.toml")).unwrap();
        assert!(text.contains("[images.app]\ncontext = \"app\"\n"), "{text}");
        Test::new()
            .dir(&dir)
            .args(["-f", "deploy/multiarch.toml", "check"])
            .code(0);

        let out = Test::new()
            .dir(&dir)
            .args(["-f", "nowhere/multiarch.toml", "init"])
            .code(2);
        assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    }
}
