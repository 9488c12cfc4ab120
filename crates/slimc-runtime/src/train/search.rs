//! `slimc search`: AutoSlim's greedy slimming of a trained slimmable network. From full
//! width (or a given configuration), each iteration tries shrinking every search dimension by one step, evaluates each
//! candidate on the held-out validation split after BN calibration, and keeps the best
//! (smallest error, or smallest error increase per MAC saved). A configuration is recorded
//! each time the MACs fall to a target. The state is saved after every iteration, so a
//! killed search continues where it stopped.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::loaded::Loaded;
use super::measure::{accuracy, calibration};
use super::{SearchFileError, TrainError};
use crate::cost;
use crate::data::{Normalize, Split};
use crate::ir::{Network, Op};
use crate::runtime::{RuntimeError, SlimBackend, SlimNet, WidthConfig};

/// How candidates are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rank {
    /// The smallest validation error.
    Error,
    /// The smallest error increase per MAC saved.
    PerMac,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchOptions {
    /// Target MACs, in any order.
    pub targets: Vec<u64>,
    /// Channels removed per step, per dimension.
    pub steps: Vec<u32>,
    /// The smallest count of each dimension.
    pub minimum: Vec<u32>,
    pub rank: Rank,
    pub batch: usize,
    pub calibrate: usize,
    pub val_batches: usize,
    /// Where the greedy path starts (a configuration from a search or a Pareto front);
    /// full width when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Vec<u32>>,
}

/// One configuration on the greedy path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub channels: Vec<u32>,
    pub macs: u64,
    pub params: u64,
    pub val_acc: f64,
}

/// A target's configuration: the first point of the path at or below it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub target_macs: u64,
    /// Channels per dimension divided by its full-width count.
    pub wm: Vec<f64>,
    #[serde(flatten)]
    pub point: Point,
    /// Every conv and linear layer's channels at this configuration.
    #[serde(default)]
    pub layers: Vec<LayerChannels>,
}

/// One layer's channels at a configuration (what `set_real_ch` applies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerChannels {
    pub name: String,
    #[serde(rename = "in")]
    pub in_c: u32,
    pub out: u32,
    pub groups: u32,
}

/// The whole search, as written to the output file after every iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchState {
    /// The layout of this file ([`crate::format::SEARCH`]).
    #[serde(default = "crate::format::unnumbered")]
    pub format: u32,
    pub network: String,
    pub checkpoint: String,
    pub options: SearchOptions,
    pub path: Vec<Point>,
    pub found: Vec<Found>,
    pub complete: bool,
}

impl SearchState {
    /// Reads a stored search for `net` from JSON text and checks it against the network
    /// ([`validate`](Self::validate)).
    pub fn parse(text: &str, net: &Network) -> Result<SearchState, SearchFileError> {
        let not_a_search = |e: serde_json::Error| SearchFileError::NotASearch(e.to_string());
        let doc: serde_json::Value = serde_json::from_str(text).map_err(not_a_search)?;
        crate::format::check(&doc, crate::format::SEARCH)?;
        let state: SearchState = serde_json::from_value(doc).map_err(not_a_search)?;
        state.validate(net)?;
        Ok(state)
    }

    /// Every stored point must be a configuration of `net` with the MACs and parameters
    /// its channels cost, and the per-dimension options must have one entry per
    /// dimension; the first entry that is not is named.
    pub fn validate(&self, net: &Network) -> Result<(), SearchFileError> {
        if self.network != net.name {
            return Err(SearchFileError::OtherNetwork { expected: net.name.clone(), found: self.network.clone() });
        }
        let dims = net.space.search_dim();
        for (field, got) in [("steps", self.options.steps.len()), ("minimum", self.options.minimum.len())] {
            if got != dims {
                return Err(SearchFileError::OptionLength { field, expected: dims, got });
            }
        }
        if let Some(start) = &self.options.start {
            if let Err(error) = net.space.check(start) {
                return Err(SearchFileError::Channels { entry: "options.start".into(), error });
            }
        }
        if let Some(dim) = self.options.steps.iter().position(|&s| s == 0) {
            return Err(SearchFileError::ZeroStep { dim });
        }
        if self.path.is_empty() && self.complete {
            return Err(SearchFileError::CompleteWithoutPath);
        }
        if self.path.is_empty() && !self.found.is_empty() {
            return Err(SearchFileError::FoundWithoutPath(self.found.len()));
        }
        let points = self.path.iter().enumerate().map(|(i, p)| (format!("path[{i}]"), p));
        let found = self.found.iter().enumerate().map(|(i, f)| (format!("found[{i}]"), &f.point));
        for (entry, p) in points.chain(found) {
            check_point(net, entry, p)?;
        }
        Ok(())
    }

    /// The found configuration whose target is within `tolerance` MACs of `macs`.
    pub fn target(&self, macs: u64, tolerance: u64) -> Option<&Found> {
        self.found.iter().find(|f| f.target_macs.abs_diff(macs) <= tolerance)
    }
}

fn check_point(net: &Network, entry: String, p: &Point) -> Result<(), SearchFileError> {
    check_config(net, entry, &p.channels, p.macs, p.params)
}

/// A stored configuration (of a search or a Pareto front) must be one of `net` and cost
/// the MACs and parameters stored with it.
pub(super) fn check_config(
    net: &Network,
    entry: String,
    channels: &[u32],
    macs: u64,
    params: u64,
) -> Result<(), SearchFileError> {
    if let Err(error) = net.space.check(channels) {
        return Err(SearchFileError::Channels { entry, error });
    }
    let (c, _) = cost::cost(net, channels);
    for (field, stored, actual) in [("macs", macs, c.macs), ("params", params, c.params)] {
        if stored != actual {
            return Err(SearchFileError::Cost { entry, field, stored, actual });
        }
    }
    Ok(())
}

/// The search stored at `out`, to continue, or `fresh` when there is none. A stored
/// search must fit the network and have been started with the same options.
pub fn resume_or_start(out: &Path, fresh: SearchState, net: &Network) -> Result<SearchState, TrainError> {
    let bad = |what| TrainError::SearchFile { path: out.to_path_buf(), what };
    let text = match std::fs::read_to_string(out) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
        Err(error) => {
            let path = out.to_path_buf();
            return Err(TrainError::Checkpoint(crate::runtime::checkpoint::CheckpointError::Io { path, error }));
        }
    };
    let old = SearchState::parse(&text, net).map_err(bad)?;
    if old.options != fresh.options {
        return Err(bad(SearchFileError::OtherOptions));
    }
    Ok(old)
}

/// What `slimc search` asks of an opened run ([`run`]).
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// Target MACs, in any order.
    pub targets: Vec<u64>,
    /// Channels removed per step in every dimension, rounded up to each one's divisor;
    /// `None`: [`default_step`] per dimension.
    pub step: Option<u32>,
    /// Where the greedy path starts (channels per dimension); full width when absent.
    pub start: Option<Vec<u32>>,
    pub rank: Rank,
    pub batch: usize,
    pub calibrate: usize,
    /// Validation batches each candidate is ranked on.
    pub val_batches: usize,
}

impl SearchRequest {
    /// The search's stored options for the run `l`: every dimension's minimum is the
    /// smallest width the run trained, which only a universal run (US, Joslim) has.
    pub fn options<B: SlimBackend>(&self, l: &Loaded<B>) -> Result<SearchOptions, TrainError> {
        let opts = &l.state.options;
        let min_width = opts.scheme.universal(opts.min_width).ok_or(TrainError::NotUniversal)?;
        let net = &l.model.net;
        let minimum = net.decode_uniform(min_width, net.rounding).map_err(RuntimeError::from)?;
        let steps = net
            .space
            .dims
            .iter()
            .map(|d| {
                let divisor = d.divisor.max(1);
                self.step.map_or_else(|| default_step(d.base, d.divisor), |s| s.max(1).div_ceil(divisor) * divisor)
            })
            .collect();
        Ok(SearchOptions {
            start: self.start.clone(),
            targets: self.targets.clone(),
            steps,
            minimum,
            rank: self.rank,
            batch: self.batch,
            calibrate: self.calibrate,
            val_batches: self.val_batches,
        })
    }
}

/// The search of an opened run as `req` asks, written to `out` after every iteration: a
/// stored search there with the same options continues ([`SearchProgress::resumed`]), one
/// with others is refused. Candidates are ranked on the first `val_batches · batch`
/// validation images.
pub fn run<B: SlimBackend>(
    l: &Loaded<B>,
    req: &SearchRequest,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn SearchProgress,
) -> Result<SearchState, TrainError> {
    let net = &l.model.net;
    let options = req.options(l)?;
    let fresh = SearchState {
        format: crate::format::SEARCH,
        network: net.name.clone(),
        checkpoint: l.dir.display().to_string(),
        options,
        path: Vec::new(),
        found: Vec::new(),
        complete: false,
    };
    let start = resume_or_start(out, fresh, net)?;
    if !start.path.is_empty() && !start.complete {
        progress.resumed(start.path.len().saturating_sub(1));
    }
    if l.val.is_empty() {
        return Err(TrainError::NoValidation);
    }
    let val = Split {
        images: l.val.images.clone(),
        indices: l.val.indices.iter().copied().take(req.val_batches * req.batch).collect(),
    };
    let data = SearchData { calib: &l.calib, val: &val, normalize: &l.state.normalize };
    search(&l.model, start, &data, out, device, progress)
}

/// What the search reports as it goes.
pub trait SearchProgress {
    /// A stored search continues, `steps_done` steps along its path.
    fn resumed(&mut self, _steps_done: usize) {}
    fn candidate(&mut self, _done: usize, _of: usize) {}
    fn iteration(&mut self, _point: &Point, _lowest_target: u64) {}
}

/// Default step of a dimension: its divisor, or base/16 rounded to the divisor.
pub fn default_step(base: u32, divisor: u32) -> u32 {
    let d = divisor.max(1);
    ((base / 16).max(1).div_ceil(d) * d).max(d)
}

/// The data a search evaluates on.
pub struct SearchData<'a> {
    pub calib: &'a Split,
    pub val: &'a Split,
    pub normalize: &'a Normalize,
}

fn measure<B: SlimBackend>(
    model: &SlimNet<B>,
    channels: &[u32],
    data: &SearchData<'_>,
    opts: &SearchOptions,
    device: &B::Device,
) -> Result<Point, TrainError> {
    let cfg = WidthConfig::new(channels.to_vec());
    let stats = calibration(model, &cfg, data.calib, data.normalize, opts.batch, opts.calibrate, device)?;
    let acc = accuracy(model, &cfg, &stats, data.val, data.normalize, opts.batch, device)?;
    let (c, _) = cost::cost(&model.net, channels);
    Ok(Point { channels: channels.to_vec(), macs: c.macs, params: c.params, val_acc: acc.top1 })
}

fn found(net: &Network, target: u64, point: &Point) -> Found {
    let shapes = net.layer_shapes(&point.channels);
    let layers = net
        .layers
        .iter()
        .filter(|(_, l)| matches!(l.op, Op::Conv { .. } | Op::Linear { .. }))
        .map(|(id, l)| {
            let s = shapes[id.index()];
            LayerChannels { name: l.name.clone(), in_c: s.in_c, out: s.out, groups: s.groups }
        })
        .collect();
    Found { target_macs: target, wm: net.space.multipliers(&point.channels), point: point.clone(), layers }
}

/// Runs (or continues) the search from `state`, saving it to `out` after each iteration.
pub fn search<B: SlimBackend>(
    model: &SlimNet<B>,
    mut state: SearchState,
    data: &SearchData<'_>,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn SearchProgress,
) -> Result<SearchState, TrainError> {
    let net = &*model.net;
    state.validate(net).map_err(|what| TrainError::SearchFile { path: out.to_path_buf(), what })?;
    let opts = state.options.clone();
    let save = |s: &SearchState| -> Result<(), TrainError> {
        let json = serde_json::to_vec_pretty(s)?;
        Ok(slimc_lang::write_output(out, &json, slimc_lang::FileKind::SearchState)?)
    };
    if state.path.is_empty() {
        let start = opts.start.clone().unwrap_or_else(|| net.full_width());
        let first = measure(model, &start, data, &opts, device)?;
        state.path.push(first);
    }
    let lowest = opts.targets.iter().copied().min().unwrap_or(0);
    loop {
        let current = state.path.last().expect("the path has its start").clone();
        for &t in &opts.targets {
            if current.macs <= t && !state.found.iter().any(|f| f.target_macs == t) {
                state.found.push(found(net, t, &current));
            }
        }
        if current.macs <= lowest {
            state.complete = true;
        }
        let candidates: Vec<Vec<u32>> = (0..current.channels.len())
            .filter_map(|d| {
                let mut ch = current.channels.clone();
                let smaller = ch[d].checked_sub(opts.steps[d]).filter(|&c| c >= opts.minimum[d])?;
                ch[d] = smaller;
                net.space.admits(&ch).then_some(ch)
            })
            .collect();
        if candidates.is_empty() {
            // Every dimension is at its minimum: the remaining targets cannot be reached.
            state.complete = true;
        }
        if state.complete {
            save(&state)?;
            return Ok(state);
        }
        let mut best: Option<(f64, Point)> = None;
        for (i, ch) in candidates.iter().enumerate() {
            progress.candidate(i, candidates.len());
            let p = measure(model, ch, data, &opts, device)?;
            let error_rise = current.val_acc - p.val_acc;
            let score = match opts.rank {
                Rank::Error => -p.val_acc,
                Rank::PerMac => error_rise / (current.macs.saturating_sub(p.macs).max(1) as f64),
            };
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, p));
            }
        }
        let (_, next) = best.expect("at least one candidate");
        progress.iteration(&next, lowest);
        state.path.push(next);
        save(&state)?;
    }
}

#[cfg(test)]
mod tests {
    use super::default_step;

    #[test]
    fn default_steps_follow_divisors() {
        assert_eq!(default_step(64, 1), 4);
        assert_eq!(default_step(16, 1), 1);
        assert_eq!(default_step(64, 8), 8);
        assert_eq!(default_step(400, 16), 32);
        assert_eq!(default_step(8, 1), 1);
    }
}
