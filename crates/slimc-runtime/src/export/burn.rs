//! The Burn format: a [`FixedNet`] — the subnet as plain `burn::nn` layers (`Conv2d`,
//! `BatchNorm` with its running statistics, `Linear`, `LayerNorm` over channels-last
//! positions) and layer scales as bare parameters — saved as a named MessagePack
//! record (`OUT.mpk`), next to `OUT.json`, which holds the `.slim` source, settings and
//! channels the layers were built from. [`open`] rebuilds the network from the JSON and
//! loads the record: no slimmable network or checkpoint is needed to run it.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{ExportError, FixedParams, HostTensor, Subnet, SubnetInfo};
use crate::ir::{LayerId, LayerShape, Network, Op, ParamValue};
use crate::runtime::checkpoint::{self, write_atomic};
use crate::runtime::{activation, attention, merge, pool, BN_EPS};

/// One IR layer's parameters as a Burn layer.
#[derive(Module, Debug)]
pub enum FixedLayer<B: Backend> {
    /// A layer without parameters, or a BN folded into its conv.
    None(PhantomData<B>),
    Conv(Conv2d<B>),
    ConvTranspose(ConvTranspose2d<B>),
    Linear(Linear<B>),
    BatchNorm(BatchNorm<B>),
    LayerNorm(LayerNorm<B>),
    /// A layer scale's γ.
    Scale(Param<Tensor<B, 1>>),
    /// A class token's or position embedding's table `[C, P]`.
    Table(Param<Tensor<B, 2>>),
}

/// A fixed-width network of plain Burn layers, run over the IR at fixed channels.
#[derive(Module, Debug)]
pub struct FixedNet<B: Backend> {
    pub layers: Vec<FixedLayer<B>>,
    #[module(skip)]
    pub net: Arc<Network>,
    #[module(skip)]
    pub shapes: Vec<LayerShape>,
}

/// `OUT.json`: what [`open`] rebuilds the network from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnMeta {
    /// [`crate::format::BURN`]; 1 when absent (written before exports were numbered).
    #[serde(default = "crate::format::unnumbered")]
    pub format: u32,
    pub slimc_version: String,
    pub source_path: String,
    pub source: String,
    pub settings: Vec<(String, ParamValue)>,
    pub rounding: String,
    /// Layers (by index) whose BN was folded into the conv before them.
    pub folded: Vec<usize>,
    #[serde(flatten)]
    pub info: SubnetInfo,
}

impl<B: Backend> FixedNet<B> {
    /// Layers with fresh parameters of the right shapes (`folded`: BNs folded away).
    #[deny(clippy::wildcard_enum_match_arm)]
    fn skeleton(net: Arc<Network>, shapes: Vec<LayerShape>, folded: &[bool], device: &B::Device) -> FixedNet<B> {
        // Convs whose BN was folded into them: they have a bias.
        let mut folded_into = vec![false; shapes.len()];
        for (id, l) in net.layers.iter() {
            if folded[id.index()] {
                folded_into[l.inputs[0].index()] = true;
            }
        }
        let mut layers = Vec::with_capacity(shapes.len());
        for (id, l) in net.layers.iter() {
            let s = shapes[id.index()];
            let (i, o) = (s.in_c as usize, s.out as usize);
            let layer = match &l.op {
                Op::Conv { kernel, stride, padding, dilation, bias, .. } => {
                    let [ph, pw] = padding.map(|v| v as usize);
                    let conv = Conv2dConfig::new([i, o], kernel.map(|v| v as usize))
                        .with_stride(stride.map(|v| v as usize))
                        .with_dilation(dilation.map(|v| v as usize))
                        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                        .with_groups(s.groups as usize)
                        .with_bias(*bias || folded_into[id.index()]);
                    FixedLayer::Conv(conv.init(device))
                }
                Op::ConvTranspose { kernel, stride, padding, output_padding, bias } => {
                    let us = |a: &[u32; 2]| a.map(|v| v as usize);
                    let conv = ConvTranspose2dConfig::new([i, o], us(kernel))
                        .with_stride(us(stride))
                        .with_padding(us(padding))
                        .with_padding_out(us(output_padding))
                        .with_bias(*bias);
                    FixedLayer::ConvTranspose(conv.init(device))
                }
                Op::Linear { bias } => FixedLayer::Linear(LinearConfig::new(i, o).with_bias(*bias).init(device)),
                Op::BatchNorm if !folded[id.index()] => {
                    FixedLayer::BatchNorm(BatchNormConfig::new(o).with_epsilon(BN_EPS).init(device))
                }
                Op::LayerNorm { eps } => FixedLayer::LayerNorm(LayerNormConfig::new(o).with_epsilon(*eps).init(device)),
                Op::LayerScale { .. } => FixedLayer::Scale(Param::from_tensor(Tensor::ones([o], device))),
                Op::ClassToken => FixedLayer::Table(Param::from_tensor(Tensor::zeros([o, 1], device))),
                Op::PosEmbed { positions } => {
                    FixedLayer::Table(Param::from_tensor(Tensor::zeros([o, *positions as usize], device)))
                }
                Op::Attend { heads, window: Some(w), .. } => {
                    let rows = heads.split(s.out).0 as usize;
                    FixedLayer::Table(Param::from_tensor(Tensor::zeros([rows, w.relative_positions()], device)))
                }
                // A folded BN lives in its conv; every op without weights is listed, so that
                // a new op must get its Burn module here.
                Op::BatchNorm
                | Op::Input
                | Op::Act(_)
                | Op::MaxPool { .. }
                | Op::AvgPool { .. }
                | Op::GlobalAvgPool
                | Op::AdaptiveAvgPool { .. }
                | Op::Flatten
                | Op::Upsample { .. }
                | Op::Attend { window: None, .. }
                | Op::Tokens
                | Op::Token { .. }
                | Op::Dropout { .. }
                | Op::DropPath { .. }
                | Op::Add
                | Op::Mul
                | Op::Concat
                | Op::Split { .. }
                | Op::Slice { .. }
                | Op::Shuffle { .. }
                | Op::Subsample { .. }
                | Op::ZeroPad => FixedLayer::None(PhantomData),
            };
            layers.push(layer);
        }
        FixedNet { layers, net, shapes }
    }

    /// The subnet's parameters in Burn layers on `device`.
    pub fn from_subnet(subnet: &Subnet, device: &B::Device) -> FixedNet<B> {
        let folded: Vec<bool> = subnet.layers.iter().map(|p| *p == FixedParams::Folded).collect();
        let mut fixed = Self::skeleton(subnet.net.clone(), subnet.shapes.clone(), &folded, device);
        for (layer, p) in fixed.layers.iter_mut().zip(&subnet.layers) {
            let param = |t: &HostTensor| Param::from_tensor(t.to_tensor::<B, 1>(device));
            match (p, layer) {
                (FixedParams::Weighted { weight, bias }, FixedLayer::Conv(conv)) => {
                    conv.weight = Param::from_tensor(weight.to_tensor(device));
                    conv.bias = bias.as_ref().map(param);
                }
                (FixedParams::Weighted { weight, bias }, FixedLayer::ConvTranspose(conv)) => {
                    conv.weight = Param::from_tensor(weight.to_tensor(device));
                    conv.bias = bias.as_ref().map(param);
                }
                (FixedParams::Weighted { weight, bias }, FixedLayer::Linear(lin)) => {
                    lin.weight = Param::from_tensor(weight.to_tensor(device));
                    lin.bias = bias.as_ref().map(param);
                }
                (FixedParams::Scale { gamma, beta }, FixedLayer::LayerNorm(ln)) => {
                    ln.gamma = param(gamma);
                    ln.beta = beta.as_ref().map(param);
                }
                (FixedParams::Scale { gamma, .. }, FixedLayer::Scale(scale)) => *scale = param(gamma),
                (FixedParams::Weighted { weight, .. }, FixedLayer::Table(table)) => {
                    *table = Param::from_tensor(weight.to_tensor(device));
                }
                (FixedParams::Bn(v), FixedLayer::BatchNorm(bn)) => {
                    let t = |d: &Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(d.clone(), [d.len()]), device);
                    bn.gamma = Param::from_tensor(t(&v.gamma));
                    bn.beta = Param::from_tensor(t(&v.beta));
                    bn.running_mean = RunningState::new(t(&v.mean));
                    bn.running_var = RunningState::new(t(&v.var));
                }
                (FixedParams::None | FixedParams::Folded, FixedLayer::None(_)) => {}
                (p, layer) => unreachable!("a subnet layer's {p:?} in a Burn {layer:?}"),
            }
        }
        fixed
    }

    /// Logits `[N, classes]` of a normalised `[N, C, H, W]` batch (inference).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let net = &*self.net;
        let mut values: Vec<Option<Tensor<B, 4>>> = vec![None; net.layers.len()];
        let mut input = Some(x);
        for (id, l) in net.layers.iter() {
            let i = id.index();
            let mut ins = l.inputs.iter().map(|j| values[j.index()].clone().expect("inputs come first"));
            let p = &self.layers[i];
            let out = match &l.op {
                Op::Input => input.take().expect("one input"),
                Op::Conv { .. } | Op::ConvTranspose { .. } | Op::Linear { .. } | Op::BatchNorm => {
                    let x = ins.next().expect("an input");
                    match p {
                        FixedLayer::Conv(conv) => conv.forward(x),
                        FixedLayer::ConvTranspose(conv) => conv.forward(x),
                        FixedLayer::Linear(linear) => {
                            let [n, c, _, _] = x.dims();
                            let y = linear.forward(x.reshape([n, c]));
                            let o = y.dims()[1];
                            y.reshape([n, o, 1, 1])
                        }
                        FixedLayer::BatchNorm(bn) => bn.forward(x),
                        // A BN folded into its conv.
                        FixedLayer::None(_) => x,
                        FixedLayer::LayerNorm(_) | FixedLayer::Scale(_) | FixedLayer::Table(_) => {
                            unreachable!("{:?} holds {p:?}", l.op)
                        }
                    }
                }
                Op::Act(a) => activation::forward(ins.next().expect("input"), *a),
                Op::MaxPool { .. }
                | Op::AvgPool { .. }
                | Op::GlobalAvgPool
                | Op::AdaptiveAvgPool { .. }
                | Op::Flatten => pool::forward(ins.next().expect("input"), &l.op),
                Op::Attend { heads, share, window } => {
                    let (q, k, v) = (ins.next(), ins.next(), ins.next());
                    let table = if let FixedLayer::Table(table) = p { Some(table.val()) } else { None };
                    attention::attend(q.expect("q"), k.expect("k"), v.expect("v"), (*heads, *share, *window), table)
                }
                Op::Upsample { to, mode } => {
                    let x = ins.next().expect("upsample input");
                    let like = ins.next().map(|t| [t.dims()[2], t.dims()[3]]);
                    pool::upsample(x, *to, *mode, like)
                }
                Op::LayerNorm { .. } => {
                    let FixedLayer::LayerNorm(ln) = p else { unreachable!("a layer norm's layer is {p:?}") };
                    let x = ins.next().expect("layer norm input").permute([0, 2, 3, 1]);
                    ln.forward(x).permute([0, 3, 1, 2])
                }
                Op::LayerScale { .. } => {
                    let FixedLayer::Scale(scale) = p else { unreachable!("a layer scale's layer is {p:?}") };
                    let x = ins.next().expect("layer scale input");
                    let c = x.dims()[1];
                    x * scale.val().reshape([1, c, 1, 1])
                }
                Op::ClassToken | Op::PosEmbed { .. } => {
                    let FixedLayer::Table(table) = p else { unreachable!("a token table's layer is {p:?}") };
                    let x = ins.next().expect("token input");
                    match l.op {
                        Op::ClassToken => attention::class_token(x, table.val()),
                        _ => attention::pos_embed(x, table.val()),
                    }
                }
                Op::Tokens => attention::tokens(ins.next().expect("input")),
                Op::Token { index } => attention::token(ins.next().expect("input"), *index as usize),
                Op::Dropout { .. } | Op::DropPath { .. } => ins.next().expect("input"),
                Op::Add => ins.reduce(|a, b| a + b).expect("operands"),
                Op::Mul => ins.reduce(merge::mul).expect("operands"),
                Op::Concat => Tensor::cat(ins.collect(), 1),
                Op::Split { part, parts } => merge::split(ins.next().expect("input"), *part, *parts),
                Op::Slice { start, end } => merge::slice(ins.next().expect("input"), *start, *end),
                Op::Shuffle { groups } => merge::shuffle(ins.next().expect("input"), *groups),
                Op::Subsample { stride, offset } => merge::subsample(ins.next().expect("input"), *stride, *offset),
                Op::ZeroPad => merge::zeropad(ins.next().expect("input"), self.shapes[i].out as usize),
            };
            values[i] = Some(out);
        }
        let out = values[net.output.index()].take().expect("the output is computed");
        let [n, c, _, _] = out.dims();
        out.reshape([n, c])
    }
}

/// `OUT.json` next to `OUT.mpk`.
pub fn meta_path(mpk: &Path) -> PathBuf {
    mpk.with_extension("json")
}

/// Writes `subnet` as `OUT.mpk` (`path` with its extension replaced) and `OUT.json`.
pub fn save(subnet: &Subnet, source: &checkpoint::Meta, path: &Path) -> Result<PathBuf, ExportError> {
    let mpk = path.with_extension("mpk");
    let device = Default::default();
    let fixed = FixedNet::<crate::runtime::device::Cpu>::from_subnet(subnet, &device);
    checkpoint::write_record(fixed, &mpk)?;
    let meta = BurnMeta {
        format: crate::format::BURN,
        slimc_version: env!("CARGO_PKG_VERSION").into(),
        source_path: source.source_path.clone(),
        source: source.source.clone(),
        settings: source.settings.clone(),
        rounding: source.rounding.clone(),
        folded: subnet.layers.iter().enumerate().filter(|(_, p)| **p == FixedParams::Folded).map(|(i, _)| i).collect(),
        info: subnet.info.clone(),
    };
    let json = serde_json::to_vec_pretty(&meta)?;
    write_atomic(&meta_path(&mpk), &json)?;
    Ok(mpk)
}

/// Loads an exported Burn model (`OUT.mpk` with its `OUT.json`).
pub fn open<B: Backend>(path: &Path, device: &B::Device) -> Result<(FixedNet<B>, BurnMeta), ExportError> {
    let mpk = path.with_extension("mpk");
    let json_path = meta_path(&mpk);
    let bytes = std::fs::read(&json_path).map_err(|error| ExportError::Io { path: json_path.clone(), error })?;
    let corrupt = |reason: String| ExportError::NotAnExport { path: json_path.clone(), reason };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let found = crate::format::check(&doc, crate::format::BURN).map_err(|e| corrupt(e.to_string()))?;
    if found < crate::format::BURN {
        return Err(corrupt(format!(
            "has format version {found}, from an older slimc; slimc {} reads version {}: export it again from its run",
            env!("CARGO_PKG_VERSION"),
            crate::format::BURN
        )));
    }
    let meta: BurnMeta = serde_json::from_value(doc).map_err(|e| corrupt(e.to_string()))?;
    let info = &meta.info;
    let net = checkpoint::compile_saved(&meta.source_path, &meta.source, &meta.settings, &meta.rounding, &info.network)
        .map_err(|why| corrupt(format!("its source {why}")))?;
    // Only a BN reading a conv can have been folded.
    let foldable = |i: usize| {
        i < net.layers.len() && {
            let l = &net.layers[LayerId::new(i)];
            l.op == Op::BatchNorm && matches!(net.layers[l.inputs[0]].op, Op::Conv { .. })
        }
    };
    if !net.space.admits(&info.channels) || !meta.folded.iter().all(|&i| foldable(i)) {
        return Err(corrupt("its channels or folded layers do not fit the network".into()));
    }
    let shapes = net.layer_shapes(&info.channels);
    let mut folded = vec![false; net.layers.len()];
    meta.folded.iter().for_each(|&i| folded[i] = true);
    let skeleton = FixedNet::<B>::skeleton(Arc::new(net), shapes, &folded, device);
    let expected: Vec<Vec<usize>> = skeleton.param_shapes();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let record: FixedNetRecord<B> = recorder
        .load(mpk.clone(), device)
        .map_err(|e| ExportError::NotAnExport { path: mpk.clone(), reason: e.to_string() })?;
    let misfit = || ExportError::NotAnExport { path: mpk.clone(), reason: "the weights do not fit the network".into() };
    // Burn panics when a record's structure (its layer count, a layer's kind) is not the
    // module's: compare first.
    if !skeleton.fits(&record) {
        return Err(misfit());
    }
    let fixed = skeleton.load_record(record);
    if fixed.param_shapes() != expected {
        return Err(misfit());
    }
    Ok((fixed, meta))
}

impl<B: Backend> FixedNet<B> {
    /// Whether `record` has this network's structure: as many layers, each of the same
    /// kind, with the same optional tensors present.
    fn fits(&self, record: &FixedNetRecord<B>) -> bool {
        self.layers.len() == record.layers.len()
            && self.layers.iter().zip(&record.layers).all(|(m, r)| match (m, r) {
                (FixedLayer::None(_), FixedLayerRecord::None(_)) => true,
                (FixedLayer::Conv(m), FixedLayerRecord::Conv(r)) => m.bias.is_some() == r.bias.is_some(),
                (FixedLayer::ConvTranspose(m), FixedLayerRecord::ConvTranspose(r)) => {
                    m.bias.is_some() == r.bias.is_some()
                }
                (FixedLayer::Linear(m), FixedLayerRecord::Linear(r)) => m.bias.is_some() == r.bias.is_some(),
                (FixedLayer::BatchNorm(_), FixedLayerRecord::BatchNorm(_))
                | (FixedLayer::Scale(_), FixedLayerRecord::Scale(_))
                | (FixedLayer::Table(_), FixedLayerRecord::Table(_)) => true,
                (FixedLayer::LayerNorm(m), FixedLayerRecord::LayerNorm(r)) => m.beta.is_some() == r.beta.is_some(),
                _ => false,
            })
    }

    /// Every parameter's shape, in order (to check a loaded record against the network).
    fn param_shapes(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        for l in &self.layers {
            let mut push = |t: Option<Vec<usize>>| out.extend(t);
            match l {
                FixedLayer::None(_) => {}
                FixedLayer::Conv(c) => {
                    push(Some(c.weight.dims().to_vec()));
                    push(c.bias.as_ref().map(|b| b.dims().to_vec()));
                }
                FixedLayer::ConvTranspose(c) => {
                    push(Some(c.weight.dims().to_vec()));
                    push(c.bias.as_ref().map(|b| b.dims().to_vec()));
                }
                FixedLayer::Linear(lin) => {
                    push(Some(lin.weight.dims().to_vec()));
                    push(lin.bias.as_ref().map(|b| b.dims().to_vec()));
                }
                FixedLayer::BatchNorm(bn) => {
                    push(Some(bn.gamma.dims().to_vec()));
                    push(Some(bn.running_var.value().dims().to_vec()));
                }
                FixedLayer::LayerNorm(ln) => {
                    push(Some(ln.gamma.dims().to_vec()));
                    push(ln.beta.as_ref().map(|b| b.dims().to_vec()));
                }
                FixedLayer::Scale(s) => push(Some(s.dims().to_vec())),
                FixedLayer::Table(t) => push(Some(t.dims().to_vec())),
            }
        }
        out
    }
}
