//! `slimc search RUN --targets 75%,50%,25% | --macs 20M,10M [options]`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use slimc_lang::cost::{self, human};
use slimc_runtime::runtime::SlimBackend;
use slimc_runtime::train::eval::open;
use slimc_runtime::train::rundir::RunDir;
use slimc_runtime::train::search::{self, Point, Rank, SearchProgress, SearchRequest};
use slimc_runtime::train::TrainError;

use super::{fail, parse_device, plot, Device, Failure, LoaderArgs};

/// How candidates are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RankArg {
    /// The smallest validation error.
    Error,
    /// The smallest error increase per MAC saved.
    PerMac,
}

#[derive(Args)]
pub struct SearchArgs {
    /// A run directory (from `slimc train`) or a checkpoint directory.
    path: PathBuf,
    /// Targets as fractions of the full-width MACs: 75%,50%,25% (or 0.75,0.5,0.25).
    #[arg(long, conflicts_with = "macs", required_unless_present = "macs")]
    targets: Option<String>,
    /// Targets as MACs: 20M,10M (K, M and G suffixes).
    #[arg(long)]
    macs: Option<String>,
    /// Channels removed per step in every dimension (default: the dimension's divisor,
    /// or base/16 rounded to it).
    #[arg(long)]
    step: Option<u32>,
    /// Start the greedy path at a configuration instead of full width: FILE#TARGET, a
    /// `slimc eval --pareto` front and a MAC budget (pareto.json#20M) or a search result.
    #[arg(long, value_name = "FILE#TARGET")]
    from: Option<String>,
    /// How to pick each step's candidate.
    #[arg(long, value_enum, default_value_t = RankArg::Error)]
    rank: RankArg,
    /// Validation batches per candidate.
    #[arg(long, default_value_t = 10)]
    val_batches: usize,
    /// BN calibration batches per candidate.
    #[arg(long, default_value_t = 5, value_parser = super::parse_calibrate)]
    calibrate: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// The result (and resumable state); default RUN/search.json. Re-running the same
    /// command continues a search that was stopped.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Draw the greedy path (validation accuracy against MACs) into an .svg or .png file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// cpu, cuda[:N], wgpu[:N], wgpu:integrated[:N] or wgpu:cpu (the software adapter).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    #[command(flatten)]
    loader: LoaderArgs,
    /// Print the result as one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

// `20M` and `75%`: the configuration references' own parsers, shared with `--targets`.
pub use slimc_runtime::train::configs::{parse_fraction, parse_macs};

/// The target MACs of `--targets` (fractions of `full`) or `--macs`.
fn targets(a: &SearchArgs, full: u64) -> Result<Vec<u64>, Failure> {
    let list = |s: &str, f: &dyn Fn(&str) -> Option<u64>, what: &str| -> Result<Vec<u64>, Failure> {
        s.split(',').map(|t| f(t).ok_or_else(|| Failure::Usage(format!("{what}: cannot read `{t}`")))).collect()
    };
    let ts = match (&a.targets, &a.macs) {
        (Some(t), _) => {
            list(t, &|t: &str| parse_fraction(t, full), "--targets takes percentages of the full MACs, e.g. 75%,50%")?
        }
        (None, Some(m)) => list(m, &parse_macs, "--macs takes MAC counts, e.g. 20M,10M")?,
        (None, None) => return Err(Failure::Usage("give --targets or --macs".into())),
    };
    Ok(ts)
}

pub fn run(a: &SearchArgs) -> Result<(), Failure> {
    a.loader.apply(&a.device.spec)?;
    on_device!(a.device.spec, infer, go(a))
}

fn go<B: SlimBackend>(a: &SearchArgs, dev: B::Device) -> Result<(), Failure> {
    if a.batch == 0 || a.val_batches == 0 {
        return Err(Failure::Usage("--batch and --val-batches must be at least 1".into()));
    }
    let rank = match a.rank {
        RankArg::Error => Rank::Error,
        RankArg::PerMac => Rank::PerMac,
    };
    let run = open::<B>(&a.path, None, &dev).map_err(fail)?;
    let net = run.model.net.clone();
    let full = cost::cost(&net, &net.full_width()).0.macs;
    let req = SearchRequest {
        targets: targets(a, full)?,
        step: a.step,
        start: a.from.as_deref().map(|s| super::configured(s, &net)).transpose()?,
        rank,
        batch: a.batch,
        calibrate: a.calibrate,
        val_batches: a.val_batches,
    };
    let out = a.out.clone().unwrap_or_else(|| RunDir::new(&a.path).search());
    let mut progress = Bar::new(a.quiet, out.clone());
    let result = search::run(&run, &req, &out, &dev, &mut progress).map_err(|e| match e {
        TrainError::SearchFile { .. } => fail(format!("{e}; delete it or choose another --out")),
        e => fail(e),
    })?;
    progress.finish();
    let validated = run.val.len().min(a.val_batches * a.batch);
    if let Some(file) = &a.plot {
        let rows: Vec<plot::Point> = result
            .path
            .iter()
            .map(|p| plot::Point { series: "greedy path".into(), macs: p.macs, top1: p.val_acc, line: true })
            .collect();
        plot::pareto(file, &format!("{}: AutoSlim search (validation)", net.name), &rows).map_err(Failure::Usage)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json!(result)).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{}: greedy search, {} steps, validation on {} images ({})",
        net.name,
        result.path.len() - 1,
        validated,
        out.display()
    );
    println!("{:>10} {:>10} {:>10} {:>8}  channels", "target", "MACs", "params", "val acc");
    let mut found = result.found.clone();
    found.sort_by_key(|f| std::cmp::Reverse(f.target_macs));
    for f in &found {
        let ch: Vec<String> = f.point.channels.iter().map(u32::to_string).collect();
        println!(
            "{:>10} {:>10} {:>10} {:>7.2}%  {}",
            human(f.target_macs),
            human(f.point.macs),
            human(f.point.params),
            100.0 * f.point.val_acc,
            ch.join(",")
        );
    }
    for t in &req.targets {
        if !found.iter().any(|f| f.target_macs == *t) {
            println!("{:>10} not reached: every dimension is at its minimum (the run's --min-width)", human(*t));
        }
    }
    println!("test accuracy next to uniform widths: slimc eval {} --configs {}", a.path.display(), out.display());
    Ok(())
}

struct Bar {
    bar: Option<ProgressBar>,
    /// The search file, named when a stored search continues.
    out: PathBuf,
}

impl Bar {
    fn new(quiet: bool, out: PathBuf) -> Bar {
        let bar = (!quiet).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("search {spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b
        });
        Bar { bar, out }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl SearchProgress for Bar {
    fn resumed(&mut self, steps_done: usize) {
        eprintln!("continuing the search in {} ({steps_done} steps done)", self.out.display());
    }
    fn candidate(&mut self, done: usize, of: usize) {
        if let Some(b) = &self.bar {
            b.tick();
            let msg = b.message();
            let base = msg.split(" | ").next().unwrap_or("").to_string();
            b.set_message(format!("{base} | candidate {}/{of}", done + 1));
        }
    }
    fn iteration(&mut self, p: &Point, lowest: u64) {
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "MACs {} (lowest target {}), val error {:.2}%",
                human(p.macs),
                human(lowest),
                100.0 * (1.0 - p.val_acc)
            ));
        }
    }
}
