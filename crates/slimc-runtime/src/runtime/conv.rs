//! Convolution on the active slices: weight `[..out, ..in/groups, :, :]`, with the group
//! count of this width (fixed count, `in / group_width`, or depthwise `in`).

use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Tensor, TensorPrimitive};

use super::{leading, LayerParams, SlimBackend};
use crate::ir::{LayerShape, Op, Weights};

/// A transposed conv on the active slice `weight[..in, ..out]` ([`Op::ConvTranspose`]).
pub fn transpose_forward<B: SlimBackend>(x: Tensor<B, 4>, p: &LayerParams<B>, op: &Op, s: LayerShape) -> Tensor<B, 4> {
    let Op::ConvTranspose { stride, padding, output_padding, .. } = op else {
        unreachable!("conv::transpose_forward on {op:?}")
    };
    let (weight, bias) = active(p, op, s);
    let us = |a: &[u32; 2]| a.map(|v| v as usize);
    let options = ConvTransposeOptions::new(us(stride), us(padding), us(output_padding), [1, 1], 1);
    burn::tensor::module::conv_transpose2d(x, weight, bias, options)
}

pub fn forward<B: SlimBackend>(x: Tensor<B, 4>, p: &LayerParams<B>, op: &Op, s: LayerShape) -> Tensor<B, 4> {
    let (weight, bias) = active(p, op, s);
    run(x, weight, bias, op, s, None)
}

/// The conv followed by an evaluation-mode BN, folded into one conv: the weight of output
/// channel `o` times `scale[o]`, the bias `shift + scale · bias` (`scale`, `shift`: the BN
/// as a per-channel affine map, [`super::norm::affine`]); then, where given, the clamp of
/// the activation after the BN ([`crate::ir::Activation::clamp_range`]).
pub fn forward_folded<B: SlimBackend>(
    x: Tensor<B, 4>,
    p: &LayerParams<B>,
    op: &Op,
    s: LayerShape,
    (scale, shift): (Tensor<B, 1>, Tensor<B, 1>),
    clamp: Option<(f32, f32)>,
) -> Tensor<B, 4> {
    let (weight, bias) = active(p, op, s);
    let out = s.out as usize;
    // As rows `[out, in·kh·kw]` times a column: flex broadcasts fast along the last dimension.
    let dims = weight.dims();
    let weight = (weight.reshape([out, dims[1] * dims[2] * dims[3]]) * scale.clone().reshape([out, 1])).reshape(dims);
    let bias = match bias {
        Some(b) => shift + b * scale,
        None => shift,
    };
    run(x, weight, Some(bias), op, s, clamp)
}

/// The active slices of a conv's (or a transposed conv's) weight and bias at this layer
/// shape: the leading extents [`Op::weights`] gives.
fn active<B: SlimBackend>(p: &LayerParams<B>, op: &Op, s: LayerShape) -> (Tensor<B, 4>, Option<Tensor<B, 1>>) {
    let Weights::Kernel { shape, .. } = op.weights(s) else { unreachable!("conv::active on {op:?}") };
    let kernel = p.kernel().expect("a conv has a kernel");
    let weight = leading(kernel.weight.val(), shape);
    let bias = kernel.bias.as_ref().map(|b| leading(b.val(), [s.out as usize]));
    (weight, bias)
}

fn run<B: SlimBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    op: &Op,
    s: LayerShape,
    clamp: Option<(f32, f32)>,
) -> Tensor<B, 4> {
    let Op::Conv { stride, padding, dilation, .. } = op else { unreachable!("conv::forward on {op:?}") };
    let options = ConvOptions::new(
        stride.map(|v| v as usize),
        padding.map(|v| v as usize),
        dilation.map(|v| v as usize),
        s.groups as usize,
    );
    let (x, weight, bias) =
        (x.into_primitive().tensor(), weight.into_primitive().tensor(), bias.map(|b| b.into_primitive().tensor()));
    let y = match clamp {
        Some(range) => B::slim_conv2d_clamped(x, weight, bias, options, range),
        None => B::slim_conv2d(x, weight, bias, options),
    };
    Tensor::from_primitive(TensorPrimitive::Float(y))
}
