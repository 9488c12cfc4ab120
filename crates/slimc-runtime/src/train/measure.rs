//! Accuracy of a network at a width: BN calibration on training batches (no
//! augmentation, cumulative average), then top-1 / top-5 on a held-out split. Used by the
//! epoch loop (`run`), evaluation (`eval`) and search alike, so it depends on none of them.

use super::{tensors, TrainError};
use crate::data::{self, Normalize, Plan, Split};
use crate::runtime::{calibrate, BnSet, Mode, SlimBackend, SlimNet, WidthConfig};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accuracy {
    pub top1: f64,
    /// Top-5 accuracy where there are more than 5 classes.
    pub top5: Option<f64>,
    pub images: usize,
}

/// BN statistics for `cfg` from the first `batches` batches of `split` (in order).
pub fn calibration<B: SlimBackend>(
    model: &SlimNet<B>,
    cfg: &WidthConfig,
    split: &Split,
    norm: &Normalize,
    batch: usize,
    batches: usize,
    device: &B::Device,
) -> Result<BnSet<B>, TrainError> {
    let shape = split.images.shape();
    let mut failed = None;
    let stream = data::batches(split, split.indices.clone(), norm, Plan::eval(batch)).take(batches.max(1)).map_while(
        |b| match b {
            Ok(b) => Some(tensors::<B>(&b, shape, device).0),
            Err(e) => {
                failed = Some(e);
                None
            }
        },
    );
    let stats = calibrate(model, cfg, stream)?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(stats),
    }
}

/// Top-1 (and top-5) accuracy of `model` at `cfg` with statistics `stats` on `split`.
pub fn accuracy<B: SlimBackend>(
    model: &SlimNet<B>,
    cfg: &WidthConfig,
    stats: &BnSet<B>,
    split: &Split,
    norm: &Normalize,
    batch: usize,
    device: &B::Device,
) -> Result<Accuracy, TrainError> {
    let shape = split.images.shape();
    let (mut top1, mut top5, mut n, mut classes) = (0usize, 0usize, 0usize, 0usize);
    for b in data::batches(split, split.indices.clone(), norm, Plan::eval(batch)) {
        let b = b?;
        let (x, _) = tensors::<B>(&b, shape, device);
        let logits = model.forward(x, cfg, Mode::Eval(stats))?.logits;
        classes = logits.dims()[1];
        let values: Vec<f32> =
            logits.into_data().convert::<f32>().to_vec().map_err(|e| TrainError::Output(format!("{e:?}")))?;
        for (row, &label) in values.chunks(classes).zip(&b.y) {
            let own = row[label as usize];
            // The label's rank: how many classes score strictly higher (ties count for it).
            let above = row.iter().filter(|&&v| v > own).count();
            top1 += usize::from(above == 0);
            top5 += usize::from(above < 5);
        }
        n += b.n;
    }
    let frac = |k: usize| k as f64 / n.max(1) as f64;
    Ok(Accuracy { top1: frac(top1), top5: (classes > 5).then(|| frac(top5)), images: n })
}
