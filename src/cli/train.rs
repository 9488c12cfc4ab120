//! `slimc train FILE [options]`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use slimc::data::{self, DataSpec, Normalize};
use slimc::ir::ParamValue;
use slimc::runtime::checkpoint::Meta;
use slimc::runtime::{SlimAutodiff, SlimNet};
use slimc::train::run::{self, EpochMetrics, Progress, Run, Schedule, Scheme, TrainOptions};
use slimc::train::Sampling;

use super::{device, fail};
use crate::{compile_one, options, read, CompileArgs, Failure};

#[derive(Args)]
pub struct TrainArgs {
    /// The .slim file (not needed with --resume).
    #[arg(required_unless_present = "resume")]
    file: Option<PathBuf>,
    /// Which network of the file (needed when it holds several).
    #[arg(long)]
    network: Option<String>,
    /// us (sandwich rule, inplace distillation), s (switchable widths) or fixed.
    #[arg(long, default_value = "us")]
    scheme: String,
    /// S-Nets: the width switches, e.g. 0.25,0.5,0.75,1.0.
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<f64>>,
    /// Fixed scheme: the one width trained.
    #[arg(long)]
    width: Option<f64>,
    /// US scheme: random widths per step besides max and min.
    #[arg(long, default_value_t = 2)]
    random: usize,
    /// uniform (one multiplier for the network) or per-dim (one per search dimension).
    #[arg(long, default_value = "uniform")]
    sampling: String,
    /// US scheme: the smallest width trained.
    #[arg(long, default_value_t = 0.25)]
    min_width: f64,
    /// fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR or imagefolder:DIR.
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Validation images held out of the training set: a fraction (< 1) or a count.
    #[arg(long, default_value_t = 5000.0)]
    val_fraction: f64,
    /// Epochs to train [default: 10].
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Peak learning rate (SGD, momentum 0.9, Nesterov).
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// L2 on conv and linear weights (not BN or biases).
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// cosine or linear decay to zero.
    #[arg(long, default_value = "cosine")]
    schedule: String,
    /// Linear warm-up in epochs.
    #[arg(long, default_value_t = 0.2)]
    warmup: f64,
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after this many steps (a checkpoint is written there).
    #[arg(long)]
    max_steps: Option<usize>,
    /// BN calibration batches before each validation.
    #[arg(long, default_value_t = 10)]
    calibrate: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The run directory (checkpoint/, metrics.jsonl); default runs/<network>-<scheme>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory where it stopped (other options are ignored,
    /// except --epochs and --max-steps, which may extend it, and --device).
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// No progress bar (one line per epoch).
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    compile: CompileArgs,
}

fn parse_options(a: &TrainArgs, spec: DataSpec) -> Result<TrainOptions, Failure> {
    let width_ok = |w: f64| w > 0.0 && w <= 1.0;
    let scheme = match a.scheme.as_str() {
        "us" => Scheme::Us,
        "s" => {
            let ws = a.widths.clone().unwrap_or_else(|| vec![0.25, 0.5, 0.75, 1.0]);
            if ws.is_empty() || !ws.iter().all(|&w| width_ok(w)) {
                return Err(Failure::Usage("--widths takes widths in (0, 1]".into()));
            }
            Scheme::S(ws)
        }
        "fixed" => match a.width {
            Some(w) if width_ok(w) => Scheme::Fixed(w),
            Some(w) => return Err(Failure::Usage(format!("--width {w} is not in (0, 1]"))),
            None => return Err(Failure::Usage("--scheme fixed needs --width W".into())),
        },
        s => return Err(Failure::Usage(format!("unknown scheme `{s}`; use us, s or fixed"))),
    };
    let sampling = match a.sampling.as_str() {
        "uniform" => Sampling::Uniform,
        "per-dim" => Sampling::PerDim,
        s => return Err(Failure::Usage(format!("unknown sampling `{s}`; use uniform or per-dim"))),
    };
    let schedule = match a.schedule.as_str() {
        "cosine" => Schedule::Cosine,
        "linear" => Schedule::Linear,
        s => return Err(Failure::Usage(format!("unknown schedule `{s}`; use cosine or linear"))),
    };
    if !width_ok(a.min_width) {
        return Err(Failure::Usage(format!("--min-width {} is not in (0, 1]", a.min_width)));
    }
    let epochs = a.epochs.unwrap_or(10);
    if epochs == 0 || a.batch == 0 {
        return Err(Failure::Usage("--epochs and --batch must be at least 1".into()));
    }
    let positive = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(Failure::Usage(format!("{name} must be a non-negative number, got {v}")))
        }
    };
    positive("--lr", a.lr)?;
    positive("--weight-decay", a.weight_decay)?;
    positive("--warmup", a.warmup)?;
    if !(0.0..1.0).contains(&a.label_smoothing) {
        return Err(Failure::Usage(format!("--label-smoothing must be in [0, 1), got {}", a.label_smoothing)));
    }
    Ok(TrainOptions {
        scheme,
        sampling,
        min_width: a.min_width,
        random: a.random,
        epochs,
        batch: a.batch,
        lr: a.lr,
        momentum: 0.9,
        weight_decay: a.weight_decay,
        schedule,
        warmup: a.warmup,
        label_smoothing: a.label_smoothing,
        seed: a.seed,
        max_steps: a.max_steps,
        val: 0,
        calibrate: a.calibrate,
        data: spec,
    })
}

pub fn run(a: &TrainArgs) -> Result<(), Failure> {
    on_device!(device(&a.device)?, CpuTrain, GpuTrain, train(a))
}

fn train<B: SlimAutodiff>(a: &TrainArgs, dev: B::Device) -> Result<(), Failure> {
    let (run, run_dir, data) = match &a.resume {
        Some(dir) => {
            let mut run = Run::<B>::resume(dir, &dev).map_err(fail)?;
            if let Some(e) = a.epochs {
                run.state.options.epochs = e;
            }
            if a.max_steps.is_some() {
                run.state.options.max_steps = a.max_steps;
            }
            let size = run.model.net.input[1] as usize;
            let data = data::load(&run.state.options.data, size).map_err(fail)?;
            (run, dir.clone(), data)
        }
        None => fresh::<B>(a, &dev)?,
    };
    let opts = run.state.options.clone();
    eprintln!(
        "training {} on {} ({} train / {} validation images), {:?}, {} epochs of batch {}, device {}",
        run.model.net.name,
        opts.data,
        data.train.len() - opts.val,
        opts.val,
        opts.scheme,
        opts.epochs,
        opts.batch,
        a.device
    );
    let mut progress = Bar::new(a.quiet);
    let run = run.train(&data, &run_dir, &dev, &mut progress).map_err(fail)?;
    progress.finish();
    let s = &run.state;
    eprintln!(
        "checkpoint: {}  metrics: {}",
        run::checkpoint_dir(&run_dir).display(),
        run_dir.join("metrics.jsonl").display()
    );
    if s.epoch < s.options.epochs {
        eprintln!(
            "stopped at step {} (epoch {}); continue with `slimc train --resume {}`",
            s.step,
            s.epoch + 1,
            run_dir.display()
        );
    }
    Ok(())
}

/// A new run: loads the data, sets the network's input and class parameters from it,
/// compiles, builds the model.
fn fresh<B: SlimAutodiff>(a: &TrainArgs, dev: &B::Device) -> Result<(Run<B>, PathBuf, data::Dataset), Failure> {
    let file = a.file.as_ref().expect("clap requires FILE without --resume");
    let spec = DataSpec::parse(&a.data).map_err(Failure::Usage)?;
    let mut opts = parse_options(a, spec.clone())?;
    let mut options = options(&a.compile)?;
    let bytes = read(file)?;
    let declared: Vec<String> = std::str::from_utf8(&bytes)
        .ok()
        .and_then(slimc::network_params)
        .map(|nets| {
            nets.into_iter()
                .filter(|(n, _)| a.network.as_deref().is_none_or(|w| w == n))
                .flat_map(|(_, ps)| ps)
                .collect()
        })
        .unwrap_or_default();
    let given = |o: &slimc::Options, k: &str| o.settings.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let size = match given(&options, "size") {
        Some(ParamValue::Int(s)) if s > 0 => s as usize,
        _ => 224,
    };
    let data = data::load(&spec, size).map_err(fail)?;
    let [c, h, w] = data.shape();
    if h != w {
        return Err(Failure::Usage(format!("{} images are {h}×{w}; slimc's networks take square inputs", spec)));
    }
    for (k, v) in [("in_channels", c), ("size", h), ("classes", data.classes)] {
        if given(&options, k).is_none() && declared.iter().any(|d| d == k) {
            options.settings.push((k.to_string(), ParamValue::Int(v as i64)));
        }
    }
    let net = compile_one(file, &bytes, a.network.as_deref(), &options)?;
    if net.input[0] as usize != c || net.input[1] as usize != h || net.input[2] as usize != w {
        return Err(Failure::Usage(format!(
            "{} takes {:?} inputs but {} images are [{c}, {h}, {w}]; set the network's input parameters with --set",
            net.name, net.input, spec
        )));
    }
    let classes = net.layers[net.output].channels as usize;
    if classes != data.classes {
        return Err(Failure::Usage(format!(
            "{} has {classes} outputs but {} has {} classes; use --set classes={}",
            net.name, spec, data.classes, data.classes
        )));
    }
    opts.val = data::validation_size(a.val_fraction, data.train.len()).map_err(Failure::Usage)?;
    let (train_split, _) = run::splits(&data, &opts);
    let normalize = Normalize::measure(&train_split).map_err(fail)?;
    let scheme = match &opts.scheme {
        Scheme::Us => "us".to_string(),
        Scheme::S(_) => "s".to_string(),
        Scheme::Fixed(w) => format!("fixed{w}"),
    };
    let run_dir = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/{}-{scheme}", net.name)));
    if run::checkpoint_dir(&run_dir).exists() {
        return Err(Failure::Usage(format!(
            "{} already holds a run; continue it with --resume {0} or choose another --out",
            run_dir.display()
        )));
    }
    let meta = Meta::new(
        &file.display().to_string(),
        std::str::from_utf8(&bytes).unwrap_or_default(),
        &net,
        &options,
        opts.switches(),
    );
    let model = SlimNet::<B>::new(Arc::new(net), opts.switches(), opts.seed, dev);
    Ok((Run::start(model, meta, opts, normalize), run_dir, data))
}

/// The progress bar of an epoch, and one summary line per epoch.
struct Bar {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Bar {
    fn new(quiet: bool) -> Bar {
        Bar { bar: None, quiet }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize, done: usize) {
        self.finish();
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(steps as u64).with_position(done as u64);
        let style = ProgressStyle::with_template(&format!(
            "epoch {}/{epochs} {{bar:30}} {{pos}}/{{len}} {{msg}} [{{elapsed}}<{{eta}}]",
            epoch + 1
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        self.bar = Some(bar);
    }
    fn step(&mut self, loss: f64, lr: f64, img_per_s: f64) {
        if let Some(b) = &self.bar {
            b.set_message(format!("loss {loss:.4} lr {lr:.4} {img_per_s:.0} img/s"));
            b.inc(1);
        }
    }
    fn validating(&mut self) {
        if let Some(b) = &self.bar {
            b.set_message("calibrating BN and validating".to_string());
        }
    }
    fn epoch_end(&mut self, m: &EpochMetrics) {
        self.finish();
        let acc = |a: Option<f64>| a.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
        eprintln!(
            "epoch {}{}: loss {:.4}, val acc {} at {} / {} at {}, {:.0} img/s, {:.0} s",
            m.epoch,
            if m.complete { "" } else { " (partial)" },
            m.train_loss,
            acc(m.val_acc_min),
            m.min_width,
            acc(m.val_acc_max),
            m.max_width,
            m.img_per_s,
            m.seconds
        );
    }
}
