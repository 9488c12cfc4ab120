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

/// BN statistics for `cfg` from `batches` batches of `split`'s images. A split in class
/// order (an image folder, shards: every label at least the one before) is sampled evenly
/// through (every k-th image, k = its size / the images wanted), so that all its classes
/// are seen, not its first few; a split in mixed order (IDX, CIFAR, which their
/// publishers stored shuffled) gives its first images, as it always has, so a run's
/// evaluation calibrates on the images it always did.
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
    let order = calibration_order(split, batches.max(1) * batch.max(1));
    let mut failed = None;
    let stream = data::batches(split, order, norm, Plan::eval(batch)).take(batches.max(1)).map_while(|b| match b {
        Ok(b) => Some(tensors::<B>(&b, shape, device).0),
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    let stats = calibrate(model, cfg, stream)?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(stats),
    }
}

/// The images [`calibration`] draws, `want` of them: spread through a split in class
/// order, the first ones of any other.
fn calibration_order(split: &Split, want: usize) -> Vec<usize> {
    let in_class_order = split.indices.windows(2).all(|w| split.images.label(w[0]) <= split.images.label(w[1]));
    let step = if in_class_order { (split.len() / want.max(1)).max(1) } else { 1 };
    split.indices.iter().step_by(step).take(want).copied().collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::data::InMemory;

    fn split(labels: Vec<u32>) -> Split {
        let n = labels.len();
        Split::all(Arc::new(InMemory { shape: [1, 1, 1], pixels: vec![0; n], labels }))
    }

    #[test]
    fn calibration_spreads_over_classes_in_order_and_keeps_mixed_order() {
        // 5 classes of 20 images in class order, 10 wanted: every tenth image, two of
        // each class.
        let sorted = split((0..100).map(|i| i / 20).collect());
        let order = calibration_order(&sorted, 10);
        assert_eq!(order, (0..10).map(|k| k * 10).collect::<Vec<_>>());
        let classes: Vec<u32> = order.iter().map(|&i| sorted.images.label(i)).collect();
        assert_eq!(classes, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        // Mixed order: the first images, as before.
        let mixed = split((0..100).map(|i| (i * 7) % 5).collect());
        assert_eq!(calibration_order(&mixed, 10), (0..10).collect::<Vec<_>>());
        // Fewer images than wanted: all of them.
        assert_eq!(calibration_order(&split(vec![0, 1, 2]), 10), vec![0, 1, 2]);
    }
}
