//! A trained run opened with its data: what evaluation, search and export start from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::run::{self, RunState, TrainOptions};
use super::TrainError;
use crate::data::{self, DataSpec, Dataset, Normalize, Split};
use crate::export::HostTensor;
use crate::ir::Network;
use crate::runtime::checkpoint::Meta;
use crate::runtime::{BnSet, SlimBackend, SlimNet};

/// A trained run opened for evaluation: model, training state and its data.
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
    /// The full-width BN statistics a weights file holds (`slimc eval FILE --init`), which
    /// a network trained elsewhere evaluates with before any calibration.
    pub stored: Option<BnSet<B>>,
}

/// Opens a run (or checkpoint) and the data set it trained on (or `data`).
pub fn open<B: SlimBackend>(path: &Path, data: Option<&DataSpec>, dev: &B::Device) -> Result<Loaded<B>, TrainError> {
    let (model, meta, state, dir) = run::open::<B>(path, dev)?;
    let spec = data.cloned().unwrap_or_else(|| state.options.data.clone());
    let size = model.net.input[1] as usize;
    let loaded = data::load(&spec, size, state.options.eval_resize(size))?;
    // The check a new run and a resumed one make.
    super::start::fits(&model.net, &loaded)?;
    let (calib, val) = run::splits(&loaded, &state.options);
    Ok(Loaded { model, state, meta, dir, calib, val, test: Split::all(loaded.test.clone()), stored: None })
}

/// A network with full-width weights (`slimc eval FILE.slim --init WEIGHTS`: `tensors`
/// read from `weights` with [`crate::export::named::read_file`], loaded by [`SlimNet::load_named`]),
/// opened for evaluation as a run on `data` would be: checked against the data
/// ([`super::start::fits`]), the input normalised with the training images' statistics, BN
/// calibrated per width on them, the US scheme's default widths. `normalize` is the input
/// normalisation the weights were trained with (`--normalize`); without it, the one
/// measured on the training images. BN statistics in the file are kept as
/// [`Loaded::stored`].
pub fn from_weights<B: SlimBackend>(
    net: Network,
    meta: Meta,
    (weights, tensors): (&Path, Vec<(String, HostTensor)>),
    normalize: Option<&Normalize>,
    data: &Dataset,
    dev: &B::Device,
) -> Result<Loaded<B>, TrainError> {
    super::start::fits(&net, data)?;
    let size = net.input[1] as usize;
    let mut model = SlimNet::<B>::new(Arc::new(net), Vec::new(), 0, dev);
    let stored = model.named_stats(&tensors, dev);
    model.load_named(tensors, weights, dev)?;
    let options = TrainOptions::evaluating(data.spec.clone(), size);
    let (calib, val) = run::splits(data, &options);
    let normalize = super::start::normalization(normalize, &calib, data.shape()[0])?;
    let state = RunState { options, normalize, epoch: 0, batch: 0, step: 0, history: Vec::new(), joslim: None };
    let test = Split::all(data.test.clone());
    Ok(Loaded { model, state, meta, dir: weights.to_path_buf(), calib, val, test, stored })
}
