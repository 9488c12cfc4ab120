//! Parameter initialisation, as each op's reference does it: Kaiming-normal (fan-out,
//! ReLU gain) for convs as torchvision's ResNets, PyTorch's default uniform
//! `±1/sqrt(fan_in)` for linears, zero conv biases, BN and layer norm γ = 1 and β = 0, layer
//! scale γ = its `init`, ViT's class token zeros and position embedding N(0, 0.02²).

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

use super::params::{Affine, Kernel, LayerParams, Matrix, Scale};
use crate::ir::{Layer, LayerShape, Network, Op, Weights};

/// A tensor of `shape` drawn on the host from its own seeded generator, so that
/// initialisation does not depend on the backend's global RNG or on other threads.
pub fn sample<B: Backend, const D: usize>(
    shape: [usize; D],
    dist: impl Distribution<f64>,
    rng: &mut StdRng,
    device: &B::Device,
) -> Tensor<B, D> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| dist.sample(rng) as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// The parameters of layer `index`, from a generator seeded by `(seed, index)`, shaped by
/// the op's [`Op::weights`] at full width.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn layer<B: Backend>(
    op: &Op,
    net: &Network,
    l: &Layer,
    index: usize,
    seed: u64,
    copies: usize,
    device: &B::Device,
) -> LayerParams<B> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(index as u64));
    let in_c = l.inputs.first().map_or(net.input[0], |i| net.layers[*i].channels);
    let groups = if let Op::Conv { groups, .. } = op { groups.eval(in_c) } else { 1 };
    let out = l.channels as usize;
    let zeros = |n: usize| Param::from_tensor(Tensor::zeros([n], device));
    match op.weights(LayerShape { in_c, out: l.channels, groups }) {
        // Kaiming-normal over the `out·kh·kw` weights each output (a transposed conv: each
        // input pixel) feeds.
        Weights::Kernel { shape, bias } => {
            let std = (2.0 / (out * shape[2] * shape[3]) as f64).sqrt();
            let normal = Normal::new(0.0, std).expect("positive std");
            let weight = Param::from_tensor(sample(shape, normal, &mut rng, device));
            LayerParams::Kernel(Kernel { weight, bias: bias.map(zeros) })
        }
        Weights::Matrix { shape, bias } => {
            let bound = 1.0 / (shape[0] as f64).sqrt();
            let uniform = Uniform::new_inclusive(-bound, bound).expect("finite bound");
            let weight = Param::from_tensor(sample(shape, uniform, &mut rng, device));
            let bias = bias.map(|n| Param::from_tensor(sample([n], uniform, &mut rng, device)));
            LayerParams::Matrix(Matrix { weight, bias })
        }
        // Switchable BN keeps one γ and β per switch; layer norm has one.
        Weights::Affine { channels } => {
            let copies = if *op == Op::BatchNorm { copies } else { 1 };
            LayerParams::Affine(Affine {
                gamma: (0..copies).map(|_| Param::from_tensor(Tensor::ones([channels], device))).collect(),
                beta: (0..copies).map(|_| zeros(channels)).collect(),
            })
        }
        // ViT's: a class token of zeros, a position embedding drawn N(0, 0.02²); Swin's
        // relative position bias drawn N(0, 0.02²).
        Weights::Table { shape } => {
            let weight = if let Op::PosEmbed { .. } | Op::Attend { .. } = op {
                sample(shape, Normal::new(0.0, 0.02).expect("positive std"), &mut rng, device)
            } else {
                Tensor::zeros(shape, device)
            };
            LayerParams::Matrix(Matrix { weight: Param::from_tensor(weight), bias: None })
        }
        Weights::Scale { channels } => {
            let init = if let Op::LayerScale { init } = op { *init } else { 1.0 };
            LayerParams::Scale(Scale { gamma: Param::from_tensor(Tensor::full([channels], init, device)) })
        }
        Weights::None => LayerParams::None(std::marker::PhantomData),
    }
}
