//! The facts of each op that every backend needs: which tensors a layer learns, their
//! shapes at a layer shape, and so its parameter count and the slice of the full-width
//! tensors a narrower width uses; which activations are a clamp. One match per fact, each
//! exhaustive, so a new op makes the compiler list what it must answer here.

use super::{Activation, LayerShape, Op};

/// The tensors a layer learns, with their shapes at one [`LayerShape`]. At full width these
/// are the shapes stored; at a narrower width, the extents of the leading slice in use (a
/// narrower width is a prefix of a wider one on every axis, as [`Op`] specifies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// Nothing learned.
    None,
    /// A conv kernel `[out, in / groups, kh, kw]` (a transposed conv's is `[in, out, kh,
    /// kw]`, PyTorch's layout), and a bias `[out]` where the op has one.
    Kernel { shape: [usize; 4], bias: Option<usize> },
    /// A linear map stored `[in, out]` (`y = x W + b`), and a bias `[out]`.
    Matrix { shape: [usize; 2], bias: Option<usize> },
    /// A per-channel scale γ and shift β `[out]` (batch norm, layer norm).
    Affine { channels: usize },
    /// A per-channel scale γ `[out]` (layer scale).
    Scale { channels: usize },
    /// A learned table `[rows, positions]`: one vector per position (a class token's one,
    /// a position embedding's H·W, rows the channels; a window attention's relative
    /// positions, rows the heads).
    Table { shape: [usize; 2] },
}

impl Weights {
    /// The number of learned values (one set of BN affine parameters: switchable BN's
    /// copies are a training scheme's, not the op's).
    pub fn count(self) -> u64 {
        let n = |d: &[usize]| d.iter().fold(1u64, |a, &v| a.saturating_mul(v as u64));
        match self {
            Weights::None => 0,
            Weights::Kernel { shape, bias } => n(&shape).saturating_add(bias.unwrap_or(0) as u64),
            Weights::Matrix { shape, bias } => n(&shape).saturating_add(bias.unwrap_or(0) as u64),
            Weights::Affine { channels } => 2 * channels as u64,
            Weights::Scale { channels } => channels as u64,
            Weights::Table { shape } => n(&shape),
        }
    }
}

impl Op {
    /// What this op learns at layer shape `s` ([`Weights`]): the one parameter-layout rule
    /// that initialisation, slicing, costing, export and emitted code share.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn weights(&self, s: LayerShape) -> Weights {
        let (i, o) = (s.in_c as usize, s.out as usize);
        let bias = |b: bool| b.then_some(o);
        match self {
            Op::Conv { kernel, bias: b, .. } => {
                let per_group = i / (s.groups.max(1) as usize);
                Weights::Kernel { shape: [o, per_group, kernel[0] as usize, kernel[1] as usize], bias: bias(*b) }
            }
            Op::ConvTranspose { kernel, bias: b, .. } => {
                Weights::Kernel { shape: [i, o, kernel[0] as usize, kernel[1] as usize], bias: bias(*b) }
            }
            Op::Linear { bias: b } => Weights::Matrix { shape: [i, o], bias: bias(*b) },
            Op::BatchNorm | Op::LayerNorm { .. } => Weights::Affine { channels: o },
            Op::LayerScale { .. } => Weights::Scale { channels: o },
            Op::ClassToken => Weights::Table { shape: [o, 1] },
            Op::PosEmbed { positions } => Weights::Table { shape: [o, *positions as usize] },
            Op::Attend { heads, window: Some(w), .. } => {
                Weights::Table { shape: [heads.split(s.out).0 as usize, w.relative_positions()] }
            }
            Op::Input
            | Op::Act(_)
            | Op::MaxPool { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::AdaptiveAvgPool { .. }
            | Op::Flatten
            | Op::Upsample { .. }
            | Op::Attend { window: None, .. }
            | Op::Tokens
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
            | Op::ZeroPad => Weights::None,
        }
    }
}

impl Activation {
    /// The range of an activation that is a clamp (ReLU `[0, ∞)`, ReLU6 `[0, 6]`): a conv
    /// followed by BN and such an activation runs in evaluation as one conv with a clamped
    /// output ([`super::Network::bn_folds`]).
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn clamp_range(self) -> Option<(f32, f32)> {
        match self {
            Activation::Relu => Some((0.0, f32::INFINITY)),
            Activation::Relu6 => Some((0.0, 6.0)),
            Activation::Hswish | Activation::Swish | Activation::Sigmoid | Activation::Hsigmoid | Activation::Gelu => {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Groups;

    fn conv(groups: Groups, bias: bool) -> Op {
        Op::Conv { kernel: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups, bias }
    }

    #[test]
    fn a_narrower_width_uses_a_leading_slice_of_each_tensor() {
        let full = LayerShape { in_c: 64, out: 128, groups: 1 };
        let half = LayerShape { in_c: 32, out: 64, groups: 1 };
        assert_eq!(
            conv(Groups::Count(1), true).weights(full),
            Weights::Kernel { shape: [128, 64, 3, 3], bias: Some(128) }
        );
        assert_eq!(conv(Groups::Count(1), false).weights(half), Weights::Kernel { shape: [64, 32, 3, 3], bias: None });
        // Depthwise and group-width convs keep their channels per group at every width.
        let dw = LayerShape { in_c: 32, out: 32, groups: 32 };
        assert_eq!(conv(Groups::Depthwise, false).weights(dw), Weights::Kernel { shape: [32, 1, 3, 3], bias: None });
        let grouped = LayerShape { in_c: 48, out: 48, groups: 3 };
        assert_eq!(conv(Groups::Width(16), false).weights(grouped).count(), 48 * 16 * 9);
        let t =
            Op::ConvTranspose { kernel: [2, 2], stride: [2, 2], padding: [0, 0], output_padding: [0, 0], bias: true };
        assert_eq!(t.weights(half), Weights::Kernel { shape: [32, 64, 2, 2], bias: Some(64) });
        assert_eq!(Op::Linear { bias: true }.weights(half), Weights::Matrix { shape: [32, 64], bias: Some(64) });
        assert_eq!(Op::Linear { bias: true }.weights(half).count(), 32 * 64 + 64);
    }

    #[test]
    fn norms_learn_per_channel_and_the_rest_nothing() {
        let s = LayerShape { in_c: 24, out: 24, groups: 1 };
        assert_eq!(Op::BatchNorm.weights(s).count(), 48);
        assert_eq!(Op::LayerNorm { eps: 1e-6 }.weights(s).count(), 48);
        assert_eq!(Op::LayerScale { init: 1e-6 }.weights(s), Weights::Scale { channels: 24 });
        for op in [Op::Add, Op::Act(Activation::Relu), Op::GlobalAvgPool, Op::Dropout { p: 0.2 }] {
            assert_eq!(op.weights(s), Weights::None, "{op:?}");
        }
        assert_eq!(Activation::Relu6.clamp_range(), Some((0.0, 6.0)));
        assert_eq!(Activation::Hswish.clamp_range(), None);
    }
}
