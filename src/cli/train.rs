//! `slimc train FILE [options]` and `slimc train --resume RUN`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use slimc_runtime::data::{self, DataError, DataSpec, Holdout, Normalize};
use slimc_runtime::export::named;
use slimc_runtime::runtime::SlimAutodiff;
use slimc_runtime::train::joslim::{JoslimOptions, Objective};
use slimc_runtime::train::run::{self, EpochMetrics, Progress, Run, Schedule, TrainOptions};
use slimc_runtime::train::rundir::RunDir;
use slimc_runtime::train::start;
use slimc_runtime::train::teacher::Teacher;
use slimc_runtime::train::{Sampling, TrainError};

use slimc_runtime::train::parallel::{self, Cluster, Endpoint, Nodes, ParallelError};

use super::{
    compile_one, fail, on_devices, parse_data, parse_device, parse_devices, parse_width, read, CompileArgs, Device,
    Devices, Failure, LoaderArgs, SchemeArg, Widths,
};

/// The default peak learning rate from scratch, and from `--init` weights.
const LR: f64 = 0.1;
const FINE_TUNE_LR: f64 = 0.01;

fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    Endpoint::parse(s)
}

/// Joslim's cost objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    Macs,
    Params,
    /// Peak inference memory of one image (parameters plus the largest layer's working set).
    Memory,
    /// Measured forward time of one image on the training device.
    Latency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SamplingArg {
    /// One multiplier for the whole network.
    Uniform,
    /// One multiplier per search dimension.
    PerDim,
}

/// The training augmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AugmentArg {
    /// Random resized crop, colour jitter, PCA lighting, flip (the seeds' ImageNet recipe;
    /// the default for imagefolder and webdataset).
    Inception,
    /// Random crop after zero padding (4 pixels for CIFAR, 2 for Fashion-MNIST, an eighth of
    /// the size otherwise) and a flip (the default for small images).
    Pad,
    /// None.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Cosine,
    Linear,
}

#[derive(Args)]
pub struct TrainArgs {
    /// The .slim file (not needed with --resume).
    #[arg(required_unless_present = "resume")]
    file: Option<PathBuf>,
    /// Which network of the file (needed when it holds several).
    #[arg(long)]
    network: Option<String>,
    #[arg(long, value_enum, default_value_t = SchemeArg::Us)]
    scheme: SchemeArg,
    /// S scheme: the width switches, W1,W2,... or START:END:STEP [default: 0.25,0.5,0.75,1.0].
    #[arg(long)]
    widths: Option<Widths>,
    /// Fixed scheme: the one width trained.
    #[arg(long, value_parser = parse_width)]
    width: Option<f64>,
    /// US and joslim schemes: random widths per step besides max and min.
    #[arg(long, default_value_t = 2)]
    random: usize,
    /// Joslim: uniform draws the configuration pool starts with.
    #[arg(long, default_value_t = JoslimOptions::default().prior)]
    prior: usize,
    /// Joslim: steps between updates of the Gaussian processes (and of the pool).
    #[arg(long, default_value_t = JoslimOptions::default().tau)]
    tau: usize,
    /// Joslim: configurations proposed at each update.
    #[arg(long, default_value_t = JoslimOptions::default().per_update)]
    per_update: usize,
    /// Joslim: the most configurations the pool holds (the oldest leave first).
    #[arg(long, default_value_t = JoslimOptions::default().pool)]
    pool: usize,
    /// Joslim: the cost traded against validation loss.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Macs)]
    objective: ObjectiveArg,
    /// Joslim: the confidence bound's width, in standard deviations of the GP.
    #[arg(long, default_value_t = JoslimOptions::default().beta)]
    beta: f64,
    /// US scheme: how the random widths are drawn.
    #[arg(long, value_enum, default_value_t = SamplingArg::Uniform)]
    sampling: SamplingArg,
    /// US and joslim schemes: the smallest width trained.
    #[arg(long, default_value_t = 0.25, value_parser = parse_width)]
    min_width: f64,
    /// fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, imagefolder:DIR or
    /// webdataset:DIR (shards `slimc pack` writes).
    #[arg(long, default_value = "fashion-mnist", value_parser = parse_data)]
    data: DataSpec,
    /// The training augmentation [default: inception for imagefolder and webdataset, pad
    /// for CIFAR and Fashion-MNIST, none for MNIST].
    #[arg(long, value_enum)]
    augment: Option<AugmentArg>,
    /// Inception augmentation: the smallest share of an image's area a crop takes (0.08
    /// for ResNets, 0.25 for the mobile networks, as the seeds train them).
    #[arg(long, value_name = "MIN")]
    crop_scale: Option<f64>,
    /// imagefolder and webdataset: evaluation resizes the shorter side to this many pixels,
    /// then crops the centre to the input size [default: size / 0.875, 256 for 224].
    #[arg(long, value_name = "PIXELS")]
    eval_resize: Option<usize>,
    #[command(flatten)]
    loader: LoaderArgs,
    /// Training images held out for validation (a count).
    #[arg(long, default_value_t = 5000, conflicts_with = "val_fraction")]
    val_images: usize,
    /// Training images held out for validation, as a fraction in [0, 1) of the training set.
    #[arg(long, value_parser = parse_fraction)]
    val_fraction: Option<f64>,
    /// Epochs to train [default: 10].
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Peak learning rate (SGD, momentum 0.9, Nesterov) [default: 0.1 from scratch,
    /// 0.01 with --init: fine-tuning starts near a good solution and would leave it at 0.1].
    #[arg(long)]
    lr: Option<f64>,
    /// L2 on conv and linear weights (not BN or biases).
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// Decay to zero after the warm-up.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    schedule: ScheduleArg,
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
    /// cpu, cuda[:N], wgpu[:N], wgpu:integrated[:N] or wgpu:cpu (the software adapter).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    /// Data-parallel: one replica per device, all of one kind (cpu:0,cpu:1 splits the cores;
    /// cuda:0,cuda:1,…); --batch stays the global batch, split evenly.
    #[arg(long, conflicts_with = "device", value_parser = parse_devices)]
    devices: Option<Devices>,
    /// Data-parallel over machines: how many nodes (one slimc process each) train together.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// This node's rank in 0..--nodes; node 0 runs the coordinator, validates and writes
    /// the checkpoints.
    #[arg(long, default_value_t = 0)]
    node_rank: usize,
    /// HOST:PORT of node 0's coordinator, the same on every node (needed with --nodes).
    #[arg(long, value_parser = parse_endpoint)]
    coordinator: Option<Endpoint>,
    /// HOST:PORT at which the other nodes reach this one [default: the coordinator's host,
    /// port + 1 + rank].
    #[arg(long, value_parser = parse_endpoint)]
    node_address: Option<Endpoint>,
    /// Seconds a node waits for the coordinator, for the other nodes to join, and for any
    /// exchange of gradients (node 0's validation included).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Start from these full-width weights instead of a random initialisation: a
    /// safetensors file under slimc's layer names (`slimc import`, an emitted PyTorch
    /// module's `state_dict()`, a full-width `slimc export --format safetensors`), or a
    /// PyTorch `state_dict` under its own module names (torchvision's), matched to the
    /// layers by structure. BN statistics in it are not used.
    #[arg(long, value_name = "WEIGHTS")]
    init: Option<PathBuf>,
    /// With --init: rank each search dimension's channels by importance first, so that a
    /// narrower width starts from the most important ones: `l1` (filter L1 norms summed
    /// over the dimension's layers), `bn` (BN |gamma|), or `none`. The full width is unchanged.
    #[arg(long, requires = "init", default_value = "none", value_name = "none|l1|bn")]
    order: super::Order,
    /// The input normalisation, MEAN/STD (one value, or one per channel, comma-separated):
    /// the one pretrained --init weights were trained with [default: measured on the
    /// training images].
    #[arg(long, value_parser = super::parse_normalize, value_name = "MEAN/STD")]
    normalize: Option<Normalize>,
    /// Distil from a frozen teacher: the network at full width with these weights (any file
    /// --init takes, with BN statistics: a pretrained network's state_dict, an import's),
    /// evaluated on every batch; the narrower widths learn from its softmax instead of the
    /// largest width's. The US and Joslim schemes; --resume loads it again.
    #[arg(long, value_name = "WEIGHTS")]
    teacher: Option<PathBuf>,
    /// The run directory (checkpoint/, metrics.jsonl); default runs/<network>-<scheme>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory where it stopped. Only --epochs and --max-steps
    /// (to extend it), --device and --quiet may be given with it.
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// No progress bar (one line per epoch).
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    compile: CompileArgs,
}

/// The flags `--resume` accepts; every other one is fixed by the run being continued.
const RESUMABLE: &[&str] = &[
    "resume",
    "epochs",
    "max_steps",
    "device",
    "devices",
    "nodes",
    "node_rank",
    "coordinator",
    "node_address",
    "timeout",
    "quiet",
    "workers",
];

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction in [0, 1), got `{s}`")),
    }
}

/// The flags typed on the command line that `--resume` cannot apply, as `--name`s.
fn refused_on_resume(matches: &ArgMatches) -> Vec<String> {
    let mut ids: Vec<&str> = matches
        .ids()
        .map(|id| id.as_str())
        // A flattened struct (`CompileArgs`, `LoaderArgs`) is also a group id, named after
        // the struct; its flags are listed (or allowed) by their own ids.
        .filter(|id| !id.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|id| !RESUMABLE.contains(id))
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .collect();
    ids.sort_unstable();
    ids.into_iter().map(|id| if id == "file" { "FILE".into() } else { format!("--{}", id.replace('_', "-")) }).collect()
}

fn parse_options(a: &TrainArgs) -> Result<TrainOptions, Failure> {
    let scheme = a.scheme.scheme(a.width, a.widths.as_ref(), || joslim_options(a))?;
    let sampling = match a.sampling {
        SamplingArg::Uniform => Sampling::Uniform,
        SamplingArg::PerDim => Sampling::PerDim,
    };
    let schedule = match a.schedule {
        ScheduleArg::Cosine => Schedule::Cosine,
        ScheduleArg::Linear => Schedule::Linear,
    };
    let epochs = a.epochs.unwrap_or(10);
    let opts = TrainOptions {
        scheme,
        sampling,
        min_width: a.min_width,
        random: a.random,
        epochs,
        batch: a.batch,
        lr: a.lr.unwrap_or(if a.init.is_some() { FINE_TUNE_LR } else { LR }),
        momentum: 0.9,
        weight_decay: a.weight_decay,
        schedule,
        warmup: a.warmup,
        label_smoothing: a.label_smoothing,
        seed: a.seed,
        max_steps: a.max_steps,
        val: 0,
        calibrate: a.calibrate,
        data: a.data.clone(),
        // Set once the data set's image size is known (`augment`).
        augment: None,
        eval_resize: a.eval_resize,
        // Absolute, so that `--resume` finds it from any directory.
        teacher: a
            .teacher
            .as_ref()
            .map(|p| std::path::absolute(p).map_err(|e| Failure::Usage(format!("--teacher {}: {e}", p.display()))))
            .transpose()?,
    };
    // The library's validation, the one a resumed run's stored options pass too; each
    // field is the flag of the same name.
    opts.validate().map_err(|e| Failure::Usage(format!("--{} {}", e.field.replace('_', "-"), e.problem)))?;
    Ok(opts)
}

/// The augmentation `--augment` and `--crop-scale` choose for images of side `size`.
fn augment(a: &TrainArgs, size: usize) -> Result<data::Augment, Failure> {
    let chosen = match a.augment {
        // The data set's own: its padded crop (none for digits); photographs take the arm below.
        None if !a.data.is_photographs() => a.data.augment(size),
        None | Some(AugmentArg::Inception) => {
            let mut aug = data::Inception::default();
            if let Some(min) = a.crop_scale {
                aug.scale.0 = min;
            }
            aug.check().map_err(|e| Failure::Usage(format!("--crop-scale: {e}")))?;
            return Ok(data::Augment::Inception(aug));
        }
        Some(AugmentArg::Pad) => match a.data.small_augment(size) {
            // MNIST's own is none; asked for by name, it gets the padded crop without the
            // flip (digits are not symmetric).
            data::Augment::Pad { pad: 0, .. } => data::Augment::Pad { pad: size / 8, flip: false },
            aug => aug,
        },
        Some(AugmentArg::None) => data::Augment::NONE,
    };
    if a.crop_scale.is_some() {
        return Err(Failure::Usage("--crop-scale goes with --augment inception".into()));
    }
    Ok(chosen)
}

/// Joslim's flags (checked with the other options, `JoslimOptions::validate`).
fn joslim_options(a: &TrainArgs) -> Result<JoslimOptions, Failure> {
    let objective = match a.objective {
        ObjectiveArg::Macs => Objective::Macs,
        ObjectiveArg::Params => Objective::Params,
        ObjectiveArg::Memory => Objective::Memory,
        ObjectiveArg::Latency => Objective::Latency,
    };
    Ok(JoslimOptions { prior: a.prior, tau: a.tau, per_update: a.per_update, pool: a.pool, objective, beta: a.beta })
}

/// Joslim's flags typed for another scheme (they would be ignored), as `--name`s.
fn joslim_only(matches: &ArgMatches) -> Vec<String> {
    ["prior", "tau", "per_update", "pool", "objective", "beta"]
        .into_iter()
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect()
}

/// `matches` are the `train` subcommand's, to tell typed flags from defaults.
pub fn run(a: &TrainArgs, matches: Option<&ArgMatches>) -> Result<(), Failure> {
    if a.max_steps == Some(0) {
        return Err(Failure::Usage("--max-steps must be at least 1".into()));
    }
    if a.resume.is_some() {
        let refused = matches.map(refused_on_resume).unwrap_or_default();
        if !refused.is_empty() {
            return Err(Failure::Usage(format!(
                "{} cannot change when a run is resumed (only --epochs, --max-steps, --quiet and the devices \
                 and nodes can); start a new run with --out instead",
                refused.join(", ")
            )));
        }
    }
    if a.resume.is_none() && a.scheme != SchemeArg::Joslim {
        let stray = matches.map(joslim_only).unwrap_or_default();
        if !stray.is_empty() {
            return Err(Failure::Usage(format!("{} only apply to --scheme joslim", stray.join(", "))));
        }
    }
    if a.eval_resize.is_some() && !a.data.is_photographs() {
        return Err(Failure::Usage("--eval-resize applies to photographs (imagefolder:DIR, webdataset:DIR)".into()));
    }
    a.loader.apply(a.devices.as_ref().map_or(&a.device.spec, |d| &d.specs[0]))?;
    let cluster = cluster(a)?;
    if cluster.world() > 1 && std::env::var_os("SLIMC_DEBUG").is_none() {
        quiet_collective();
    }
    if a.resume.is_none() {
        cluster.check_batch(a.batch).map_err(parallel_failure)?;
    }
    cluster.check_network().map_err(parallel_failure)?;
    if let Some(n) = cluster.nodes.as_ref().filter(|n| n.rank == 0) {
        let port = n.coordinator.port;
        // The orchestrator serves until SIGINT or SIGTERM (it takes over those signals).
        std::thread::spawn(move || {
            if let Err(e) = parallel::serve_orchestrator(port) {
                eprintln!("error: {e}");
            }
            eprintln!("slimc: interrupted; the last checkpoint is kept");
            std::process::exit(130);
        });
    }
    let specs = a.devices.as_ref().map_or_else(|| vec![a.device.spec], |d| d.specs.clone());
    on_devices!(&specs, train(a, &cluster))
}

/// burn-collective's servers log every connection (through a `tracing` subscriber they
/// install unless one exists) and its async tasks panic where a peer disappears; slimc
/// reports those failures itself, as one error, so both are silenced here.
fn quiet_collective() {
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        if !thread.name().is_some_and(|n| n.starts_with("tokio")) {
            report(info);
        }
    }));
}

/// The replicas and nodes the flags describe.
fn cluster(a: &TrainArgs) -> Result<Cluster, Failure> {
    let devices = a.devices.as_ref().map_or(1, |d| d.specs.len());
    let timeout = std::time::Duration::from_secs(a.timeout);
    if a.timeout == 0 {
        return Err(Failure::Usage("--timeout must be at least 1 second".into()));
    }
    if a.nodes == 0 || a.node_rank >= a.nodes {
        return Err(Failure::Usage(format!(
            "--node-rank {} is not a node of --nodes {} (ranks are 0..{})",
            a.node_rank,
            a.nodes,
            a.nodes.max(1) - 1
        )));
    }
    if a.nodes == 1 {
        if a.coordinator.is_some() || a.node_address.is_some() {
            return Err(Failure::Usage("--coordinator and --node-address need --nodes N (N > 1)".into()));
        }
        return Ok(Cluster::local(devices, timeout));
    }
    let coordinator = a.coordinator.clone().ok_or_else(|| {
        Failure::Usage(format!(
            "--nodes {} needs --coordinator HOST:PORT (node 0's address, the same on every node)",
            a.nodes
        ))
    })?;
    let node = match &a.node_address {
        Some(n) => n.clone(),
        None => {
            let port = usize::from(coordinator.port) + 1 + a.node_rank;
            let port = u16::try_from(port).map_err(|_| {
                Failure::Usage("the coordinator's port is too high to derive node ports; give --node-address".into())
            })?;
            Endpoint { host: coordinator.host.clone(), port }
        }
    };
    Ok(Cluster { devices, nodes: Some(Nodes { count: a.nodes, rank: a.node_rank, coordinator, node }), timeout })
}

/// A library error, with what the user can do about it where the message cannot name flags.
fn train_failure(e: TrainError) -> Failure {
    match e {
        TrainError::Diverged { .. } => Failure::Usage(format!("{e} — try a lower --lr or a longer --warmup")),
        TrainError::BatchTooLarge { .. } => Failure::Usage(format!("{e}; use a smaller --batch")),
        TrainError::Parallel(e) => parallel_failure(e),
        TrainError::DataShape { .. } => Failure::Usage(format!("{e}; set the network's input parameters with --set")),
        TrainError::Classes { classes, .. } => Failure::Usage(format!("{e}; use --set classes={classes}")),
        TrainError::Data(DataError::NoTrainingImages { .. }) => {
            Failure::Usage(format!("{e}; hold out fewer with --val-images or --val-fraction"))
        }
        TrainError::NoValidation => Failure::Usage(format!("{e}; hold some out with --val-images")),
        TrainError::RunExists(ref dir) => {
            Failure::Usage(format!("{e}; continue it with --resume {} or choose another --out", dir.display()))
        }
        e => fail(e),
    }
}

/// A data-parallel error, with the flag that addresses it.
fn parallel_failure(e: ParallelError) -> Failure {
    let hint = match &e {
        ParallelError::Timeout { .. } => "; if a node was only busy (validating a large set), raise --timeout",
        ParallelError::Unreachable { .. } => "; start node 0 first, or check --coordinator (and --timeout)",
        ParallelError::Listen { what: "coordinator", .. } => "; choose another --coordinator port",
        ParallelError::Listen { .. } => "; choose another port with --node-address",
        ParallelError::Uneven { .. } => "; choose a --batch that the replica count divides",
        _ => "",
    };
    Failure::Usage(format!("{e}{hint}"))
}

fn train<B: SlimAutodiff>(a: &TrainArgs, cluster: &Cluster, devs: Vec<B::Device>) -> Result<(), Failure> {
    let (runs, run_dir, data) = match &a.resume {
        Some(dir) => {
            let (first, data) = Run::<B>::resume_with_data(dir, &devs[0]).map_err(train_failure)?;
            let mut runs = vec![first];
            for dev in &devs[1..] {
                runs.push(Run::<B>::resume(dir, dev).map_err(fail)?);
            }
            for run in &mut runs {
                if let Some(e) = a.epochs {
                    run.state.options.epochs = e;
                }
                if a.max_steps.is_some() {
                    run.state.options.max_steps = a.max_steps;
                }
            }
            (runs, dir.clone(), data)
        }
        None => {
            let (run, dir, data) = fresh::<B>(a, &devs[0])?;
            let mut runs: Vec<Run<B>> = devs[1..].iter().map(|d| run.fork(d)).collect();
            runs.insert(0, run);
            (runs, dir, data)
        }
    };
    let opts = runs[0].state.options.clone();
    let lead = cluster.rank(0) == 0;
    if lead {
        let devices = a.devices.as_ref().map_or(&a.device.name, |d| &d.name);
        let nodes = cluster.nodes.as_ref().map_or(String::new(), |n| format!(" on each of {} nodes", n.count));
        eprintln!(
            "training {} on {} ({} train / {} validation images), {}, {} epochs of batch {}, device {devices}{nodes}",
            runs[0].model.net.name,
            opts.data,
            data.train.len() - opts.val,
            opts.val,
            opts.scheme.describe(),
            opts.epochs,
            opts.batch,
        );
    }
    let threads = a.devices.as_ref().and_then(Devices::cpu_threads);
    let mut progress = Bar::new(a.quiet || !lead);
    let mut runs =
        run::train_replicas(runs, devs, cluster, threads, &data, &run_dir, &mut progress).map_err(train_failure)?;
    progress.finish();
    let run = runs.swap_remove(0);
    if cluster.world() > 1 {
        eprintln!(
            "{} at step {}: all {} replicas hold the same weights (hash {:016x})",
            cluster.nodes.as_ref().map_or("done".into(), |n| format!("node {} done", n.rank)),
            run.state.step,
            cluster.world(),
            parallel::weights_hash(&run.model),
        );
    }
    if !lead {
        return Ok(());
    }
    let s = &run.state;
    eprintln!(
        "checkpoint: {}  metrics: {}",
        RunDir::new(&run_dir).checkpoint().display(),
        RunDir::new(&run_dir).metrics().display()
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

/// A new run: the library loads the data and offers its shape and classes to the
/// network's parameters; the network is compiled here (its diagnostics printed); the
/// library checks and creates the run.
fn fresh<B: SlimAutodiff>(a: &TrainArgs, dev: &B::Device) -> Result<(Run<B>, PathBuf, data::Dataset), Failure> {
    let file = a.file.as_ref().expect("clap requires FILE without --resume");
    let mut options = parse_options(a)?;
    // The weights first: a wrong file is reported before a data set is read.
    let init = a.init.as_ref().map(|p| named::read_file(p).map(|t| (p, t))).transpose().map_err(fail)?;
    let mut compile = a.compile.options();
    let bytes = read(file)?;
    let (data, context) = start::load_data(&a.data, &compile.settings, a.eval_resize).map_err(train_failure)?;
    options.augment = Some(augment(a, data.shape()[1])?);
    compile.context = context;
    let net = compile_one(file, &bytes, a.network.as_deref(), &compile)?;
    let setup = start::Setup {
        source_path: file.display().to_string(),
        source: String::from_utf8_lossy(&bytes).into_owned(),
        compile,
        options,
        holdout: a.val_fraction.map_or(Holdout::Images(a.val_images), Holdout::Fraction),
        out: a.out.clone(),
        normalize: a.normalize.clone(),
    };
    let init = init
        .map(|(path, tensors)| super::matched(&net, path, tensors).map(|t| (path, super::ordered(&net, t, a.order))))
        .transpose()?;
    // The teacher's weights, read and matched before the run exists.
    let teacher = match &a.teacher {
        Some(path) => {
            let (teacher, modules) = Teacher::load(Arc::new(net.clone()), path, dev).map_err(fail)?;
            super::say_matched(&net, path, modules);
            Some(teacher)
        }
        None => None,
    };
    let (mut run, dir) = Run::<B>::create(net, &data, setup, dev).map_err(train_failure)?;
    if let Some(teacher) = teacher {
        run = run.with_teacher(teacher);
        eprintln!("distilling from the teacher in {}", a.teacher.as_ref().expect("loaded from it").display());
    }
    if let Some((path, tensors)) = init {
        run.model.load_named(tensors, path, dev).map_err(fail)?;
        eprintln!("starting from the weights in {}", path.display());
    }
    Ok((run, dir.root().to_path_buf(), data))
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
