//! `slimc train`: epochs of slimmable training on a data set, a checkpoint after every
//! epoch (and where `--max-steps` stops), validation accuracy at the smallest and largest
//! width, `metrics.jsonl`, and exact resumption. Everything random is a function of the
//! seed and the step or image position, so a resumed run repeats the original exactly.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{Optimizer, SgdConfig};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::joslim::{JoslimOptions, JoslimState};
use super::parallel::{self, Cluster, ParallelError, Replica};
use super::rundir::RunDir;
use super::scheme::Scheme;
use super::teacher::Teacher;
use super::OptionError;
use super::{cross_entropy, measure, step_from, tensors, Sampling, Sandwich, StepLoss, StepOptions, TrainError};
use crate::data::{self, DataSpec, Dataset, Normalize, Plan, Split};
use crate::runtime::checkpoint::{self, CheckpointError, Meta};
use crate::runtime::{Mode, RuntimeError, SlimAutodiff, SlimBackend, SlimNet, WidthConfig};
use burn::tensor::ElementConversion;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    Cosine,
    Linear,
}

/// Everything that determines a run (stored in the checkpoint for `--resume`, as
/// [`crate::format::run::Options`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub scheme: Scheme,
    pub sampling: Sampling,
    pub min_width: f64,
    pub random: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Linear warm-up, in epochs (may be fractional).
    pub warmup: f64,
    pub label_smoothing: f64,
    pub seed: u64,
    /// Stop after this many steps in total (a checkpoint is written there).
    pub max_steps: Option<usize>,
    /// Images held out of the training set for validation.
    pub val: usize,
    /// Batches of BN calibration before each validation.
    pub calibrate: usize,
    pub data: DataSpec,
    /// The training augmentation; `None` in runs started before it was stored: the data
    /// set's padded crop ([`DataSpec::small_augment`]).
    pub augment: Option<data::Augment>,
    /// Photographs: the shorter side evaluation resizes to before its centre crop; `None`
    /// in runs started before it was stored: the input size.
    pub eval_resize: Option<usize>,
    /// The distilled widths learn from a frozen teacher with these full-width weights
    /// (`--teacher`, [`super::teacher::Teacher`]) instead of the largest width; an absolute
    /// path, which `--resume` loads the teacher from again.
    pub teacher: Option<PathBuf>,
}

/// The most random widths a sandwich step trains besides the largest and the smallest
/// (the papers use 2; each costs a forward and backward pass).
pub const MAX_RANDOM: usize = 64;

fn check(ok: bool, field: &'static str, problem: impl FnOnce() -> String) -> Result<(), OptionError> {
    if ok {
        Ok(())
    } else {
        Err(OptionError { field, problem: problem() })
    }
}

impl TrainOptions {
    /// Every option in its range: the one validation for the flags of a new run and for
    /// the options stored in a run's `meta.json` (resume, eval), so that an edited state
    /// file is refused with the field named instead of failing inside the loop.
    pub fn validate(&self) -> Result<(), OptionError> {
        let width = |w: f64| w > 0.0 && w <= 1.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        check(self.epochs >= 1, "epochs", || "must be at least 1".into())?;
        check(self.batch >= 1, "batch", || "must be at least 1".into())?;
        check(self.random <= MAX_RANDOM, "random", || format!("must be at most {MAX_RANDOM}, got {}", self.random))?;
        check(width(self.min_width), "min_width", || format!("must be in (0, 1], got {}", self.min_width))?;
        check(non_negative(self.lr), "lr", || format!("must be a non-negative number, got {}", self.lr))?;
        check(non_negative(self.weight_decay), "weight_decay", || {
            format!("must be a non-negative number, got {}", self.weight_decay)
        })?;
        check(non_negative(self.warmup), "warmup", || format!("must be a non-negative number, got {}", self.warmup))?;
        check((0.0..1.0).contains(&self.momentum), "momentum", || format!("must be in [0, 1), got {}", self.momentum))?;
        check((0.0..1.0).contains(&self.label_smoothing), "label_smoothing", || {
            format!("must be in [0, 1), got {}", self.label_smoothing)
        })?;
        check(self.max_steps != Some(0), "max_steps", || "must be at least 1".into())?;
        if let Some(a) = &self.augment {
            a.check().map_err(|problem| OptionError { field: "augment", problem })?;
        }
        check(self.eval_resize.is_none_or(|r| (1..=1 << 16).contains(&r)), "eval_resize", || {
            "must be a positive number of pixels".into()
        })?;
        if let Some(teacher) = &self.teacher {
            check(self.scheme.distills(), "teacher", || {
                "needs a scheme whose narrower widths distil (us or joslim); this one's learn from the labels".into()
            })?;
            check(teacher.is_absolute(), "teacher", || format!("must be an absolute path, got {}", teacher.display()))?;
        }
        self.scheme.validate()
    }

    /// The options of a network evaluated from weights alone, without a run (`slimc eval
    /// FILE.slim --init WEIGHTS`): what evaluation reads is the data set, its evaluation
    /// resize (photographs) and the US scheme's default widths, 0.25 to 1; nothing is held
    /// out. The training fields (never used) are `slimc train`'s defaults.
    pub fn evaluating(data: DataSpec, size: usize) -> TrainOptions {
        let eval_resize = data.is_photographs().then(|| DataSpec::eval_resize(size));
        TrainOptions {
            scheme: Scheme::Us,
            sampling: Sampling::Uniform,
            min_width: 0.25,
            random: 2,
            epochs: 1,
            batch: 128,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine,
            warmup: 0.0,
            label_smoothing: 0.0,
            seed: 0,
            max_steps: None,
            val: 0,
            calibrate: 10,
            data,
            augment: Some(data::Augment::NONE),
            eval_resize,
            teacher: None,
        }
    }

    /// The training augmentation of images of side `size`.
    pub fn augment(&self, size: usize) -> data::Augment {
        self.augment.unwrap_or_else(|| self.data.small_augment(size))
    }

    /// The shorter side photographs of input side `size` are resized to for evaluation.
    pub fn eval_resize(&self, size: usize) -> usize {
        self.eval_resize.unwrap_or(size)
    }

    /// The BN switches the model needs ([`Scheme::switches`]).
    pub fn switches(&self) -> Vec<f64> {
        self.scheme.switches()
    }

    /// The smallest and largest widths the scheme trains ([`Scheme::extremes`]).
    pub fn extremes(&self) -> (f64, f64) {
        self.scheme.extremes(self.min_width)
    }

    /// The sandwich rule of the scheme's steps, from these options.
    pub fn sandwich(&self) -> Sandwich {
        Sandwich {
            min_width: self.min_width,
            random: self.random,
            sampling: self.sampling.clone(),
            distill: self.scheme.distills(),
        }
    }
}

/// Metrics of one epoch (or of the partial epoch where `--max-steps` stopped); stored as
/// [`crate::format::run::Metrics`].
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: usize,
    /// Whether the epoch ran to its end.
    pub complete: bool,
    pub train_loss: f64,
    pub lr: f64,
    pub min_width: f64,
    pub max_width: f64,
    pub val_acc_min: Option<f64>,
    pub val_acc_max: Option<f64>,
    pub img_per_s: f64,
    pub seconds: f64,
    /// Of `seconds`, the time spent in Joslim's updates (measuring the pool, fitting the
    /// GPs, proposing).
    pub search_seconds: f64,
}

impl RunState {
    /// Stored state that `net` can train and evaluate: options in range, one normalisation
    /// mean and (positive) standard deviation per input channel, a position inside the
    /// epoch, a Joslim pool of the network's dimensions. The first problem is named.
    pub fn validate(&self, net: &crate::ir::Network) -> Result<(), String> {
        self.options.validate().map_err(|e| format!("options.{e}"))?;
        let channels = net.input[0] as usize;
        let (mean, std) = (&self.normalize.mean, &self.normalize.std);
        if mean.len() != channels || std.len() != channels {
            return Err(format!(
                "`normalize` has {} means and {} standard deviations; the network takes {channels} input channels",
                mean.len(),
                std.len()
            ));
        }
        if !mean.iter().all(|m| m.is_finite()) || !std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err("`normalize` needs finite means and positive standard deviations".into());
        }
        if let Some(j) = &self.joslim {
            j.check(net.space.search_dim(), self.options.min_width)?;
        }
        Ok(())
    }
}

/// Where a run stands; stored in `meta.json` under `state` ([`crate::format::run::State`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    pub options: TrainOptions,
    pub normalize: Normalize,
    /// The epoch in progress (0-based) and the batches of it already trained.
    pub epoch: usize,
    pub batch: usize,
    /// Steps trained in total.
    pub step: usize,
    pub history: Vec<EpochMetrics>,
    /// Joslim's pool and GP data (`--scheme joslim` only).
    pub joslim: Option<JoslimState>,
}

/// What the training loop reports as it goes (the CLI draws a progress bar).
pub trait Progress {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize, _done: usize) {}
    fn step(&mut self, _loss: f64, _lr: f64, _img_per_s: f64) {}
    fn validating(&mut self) {}
    fn epoch_end(&mut self, _metrics: &EpochMetrics) {}
}

/// Reports nothing.
pub struct Quiet;
impl Progress for Quiet {}

const OPTIMIZER: &str = "optimizer";

/// The train / validation split of a data set for these options.
pub fn splits(data: &Dataset, opts: &TrainOptions) -> (Split, Split) {
    Split::all(data.train.clone()).hold_out(opts.val, opts.seed)
}

/// Learning rate at `step` of `total`: linear warm-up, then cosine or linear decay to 0.
pub fn learning_rate(opts: &TrainOptions, step: usize, steps_per_epoch: usize) -> f64 {
    let total = (opts.epochs * steps_per_epoch).max(1) as f64;
    let warm = (opts.warmup * steps_per_epoch as f64).min(total);
    let s = step as f64;
    if s < warm {
        return opts.lr * (s + 1.0) / warm;
    }
    let t = ((s - warm) / (total - warm).max(1.0)).clamp(0.0, 1.0);
    match opts.schedule {
        Schedule::Cosine => opts.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
        Schedule::Linear => opts.lr * (1.0 - t),
    }
}

type Sgd<B> = burn::optim::adaptor::OptimizerAdaptor<
    burn::optim::Sgd<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>,
    SlimNet<B>,
    B,
>;

fn optimizer<B: SlimAutodiff>(opts: &TrainOptions) -> Sgd<B> {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(opts.momentum).with_dampening(0.0).with_nesterov(opts.momentum > 0.0),
        ))
        .init::<B, SlimNet<B>>()
}

/// A run to start or continue.
pub struct Run<B: SlimAutodiff> {
    pub model: SlimNet<B>,
    pub meta: Meta,
    pub state: RunState,
    optim: Sgd<B>,
    /// The frozen teacher of [`TrainOptions::teacher`] ([`Run::with_teacher`]).
    teacher: Option<Teacher<B::InnerBackend>>,
}

/// What every epoch of a run uses, fixed before its first step ([`Run::train`]).
struct EpochPlan {
    train: Split,
    /// The held-out validation split (may be empty).
    val: Split,
    per_epoch: usize,
    shape: [usize; 3],
    augment: data::Augment,
}

/// What one epoch's steps measured, for its [`EpochMetrics`].
#[derive(Default)]
struct EpochTally {
    loss_sum: f64,
    steps: usize,
    /// Images of the global batches trained.
    seen: usize,
    /// The learning rate of the last step.
    lr: f64,
    search_seconds: f64,
    seconds: f64,
}

impl<B: SlimAutodiff> Run<B> {
    /// A fresh run of `model` (its network compiled from `meta.source`).
    pub fn start(model: SlimNet<B>, mut meta: Meta, opts: TrainOptions, normalize: Normalize) -> Run<B> {
        meta.switches = opts.switches();
        let optim = optimizer::<B>(&opts);
        let state =
            RunState { options: opts, normalize, epoch: 0, batch: 0, step: 0, history: Vec::new(), joslim: None };
        Run { model, meta, state, optim, teacher: None }
    }

    /// The run with its teacher (a new run's with [`TrainOptions::teacher`]: `--resume`
    /// loads it again from there).
    pub fn with_teacher(mut self, teacher: Teacher<B::InnerBackend>) -> Run<B> {
        self.teacher = Some(teacher);
        self
    }

    /// A replica of a fresh run on `device`: the same weights (new autodiff leaves), state
    /// and options, its own copy of the teacher, and a fresh optimizer (a fresh run's has
    /// no state yet).
    pub fn fork(&self, device: &B::Device) -> Run<B> {
        let model = self.model.clone().fork(device);
        let run = Run::start(model, self.meta.clone(), self.state.options.clone(), self.state.normalize.clone());
        Run { teacher: self.teacher.as_ref().map(|t| t.fork(device)), ..run }
    }

    /// Reopens the run in `run_dir` where its last checkpoint left it.
    pub fn resume(run_dir: &Path, device: &B::Device) -> Result<Run<B>, TrainError> {
        // `open` validated the stored state (options, normalisation, Joslim's pool).
        let (model, meta, state, dir) = open::<B>(run_dir, device)?;
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        let path = dir.join(OPTIMIZER);
        let record = recorder
            .load(path.clone(), device)
            .map_err(|e| CheckpointError::Corrupt { path: path.with_extension("mpk"), reason: e.to_string() })?;
        let optim = optimizer::<B>(&state.options).load_record(record);
        let teacher = match &state.options.teacher {
            Some(path) => Some(Teacher::load(model.net.clone(), path, device)?.0),
            None => None,
        };
        Ok(Run { model, meta, state, optim, teacher })
    }

    /// Trains until the last epoch or `max_steps`, checkpointing into `run_dir`. With
    /// several replicas ([`Replica`]), each trains on its slice of every batch, the
    /// gradients are averaged, and only replica 0 validates and writes the checkpoint.
    /// Each epoch: [`Run::train_epoch`], then on the lead replica [`Run::validate`], the
    /// metrics and a checkpoint.
    pub fn train(
        mut self,
        data: &Dataset,
        run_dir: &Path,
        device: &B::Device,
        progress: &mut dyn Progress,
        replica: &Replica,
    ) -> Result<Run<B>, TrainError> {
        let plan = self.prepare(data, device, replica)?;
        let opts = self.state.options.clone();
        while self.state.epoch < opts.epochs && opts.max_steps.is_none_or(|m| self.state.step < m) {
            let epoch = self.state.epoch;
            let (run, tally) = self.train_epoch(&plan, device, progress, replica)?;
            self = run;
            let complete = self.state.batch >= plan.per_epoch;
            if !replica.is_lead() {
                if complete {
                    self.state.epoch += 1;
                    self.state.batch = 0;
                }
                continue;
            }
            progress.validating();
            let (min_w, max_w) = opts.extremes();
            let val_acc_min = self.validate(&plan, min_w, device)?;
            let val_acc_max = self.validate(&plan, max_w, device)?;
            let metrics = EpochMetrics {
                epoch: epoch + 1,
                step: self.state.step,
                complete,
                train_loss: tally.loss_sum / tally.steps.max(1) as f64,
                lr: tally.lr,
                min_width: min_w,
                max_width: max_w,
                val_acc_min,
                val_acc_max,
                img_per_s: tally.seen as f64 / tally.seconds.max(1e-9),
                seconds: tally.seconds,
                search_seconds: tally.search_seconds,
            };
            if complete {
                self.state.epoch += 1;
                self.state.batch = 0;
            }
            self.state.history.push(metrics.clone());
            self.save(run_dir)?;
            progress.epoch_end(&metrics);
        }
        // The replicas must end where they started: identical, bit for bit.
        replica
            .agree::<B::InnerBackend>(&[("the step", self.state.step as f64)], &self.model.valid(), device)
            .map_err(|e| e.context("the replicas diverged"))?;
        Ok(self)
    }

    /// Before the first step: the splits, the checks that the data suits the options, and
    /// the replicas' agreement on the state they start from.
    fn prepare(&self, data: &Dataset, device: &B::Device, replica: &Replica) -> Result<EpochPlan, TrainError> {
        let opts = &self.state.options;
        let (train, val) = splits(data, opts);
        if opts.scheme.needs_validation() && val.is_empty() {
            return Err(TrainError::NoValidation);
        }
        let per_epoch = train.len() / opts.batch;
        if per_epoch == 0 {
            return Err(TrainError::BatchTooLarge { batch: opts.batch, images: train.len() });
        }
        if !opts.batch.is_multiple_of(replica.world) {
            return Err(ParallelError::Uneven { batch: opts.batch, replicas: replica.world }.into());
        }
        let mut facts: Vec<(String, f64)> = [
            ("the step", self.state.step as f64),
            ("the batch size", opts.batch as f64),
            ("the seed", opts.seed as f64),
            ("the epoch count", opts.epochs as f64),
            ("the replica count", replica.world as f64),
            ("the training images", train.len() as f64),
        ]
        .map(|(name, v)| (name.to_string(), v))
        .to_vec();
        // Every option that changes the arithmetic, each named, and the data's content:
        // nodes that differ in any are refused before the first step.
        if replica.world > 1 {
            for (field, hash) in option_hashes(opts) {
                facts.extend(parallel::hash_facts(&format!("the option `{field}`"), hash).collect::<Vec<_>>());
            }
            let data = train.fingerprint()?;
            facts.extend(
                parallel::hash_facts("the training data (labels and sampled pixels)", data).collect::<Vec<_>>(),
            );
        }
        replica
            .agree::<B::InnerBackend>(&facts, &self.model.valid(), device)
            .map_err(|e| e.context("the replicas do not start from the same state (another seed or checkpoint)"))?;
        let shape = data.shape();
        Ok(EpochPlan { augment: opts.augment(shape[1]), shape, train, val, per_epoch })
    }

    /// The steps of the current epoch from where the state stands, up to its end or
    /// `max_steps`: the batches, Joslim's updates, each step's widths, the optimizer step.
    fn train_epoch(
        mut self,
        plan: &EpochPlan,
        device: &B::Device,
        progress: &mut dyn Progress,
        replica: &Replica,
    ) -> Result<(Run<B>, EpochTally), TrainError> {
        let opts = self.state.options.clone();
        let epoch = self.state.epoch;
        progress.epoch_start(epoch, opts.epochs, plan.per_epoch, self.state.batch);
        let order = data::epoch_order(&plan.train, opts.seed, epoch);
        let batches = data::batches(
            &plan.train,
            order,
            &self.state.normalize,
            Plan {
                batch: opts.batch,
                skip: self.state.batch,
                drop_last: true,
                augment: plan.augment,
                seed: opts.seed ^ (epoch as u64).wrapping_mul(0x2545_f491_4f6c_dd1d),
                shard: replica.shard(),
            },
        );
        let step_opts = |lr: f64| StepOptions {
            distill: opts.scheme.distills(),
            lr,
            weight_decay: opts.weight_decay,
            label_smoothing: opts.label_smoothing,
        };
        let started = std::time::Instant::now();
        let mut tally = EpochTally::default();
        // Step k's loss is read after step k+1 is queued (see `StepLoss`).
        let mut pending: Option<(StepLoss<B::InnerBackend>, usize, f64)> = None;
        let mut account = |(loss, step, step_lr): (StepLoss<B::InnerBackend>, usize, f64), n: usize| {
            let loss = f64::from(loss.read());
            if !loss.is_finite() {
                return Err(TrainError::Diverged { step, epoch, loss });
            }
            tally.loss_sum += loss;
            tally.steps += 1;
            tally.seen += n;
            progress.step(loss, step_lr, tally.seen as f64 / started.elapsed().as_secs_f64());
            Ok(())
        };
        let (mut last_n, mut lr, mut search_seconds) = (0, 0.0, 0.0);
        let sandwich = opts.sandwich();
        for batch in batches {
            let batch = batch?;
            lr = learning_rate(&opts, self.state.step, plan.per_epoch);
            if let Scheme::Joslim(j) = &opts.scheme {
                let t = std::time::Instant::now();
                self.joslim_update(j, &plan.val, device, replica)?;
                search_seconds += t.elapsed().as_secs_f64();
            }
            let widths = opts.scheme.step_widths(
                &self.model,
                &sandwich,
                self.state.joslim.as_ref(),
                (opts.seed, self.state.step),
            )?;
            B::seed(device, opts.seed.wrapping_add(self.state.step as u64));
            let (x, y) = tensors::<B>(&batch, plan.shape, device);
            let targets = match &self.teacher {
                Some(t) => Some(Tensor::from_inner(t.targets(x.clone().inner())?)),
                None => None,
            };
            let (model, loss) =
                step_from(self.model, &mut self.optim, (x, y, targets), &widths, &step_opts(lr), replica)?;
            self.model = model;
            if let Some(previous) = pending.replace((loss, self.state.step, lr)) {
                account(previous, last_n)?;
            }
            // Images of the global batch (every replica trained its slice).
            last_n = batch.n * replica.world;
            self.state.step += 1;
            self.state.batch += 1;
            if opts.max_steps.is_some_and(|m| self.state.step >= m) {
                break;
            }
        }
        if let Some(last) = pending.take() {
            account(last, last_n)?;
        }
        tally.lr = lr;
        tally.search_seconds = search_seconds;
        tally.seconds = started.elapsed().as_secs_f64();
        Ok((self, tally))
    }

    /// Validation top-1 at uniform width `w` after calibrating BN there (the statistics
    /// are kept in the checkpoint's metadata); `None` without a validation split.
    fn validate(&mut self, plan: &EpochPlan, w: f64, device: &B::Device) -> Result<Option<f64>, TrainError> {
        if plan.val.is_empty() {
            return Ok(None);
        }
        let (opts, norm) = (&self.state.options, &self.state.normalize);
        let inner = self.model.valid();
        let cfg = inner.uniform(w)?;
        let calib = measure::calibration(&inner, &cfg, &plan.train, norm, opts.batch, opts.calibrate, device)?;
        let top1 = measure::accuracy(&inner, &cfg, &calib, &plan.val, norm, opts.batch, device)?.top1;
        let host = calib.to_host();
        self.meta.bn.retain(|b| b.key != host.key);
        self.meta.bn.push(host);
        Ok(Some(top1))
    }

    /// Joslim's bookkeeping before a step: the prior pool at the first step, then an
    /// update (the pool's losses on one validation batch, the GPs, new members) every
    /// `tau` steps.
    /// With several replicas, each measures the pool on the same batch and the losses (and
    /// latencies) are averaged, so that every replica fits the same GPs and proposes the
    /// same configurations.
    fn joslim_update(
        &mut self,
        j: &JoslimOptions,
        val: &Split,
        device: &B::Device,
        replica: &Replica,
    ) -> Result<(), TrainError> {
        if self.state.joslim.as_ref().is_some_and(|s| !s.due(j, self.state.step)) {
            return Ok(());
        }
        let opts = &self.state.options;
        let inner = self.model.valid();
        let net = inner.net.clone();
        let shape = val.images.shape();
        let decode = |wm: &[f64]| net.space.decode(wm, net.rounding).map(WidthConfig::new).map_err(RuntimeError::from);
        let cost = |wm: &[f64]| -> Result<f64, TrainError> {
            let cfg = decode(wm)?;
            match j.objective.static_cost(&net, &cfg.dims) {
                Some(c) => Ok(c),
                None => {
                    let ms = latency_ms(&inner, &cfg, shape, device)?;
                    Ok(replica.mean_values::<B::InnerBackend>(&[ms], device)?[0])
                }
            }
        };
        let state = match self.state.joslim.take() {
            Some(s) => s,
            None => JoslimState::start(j, net.space.search_dim(), opts.min_width, opts.seed, cost)?,
        };
        let mut state = state;
        if state.due(j, self.state.step) {
            // One validation batch per update, in turn, with batch statistics (the
            // weights just moved; calibration would cost more than the update).
            let n = opts.batch.min(val.len());
            let start = (state.updates * n) % val.len();
            let indices: Vec<usize> = (0..n).map(|k| val.indices[(start + k) % val.len()]).collect();
            let batch = data::batches(val, indices, &self.state.normalize, Plan::eval(n))
                .next()
                .expect("a non-empty validation split gives a batch")?;
            let (x, y) = tensors::<B::InnerBackend>(&batch, shape, device);
            B::InnerBackend::seed(device, opts.seed ^ state.updates as u64);
            let mut losses = Vec::with_capacity(state.pool.len());
            for m in &state.pool {
                let logits = inner.forward(x.clone(), &decode(&m.wm)?, Mode::Train)?.logits;
                losses.push(f64::from(cross_entropy(logits, y.clone(), 0.0).into_scalar().elem::<f32>()));
            }
            let losses = replica.mean_values::<B::InnerBackend>(&losses, device)?;
            state.update(j, &losses, opts.min_width, opts.seed, cost)?;
        }
        self.state.joslim = Some(state);
        Ok(())
    }

    /// Writes the checkpoint (a fresh directory renamed over the old one) and
    /// `metrics.jsonl` (rewritten from the state, so the two always agree).
    pub fn save(&mut self, run_dir: &Path) -> Result<(), TrainError> {
        // Non-finite weights or BN statistics are divergence (a finite loss can still be
        // followed by an update to infinity): JSON would store them as `null`, a checkpoint
        // no command can read. The last good checkpoint stays.
        if let Some(what) = non_finite(&self.model, &self.meta) {
            return Err(TrainError::NonFinite { step: self.state.step, what });
        }
        let state = crate::format::run::State::from(&self.state);
        // Whatever else is non-finite (a metric, Joslim's data) would be a `null` that does
        // not read back: the state must survive its own round trip before it is written.
        let round_trip = serde_json::to_value(&state)?;
        if serde_json::from_value::<crate::format::run::State>(round_trip).is_err() {
            return Err(TrainError::NonFinite { step: self.state.step, what: "the run's metrics or state".into() });
        }
        self.meta.state = Some(state);
        let layout = RunDir::new(run_dir);
        let (dir, fresh, old) = (layout.checkpoint(), layout.next_checkpoint(), layout.previous_checkpoint());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| TrainError::Checkpoint(CheckpointError::Io { path, error })
        };
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(io(&fresh))?;
        }
        checkpoint::save(&self.model, &self.meta, &fresh)?;
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        recorder
            .record(self.optim.to_record(), fresh.join(OPTIMIZER))
            .map_err(|e| CheckpointError::Corrupt { path: fresh.join(OPTIMIZER), reason: e.to_string() })?;
        if dir.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            std::fs::rename(&dir, &old).map_err(io(&dir))?;
        }
        std::fs::rename(&fresh, &dir).map_err(io(&dir))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        let mut lines = String::new();
        for m in &self.state.history {
            lines.push_str(&serde_json::to_string(&crate::format::run::Metrics::from(m))?);
            lines.push('\n');
        }
        checkpoint::write_atomic(&layout.metrics(), lines.as_bytes())?;
        Ok(())
    }
}

/// Trains `runs` (one per device in `devices`, with identical weights and state) as the
/// replicas of this process in `cluster`, each on its own thread (and, with `threads`, its
/// own pool of that many CPU threads), and returns their runs, this process's first replica
/// first. Only global replica 0 reports to `progress`. The first replica to fail stops the
/// others; its error is the one returned.
pub fn train_replicas<B: SlimAutodiff>(
    runs: Vec<Run<B>>,
    devices: Vec<B::Device>,
    cluster: &Cluster,
    threads: Option<usize>,
    data: &Dataset,
    run_dir: &Path,
    progress: &mut (dyn Progress + Send),
) -> Result<Vec<Run<B>>, TrainError> {
    if cluster.world() == 1 {
        let (Some(run), Some(device)) = (runs.into_iter().next(), devices.first()) else {
            return Err(ParallelError::Threads("no device to train on".into()).into());
        };
        return Ok(vec![run.train(data, run_dir, device, progress, &Replica::single())?]);
    }
    let mut progress = Some(progress);
    let items: Vec<_> = runs
        .into_iter()
        .enumerate()
        .map(|(i, run)| (run, if cluster.rank(i) == 0 { progress.take() } else { None }))
        .collect();
    parallel::on_replicas::<B::InnerBackend, _, _>(
        cluster,
        devices,
        items,
        threads,
        |(run, progress), device, replica| {
            let mut quiet = Quiet;
            let progress: &mut dyn Progress = match progress {
                Some(p) => p,
                None => &mut quiet,
            };
            run.train(data, run_dir, device, progress, replica)
        },
    )
}

/// Forward time of one image at `cfg`, in milliseconds: the median of five runs after
/// one warm-up.
fn latency_ms<B: SlimBackend>(
    model: &SlimNet<B>,
    cfg: &WidthConfig,
    shape: [usize; 3],
    device: &B::Device,
) -> Result<f64, TrainError> {
    let [c, h, w] = shape;
    let mut times = Vec::with_capacity(5);
    for k in 0..6 {
        let x = burn::tensor::Tensor::<B, 4>::zeros([1, c, h, w], device);
        let t = std::time::Instant::now();
        let logits = model.forward(x, cfg, Mode::Train)?.logits;
        logits.into_data();
        if k > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Loads the checkpoint of a run (see [`find_checkpoint`]) with its training state, and
/// says which directory it came from.
pub fn open<B: SlimBackend>(
    path: &Path,
    device: &B::Device,
) -> Result<(SlimNet<B>, Meta, RunState, PathBuf), TrainError> {
    let dir = find_checkpoint(path)?;
    let (model, meta) = checkpoint::load::<B>(&dir, None, device)?;
    let state: RunState = meta.state.clone().map(RunState::from).ok_or_else(|| CheckpointError::Corrupt {
        path: dir.join(checkpoint::META),
        reason: "no training state, was it written by `slimc train`?".into(),
    })?;
    if meta.switches != state.options.switches() {
        let reason = format!(
            "`switches` {:?} are not the BN switches of the run's scheme {:?}",
            meta.switches,
            state.options.switches()
        );
        return Err(CheckpointError::Corrupt { path: dir.join(checkpoint::META), reason }.into());
    }
    state.validate(&model.net).map_err(|reason| CheckpointError::Corrupt {
        path: dir.join(checkpoint::META),
        reason: format!("state.{reason}"),
    })?;
    Ok((model, meta, state, dir))
}

/// A hash of each training option's stored value, by field, except the data set's path
/// (which may differ between machines; its content is compared instead).
fn option_hashes(opts: &TrainOptions) -> Vec<(String, u64)> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(crate::format::run::Options::from(opts)) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter(|(field, _)| field != "data")
        .map(|(field, value)| {
            let hash = crate::hash::fnv1a(crate::hash::FNV_START, value.to_string().as_bytes());
            (field, hash)
        })
        .collect()
}

/// The first non-finite value of a model's weights or stored BN statistics, described.
fn non_finite<B: Backend>(model: &SlimNet<B>, meta: &Meta) -> Option<String> {
    let mut bad = None;
    model.for_each_value(|layer, data| {
        if bad.is_none() && !data.iter::<f32>().all(f32::is_finite) {
            bad = Some(layer);
        }
    });
    if let Some(layer) = bad {
        let name = &model.net.layers.iter().nth(layer).expect("a layer of the network").1.name;
        return Some(format!("the parameters of `{name}`"));
    }
    for stats in &meta.bn {
        let bad = stats.layers.iter().flatten().any(|(m, v)| !m.iter().chain(v).all(|x| x.is_finite()));
        if bad {
            return Some(format!("the BN statistics `{}`", stats.key));
        }
    }
    None
}

/// The checkpoint directory `path` names: a run directory's `checkpoint/` (or, after an
/// interrupted save, `checkpoint.old/`), or a checkpoint directory itself.
pub fn find_checkpoint(path: &Path) -> Result<PathBuf, TrainError> {
    let run = RunDir::new(path);
    run.readable_checkpoint(checkpoint::META)
        .or_else(|| path.join(checkpoint::META).is_file().then(|| path.to_path_buf()))
        .ok_or_else(|| TrainError::NotARun(path.to_path_buf()))
}
