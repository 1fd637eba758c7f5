//! Generated CI workflows.
//!
//! Workflows are rendered from minijinja templates kept as files in the crate (as cargo-dist
//! does), with YAML-safe delimiters: `{{{ }}}` for values, `{{% %}}` for blocks and `{{# #}}` for
//! comments. GitHub's own `${{ }}` expressions are therefore written in the templates as they
//! will appear in the workflow, with no escaping. Undefined variables are errors, so a typo in a
//! template fails the snapshot tests rather than producing an empty string in a release job.
//!
//! The third-party actions a workflow may use are data ([`actions`], from `actions.toml`): each
//! one pinned by full commit SHA, with its release tag as a comment.

pub mod actions;
pub mod github;
pub mod tags;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};

/// A minijinja environment with the YAML-safe syntax, strict undefined variables, and the
/// quoting filters the templates use:
///
/// * `sq`: a bash single-quoted word (`it's` -> `'it'\''s'`);
/// * `json`: a JSON string, which is also a valid YAML double-quoted scalar.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .block_delimiters("{{%", "%}}")
        .variable_delimiters("{{{", "}}}")
        .comment_delimiters("{{#", "#}}")
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("the template syntax is valid");
    env.set_syntax(syntax);
    // minijinja would JSON-escape values in `.yml` templates; quoting is explicit here instead.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("sq", |s: String| shell_quote(&s));
    env.add_filter("json", |s: String| {
        serde_json::to_string(&s).expect("a string serialises")
    });
    env
}

/// Quotes `s` as one bash word. Words made only of safe characters are left bare.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@,+%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("docker.io/x/y"), "docker.io/x/y");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("{{ version }}"), "'{{ version }}'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn yaml_safe_syntax() {
        let env = environment();
        let out = env
            .render_str(
                "a: ${{ github.ref }} {{{ x }}}",
                minijinja::context! { x => 1 },
            )
            .unwrap();
        assert_eq!(out, "a: ${{ github.ref }} 1");
        assert!(env.render_str("{{{ nope }}}", ()).is_err());
    }
}
