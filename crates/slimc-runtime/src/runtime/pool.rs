//! Pooling, flattening and upsampling: the spatial ops, as [`Op::MaxPool`], [`Op::AvgPool`],
//! [`Op::GlobalAvgPool`], [`Op::AdaptiveAvgPool`], [`Op::Flatten`] and [`Op::Upsample`]
//! specify.

use burn::tensor::backend::Backend;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
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

/// Upsampling as two products with constant matrices, one per axis. Every backend
/// differentiates a matmul; Burn 0.21's CubeCL kernels (wgpu, CUDA) have no bilinear
/// `interpolate` backward, and their nearest one disagreed with flex on 8-channel maps
/// (the wgpu suite's `edge_cases`).
fn upsample<B: Backend>(x: Tensor<B, 4>, scale: usize, mode: Interp) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let (ws, hs) = (w * scale, h * scale);
    let rows = x.reshape([n * c * h, w]).matmul(upsample_weights(w, scale, mode, &device));
    let cols = rows.reshape([n, c, h, ws]).swap_dims(2, 3).reshape([n * c * ws, h]);
    cols.matmul(upsample_weights(h, scale, mode, &device)).reshape([n, c, ws, hs]).swap_dims(2, 3)
}

/// `M[i, o]`: how much input `i` of a side of `n` contributes to output `o` of the side
/// upsampled by `scale`: nearest copies input `floor(o / scale)`; bilinear (half-pixel
/// centres) mixes `floor(u)` and the next pixel (the last repeated) at
/// `u = max((o + 0.5) / scale − 0.5, 0)`.
fn upsample_weights<B: Backend>(n: usize, scale: usize, mode: Interp, device: &B::Device) -> Tensor<B, 2> {
    let out = n * scale;
    let mut m = vec![0f32; n * out];
    for o in 0..out {
        match mode {
            Interp::Nearest => m[(o / scale) * out + o] = 1.0,
            Interp::Bilinear => {
                let u = ((o as f64 + 0.5) / scale as f64 - 0.5).max(0.0);
                let lo = (u.floor() as usize).min(n - 1);
                let hi = (lo + 1).min(n - 1);
                let f = u - lo as f64;
                m[lo * out + o] += (1.0 - f) as f32;
                m[hi * out + o] += f as f32;
            }
        }
    }
    Tensor::from_data(burn::tensor::TensorData::new(m, [n, out]), device)
}
