//! Backends: `flex` on the CPU (always built) and CUDA behind the `cuda` cargo feature,
//! chosen at run time by `--device cpu|cuda[:N]`.

/// The CPU backend for inference.
pub type Cpu = burn::backend::Flex;
/// The CPU backend for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// A parsed `--device` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

/// A device this build cannot name or run on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`; use cpu, cuda or cuda:N")]
    Unknown(String),
    #[error("this slimc was built without CUDA; rebuild with `cargo build --release --features cuda`")]
    NotBuilt,
}

impl DeviceSpec {
    pub fn parse(s: &str) -> Result<DeviceSpec, DeviceError> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
                _ => Err(DeviceError::Unknown(s.into())),
            },
        }
    }

    /// Whether this build can run on it.
    pub fn available(self) -> Result<(), DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(()),
            DeviceSpec::Cuda(_) if cfg!(feature = "cuda") => Ok(()),
            DeviceSpec::Cuda(_) => Err(DeviceError::NotBuilt),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu (flex)"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}
