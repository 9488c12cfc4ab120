//! Invariants of a [`Network`], checked on their own before any backend uses it.

use super::{Network, Op, Width};

/// Returns the first broken invariant, if any: inputs point backwards, widths name
/// existing dimensions, full width reproduces every layer's declared count, and each
/// dimension's base is a multiple of its divisor, block instances point inside the network.
pub fn validate(net: &Network) -> Result<(), String> {
    let full = net.full_width();
    for (id, l) in net.layers.iter() {
        if l.inputs.iter().any(|i| *i >= id) {
            return Err(format!("layer {} reads a later layer", l.name));
        }
        if (l.op == Op::Input) != l.inputs.is_empty() {
            return Err(format!("layer {} has a wrong number of inputs", l.name));
        }
        let mut ds = Vec::new();
        l.width.dims(&mut ds);
        if ds.iter().any(|&d| d >= net.space.dims.len()) {
            return Err(format!("layer {} uses an unknown dimension", l.name));
        }
        let at_full = l.width.eval(&full);
        if at_full != l.channels {
            return Err(format!("layer {}: {} channels at full width, declared {}", l.name, at_full, l.channels));
        }
    }
    for (i, d) in net.space.dims.iter().enumerate() {
        if d.divisor == 0 || d.base % d.divisor != 0 {
            return Err(format!("dimension {i}: base {} not a multiple of {}", d.base, d.divisor));
        }
    }
    let layers = net.layers.len();
    for (i, b) in net.blocks.iter().enumerate() {
        if b.parent.is_some_and(|p| p >= i) || b.input.index() >= layers || b.output.index() >= layers {
            return Err(format!("block instance {} points outside the network", b.name));
        }
    }
    if let Some((_, l)) = net.layers.iter().find(|(_, l)| l.block.is_some_and(|b| b >= net.blocks.len())) {
        return Err(format!("layer {} belongs to an unknown block instance", l.name));
    }
    if !matches!(net.layers[net.output].width, Width::Fixed(_)) {
        return Err("the network output is slimmable".into());
    }
    Ok(())
}
