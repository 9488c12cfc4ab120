//! The language server's knowledge of one file: an [`Analysis`] is made once per edit
//! (parse, names, compile) and answers every request from it. `server.rs` speaks LSP over
//! a [`lsp_server::Connection`]; positions there are lines and columns, here byte offsets.
//!
//! Whatever the text, an analysis answers: a file that does not parse still has its
//! diagnostic and lexical completion; one that does not compile still has its names.

mod complete;
mod hover;
mod server;
pub mod transport;

pub use crate::sema::names::DeclKind;
pub use complete::{Completion, CompletionKind};
pub use server::{serve, ServeError, Settings};

use crate::diagnostic::Diagnostic;
use crate::ir::{Network, Section};
use crate::sema::names::Names;
use crate::syntax::{self, ast::Span};
use crate::Options;

/// One file, analysed.
pub struct Analysis {
    source: String,
    names: Names,
    networks: Vec<Network>,
    diagnostics: Vec<Diagnostic>,
}

/// A named thing of the file for the outline: networks and blocks with their parameters,
/// named widths and bindings (the network sections among them).
#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    pub name: String,
    pub kind: DeclKind,
    /// The declaring name.
    pub span: Span,
    /// The whole definition or statement.
    pub full: Span,
    pub children: Vec<Symbol>,
}

impl Analysis {
    /// `path` labels the diagnostics (the document's URI).
    pub fn new(source: &str, path: &str) -> Analysis {
        let (names, networks, diagnostics) = match syntax::parse(source) {
            Err(e) => (Names::default(), Vec::new(), vec![e.to_diagnostic()]),
            Ok(file) => {
                let names = crate::sema::name_table(&file);
                let checked = crate::check_parsed(&file, source, path, &Options::default());
                let diagnostics = checked.diagnostics(false).items;
                (names, checked.networks.unwrap_or_default(), diagnostics)
            }
        };
        Analysis { source: source.to_string(), names, networks, diagnostics }
    }

    /// Every error and warning of the file, sorted by position.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Markdown describing what is at `offset`, with the span it describes; channels, MACs
    /// and parameters at full width and at the uniform multiplier `width`.
    pub fn hover(&self, offset: usize, width: f64) -> Option<(String, Span)> {
        hover::hover(self, offset, width)
    }

    /// Where the name at `offset` is declared.
    pub fn definition(&self, offset: usize) -> Option<Span> {
        self.names.at(offset).map(|d| self.names.decls[d].span)
    }

    /// Every use of the name at `offset` in source order, its declaration first if asked.
    pub fn references(&self, offset: usize, include_declaration: bool) -> Vec<Span> {
        let Some(d) = self.names.at(offset) else { return Vec::new() };
        let decl = include_declaration.then_some(self.names.decls[d].span);
        let mut uses: Vec<Span> = self.names.uses_of(d).collect();
        uses.sort();
        decl.into_iter().chain(uses).collect()
    }

    /// Networks and blocks with what they declare, in source order.
    pub fn symbols(&self) -> Vec<Symbol> {
        let decls = &self.names.decls;
        let symbol = |i: usize, children: Vec<Symbol>| {
            let d = &decls[i];
            Symbol { name: d.name.clone(), kind: d.kind, span: d.span, full: d.full, children }
        };
        let mut top: Vec<Symbol> = (0..decls.len())
            .filter(|&i| decls[i].parent.is_none())
            .map(|i| {
                let mut children: Vec<Symbol> =
                    (0..decls.len()).filter(|&c| decls[c].parent == Some(i)).map(|c| symbol(c, Vec::new())).collect();
                children.sort_by_key(|s| s.span);
                number_stages(&mut children);
                symbol(i, children)
            })
            .collect();
        top.sort_by_key(|s| s.span);
        top
    }

    /// Names that fit at `offset`: keyword arguments inside a call, else ops, blocks and
    /// the names visible there. Works on the text, so a half-typed file completes too.
    pub fn completions(&self, offset: usize) -> Vec<Completion> {
        complete::completions(&self.source, offset)
    }

    /// After each section of each network (`stem`, every `stage`, `head`): its output
    /// channels and spatial size at full width, and the channels at `width`; as
    /// `(offset, label)` pairs.
    pub fn section_hints(&self, width: f64) -> Vec<(usize, String)> {
        let mut hints = Vec::new();
        for net in &self.networks {
            let Some(def) = self.names.decls.iter().position(|d| d.kind == DeclKind::Network && d.name == net.name)
            else {
                continue;
            };
            let at_w = net.decode_uniform(width, net.rounding).ok().map(|dims| net.layer_shapes(&dims));
            let mut stages = 0;
            for d in self.names.decls.iter().filter(|d| d.parent == Some(def) && d.kind == DeclKind::Binding) {
                let section = match d.name.as_str() {
                    "stem" => Section::Stem,
                    "stage" => {
                        stages += 1;
                        Section::Stage(stages)
                    }
                    "head" => Section::Head,
                    _ => continue,
                };
                let Some((id, last)) = net.layers.iter().filter(|(_, l)| l.section == section).last() else { continue };
                let [h, w] = last.hw;
                let mut label = format!("{}×{h}×{w}", last.channels);
                if let Some(shapes) = &at_w {
                    label.push_str(&format!(" ({} at {width})", shapes[id.index()].out));
                }
                hints.push((d.full.end, label));
            }
        }
        hints
    }
}

/// `stage`, `stage`, … become `stage 1`, `stage 2`, … in the outline.
fn number_stages(children: &mut [Symbol]) {
    let mut n = 0;
    for s in children.iter_mut().filter(|s| s.kind == DeclKind::Binding && s.name == "stage") {
        n += 1;
        s.name = format!("stage {n}");
    }
}
