//! `slimc eval CHECKPOINT_OR_RUN_DIR [--widths … | --configs FILE] [--calibrate N] [--json]
//! [--plot FILE] [--baseline CKPT…]`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use serde_json::json;

use slimc::cost::{self, human};
use slimc::data::{self, DataSpec, Split};
use slimc::ir::Network;
use slimc::runtime::checkpoint::Meta;
use slimc::runtime::{SlimBackend, SlimNet, WidthConfig};
use slimc::train::eval::{accuracy, calibration};
use slimc::train::run::{self, RunState, Scheme};
use slimc::train::search::SearchState;

use super::{device, fail, plot};
use crate::Failure;

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory (from `slimc train --out`) or a checkpoint directory.
    path: PathBuf,
    /// Widths: a list (0.25,0.5,1.0) or a range START:END:STEP (0.25:1.0:0.05).
    /// Default: the widths the run trained (US: 0.25 steps from --min-width; S: its switches).
    #[arg(long)]
    widths: Option<String>,
    /// Non-uniform configurations: one per line, a multiplier per search dimension,
    /// comma-separated (`#` starts a comment).
    #[arg(long, conflicts_with = "widths")]
    configs: Option<PathBuf>,
    /// BN calibration batches (training images, cumulative average) per configuration.
    #[arg(long, default_value_t = 10)]
    calibrate: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Evaluate on another copy of the data set (default: the one the run trained on).
    #[arg(long)]
    data: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Draw accuracy against MACs into an .svg or .png file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Fixed-width runs to overlay as baselines (each evaluated at its width).
    #[arg(long, num_args = 1..)]
    baseline: Vec<PathBuf>,
}

/// One evaluated configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The series: `slimmable`, `search`, `uniform (same MACs)` or `fixed: PATH`.
    /// `wm` is the channels of each search dimension over its full-width count.
    pub series: String,
    pub width: Option<f64>,
    pub wm: Vec<f64>,
    pub channels: Vec<u32>,
    pub top1: f64,
    pub top5: Option<f64>,
    pub macs: u64,
    pub params: u64,
}

/// Parses `0.25,0.5,1` or `0.25:1.0:0.05`.
pub fn parse_widths(s: &str) -> Result<Vec<f64>, String> {
    let bad = || format!("--widths takes W1,W2,... or START:END:STEP with widths in (0, 1], got `{s}`");
    let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    let ws: Vec<f64> = match s.split(':').collect::<Vec<_>>()[..] {
        [a, b, step] => {
            let (a, b, step) = (num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?, num(step).ok_or_else(bad)?);
            if step <= 0.0 || b < a || (b - a) / step > 10_000.0 {
                return Err(bad());
            }
            let n = ((b - a) / step + 1e-9).floor() as usize;
            (0..=n).map(|i| ((a + i as f64 * step) * 1e9).round() / 1e9).collect()
        }
        [_] => s.split(',').map(|t| num(t).ok_or_else(bad)).collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if ws.is_empty() || ws.iter().any(|&w| w <= 0.0 || w > 1.0) {
        return Err(bad());
    }
    Ok(ws)
}

/// What to evaluate.
enum Target {
    /// One multiplier for the network (and its BN switch, if any).
    Uniform(f64),
    /// One multiplier per search dimension.
    Multipliers(Vec<f64>),
    /// Exact channels per dimension (a `slimc search` result), labelled with its series.
    Channels(Vec<u32>),
    /// The largest uniform width with at most these MACs.
    SameMacs(u64),
}

/// `--configs FILE`: the JSON `slimc search` writes (each target's channels, then the
/// uniform width of the same MACs), or text lines of per-dimension multipliers.
/// `text`, read from `path`, as a `slimc search` result for `net`.
pub fn search_result(text: &str, path: &Path, net: &Network) -> Result<SearchState, Failure> {
    let state: SearchState = serde_json::from_str(text)
        .map_err(|e| Failure::Usage(format!("{} is not a `slimc search` result: {e}", path.display())))?;
    if state.network != net.name || state.found.iter().any(|f| !net.space.admits(&f.point.channels)) {
        return Err(Failure::Usage(format!("{} was searched on another network", path.display())));
    }
    Ok(state)
}

fn parse_configs(path: &Path, net: &Network) -> Result<Vec<Target>, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    let dims = net.space.search_dim();
    if text.trim_start().starts_with('{') {
        let mut found = search_result(&text, path, net)?.found;
        found.sort_by_key(|f| f.point.macs);
        return Ok(found
            .into_iter()
            .flat_map(|f| [Target::Channels(f.point.channels), Target::SameMacs(f.point.macs)])
            .collect());
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let wm: Result<Vec<f64>, _> = line.split(',').map(|t| t.trim().parse::<f64>()).collect();
        match wm {
            Ok(wm) if wm.len() == dims && wm.iter().all(|&w| w > 0.0 && w <= 1.0) => out.push(Target::Multipliers(wm)),
            _ => {
                return Err(Failure::Usage(format!(
                    "{}:{}: expected {dims} comma-separated multipliers in (0, 1]",
                    path.display(),
                    i + 1
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(Failure::Usage(format!("{} holds no configuration", path.display())));
    }
    Ok(out)
}

/// The largest uniform width (on a 0.001 grid) whose MACs do not exceed `macs`.
fn uniform_at_macs(net: &Network, macs: u64) -> Option<f64> {
    (1..=1000)
        .rev()
        .map(|i| f64::from(i) / 1000.0)
        .find(|&w| net.decode_uniform(w, net.rounding).is_ok_and(|dims| cost::cost(net, &dims).0.macs <= macs))
}

pub fn run(a: &EvalArgs) -> Result<(), Failure> {
    on_device!(device(&a.device)?, Cpu, Gpu, eval(a))
}

/// A loaded run: model, its training state and the data it evaluates on.
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

/// Opens a run (or checkpoint) and the data set it trained on (or `data_override`).
pub fn open<B: SlimBackend>(path: &Path, data_override: Option<&str>, dev: &B::Device) -> Result<Loaded<B>, Failure> {
    let (model, meta, state, dir) = run::open::<B>(path, dev).map_err(fail)?;
    let spec = match data_override {
        Some(s) => DataSpec::parse(s).map_err(Failure::Usage)?,
        None => state.options.data.clone(),
    };
    let data = data::load(&spec, model.net.input[1] as usize).map_err(fail)?;
    let want = model.net.input.map(|v| v as usize);
    if data.shape() != want {
        return Err(Failure::Usage(format!("{spec} images are {:?}, the network takes {want:?}", data.shape())));
    }
    let (calib, val) = run::splits(&data, &state.options);
    Ok(Loaded { model, state, meta, dir, calib, val, test: Split::all(data.test.clone()) })
}

fn measure<B: SlimBackend>(
    l: &Loaded<B>,
    cfg: &WidthConfig,
    a: &EvalArgs,
    dev: &B::Device,
) -> Result<(f64, Option<f64>, u64, u64), Failure> {
    let norm = &l.state.normalize;
    let stats = calibration(&l.model, cfg, &l.calib, norm, a.batch, a.calibrate, dev).map_err(fail)?;
    let acc = accuracy(&l.model, cfg, &stats, &l.test, norm, a.batch, dev).map_err(fail)?;
    let (c, _) = cost::cost(&l.model.net, &cfg.dims);
    Ok((acc.top1, acc.top5, c.macs, c.params))
}

fn eval<B: SlimBackend>(a: &EvalArgs, dev: B::Device) -> Result<(), Failure> {
    if a.batch == 0 {
        return Err(Failure::Usage("--batch must be at least 1".into()));
    }
    let main = open::<B>(&a.path, a.data.as_deref(), &dev)?;
    let opts = &main.state.options;
    let net = main.model.net.clone();
    let targets: Vec<Target> = if let Some(file) = &a.configs {
        if matches!(opts.scheme, Scheme::S(_)) {
            return Err(Failure::Usage("--configs needs shared BN; this run has one BN per width switch".into()));
        }
        parse_configs(file, &net)?
    } else {
        let widths = match (&a.widths, &opts.scheme) {
            (Some(s), _) => parse_widths(s).map_err(Failure::Usage)?,
            (None, Scheme::Us) => {
                let mut ws = vec![opts.min_width];
                ws.extend([0.25, 0.5, 0.75, 1.0].into_iter().filter(|&w| w > opts.min_width + 1e-9));
                ws
            }
            (None, Scheme::S(ws)) => ws.clone(),
            (None, Scheme::Fixed(w)) => vec![*w],
        };
        widths.into_iter().map(Target::Uniform).collect()
    };
    let mut rows = Vec::new();
    for target in targets {
        let (series, width, cfg) = match target {
            Target::Uniform(w) => ("slimmable", Some(w), main.model.uniform(w).map_err(fail)?),
            Target::Multipliers(wm) => {
                ("slimmable", None, WidthConfig::new(net.space.decode(&wm, net.rounding).map_err(fail)?))
            }
            Target::Channels(ch) => ("search", None, WidthConfig::new(ch)),
            Target::SameMacs(macs) => {
                let Some(w) = uniform_at_macs(&net, macs) else { continue };
                ("uniform (same MACs)", Some(w), main.model.uniform(w).map_err(fail)?)
            }
        };
        let wm = net.space.multipliers(&cfg.dims);
        let (top1, top5, macs, params) = measure(&main, &cfg, a, &dev)?;
        rows.push(Row { series: series.into(), width, wm, channels: cfg.dims.clone(), top1, top5, macs, params });
    }
    for path in &a.baseline {
        let b = open::<B>(path, a.data.as_deref(), &dev)?;
        let Scheme::Fixed(w) = b.state.options.scheme else {
            return Err(Failure::Usage(format!("baseline {} was not trained with --scheme fixed", path.display())));
        };
        let cfg = b.model.uniform(w).map_err(fail)?;
        let (top1, top5, macs, params) = measure(&b, &cfg, a, &dev)?;
        let series = format!("fixed: {}", path.display());
        let wm = b.model.net.space.multipliers(&cfg.dims);
        rows.push(Row { series, width: Some(w), wm, channels: cfg.dims.clone(), top1, top5, macs, params });
    }
    if let Some(file) = &a.plot {
        plot::pareto(file, &format!("{}: test accuracy vs MACs", net.name), &rows).map_err(Failure::Usage)?;
    }
    if a.json {
        let doc = json!({
            "network": net.name, "data": opts.data.to_string(), "calibrate": a.calibrate,
            "test_images": main.test.len(), "results": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{} on {} ({} test images, BN calibrated on {} batches)",
        net.name,
        opts.data,
        main.test.len(),
        a.calibrate
    );
    println!("{:<28} {:>8} {:>8} {:>8} {:>10} {:>10}", "series", "width", "top-1", "top-5", "MACs", "params");
    for r in &rows {
        let width = r.width.map_or_else(|| "config".to_string(), |w| format!("{w}"));
        let top5 = r.top5.map_or_else(|| "-".to_string(), |v| format!("{:.2}%", 100.0 * v));
        println!(
            "{:<28} {:>8} {:>7.2}% {:>8} {:>10} {:>10}",
            r.series,
            width,
            100.0 * r.top1,
            top5,
            human(r.macs),
            human(r.params)
        );
    }
    if let Some(file) = &a.plot {
        println!("plot: {}", file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_widths;

    #[test]
    fn widths_parse_as_lists_and_ranges() {
        assert_eq!(parse_widths("0.25,0.5,1.0").unwrap(), vec![0.25, 0.5, 1.0]);
        assert_eq!(parse_widths("0.25:1.0:0.25").unwrap(), vec![0.25, 0.5, 0.75, 1.0]);
        assert_eq!(parse_widths("0.25:1.0:0.05").unwrap().len(), 16);
        for bad in ["", "0", "1.5", "a,b", "1:0:0.1", "0.2:1:0", "0.1:0.2:0.3:0.4"] {
            assert!(parse_widths(bad).is_err(), "{bad}");
        }
    }
}
