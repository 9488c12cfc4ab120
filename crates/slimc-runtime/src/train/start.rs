//! Starting a run and continuing one: the library's entry for `slimc train`. A new run and
//! a resumed one load their data set and check the network against it the same way
//! ([`fits`]), so the command line only parses flags and formats what happens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::memory;
use super::run::{self, Run, TrainOptions};
use super::rundir::RunDir;
use super::TrainError;
use crate::data::{self, DataSpec, Dataset, Holdout, Normalize, Split};
use crate::ir::{Network, ParamValue};
use crate::runtime::checkpoint::Meta;
use crate::runtime::{RuntimeError, SlimAutodiff, SlimNet};
use crate::Options;

/// The data set a new run trains on, and the parameters a network compiled for it is
/// offered (`in_channels`, `size`, `classes`: the data set's). Photographs are cut to the
/// network's `size` when the settings give one, else to ImageNet's 224, and evaluated
/// after resizing their shorter side to `eval_resize` (default `size / 0.875`).
pub fn load_data(
    spec: &DataSpec,
    settings: &[(String, ParamValue)],
    eval_resize: Option<usize>,
) -> Result<(Dataset, Vec<(String, ParamValue)>), TrainError> {
    let size = match settings.iter().find(|(n, _)| n == "size") {
        Some((_, ParamValue::Int(s))) if *s > 0 => *s as usize,
        _ => 224,
    };
    let data = data::load(spec, size, eval_resize.unwrap_or_else(|| DataSpec::eval_resize(size)))?;
    let [c, h, w] = data.shape();
    if h != w {
        return Err(TrainError::NotSquare { data: spec.to_string(), height: h, width: w });
    }
    let context = [("in_channels", c), ("size", h), ("classes", data.classes)]
        .map(|(k, v)| (k.to_string(), ParamValue::Int(v as i64)))
        .to_vec();
    Ok((data, context))
}

/// Whether `net` can train on `data`: a classifier, taking the data set's image shape,
/// with one output per class. A new run and a resumed one check the same.
pub fn fits(net: &Network, data: &Dataset) -> Result<(), TrainError> {
    RuntimeError::classifier(net)?;
    let want = net.input.map(|v| v as usize);
    if data.shape() != want {
        return Err(TrainError::DataShape { data: data.spec.to_string(), shape: data.shape(), want });
    }
    let outputs = net.layers[net.output].channels as usize;
    if outputs != data.classes {
        return Err(TrainError::Classes {
            network: net.name.clone(),
            outputs,
            data: data.spec.to_string(),
            classes: data.classes,
        });
    }
    Ok(())
}

/// What a new run is made of besides its network and data.
pub struct Setup {
    /// Where the source was read from (stored, informational) and its text.
    pub source_path: String,
    pub source: String,
    /// The options the network was compiled with (stored, so that it compiles again).
    pub compile: Options,
    /// The training options; `val` is set from `holdout`, and an augmentation or evaluation
    /// resize left `None` is the data set's default ([`DataSpec::augment`],
    /// [`DataSpec::eval_resize`]).
    pub options: TrainOptions,
    pub holdout: Holdout,
    /// The run directory; by default `runs/NETWORK-SCHEME`.
    pub out: Option<PathBuf>,
    /// The input normalisation the weights were trained with (`--normalize`), instead of
    /// the one measured on the training images.
    pub normalize: Option<Normalize>,
}

/// The input normalisation of images of `channels` channels: the `given` one (one value
/// each for every channel, or one per channel), or else the one measured on `split`.
pub fn normalization(given: Option<&Normalize>, split: &Split, channels: usize) -> Result<Normalize, TrainError> {
    let Some(n) = given else { return Ok(Normalize::measure(split)?) };
    let widen = |v: &Vec<f32>| match v.len() {
        1 => Ok(vec![v[0]; channels]),
        got if got == channels => Ok(v.clone()),
        got => Err(TrainError::Normalize { channels, got }),
    };
    Ok(Normalize { mean: widen(&n.mean)?, std: widen(&n.std)? })
}

impl<B: SlimAutodiff> Run<B> {
    /// A new run of `net` on `data` (loaded with [`load_data`], the network compiled with
    /// its context): the options validated, the network checked against the data
    /// ([`fits`]), the validation images held out, the input normalisation measured, the
    /// run directory chosen and found free of any run state, and, on a host backend, the
    /// training memory estimated against the machine's before the weights are allocated.
    pub fn create(
        net: Network,
        data: &Dataset,
        setup: Setup,
        device: &B::Device,
    ) -> Result<(Run<B>, RunDir), TrainError> {
        let Setup { source_path, source, compile, mut options, holdout, out, normalize } = setup;
        // The data set's defaults, stored so that the run keeps them.
        let size = data.shape()[1];
        options.augment.get_or_insert_with(|| data.spec.augment(size));
        if data.spec.is_photographs() {
            options.eval_resize.get_or_insert_with(|| DataSpec::eval_resize(size));
        }
        options.validate().map_err(TrainError::Option)?;
        fits(&net, data)?;
        options.val = holdout.size(data.train.len())?;
        if options.scheme.needs_validation() && options.val == 0 {
            return Err(TrainError::NoValidation);
        }
        let (train, _) = run::splits(data, &options);
        let normalize = normalization(normalize.as_ref(), &train, data.shape()[0])?;
        let dir = out.map_or_else(|| RunDir::default_for(&net.name, &options.scheme.run_name()), RunDir::new);
        if dir.holds_run() {
            return Err(TrainError::RunExists(dir.root().to_path_buf()));
        }
        if B::HOST_THREADS {
            memory::check_host(&net, options.batch)?;
        }
        let meta = Meta::new(&source_path, &source, &net, &compile, options.switches());
        let model = SlimNet::<B>::new(Arc::new(net), options.switches(), options.seed, device);
        Ok((Run::start(model, meta, options, normalize), dir))
    }

    /// A stopped run (its checkpoint validated by [`Run::resume`]) with the data set it
    /// trained on, checked against the network as a new run's is ([`fits`]).
    pub fn resume_with_data(dir: &Path, device: &B::Device) -> Result<(Run<B>, Dataset), TrainError> {
        let run = Run::<B>::resume(dir, device)?;
        let size = run.model.net.input[1] as usize;
        let opts = &run.state.options;
        let data = data::load(&opts.data, size, opts.eval_resize(size))?;
        fits(&run.model.net, &data)?;
        Ok((run, data))
    }
}
