//! Importance-ordered channels (`--order`): full-width weights by name (as
//! [`crate::export::named`] reads them) with each search dimension's channels ranked by
//! importance, so that a narrower width keeps the channels that matter most. The ranks
//! are the criterion's scores summed over every layer of the dimension; which dimensions
//! can be reordered and how each layer's channels move is the IR's
//! ([`Network::reorder`]). The full-width network computes the same function as before.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::export::HostTensor;
use crate::ir::order::Reordering;
use crate::ir::{Network, Op, Width};

/// How a channel's importance is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// The L1 norm of the channel's filter in every conv and linear layer that produces the
    /// dimension, summed (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
    L1,
    /// |γ| of the channel in every batch norm of the dimension, summed (Liu et al. 2017,
    /// "Network Slimming"); a dimension without a batch norm is ranked by [`Criterion::L1`].
    Bn,
}

impl Criterion {
    pub const NAMES: [&'static str; 2] = ["l1", "bn"];
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Criterion::L1 => "l1",
            Criterion::Bn => "bn",
        })
    }
}

impl FromStr for Criterion {
    type Err = String;
    fn from_str(s: &str) -> Result<Criterion, String> {
        match s {
            "l1" => Ok(Criterion::L1),
            "bn" => Ok(Criterion::Bn),
            _ => Err(format!("unknown importance criterion `{s}` (expected one of: l1, bn)")),
        }
    }
}

/// `tensors` (full-width, slimc's layer names, PyTorch's layout) with each search
/// dimension's channels in order of importance, and the reordering that was applied. A
/// tensor whose shape is not the one its layer expects is left as it is (loading it reports
/// the mismatch).
pub fn reorder(
    net: &Network,
    tensors: Vec<(String, HostTensor)>,
    criterion: Criterion,
) -> (Vec<(String, HostTensor)>, Reordering) {
    let by_name: BTreeMap<String, HostTensor> = tensors.into_iter().collect();
    let scores = scores(net, &by_name, criterion);
    let plan = net.reorder(&scores);
    let shapes = net.layer_shapes(&net.full_width());
    let layers: BTreeMap<&str, crate::ir::LayerId> = net.layers.iter().map(|(id, l)| (l.name.as_str(), id)).collect();
    let mut out = Vec::with_capacity(by_name.len());
    for (name, t) in by_name {
        let moved = name
            .rsplit_once('.')
            .and_then(|(layer, suffix)| layers.get(layer).map(|&id| (id, &net.layers[id], suffix)))
            .and_then(|(id, l, suffix)| {
                let output = &plan.layers[id.index()];
                let input = l.inputs.first().map(|i| plan.layers[i.index()].as_slice());
                permute_layer(&l.op, shapes[id.index()].groups, suffix, &t, output, input)
            });
        out.push((name, moved.unwrap_or(t)));
    }
    (out, plan)
}

/// Per search dimension, one score per full-width channel.
fn scores(net: &Network, tensors: &BTreeMap<String, HostTensor>, criterion: Criterion) -> Vec<Vec<f64>> {
    let dims = &net.space.dims;
    let mut l1: Vec<Vec<f64>> = dims.iter().map(|d| vec![0.0; d.base as usize]).collect();
    let mut gamma = l1.clone();
    let mut has_bn = vec![false; dims.len()];
    for (_, l) in net.layers.iter() {
        let Width::Dim(d) = l.width else { continue };
        let c = dims[d].base as usize;
        let Some(w) = tensors.get(&format!("{}.weight", l.name)) else { continue };
        match &l.op {
            // [out, in / groups, kh, kw] and PyTorch's linear [out, in]: a row per channel.
            Op::Conv { .. } | Op::Linear { .. } if w.shape.first() == Some(&c) => {
                let per = w.data.len() / c;
                for (s, row) in l1[d].iter_mut().zip(w.data.chunks(per.max(1))) {
                    *s += row.iter().map(|v| f64::from(v.abs())).sum::<f64>();
                }
            }
            // [in, out, kh, kw]: channel o is a column of every row.
            Op::ConvTranspose { .. } if w.shape.get(1) == Some(&c) && w.shape.len() == 4 => {
                let k = w.shape[2] * w.shape[3];
                for (j, v) in w.data.iter().enumerate() {
                    l1[d][(j / k) % c] += f64::from(v.abs());
                }
            }
            // γ `[C]`, or one row per BN switch `[switches, C]`: the first.
            Op::BatchNorm if w.shape.last() == Some(&c) => {
                has_bn[d] = true;
                for (s, v) in gamma[d].iter_mut().zip(&w.data) {
                    *s += f64::from(v.abs());
                }
            }
            _ => {}
        }
    }
    match criterion {
        Criterion::L1 => l1,
        Criterion::Bn => gamma.into_iter().zip(l1).zip(has_bn).map(|((g, l), bn)| if bn { g } else { l }).collect(),
    }
}

/// Tensor `suffix` of a layer with `op` (a conv with `groups` groups at full width), its
/// output channels ordered as `output` and its (first) input's as `input`; `None` when
/// nothing moves or the shape is not the layer's.
fn permute_layer(
    op: &Op,
    groups: u32,
    suffix: &str,
    t: &HostTensor,
    output: &[u32],
    input: Option<&[u32]>,
) -> Option<HostTensor> {
    let input = input.unwrap_or(&[]);
    // Axes of the tensor and the order each takes, outermost first.
    let axes: Vec<(usize, &[u32])> = match (op, suffix) {
        (Op::Conv { .. }, "weight") if groups == 1 => vec![(0, output), (1, input)],
        (Op::Conv { .. }, "weight") => vec![(0, output)],
        (Op::ConvTranspose { .. }, "weight") => vec![(0, input), (1, output)],
        (Op::Linear { .. }, "weight") => vec![(0, output), (1, input)],
        (Op::Conv { .. } | Op::ConvTranspose { .. } | Op::Linear { .. }, "bias") => vec![(0, output)],
        // BN's γ, β and statistics, `[C]` or `[switches, C]`: the last axis.
        (Op::BatchNorm, "weight" | "bias" | "running_mean" | "running_var") => vec![(t.shape.len().max(1) - 1, output)],
        (Op::LayerNorm { .. }, "weight" | "bias") | (Op::LayerScale { .. }, "weight") => vec![(0, output)],
        (Op::ClassToken | Op::PosEmbed { .. }, "weight") => vec![(0, output)],
        _ => return None,
    };
    let mut t = t.clone();
    let mut moved = false;
    for (axis, order) in axes {
        if t.shape.get(axis) != Some(&order.len()) {
            return None;
        }
        if order.iter().enumerate().any(|(i, &v)| i != v as usize) {
            t = permute_axis(&t, axis, order);
            moved = true;
        }
    }
    moved.then_some(t)
}

/// `t` with its entries along `axis` taken in `order` (`new[.., i, ..] = old[.., order[i], ..]`).
fn permute_axis(t: &HostTensor, axis: usize, order: &[u32]) -> HostTensor {
    let outer: usize = t.shape[..axis].iter().product();
    let n = t.shape[axis];
    let inner: usize = t.shape[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(t.data.len());
    for o in 0..outer {
        for &src in order {
            let start = (o * n + src as usize) * inner;
            data.extend_from_slice(&t.data[start..start + inner]);
        }
    }
    HostTensor { shape: t.shape.clone(), data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuting_an_axis_moves_whole_slices() {
        let t = HostTensor { shape: vec![2, 3, 2], data: (0..12).map(|v| v as f32).collect() };
        let p = permute_axis(&t, 1, &[2, 0, 1]);
        assert_eq!(p.data, vec![4.0, 5.0, 0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 6.0, 7.0, 8.0, 9.0]);
        let q = permute_axis(&t, 0, &[1, 0]);
        assert_eq!(&q.data[..6], &[6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
    }

    #[test]
    fn criteria_parse_by_name() {
        for name in Criterion::NAMES {
            assert_eq!(name.parse::<Criterion>().map(|c| c.to_string()), Ok(name.to_string()));
        }
        assert!("l2".parse::<Criterion>().is_err());
    }
}
