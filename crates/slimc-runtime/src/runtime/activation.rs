//! Activations, written as PyTorch defines them.

use burn::tensor::activation::{gelu, relu, sigmoid};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::ir::Activation;

pub fn forward<B: Backend>(x: Tensor<B, 4>, a: Activation) -> Tensor<B, 4> {
    match a {
        Activation::Relu => relu(x),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        // x · relu6(x + 3) / 6
        Activation::Hswish => x.clone() * hsigmoid(x),
        Activation::Swish => x.clone() * sigmoid(x),
        Activation::Sigmoid => sigmoid(x),
        Activation::Hsigmoid => hsigmoid(x),
        // The exact (erf) form, as `torch.nn.GELU()`.
        Activation::Gelu => gelu(x),
    }
}

/// relu6(x + 3) / 6
fn hsigmoid<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    (x.add_scalar(3.0).clamp(0.0, 6.0)).div_scalar(6.0)
}
