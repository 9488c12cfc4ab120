//! Checkpoints: a directory holding the weights (`model.mpk`, Burn's named MessagePack
//! record) and `meta.json` — the `.slim` source, network parameters, rounding, BN switches,
//! calibrated BN statistics and the slimc version. Every file is written to a temporary
//! name and renamed into place, weights first and metadata last, so an interrupted save
//! never leaves a checkpoint that loads half-old, half-new.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::params::{StoredNet, StoredNetRecord};
use super::{BnStats, SlimNet};
use crate::ir::{Network, ParamValue, Rounding};
use crate::Options;
use slimc_lang::files::{replace_atomically, temporary_beside};

pub const META: &str = "meta.json";
pub const WEIGHTS: &str = "model";

/// What `meta.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The layout of this file and of `state` ([`crate::format::META`]).
    #[serde(default = "crate::format::unnumbered")]
    pub format: u32,
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
    /// Where the run that wrote it stands (absent in a checkpoint no training wrote).
    #[serde(default)]
    pub state: Option<crate::format::run::State>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{} is not a valid slimc checkpoint: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// Metadata written by a slimc with a newer format.
    #[error("{} {error}", path.display())]
    Format { path: PathBuf, error: crate::format::FormatError },
    /// The `.slim` file given now differs from the one the checkpoint was trained from.
    #[error(
        "the checkpoint was trained from a different version of {source_path} (first difference at line {line}); \
         use the checkpoint's own source (`meta.json`) or retrain"
    )]
    SourceChanged { source_path: String, line: usize },
    /// The stored source no longer compiles, or lacks the network.
    #[error("the checkpoint's source {0}")]
    Source(#[from] SavedSourceError),
}

/// Why a stored `.slim` source (in a checkpoint or an export) gives no network.
#[derive(Debug, thiserror::Error)]
pub enum SavedSourceError {
    /// This version of slimc reports errors in it (a language change).
    #[error("no longer compiles:\n{}", .0.render())]
    Compile(crate::Diagnostics),
    #[error("has no network `{0}`")]
    NoNetwork(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |error| CheckpointError::Io { path: path.to_path_buf(), error }
}

/// Writes `bytes` to `path` atomically (`slimc_lang::files::replace_atomically`: a
/// temporary file of its own, unique per process and call, removed on failure, then a
/// rename). For the run's own files; user-named outputs go through
/// `slimc_lang::write_output`, which also refuses to replace a file of another kind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    replace_atomically(path, bytes).map_err(io(path))
}

/// Saves `model` and `meta` into `dir` (created if needed).
pub fn save<B: Backend>(model: &SlimNet<B>, meta: &Meta, dir: &Path) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_record(model.clone().stored(), &dir.join(format!("{WEIGHTS}.mpk")))?;
    let json = serde_json::to_vec_pretty(meta)
        .map_err(|e| CheckpointError::Corrupt { path: dir.join(META), reason: e.to_string() })?;
    write_atomic(&dir.join(META), &json)
}

/// Reads `meta.json` of a checkpoint directory.
pub fn read_meta(dir: &Path) -> Result<Meta, CheckpointError> {
    let path = dir.join(META);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let corrupt = |e: serde_json::Error| CheckpointError::Corrupt { path: path.clone(), reason: e.to_string() };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(corrupt)?;
    crate::format::check(&doc, crate::format::META)
        .map_err(|error| CheckpointError::Format { path: path.clone(), error })?;
    serde_json::from_value(doc).map_err(corrupt)
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
            return Err(CheckpointError::SourceChanged { source_path: meta.source_path.clone(), line });
        }
    }
    Ok(compile_saved(&meta.source_path, &meta.source, &meta.settings, &meta.rounding, &meta.network)?)
}

/// Compiles a stored `.slim` source with its settings and rounding and picks `network`.
pub fn compile_saved(
    source_path: &str,
    source: &str,
    settings: &[(String, ParamValue)],
    rounding: &str,
    network: &str,
) -> Result<Network, SavedSourceError> {
    let options = Options { settings: settings.to_vec(), rounding: Rounding::parse(rounding), ..Options::default() };
    let nets = crate::compile(source, source_path, &options).map_err(SavedSourceError::Compile)?;
    nets.into_iter().find(|n| n.name == network).ok_or_else(|| SavedSourceError::NoNetwork(network.to_string()))
}

/// Writes `module`'s record (named MessagePack, full precision) to `target`, a `.mpk`
/// path, through a temporary file and a rename, so that no reader sees half a record.
pub fn write_record<B: Backend, M: Module<B>>(module: M, target: &Path) -> Result<(), CheckpointError> {
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    // The recorder sets the `.mpk` extension itself, replacing the reserved name's `.tmp`:
    // the record goes to `.NAME.PID.N.mpk`, as unique as the reserved name.
    let reserved = temporary_beside(target).map_err(io(target))?;
    let tmp = reserved.with_extension("mpk");
    let saved = module
        .save_file(&reserved, &recorder)
        .map_err(|e| CheckpointError::Corrupt { path: tmp.clone(), reason: e.to_string() })
        .and_then(|()| std::fs::rename(&tmp, target).map_err(io(target)));
    let _ = std::fs::remove_file(&reserved);
    if saved.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    saved
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
    let fresh = SlimNet::<B>::new(net.clone(), meta.switches.clone(), 0, device);
    let expected = shapes(&fresh);
    let path = dir.join(format!("{WEIGHTS}.mpk"));
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let record: StoredNetRecord<B> = recorder
        .load(dir.join(WEIGHTS), device)
        .map_err(|e| CheckpointError::Corrupt { path: path.clone(), reason: e.to_string() })?;
    // Burn panics when a record's structure (which tensors a layer has, how many BN
    // copies) differs from the module's: an edited `switches` list, or weights of another
    // network. Compare the structure first.
    let fresh = fresh.stored();
    let misfit = || CheckpointError::Corrupt {
        path: path.clone(),
        reason: "the weights do not fit the network's layers (another network, or a different list of BN switches)"
            .into(),
    };
    if !fits(&fresh, &record) {
        return Err(misfit());
    }
    let model = SlimNet::from_stored(fresh.load_record(record), net, meta.switches.clone()).ok_or_else(misfit)?;
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

/// Whether `record` has the structure of `model`: as many layers, each with the same
/// tensors present and as many BN copies.
fn fits<B: Backend>(model: &StoredNet<B>, record: &StoredNetRecord<B>) -> bool {
    model.layers.len() == record.layers.len()
        && model.layers.iter().zip(&record.layers).all(|(m, r)| {
            m.conv.is_some() == r.conv.is_some()
                && m.linear.is_some() == r.linear.is_some()
                && m.bias.is_some() == r.bias.is_some()
                && m.gamma.len() == r.gamma.len()
                && m.beta.len() == r.beta.len()
        })
}

/// Every parameter's shape, in order.
fn shapes<B: Backend>(m: &SlimNet<B>) -> Vec<Vec<usize>> {
    m.learned().into_iter().map(|l| l.dims).collect()
}

impl Meta {
    /// Metadata for a network compiled from `source` with `options`.
    /// The metadata of `net`, compiled from `source` with `options`. Context values the
    /// network took are stored as settings, so that the stored source compiles to it again.
    pub fn new(source_path: &str, source: &str, net: &Network, options: &Options, switches: Vec<f64>) -> Meta {
        let mut settings = options.settings.clone();
        for (k, v) in &options.context {
            if !settings.iter().any(|(n, _)| n == k) && net.params.iter().any(|(n, _)| n == k) {
                settings.push((k.clone(), v.clone()));
            }
        }
        Meta {
            format: crate::format::META,
            slimc_version: env!("CARGO_PKG_VERSION").to_string(),
            source_path: source_path.to_string(),
            source: source.to_string(),
            network: net.name.clone(),
            settings,
            rounding: net.rounding.to_string(),
            switches,
            bn: Vec::new(),
            state: None,
        }
    }
}
