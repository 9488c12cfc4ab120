//! Checkpoints: a directory holding the weights (`model.mpk`, Burn's named MessagePack
//! record) and `meta.json` — the `.slim` source, network parameters, rounding, BN switches,
//! calibrated BN statistics and the slimc version. Every file is written to a temporary
//! name and renamed into place, weights first and metadata last, so an interrupted save
//! never leaves a checkpoint that loads half-old, half-new.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::{BnStats, SlimNet};
use crate::ir::{Network, ParamValue, Rounding};
use crate::Options;

pub const META: &str = "meta.json";
pub const WEIGHTS: &str = "model";

/// What `meta.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub slimc_version: String,
    /// Where the source was read from (informational).
    pub source_path: String,
    /// The full `.slim` text the network was compiled from.
    pub source: String,
    pub network: String,
    pub settings: Vec<(String, ParamValue)>,
    pub rounding: String,
    /// BN switch widths (S-Nets); empty for shared BN.
    pub switches: Vec<f64>,
    /// Calibrated BN statistics, one entry per width configuration.
    pub bn: Vec<BnStats>,
    /// Free-form state of the command that wrote it (training progress, ...).
    #[serde(default)]
    pub state: serde_json::Value,
}

#[derive(Debug)]
pub enum CheckpointError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Corrupt {
        path: PathBuf,
        reason: String,
    },
    /// The stored source no longer compiles, or differs from the file given.
    SourceMismatch {
        detail: String,
    },
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            CheckpointError::Corrupt { path, reason } => {
                write!(f, "{} is not a valid slimc checkpoint: {reason}", path.display())
            }
            CheckpointError::SourceMismatch { detail } => f.write_str(detail),
        }
    }
}

impl std::error::Error for CheckpointError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |error| CheckpointError::Io { path: path.to_path_buf(), error }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Saves `model` and `meta` into `dir` (created if needed).
pub fn save<B: Backend>(model: &SlimNet<B>, meta: &Meta, dir: &Path) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_record(model.clone(), &dir.join(format!("{WEIGHTS}.mpk")))?;
    let json = serde_json::to_vec_pretty(meta)
        .map_err(|e| CheckpointError::Corrupt { path: dir.join(META), reason: e.to_string() })?;
    write_atomic(&dir.join(META), &json)
}

/// Reads `meta.json` of a checkpoint directory.
pub fn read_meta(dir: &Path) -> Result<Meta, CheckpointError> {
    let path = dir.join(META);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt { path, reason: e.to_string() })
}

/// Compiles the network a checkpoint was trained from. When `current` is given (the
/// `.slim` text a user points at now), it must be the stored source.
pub fn network(meta: &Meta, current: Option<&str>) -> Result<Network, CheckpointError> {
    if let Some(now) = current {
        if now != meta.source {
            let line = now
                .lines()
                .zip(meta.source.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| now.lines().count().min(meta.source.lines().count()) + 1, |i| i + 1);
            return Err(CheckpointError::SourceMismatch {
                detail: format!(
                    "the checkpoint was trained from a different version of {} (first difference at line {line}); \
                     use the checkpoint's own source (`meta.json`) or retrain",
                    meta.source_path
                ),
            });
        }
    }
    compile_saved(&meta.source_path, &meta.source, &meta.settings, &meta.rounding, &meta.network)
        .map_err(|why| CheckpointError::SourceMismatch { detail: format!("the checkpoint's source {why}") })
}

/// Compiles a stored `.slim` source with its settings and rounding and picks `network`.
/// The error completes "… source ": `no longer compiles: …` or `has no network …`.
pub fn compile_saved(
    source_path: &str,
    source: &str,
    settings: &[(String, ParamValue)],
    rounding: &str,
    network: &str,
) -> Result<Network, String> {
    let options = Options { settings: settings.to_vec(), rounding: Rounding::parse(rounding) };
    let nets =
        crate::compile(source, source_path, &options).map_err(|d| format!("no longer compiles:\n{}", d.render()))?;
    nets.into_iter().find(|n| n.name == network).ok_or_else(|| format!("has no network `{network}`"))
}

/// Writes `module`'s record (named MessagePack, full precision) to `target`, a `.mpk`
/// path, through a temporary file and a rename, so that no reader sees half a record.
pub fn write_record<B: Backend, M: Module<B>>(module: M, target: &Path) -> Result<(), CheckpointError> {
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    // The recorder sets the `.mpk` extension itself, replacing any other: use a stem
    // without dots, so that the temporary file is `STEM-tmp-write.mpk` beside the target
    // (and never another file whose name the target's stem begins with).
    let stem = target.file_stem().map(|s| s.to_string_lossy().replace('.', "_")).unwrap_or_default();
    let tmp = target.with_file_name(format!("{stem}-tmp-write"));
    module
        .save_file(&tmp, &recorder)
        .map_err(|e| CheckpointError::Corrupt { path: tmp.clone(), reason: e.to_string() })?;
    std::fs::rename(tmp.with_extension("mpk"), target).map_err(io(target))
}

/// Loads a checkpoint: rebuilds the network from its source, then reads the weights and
/// checks every tensor's shape against the network.
pub fn load<B: Backend>(
    dir: &Path,
    current: Option<&str>,
    device: &B::Device,
) -> Result<(SlimNet<B>, Meta), CheckpointError> {
    let meta = read_meta(dir)?;
    let net = Arc::new(network(&meta, current)?);
    let fresh = SlimNet::<B>::new(net, meta.switches.clone(), 0, device);
    let expected = shapes(&fresh);
    let path = dir.join(format!("{WEIGHTS}.mpk"));
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let model = fresh
        .load_file(dir.join(WEIGHTS), &recorder, device)
        .map_err(|e| CheckpointError::Corrupt { path: path.clone(), reason: e.to_string() })?;
    if shapes(&model) != expected {
        return Err(CheckpointError::Corrupt { path, reason: "the weights do not fit the network's layers".into() });
    }
    let bad = meta.bn.iter().find(|s| s.layers.len() != model.layers.len());
    if let Some(s) = bad {
        return Err(CheckpointError::Corrupt {
            path: dir.join(META),
            reason: format!("BN statistics `{}` do not fit the network", s.key),
        });
    }
    Ok((model, meta))
}

/// Every parameter's shape, in order.
fn shapes<B: Backend>(m: &SlimNet<B>) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for p in &m.layers {
        if let Some(w) = &p.conv {
            out.push(w.val().dims().to_vec());
        }
        if let Some(w) = &p.linear {
            out.push(w.val().dims().to_vec());
        }
        for t in p.bias.iter().chain(&p.gamma).chain(&p.beta) {
            out.push(t.val().dims().to_vec());
        }
    }
    out
}

impl Meta {
    /// Metadata for a network compiled from `source` with `options`.
    pub fn new(source_path: &str, source: &str, net: &Network, options: &Options, switches: Vec<f64>) -> Meta {
        Meta {
            slimc_version: env!("CARGO_PKG_VERSION").to_string(),
            source_path: source_path.to_string(),
            source: source.to_string(),
            network: net.name.clone(),
            settings: options.settings.clone(),
            rounding: net.rounding.to_string(),
            switches,
            bn: Vec::new(),
            state: serde_json::Value::Null,
        }
    }
}
