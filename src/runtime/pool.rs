//! Pooling: windows and global average, as [`Op::MaxPool`], [`Op::AvgPool`] and
//! [`Op::GlobalAvgPool`] specify.

use burn::tensor::backend::Backend;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::Tensor;

use crate::ir::Op;

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
        other => unreachable!("pool::forward on {other:?}"),
    }
}
