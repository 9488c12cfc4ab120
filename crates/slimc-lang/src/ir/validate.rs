//! Invariants of a [`Network`], checked on their own before any backend uses it.

use super::{Network, Op, Resize, Width};

/// A broken invariant of the IR: a compiler bug, never a user's mistake.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IrError {
    #[error("layer {0} reads a later layer")]
    ReadsForward(String),
    #[error("layer {layer} ({op}) has {got} inputs, it takes {expected}")]
    Arity { layer: String, op: &'static str, expected: &'static str, got: usize },
    #[error("layer {0} uses an unknown dimension")]
    UnknownDimension(String),
    #[error("layer {layer}: {at_full} channels at full width, declared {declared}")]
    FullWidth { layer: String, at_full: u32, declared: u32 },
    #[error("dimension {dim}: base {base} not a multiple of {divisor}")]
    Divisor { dim: usize, base: u32, divisor: u32 },
    #[error("block instance {0} points outside the network")]
    BlockOutside(String),
    #[error("layer {0} belongs to an unknown block instance")]
    UnknownBlock(String),
    #[error("layer {0} slices channels outside its input, or a width that slims")]
    Slice(String),
    #[error("the network output is slimmable")]
    SlimmableOutput,
}

/// How many inputs each op reads: `Input` none, the merges (`add`, `mul`, `concat`) two
/// or more, an upsample to another tensor's size two (the second for its size), attend
/// three, every other op one. The backends index inputs on this.
fn arity(op: &Op) -> (usize, usize, &'static str) {
    match op {
        Op::Input => (0, 0, "none"),
        Op::Add | Op::Mul | Op::Concat => (2, usize::MAX, "two or more"),
        Op::Upsample { to: Resize::Like, .. } => (2, 2, "two"),
        Op::Attend { .. } => (3, 3, "three (q, k, v)"),
        _ => (1, 1, "one"),
    }
}

/// Returns the first broken invariant, if any: inputs point backwards and match the op's
/// arity, widths name existing dimensions, full width reproduces every layer's declared
/// count, each dimension's base is a multiple of its divisor, block instances point
/// inside the network, a slice reads channels of a fixed input and is fixed, and the
/// output is never slimmed.
pub fn validate(net: &Network) -> Result<(), IrError> {
    let full = net.full_width();
    for (id, l) in net.layers.iter() {
        if l.inputs.iter().any(|i| *i >= id) {
            return Err(IrError::ReadsForward(l.name.clone()));
        }
        let (lo, hi, expected) = arity(&l.op);
        if !(lo..=hi).contains(&l.inputs.len()) {
            let (layer, op, got) = (l.name.clone(), l.op.kind(), l.inputs.len());
            return Err(IrError::Arity { layer, op, expected, got });
        }
        let mut ds = Vec::new();
        l.width.dims(&mut ds);
        if ds.iter().any(|&d| d >= net.space.dims.len()) {
            return Err(IrError::UnknownDimension(l.name.clone()));
        }
        let at_full = l.width.eval(&full);
        if at_full != l.channels {
            return Err(IrError::FullWidth { layer: l.name.clone(), at_full, declared: l.channels });
        }
        if let Op::Slice { start, end } = l.op {
            // `ds` holds the slice's own dimensions; with its input's added it must be empty.
            let input = &net.layers[l.inputs[0]];
            input.width.dims(&mut ds);
            if start >= end || end > input.channels || !ds.is_empty() {
                return Err(IrError::Slice(l.name.clone()));
            }
        }
    }
    for (dim, d) in net.space.dims.iter().enumerate() {
        if d.divisor == 0 || d.base % d.divisor != 0 {
            return Err(IrError::Divisor { dim, base: d.base, divisor: d.divisor });
        }
    }
    let layers = net.layers.len();
    for (i, b) in net.blocks.iter().enumerate() {
        if b.parent.is_some_and(|p| p >= i) || b.input.index() >= layers || b.output.index() >= layers {
            return Err(IrError::BlockOutside(b.name.clone()));
        }
    }
    if let Some((_, l)) = net.layers.iter().find(|(_, l)| l.block.is_some_and(|b| b >= net.blocks.len())) {
        return Err(IrError::UnknownBlock(l.name.clone()));
    }
    if !matches!(net.layers[net.output].width, Width::Fixed(_)) {
        return Err(IrError::SlimmableOutput);
    }
    Ok(())
}
