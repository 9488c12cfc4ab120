//! Compiler diagnostics as data, and the one renderer (codespan-reporting).
//!
//! Every stage has its own error enum; each converts into a [`Diagnostic`] in one
//! `to_diagnostic()` so that wording lives in one place per stage.

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Files, SimpleFile};
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

    /// Renders the diagnostics as plain text (no colour), as snapshots and `--json` use it:
    /// the first [`MAX_SHOWN`], then a line counting the rest.
    pub fn render(&self) -> String {
        let mut out = term::termcolor::NoColor::new(Vec::new());
        // Writing into memory cannot fail: spans are clamped to the source.
        let _ = self.emit(&mut out);
        String::from_utf8_lossy(&out.into_inner()).into_owned()
    }

    /// Renders into a colour-capable writer (the terminal), as [`Diagnostics::render`].
    pub fn emit(&self, writer: &mut dyn term::termcolor::WriteColor) -> std::io::Result<()> {
        let config = term::Config::default();
        let long_lines = has_long_line(&self.source);
        for d in self.items.iter().take(MAX_SHOWN) {
            let d = self.to_codespan(d);
            let done = if long_lines {
                let view = Excerpt::new(&self.path, &self.source, &d);
                term::emit_to_write_style(writer, &config, &view, &view.relabel(d))
            } else {
                term::emit_to_write_style(writer, &config, &SimpleFile::new(&self.path, &self.source), &d)
            };
            done.map_err(std::io::Error::other)?;
        }
        if let Some(more) = self.more() {
            term::emit_to_write_style(writer, &config, &SimpleFile::new(&self.path, ""), &more)
                .map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    /// The closing note when more than [`MAX_SHOWN`] diagnostics were found.
    fn more(&self) -> Option<cs::Diagnostic<()>> {
        let hidden = self.items.len().checked_sub(MAX_SHOWN).filter(|&n| n > 0)?;
        let (errors, warnings) = Diagnostics::new(&self.path, "", self.items[MAX_SHOWN..].to_vec()).counts();
        let what = match (errors, warnings) {
            (e, 0) => plural(e, "error"),
            (0, w) => plural(w, "warning"),
            (e, w) => format!("{} and {}", plural(e, "error"), plural(w, "warning")),
        };
        Some(cs::Diagnostic::note().with_message(format!(
            "{hidden} more not shown ({what}): only the first {MAX_SHOWN} are printed; fix these and check again"
        )))
    }
}

/// How many diagnostics of one file are printed; the rest are counted in one line (the
/// summary still counts every one). A file of 100,000 mistakes prints a screenful.
pub const MAX_SHOWN: usize = 50;

/// Source lines longer than this many bytes are shown as a window of this size around the
/// labels on them, `…` marking the cuts, so that a 400 KB line is never printed whole.
pub const MAX_LINE_SHOWN: usize = 160;

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn has_long_line(source: &str) -> bool {
    source.split('\n').any(|l| l.len() > MAX_LINE_SHOWN)
}

/// The source as one diagnostic shows it: every line longer than [`MAX_LINE_SHOWN`] cut to
/// a window around its first label (or its start), with line numbers and columns those of
/// the original text.
struct Excerpt<'a> {
    file: SimpleFile<&'a str, String>,
    original: &'a str,
    /// `(start in the view, start in the original, length)` of each copied run, in order.
    runs: Vec<(usize, usize, usize)>,
}

impl<'a> Excerpt<'a> {
    fn new(path: &'a str, source: &'a str, d: &cs::Diagnostic<()>) -> Excerpt<'a> {
        let (mut text, mut runs) = (String::new(), Vec::new());
        let mut copy = |text: &mut String, from: usize, to: usize| {
            runs.push((text.len(), from, to - from));
            text.push_str(&source[from..to]);
        };
        let mut start = 0;
        while start < source.len() {
            let end = source[start..].find('\n').map_or(source.len(), |i| start + i);
            if end - start <= MAX_LINE_SHOWN {
                copy(&mut text, start, (end + 1).min(source.len()));
            } else {
                let anchor = d.labels.iter().map(|l| l.range.start).filter(|&p| p >= start && p <= end).min();
                let lo = floor_char_boundary(
                    source,
                    anchor.map_or(start, |a| a.saturating_sub(MAX_LINE_SHOWN / 4).max(start)),
                );
                let hi = floor_char_boundary(source, (lo + MAX_LINE_SHOWN).min(end));
                if lo > start {
                    text.push('…');
                }
                copy(&mut text, lo, hi);
                if hi < end {
                    text.push('…');
                }
                if end < source.len() {
                    copy(&mut text, end, end + 1);
                }
            }
            start = end + 1;
        }
        Excerpt { file: SimpleFile::new(path, text), original: source, runs }
    }

    /// Where an original byte offset lands in the view (a cut offset: the window's edge).
    fn view_of(&self, at: usize) -> usize {
        let i = self.runs.partition_point(|r| r.1 <= at).saturating_sub(1);
        self.runs.get(i).map_or(0, |&(view, orig, len)| view + (at.saturating_sub(orig)).min(len))
    }

    /// The original byte offset of a position in the view.
    fn original_of(&self, at: usize) -> usize {
        let i = self.runs.partition_point(|r| r.0 <= at).saturating_sub(1);
        self.runs.get(i).map_or(0, |&(view, orig, len)| orig + (at.saturating_sub(view)).min(len))
    }

    /// The diagnostic with its labels moved into the view.
    fn relabel(&self, mut d: cs::Diagnostic<()>) -> cs::Diagnostic<()> {
        for l in &mut d.labels {
            let start = self.view_of(l.range.start);
            l.range = start..self.view_of(l.range.end).max(start);
        }
        d
    }
}

impl<'a> codespan_reporting::files::Files<'a> for Excerpt<'a> {
    type FileId = ();
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: ()) -> Result<&'a str, codespan_reporting::files::Error> {
        Files::name(&self.file, id)
    }

    fn source(&'a self, id: ()) -> Result<&'a str, codespan_reporting::files::Error> {
        Files::source(&self.file, id)
    }

    fn line_index(&'a self, id: (), byte_index: usize) -> Result<usize, codespan_reporting::files::Error> {
        Files::line_index(&self.file, id, byte_index)
    }

    fn line_range(
        &'a self,
        id: (),
        line_index: usize,
    ) -> Result<std::ops::Range<usize>, codespan_reporting::files::Error> {
        Files::line_range(&self.file, id, line_index)
    }

    /// The column in the original line, not in the cut one.
    fn column_number(&'a self, _: (), _: usize, byte_index: usize) -> Result<usize, codespan_reporting::files::Error> {
        let at = floor_char_boundary(self.original, self.original_of(byte_index).min(self.original.len()));
        let line_start = self.original[..at].rfind('\n').map_or(0, |i| i + 1);
        Ok(self.original[line_start..at].chars().count() + 1)
    }
}

/// The largest char boundary of `s` at or below `i` (`i` at most `s.len()`).
pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
