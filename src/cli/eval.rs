//! `slimc eval RUN [--widths … | --configs FILE] [--calibrate N] [--baseline RUN…]
//! [--pareto [FILE] [--macs-range LO:HI]] [--plot FILE] [--json]`: the library evaluates, this formats.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use slimc_lang::cost::human;
use slimc_lang::{write_output, FileKind};
use slimc_runtime::data::{DataSpec, Normalize};
use slimc_runtime::export::named;
use slimc_runtime::import::state_dict;
use slimc_runtime::runtime::checkpoint::Meta;
use slimc_runtime::runtime::SlimBackend;
use slimc_runtime::train::configs::ConfigRef;
use slimc_runtime::train::eval::{self, EvalOptions, Loaded, ParetoRequest, Report, Request, Row};
use slimc_runtime::train::pareto::ParetoFile;
use slimc_runtime::train::rundir::RunDir;
use slimc_runtime::train::start;

use super::search::parse_macs;
use super::{
    compile_one, fail, parse_data, parse_device, plot, read, CompileArgs, Device, Failure, LoaderArgs, Widths,
};

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory (from `slimc train --out`) or a checkpoint directory; with --init,
    /// the .slim file of the network the weights are for.
    path: PathBuf,
    /// Evaluate these full-width weights in the network of the .slim file PATH, on --data
    /// (default fashion-mnist): safetensors under slimc's layer names (`slimc import`, an
    /// emitted PyTorch module's `state_dict()`), or a PyTorch `state_dict` under its own
    /// module names (torchvision's), matched to the layers by structure. The file's BN
    /// statistics are reported first; then BN is calibrated per width as for a run.
    #[arg(long, value_name = "WEIGHTS")]
    init: Option<PathBuf>,
    /// With --init: which network of the file (needed when it holds several).
    #[arg(long, requires = "init")]
    network: Option<String>,
    /// With --init: rank each search dimension's channels by importance first, so that a
    /// narrower width keeps the most important ones: `l1` (filter L1 norms summed over
    /// the dimension's layers), `bn` (BN |gamma|), or `none`. The full width is unchanged.
    #[arg(long, requires = "init", default_value = "none", value_name = "none|l1|bn")]
    order: super::Order,
    /// With --init: the input normalisation the weights were trained with, MEAN/STD (one
    /// value, or one per channel, comma-separated) [default: measured on the training images].
    #[arg(long, requires = "init", value_parser = super::parse_normalize, value_name = "MEAN/STD")]
    normalize: Option<Normalize>,
    /// With --init: the BN epsilon the weights were trained with (torchvision's
    /// MobileNetV3: 0.001); slimc's is 1e-5, so the file's BN variances are shifted by the
    /// difference to compute the same function [default: 1e-5].
    #[arg(long, requires = "init", value_parser = super::parse_bn_eps, value_name = "EPS")]
    bn_eps: Option<f64>,
    #[command(flatten)]
    compile: CompileArgs,
    /// Widths: W1,W2,... or START:END:STEP (0.25:1.0:0.05).
    /// Default: the widths the run trained (US: 0.25 steps from its smallest width; S: its switches).
    #[arg(long)]
    widths: Option<Widths>,
    /// Non-uniform configurations: a `slimc search` result, or one configuration per line,
    /// a multiplier per search dimension, comma-separated (`#` starts a comment).
    /// Also a Pareto front (`pareto.json`), and `FILE#TARGET` for one of a file's configurations.
    #[arg(long, conflicts_with = "widths", value_name = "FILE[#TARGET]")]
    configs: Option<String>,
    /// BN calibration batches (training images, cumulative average) per configuration.
    #[arg(long, default_value_t = 10, value_parser = super::parse_calibrate)]
    calibrate: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Evaluate on another copy of the data set (default: the one the run trained on).
    #[arg(long, value_parser = parse_data)]
    data: Option<DataSpec>,
    /// cpu, cuda[:N], wgpu[:N], wgpu:integrated[:N] or wgpu:cpu (the software adapter).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    #[command(flatten)]
    loader: LoaderArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Draw accuracy against MACs into an .svg or .png file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Fixed-width runs to overlay as baselines (each evaluated at its width).
    #[arg(long, num_args = 1..)]
    baseline: Vec<PathBuf>,
    /// Evaluate the run's Joslim pool (if any) next to the uniform widths (and --configs),
    /// mark the Pareto front of test top-1 against MACs, and write it with the area under
    /// it to FILE [default: RUN/pareto.json]; `slimc export --config FILE#20M` and
    /// `slimc search --from FILE#20M` take its configurations by MAC budget.
    // `Option<Option<_>>`: `--pareto` alone is `Some(None)` (clap refuses an empty path).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pareto: Option<Option<PathBuf>>,
    /// The MAC range of the area under the front, LO:HI (e.g. 10M:41M)
    /// [default: the run's smallest uniform width to full width].
    #[arg(long, requires = "pareto", value_name = "LO:HI")]
    macs_range: Option<String>,
    /// Fronts of other runs (their `--pareto` files) to draw into --plot, to compare schemes.
    #[arg(long, num_args = 1.., requires = "plot", value_name = "PARETO_FILE")]
    overlay: Vec<PathBuf>,
}

pub fn run(a: &EvalArgs) -> Result<(), Failure> {
    if a.batch == 0 {
        return Err(Failure::Usage("--batch must be at least 1".into()));
    }
    if a.init.is_none() && (!a.compile.set.is_empty() || a.compile.rounding.is_some()) {
        return Err(Failure::Usage(
            "--set and --rounding go with --init (a run is evaluated with the settings it trained with)".into(),
        ));
    }
    a.loader.apply(&a.device.spec)?;
    on_device!(a.device.spec, infer, go(a))
}

fn go<B: SlimBackend>(a: &EvalArgs, dev: B::Device) -> Result<(), Failure> {
    let run = match &a.init {
        Some(weights) => from_weights::<B>(a, weights, &dev)?,
        None => eval::open::<B>(&a.path, a.data.as_ref(), &dev).map_err(fail)?,
    };
    let net = run.model.net.clone();
    let macs_range = a.macs_range.as_deref().map(macs_range).transpose()?;
    let req = Request {
        widths: a.widths.as_ref().map(|w| w.0.clone()),
        configs: a.configs.as_deref().map(ConfigRef::parse),
        pareto: a.pareto.as_ref().map(|_| ParetoRequest { macs_range }),
        baselines: a.baseline.clone(),
        data: a.data.clone(),
        opts: EvalOptions { batch: a.batch, calibrate: a.calibrate },
    };
    let Report { rows, pareto } = eval::report(&run, &req, &dev).map_err(fail)?;
    let pareto = match (&a.pareto, pareto) {
        (Some(file), Some(doc)) => {
            let file = file.clone().unwrap_or_else(|| RunDir::new(&a.path).pareto());
            let json = serde_json::to_vec_pretty(&doc).map_err(fail)?;
            write_output(&file, &json, FileKind::Pareto).map_err(fail)?;
            Some((file, doc))
        }
        _ => None,
    };
    if let Some(file) = &a.plot {
        let mut points: Vec<plot::Point> = rows.iter().map(point).collect();
        if let Some((_, doc)) = &pareto {
            points.extend(doc.front_points().map(|r| plot::Point {
                series: "Pareto front".into(),
                macs: r.macs,
                top1: r.top1,
                line: true,
            }));
        }
        for path in &a.overlay {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
            let other =
                ParetoFile::parse(&text, &net).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            let series = format!("front: {}", path.display());
            points.extend(other.front_points().map(|r| plot::Point {
                series: series.clone(),
                macs: r.macs,
                top1: r.top1,
                line: true,
            }));
        }
        plot::pareto(file, &format!("{}: test accuracy vs MACs", net.name), &points).map_err(Failure::Usage)?;
    }
    let data = &run.state.options.data;
    if a.json {
        let doc = json!({
            "network": net.name, "data": a.data.as_ref().unwrap_or(data).to_string(), "calibrate": a.calibrate,
            "test_images": run.test.len(),
            "results": rows.iter().map(slimc_runtime::format::eval::Row::from).collect::<Vec<_>>(),
            "pareto": pareto.as_ref().map(|(file, doc)| json!({
                "file": file.display().to_string(), "front": doc.front, "bounds": doc.bounds, "area": doc.area,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{} on {} ({} test images, BN calibrated on {} batches)",
        net.name,
        a.data.as_ref().unwrap_or(data),
        run.test.len(),
        a.calibrate
    );
    println!("{:<28} {:>8} {:>8} {:>8} {:>10} {:>10}", "series", "width", "top-1", "top-5", "MACs", "params");
    let on_front = |i: usize| pareto.as_ref().is_some_and(|(_, d)| d.front.contains(&i));
    for (i, r) in rows.iter().enumerate() {
        let width = r.width.map_or_else(|| "config".to_string(), |w| format!("{w}"));
        let top5 = r.top5.map_or_else(|| "-".to_string(), |v| format!("{:.2}%", 100.0 * v));
        println!(
            "{:<28} {:>8} {:>7.2}% {:>8} {:>10} {:>10}{}",
            r.series,
            width,
            100.0 * r.top1,
            top5,
            human(r.macs),
            human(r.params),
            if on_front(i) { "  *" } else { "" }
        );
    }
    if let Some((file, doc)) = &pareto {
        println!(
            "* on the Pareto front ({} of {}); area under it over {}..{} MACs: {:.2}% (mean best top-1 per budget)",
            doc.front.len(),
            rows.len(),
            human(doc.bounds[0]),
            human(doc.bounds[1]),
            100.0 * doc.area
        );
        println!("front: {} (export one with --config {}#BUDGET)", file.display(), file.display());
    }
    if let Some(file) = &a.plot {
        println!("plot: {}", file.display());
    }
    Ok(())
}

/// The network of the .slim file `a.path`, compiled for the data set (its image size and
/// classes), holding the weights of `weights`.
fn from_weights<B: SlimBackend>(a: &EvalArgs, weights: &Path, dev: &B::Device) -> Result<Loaded<B>, Failure> {
    if a.pareto == Some(None) {
        return Err(Failure::Usage("--pareto with --init needs a FILE to write the front to".into()));
    }
    // The weights first: a wrong file is reported before a data set is read.
    let tensors = named::read_file(weights).map_err(fail)?;
    let spec = a.data.clone().map_or_else(|| DataSpec::parse("fashion-mnist").map_err(fail), Ok)?;
    let mut compile = a.compile.options();
    let bytes = read(&a.path)?;
    let (data, context) = start::load_data(&spec, &compile.settings, None).map_err(fail)?;
    compile.context = context;
    let net = compile_one(&a.path, &bytes, a.network.as_deref(), &compile)?;
    let source = String::from_utf8_lossy(&bytes).into_owned();
    let meta = Meta::new(&a.path.display().to_string(), &source, &net, &compile, Vec::new());
    let mut tensors = super::matched(&net, weights, tensors)?;
    if let Some(eps) = a.bn_eps {
        state_dict::shift_bn_eps(&net, &mut tensors, eps, weights).map_err(fail)?;
    }
    let tensors = super::ordered(&net, tensors, a.order);
    eval::from_weights::<B>(net, meta, (weights, tensors), a.normalize.as_ref(), &data, dev).map_err(fail)
}

fn point(r: &Row) -> plot::Point {
    // Baselines and the pool are scattered points; widths and searched paths are lines.
    let line = !(r.series.starts_with("fixed: ") || r.series == "joslim pool");
    plot::Point { series: r.series.clone(), macs: r.macs, top1: r.top1, line }
}

/// `--macs-range LO:HI` with K, M and G suffixes.
fn macs_range(s: &str) -> Result<[u64; 2], Failure> {
    let bad = || Failure::Usage(format!("--macs-range takes LO:HI in MACs with LO < HI, e.g. 10M:41M, not `{s}`"));
    let (lo, hi) = s.split_once(':').ok_or_else(bad)?;
    match (parse_macs(lo), parse_macs(hi)) {
        (Some(lo), Some(hi)) if lo < hi => Ok([lo, hi]),
        _ => Err(bad()),
    }
}
