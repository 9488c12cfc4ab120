//! `slimc eval RUN [--widths … | --configs FILE] [--calibrate N] [--baseline RUN…]
//! [--plot FILE] [--json]`: the library evaluates, this formats.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use slimc::cost::human;
use slimc::data::DataSpec;
use slimc::runtime::SlimBackend;
use slimc::train::eval::{self, EvalOptions, Row, Target};

use super::{fail, parse_data, parse_device, plot, Device, Failure, Widths};

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory (from `slimc train --out`) or a checkpoint directory.
    path: PathBuf,
    /// Widths: W1,W2,... or START:END:STEP (0.25:1.0:0.05).
    /// Default: the widths the run trained (US: 0.25 steps from its smallest width; S: its switches).
    #[arg(long)]
    widths: Option<Widths>,
    /// Non-uniform configurations: a `slimc search` result, or one configuration per line,
    /// a multiplier per search dimension, comma-separated (`#` starts a comment).
    #[arg(long, conflicts_with = "widths")]
    configs: Option<PathBuf>,
    /// BN calibration batches (training images, cumulative average) per configuration.
    #[arg(long, default_value_t = 10)]
    calibrate: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Evaluate on another copy of the data set (default: the one the run trained on).
    #[arg(long, value_parser = parse_data)]
    data: Option<DataSpec>,
    /// cpu, cuda[:N], wgpu[:N], wgpu:integrated[:N] or wgpu:cpu (the software adapter).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
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

pub fn run(a: &EvalArgs) -> Result<(), Failure> {
    if a.batch == 0 {
        return Err(Failure::Usage("--batch must be at least 1".into()));
    }
    on_device!(a.device.spec, infer, go(a))
}

fn go<B: SlimBackend>(a: &EvalArgs, dev: B::Device) -> Result<(), Failure> {
    let run = eval::open::<B>(&a.path, a.data.as_ref(), &dev).map_err(fail)?;
    let net = run.model.net.clone();
    let targets: Vec<Target> = match (&a.configs, &a.widths) {
        (Some(file), _) => eval::read_configs(file, &net).map_err(fail)?,
        (None, Some(ws)) => ws.0.iter().copied().map(Target::Uniform).collect(),
        (None, None) => eval::default_widths(&run.state.options).into_iter().map(Target::Uniform).collect(),
    };
    let opts = EvalOptions { batch: a.batch, calibrate: a.calibrate };
    let mut rows = eval::evaluate(&run, &targets, opts, &dev).map_err(fail)?;
    for path in &a.baseline {
        rows.push(eval::baseline::<B>(path, a.data.as_ref(), opts, &dev).map_err(fail)?);
    }
    if let Some(file) = &a.plot {
        let points: Vec<plot::Point> = rows.iter().map(point).collect();
        plot::pareto(file, &format!("{}: test accuracy vs MACs", net.name), &points).map_err(Failure::Usage)?;
    }
    let data = &run.state.options.data;
    if a.json {
        let doc = json!({
            "network": net.name, "data": a.data.as_ref().unwrap_or(data).to_string(), "calibrate": a.calibrate,
            "test_images": run.test.len(), "results": rows,
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

fn point(r: &Row) -> plot::Point {
    plot::Point { series: r.series.clone(), macs: r.macs, top1: r.top1 }
}
