//! The evaluation of a trained run at a list of widths or configurations, and against
//! fixed-width baselines: what `slimc eval` reports (the measurements are `measure`'s).

use std::path::{Path, PathBuf};

use super::configs::{self, ConfigRef};
pub use super::loaded::{from_weights, open, Loaded};
pub use super::measure::{accuracy, calibration, Accuracy};
use super::pareto::ParetoFile;

use super::scheme::Scheme;
use super::TrainError;
use crate::cost;
use crate::data::DataSpec;
use crate::ir::Network;
use crate::runtime::{BnSet, RuntimeError, SlimBackend, WidthConfig};

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

/// One evaluated configuration (stored as [`crate::format::eval::Row`]).
#[derive(Clone, Debug, PartialEq)]
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

impl From<&Row> for crate::format::eval::Row {
    fn from(r: &Row) -> crate::format::eval::Row {
        let Row { series, width, wm, channels, top1, top5, macs, params } = r.clone();
        crate::format::eval::Row { series, width, wm, channels, top1, top5, macs, params }
    }
}

/// Batch size and calibration batches of an evaluation.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    pub batch: usize,
    pub calibrate: usize,
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
    row(l, series, width, cfg, &stats, opts, dev)
}

/// Test accuracy, MACs and parameters of `l` at `cfg` with BN statistics `stats`.
fn row<B: SlimBackend>(
    l: &Loaded<B>,
    series: &str,
    width: Option<f64>,
    cfg: &WidthConfig,
    stats: &BnSet<B>,
    opts: EvalOptions,
    dev: &B::Device,
) -> Result<Row, TrainError> {
    let acc = accuracy(&l.model, cfg, stats, &l.test, &l.state.normalize, opts.batch, dev)?;
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
    if non_uniform && !l.state.options.switches().is_empty() {
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

/// What `slimc eval` measures on an opened run ([`report`]).
#[derive(Clone, Debug)]
pub struct Request {
    /// Uniform widths; `None`: the run's default widths ([`Scheme::default_widths`]), or
    /// with `pareto` its Pareto widths ([`Scheme::pareto_widths`]).
    pub widths: Option<Vec<f64>>,
    /// Non-uniform configurations, each next to the uniform width of the same MACs
    /// ([`read_configs`]); with `pareto`, the uniform widths are evaluated too.
    pub configs: Option<ConfigRef>,
    /// Mark the Pareto front of test top-1 against MACs, over the run's Joslim pool too.
    pub pareto: Option<ParetoRequest>,
    /// Fixed-width runs evaluated as baselines (never on the front).
    pub baselines: Vec<PathBuf>,
    /// The data the baselines are opened with (`None`: each its own).
    pub data: Option<DataSpec>,
    pub opts: EvalOptions,
}

/// The Pareto part of a [`Request`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ParetoRequest {
    /// The MAC range of the area under the front; `None`: the run's smallest uniform
    /// width to full width.
    pub macs_range: Option<[u64; 2]>,
}

/// What [`report`] measured: the rows in order (the listed targets, the Joslim pool's
/// configurations as the series `joslim pool`, then the baselines) and the Pareto document
/// over the rows before the baselines.
#[derive(Clone, Debug)]
pub struct Report {
    pub rows: Vec<Row>,
    pub pareto: Option<ParetoFile>,
}

/// Evaluates `run` as `req` asks: the library side of `slimc eval`.
pub fn report<B: SlimBackend>(run: &Loaded<B>, req: &Request, dev: &B::Device) -> Result<Report, TrainError> {
    let net = &run.model.net;
    let options = &run.state.options;
    let uniform = |pareto: bool| {
        let ws = match (&req.widths, pareto) {
            (Some(ws), _) => ws.clone(),
            (None, true) => options.scheme.pareto_widths(options.min_width),
            (None, false) => options.scheme.default_widths(options.min_width),
        };
        ws.into_iter().map(Target::Uniform)
    };
    let mut targets: Vec<Target> = match &req.configs {
        Some(reference) => read_configs(reference, net)?,
        None => uniform(req.pareto.is_some()).collect(),
    };
    if req.pareto.is_some() && req.configs.is_some() {
        targets.extend(uniform(true));
    }
    let mut rows = Vec::new();
    // Weights trained elsewhere, as they were trained: full width, the file's statistics.
    if let (Some(stored), None, None) = (&run.stored, &req.configs, &req.pareto) {
        let full = WidthConfig::new(net.full_width());
        rows.push(row(run, "stored BN statistics", Some(1.0), &full, stored, req.opts, dev)?);
    }
    rows.extend(evaluate(run, &targets, req.opts, dev)?);
    let pareto = match &req.pareto {
        Some(p) => {
            let pool: Vec<Target> = run
                .state
                .joslim
                .iter()
                .flat_map(|j| j.pool.iter().map(|m| Target::Multipliers(m.wm.clone())))
                .collect();
            let mut pooled = evaluate(run, &pool, req.opts, dev)?;
            pooled.iter_mut().for_each(|r| r.series = "joslim pool".into());
            rows.extend(pooled);
            let bounds = match p.macs_range {
                Some(bounds) => bounds,
                None => {
                    let lo = net.decode_uniform(options.extremes().0, net.rounding).map_err(RuntimeError::from)?;
                    [cost::cost(net, &lo).0.macs, cost::cost(net, &net.full_width()).0.macs]
                }
            };
            Some(ParetoFile::new(&net.name, run.dir.display().to_string(), &rows, bounds))
        }
        None => None,
    };
    for path in &req.baselines {
        rows.push(baseline::<B>(path, req.data.as_ref(), req.opts, dev)?);
    }
    Ok(Report { rows, pareto })
}
