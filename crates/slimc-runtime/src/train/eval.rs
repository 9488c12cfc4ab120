//! The evaluation of a trained run at a list of widths or configurations, and against
//! fixed-width baselines: what `slimc eval` reports (the measurements are `measure`'s).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::configs::{self, ConfigRef};
pub use super::measure::{accuracy, calibration, Accuracy};
use super::run::{self, RunState, Scheme, TrainOptions};
use super::TrainError;
use crate::cost;
use crate::data::{self, DataSpec, Split};
use crate::ir::Network;
use crate::runtime::checkpoint::Meta;
use crate::runtime::{RuntimeError, SlimBackend, SlimNet, WidthConfig};

/// A trained run opened for evaluation: model, training state and its data.
pub struct Loaded<B: SlimBackend> {
    pub model: SlimNet<B>,
    pub state: RunState,
    /// The checkpoint's metadata (source, settings).
    pub meta: Meta,
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// The training split (BN calibration), the held-out validation split, the test set.
    pub calib: Split,
    pub val: Split,
    pub test: Split,
}

/// Opens a run (or checkpoint) and the data set it trained on (or `data`).
pub fn open<B: SlimBackend>(path: &Path, data: Option<&DataSpec>, dev: &B::Device) -> Result<Loaded<B>, TrainError> {
    let (model, meta, state, dir) = run::open::<B>(path, dev)?;
    let spec = data.cloned().unwrap_or_else(|| state.options.data.clone());
    let loaded = data::load(&spec, model.net.input[1] as usize)?;
    // The check a new run and a resumed one make.
    super::start::fits(&model.net, &loaded)?;
    let (calib, val) = run::splits(&loaded, &state.options);
    Ok(Loaded { model, state, meta, dir, calib, val, test: Split::all(loaded.test.clone()) })
}

/// What to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// One multiplier for the network (and its BN switch, if any).
    Uniform(f64),
    /// One multiplier per search dimension.
    Multipliers(Vec<f64>),
    /// Exact channels per dimension (a `slimc search` result).
    Channels(Vec<u32>),
    /// The largest uniform width with at most these MACs (next to a search result).
    SameMacs(u64),
}

/// One evaluated configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// The series: `slimmable`, `search`, `uniform (same MACs)` or `fixed: PATH`.
    pub series: String,
    pub width: Option<f64>,
    /// The channels of each search dimension over its full-width count.
    pub wm: Vec<f64>,
    pub channels: Vec<u32>,
    pub top1: f64,
    pub top5: Option<f64>,
    pub macs: u64,
    pub params: u64,
}

/// Batch size and calibration batches of an evaluation.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    pub batch: usize,
    pub calibrate: usize,
}

/// The widths a run is evaluated at by default: those its scheme trained (US: quarter
/// steps from its smallest width).
pub fn default_widths(opts: &TrainOptions) -> Vec<f64> {
    match &opts.scheme {
        Scheme::Us | Scheme::Joslim(_) => {
            let mut ws = vec![opts.min_width];
            ws.extend([0.25, 0.5, 0.75, 1.0].into_iter().filter(|&w| w > opts.min_width + 1e-9));
            ws
        }
        Scheme::S(ws) => ws.clone(),
        Scheme::Fixed(w) => vec![*w],
    }
}

/// The uniform widths of a Pareto evaluation: eighth steps from the smallest trained
/// width to 1 (the switches of an S-Nets run, the width of a fixed one).
pub fn pareto_widths(opts: &TrainOptions) -> Vec<f64> {
    match &opts.scheme {
        Scheme::Us | Scheme::Joslim(_) => {
            let mut ws = vec![opts.min_width];
            ws.extend((1..=8).map(|k| f64::from(k) / 8.0).filter(|&w| w > opts.min_width + 1e-9));
            ws
        }
        _ => default_widths(opts),
    }
}

/// The largest uniform width (on a 0.001 grid) whose MACs do not exceed `macs`.
pub fn uniform_at_macs(net: &Network, macs: u64) -> Option<f64> {
    (1..=1000)
        .rev()
        .map(|i| f64::from(i) / 1000.0)
        .find(|&w| net.decode_uniform(w, net.rounding).is_ok_and(|dims| cost::cost(net, &dims).0.macs <= macs))
}

/// Test accuracy, MACs and parameters of `l` at `cfg`, after calibrating BN there.
fn measure<B: SlimBackend>(
    l: &Loaded<B>,
    series: &str,
    width: Option<f64>,
    cfg: &WidthConfig,
    opts: EvalOptions,
    dev: &B::Device,
) -> Result<Row, TrainError> {
    let norm = &l.state.normalize;
    let stats = calibration(&l.model, cfg, &l.calib, norm, opts.batch, opts.calibrate, dev)?;
    let acc = accuracy(&l.model, cfg, &stats, &l.test, norm, opts.batch, dev)?;
    let net = &l.model.net;
    let (c, _) = cost::cost(net, &cfg.dims);
    Ok(Row {
        series: series.into(),
        width,
        wm: net.space.multipliers(&cfg.dims),
        channels: cfg.dims.clone(),
        top1: acc.top1,
        top5: acc.top5,
        macs: c.macs,
        params: c.params,
    })
}

/// Evaluates `l` at every target, in order, on its test set. A `SameMacs` target below
/// every uniform width is left out.
pub fn evaluate<B: SlimBackend>(
    l: &Loaded<B>,
    targets: &[Target],
    opts: EvalOptions,
    dev: &B::Device,
) -> Result<Vec<Row>, TrainError> {
    let net = &l.model.net;
    let non_uniform = targets.iter().any(|t| !matches!(t, Target::Uniform(_) | Target::SameMacs(_)));
    if non_uniform && matches!(l.state.options.scheme, Scheme::S(_)) {
        return Err(TrainError::SwitchableBn);
    }
    let mut rows = Vec::new();
    for target in targets {
        let (series, width, cfg) = match target {
            Target::Uniform(w) => ("slimmable", Some(*w), l.model.uniform(*w)?),
            Target::Multipliers(wm) => {
                ("slimmable", None, WidthConfig::new(net.space.decode(wm, net.rounding).map_err(RuntimeError::from)?))
            }
            Target::Channels(ch) => {
                net.space.check(ch).map_err(RuntimeError::from)?;
                ("search", None, WidthConfig::new(ch.clone()))
            }
            Target::SameMacs(macs) => {
                let Some(w) = uniform_at_macs(net, *macs) else { continue };
                ("uniform (same MACs)", Some(w), l.model.uniform(w)?)
            }
        };
        rows.push(measure(l, series, width, &cfg, opts, dev)?);
    }
    Ok(rows)
}

/// A fixed-width run evaluated at the width it trained, as a baseline series.
pub fn baseline<B: SlimBackend>(
    path: &Path,
    data: Option<&DataSpec>,
    opts: EvalOptions,
    dev: &B::Device,
) -> Result<Row, TrainError> {
    let b = open::<B>(path, data, dev)?;
    let Scheme::Fixed(w) = b.state.options.scheme else { return Err(TrainError::NotFixed(path.to_path_buf())) };
    let cfg = b.model.uniform(w)?;
    measure(&b, &format!("fixed: {}", path.display()), Some(w), &cfg, opts, dev)
}

/// The configurations a reference names ([`configs`]: a search result, a Pareto front or
/// text lines of per-dimension multipliers, optionally `#TARGET`), each exact one followed
/// by the uniform width of the same MACs, by increasing MACs.
pub fn read_configs(reference: &ConfigRef, net: &Network) -> Result<Vec<Target>, TrainError> {
    let picked = configs::targets(reference, net)?;
    // Each exact configuration is evaluated next to the uniform width of the same MACs.
    Ok(picked
        .into_iter()
        .flat_map(|t| match t {
            Target::Channels(ch) => {
                let macs = cost::cost(net, &ch).0.macs;
                vec![Target::Channels(ch), Target::SameMacs(macs)]
            }
            other => vec![other],
        })
        .collect())
}
