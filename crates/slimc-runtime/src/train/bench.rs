//! Benchmarks: training-step and inference throughput of a network on synthetic data.
//! Training runs one SGD step of any [`Scheme`] (the US-Nets sandwich with inplace
//! distillation, every S-Nets switch, a fixed width, or Joslim's sandwich over its prior
//! pool); inference runs each width after BN calibration.

use std::time::Instant;

use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::tensor::{Distribution, Int, Tensor};
use serde::Serialize;

use std::sync::Arc;

use crate::data::{self, Augment, DataError, Normalize, Plan, Split};
use crate::ir::Network;
use crate::runtime::{calibrate, Mode, RuntimeError, SlimAutodiff, SlimNet, WidthConfig};
use crate::train::joslim::JoslimState;
use crate::train::parallel::{self, Cluster, Replica};
use crate::train::scheme::Scheme;
use crate::train::{self, Sandwich, TrainError};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub batch: usize,
    pub steps: usize,
    pub warmup: usize,
    /// The scheme whose training step is timed, with the papers' sandwich (smallest width
    /// 0.25, two random widths).
    pub scheme: Scheme,
    /// Widths whose inference is timed; `None`: the scheme's default evaluation widths.
    pub infer_widths: Option<Vec<f64>>,
}

impl BenchOptions {
    /// The sandwich rule of the timed steps: the defaults, distilling where the scheme does.
    pub fn sandwich(&self) -> Sandwich {
        Sandwich { distill: self.scheme.distills(), ..Sandwich::default() }
    }

    /// The widths whose inference is timed.
    pub fn infer_widths(&self) -> Vec<f64> {
        self.infer_widths.clone().unwrap_or_else(|| self.scheme.default_widths(Sandwich::default().min_width))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WidthThroughput {
    pub width: f64,
    pub img_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub network: String,
    pub device: String,
    pub batch: usize,
    pub steps: usize,
    pub widths: String,
    /// Training images per second (each image through every width of the step).
    pub train_img_per_s: f64,
    /// Seconds per training step.
    pub step_s: f64,
    pub infer_img_per_s: Vec<WidthThroughput>,
}

/// Reads a step's loss (waiting for the device); a loss that is not finite is an error.
fn finite<B: burn::tensor::backend::Backend>(loss: train::StepLoss<B>) -> Result<(), RuntimeError> {
    let loss = loss.read();
    if loss.is_finite() {
        Ok(())
    } else {
        Err(RuntimeError::Diverged { loss: f64::from(loss) })
    }
}

/// Times `opts.steps` training steps and each width's inference of a freshly initialised
/// model of `net` on `device`.
pub fn run<B: SlimAutodiff>(
    net: Arc<Network>,
    device: &B::Device,
    device_name: String,
    opts: &BenchOptions,
) -> Result<BenchReport, TrainError> {
    let model = SlimNet::<B>::new(net.clone(), opts.scheme.switches(), 0, device);
    let (x, y) = synthetic::<B>(&net, opts.batch, device);
    let mut same = || Ok((x.clone(), y.clone()));
    let (model, elapsed) = timed_steps(model, &mut same, &Replica::single(), opts)?;
    let step_s = elapsed / opts.steps.max(1) as f64;
    let train_img_per_s = opts.batch as f64 / step_s;

    let inner = train::inference(&model);
    let xi = x.inner();
    let mut infer = Vec::new();
    for w in opts.infer_widths() {
        let cfg: WidthConfig = inner.uniform(w)?;
        let stats = calibrate(&inner, &cfg, [xi.clone()])?;
        let _ = inner.forward(xi.clone(), &cfg, Mode::Eval(&stats))?.logits.into_data();
        let start = Instant::now();
        for _ in 0..opts.steps {
            let _ = inner.forward(xi.clone(), &cfg, Mode::Eval(&stats))?.logits.into_data();
        }
        let s = start.elapsed().as_secs_f64() / opts.steps.max(1) as f64;
        infer.push(WidthThroughput { width: w, img_per_s: opts.batch as f64 / s });
    }
    Ok(BenchReport {
        network: net.name.clone(),
        device: device_name,
        batch: opts.batch,
        steps: opts.steps,
        widths: opts.scheme.step_summary(&opts.sandwich()),
        train_img_per_s,
        step_s,
        infer_img_per_s: infer,
    })
}

/// Data-parallel training throughput: the same step as [`run`]'s, on `devices` at once
/// (one replica per device, each on `batch / devices` images, gradients averaged), with
/// `threads` CPU threads per replica where given. Images per second of the global batch.
pub fn data_parallel<B: SlimAutodiff>(
    net: Arc<Network>,
    devices: Vec<B::Device>,
    threads: Option<usize>,
    opts: &BenchOptions,
) -> Result<f64, TrainError> {
    let n = devices.len();
    let cluster = Cluster::local(n, std::time::Duration::from_secs(600));
    cluster.check_batch(opts.batch)?;
    let per = opts.batch / n;
    let items = vec![(); n];
    let seconds =
        parallel::on_replicas::<B::InnerBackend, _, _>(&cluster, devices, items, threads, |(), device, replica| {
            replica_steps::<B>(net.clone(), device, per, replica, opts)
        })?;
    let slowest = seconds.into_iter().fold(0.0, f64::max);
    Ok((opts.batch * opts.steps) as f64 / slowest.max(1e-9))
}

/// Images per second of the data loader alone: training's batches of `split` (its
/// augmentation, normalised by `norm`, built by the loader's workers) drawn as fast as
/// they come, `batches` of them after one warm-up batch. Epochs follow each other as in
/// training when the split holds fewer images.
pub fn loader(
    split: &Split,
    norm: &Normalize,
    augment: Augment,
    batch: usize,
    batches: usize,
) -> Result<f64, DataError> {
    let want = (batches + 1) * batch.max(1);
    let order = epochs(split, want);
    let plan = Plan { batch, skip: 0, drop_last: true, augment, seed: 0, shard: (0, 1) };
    let mut it = data::batches(split, order, norm, plan);
    if let Some(first) = it.next() {
        first?;
    }
    let start = Instant::now();
    let mut images = 0;
    for b in it {
        images += b?.n;
    }
    Ok(images as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// The training inputs of a benchmark: `batch` normal images and uniform labels.
fn synthetic<B: SlimAutodiff>(net: &Network, batch: usize, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
    let [c, h, w] = net.input.map(|v| v as usize);
    let classes = net.layers[net.output].channels as usize;
    let x = Tensor::<B, 4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), device);
    let y = Tensor::<B, 1, Int>::random([batch], Distribution::Uniform(0.0, classes as f64), device);
    (x, y)
}

/// One replica's timed steps on a fresh model of `net`: seconds for `opts.steps` after the
/// warm-up.
fn replica_steps<B: SlimAutodiff>(
    net: Arc<Network>,
    device: &B::Device,
    batch: usize,
    replica: &Replica,
    opts: &BenchOptions,
) -> Result<f64, TrainError> {
    let (x, y) = synthetic::<B>(&net, batch, device);
    let model = SlimNet::<B>::new(net, opts.scheme.switches(), 0, device);
    let mut same = || Ok((x.clone(), y.clone()));
    Ok(timed_steps(model, &mut same, replica, opts)?.1)
}

/// A training step's inputs: the benchmark's one synthetic batch, or the loader's next.
type Inputs<'a, B> = dyn FnMut() -> Result<(Tensor<B, 4>, Tensor<B, 1, Int>), TrainError> + 'a;

/// Images per second of training fed by the data loader: the timed steps of [`run`] on
/// `split`'s batches as training draws them (augmented, normalised, built by the
/// loader's workers while the step runs). Against [`run`]'s figure on one synthetic batch,
/// it says whether the loader keeps up with the step.
pub fn fed<B: SlimAutodiff>(
    net: Arc<Network>,
    device: &B::Device,
    split: &Split,
    norm: &Normalize,
    augment: Augment,
    opts: &BenchOptions,
) -> Result<f64, TrainError> {
    let shape = split.images.shape();
    let want = (opts.warmup + opts.steps) * opts.batch.max(1);
    let order = epochs(split, want);
    let plan = Plan { batch: opts.batch, skip: 0, drop_last: true, augment, seed: 0, shard: (0, 1) };
    let mut batches = data::batches(split, order, norm, plan);
    let mut next = || match batches.next() {
        Some(b) => Ok(train::tensors::<B>(&b?, shape, device)),
        // Only an empty split runs out (the order repeats epochs up to what is asked).
        None => Err(TrainError::BatchTooLarge { batch: opts.batch, images: split.len() }),
    };
    let model = SlimNet::<B>::new(net, opts.scheme.switches(), 0, device);
    let (_, elapsed) = timed_steps(model, &mut next, &Replica::single(), opts)?;
    Ok((opts.batch * opts.steps) as f64 / elapsed.max(1e-9))
}

/// Training's epoch orders of `split` one after another, cut to `want` images.
fn epochs(split: &Split, want: usize) -> Vec<usize> {
    (0..want.div_ceil(split.len().max(1))).flat_map(|epoch| data::epoch_order(split, 0, epoch)).take(want).collect()
}

/// `opts.warmup` then `opts.steps` training steps of `model` on the batches `inputs`
/// gives, as `replica`; the trained model and the seconds of the timed steps.
fn timed_steps<B: SlimAutodiff>(
    model: SlimNet<B>,
    inputs: &mut Inputs<'_, B>,
    replica: &Replica,
    opts: &BenchOptions,
) -> Result<(SlimNet<B>, f64), TrainError> {
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0).with_nesterov(true)))
        .init::<B, SlimNet<B>>();
    let sandwich = opts.sandwich();
    let net = model.net.clone();
    // Joslim's steps draw from its prior pool, costed by MACs (the pool's updates are
    // occasional and not part of a step).
    let joslim = match &opts.scheme {
        Scheme::Joslim(j) => {
            let macs = |wm: &[f64]| -> Result<f64, RuntimeError> {
                let dims = net.space.decode(wm, net.rounding)?;
                Ok(crate::cost::cost(&net, &dims).0.macs as f64)
            };
            Some(JoslimState::start(j, net.space.search_dim(), sandwich.min_width, 0, macs)?)
        }
        Scheme::Us | Scheme::S(_) | Scheme::Fixed(_) => None,
    };
    let step = train::StepOptions { distill: sandwich.distill, lr: 0.01, weight_decay: 5e-5, label_smoothing: 0.0 };
    let mut model = model;
    let mut last = None;
    let mut start = Instant::now();
    for i in 0..opts.warmup + opts.steps {
        if i == opts.warmup {
            // Wait for the warm-up steps, then time the rest as a stream: the host queues
            // step k+1 while the device runs step k, as `slimc train` does.
            if let Some(loss) = last.take() {
                finite(loss)?;
            }
            start = Instant::now();
        }
        let widths = opts.scheme.step_widths(&model, &sandwich, joslim.as_ref(), (0, i))?;
        let (x, y) = inputs()?;
        let (m, loss) = train::step(model, &mut optim, x, y, &widths, &step, replica)?;
        model = m;
        last = Some(loss);
    }
    // Reading the last loss waits for the device to finish every timed step.
    if let Some(loss) = last {
        finite(loss)?;
    }
    Ok((model, start.elapsed().as_secs_f64()))
}
