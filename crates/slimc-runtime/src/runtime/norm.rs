//! Batch norm for slimmable networks. Affine parameters are sliced to the active
//! channels (or, for S-Nets' switchable BN, taken from the switch's own copy). Training
//! normalises with batch statistics; evaluation uses statistics stored per width
//! configuration, filled by [`calibrate`]: the US-Nets procedure of resetting and then
//! taking the cumulative average of batch statistics over N batches at that width.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{Mode, RuntimeError, SlimBackend, SlimNet, WidthConfig};

/// PyTorch's BN epsilon.
pub const BN_EPS: f64 = 1e-5;

/// Running statistics of every BN layer for one width configuration.
#[derive(Clone, Debug)]
pub struct BnSet<B: Backend> {
    pub key: String,
    /// `(mean, unbiased variance)` per layer; `None` for layers that are not BN.
    pub layers: Vec<Option<(Tensor<B, 1>, Tensor<B, 1>)>>,
}

/// Host copies of a [`BnSet`], for checkpoints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BnStats {
    pub key: String,
    pub layers: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

fn slice_to<B: Backend>(t: Tensor<B, 1>, c: usize) -> Tensor<B, 1> {
    if t.dims()[0] == c {
        t
    } else {
        t.slice(0..c)
    }
}

/// Normalises with batch statistics; returns the output, the batch mean and the
/// unbiased batch variance (detached).
///
/// The variance is the two-pass one, the mean of `(x − mean)²` ([`crate::ir::Op::BatchNorm`]
/// specifies it; E[x²] − mean² loses precision when the mean is large).
///
/// Laid out for flex, whose elementwise ops broadcast fast only along the last
/// dimension: the activation is viewed as rows `[N·C, H·W]`, statistics are row means,
/// and per-channel values are expanded over the batch on the small side. Forward plus
/// backward is about 5x faster than broadcasting `[1, C, 1, 1]` tensors (measured in the
/// README's benchmark notes).
pub fn train<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    c: usize,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
    let [n, _, h, w] = x.dims();
    let count = n * h * w;
    let rows = x.reshape([n * c, h * w]);
    let channel_mean = |t: Tensor<B, 2>| t.mean_dim(1).reshape([n, c]).mean_dim(0).reshape([c]);
    let mean = channel_mean(rows.clone());
    let centered = rows - per_row(mean.clone(), n, c);
    let var = channel_mean(centered.clone().square());
    let scale = slice_to(gamma, c) / var.clone().add_scalar(BN_EPS).sqrt();
    let y = (centered * per_row(scale, n, c) + per_row(slice_to(beta, c), n, c)).reshape([n, c, h, w]);
    let unbiased = if count > 1 { count as f64 / (count - 1) as f64 } else { 1.0 };
    (y, mean.detach(), var.mul_scalar(unbiased).detach())
}

/// A per-channel vector as a column `[N·C, 1]` matching the rows `[N·C, H·W]`.
fn per_row<B: Backend>(t: Tensor<B, 1>, n: usize, c: usize) -> Tensor<B, 2> {
    t.reshape([1, c]).expand([n, c]).reshape([n * c, 1])
}

/// Normalises with stored statistics.
pub fn eval<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
    c: usize,
) -> Tensor<B, 4> {
    let [n, _, h, w] = x.dims();
    scale_shift(x.reshape([n * c, h * w]), gamma, beta, slice_to(mean, c), slice_to(var, c), [n, c, h, w])
}

/// `γ (x − mean) / sqrt(var + ε) + β` as `rows · scale + shift`, per channel.
fn scale_shift<B: Backend>(
    rows: Tensor<B, 2>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
    [n, c, h, w]: [usize; 4],
) -> Tensor<B, 4> {
    let (scale, shift) = affine(gamma, beta, mean, var, c);
    (rows * per_row(scale, n, c) + per_row(shift, n, c)).reshape([n, c, h, w])
}

/// Evaluation-mode BN on `c` active channels as `x · scale + shift`:
/// `scale = γ / sqrt(var + ε)`, `shift = β − mean · scale`.
pub fn affine<B: Backend>(
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
    c: usize,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let scale = slice_to(gamma, c) / slice_to(var, c).add_scalar(BN_EPS).sqrt();
    let shift = slice_to(beta, c) - slice_to(mean, c) * scale.clone();
    (scale, shift)
}

/// Layer norm over the active channels at each position ([`crate::ir::Op::LayerNorm`]).
pub fn layer_norm<B: Backend>(x: Tensor<B, 4>, gamma: Tensor<B, 1>, beta: Tensor<B, 1>, eps: f64) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    // One row of channels per position, contiguous: the reductions and broadcasts below
    // then run along rows (several times faster on flex than over the middle axis of
    // [N, C, H, W]).
    let x = x.permute([0, 2, 3, 1]).reshape([n * h * w, c]);
    let mean = x.clone().mean_dim(1);
    let centered = x - mean;
    let var = centered.clone().square().mean_dim(1);
    let y = centered / var.add_scalar(eps).sqrt();
    let y = y * slice_to(gamma, c).reshape([1, c]) + slice_to(beta, c).reshape([1, c]);
    y.reshape([n, h, w, c]).permute([0, 3, 1, 2])
}

/// `γ[c] · x[c]` on the active channels ([`crate::ir::Op::LayerScale`]).
pub fn layer_scale<B: Backend>(x: Tensor<B, 4>, gamma: Tensor<B, 1>) -> Tensor<B, 4> {
    let c = x.dims()[1];
    x * slice_to(gamma, c).reshape([1, c, 1, 1])
}

/// BN calibration at one configuration: statistics reset, then the cumulative average of
/// the batch mean and unbiased variance over every batch given (train-mode forwards).
pub fn calibrate<B: SlimBackend, I>(model: &SlimNet<B>, cfg: &WidthConfig, batches: I) -> Result<BnSet<B>, RuntimeError>
where
    I: IntoIterator<Item = Tensor<B, 4>>,
{
    let mut sums: Vec<Option<(Tensor<B, 1>, Tensor<B, 1>)>> = vec![None; model.layers.len()];
    let mut n = 0usize;
    for x in batches {
        let f = model.forward(x, cfg, Mode::Train)?;
        for (acc, s) in sums.iter_mut().zip(f.batch_stats) {
            if let Some((m, v)) = s {
                *acc = Some(match acc.take() {
                    None => (m, v),
                    Some((am, av)) => (am + m, av + v),
                });
            }
        }
        n += 1;
    }
    if n == 0 {
        return Err(RuntimeError::NoCalibrationBatch);
    }
    let layers = sums.into_iter().map(|s| s.map(|(m, v)| (m.div_scalar(n as f64), v.div_scalar(n as f64)))).collect();
    Ok(BnSet { key: cfg.key(), layers })
}

impl<B: Backend> BnSet<B> {
    pub fn to_host(&self) -> BnStats {
        let host = |t: &Tensor<B, 1>| t.to_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
        BnStats {
            key: self.key.clone(),
            layers: self.layers.iter().map(|s| s.as_ref().map(|(m, v)| (host(m), host(v)))).collect(),
        }
    }

    pub fn from_host(stats: &BnStats, device: &B::Device) -> BnSet<B> {
        let dev = |v: &Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), device);
        BnSet {
            key: stats.key.clone(),
            layers: stats.layers.iter().map(|s| s.as_ref().map(|(m, v)| (dev(m), dev(v)))).collect(),
        }
    }
}
