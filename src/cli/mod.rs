//! The `train` and `eval` commands (argument parsing, progress, tables, plots); the work
//! itself is in the library's `train` module.

pub mod eval;
pub mod plot;
pub mod search;
pub mod train;

use slimc::runtime::device::DeviceSpec;

use crate::Failure;

/// Parses `--device` and checks this build can run on it.
pub fn device(s: &str) -> Result<DeviceSpec, Failure> {
    let d = DeviceSpec::parse(s).map_err(Failure::Usage)?;
    d.available().map_err(Failure::Usage)?;
    Ok(d)
}

/// A library error as a usage/IO failure (exit 2).
pub fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}
