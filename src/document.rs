//! The project file as read from disk: its text, and a TOML tree that remembers where every
//! key and value stands, so that any later check can point at `file:line:col`.
//!
//! Checks name a place by its key path (`images.scorer.platforms[2]`) rather than carrying
//! spans in the serde types: the raw types stay plain (and derive a clean JSON Schema), and the
//! span is looked up only when a problem is reported.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml_edit::{Item, Value};

use crate::error::{Error, Problem, SourceFile};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Seg {
        Seg::Key(s.to_string())
    }
}

impl From<&String> for Seg {
    fn from(s: &String) -> Seg {
        Seg::Key(s.clone())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Seg {
        Seg::Index(i)
    }
}

/// Builds a key path: `path!["images", key, "platforms", 2]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => {{
        // Bound, then returned: callers often borrow the path at once, and a bare `&vec![..]`
        // would make clippy ask for an array at every call site.
        let path: Vec<$crate::document::Seg> = vec![$($crate::document::Seg::from($seg)),*];
        path
    }};
}

/// Renders a key path as a user writes it: `images.scorer.platforms[2]`.
pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if bare {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A parsed project file.
#[derive(Debug)]
pub struct Document {
    /// Path as given by the user.
    pub path: PathBuf,
    /// Text and display name, shared with every problem that points into it.
    pub source: Arc<SourceFile>,
    /// The TOML tree with spans.
    pub tree: toml_edit::Document<String>,
}

impl Document {
    /// Reads and parses a file. Errors here (missing, not UTF-8, TOML syntax) are invalid
    /// input: exit code 2.
    pub fn load(path: &Path) -> Result<Document, Error> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            let help = if e.kind() == std::io::ErrorKind::NotFound {
                "run `multiarch init` to write one, or pass its path with -f PATH"
            } else {
                "check the path and its permissions"
            };
            Error::invalid(Problem::new(format!("cannot read {name}: {e}")).help(help))
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let off = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let (line, col) = crate::error::line_col(&text, off);
            let byte = e.as_bytes().get(off).copied().unwrap_or(0);
            Error::invalid(
                Problem::new(format!(
                    "{name}:{line}:{col}: the file is not valid UTF-8 (byte 0x{byte:02X} at offset {off})"
                ))
                .help(
                    "save the file as UTF-8; from Latin-1, for example: iconv -f latin1 -t utf-8 FILE > FILE.new",
                ),
            )
        })?;
        Document::parse(name, path.to_path_buf(), text)
    }

    /// Parses text already in memory.
    pub fn parse(name: String, path: PathBuf, text: String) -> Result<Document, Error> {
        let source = Arc::new(SourceFile {
            name,
            text: Arc::from(text.as_str()),
        });
        if text.trim().is_empty() {
            return Err(Error::invalid(
                Problem::new(format!("{} is empty", source.name)).help(
                    "declare at least one image, e.g.\n[images.app]\ncontext = \".\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
                     (or run `multiarch init`)",
                ),
            ));
        }
        let tree = toml_edit::Document::parse(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            let span = e.span();
            let at = span
                .clone()
                .and_then(|s| source.text.get(s))
                .unwrap_or("")
                .trim()
                .to_string();
            let (message, help) = if msg.starts_with("duplicate key") && !at.is_empty() {
                (
                    format!("`{at}` is set twice in the same table"),
                    "keep one of the two lines".to_string(),
                )
            } else {
                (
                    format!("TOML syntax error: {msg}"),
                    "fix the TOML syntax here (a missing quote, bracket or comma is the usual cause); see https://toml.io".to_string(),
                )
            };
            Error::invalid(Problem::new(message).at(&source, span).help(help))
        })?;
        Ok(Document { path, source, tree })
    }

    /// The item at a key path, if present.
    pub fn get(&self, path: &[Seg]) -> Option<&Item> {
        let mut item = self.tree.as_item();
        for seg in path {
            item = match seg {
                Seg::Key(k) => item.get(k.as_str())?,
                Seg::Index(i) => item.get(*i)?,
            };
        }
        Some(item)
    }

    /// Span of the value at `path`, or of the nearest ancestor that has one.
    pub fn span_of(&self, path: &[Seg]) -> Option<Range<usize>> {
        for n in (0..=path.len()).rev() {
            if let Some(span) = self.get(&path[..n]).and_then(item_span) {
                return Some(span);
            }
            // A table that has no span of its own (implicit) is found through its key.
            if n > 0 {
                if let Some(span) = self.key_span(&path[..n]) {
                    return Some(span);
                }
            }
        }
        None
    }

    /// Span of the key that names the last segment of `path` (for unknown keys).
    pub fn key_span(&self, path: &[Seg]) -> Option<Range<usize>> {
        let (last, parent) = path.split_last()?;
        let Seg::Key(k) = last else {
            return self.get(path).and_then(item_span);
        };
        let parent = self.get(parent)?;
        let key = match parent {
            Item::Table(t) => t.key(k).and_then(|k| k.span()),
            Item::Value(Value::InlineTable(t)) => t.key(k).and_then(|k| k.span()),
            _ => None,
        };
        key.or_else(|| self.get(path).and_then(item_span))
    }

    /// A problem pointing at the value at `path`.
    pub fn problem_at(&self, path: &[Seg], message: impl Into<String>) -> Problem {
        Problem::new(message).at(&self.source, self.span_of(path))
    }

    /// A problem pointing at the key at `path`.
    pub fn problem_at_key(&self, path: &[Seg], message: impl Into<String>) -> Problem {
        let span = self.key_span(path).or_else(|| self.span_of(path));
        Problem::new(message).at(&self.source, span)
    }

    /// The folder that relative paths in the file are relative to.
    pub fn root(&self) -> PathBuf {
        let parent = self.path.parent().unwrap_or(Path::new(""));
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
    }
}

fn item_span(item: &Item) -> Option<Range<usize>> {
    match item {
        Item::None => None,
        Item::Value(v) => v.span(),
        Item::Table(t) => t.span(),
        Item::ArrayOfTables(a) => a.span(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse("t.toml".into(), "t.toml".into(), text.into()).unwrap()
    }

    #[test]
    fn finds_spans_by_path() {
        let text = "[images.app]\nplatforms = [\"linux/amd64\", \"arm64\"]\n[[builder.nodes]]\nname = \"a\"\n";
        let d = doc(text);
        let span = d.span_of(&path!["images", "app", "platforms", 1]).unwrap();
        assert_eq!(&text[span], "\"arm64\"");
        let span = d.key_span(&path!["images", "app", "platforms"]).unwrap();
        assert_eq!(&text[span], "platforms");
        let span = d.span_of(&path!["builder", "nodes", 0, "name"]).unwrap();
        assert_eq!(&text[span], "\"a\"");
        assert_eq!(
            display_path(&path!["images", "my app", "tags", 0]),
            "images.\"my app\".tags[0]"
        );
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let e = Document::parse("t.toml".into(), "t.toml".into(), "a = \n".into()).unwrap_err();
        assert!(e.problems()[0].location().unwrap().starts_with("t.toml:1:"));
    }
}
