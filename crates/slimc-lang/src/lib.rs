//! slimc's language: `.slim` text to the IR of a slimmable network, and everything that
//! needs no tensor library — the search space, costs, diagnostics, the language server's
//! analysis and the Rust source `slimc emit` writes.
//!
//! ```text
//! .slim text ─ syntax (pest grammar → AST with spans)
//!            ─ sema   (resolve → elaborate: shapes + channel union-find → search space)
//!            ─ ir     (arena of layers + SearchSpace: search_dim, channel_space, decode)
//!            ├ cost   (MACs / params at any width)
//!            ├ emit   (Rust source of a Burn module)
//!            └ lsp    (the language server: diagnostics, hover, names, completion)
//! ```
//!
//! This crate does not depend on Burn (the runtime, training and export are the
//! `slimc-runtime` crate, built on top of this one), and it never prints or exits (the
//! `slimc` binary does). Entry point: [`compile`].

pub mod cost;
pub mod diagnostic;
pub mod emit;
pub mod files;
pub mod ir;
pub mod lsp;
pub mod sema;
pub mod syntax;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use files::{read_source, write_output, FileKind, SourceError, WriteError, MAX_SOURCE_BYTES};
pub use sema::Options;

/// Compiles `.slim` source into one IR network per `network` definition, or every error
/// in the file, sorted by position. `path` is only used to label diagnostics. Warnings are
/// dropped; [`check`] keeps them.
pub fn compile(source: &str, path: &str, options: &Options) -> Result<Vec<ir::Network>, Diagnostics> {
    check(source, path, options).networks
}

/// Like [`compile`], for raw bytes: invalid UTF-8 is a diagnostic, not a failure.
pub fn compile_bytes(bytes: &[u8], path: &str, options: &Options) -> Result<Vec<ir::Network>, Diagnostics> {
    check_bytes(bytes, path, options).networks
}

/// What compiling a file found: its networks or its errors, and its warnings.
#[derive(Clone, Debug)]
pub struct Checked {
    pub networks: Result<Vec<ir::Network>, Diagnostics>,
    /// Every warning, sorted by position (none when the file does not parse or resolve).
    pub warnings: Diagnostics,
}

impl Checked {
    /// Errors and warnings together, sorted by position, warnings made errors if `deny`.
    pub fn diagnostics(&self, deny: bool) -> Diagnostics {
        let errors = self.networks.as_ref().err().map_or(&[][..], |d| &d.items[..]);
        let warnings = self.warnings.items.iter().map(|w| if deny { w.clone().denied() } else { w.clone() });
        let items = errors.iter().cloned().chain(warnings).collect();
        Diagnostics::new(&self.warnings.path, &self.warnings.source, items)
    }
}

/// [`compile`], keeping the warnings.
pub fn check(source: &str, path: &str, options: &Options) -> Checked {
    match syntax::parse(source) {
        Ok(file) => check_parsed(&file, source, path, options),
        Err(e) => Checked {
            networks: Err(Diagnostics::new(path, source, vec![e.to_diagnostic()])),
            warnings: Diagnostics::new(path, source, Vec::new()),
        },
    }
}

/// The part of [`check`] after parsing, for callers that keep the AST (the language server).
pub fn check_parsed(file: &syntax::ast::File, source: &str, path: &str, options: &Options) -> Checked {
    let analysed = sema::analyse(file, options);
    let warnings = Diagnostics::new(path, source, analysed.warnings.iter().map(|w| w.to_diagnostic()).collect());
    let networks = analysed
        .networks
        .map_err(|errs| Diagnostics::new(path, source, errs.iter().map(|e| e.to_diagnostic()).collect()))
        .and_then(|networks| {
            for net in &networks {
                if let Err(e) = ir::validate(net) {
                    let d = Diagnostic::new("E0900", format!("internal error: invalid IR for `{}`: {e}", net.name));
                    return Err(Diagnostics::new(path, source, vec![d]));
                }
                if let Some(d) = count_overflow(net) {
                    return Err(Diagnostics::new(path, source, vec![d]));
                }
            }
            Ok(networks)
        });
    Checked { networks, warnings }
}

/// E0120: a network whose MACs or parameters at full width pass what 64 bits count
/// ([`cost::Cost`] saturates instead of wrapping). Every narrower width costs less, so full
/// width is the one to check; the label is the layer where the running total overflowed.
fn count_overflow(net: &ir::Network) -> Option<Diagnostic> {
    let (_, per) = cost::cost(net, &net.full_width());
    let mut total = cost::Cost::default();
    for ((_, layer), c) in net.layers.iter().zip(per) {
        total += c;
        if cost::overflowed(total) {
            let what = if total.macs == u64::MAX { "MACs" } else { "parameters" };
            return Some(
                Diagnostic::new("E0120", format!("`{}` is too large to count: its {what} pass 2^64", net.name))
                    .primary(layer.span, format!("the count of {what} overflows at this layer"))
                    .help("no machine trains a network this size; use smaller channel counts, kernels or input sizes"),
            );
        }
    }
    None
}

/// [`check`] for raw bytes: invalid UTF-8 is a diagnostic, not a failure.
pub fn check_bytes(bytes: &[u8], path: &str, options: &Options) -> Checked {
    match std::str::from_utf8(bytes) {
        Ok(source) => check(source, path, options),
        Err(e) => {
            let at = e.valid_up_to();
            let source = String::from_utf8_lossy(bytes);
            let start = source.char_indices().map(|(i, _)| i).find(|&i| i >= at).unwrap_or(source.len());
            let span = syntax::ast::Span::new(start, (start + 1).min(source.len()));
            let d = syntax::SyntaxError::NotUtf8 { at: span }.to_diagnostic();
            Checked {
                networks: Err(Diagnostics::new(path, &source, vec![d])),
                warnings: Diagnostics::new(path, &source, Vec::new()),
            }
        }
    }
}

/// Why [`pick_network`] found no network.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("no network `{name}` (networks: {})", available.join(", "))]
    NoSuchNetwork { name: String, available: Vec<String> },
    #[error("defines no network")]
    NoNetwork,
    #[error("has several networks; pick one by name ({})", available.join(", "))]
    Several { available: Vec<String> },
}

/// The network called `name` among `nets`, or the only one when no name is given.
pub fn pick_network(nets: Vec<ir::Network>, name: Option<&str>) -> Result<ir::Network, PickError> {
    let available = || nets.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    let index = match name {
        Some(name) => nets
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| PickError::NoSuchNetwork { name: name.into(), available: available() })?,
        None if nets.len() == 1 => 0,
        None if nets.is_empty() => return Err(PickError::NoNetwork),
        None => return Err(PickError::Several { available: available() }),
    };
    Ok(nets.into_iter().nth(index).expect("index found above"))
}
