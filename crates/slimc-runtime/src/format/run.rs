//! A run's state as `meta.json` stores it under `state` (format [`super::META`]), and a
//! line of `metrics.jsonl`: types of their own, with the field and variant names every
//! run directory so far has. The training library converts to and from its own types
//! (`crate::train::stored`), so a rename or a new field there cannot change what a run
//! directory holds; `tests/state.rs` reads the committed run directory through these.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub options: Options,
    pub normalize: Normalize,
    /// The epoch in progress (0-based) and the batches of it already trained.
    pub epoch: usize,
    pub batch: usize,
    /// Steps trained in total.
    pub step: usize,
    pub history: Vec<Metrics>,
    /// Joslim's pool and GP data (`--scheme joslim` only).
    #[serde(default)]
    pub joslim: Option<JoslimState>,
}

/// Everything that determines a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Options {
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
    /// Linear warm-up, in epochs.
    pub warmup: f64,
    pub label_smoothing: f64,
    pub seed: u64,
    pub max_steps: Option<usize>,
    /// Images held out of the training set for validation.
    pub val: usize,
    /// Batches of BN calibration before each validation.
    pub calibrate: usize,
    pub data: Data,
    /// The training augmentation; absent in runs started before it was stored, which
    /// trained with the padded crop and flip of their data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augment>,
    /// Photographs: the shorter side before evaluation's centre crop; absent in runs
    /// started before it was stored, which resized to the input size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_resize: Option<usize>,
    /// The frozen teacher's weights (`--teacher`), an absolute path; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<std::path::PathBuf>,
}

/// A training augmentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Augment {
    Pad { pad: usize, flip: bool },
    Inception { scale: (f64, f64), ratio: (f64, f64), jitter: f32, lighting: f32 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Scheme {
    Us,
    S(Vec<f64>),
    Fixed(f64),
    Joslim(Joslim),
}

/// Joslim's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Joslim {
    pub prior: usize,
    pub tau: usize,
    pub per_update: usize,
    pub pool: usize,
    pub objective: Objective,
    pub beta: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objective {
    Macs,
    Params,
    Memory,
    Latency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sampling {
    Uniform,
    PerDim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    Cosine,
    Linear,
}

/// The data set, by kind and directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Data {
    FashionMnist(PathBuf),
    Mnist(PathBuf),
    Cifar10(PathBuf),
    Cifar100(PathBuf),
    ImageFolder(PathBuf),
    WebDataset(PathBuf),
}

/// Per-channel mean and standard deviation of pixel values in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// One epoch's metrics (a line of `metrics.jsonl`, an entry of `history`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub epoch: usize,
    pub step: usize,
    pub complete: bool,
    pub train_loss: f64,
    pub lr: f64,
    pub min_width: f64,
    pub max_width: f64,
    pub val_acc_min: Option<f64>,
    pub val_acc_max: Option<f64>,
    pub img_per_s: f64,
    pub seconds: f64,
    /// Absent in runs written before Joslim's time was measured.
    #[serde(default)]
    pub search_seconds: f64,
}

/// Joslim's pool and updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoslimState {
    pub pool: Vec<Member>,
    pub updates: usize,
}

/// A configuration of Joslim's pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub wm: Vec<f64>,
    pub cost: f64,
    pub loss: Option<f64>,
    pub born: usize,
}
