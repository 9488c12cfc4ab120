//! Channel plumbing: concat, split, shuffle, the option-A shortcut (subsample + zero
//! pad), and dropout.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

pub fn concat<B: Backend>(first: Tensor<B, 4>, rest: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
    let mut all = Vec::with_capacity(rest.len() + 1);
    all.push(first);
    all.extend(rest);
    Tensor::cat(all, 1)
}

/// Part `part` of `parts` equal channel chunks.
pub fn split<B: Backend>(x: Tensor<B, 4>, part: u32, parts: u32) -> Tensor<B, 4> {
    let c = x.dims()[1] / parts as usize;
    x.narrow(1, part as usize * c, c)
}

/// Channels `[start, end)` (a fixed input: see [`crate::ir::Op::Slice`]).
pub fn slice<B: Backend>(x: Tensor<B, 4>, start: u32, end: u32) -> Tensor<B, 4> {
    x.narrow(1, start as usize, (end - start) as usize)
}

/// ShuffleNet's channel shuffle: `[N, g, C/g, H, W]` transposed to `[N, C/g, g, H, W]`.
pub fn shuffle<B: Backend>(x: Tensor<B, 4>, groups: u32) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let g = groups as usize;
    x.reshape([n, g, c / g, h * w]).swap_dims(1, 2).reshape([n, c, h, w])
}

/// `x[:, :, ::s, ::s]`.
pub fn subsample<B: Backend>(x: Tensor<B, 4>, stride: u32, [oy, ox]: [u32; 2]) -> Tensor<B, 4> {
    let (s, oy, ox) = (stride as isize, oy as isize, ox as isize);
    x.slice(burn::tensor::s![.., .., oy..;s, ox..;s])
}

/// Zero channels appended up to `out`.
pub fn zeropad<B: Backend>(x: Tensor<B, 4>, out: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    if out <= c {
        return x;
    }
    let zeros = Tensor::zeros([n, out - c, h, w], &x.device());
    Tensor::cat(vec![x, zeros], 1)
}

/// Inverted dropout (train mode only).
pub fn dropout<B: Backend>(x: Tensor<B, 4>, p: f64) -> Tensor<B, 4> {
    if p <= 0.0 {
        return x;
    }
    let keep = x.random_like(Distribution::Bernoulli(1.0 - p));
    x * keep.div_scalar(1.0 - p)
}

/// Stochastic depth: each sample kept with probability `1 − p` and scaled by `1 / (1 − p)`.
pub fn drop_path<B: Backend>(x: Tensor<B, 4>, p: f64) -> Tensor<B, 4> {
    if p <= 0.0 {
        return x;
    }
    let [n, c, h, w] = x.dims();
    let keep = Tensor::<B, 4>::random([n, 1, 1, 1], Distribution::Bernoulli(1.0 - p), &x.device());
    x * keep.div_scalar(1.0 - p).expand([n, c, h, w])
}

/// Elementwise product; a `[N, C, 1, 1]` gate (squeeze-excite) scales each channel map, a
/// `[N, 1, H, W]` map (spatial attention) every channel. The channel gate is applied as a row
/// broadcast over `[N·C, H·W]`, which flex runs fast.
pub fn mul<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
    let (ad, bd) = (a.dims(), b.dims());
    if ad == bd {
        return a * b;
    }
    if ad[1] == bd[1] {
        let (x, gate) = if bd[2] == 1 && bd[3] == 1 { (a, b) } else { (b, a) };
        let [n, c, h, w] = x.dims();
        return (x.reshape([n * c, h * w]) * gate.reshape([n * c, 1])).reshape([n, c, h, w]);
    }
    let shape = [0, 1, 2, 3].map(|i| ad[i].max(bd[i]));
    a.expand(shape) * b.expand(shape)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use crate::runtime::device::CpuTrain;

    /// `d/dm Σ x·m` is `Σ_c x` for a one-channel map `m`, and `d/dx` is `m` on every channel;
    /// a `[N, C, 1, 1]` gate's gradient is `Σ_hw x`.
    #[test]
    fn broadcast_gradients_follow_the_definition() {
        let device = Default::default();
        let x = Tensor::<CpuTrain, 4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let map = Tensor::<CpuTrain, 4>::random([2, 1, 4, 5], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let gate = Tensor::<CpuTrain, 4>::random([2, 3, 1, 1], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let y = super::mul(super::mul(x.clone(), map.clone()), gate.clone());
        assert_eq!(y.dims(), [2, 3, 4, 5]);
        let grads = y.sum().backward();
        let (xv, mv, gv) = (x.clone().inner(), map.clone().inner(), gate.clone().inner());
        let close = |a: Tensor<_, 4>, b: Tensor<_, 4>| (a - b).abs().max().into_scalar() < 1e-5;
        assert!(close(map.grad(&grads).unwrap(), (xv.clone() * gv.clone()).sum_dim(1)));
        assert!(close(gate.grad(&grads).unwrap(), (xv.clone() * mv.clone()).sum_dim(2).sum_dim(3)));
        assert!(close(x.grad(&grads).unwrap(), mv.expand([2, 3, 4, 5]) * gv.expand([2, 3, 4, 5])));
    }
}

#[cfg(test)]
mod drop_path_tests {
    use burn::tensor::Tensor;

    use crate::runtime::device::Cpu;

    /// Each sample is dropped whole or kept whole and scaled by 1 / (1 − p); about a fraction
    /// `p` of 200 samples is dropped (outside 0.3..0.7 at p = 0.5 has odds below 1e-8).
    #[test]
    fn drop_path_drops_whole_samples() {
        let x = Tensor::<Cpu, 4>::ones([200, 3, 2, 2], &Default::default());
        let y = super::drop_path(x, 0.5).into_data().to_vec::<f32>().unwrap();
        let mut dropped = 0;
        for sample in y.chunks(12) {
            match sample[0] {
                0.0 => dropped += 1,
                v => assert!((v - 2.0).abs() < 1e-6, "kept samples are scaled by 2, got {v}"),
            }
            assert!(sample.iter().all(|&v| v == sample[0]), "a sample is dropped or kept whole");
        }
        assert!((60..=140).contains(&dropped), "{dropped} of 200 dropped at p = 0.5");
    }
}
