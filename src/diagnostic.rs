//! Compiler diagnostics as data, and the one renderer (codespan-reporting).
//!
//! Every stage has its own error enum; each converts into a [`Diagnostic`] in one
//! `to_diagnostic()` so that wording lives in one place per stage.

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

use crate::syntax::ast::Span;

/// One labelled span of a diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// An error fails compilation; a warning (code `W…`) is shown and compilation goes on,
/// unless the caller denies warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One error or warning: a stable code, a short title, labels on the spans involved and
/// notes (`help: …`, `note: …`).
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error.
    pub fn new(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, code, message: message.into(), labels: Vec::new(), notes: Vec::new() }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::new(code, message) }
    }

    /// A warning turned into an error (`--deny warnings`).
    pub fn denied(mut self) -> Diagnostic {
        if self.severity == Severity::Warning {
            self.severity = Severity::Error;
            self.notes.push("note: warnings are denied (`--deny warnings`)".into());
        }
        self
    }

    pub fn primary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into(), primary: true });
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    pub fn help(mut self, text: impl Into<String>) -> Diagnostic {
        self.notes.push(format!("help: {}", text.into()));
        self
    }

    pub fn note(mut self, text: impl Into<String>) -> Diagnostic {
        self.notes.push(format!("note: {}", text.into()));
        self
    }

    /// Where the diagnostic sorts: its first primary label.
    pub fn position(&self) -> Span {
        self.labels.iter().find(|l| l.primary).or(self.labels.first()).map_or(Span::default(), |l| l.span)
    }
}

/// Diagnostics of one source file, sorted by position, with the text they point into.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    pub path: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(path: &str, source: &str, mut items: Vec<Diagnostic>) -> Diagnostics {
        items.sort_by_key(|d| (d.position(), d.code));
        items.dedup();
        Diagnostics { path: path.to_string(), source: source.to_string(), items }
    }

    /// How many of the items are errors and how many warnings.
    pub fn counts(&self) -> (usize, usize) {
        let warnings = self.items.iter().filter(|d| d.severity == Severity::Warning).count();
        (self.items.len() - warnings, warnings)
    }

    fn to_codespan(&self, d: &Diagnostic) -> cs::Diagnostic<()> {
        let len = self.source.len();
        let clamp = |s: Span| {
            let start = floor_char_boundary(&self.source, s.start.min(len));
            let end = floor_char_boundary(&self.source, s.end.min(len)).max(start);
            start..end
        };
        let labels = d
            .labels
            .iter()
            .map(|l| {
                let label = if l.primary {
                    cs::Label::primary((), clamp(l.span))
                } else {
                    cs::Label::secondary((), clamp(l.span))
                };
                label.with_message(&l.message)
            })
            .collect();
        let severity = match d.severity {
            Severity::Error => cs::Severity::Error,
            Severity::Warning => cs::Severity::Warning,
        };
        cs::Diagnostic::new(severity)
            .with_code(d.code)
            .with_message(&d.message)
            .with_labels(labels)
            .with_notes(d.notes.clone())
    }

    /// Renders every diagnostic as plain text (no colour), as snapshots and `--json` use it.
    pub fn render(&self) -> String {
        let file = SimpleFile::new(&self.path, &self.source);
        let config = term::Config::default();
        let mut out = String::new();
        for d in &self.items {
            // Rendering into a String cannot fail: spans are clamped to the source above.
            let _ = term::emit_to_string(&mut out, &config, &file, &self.to_codespan(d));
        }
        out
    }

    /// Renders into a colour-capable writer (the terminal).
    pub fn emit(&self, writer: &mut dyn term::termcolor::WriteColor) -> std::io::Result<()> {
        let file = SimpleFile::new(&self.path, &self.source);
        let config = term::Config::default();
        for d in &self.items {
            term::emit_to_write_style(writer, &config, &file, &self.to_codespan(d)).map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

/// The largest char boundary of `s` at or below `i` (`i` at most `s.len()`).
pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
