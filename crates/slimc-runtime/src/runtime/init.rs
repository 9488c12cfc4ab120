//! Parameter initialisation, as each op's reference does it: Kaiming-normal (fan-out,
//! ReLU gain) for convs as torchvision's ResNets, PyTorch's default uniform
//! `±1/sqrt(fan_in)` for linears, zero conv biases, BN and layer norm γ = 1 and β = 0, layer
//! scale γ = its `init`.

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

use super::LayerParams;
use crate::ir::{Groups, Layer, Network, Op};

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

/// The parameters of layer `index`, from a generator seeded by `(seed, index)`.
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
    let mut p = LayerParams { conv: None, linear: None, bias: None, gamma: Vec::new(), beta: Vec::new() };
    let in_c = l.inputs.first().map_or(net.input[0], |i| net.layers[*i].channels) as usize;
    let out = l.channels as usize;
    match op {
        Op::Conv { kernel, groups, bias, .. } => {
            let per_group = match groups {
                Groups::Count(n) => in_c / *n as usize,
                Groups::Width(k) => *k as usize,
                Groups::Depthwise => 1,
            };
            let [kh, kw] = kernel.map(|k| k as usize);
            let fan_out = (out * kh * kw) as f64;
            let std = (2.0 / fan_out).sqrt();
            let normal = Normal::new(0.0, std).expect("positive std");
            let w = sample([out, per_group, kh, kw], normal, &mut rng, device);
            p.conv = Some(Param::from_tensor(w));
            if *bias {
                p.bias = Some(Param::from_tensor(Tensor::zeros([out], device)));
            }
        }
        // Kaiming-normal over the `out·kh·kw` weights each input pixel feeds.
        Op::ConvTranspose { kernel, bias, .. } => {
            let [kh, kw] = kernel.map(|k| k as usize);
            let normal = Normal::new(0.0, (2.0 / (out * kh * kw) as f64).sqrt()).expect("positive std");
            p.conv = Some(Param::from_tensor(sample([in_c, out, kh, kw], normal, &mut rng, device)));
            if *bias {
                p.bias = Some(Param::from_tensor(Tensor::zeros([out], device)));
            }
        }
        Op::Linear { bias } => {
            let bound = 1.0 / (in_c as f64).sqrt();
            let uniform = Uniform::new_inclusive(-bound, bound).expect("finite bound");
            let w = sample([in_c, out], uniform, &mut rng, device);
            p.linear = Some(Param::from_tensor(w));
            if *bias {
                let b = sample([out], uniform, &mut rng, device);
                p.bias = Some(Param::from_tensor(b));
            }
        }
        Op::BatchNorm => {
            for _ in 0..copies {
                p.gamma.push(Param::from_tensor(Tensor::ones([out], device)));
                p.beta.push(Param::from_tensor(Tensor::zeros([out], device)));
            }
        }
        Op::LayerNorm { .. } => {
            p.gamma.push(Param::from_tensor(Tensor::ones([out], device)));
            p.beta.push(Param::from_tensor(Tensor::zeros([out], device)));
        }
        Op::LayerScale { init } => p.gamma.push(Param::from_tensor(Tensor::full([out], *init, device))),
        // Every op without weights, listed so that a new op must be initialised here.
        Op::Input
        | Op::Act(_)
        | Op::MaxPool { .. }
        | Op::AvgPool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::Flatten
        | Op::Upsample { .. }
        | Op::Dropout { .. }
        | Op::DropPath { .. }
        | Op::Add
        | Op::Mul
        | Op::Concat
        | Op::Split { .. }
        | Op::Shuffle { .. }
        | Op::Subsample { .. }
        | Op::ZeroPad => {}
    }
    p
}
