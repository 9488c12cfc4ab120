//! MACs and parameters at any width (docs/design.md §5): conv `out·oh·ow·(in/groups)·kh·kw`,
//! transposed conv `in·out·kh·kw·ih·iw`,
//! linear `in·out`; BN, layer norm, layer scale, activations, adds, multiplies, pooling and
//! upsampling cost no MACs (torchvision's counting), and attention's two products are
//! counted apart ([`attention_macs`]). Parameters are the weight slices in use
//! plus biases plus the γ and β of BN and layer norm, the γ of layer scale, and class
//! tokens and position embeddings.

use serde::Serialize;

use crate::ir::{LayerId, LayerShape, Network, Op};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub macs: u64,
    pub params: u64,
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        self.macs = self.macs.saturating_add(o.macs);
        self.params = self.params.saturating_add(o.params);
    }
}

/// The cost of one layer with the given channels and output size. Parameters are the
/// op's [`Op::weights`] at this shape; MACs are counted here, per op.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn layer_cost(op: &Op, shape: LayerShape, hw: [u32; 2]) -> Cost {
    let params = op.weights(shape).count();
    let (i, o) = (u64::from(shape.in_c), u64::from(shape.out));
    let macs = match op {
        Op::Conv { kernel, .. } => {
            let per_out = (i / u64::from(shape.groups.max(1))).saturating_mul(area(*kernel));
            o.saturating_mul(per_out).saturating_mul(area(hw))
        }
        // Every input pixel meets the whole kernel once (fvcore's and thop's count).
        Op::ConvTranspose { kernel, stride, padding, output_padding, .. } => {
            let weights = i.saturating_mul(o).saturating_mul(area(*kernel));
            let input = [0, 1].map(|a| {
                let grown =
                    u64::from(hw[a]) + 2 * u64::from(padding[a]) - u64::from(kernel[a]) - u64::from(output_padding[a]);
                grown / u64::from(stride[a]) + 1
            });
            weights.saturating_mul(input[0].saturating_mul(input[1]))
        }
        Op::Linear { .. } => i.saturating_mul(o),
        // Every op without MACs, listed so that a new op must be costed here.
        Op::BatchNorm
        | Op::LayerNorm { .. }
        | Op::LayerScale { .. }
        | Op::Input
        | Op::Act(_)
        | Op::MaxPool { .. }
        | Op::AvgPool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::Flatten
        | Op::Upsample { .. }
        | Op::Attend { .. }
        | Op::Tokens
        | Op::ClassToken
        | Op::PosEmbed { .. }
        | Op::Token { .. }
        | Op::Dropout { .. }
        | Op::DropPath { .. }
        | Op::Add
        | Op::Mul
        | Op::Concat
        | Op::Split { .. }
        | Op::Slice { .. }
        | Op::Shuffle { .. }
        | Op::Subsample { .. }
        | Op::ZeroPad => 0,
    };
    Cost { macs, params }
}

fn area(a: [u32; 2]) -> u64 {
    u64::from(a[0]) * u64::from(a[1])
}

/// The products of every [`Op::Attend`] at `dims`: `Q Kᵀ` and `· V`, each `H·W·L·C`
/// multiply-accumulates at the active query width `C` (`L` tokens attended by each: `H·W`,
/// or a window's). Kept apart from [`Cost::macs`] (conv and linear only, the convention
/// published counts use), as the models' papers report them.
pub fn attention_macs(net: &Network, dims: &[u32]) -> u64 {
    let shapes = net.layer_shapes(dims);
    net.layers
        .iter()
        .filter_map(|(id, l)| match l.op {
            Op::Attend { window, .. } => {
                let attended = window.map_or(area(l.hw), |w| w.tokens() as u64);
                let products = 2u64.saturating_mul(area(l.hw)).saturating_mul(attended);
                Some(products.saturating_mul(u64::from(shapes[id.index()].out)))
            }
            _ => None,
        })
        .fold(0u64, u64::saturating_add)
}

/// Whether a count saturated: [`Cost`]'s arithmetic stops at `u64::MAX` instead of
/// wrapping, so a count that reached it overflowed (no network has 1.8·10^19 MACs).
pub fn overflowed(c: Cost) -> bool {
    c.macs == u64::MAX || c.params == u64::MAX
}

/// Per-layer costs (indexed like `net.layers`) and the total, when the search dimensions
/// have `dims` channels.
pub fn cost(net: &Network, dims: &[u32]) -> (Cost, Vec<Cost>) {
    cost_of_shapes(net, &net.layer_shapes(dims))
}

/// Like [`cost`], for layer shapes the caller already decoded.
pub fn cost_of_shapes(net: &Network, shapes: &[LayerShape]) -> (Cost, Vec<Cost>) {
    let per: Vec<Cost> = net.layers.iter().map(|(id, l)| layer_cost(&l.op, shapes[id.index()], l.hw)).collect();
    let mut total = Cost::default();
    per.iter().for_each(|c| total += *c);
    (total, per)
}

/// Peak inference memory of one image at `dims`, in bytes of f32: every parameter in use
/// plus the largest working set of one layer (its inputs and its output), the measure
/// memory-constrained width searches use (activations of earlier layers are freed).
pub fn peak_memory(net: &Network, dims: &[u32]) -> u64 {
    let shapes = net.layer_shapes(dims);
    let size = |id: LayerId| {
        let hw = net.layers[id].hw;
        u64::from(shapes[id.index()].out) * u64::from(hw[0]) * u64::from(hw[1])
    };
    let working =
        net.layers.iter().map(|(id, l)| l.inputs.iter().map(|&i| size(i)).sum::<u64>() + size(id)).max().unwrap_or(0);
    let (c, _) = cost_of_shapes(net, &shapes);
    4 * (c.params + working)
}

/// `12.3M`, `1.81G`: MACs and parameter counts for people.
pub fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.3}G", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.2}M", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1}K", f / 1e3)
    } else {
        n.to_string()
    }
}
