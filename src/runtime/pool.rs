//! Pooling: windows and global average, as [`Op::MaxPool`], [`Op::AvgPool`] and
//! [`Op::GlobalAvgPool`] specify.

use burn::tensor::backend::Backend;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::Tensor;

use crate::ir::{Op, AVG_POOL_COUNTS_PADDING};

pub fn forward<B: Backend>(x: Tensor<B, 4>, op: &Op) -> Tensor<B, 4> {
    let us = |a: [u32; 2]| a.map(|v| v as usize);
    match op {
        Op::MaxPool { kernel, stride, padding } => max_pool2d(x, us(*kernel), us(*stride), us(*padding), [1, 1], false),
        Op::AvgPool { kernel, stride, padding } => {
            avg_pool2d(x, us(*kernel), us(*stride), us(*padding), AVG_POOL_COUNTS_PADDING, false)
        }
        Op::GlobalAvgPool => x.mean_dims(&[2, 3]),
        other => unreachable!("pool::forward on {other:?}"),
    }
}
