//! Batches built on a background thread, their images decoded and augmented in parallel by
//! the loader's own workers (a thread pool of their own, not the one the training step's
//! kernels run on), at most [`PREFETCH`] batches ahead of the consumer. Augmentation is a
//! pure function of (seed, the sample's position in the epoch order), so a resumed run
//! sees exactly the batches the interrupted one would have, whatever the worker count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;

use super::{Augment, DataError, Inception, Normalize, Split};

/// Batches built ahead of the one being trained (the prefetch queue's bound).
pub const PREFETCH: usize = 2;

/// The loader's worker count; 0 until set: [`default_workers`].
static WORKERS: AtomicUsize = AtomicUsize::new(0);
/// The loader's pool, and the count it was built with.
static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

/// The loader's default worker count, for a network that runs on the same cores: a
/// quarter of them (at least one). A worker decodes and augments about 500 ImageNet-sized
/// JPEGs a second, more than a CPU step trains; a GPU trainer should give it more.
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 4).max(1)
}

/// Sets the loader's worker count for the batches built from now on (0: the default).
pub fn set_workers(n: usize) {
    WORKERS.store(n, Ordering::Relaxed);
}

/// The loader's worker count.
pub fn workers() -> usize {
    match WORKERS.load(Ordering::Relaxed) {
        0 => default_workers(),
        n => n,
    }
}

/// The loader's thread pool, built on first use (and again when the count changes);
/// `None` where the system refuses its threads (the batches are then built on rayon's
/// global pool, as before the loader had workers of its own).
fn pool() -> Option<Arc<rayon::ThreadPool>> {
    let n = workers();
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, pool)) = guard.as_ref().filter(|(count, _)| *count == n) {
        return Some(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("slimc-loader-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *guard = Some((n, pool.clone()));
    Some(pool)
}

/// A normalised batch: `x` is `[n, C, H, W]` row-major, `y` the labels.
pub struct Batch {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    pub n: usize,
}

/// An iterator over batches being built on another thread.
pub struct Batches {
    rx: Option<Receiver<Result<Batch, DataError>>>,
    worker: Option<JoinHandle<()>>,
}

impl Iterator for Batches {
    type Item = Result<Batch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the channel stops the worker at its next send.
        self.rx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The training order of `epoch`: the split's images shuffled by (seed, epoch).
pub fn epoch_order(split: &Split, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = split.indices.clone();
    order.shuffle(&mut StdRng::seed_from_u64(mix(seed ^ 0xe90c, epoch as u64)));
    order
}

/// How to cut an order into batches.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub batch: usize,
    /// Batches already consumed (a resumed epoch starts after them).
    pub skip: usize,
    /// Drop the last short batch (training) or keep it (evaluation).
    pub drop_last: bool,
    pub augment: Augment,
    pub seed: u64,
    /// Data-parallel training: this replica's part of each batch, `(index, count)`. Batch
    /// `b` is cut from the order as without sharding, and replica `index` gets its
    /// `index`-th of `count` equal slices; augmentation is keyed by the image's position in
    /// the whole batch, so the replicas together see exactly the one-device batch.
    pub shard: (usize, usize),
}

impl Plan {
    /// Every image once, in order, without augmentation.
    pub fn eval(batch: usize) -> Plan {
        Plan { batch, skip: 0, drop_last: false, augment: Augment::NONE, seed: 0, shard: (0, 1) }
    }
}

/// Batches of `order` (image indices of `split.images`) cut by `plan`.
pub fn batches(split: &Split, order: Vec<usize>, norm: &Normalize, plan: Plan) -> Batches {
    let (tx, rx) = sync_channel(PREFETCH);
    let images = split.images.clone();
    let pool = pool();
    let norm = norm.clone();
    let Plan { skip, drop_last, augment, seed, shard: (part, parts), .. } = plan;
    let batch = plan.batch.max(1);
    let parts = parts.max(1);
    let worker = std::thread::spawn(move || {
        let shape = images.shape();
        let len = shape.iter().product::<usize>();
        for (b, chunk) in order.chunks(batch).enumerate().skip(skip) {
            if drop_last && chunk.len() < batch {
                break;
            }
            let each = chunk.len() / parts;
            let first = part * each;
            let chunk = &chunk[first..first + each];
            let mut x = vec![0f32; chunk.len() * len];
            let mut build = || {
                x.par_chunks_mut(len).zip(chunk.par_iter().enumerate()).try_for_each_init(
                    || vec![0u8; len],
                    |raw, (out, (k, &i))| {
                        let key = mix(seed, (b * batch + first + k) as u64);
                        match augment {
                            Augment::Pad { pad, flip } => {
                                images.read(i, raw)?;
                                place(raw, out, shape, (pad, flip), &norm, key);
                            }
                            Augment::Inception(aug) => {
                                images.read_region(i, &|w, h| aug.crop(key, w, h), raw)?;
                                inception(raw, out, shape, &aug, &norm, key);
                            }
                        }
                        Ok(())
                    },
                )
            };
            let built: Result<(), DataError> = match &pool {
                Some(pool) => pool.install(build),
                None => build(),
            };
            let y = chunk.iter().map(|&i| images.label(i)).collect();
            let item = built.map(|()| Batch { x, y, n: chunk.len() });
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                break;
            }
        }
    });
    Batches { rx: Some(rx), worker: Some(worker) }
}

/// Writes one image, cropped with zero padding `pad`, maybe flipped, and normalised, into
/// `out`.
fn place(raw: &[u8], out: &mut [f32], [c, h, w]: [usize; 3], (pad, flip): (usize, bool), norm: &Normalize, key: u64) {
    let span = 2 * pad + 1;
    let dy = (key % span as u64) as usize;
    let dx = ((key >> 16) % span as u64) as usize;
    let flip = flip && (key >> 40) & 1 == 1;
    for ch in 0..c {
        let (mean, std) = (norm.mean[ch], norm.std[ch]);
        let src = &raw[ch * h * w..(ch + 1) * h * w];
        let dst = &mut out[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            let sy = (y + dy).checked_sub(pad).filter(|&v| v < h);
            for x in 0..w {
                // The crop's column shown at x (mirrored when flipping), in source pixels.
                let cx = if flip { w - 1 - x } else { x };
                let sx = (cx + dx).checked_sub(pad).filter(|&v| v < w);
                let v = match (sy, sx) {
                    (Some(sy), Some(sx)) => f32::from(src[sy * w + sx]) / 255.0,
                    _ => 0.0,
                };
                dst[y * w + x] = (v - mean) / std;
            }
        }
    }
}

/// Writes one cropped image (`raw`, already the region the crop drew, resized) after the
/// Inception recipe's colour jitter, lighting and flip, normalised, into `out`.
fn inception(raw: &[u8], out: &mut [f32], shape: [usize; 3], aug: &Inception, norm: &Normalize, key: u64) {
    for (o, &v) in out.iter_mut().zip(raw) {
        *o = f32::from(v) / 255.0;
    }
    aug.colour(mix(key, 1), out, shape);
    let plane = shape[1] * shape[2];
    for (ch, chunk) in out.chunks_mut(plane).enumerate() {
        let (mean, std) = (norm.mean[ch], norm.std[ch]);
        chunk.iter_mut().for_each(|v| *v = (*v - mean) / std);
    }
}

/// SplitMix64 of a pair: a well-spread key per (seed, position).
fn mix(seed: u64, pos: u64) -> u64 {
    let mut z = seed.wrapping_add(pos.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_augmentation_is_plain_normalisation_and_flip_mirrors() {
        let raw: Vec<u8> = (0..6).map(|v| v * 51).collect(); // 1×2×3
        let norm = Normalize { mean: vec![0.5], std: vec![0.25] };
        let mut out = vec![0.0; 6];
        place(&raw, &mut out, [1, 2, 3], (0, false), &norm, 12345);
        let want: Vec<f32> = raw.iter().map(|&v| (f32::from(v) / 255.0 - 0.5) / 0.25).collect();
        assert_eq!(out, want);
        // A flip with no padding mirrors each row (bit 40 of the key set).
        place(&raw, &mut out, [1, 2, 3], (0, true), &norm, 1 << 40);
        assert_eq!(out, vec![want[2], want[1], want[0], want[5], want[4], want[3]]);
    }
}
