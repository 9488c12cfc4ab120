//! A frozen teacher (`slimc train --teacher WEIGHTS`): the network at full width with
//! pretrained weights and their own BN statistics, evaluated on each batch; the widths a
//! step distils learn from its softmax instead of the largest width's.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::Tensor;

use super::TrainError;
use crate::export::HostTensor;
use crate::ir::Network;
use crate::runtime::{BnSet, Mode, RuntimeError, SlimBackend, SlimNet, WidthConfig};

/// The teacher on one device.
pub struct Teacher<B: SlimBackend> {
    model: SlimNet<B>,
    stats: BnSet<B>,
    full: WidthConfig,
}

impl<B: SlimBackend> Teacher<B> {
    /// The teacher of `net` with `tensors` (under its layer names, read from `path`): every
    /// weight as [`SlimNet::load_named`] checks it, and every BN's running statistics,
    /// which it evaluates with ([`TrainError::TeacherStats`] without them).
    pub fn new(
        net: Arc<Network>,
        tensors: Vec<(String, HostTensor)>,
        path: &Path,
        device: &B::Device,
    ) -> Result<Teacher<B>, TrainError> {
        let mut model = SlimNet::<B>::new(net.clone(), Vec::new(), 0, device);
        let stats =
            model.named_stats(&tensors, device).ok_or_else(|| TrainError::TeacherStats { path: path.to_path_buf() })?;
        model.load_named(tensors, path, device)?;
        let full = WidthConfig::new(net.full_width());
        Ok(Teacher { model, stats, full })
    }

    /// The teacher of `net` from the weights file at `path` (any file `--init` takes: a
    /// PyTorch `state_dict` under its own module names is matched to the layers by
    /// structure), with the number of modules so matched (0 when the names are `net`'s).
    pub fn load(net: Arc<Network>, path: &Path, device: &B::Device) -> Result<(Teacher<B>, usize), TrainError> {
        let tensors = crate::export::named::read_file(path)?;
        let (tensors, modules) = crate::import::state_dict::by_structure(&net, tensors, path)?;
        Ok((Teacher::new(net, tensors, path, device)?, modules))
    }

    /// The same teacher on `device`.
    pub fn fork(&self, device: &B::Device) -> Teacher<B> {
        Teacher {
            model: self.model.clone().fork(device),
            stats: BnSet::from_host(&self.stats.to_host(), device),
            full: self.full.clone(),
        }
    }

    /// The teacher's class probabilities on a batch (no gradient flows back through them).
    pub fn targets(&self, x: Tensor<B, 4>) -> Result<Tensor<B, 2>, RuntimeError> {
        let logits = self.model.forward(x, &self.full, Mode::Eval(&self.stats))?.logits;
        Ok(softmax(logits, 1))
    }
}
