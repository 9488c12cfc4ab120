//! Pooling, flattening and upsampling: the spatial ops, as [`Op::MaxPool`], [`Op::AvgPool`],
//! [`Op::GlobalAvgPool`], [`Op::AdaptiveAvgPool`], [`Op::Flatten`] and [`Op::Upsample`]
//! specify.

use burn::tensor::backend::Backend;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;

use crate::ir::{Interp, Op};

pub fn forward<B: Backend>(x: Tensor<B, 4>, op: &Op) -> Tensor<B, 4> {
    let us = |a: [u32; 2]| a.map(|v| v as usize);
    match op {
        Op::MaxPool { kernel, stride, padding, ceil_mode } => {
            max_pool2d(x, us(*kernel), us(*stride), us(*padding), [1, 1], *ceil_mode)
        }
        Op::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad } => {
            avg_pool2d(x, us(*kernel), us(*stride), us(*padding), *count_include_pad, *ceil_mode)
        }
        Op::GlobalAvgPool => x.mean_dims(&[2, 3]),
        Op::AdaptiveAvgPool { out } => adaptive_avg_pool2d(x, out.map(|v| v as usize)),
        Op::Flatten => flatten(x),
        Op::Upsample { scale, mode } => upsample(x, *scale as usize, *mode),
        other => unreachable!("pool::forward on {other:?}"),
    }
}

/// `[N, C, H, W] → [N, C·H·W, 1, 1]`.
pub fn flatten<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    if h * w == 1 {
        return x;
    }
    x.reshape([n, c * h * w, 1, 1])
}

fn upsample<B: Backend>(x: Tensor<B, 4>, scale: usize, mode: Interp) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    let mode = match mode {
        Interp::Nearest => InterpolateMode::Nearest,
        Interp::Bilinear => InterpolateMode::Bilinear,
    };
    interpolate(x, [h * scale, w * scale], InterpolateOptions::new(mode).with_align_corners(false))
}
