//! A trained run opened with its data: what evaluation, search and export start from.

use std::path::{Path, PathBuf};

use super::run::{self, RunState};
use super::TrainError;
use crate::data::{self, DataSpec, Split};
use crate::runtime::checkpoint::Meta;
use crate::runtime::{SlimBackend, SlimNet};

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
    Ok(Loaded { model, state, meta, dir, calib, val, test: Split::all(loaded.test.clone()) })
}
