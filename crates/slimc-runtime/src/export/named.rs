//! Full-width weights by name into a slimmable network: the tensors an emitted PyTorch
//! module's `state_dict()` holds, or a full-width `slimc export --format safetensors`,
//! under slimc's layer names with PyTorch's suffixes and layout (a linear's weight
//! `[out, in]`). `slimc train --init` and `slimc eval FILE.slim --init` start from them.
//! Every tensor is checked against the layer's full-width shape ([`Op::weights`]); BN
//! running statistics are accepted and left out, since slimc calibrates them per width.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::backend::Backend;

use super::{safetensors, transpose, HostTensor};
use crate::ir::{Op, Weights};
use crate::runtime::params::{Affine, Kernel, Matrix, Scale};
use crate::runtime::{BnSet, LayerParams, SlimNet};

/// Why a file's tensors were matched by structure, which a mismatch's message says.
const BY_STRUCTURE: &str =
    "(its names are not the network's, so its modules were matched to the layers by shape, in the order their names count)";

/// Why a weights file does not fit a network; each names the tensor.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read weights {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{} is not a safetensors file of f32 tensors: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{}: tensor `{name}` is missing (layer `{layer}` of `{network}` learns it)", path.display())]
    Missing { path: PathBuf, name: String, layer: String, network: String },
    #[error("{}: tensor `{name}` is {got:?}; layer `{layer}` at full width needs {expected:?}", path.display())]
    Shape { path: PathBuf, name: String, layer: String, got: Vec<usize>, expected: Vec<usize> },
    #[error(
        "{}: tensor `{name}` is no parameter of `{network}` (names are the layers `slimc space` lists, with `.weight`, `.bias`, `.running_mean` or `.running_var`)",
        path.display()
    )]
    Unknown { path: PathBuf, name: String, network: String },
    #[error("{}: tensor `{name}` holds a value that is not finite", path.display())]
    NonFinite { path: PathBuf, name: String },
    /// Matched by structure ([`crate::import::state_dict`]): no module of the file has the
    /// shapes of this layer's tensors (or every such module went to an earlier layer).
    #[error("{}: no tensor of the file fits `{name}` {shape:?} of `{network}` {BY_STRUCTURE}{nearest}", path.display())]
    Unmatched { path: PathBuf, name: String, shape: Vec<usize>, network: String, nearest: Box<str> },
    /// A BN variance that is not positive once ε is slimc's
    /// ([`crate::import::state_dict::shift_bn_eps`]).
    #[error("{}: `{name}` holds a variance that with BN ε {eps} is not positive", path.display())]
    Variance { path: PathBuf, name: String, eps: f64 },
    /// Matched by structure: this tensor's module was left over.
    #[error("{}: tensor `{name}` {shape:?} fits no layer of `{network}` {BY_STRUCTURE}", path.display())]
    Unplaced { path: PathBuf, name: String, shape: Vec<usize>, network: String },
}

/// What a layer of `op` learns, as the tensors this layout names: each suffix (`weight`,
/// `bias`, a BN's `running_mean` and `running_var`) with its shape for `weights` (the
/// layer's [`Op::weights`]), a linear's weight `[out, in]`. What `slimc import` writes and
/// a `state_dict` matched by structure must hold.
pub fn tensor_shapes(op: &Op, weights: Weights) -> Vec<(&'static str, Vec<usize>)> {
    let bias = |b: Option<usize>| b.map(|o| ("bias", vec![o]));
    match weights {
        Weights::None => Vec::new(),
        Weights::Kernel { shape, bias: b } => [("weight", shape.to_vec())].into_iter().chain(bias(b)).collect(),
        Weights::Matrix { shape: [i, o], bias: b } => [("weight", vec![o, i])].into_iter().chain(bias(b)).collect(),
        // BN's statistics too; a layer norm has none.
        Weights::Affine { channels: c } if *op == Op::BatchNorm => {
            ["weight", "bias", "running_mean", "running_var"].into_iter().map(|r| (r, vec![c])).collect()
        }
        Weights::Affine { channels: c } => vec![("weight", vec![c]), ("bias", vec![c])],
        Weights::Scale { channels: c } => vec![("weight", vec![c])],
        Weights::Table { shape } => vec![("weight", shape.to_vec())],
    }
}

/// Reads a safetensors file of f32 tensors.
pub fn read_file(path: &Path) -> Result<Vec<(String, HostTensor)>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|error| WeightsError::Read { path: path.to_path_buf(), error })?;
    safetensors::read(&bytes).map_err(|e| WeightsError::Format { path: path.to_path_buf(), reason: e.to_string() })
}

impl<B: Backend> SlimNet<B> {
    /// Replaces every parameter with the tensor of the same name in `tensors` (read from
    /// `path`, which errors name): each must be there, with the layer's full-width shape,
    /// finite; a tensor of no layer is an error. Switchable BN takes a γ and a β per switch
    /// (`[switches, C]`, as an emitted module with `SWITCHES` holds them) or one `[C]` for
    /// every switch. Nothing changes unless every tensor fits.
    pub fn load_named(
        &mut self,
        tensors: Vec<(String, HostTensor)>,
        path: &Path,
        device: &B::Device,
    ) -> Result<(), WeightsError> {
        let net = self.net.clone();
        let path = path.to_path_buf();
        let mut by_name: BTreeMap<String, HostTensor> = tensors.into_iter().collect();
        let shapes = net.layer_shapes(&net.full_width());
        let mut layers = Vec::with_capacity(self.layers.len());
        for (id, l) in net.layers.iter() {
            let weights = l.op.weights(shapes[id.index()]);
            let copies = self.layers[id.index()].affine().map_or(1, |a| a.gamma.len());
            let per_switch =
                copies > 1 && by_name.get(&format!("{}.weight", l.name)).is_some_and(|t| t.shape.len() == 2);
            // The layer's tensors in `tensor_shapes`' order; BN statistics are optional
            // (slimc calibrates its own) but checked when there.
            let mut got = Vec::new();
            for (suffix, mut expected) in tensor_shapes(&l.op, weights) {
                if per_switch && matches!(weights, Weights::Affine { .. }) {
                    expected.insert(0, copies);
                }
                let name = format!("{}.{suffix}", l.name);
                let stat = suffix.starts_with("running_");
                let Some(t) = by_name.remove(&name) else {
                    if stat {
                        continue;
                    }
                    return Err(WeightsError::Missing {
                        path: path.clone(),
                        name,
                        layer: l.name.clone(),
                        network: net.name.clone(),
                    });
                };
                if t.shape != expected {
                    return Err(WeightsError::Shape {
                        path: path.clone(),
                        name,
                        layer: l.name.clone(),
                        got: t.shape,
                        expected,
                    });
                }
                if !stat && !t.data.iter().all(|v| v.is_finite()) {
                    return Err(WeightsError::NonFinite { path: path.clone(), name });
                }
                if !stat {
                    got.push(t);
                }
            }
            let mut got = got.into_iter();
            let mut next = || got.next().expect("tensor_shapes names every tensor the layer learns");
            let params = match weights {
                Weights::None => LayerParams::None(std::marker::PhantomData),
                Weights::Kernel { bias, .. } => LayerParams::Kernel(Kernel {
                    weight: Param::from_tensor(next().to_tensor(device)),
                    bias: bias.map(|_| Param::from_tensor(next().to_tensor(device))),
                }),
                // PyTorch's `[out, in]`, stored `[in, out]`.
                Weights::Matrix { bias, .. } => LayerParams::Matrix(Matrix {
                    weight: Param::from_tensor(transpose(&next()).to_tensor(device)),
                    bias: bias.map(|_| Param::from_tensor(next().to_tensor(device))),
                }),
                // Switchable BN: one row per switch, `[switches, C]`, or one `[C]` for all.
                Weights::Affine { channels: c } => {
                    let rows = |t: HostTensor| -> Vec<Param<_>> {
                        let rows = if t.shape.len() == 2 {
                            t.data.chunks(c).map(|r| HostTensor { shape: vec![c], data: r.to_vec() }).collect()
                        } else {
                            vec![t; copies]
                        };
                        rows.iter().map(|r| Param::from_tensor(r.to_tensor(device))).collect()
                    };
                    LayerParams::Affine(Affine { gamma: rows(next()), beta: rows(next()) })
                }
                // As stored: `[C, positions]`.
                Weights::Table { .. } => {
                    LayerParams::Matrix(Matrix { weight: Param::from_tensor(next().to_tensor(device)), bias: None })
                }
                Weights::Scale { .. } => {
                    LayerParams::Scale(Scale { gamma: Param::from_tensor(next().to_tensor(device)) })
                }
            };
            layers.push(params);
        }
        if let Some(name) = by_name.into_keys().next() {
            return Err(WeightsError::Unknown { path, name, network: net.name.clone() });
        }
        self.layers = layers;
        Ok(())
    }
}

impl<B: Backend> SlimNet<B> {
    /// The BN statistics `tensors` hold (every BN layer's `running_mean` and
    /// `running_var`, `[C]`, at full width) as the statistics of the full-width
    /// configuration: what a PyTorch model (or `slimc import`'s) evaluates with, before any
    /// calibration. `None` when a BN layer lacks them or they are not `[C]`.
    pub fn named_stats(&self, tensors: &[(String, HostTensor)], device: &B::Device) -> Option<BnSet<B>> {
        let by_name: BTreeMap<&str, &HostTensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let full = self.net.full_width();
        let mut set = self.empty_stats(crate::runtime::WidthConfig::new(full).key());
        for (id, l) in self.net.layers.iter() {
            if l.op != Op::BatchNorm {
                continue;
            }
            let stat =
                |s: &str| by_name.get(format!("{}.{s}", l.name).as_str()).filter(|t| t.shape == [l.channels as usize]);
            let (mean, var) = (stat("running_mean")?, stat("running_var")?);
            set.layers[id.index()] = Some((mean.to_tensor(device), var.to_tensor(device)));
        }
        Some(set)
    }
}
