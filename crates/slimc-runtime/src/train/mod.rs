//! Slimmable training steps. The US-Nets sandwich rule: each step trains the largest and
//! the smallest width and `random` widths in between; the largest learns from the labels,
//! the others from its detached softmax (inplace distillation). One optimizer step per
//! batch on the summed loss. `run` is the epoch loop of `slimc train`, `eval` measures
//! accuracy per width, `joslim` steers the sampled widths toward the Pareto front, `pareto`
//! finds that front among evaluated configurations.

pub mod bench;
pub mod configs;
mod error;
pub mod eval;
pub mod joslim;
mod loaded;
mod measure;
pub mod memory;
pub mod parallel;
pub mod pareto;
pub mod run;
pub mod rundir;
pub mod scheme;
pub mod search;
pub mod start;
mod stored;
pub mod teacher;

pub use error::{OptionError, SearchFileError, TrainError};

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::Rng;

use crate::data::Batch;
use crate::runtime::{graphs, Mode, RuntimeError, SlimAutodiff, SlimNet, WidthConfig};

/// How each step picks the widths it trains.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampling {
    /// One multiplier for the whole network.
    Uniform,
    /// One multiplier per search dimension (AutoSlim, Joslim).
    PerDim,
}

/// The sandwich rule's settings.
#[derive(Clone, Debug)]
pub struct Sandwich {
    pub min_width: f64,
    pub random: usize,
    pub sampling: Sampling,
    /// Inplace distillation: the smaller widths learn from the largest one's softmax.
    pub distill: bool,
}

impl Default for Sandwich {
    fn default() -> Self {
        Sandwich { min_width: 0.25, random: 2, sampling: Sampling::Uniform, distill: true }
    }
}

impl Sandwich {
    /// The widths of one step: max, min, then the random ones.
    pub fn widths<B: burn::tensor::backend::Backend>(
        &self,
        model: &SlimNet<B>,
        rng: &mut StdRng,
    ) -> Result<Vec<WidthConfig>, RuntimeError> {
        let net = &model.net;
        let decode =
            |wm: Vec<f64>| net.space.decode(&wm, net.rounding).map(WidthConfig::new).map_err(RuntimeError::from);
        let n = net.space.search_dim();
        let mut out = vec![decode(vec![1.0; n])?, decode(vec![self.min_width; n])?];
        for _ in 0..self.random {
            let wm = match self.sampling {
                Sampling::Uniform => vec![rng.random_range(self.min_width..=1.0); n],
                Sampling::PerDim => (0..n).map(|_| rng.random_range(self.min_width..=1.0)).collect(),
            };
            out.push(decode(wm)?);
        }
        Ok(out)
    }
}

/// Cross-entropy of `logits` against integer labels, averaged over the batch, with
/// label smoothing `eps` (the target puts `eps` uniformly over the classes).
pub fn cross_entropy<B: burn::tensor::backend::Backend>(
    logits: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    eps: f64,
) -> Tensor<B, 1> {
    let logp = log_softmax(logits, 1);
    let picked = logp.clone().gather(1, labels.unsqueeze_dim(1)).mean().neg();
    if eps == 0.0 {
        return picked;
    }
    let uniform = logp.mean().neg();
    picked.mul_scalar(1.0 - eps) + uniform.mul_scalar(eps)
}

/// The settings of one optimizer step.
#[derive(Clone, Debug)]
pub struct StepOptions {
    /// Inplace distillation: widths after the first learn from its softmax.
    pub distill: bool,
    pub lr: f64,
    /// L2 on conv and linear weights (not BN parameters or biases).
    pub weight_decay: f64,
    pub label_smoothing: f64,
}

/// Cross-entropy against soft targets (a probability per class), averaged over the batch.
pub fn soft_cross_entropy<B: burn::tensor::backend::Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let [n, _] = logits.dims();
    (targets * log_softmax(logits, 1)).sum().div_scalar(n as f64).neg()
}

/// The first width's loss of a step, still on the device. Reading it waits for the step
/// to finish, so a loop reads step k's loss after queueing step k+1: on a GPU the device
/// then runs one step while the host builds the next.
pub struct StepLoss<B: burn::tensor::backend::Backend>(Tensor<B, 1>);

impl<B: burn::tensor::backend::Backend> StepLoss<B> {
    pub fn read(self) -> f32 {
        self.0.into_scalar().elem::<f32>()
    }
}

/// One optimizer step of `model` on a batch, training every width in `widths` (the first
/// is the teacher when distilling). Weight decay applies to conv and linear weights only.
/// With several replicas the gradients (and the loss) are averaged across them first.
/// Returns the updated model and the first width's loss (not yet read: on one device
/// nothing in the step waits for it).
pub fn step<B, O>(
    model: SlimNet<B>,
    optim: &mut O,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
    widths: &[WidthConfig],
    opts: &StepOptions,
    replica: &parallel::Replica,
) -> Result<(SlimNet<B>, StepLoss<B::InnerBackend>), TrainError>
where
    B: SlimAutodiff,
    O: Optimizer<SlimNet<B>, B>,
{
    step_from(model, optim, (x, y, None), widths, opts, replica)
}

/// [`step`] with a teacher's class probabilities on the batch for the distilled widths
/// ([`gradients_from`]).
pub fn step_from<B, O>(
    model: SlimNet<B>,
    optim: &mut O,
    (x, y, targets): (Tensor<B, 4>, Tensor<B, 1, Int>, Option<Tensor<B, 2>>),
    widths: &[WidthConfig],
    opts: &StepOptions,
    replica: &parallel::Replica,
) -> Result<(SlimNet<B>, StepLoss<B::InnerBackend>), TrainError>
where
    B: SlimAutodiff,
    O: Optimizer<SlimNet<B>, B>,
{
    let device = x.device();
    match gradients_from(&model, x, y, widths, opts, targets)? {
        Some((grads, loss)) => {
            let (grads, loss) = replica.average(&model, grads, loss)?;
            Ok((apply(model, optim, grads, opts), StepLoss(loss)))
        }
        None => Ok((model, StepLoss(Tensor::zeros([1], &device)))),
    }
}

/// A step's gradients and its first width's loss.
pub type StepGradients<B> = (GradientsParams, Tensor<<B as AutodiffBackend>::InnerBackend, 1>);

/// The gradients of a step's summed loss over `widths` (see [`step`]), and the first
/// width's loss; `None` for no widths.
///
/// On a host backend with more than one rayon thread the widths run as two concurrent
/// streams, the first width and the others: two forwards, then two backward passes whose
/// gradients are added. The sum is the gradient of the summed loss (the teacher's softmax
/// is detached), and each stream's serial stretches (autodiff bookkeeping, small
/// elementwise ops) leave a core to the other's kernels. A network that draws random
/// numbers (dropout, drop path) keeps its forwards in width order, so that its draws stay
/// those of a serial step.
pub fn gradients<B: SlimAutodiff>(
    model: &SlimNet<B>,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
    widths: &[WidthConfig],
    opts: &StepOptions,
) -> Result<Option<StepGradients<B>>, RuntimeError> {
    gradients_from(model, x, y, widths, opts, None)
}

/// [`gradients`], the distilled widths learning from `targets` (a frozen teacher's class
/// probabilities on the batch, [`teacher::Teacher::targets`]) instead of the first width's
/// softmax; `None`: the first width's.
pub fn gradients_from<B: SlimAutodiff>(
    model: &SlimNet<B>,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
    widths: &[WidthConfig],
    opts: &StepOptions,
    targets: Option<Tensor<B, 2>>,
) -> Result<Option<StepGradients<B>>, RuntimeError> {
    let Some((first, rest)) = widths.split_first() else {
        return Ok(None);
    };
    // Host backends only: on wgpu two streams gave a different step from flex's
    // (tests/wgpu.rs, cause not found), and a GPU queues both on one device anyway.
    let concurrent = B::HOST_THREADS && !rest.is_empty() && rayon::current_num_threads() > 1;
    let building = graphs::building();
    // The second stream's own leaves: Burn keeps graphs that share a node under one lock.
    let second = if concurrent { own_leaves(model) } else { model.clone() };
    let forward = |m: &SlimNet<B>, cfg: &WidthConfig| m.forward(x.clone(), cfg, Mode::Train).map(|f| f.logits);
    let forward_rest = || rest.iter().map(|cfg| forward(&second, cfg)).collect::<Result<Vec<_>, _>>();
    let (top, others) = if concurrent && !model.net.draws_random() {
        rayon::join(|| forward(model, first), forward_rest)
    } else {
        (forward(model, first), forward_rest())
    };
    let top = top?;
    let loss = cross_entropy(top.clone(), y.clone(), opts.label_smoothing);
    let soft = targets.unwrap_or_else(|| softmax(top.detach(), 1));
    let others = others?
        .into_iter()
        .map(|logits| match opts.distill {
            true => soft_cross_entropy(logits, soft.clone()),
            false => cross_entropy(logits, y.clone(), opts.label_smoothing),
        })
        .reduce(|a, b| a + b);
    let teacher_loss = loss.clone().detach().inner();
    drop(building);
    let _backward = graphs::backward();
    let grads = match others {
        Some(others) if concurrent => {
            let (a, b) = rayon::join(
                || GradientsParams::from_grads(loss.backward(), model),
                || GradientsParams::from_grads(others.backward(), &second),
            );
            parallel::add_gradients(model, a, b)
        }
        Some(others) => GradientsParams::from_grads((loss + others).backward(), model),
        None => GradientsParams::from_grads(loss.backward(), model),
    };
    Ok(Some((grads, teacher_loss)))
}

/// A copy of `model` whose trainable parameters are new autodiff leaves over the same
/// values, so that its graph is apart from `model`'s.
fn own_leaves<B: AutodiffBackend>(model: &SlimNet<B>) -> SlimNet<B> {
    struct Leaves;
    impl<B: AutodiffBackend> ModuleMapper<B> for Leaves {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let leaf = if tensor.is_require_grad() { tensor.detach().require_grad() } else { tensor };
            Param::from_mapped_value(id, leaf, mapper)
        }
    }
    model.clone().map(&mut Leaves)
}

/// The optimizer step on `grads`, with weight decay added to them.
pub fn apply<B, O>(model: SlimNet<B>, optim: &mut O, mut grads: GradientsParams, opts: &StepOptions) -> SlimNet<B>
where
    B: SlimAutodiff,
    O: Optimizer<SlimNet<B>, B>,
{
    if opts.weight_decay > 0.0 {
        add_weight_decay(&model, &mut grads, opts.weight_decay);
    }
    optim.step(opts.lr, model, grads)
}

/// `grad += wd · w` for conv and linear weights, the tensors of rank 2 and 4 (not BN
/// parameters or biases, which have rank 1).
fn add_weight_decay<B: AutodiffBackend>(model: &SlimNet<B>, grads: &mut GradientsParams, wd: f64) {
    struct Decay<'a> {
        grads: &'a mut GradientsParams,
        wd: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Decay<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if D > 1 {
                if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                    self.grads.register::<B::InnerBackend, D>(param.id, g + param.val().inner().mul_scalar(self.wd));
                }
            }
        }
    }
    model.visit(&mut Decay { grads, wd });
}

/// The inference copy of a training model.
pub fn inference<B: AutodiffBackend>(model: &SlimNet<B>) -> SlimNet<B::InnerBackend> {
    model.valid()
}

/// A batch as tensors on `device`.
pub fn tensors<B: burn::tensor::backend::Backend>(
    b: &Batch,
    shape: [usize; 3],
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
    let [c, h, w] = shape;
    let x = Tensor::from_data(TensorData::new(b.x.clone(), [b.n, c, h, w]), device);
    let y = Tensor::from_data(TensorData::new(b.y.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(), [b.n]), device);
    (x, y)
}
