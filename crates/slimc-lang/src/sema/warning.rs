//! Warnings: mistakes that still compile to a network, but probably not the one meant.
//! Like errors they are data with spans; the one place they become prose is
//! [`Warning::to_diagnostic`]. `slimc check` shows them and exits 0 (`--deny warnings`
//! makes them errors).

use crate::diagnostic::Diagnostic;
use crate::ir::Rounding;
use crate::syntax::ast::Span;

#[derive(Clone, Debug, PartialEq)]
pub enum Warning {
    /// A binding holding a tensor that no path to `out` (or the network's output) reads: its
    /// layers are still built, costed and searched.
    UnusedBinding { name: String, span: Span, layers: usize },
    /// A residual or product tied a slimmable width to a `fixed(...)` one, so the slimmable
    /// one stopped slimming.
    FixedAbsorbs { fixed: u32, fixed_origin: Span, slimmable_origin: Span },
    /// A `slice` read a slimmable width, which now keeps its full-width count.
    SlicePins { channels: u32, slice: Span, slimmable_origin: Span },
    /// A block parameter its body never reads.
    UnusedParameter { block: String, name: String, span: Span },
    /// Pool padding above half the kernel: windows made only of padding (PyTorch refuses it).
    PoolPadding { op: &'static str, padding: u32, kernel: u32, span: Span },
    /// `ratio(t, r)` without a rounding argument took the network's policy, which already
    /// at full width gives another count (`got`) than flooring `of × ratio` (`floor`).
    RatioRounding { span: Span, of: u32, ratio: f64, policy: Rounding, got: u32, floor: u32 },
}

impl Warning {
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            Warning::UnusedBinding { name, span, layers } => {
                let what = match layers {
                    0 => "it is computed".to_string(),
                    1 => "its layer is still built".to_string(),
                    n => format!("its {n} layers are still built"),
                };
                Diagnostic::warning("W0301", format!("`{name}` is never used on the way to the output"))
                    .primary(*span, "no path to `out` reads this")
                    .note(format!("{what}, counted in MACs and params, and its widths searched"))
                    .help(format!("read `{name}` in a later statement on the way to `out`, or delete it"))
            }
            Warning::FixedAbsorbs { fixed, fixed_origin, slimmable_origin } => Diagnostic::warning(
                "W0302",
                format!("a slimmable width is tied to a fixed one ({fixed} channels) and no longer slims"),
            )
            .primary(*slimmable_origin, format!("written as slimmable, but always {fixed} channels"))
            .secondary(*fixed_origin, format!("fixed at {fixed} here"))
            .note("every layer sharing these channels (a residual chain, a whole stage) is now unslimmable")
            .help("drop `fixed(...)`, or write `fixed(...)` on the other side too to say it is meant"),
            Warning::SlicePins { channels, slice, slimmable_origin } => Diagnostic::warning(
                "W0306",
                format!("a slice pins a slimmable width at {channels} channels: it no longer slims"),
            )
            .primary(*slimmable_origin, format!("written as slimmable, but always {channels} channels"))
            .secondary(*slice, "a slice takes fixed channels of it here")
            .note("slimc slims equal parts only (`split`); every layer sharing these channels is now unslimmable")
            .help(format!("write `fixed({channels})` where the width is declared to say it is meant, or `split(part, parts)` if the parts are equal")),
            Warning::UnusedParameter { block, name, span } => {
                Diagnostic::warning("W0303", format!("parameter `{name}` of block `{block}` is never used"))
                    .primary(*span, "never read in the block")
                    .help(format!("use it, or remove it from `{block}` and its calls"))
            }
            Warning::PoolPadding { op, padding, kernel, span } => {
                Diagnostic::warning("W0304", format!("{op} padding {padding} is more than half its kernel {kernel}"))
                    .primary(*span, "some windows would hold only padding")
                    .note("PyTorch refuses this pooling (pad should be at most half of the kernel size)")
                    .help(format!("use padding at most {}", kernel / 2))
            }
            Warning::RatioRounding { span, of, ratio, policy, got, floor } => {
                let exact = super::value::number(f64::from(*of) * ratio);
                Diagnostic::warning("W0305", format!("`ratio` rounds with the network's `{policy}`: {got} channels at full width, not {floor}"))
                    .primary(*span, format!("{of} × {} = {exact}, rounded by `{policy}` to {got}", super::value::number(*ratio)))
                    .note("without a rounding argument, `ratio` uses the network's `rounding` at every width, full width included")
                    .help(format!("say which is meant: `ratio(..., floor)` for {floor} channels (torchvision's squeeze-excite), or `ratio(..., {policy})` for {got}"))
            }
        }
    }
}
