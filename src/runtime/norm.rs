//! Batch norm for slimmable networks. Affine parameters are sliced to the active
//! channels (or, for S-Nets' switchable BN, taken from the switch's own copy). Training
//! normalises with batch statistics; evaluation uses statistics stored per width
//! configuration, filled by [`calibrate`]: the US-Nets procedure of resetting and then
//! taking the cumulative average of batch statistics over N batches at that width.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{Mode, RuntimeError, SlimNet, WidthConfig};

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
pub fn train<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    c: usize,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
    let [n, _, h, w] = x.dims();
    let count = n * h * w;
    let flat = x.clone().swap_dims(0, 1).reshape([c, count]);
    let mean = flat.clone().mean_dim(1);
    let var = (flat - mean.clone()).square().mean_dim(1);
    let mean4 = mean.clone().reshape([1, c, 1, 1]);
    let var4 = var.clone().reshape([1, c, 1, 1]);
    let y = affine((x - mean4) / (var4.add_scalar(BN_EPS)).sqrt(), gamma, beta, c);
    let unbiased = if count > 1 { count as f64 / (count - 1) as f64 } else { 1.0 };
    (y, mean.reshape([c]).detach(), var.reshape([c]).mul_scalar(unbiased).detach())
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
    let mean = slice_to(mean, c).reshape([1, c, 1, 1]);
    let var = slice_to(var, c).reshape([1, c, 1, 1]);
    affine((x - mean) / var.add_scalar(BN_EPS).sqrt(), gamma, beta, c)
}

fn affine<B: Backend>(x: Tensor<B, 4>, gamma: Tensor<B, 1>, beta: Tensor<B, 1>, c: usize) -> Tensor<B, 4> {
    x * slice_to(gamma, c).reshape([1, c, 1, 1]) + slice_to(beta, c).reshape([1, c, 1, 1])
}

/// BN calibration at one configuration: statistics reset, then the cumulative average of
/// the batch mean and unbiased variance over every batch given (train-mode forwards).
pub fn calibrate<B: Backend, I>(model: &SlimNet<B>, cfg: &WidthConfig, batches: I) -> Result<BnSet<B>, RuntimeError>
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
        return Err(RuntimeError::Width("BN calibration needs at least one batch".into()));
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
