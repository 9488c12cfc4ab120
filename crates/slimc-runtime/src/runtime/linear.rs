//! Linear layer on the active slice `W[..in, ..out]`, on `[N, C, 1, 1]` feature maps.

use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::Tensor;

use super::{leading, LayerParams};
use crate::ir::LayerShape;

pub fn forward<B: Backend>(x: Tensor<B, 4>, p: &LayerParams<B>, s: LayerShape) -> Tensor<B, 4> {
    let [n, c, _, _] = x.dims();
    let o = s.out as usize;
    let matrix = p.matrix().expect("a linear has a matrix");
    let weight = leading(matrix.weight.val(), [s.in_c as usize, o]);
    let bias = matrix.bias.as_ref().map(|b| leading(b.val(), [o]));
    linear(x.reshape([n, c]), weight, bias).reshape([n, o, 1, 1])
}
