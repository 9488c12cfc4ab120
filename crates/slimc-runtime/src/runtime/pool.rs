//! Pooling, flattening and upsampling: the spatial ops, as [`Op::MaxPool`], [`Op::AvgPool`],
//! [`Op::GlobalAvgPool`], [`Op::AdaptiveAvgPool`], [`Op::Flatten`] ([`forward`]) and
//! [`Op::Upsample`] ([`upsample`], which may read a second input's size) specify.

use burn::tensor::backend::Backend;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
use burn::tensor::Tensor;

use crate::ir::{Interp, Op, Resize};

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

/// Resampling to `size` as two products with constant matrices, one per axis. Every
/// backend differentiates a matmul; Burn 0.21's CubeCL kernels (wgpu, CUDA) have no
/// bilinear `interpolate` backward, and their nearest one disagreed with flex on 8-channel
/// maps (the wgpu suite's `edge_cases`).
/// `like` is the second input's `[H, W]` for [`Resize::Like`].
pub fn upsample<B: Backend>(x: Tensor<B, 4>, to: Resize, mode: Interp, like: Option<[usize; 2]>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let [ho, wo] = to.output([h, w], like);
    let device = x.device();
    let rows = x.reshape([n * c * h, w]).matmul(resample_weights(w, wo, mode, &device));
    let cols = rows.reshape([n, c, h, wo]).swap_dims(2, 3).reshape([n * c * wo, h]);
    cols.matmul(resample_weights(h, ho, mode, &device)).reshape([n, c, wo, ho]).swap_dims(2, 3)
}

/// `M[i, o]`: how much input `i` of a side of `n` pixels contributes to output `o` of `out`,
/// as [`Op::Upsample`] specifies with `r = n / out`: nearest copies input
/// `min(floor(o · r), n − 1)`, computed in f32 as PyTorch does (so an exact multiple lands
/// where PyTorch's does); bilinear mixes `floor(u)` and the next pixel (the last repeated)
/// at `u = max((o + 0.5) · r − 0.5, 0)`.
fn resample_weights<B: Backend>(n: usize, out: usize, mode: Interp, device: &B::Device) -> Tensor<B, 2> {
    let mut m = vec![0f32; n * out];
    for o in 0..out {
        match mode {
            Interp::Nearest => {
                let src = if n == out { o } else { ((o as f32 * (n as f32 / out as f32)).floor() as usize).min(n - 1) };
                m[src * out + o] = 1.0;
            }
            Interp::Bilinear => {
                let u = ((o as f64 + 0.5) * (n as f64 / out as f64) - 0.5).max(0.0);
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
