//! slimc's runtime and training library: the networks of `slimc-lang`'s IR run on Burn.
//!
//! ```text
//! ir::Network ─ runtime (SlimNet: forward/backward at any width; flex CPU, wgpu, CUDA)
//!             ├ data    (IDX / CIFAR / ImageFolder / WebDataset readers, seeded augmented batches)
//!             ├ train   (sandwich steps, schemes, runs, evaluation, AutoSlim, Joslim,
//!             │          Pareto fronts, data-parallel replicas, benchmarks)
//!             └ export  (fixed-width subnet: Burn record, safetensors, ONNX)
//! ```
//!
//! The language below (`slimc-lang`) never sees Burn; this crate never prints or exits
//! (the `slimc` binary does).

// The language's modules under their usual names, so that `crate::ir` reads as it does
// in the language crate.
use slimc_lang::{compile, cost, ir, Diagnostics, Options};

pub mod data;
pub mod export;
pub mod format;
pub mod hash;
pub mod import;
pub mod runtime;
pub mod train;
