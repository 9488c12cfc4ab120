//! Queries over a network's graph that the backends share: who reads a layer, when its
//! output is last needed, and which layers evaluation runs folded into a conv.

use super::{LayerId, Network, Op};

/// The layers evaluation mode computes inside a conv ([`Network::bn_folds`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnFold {
    /// The batch norm, folded into the conv's weight and bias.
    pub bn: LayerId,
    /// The activation after the BN when it is a clamp, with its range
    /// ([`super::Activation::clamp_range`]): the conv's epilogue.
    pub clamp: Option<(LayerId, (f32, f32))>,
}

impl Network {
    /// For each layer (indexed like `layers`), the layers that read its output, in forward
    /// order (a layer that reads another twice is listed twice).
    pub fn readers(&self) -> Vec<Vec<LayerId>> {
        let mut readers = vec![Vec::new(); self.layers.len()];
        for (id, l) in self.layers.iter() {
            for j in &l.inputs {
                readers[j.index()].push(id);
            }
        }
        readers
    }

    /// For each layer, the index of the last layer that reads its output (its own index
    /// when nothing does); `usize::MAX` for the network's output, which outlives the pass.
    pub fn last_uses(&self) -> Vec<usize> {
        let mut last: Vec<usize> = (0..self.layers.len()).collect();
        for (id, l) in self.layers.iter() {
            for j in &l.inputs {
                last[j.index()] = id.index();
            }
        }
        last[self.output.index()] = usize::MAX;
        last
    }

    /// For each layer, what evaluation folds into it: a conv's BN, when that BN is the
    /// conv's only reader (and the conv is not the network's output); then the BN's
    /// activation, when it is a clamp and the BN's only reader. Folding the BN is exact up
    /// to rounding: `γ (W∗x + b − mean) / sqrt(var + ε) + β = (s·W)∗x + (β − s·mean + s·b)`
    /// with `s = γ / sqrt(var + ε)`; the clamp then runs on the conv's output.
    pub fn bn_folds(&self) -> Vec<Option<BnFold>> {
        let readers = self.readers();
        let only_reader = |i: LayerId| match readers[i.index()].as_slice() {
            &[j] if i != self.output && self.layers[j].inputs.len() == 1 => Some(j),
            _ => None,
        };
        self.layers
            .iter()
            .map(|(id, l)| {
                let bn = only_reader(id)
                    .filter(|&j| matches!(l.op, Op::Conv { .. }) && self.layers[j].op == Op::BatchNorm)?;
                let clamp = only_reader(bn).and_then(|a| match self.layers[a].op {
                    Op::Act(f) => f.clamp_range().map(|range| (a, range)),
                    _ => None,
                });
                Some(BnFold { bn, clamp })
            })
            .collect()
    }
}
