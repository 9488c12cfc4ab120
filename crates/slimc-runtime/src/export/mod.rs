//! Fixed-width subnets: the active slices of a slimmable network at one width
//! configuration, with that configuration's calibrated BN statistics, as a standalone
//! model. [`Subnet::extract`] copies the slices to host memory; [`Subnet::fold_bn`]
//! optionally folds each BN into the conv before it; the writers turn a subnet into a
//! Burn record ([`burn`]), a safetensors file ([`safetensors`]) or an ONNX model
//! ([`onnx`]).

pub mod burn;
pub mod named;
pub mod onnx;
pub(crate) mod proto;
pub mod safetensors;

use std::sync::Arc;

use ::burn::module::Param;
use ::burn::tensor::backend::Backend;
use ::burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::ir::{LayerShape, Network, Op, Weights};
use crate::runtime::{leading, BnSet, LayerParams, RuntimeError, SlimNet, WidthConfig, BN_EPS};

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

    /// The tensor on `device`, in its own shape.
    pub fn to_tensor<B: Backend, const D: usize>(&self, device: &B::Device) -> Tensor<B, D> {
        Tensor::from_data(TensorData::new(self.data.clone(), self.shape.clone()), device)
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

/// The parameters of one layer of a subnet, by what the layer is ([`Op::weights`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum FixedParams {
    /// Nothing learned.
    #[default]
    None,
    /// A conv `[out, in / groups, kh, kw]`, transposed conv `[in, out, kh, kw]` or linear
    /// `[in, out]` (Burn's layout), with its bias `[out]` if it has one; or a learned table
    /// `[C, P]` (class token, position embedding), without.
    Weighted { weight: HostTensor, bias: Option<HostTensor> },
    /// The γ `[C]` of a layer norm (with its β) or of a layer scale (no β).
    Scale { gamma: HostTensor, beta: Option<HostTensor> },
    /// A batch norm at inference.
    Bn(BnParams),
    /// A BN folded into the conv before it: this layer passes its input on unchanged.
    Folded,
}

impl FixedParams {
    /// Every tensor as `(suffix, tensor)` under PyTorch's names (`weight`, `bias`,
    /// `running_mean`, `running_var`), as stored.
    pub fn tensors(&self) -> Vec<(&'static str, HostTensor)> {
        let v = |d: &Vec<f32>| HostTensor { shape: vec![d.len()], data: d.clone() };
        let pair = |w: &HostTensor, b: &Option<HostTensor>| {
            std::iter::once(("weight", w.clone())).chain(b.clone().map(|b| ("bias", b))).collect()
        };
        match self {
            FixedParams::None | FixedParams::Folded => Vec::new(),
            FixedParams::Weighted { weight, bias } => pair(weight, bias),
            FixedParams::Scale { gamma, beta } => pair(gamma, beta),
            FixedParams::Bn(bn) => vec![
                ("weight", v(&bn.gamma)),
                ("bias", v(&bn.beta)),
                ("running_mean", v(&bn.mean)),
                ("running_var", v(&bn.var)),
            ],
        }
    }
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
            let slice = |t: &Param<Tensor<B, 1>>| HostTensor::of(leading(t.val(), [o]));
            let fixed = match (l.op.weights(s), p) {
                (Weights::Kernel { shape, .. }, LayerParams::Kernel(k)) => FixedParams::Weighted {
                    weight: HostTensor::of(leading(k.weight.val(), shape)),
                    bias: k.bias.as_ref().map(slice),
                },
                (Weights::Table { shape }, LayerParams::Matrix(m)) => {
                    FixedParams::Weighted { weight: HostTensor::of(leading(m.weight.val(), shape)), bias: None }
                }
                (Weights::Matrix { shape, .. }, LayerParams::Matrix(m)) => FixedParams::Weighted {
                    weight: HostTensor::of(leading(m.weight.val(), shape)),
                    bias: m.bias.as_ref().map(slice),
                },
                // At the calibrated statistics, with the γ and β of the configuration's switch.
                (Weights::Affine { .. }, LayerParams::Affine(a)) if l.op == Op::BatchNorm => {
                    let (mean, var) = stats.layers[id.index()]
                        .clone()
                        .ok_or_else(|| RuntimeError::NotCalibrated { key: stats.key.clone() })?;
                    let host = |t: Tensor<B, 1>| HostTensor::of(t.slice(0..o)).data;
                    let (gamma, beta) = a.at(switch);
                    FixedParams::Bn(BnParams { gamma: host(gamma), beta: host(beta), mean: host(mean), var: host(var) })
                }
                (Weights::Affine { .. }, LayerParams::Affine(a)) => {
                    FixedParams::Scale { gamma: slice(&a.gamma[0]), beta: Some(slice(&a.beta[0])) }
                }
                (Weights::Scale { .. }, LayerParams::Scale(sc)) => {
                    FixedParams::Scale { gamma: slice(&sc.gamma), beta: None }
                }
                (Weights::None, LayerParams::None(_)) => FixedParams::None,
                (w, p) => unreachable!("layer {} learns {w:?} but holds {} parameters", l.name, p.kind()),
            };
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
            let FixedParams::Bn(bn) = std::mem::replace(&mut self.layers[id.index()], FixedParams::Folded) else {
                unreachable!("the fold plan's BN holds BN parameters")
            };
            let FixedParams::Weighted { weight, bias: old_bias } = &mut self.layers[ci] else {
                unreachable!("the fold plan's conv holds a weight")
            };
            let out = weight.shape[0];
            let per_out = weight.data.len() / out;
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
            *old_bias = Some(HostTensor { shape: vec![out], data: bias });
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
            .flat_map(FixedParams::tensors)
            .filter(|(name, _)| !name.starts_with("running_"))
            .map(|(_, t)| t.data.len() as u64)
            .sum()
    }

    /// Tensors under PyTorch-style names (`stage1.0.main.conv1.weight`, BN `.weight`,
    /// `.bias`, `.running_mean`, `.running_var`), linear weights transposed to `[out, in]`.
    pub fn named_tensors(&self) -> Vec<(String, HostTensor)> {
        let mut out = Vec::new();
        for (id, l) in self.net.layers.iter() {
            let p = &self.layers[id.index()];
            for (suffix, t) in p.tensors() {
                // PyTorch stores a linear's weight `[out, in]`.
                let t = if suffix == "weight" && matches!(l.op, Op::Linear { .. }) { transpose(&t) } else { t };
                out.push((format!("{}.{suffix}", l.name), t));
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
