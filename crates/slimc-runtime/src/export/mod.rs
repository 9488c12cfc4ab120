//! Fixed-width subnets: the active slices of a slimmable network at one width
//! configuration, with that configuration's calibrated BN statistics, as a standalone
//! model. [`Subnet::extract`] copies the slices to host memory; [`Subnet::fold_bn`]
//! optionally folds each BN into the conv before it; the writers turn a subnet into a
//! Burn record ([`burn`]), a safetensors file ([`safetensors`]) or an ONNX model
//! ([`onnx`]).

pub mod burn;
pub mod onnx;
mod proto;
pub mod safetensors;

use std::sync::Arc;

use ::burn::tensor::backend::Backend;
use ::burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::ir::{LayerShape, Network, Op, Weights};
use crate::runtime::{leading, BnSet, RuntimeError, SlimNet, WidthConfig, BN_EPS};

/// The file formats of `slimc export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Burn,
    Safetensors,
    Onnx,
}

/// A dense row-major f32 tensor in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    fn of<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
        let shape = t.dims().to_vec();
        let data = t.into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
        HostTensor { shape, data }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.data.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// A BN layer at inference: `γ (x − mean) / sqrt(var + ε) + β`, ε = [`BN_EPS`].
#[derive(Clone, Debug, PartialEq)]
pub struct BnParams {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// The parameters of one layer of a subnet; what a layer does not have is `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FixedParams {
    /// Conv `[out, in / groups, kh, kw]`, transposed conv `[in, out, kh, kw]`, linear `[in, out]` (Burn's layout), or the γ `[C]`
    /// of a layer norm or layer scale (whose `bias` is the layer norm's β).
    pub weight: Option<HostTensor>,
    pub bias: Option<HostTensor>,
    pub bn: Option<BnParams>,
    /// A BN folded into the conv before it: this layer passes its input on unchanged.
    pub folded: bool,
}

/// What a subnet records about where it came from (written into every format's metadata).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubnetInfo {
    pub network: String,
    /// Channels of each search dimension.
    pub channels: Vec<u32>,
    /// Those channels over each dimension's full-width count.
    pub wm: Vec<f64>,
    pub macs: u64,
    pub params: u64,
    /// The per-channel input normalisation the network was trained with (subtract `mean`,
    /// divide by `std`, on pixels scaled to [0, 1]); the exported model expects normalised input.
    pub input_mean: Vec<f32>,
    pub input_std: Vec<f32>,
    pub bn_folded: bool,
}

/// A standalone fixed-width network: the IR (run at `info.channels`) and host parameters.
#[derive(Clone, Debug)]
pub struct Subnet {
    pub net: Arc<Network>,
    pub shapes: Vec<LayerShape>,
    pub layers: Vec<FixedParams>,
    pub info: SubnetInfo,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Checkpoint(#[from] crate::runtime::checkpoint::CheckpointError),
    #[error("{}: {error}", path.display())]
    Io { path: std::path::PathBuf, error: std::io::Error },
    /// A file that should be a slimc export is not one.
    #[error("{} is not a slimc export: {reason}", path.display())]
    NotAnExport { path: std::path::PathBuf, reason: String },
    #[error("safetensors: {0}")]
    Safetensors(#[from] ::safetensors::SafeTensorError),
    #[error("safetensors: {name} is {dtype}, not F32")]
    NotF32 { name: String, dtype: String },
    #[error("cannot encode the export's metadata: {0}")]
    Json(#[from] serde_json::Error),
    /// Opening the run or calibrating its BN at the exported width.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
}

/// How [`Subnet::of_run`] prepares a subnet.
#[derive(Clone, Copy, Debug)]
pub struct ExtractOptions {
    /// Images per BN calibration batch.
    pub batch: usize,
    /// BN calibration batches (training images, cumulative average) at the width.
    pub calibrate: usize,
    /// Fold every foldable BN into its conv ([`Subnet::fold_bn`]).
    pub fold_bn: bool,
}

impl Subnet {
    /// The subnet of an opened run at `cfg`, as `slimc export` writes it: BN calibrated
    /// there on the run's training images, the run's input normalisation recorded, BN
    /// folded into convs where asked. Returns how many BNs were folded too.
    pub fn of_run<B: crate::runtime::SlimBackend>(
        l: &crate::train::eval::Loaded<B>,
        cfg: &WidthConfig,
        opts: ExtractOptions,
        device: &B::Device,
    ) -> Result<(Subnet, usize), ExportError> {
        let norm = &l.state.normalize;
        let stats = crate::train::eval::calibration(&l.model, cfg, &l.calib, norm, opts.batch, opts.calibrate, device)?;
        let mut subnet = Subnet::extract(&l.model, cfg, &stats)?;
        subnet.info.input_mean = norm.mean.clone();
        subnet.info.input_std = norm.std.clone();
        let folded = if opts.fold_bn { subnet.fold_bn() } else { 0 };
        Ok((subnet, folded))
    }

    /// The active slices of `model` at `cfg`, with the BN statistics `stats` (calibrated
    /// at `cfg`).
    pub fn extract<B: Backend>(model: &SlimNet<B>, cfg: &WidthConfig, stats: &BnSet<B>) -> Result<Subnet, ExportError> {
        let net = model.net.clone();
        RuntimeError::classifier(&net)?;
        net.space.check(&cfg.dims).map_err(RuntimeError::from)?;
        let shapes = net.layer_shapes(&cfg.dims);
        let switch = cfg.switch.unwrap_or(0);
        let mut layers = Vec::with_capacity(shapes.len());
        for (id, l) in net.layers.iter() {
            let (s, p) = (shapes[id.index()], &model.layers[id.index()]);
            let o = s.out as usize;
            let mut fixed = FixedParams::default();
            match l.op.weights(s) {
                Weights::Kernel { shape, .. } => {
                    fixed.weight = p.conv.as_ref().map(|w| HostTensor::of(leading(w.val(), shape)));
                }
                Weights::Matrix { shape, .. } => {
                    fixed.weight = p.linear.as_ref().map(|w| HostTensor::of(leading(w.val(), shape)));
                }
                // BN's γ and β go with its statistics, below.
                Weights::Affine { .. } if l.op == Op::BatchNorm => {}
                Weights::Affine { .. } | Weights::Scale { .. } => {
                    fixed.weight = p.gamma.first().map(|g| HostTensor::of(leading(g.val(), [o])));
                    fixed.bias = p.beta.first().map(|b| HostTensor::of(leading(b.val(), [o])));
                }
                Weights::None => {}
            }
            if let Some(b) = &p.bias {
                fixed.bias = Some(HostTensor::of(leading(b.val(), [o])));
            }
            if l.op == Op::BatchNorm {
                let (mean, var) = stats.layers[id.index()]
                    .clone()
                    .ok_or_else(|| RuntimeError::NotCalibrated { key: stats.key.clone() })?;
                let host = |t: Tensor<B, 1>| HostTensor::of(t.slice(0..o)).data;
                fixed.bn = Some(BnParams {
                    gamma: host(p.gamma[switch].val()),
                    beta: host(p.beta[switch].val()),
                    mean: host(mean),
                    var: host(var),
                });
            }
            layers.push(fixed);
        }
        let (cost, _) = crate::cost::cost_of_shapes(&net, &shapes);
        let info = SubnetInfo {
            network: net.name.clone(),
            channels: cfg.dims.clone(),
            wm: net.space.multipliers(&cfg.dims),
            macs: cost.macs,
            params: cost.params,
            ..SubnetInfo::default()
        };
        Ok(Subnet { net, shapes, layers, info })
    }

    /// Folds every BN of the IR's fold plan ([`Network::bn_folds`]: a BN whose input is a
    /// conv read by nothing else) into that conv: `W' = W · s`, `b' = (b − mean) · s + β` with `s = γ / sqrt(var + ε)` per output
    /// channel. Returns how many were folded.
    pub fn fold_bn(&mut self) -> usize {
        let mut folded = 0;
        for (ci, fold) in self.net.bn_folds().into_iter().enumerate() {
            let Some(fold) = fold else { continue };
            let id = fold.bn;
            let Some(bn) = self.layers[id.index()].bn.take() else { continue };
            let target = &mut self.layers[ci];
            let weight = target.weight.as_mut().expect("a conv has a weight");
            let out = weight.shape[0];
            let per_out = weight.data.len() / out;
            let old_bias = target.bias.take();
            let bias = (0..out)
                .map(|c| {
                    let scale = f64::from(bn.gamma[c]) / (f64::from(bn.var[c]) + BN_EPS).sqrt();
                    for v in &mut weight.data[c * per_out..(c + 1) * per_out] {
                        *v = (f64::from(*v) * scale) as f32;
                    }
                    let b = old_bias.as_ref().map_or(0.0, |b| f64::from(b.data[c]));
                    ((b - f64::from(bn.mean[c])) * scale + f64::from(bn.beta[c])) as f32
                })
                .collect();
            target.bias = Some(HostTensor { shape: vec![out], data: bias });
            self.layers[id.index()].folded = true;
            folded += 1;
        }
        self.info.bn_folded = folded > 0;
        // Folding adds conv biases and removes BN's γ and β.
        self.info.params = self.parameter_count();
        folded
    }

    /// [`SubnetInfo`] as metadata entries: `slimc.KEY` → the field's JSON.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let info = serde_json::to_value(&self.info).unwrap_or_default();
        info.as_object().into_iter().flatten().map(|(k, v)| (format!("slimc.{k}"), v.to_string())).collect()
    }

    /// Parameters stored: weights, biases and BN's γ and β (statistics are not parameters).
    pub fn parameter_count(&self) -> u64 {
        self.layers
            .iter()
            .map(|p| {
                let w = p.weight.as_ref().map_or(0, |t| t.data.len());
                let b = p.bias.as_ref().map_or(0, |t| t.data.len());
                let bn = p.bn.as_ref().map_or(0, |bn| 2 * bn.gamma.len());
                (w + b + bn) as u64
            })
            .sum()
    }

    /// Tensors under PyTorch-style names (`stage1.0.main.conv1.weight`, BN `.weight`,
    /// `.bias`, `.running_mean`, `.running_var`), linear weights transposed to `[out, in]`.
    pub fn named_tensors(&self) -> Vec<(String, HostTensor)> {
        let mut out = Vec::new();
        for (id, l) in self.net.layers.iter() {
            let p = &self.layers[id.index()];
            if let Some(w) = &p.weight {
                let w = if matches!(l.op, Op::Linear { .. }) { transpose(w) } else { w.clone() };
                out.push((format!("{}.weight", l.name), w));
            }
            if let Some(b) = &p.bias {
                out.push((format!("{}.bias", l.name), b.clone()));
            }
            if let Some(bn) = &p.bn {
                let t = |v: &Vec<f32>| HostTensor { shape: vec![v.len()], data: v.clone() };
                out.push((format!("{}.weight", l.name), t(&bn.gamma)));
                out.push((format!("{}.bias", l.name), t(&bn.beta)));
                out.push((format!("{}.running_mean", l.name), t(&bn.mean)));
                out.push((format!("{}.running_var", l.name), t(&bn.var)));
            }
        }
        out
    }
}

/// `[in, out]` → `[out, in]`.
pub fn transpose(w: &HostTensor) -> HostTensor {
    let (r, c) = (w.shape[0], w.shape[1]);
    let mut data = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            data[j * r + i] = w.data[i * c + j];
        }
    }
    HostTensor { shape: vec![c, r], data }
}
