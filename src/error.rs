//! One error type for the whole tool, and the one place where errors become exit codes.
//!
//! * [`Error::Invalid`]: the input is wrong (project file, flags, plan file): exit code 2.
//!   It carries *every* problem found, each pointing into its file when it has a place there.
//! * [`Error::Failed`]: something failed at run time (a step, a registry, a mismatch found by
//!   verify): exit code 1.
//!
//! Problems render through miette, so a user sees `multiarch.toml:12:5`, the offending line
//! underlined, what is wrong and a `help:` line saying how to fix it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a failure at run time.
pub const EXIT_FAILED: i32 = 1;
/// Exit code for invalid input.
pub const EXIT_INVALID: i32 = 2;

/// A file that problems can point into.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Name shown to the user (the path as given).
    pub name: String,
    /// Full text.
    pub text: Arc<str>,
}

/// One problem: what is wrong, where, and how to fix it.
#[derive(Debug, Clone)]
pub struct Problem {
    /// What is wrong, one sentence.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Byte range in `source` that the problem is about.
    pub span: Option<Range<usize>>,
    /// Short text under the underline.
    pub label: Option<String>,
    /// The file the span points into.
    pub source: Option<Arc<SourceFile>>,
}

impl Problem {
    /// A problem with no place in a file.
    pub fn new(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            help: None,
            span: None,
            label: None,
            source: None,
        }
    }

    /// Adds the fix.
    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    /// Adds an optional fix.
    pub fn maybe_help(mut self, help: Option<String>) -> Problem {
        self.help = help;
        self
    }

    /// Points the problem at a span in a file.
    pub fn at(mut self, source: &Arc<SourceFile>, span: Option<Range<usize>>) -> Problem {
        self.source = Some(source.clone());
        self.span = span;
        self
    }

    /// Sets the label under the underline.
    pub fn label(mut self, label: impl Into<String>) -> Problem {
        self.label = Some(label.into());
        self
    }

    /// `file:line:col` of the problem, when it has one.
    pub fn location(&self) -> Option<String> {
        let (src, span) = (self.source.as_ref()?, self.span.as_ref()?);
        let (line, col) = line_col(&src.text, span.start);
        Some(format!("{}:{line}:{col}", src.name))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

/// Adapter that lets miette draw a [`Problem`] with its source snippet.
struct Drawn<'a> {
    problem: &'a Problem,
    named: Option<NamedSource<Arc<str>>>,
}

impl fmt::Debug for Drawn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.problem, f)
    }
}

impl fmt::Display for Drawn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem.location() {
            Some(loc) => write!(f, "{loc}: {}", self.problem.message),
            None => f.write_str(&self.problem.message),
        }
    }
}

impl std::error::Error for Drawn<'_> {}

impl Diagnostic for Drawn<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.named.as_ref().map(|n| n as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.problem.span.clone()?;
        self.named.as_ref()?;
        let len = span.end.saturating_sub(span.start);
        Some(Box::new(std::iter::once(LabeledSpan::new(
            self.problem.label.clone(),
            span.start,
            len,
        ))))
    }
}

/// Renders one problem as miette does, with or without colour.
pub fn render_problem(problem: &Problem, color: bool) -> String {
    let named = match (&problem.source, &problem.span) {
        (Some(src), Some(_)) => Some(NamedSource::new(src.name.clone(), src.text.clone())),
        _ => None,
    };
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    let drawn = Drawn { problem, named };
    if handler.render_report(&mut out, &drawn).is_err() {
        out = format!("error: {drawn}\n");
    }
    out
}

/// Every error the tool reports.
#[derive(Debug)]
pub enum Error {
    /// Invalid input; all problems found at once. Exit code 2.
    Invalid(Vec<Problem>),
    /// A failure at run time. Exit code 1.
    Failed(Vec<Problem>),
}

impl Error {
    /// A single invalid-input problem.
    pub fn invalid(p: Problem) -> Error {
        Error::Invalid(vec![p])
    }

    /// A single run-time failure.
    pub fn failed(p: Problem) -> Error {
        Error::Failed(vec![p])
    }

    /// The process exit code for this error: the only mapping in the program.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) => EXIT_INVALID,
            Error::Failed(_) => EXIT_FAILED,
        }
    }

    /// The problems carried.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Invalid(p) | Error::Failed(p) => p,
        }
    }

    /// Renders every problem, then a one-line summary.
    pub fn render(&self, color: bool) -> String {
        let problems = self.problems();
        let mut out = String::new();
        for p in problems {
            out.push_str(&render_problem(p, color));
            out.push('\n');
        }
        if let Error::Invalid(ps) = self {
            if ps.len() > 1 {
                out.push_str(&format!(
                    "error: {} problems found; nothing was done\n",
                    ps.len()
                ));
            }
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msgs: Vec<String> = self
            .problems()
            .iter()
            .map(|p| match p.location() {
                Some(l) => format!("{l}: {}", p.message),
                None => p.message.clone(),
            })
            .collect();
        f.write_str(&msgs.join("\n"))
    }
}

impl std::error::Error for Error {}

/// A result whose error is the tool's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 10), (2, 4));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::invalid(Problem::new("x")).exit_code(), 2);
        assert_eq!(Error::failed(Problem::new("x")).exit_code(), 1);
    }
}
