//! Structural checks of the project file against its own JSON Schema.
//!
//! serde stops at the first unknown key or wrong type; users want every problem at once. So,
//! before deserialising, the TOML tree is walked alongside the schema derived from
//! [`crate::config::RawConfig`] (one source of truth: the schema editors use is the one that
//! checks the file), and every unknown key (with a "did you mean"), wrong type and value outside
//! an enumeration is collected with its place in the file. Only a file that passes this walk is
//! handed to serde. Secrets written into the file are caught here too.

use serde_json::Value as Json;
use toml_edit::{Item, Value};

use crate::document::{display_path, Document, Seg};
use crate::error::Problem;
use crate::suggest::did_you_mean;

/// Keys that would hold a secret if they were allowed; the file only names environment
/// variables.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "token",
    "secret",
    "auth",
    "api-key",
    "access-token",
    "credentials",
];

/// Prefixes of well-known access tokens, with what they are.
const TOKEN_PREFIXES: &[(&str, &str)] = &[
    ("dckr_pat_", "a Docker Hub access token"),
    ("ghp_", "a GitHub personal access token"),
    ("github_pat_", "a GitHub personal access token"),
    ("gho_", "a GitHub OAuth token"),
    ("ghs_", "a GitHub Actions token"),
    ("glpat-", "a GitLab access token"),
    ("AKIA", "an AWS access key"),
];

/// Walks the whole document and returns every structural problem found, each with the key
/// path that holds it, so that the caller can set those keys aside and go on checking the rest.
pub fn check(doc: &Document, schema: &Json) -> Vec<(Vec<Seg>, Problem)> {
    let mut out = Vec::new();
    let mut walker = Walker {
        doc,
        root: schema,
        out: &mut out,
    };
    walker.item(doc.tree.as_item(), schema, &mut Vec::new());
    out
}

struct Walker<'a> {
    doc: &'a Document,
    root: &'a Json,
    out: &'a mut Vec<(Vec<Seg>, Problem)>,
}

fn kind_of(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "object",
        Item::ArrayOfTables(_) => "array",
        Item::Value(v) => match v {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "number",
            Value::Boolean(_) => "boolean",
            Value::Datetime(_) => "datetime",
            Value::Array(_) => "array",
            Value::InlineTable(_) => "object",
        },
    }
}

fn describe(kind: &str) -> &'static str {
    match kind {
        "object" => "a table",
        "array" => "a list",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "datetime" => "a date",
        _ => "nothing",
    }
}

impl<'a> Walker<'a> {
    fn resolve(&self, mut schema: &'a Json) -> &'a Json {
        let root = self.root;
        for _ in 0..16 {
            let Some(r) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn push(&mut self, path: &[Seg], p: Problem) {
        // What is set aside is the whole key: an element of a list takes its list along.
        let mut key = path.to_vec();
        while matches!(key.last(), Some(Seg::Index(_))) {
            key.pop();
        }
        self.out.push((key, p));
    }

    fn item(&mut self, item: &Item, schema: &'a Json, path: &mut Vec<Seg>) {
        let schema = self.resolve(schema);
        // Enumerations: `enum`, or `oneOf` made of `const`s (how documented unit variants
        // come out of schemars).
        if let Some(allowed) = enumeration(schema) {
            let here = display_path(path);
            match item.as_str() {
                Some(s) if allowed.iter().any(|a| a == s) => {}
                Some(s) => {
                    let help = match did_you_mean(s, allowed.iter().map(String::as_str)) {
                        Some(g) => format!("did you mean \"{g}\"? allowed: {}", quoted(&allowed)),
                        None => format!("allowed: {}", quoted(&allowed)),
                    };
                    let p = self
                        .doc
                        .problem_at(path, format!("`{here}` cannot be \"{s}\""))
                        .help(help)
                        .label("not an allowed value");
                    self.push(path, p);
                }
                None => {
                    let p = self
                        .doc
                        .problem_at(
                            path,
                            format!(
                                "`{here}` must be a string, found {}",
                                describe(kind_of(item))
                            ),
                        )
                        .help(format!("allowed: {}", quoted(&allowed)));
                    self.push(path, p);
                }
            }
            return;
        }
        let expected = schema.get("type").and_then(Json::as_str).unwrap_or("");
        let actual = kind_of(item);
        let type_ok = expected.is_empty()
            || expected == actual
            || (expected == "number" && actual == "integer");
        if !type_ok {
            let here = display_path(path);
            let key = path
                .iter()
                .rev()
                .find_map(|s| match s {
                    Seg::Key(k) => Some(k.as_str()),
                    _ => None,
                })
                .unwrap_or("key");
            let help = match (expected, actual) {
                ("array", "string") => Some(format!(
                    "write a list: {key} = [{}]",
                    item.as_value()
                        .map(|v| v.to_string().trim().to_string())
                        .unwrap_or_default()
                )),
                ("string", "integer" | "number" | "boolean") => Some(format!(
                    "quote it: {key} = \"{}\"",
                    item.as_value()
                        .map(|v| v.to_string().trim().to_string())
                        .unwrap_or_default()
                )),
                ("object", _) => Some(format!("write it as a table: [{here}]")),
                ("boolean", "string") => Some(format!(
                    "write {key} = true or {key} = false, without quotes"
                )),
                ("string", "object" | "array") => match only_string(item) {
                    // `context = { path = "." }` or `target = ["runtime"]`: the one string
                    // inside is almost certainly what was meant.
                    Some(inner) => Some(format!("write the value alone: {key} = {inner:?}")),
                    None => Some(format!("write one string: {key} = \"...\"")),
                },
                _ => Some(format!(
                    "`{key}` takes {}; `multiarch schema` describes every key",
                    describe(expected)
                )),
            };
            let p = self
                .doc
                .problem_at(
                    path,
                    format!(
                        "`{here}` must be {}, found {}",
                        describe(expected),
                        describe(actual)
                    ),
                )
                .maybe_help(help)
                .label(format!("expected {}", describe(expected)));
            self.push(path, p);
            return;
        }
        match actual {
            "object" => self.table(item, schema, path),
            "array" => {
                let items = schema.get("items");
                let len = match item {
                    Item::ArrayOfTables(a) => a.len(),
                    Item::Value(Value::Array(a)) => a.len(),
                    _ => 0,
                };
                if let Some(items) = items {
                    for i in 0..len {
                        let child = match item {
                            Item::ArrayOfTables(a) => a.get(i).map(|t| Item::Table(t.clone())),
                            Item::Value(Value::Array(a)) => {
                                a.get(i).map(|v| Item::Value(v.clone()))
                            }
                            _ => None,
                        };
                        if let Some(child) = child {
                            path.push(Seg::Index(i));
                            self.item(&child, items, path);
                            path.pop();
                        }
                    }
                }
            }
            "string" => {
                if let Some(s) = item.as_str() {
                    self.secret_value(s, path);
                }
            }
            _ => {}
        }
    }

    fn table(&mut self, item: &Item, schema: &'a Json, path: &mut Vec<Seg>) {
        let props = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        let entries: Vec<(String, Item)> = match item {
            Item::Table(t) => t.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            Item::Value(Value::InlineTable(t)) => t
                .iter()
                .map(|(k, v)| (k.to_string(), Item::Value(v.clone())))
                .collect(),
            _ => return,
        };
        for (key, child) in entries {
            path.push(Seg::Key(key.clone()));
            if let Some(sub) = props.and_then(|p| p.get(&key)) {
                self.item(&child, sub, path);
            } else if let Some(sub) = additional.filter(|a| a.is_object()) {
                self.item(&child, sub, path);
            } else {
                let names: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                self.unknown_key(&key, &names, path);
            }
            path.pop();
        }
    }

    fn unknown_key(&mut self, key: &str, names: &[&str], path: &[Seg]) {
        let parent = display_path(&path[..path.len() - 1]);
        let place = if parent.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{parent}]")
        };
        let lower = key.to_ascii_lowercase();
        let p = if SECRET_KEYS.contains(&lower.as_str()) || lower.ends_with("password") {
            let env_key = if lower.contains("user") {
                "username-env"
            } else {
                "password-env"
            };
            self.doc
                .problem_at_key(
                    path,
                    format!("`{key}` {place} would put a secret in the project file, which multiarch refuses"),
                )
                .help(format!(
                    "keep secrets in the environment: write {env_key} = \"NAME_OF_VARIABLE\" and export the secret as that variable (in CI, a repository secret of that name)"
                ))
                .label("secrets never live in multiarch.toml")
        } else {
            let help = match did_you_mean(key, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => "remove it".to_string(),
                None => format!("known keys here: {}", names.join(", ")),
            };
            let help = if key.contains('_') && names.contains(&key.replace('_', "-").as_str()) {
                format!("keys are kebab-case: write `{}`", key.replace('_', "-"))
            } else {
                help
            };
            self.doc
                .problem_at_key(path, format!("unknown key `{key}` {place}"))
                .help(help)
                .label("unknown key")
        };
        self.push(path, p);
    }

    fn secret_value(&mut self, s: &str, path: &[Seg]) {
        if let Some((_, what)) = TOKEN_PREFIXES
            .iter()
            .find(|(prefix, _)| s.starts_with(prefix) && s.len() >= prefix.len() + 16)
        {
            let p = self
                .doc
                .problem_at(
                    path,
                    format!("`{}` holds what looks like {what}", display_path(path)),
                )
                .help(
                    "remove it from the file and revoke it if it was ever committed; give the secret through an environment variable named by `password-env`",
                )
                .label("secret in the project file");
            self.push(path, p);
        }
    }
}

/// The single string inside a table or list, if that is all it holds.
fn only_string(item: &Item) -> Option<String> {
    let mut strings: Vec<String> = Vec::new();
    match item {
        Item::Value(Value::Array(a)) => {
            for v in a.iter() {
                strings.push(v.as_str()?.to_string());
            }
        }
        Item::Value(Value::InlineTable(t)) => {
            for (_, v) in t.iter() {
                strings.push(v.as_str()?.to_string());
            }
        }
        Item::Table(t) => {
            for (_, v) in t.iter() {
                strings.push(v.as_str()?.to_string());
            }
        }
        _ => return None,
    }
    (strings.len() == 1).then(|| strings.remove(0))
}

fn enumeration(schema: &Json) -> Option<Vec<String>> {
    if let Some(e) = schema.get("enum").and_then(Json::as_array) {
        return Some(
            e.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    let alts = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Json::as_array)?;
    let mut out = Vec::new();
    for alt in alts {
        if let Some(c) = alt.get("const").and_then(Json::as_str) {
            out.push(c.to_string());
        } else if let Some(e) = alt.get("enum").and_then(Json::as_array) {
            out.extend(e.iter().filter_map(|v| v.as_str().map(String::from)));
        } else {
            return None;
        }
    }
    Some(out)
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
