//! The Burn runtime: a [`SlimNet`] holds full-width parameters for every layer of an IR
//! network and runs forward (and, on an autodiff backend, backward) at any width. Each op
//! kind has its own file; Burn choices live only here, never in sema or the IR.

pub(crate) mod activation;
pub(crate) mod attention;
pub mod backend;
pub mod checkpoint;
mod conv;
pub mod device;
pub mod graphs;
pub mod init;
pub mod kernels;
mod linear;
pub(crate) mod merge;
mod norm;
pub mod params;
pub(crate) mod pool;

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::ir::{LayerShape, Network, Op};
pub use backend::{SlimAutodiff, SlimBackend};
pub use norm::{calibrate, BnSet, BnStats, BN_EPS};
pub use params::LayerParams;

/// A width configuration: channels per search dimension (after decode), and for
/// switchable BN, which switch's parameters to use.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WidthConfig {
    pub dims: Vec<u32>,
    pub switch: Option<usize>,
}

impl WidthConfig {
    pub fn new(dims: Vec<u32>) -> WidthConfig {
        WidthConfig { dims, switch: None }
    }

    /// The key calibrated BN statistics are stored under: `16-8-8-…[@switch]`.
    pub fn key(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(u32::to_string).collect();
        match self.switch {
            Some(s) => format!("{}@{s}", dims.join("-")),
            None => dims.join("-"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The input batch does not have the network's channel count.
    #[error("input batch is {got:?}, the network expects [N, {}, H, W]", expected[0])]
    InputShape { expected: [usize; 3], got: [usize; 4] },
    /// A position embedding or token index met a map of another size than it was compiled
    /// for (an input of another size than the network's).
    #[error(
        "layer {layer} holds positions for a {}x{} map but got {}x{}: this network takes {}x{} inputs (compile it for another size with `--set size=...`)",
        expected[0], expected[1], got[0], got[1], input[0], input[1]
    )]
    Positions { layer: String, expected: [u32; 2], got: [usize; 2], input: [u32; 2] },
    /// Multipliers that do not decode.
    #[error(transparent)]
    Decode(#[from] crate::ir::DecodeError),
    /// Channels that are not a configuration of the network.
    #[error(transparent)]
    Channels(#[from] crate::ir::ChannelsError),
    /// A uniform width of a switchable-BN model that is none of its switches.
    #[error("{width} is not one of the BN switches {switches:?}")]
    NotASwitch { width: f64, switches: Vec<f64> },
    #[error("BN switch {switch} does not exist (the model has {count})")]
    NoSuchSwitch { switch: usize, count: usize },
    /// Evaluation at a width whose BN statistics were never calibrated.
    #[error("no BN statistics for width {key}; calibrate that width first")]
    NotCalibrated { key: String },
    #[error("BN calibration needs at least one batch")]
    NoCalibrationBatch,
    /// A network whose output is a feature map, run where class logits are needed.
    #[error("`{network}` outputs a {c}x{h}x{w} map, not class logits: training, evaluation, search and export need a network that ends in a 1x1 output (e.g. `avgpool -> flatten -> linear(classes)`)")]
    SpatialOutput { network: String, c: u32, h: u32, w: u32 },
    /// A training step's loss is not finite.
    #[error("the loss became {loss}")]
    Diverged { loss: f64 },
}

impl RuntimeError {
    /// `Ok` for a classifier (a 1x1 output: class logits), [`RuntimeError::SpatialOutput`]
    /// for a network that outputs a map.
    pub fn classifier(net: &Network) -> Result<(), RuntimeError> {
        let out = &net.layers[net.output];
        match out.hw {
            [1, 1] => Ok(()),
            [h, w] => Err(RuntimeError::SpatialOutput { network: net.name.clone(), c: out.channels, h, w }),
        }
    }
}

/// The most samples per evaluation chunk on a host backend ([`SlimNet::forward_map`]): a
/// chunk's activations stay nearer the cores than a half batch's (ResNet-20 at batch 128:
/// +6% against halves, alternating runs; MobileNetV2's 32-sample halves keep their size).
pub const EVAL_CHUNK: usize = 32;

/// The leading slice `[..extents[0], ..extents[1], …]` of a full-width tensor: the part a
/// narrower width uses ([`Op::weights`] gives the extents); the tensor itself at full width.
pub fn leading<B: Backend, const D: usize>(t: Tensor<B, D>, extents: [usize; D]) -> Tensor<B, D> {
    if t.dims() == extents {
        t
    } else {
        t.slice(extents.map(|e| 0..e))
    }
}

/// A slimmable network: full-width parameters plus the IR it runs.
#[derive(Module, Debug)]
pub struct SlimNet<B: Backend> {
    pub layers: Vec<LayerParams<B>>,
    #[module(skip)]
    pub net: Arc<Network>,
    /// Width multipliers of the BN switches (S-Nets); empty for shared BN.
    #[module(skip)]
    pub switches: Vec<f64>,
}

/// How batch norm normalises during a forward pass.
pub enum Mode<'a, B: Backend> {
    /// Batch statistics (training, calibration); the statistics are returned.
    Train,
    /// Stored statistics of the configuration being run.
    Eval(&'a BnSet<B>),
}

// Not derived: a derive would ask `B: Copy`.
impl<B: Backend> Clone for Mode<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for Mode<'_, B> {}

/// The result of a forward pass.
pub struct Forward<B: Backend, T = Tensor<B, 2>> {
    /// `[N, classes]` ([`SlimNet::forward`]), or the output map `[N, C, H, W]`
    /// ([`SlimNet::forward_map`]).
    pub logits: T,
    /// In train mode, each BN layer's batch mean and unbiased variance (indexed like layers).
    pub batch_stats: Vec<Option<(Tensor<B, 1>, Tensor<B, 1>)>>,
}

/// One learned tensor of a [`SlimNet`] ([`SlimNet::learned`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    /// The IR layer it belongs to (an index into `net.layers`).
    pub layer: usize,
    pub id: ParamId,
    pub dims: Vec<usize>,
}

/// Burn's walk over a layer's parameters, in declaration order, handing each to `f` with
/// its values read back to the host where `values` asks.
struct Walk<F> {
    values: bool,
    f: F,
}

impl<B: Backend, F: FnMut(ParamId, Vec<usize>, Option<TensorData>)> ModuleVisitor<B> for Walk<F> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let dims = t.dims().to_vec();
        (self.f)(param.id, dims, self.values.then(|| t.into_data()));
    }
}

impl<B: Backend> SlimNet<B> {
    /// Builds the module with freshly initialised parameters (Kaiming-normal convs,
    /// PyTorch-default linears, BN γ = 1, β = 0), reproducibly from `seed`.
    pub fn new(net: Arc<Network>, switches: Vec<f64>, seed: u64, device: &B::Device) -> SlimNet<B> {
        let copies = switches.len().max(1);
        let layers =
            net.layers.iter().map(|(id, l)| init::layer(&l.op, &net, l, id.index(), seed, copies, device)).collect();
        SlimNet { layers, net, switches }
    }

    /// The parameters in their stored form ([`params::StoredNet`], what a checkpoint
    /// writes), with their ids.
    pub fn stored(self) -> params::StoredNet<B> {
        params::StoredNet { layers: self.layers.into_iter().map(LayerParams::stored).collect() }
    }

    /// The network `net` (with BN `switches`) on stored parameters, or `None` where a
    /// layer's stored tensors are not the kind its op learns.
    pub fn from_stored(stored: params::StoredNet<B>, net: Arc<Network>, switches: Vec<f64>) -> Option<SlimNet<B>> {
        if stored.layers.len() != net.layers.len() {
            return None;
        }
        let shapes = net.layer_shapes(&net.full_width());
        let layers = stored
            .layers
            .into_iter()
            .zip(net.layers.iter())
            .map(|(s, (id, l))| s.typed().filter(|p| p.is(l.op.weights(shapes[id.index()]))))
            .collect::<Option<Vec<_>>>()?;
        Some(SlimNet { layers, net, switches })
    }

    /// Every learned tensor, in the model's order: layer by layer, and in a layer its
    /// weight, bias, γs and βs. The one walk that checkpoints, hashes, gradient exchange
    /// and divergence checks share.
    pub fn learned(&self) -> Vec<Learned> {
        let mut out = Vec::new();
        for (layer, p) in self.layers.iter().enumerate() {
            p.visit(&mut Walk { values: false, f: |id, dims, _| out.push(Learned { layer, id, dims }) });
        }
        out
    }

    /// Each learned tensor's values (read back to the host), in the order of
    /// [`SlimNet::learned`], with its layer index.
    pub fn for_each_value(&self, mut f: impl FnMut(usize, TensorData)) {
        for (layer, p) in self.layers.iter().enumerate() {
            p.visit(&mut Walk {
                values: true,
                f: |_, _, values: Option<TensorData>| f(layer, values.expect("values asked")),
            });
        }
    }

    /// The width configuration of a uniform multiplier (and the matching switch, if any).
    pub fn uniform(&self, w: f64) -> Result<WidthConfig, RuntimeError> {
        let dims = self.net.decode_uniform(w, self.net.rounding)?;
        let switch = if self.switches.is_empty() {
            None
        } else {
            let s = self.switches.iter().position(|s| (s - w).abs() < 1e-9);
            Some(s.ok_or_else(|| RuntimeError::NotASwitch { width: w, switches: self.switches.clone() })?)
        };
        Ok(WidthConfig { dims, switch })
    }

    /// Parameters in use at `cfg`: the active slices of every weight, bias and BN affine
    /// ([`Op::weights`] at each layer's shape, as [`crate::cost`] counts them).
    pub fn active_params(&self, cfg: &WidthConfig) -> u64 {
        let shapes = self.net.layer_shapes(&cfg.dims);
        self.net.layers.iter().map(|(id, l)| l.op.weights(shapes[id.index()]).count()).sum()
    }

    /// Every BN layer's statistics slots, empty, for a configuration.
    pub fn empty_stats(&self, key: String) -> BnSet<B> {
        BnSet { key, layers: vec![None; self.layers.len()] }
    }
}

impl<B: SlimBackend> SlimNet<B> {
    /// Runs a classifier at `cfg` on a `[N, C, H, W]` batch: logits `[N, classes]`.
    pub fn forward(&self, x: Tensor<B, 4>, cfg: &WidthConfig, mode: Mode<'_, B>) -> Result<Forward<B>, RuntimeError> {
        RuntimeError::classifier(&self.net)?;
        let f = self.forward_map(x, cfg, mode)?;
        let [n, c, _, _] = f.logits.dims();
        Ok(Forward { logits: f.logits.reshape([n, c]), batch_stats: f.batch_stats })
    }

    /// Runs any network (a classifier, or one that outputs a map, such as a U-Net) at `cfg`
    /// on a `[N, C, H, W]` batch: the output `[N, C, H, W]`.
    ///
    /// In evaluation on a host backend with several threads, the batch runs as chunks side
    /// by side (at least two, of at most [`EVAL_CHUNK`] samples; [`SlimBackend::HOST_THREADS`]);
    /// evaluation treats every sample on its own, so the output is the whole batch's.
    pub fn forward_map(
        &self,
        x: Tensor<B, 4>,
        cfg: &WidthConfig,
        mode: Mode<'_, B>,
    ) -> Result<Forward<B, Tensor<B, 4>>, RuntimeError> {
        let n = x.dims()[0];
        match mode {
            Mode::Eval(_) if B::HOST_THREADS && n >= 2 && rayon::current_num_threads() > 1 => {
                let chunk = n.div_ceil(2).min(EVAL_CHUNK);
                let [c, h, w] = [1, 2, 3].map(|d| x.dims()[d]);
                let parts: Vec<Tensor<B, 4>> =
                    (0..n).step_by(chunk).map(|s| x.clone().slice([s..(s + chunk).min(n), 0..c, 0..h, 0..w])).collect();
                let outs = parts
                    .into_par_iter()
                    .map(|part| self.forward_whole(part, cfg, mode))
                    .collect::<Result<Vec<_>, _>>()?;
                let batch_stats = outs[0].batch_stats.clone();
                Ok(Forward { logits: Tensor::cat(outs.into_iter().map(|o| o.logits).collect(), 0), batch_stats })
            }
            _ => self.forward_whole(x, cfg, mode),
        }
    }

    fn forward_whole(
        &self,
        x: Tensor<B, 4>,
        cfg: &WidthConfig,
        mode: Mode<'_, B>,
    ) -> Result<Forward<B, Tensor<B, 4>>, RuntimeError> {
        let net = &*self.net;
        let [n, c, h, w] = x.dims();
        if c != net.input[0] as usize {
            let expected = net.input.map(|v| v as usize);
            return Err(RuntimeError::InputShape { expected, got: [n, c, h, w] });
        }
        if cfg.dims.len() != net.space.dims.len() {
            let (expected, got) = (net.space.dims.len(), cfg.dims.len());
            return Err(crate::ir::ChannelsError::Length { expected, got }.into());
        }
        if let Some(dim) = cfg.dims.iter().zip(&net.space.dims).position(|(c, d)| *c == 0 || *c > d.base) {
            let (channels, base) = (cfg.dims[dim], net.space.dims[dim].base);
            return Err(crate::ir::ChannelsError::Range { dim, channels, base }.into());
        }
        let switch = cfg.switch.unwrap_or(0);
        let count = self.switches.len().max(1);
        if switch >= count {
            return Err(RuntimeError::NoSuchSwitch { switch, count });
        }
        let shapes = net.layer_shapes(&cfg.dims);
        let last_use = net.last_uses();
        let folds = match mode {
            Mode::Eval(_) => net.bn_folds(),
            Mode::Train => Vec::new(),
        };
        // The layers a conv computes inside itself, skipped when their turn comes.
        let mut absorbed = vec![false; net.layers.len()];
        for fold in folds.iter().flatten() {
            absorbed[fold.bn.index()] = true;
            if let Some((act, _)) = fold.clamp {
                absorbed[act.index()] = true;
            }
        }
        let mut values: Vec<Option<Tensor<B, 4>>> = vec![None; net.layers.len()];
        let mut stats = vec![None; net.layers.len()];
        let mut x = Some(x);
        for (id, layer) in net.layers.iter() {
            let i = id.index();
            if absorbed[i] {
                // A BN (or its activation) that a conv already applied; its input was never kept.
                continue;
            }
            let inputs: Vec<Tensor<B, 4>> = layer
                .inputs
                .iter()
                .map(|j| values[j.index()].clone().expect("inputs are computed before use"))
                .collect();
            let folded = match &mode {
                Mode::Eval(set) => folds[i].map(|fold| (fold, *set)),
                Mode::Train => None,
            };
            // Where the output goes: this layer's slot, or the last folded layer's.
            let (slot, out) = match (&layer.op, folded) {
                (Op::Input, _) => (i, x.take().expect("one input layer")),
                (op, Some((fold, set))) => {
                    let bn = fold.bn.index();
                    let affine = self.bn_affine(bn, shapes[bn].out as usize, switch, set)?;
                    let x = inputs.into_iter().next().expect("a conv has an input");
                    let (slot, clamp) = fold.clamp.map_or((bn, None), |(act, range)| (act.index(), Some(range)));
                    (slot, conv::forward_folded(x, &self.layers[i], op, shapes[i], affine, clamp))
                }
                (op, None) => (i, self.layer(op, i, inputs, shapes[i], switch, &mode, &mut stats)?),
            };
            values[slot] = Some(out);
            // Free every tensor whose last reader was this layer.
            for j in &layer.inputs {
                if last_use[j.index()] == i {
                    values[j.index()] = None;
                }
            }
        }
        let out = values[net.output.index()].take().expect("the output is computed");
        Ok(Forward { logits: out, batch_stats: stats })
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        op: &Op,
        i: usize,
        mut inputs: Vec<Tensor<B, 4>>,
        shape: LayerShape,
        switch: usize,
        mode: &Mode<'_, B>,
        stats: &mut [Option<(Tensor<B, 1>, Tensor<B, 1>)>],
    ) -> Result<Tensor<B, 4>, RuntimeError> {
        let p = &self.layers[i];
        let x = inputs.remove(0);
        Ok(match op {
            Op::Input => x,
            Op::Conv { .. } => conv::forward(x, p, op, shape),
            Op::ConvTranspose { .. } => conv::transpose_forward(x, p, op, shape),
            Op::Linear { .. } => linear::forward(x, p, shape),
            Op::BatchNorm => {
                let (gamma, beta) = p.affine().expect("a BN has γ and β").at(switch);
                match mode {
                    Mode::Train => {
                        let (y, mean, var) = norm::train(x, gamma, beta, shape.out as usize);
                        stats[i] = Some((mean, var));
                        y
                    }
                    Mode::Eval(set) => {
                        let (mean, var) = stored(set, i)?;
                        norm::eval(x, gamma, beta, mean.clone(), var.clone(), shape.out as usize)
                    }
                }
            }
            Op::Act(a) => activation::forward(x, *a),
            Op::MaxPool { .. } | Op::AvgPool { .. } | Op::GlobalAvgPool | Op::AdaptiveAvgPool { .. } | Op::Flatten => {
                pool::forward(x, op)
            }
            Op::Upsample { to, mode } => {
                let like = inputs.first().map(|t| [t.dims()[2], t.dims()[3]]);
                pool::upsample(x, *to, *mode, like)
            }
            Op::Attend { heads, share, window } => {
                let (k, v) = (inputs.remove(0), inputs.remove(0));
                let table = p.matrix().map(|m| m.weight.val());
                attention::attend(x, k, v, (*heads, *share, *window), table)
            }
            Op::Tokens => attention::tokens(x),
            // A position embedding or a token index holds for the input size compiled for.
            Op::Token { index } if (*index as usize) < x.dims()[2] * x.dims()[3] => {
                attention::token(x, *index as usize)
            }
            Op::PosEmbed { positions } if (*positions as usize) == x.dims()[2] * x.dims()[3] => {
                attention::pos_embed(x, p.matrix().expect("a position embedding's table").weight.val())
            }
            Op::Token { .. } | Op::PosEmbed { .. } => {
                let [_, _, h, w] = x.dims();
                let l = &self.net.layers[crate::ir::LayerId::new(i)];
                let expected = self.net.layers[l.inputs[0]].hw;
                let input = [self.net.input[1], self.net.input[2]];
                return Err(RuntimeError::Positions { layer: l.name.clone(), expected, got: [h, w], input });
            }
            Op::ClassToken => attention::class_token(x, p.matrix().expect("a class token's table").weight.val()),
            Op::LayerNorm { eps } => {
                let (gamma, beta) = p.affine().expect("a layer norm has γ and β").at(0);
                norm::layer_norm(x, gamma, beta, *eps)
            }
            Op::LayerScale { .. } => norm::layer_scale(x, p.scale().expect("a layer scale has γ").gamma.val()),
            Op::Dropout { p: rate } => match mode {
                Mode::Train => merge::dropout(x, *rate),
                Mode::Eval(_) => x,
            },
            Op::DropPath { p: rate } => match mode {
                Mode::Train => merge::drop_path(x, *rate),
                Mode::Eval(_) => x,
            },
            Op::Add => inputs.into_iter().fold(x, |a, b| a + b),
            Op::Mul => inputs.into_iter().fold(x, merge::mul),
            Op::Concat => merge::concat(x, inputs),
            Op::Split { part, parts } => merge::split(x, *part, *parts),
            Op::Slice { start, end } => merge::slice(x, *start, *end),
            Op::Shuffle { groups } => merge::shuffle(x, *groups),
            Op::Subsample { stride, offset } => merge::subsample(x, *stride, *offset),
            Op::ZeroPad => merge::zeropad(x, shape.out as usize),
        })
    }
}

impl<B: SlimBackend> SlimNet<B> {
    /// BN layer `i` in evaluation mode on `c` channels as a per-channel `(scale, shift)`.
    fn bn_affine(
        &self,
        i: usize,
        c: usize,
        switch: usize,
        set: &BnSet<B>,
    ) -> Result<(Tensor<B, 1>, Tensor<B, 1>), RuntimeError> {
        let (gamma, beta) = self.layers[i].affine().expect("a BN has γ and β").at(switch);
        let (mean, var) = stored(set, i)?;
        Ok(norm::affine(gamma, beta, mean.clone(), var.clone(), c))
    }
}

/// BN layer `i`'s stored statistics.
fn stored<B: Backend>(set: &BnSet<B>, i: usize) -> Result<&(Tensor<B, 1>, Tensor<B, 1>), RuntimeError> {
    set.layers.get(i).and_then(Option::as_ref).ok_or_else(|| RuntimeError::NotCalibrated { key: set.key.clone() })
}

/// Calibrated BN statistics for many configurations, by [`WidthConfig::key`].
pub type BnSets<B> = HashMap<String, BnSet<B>>;
