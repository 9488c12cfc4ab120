//! Linear layer on the active slice `W[..in, ..out]`, on `[N, C, 1, 1]` feature maps.

use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::Tensor;

use super::LayerParams;
use crate::ir::LayerShape;

pub fn forward<B: Backend>(x: Tensor<B, 4>, p: &LayerParams<B>, s: LayerShape) -> Tensor<B, 4> {
    let [n, c, _, _] = x.dims();
    let weight = p.linear.as_ref().expect("linear has a weight").val();
    let [full_in, full_out] = weight.dims();
    let (i, o) = (s.in_c as usize, s.out as usize);
    let weight = if i == full_in && o == full_out { weight } else { weight.slice([0..i, 0..o]) };
    let bias = p.bias.as_ref().map(|b| if o == full_out { b.val() } else { b.val().slice(0..o) });
    linear(x.reshape([n, c]), weight, bias).reshape([n, o, 1, 1])
}
