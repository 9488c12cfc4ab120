//! The `train`, `eval` and `search` commands (argument parsing, progress, tables, plots);
//! the work itself is in the library's `train` module.

/// Calls `f::<B>(args…, device)` with the backend `--device` chose: `slimc::runtime::device`'s
/// `$cpu` type, or `$gpu` (built with the `cuda` feature).
macro_rules! on_device {
    ($spec:expr, $cpu:ident, $gpu:ident, $f:ident($($arg:expr),*)) => {
        match $spec {
            slimc::runtime::device::DeviceSpec::Cpu => $f::<slimc::runtime::device::$cpu>($($arg,)* Default::default()),
            #[cfg(feature = "cuda")]
            slimc::runtime::device::DeviceSpec::Cuda(n) => {
                $f::<slimc::runtime::device::$gpu>($($arg,)* burn::backend::cuda::CudaDevice::new(n))
            }
            #[cfg(not(feature = "cuda"))]
            slimc::runtime::device::DeviceSpec::Cuda(_) => unreachable!("checked by DeviceSpec::available"),
        }
    };
}

pub mod eval;
pub mod export;
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
