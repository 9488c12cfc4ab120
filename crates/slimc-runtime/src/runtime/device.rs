//! Backends: `flex` on the CPU (always built), CUDA behind the `cuda` cargo feature and
//! wgpu (Vulkan, Metal, DX12; Mesa's software Vulkan without a GPU) behind `wgpu`, chosen
//! at run time by `--device cpu|cuda[:N]|wgpu[:N|:integrated[:N]|:cpu]`.

/// The CPU backend for inference.
pub type Cpu = burn::backend::Flex;
/// The CPU backend for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
#[cfg(feature = "cuda")]
pub type CudaTrain = burn::backend::Autodiff<Cuda>;

#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;
#[cfg(feature = "wgpu")]
pub type WgpuTrain = burn::backend::Autodiff<Wgpu>;

/// Which wgpu adapter: the kinds wgpu reports, each numbered from 0 in the order the
/// graphics API lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// The best one the graphics API offers (a discrete GPU first).
    Default,
    Discrete(usize),
    Integrated(usize),
    /// A software rasteriser (Mesa's llvmpipe): runs the GPU kernels on the CPU.
    Cpu,
}

/// A parsed `--device` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    Wgpu(Adapter),
}

/// A device this build cannot name or run on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`; use cpu, cuda[:N] or wgpu[:N|:integrated[:N]|:cpu]")]
    Unknown(String),
    /// A device listed twice in `--devices`.
    #[error("`{0}` is listed twice in --devices")]
    Duplicate(String),
    /// `--devices` naming two kinds of device.
    #[error("--devices mixes {0} and {1}; list devices of one kind (cpu:0,cpu:1 or cuda:0,cuda:1 …)")]
    Mixed(String, String),
    #[error("this slimc was built without {backend}; rebuild with `cargo build --release --features {backend}`")]
    NotBuilt { backend: &'static str },
    /// No wgpu adapter of the kind asked for.
    #[error("{wanted}: no such adapter; {}", found_list(.found))]
    NoAdapter { wanted: String, found: Vec<String> },
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "the graphics API lists none (without a GPU, install Mesa's software Vulkan: \
         apt-get install mesa-vulkan-drivers libvulkan1, then use wgpu:cpu)"
            .into()
    } else {
        format!("the graphics API lists: {}", found.join("; "))
    }
}

impl DeviceSpec {
    pub fn parse(s: &str) -> Result<DeviceSpec, DeviceError> {
        let unknown = || DeviceError::Unknown(s.into());
        let index = |t: &str| t.parse::<usize>().map_err(|_| unknown());
        let parts: Vec<&str> = s.split(':').collect();
        match parts[..] {
            ["cpu"] => Ok(DeviceSpec::Cpu),
            ["cuda"] => Ok(DeviceSpec::Cuda(0)),
            ["cuda", n] => Ok(DeviceSpec::Cuda(index(n)?)),
            ["wgpu"] => Ok(DeviceSpec::Wgpu(Adapter::Default)),
            ["wgpu", "cpu"] => Ok(DeviceSpec::Wgpu(Adapter::Cpu)),
            ["wgpu", "integrated"] => Ok(DeviceSpec::Wgpu(Adapter::Integrated(0))),
            ["wgpu", "integrated", n] => Ok(DeviceSpec::Wgpu(Adapter::Integrated(index(n)?))),
            ["wgpu", n] => Ok(DeviceSpec::Wgpu(Adapter::Discrete(index(n)?))),
            _ => Err(unknown()),
        }
    }

    /// A `--devices` list: `cpu:0,cpu:1` (CPU replicas, each with its share of the cores),
    /// `cuda:0,cuda:1`, `wgpu:0,wgpu:1`; every entry once, all of one kind.
    pub fn parse_list(s: &str) -> Result<Vec<DeviceSpec>, DeviceError> {
        let mut seen: Vec<(String, DeviceSpec)> = Vec::new();
        for item in s.split(',').map(str::trim) {
            let (name, spec) = match item.split_once(':') {
                Some(("cpu", n)) if n.parse::<usize>().is_ok() => {
                    (format!("cpu:{}", n.parse::<usize>().unwrap_or(0)), DeviceSpec::Cpu)
                }
                _ => {
                    let spec = DeviceSpec::parse(item)?;
                    let name = match spec {
                        DeviceSpec::Cpu => "cpu:0".to_string(),
                        other => other.to_string(),
                    };
                    (name, spec)
                }
            };
            if seen.iter().any(|(n, _)| *n == name) {
                return Err(DeviceError::Duplicate(item.to_string()));
            }
            if let Some((first, kind)) = seen.first() {
                if std::mem::discriminant(kind) != std::mem::discriminant(&spec) {
                    return Err(DeviceError::Mixed(first.clone(), name));
                }
            }
            seen.push((name, spec));
        }
        Ok(seen.into_iter().map(|(_, s)| s).collect())
    }

    /// What runs the network: the backend, and for wgpu the adapter's name and graphics
    /// API (`wgpu:cpu (llvmpipe (LLVM 15.0.6, 256 bits), Vulkan)`); an error where this
    /// build cannot run on it or (wgpu) the adapter does not exist.
    pub fn describe(self) -> Result<String, DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(self.to_string()),
            DeviceSpec::Cuda(_) if cfg!(feature = "cuda") => Ok(self.to_string()),
            DeviceSpec::Cuda(_) => Err(DeviceError::NotBuilt { backend: "cuda" }),
            #[cfg(feature = "wgpu")]
            DeviceSpec::Wgpu(adapter) => wgpu_probe::find(adapter).map(|name| format!("{self} ({name})")),
            #[cfg(not(feature = "wgpu"))]
            DeviceSpec::Wgpu(_) => Err(DeviceError::NotBuilt { backend: "wgpu" }),
        }
    }

    /// The Burn device of a wgpu adapter.
    #[cfg(feature = "wgpu")]
    pub fn wgpu_device(adapter: Adapter) -> burn::backend::wgpu::WgpuDevice {
        use burn::backend::wgpu::WgpuDevice;
        match adapter {
            Adapter::Default => WgpuDevice::DefaultDevice,
            Adapter::Discrete(n) => WgpuDevice::DiscreteGpu(n),
            Adapter::Integrated(n) => WgpuDevice::IntegratedGpu(n),
            Adapter::Cpu => WgpuDevice::Cpu,
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu (flex)"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Wgpu(Adapter::Default) => f.write_str("wgpu"),
            DeviceSpec::Wgpu(Adapter::Discrete(n)) => write!(f, "wgpu:{n}"),
            DeviceSpec::Wgpu(Adapter::Integrated(n)) => write!(f, "wgpu:integrated:{n}"),
            DeviceSpec::Wgpu(Adapter::Cpu) => f.write_str("wgpu:cpu"),
        }
    }
}

/// Finding the adapter before Burn does: Burn's wgpu runtime panics when the adapter it is
/// asked for does not exist, so slimc looks first, with the graphics API and the selection
/// rule Burn uses (adapters of the kind asked for, numbered in the API's order; those of
/// type "other" stand in when none has the kind).
#[cfg(feature = "wgpu")]
mod wgpu_probe {
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    use wgpu::DeviceType;

    use super::{Adapter, DeviceError};

    pub fn find(adapter: Adapter) -> Result<String, DeviceError> {
        let backend = AutoGraphicsApi::backend();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: backend.into(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let infos: Vec<wgpu::AdapterInfo> =
            pollster::block_on(instance.enumerate_adapters(backend.into())).iter().map(|a| a.get_info()).collect();
        let describe = |i: &wgpu::AdapterInfo| format!("{} ({:?}, {:?})", i.name, i.device_type, i.backend);
        let (kind, index) = match adapter {
            Adapter::Default => {
                // Burn's choice: the API's high-performance adapter.
                let options = wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                };
                let chosen = pollster::block_on(instance.request_adapter(&options)).ok().map(|a| a.get_info());
                return chosen.map(|i| describe(&i)).ok_or_else(|| no_adapter(adapter, &infos, describe));
            }
            Adapter::Discrete(n) => (DeviceType::DiscreteGpu, n),
            Adapter::Integrated(n) => (DeviceType::IntegratedGpu, n),
            Adapter::Cpu => (DeviceType::Cpu, 0),
        };
        let of_kind = infos.iter().filter(|i| i.device_type == kind).nth(index);
        let other = || infos.iter().filter(|i| i.device_type == DeviceType::Other).nth(index);
        of_kind.or_else(other).map(describe).ok_or_else(|| no_adapter(adapter, &infos, describe))
    }

    fn no_adapter(
        adapter: Adapter,
        infos: &[wgpu::AdapterInfo],
        describe: impl Fn(&wgpu::AdapterInfo) -> String,
    ) -> DeviceError {
        DeviceError::NoAdapter {
            wanted: super::DeviceSpec::Wgpu(adapter).to_string(),
            found: infos.iter().map(describe).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!(DeviceSpec::parse("cpu"), Ok(DeviceSpec::Cpu));
        assert_eq!(DeviceSpec::parse("cuda:1"), Ok(DeviceSpec::Cuda(1)));
        assert_eq!(DeviceSpec::parse("wgpu"), Ok(DeviceSpec::Wgpu(Adapter::Default)));
        assert_eq!(DeviceSpec::parse("wgpu:2"), Ok(DeviceSpec::Wgpu(Adapter::Discrete(2))));
        assert_eq!(DeviceSpec::parse("wgpu:integrated"), Ok(DeviceSpec::Wgpu(Adapter::Integrated(0))));
        assert_eq!(DeviceSpec::parse("wgpu:integrated:1"), Ok(DeviceSpec::Wgpu(Adapter::Integrated(1))));
        assert_eq!(DeviceSpec::parse("wgpu:cpu"), Ok(DeviceSpec::Wgpu(Adapter::Cpu)));
        for bad in ["gpu", "cuda:", "cuda:x", "wgpu:", "wgpu:gpu", "wgpu:cpu:1", "cpu:0", ""] {
            assert_eq!(DeviceSpec::parse(bad), Err(DeviceError::Unknown(bad.into())), "{bad}");
        }
        for name in ["cpu", "cuda:3", "wgpu", "wgpu:1", "wgpu:integrated:2", "wgpu:cpu"] {
            let spec = DeviceSpec::parse(name).unwrap();
            let shown = spec.to_string();
            let shown = shown.split(' ').next().unwrap();
            assert_eq!(DeviceSpec::parse(shown), Ok(spec), "{name} shows as {shown}");
        }
    }

    #[test]
    fn device_lists_parse() {
        assert_eq!(DeviceSpec::parse_list("cpu:0,cpu:1"), Ok(vec![DeviceSpec::Cpu, DeviceSpec::Cpu]));
        assert_eq!(DeviceSpec::parse_list("cuda:0, cuda:1"), Ok(vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]));
        assert_eq!(DeviceSpec::parse_list("cpu:0,cpu:0"), Err(DeviceError::Duplicate("cpu:0".into())));
        assert_eq!(DeviceSpec::parse_list("cpu,cpu:0"), Err(DeviceError::Duplicate("cpu:0".into())));
        assert_eq!(DeviceSpec::parse_list("cuda:1,cuda:1"), Err(DeviceError::Duplicate("cuda:1".into())));
        assert_eq!(DeviceSpec::parse_list("cpu:0,cuda:0"), Err(DeviceError::Mixed("cpu:0".into(), "cuda:0".into())));
        assert_eq!(DeviceSpec::parse_list("cpu:0,"), Err(DeviceError::Unknown("".into())));
        assert_eq!(DeviceSpec::parse_list("cpu:x"), Err(DeviceError::Unknown("cpu:x".into())));
    }

    #[test]
    fn unbuilt_backends_are_refused() {
        if !cfg!(feature = "wgpu") {
            let e = DeviceSpec::Wgpu(Adapter::Cpu).describe().unwrap_err();
            assert_eq!(e, DeviceError::NotBuilt { backend: "wgpu" });
            assert!(e.to_string().contains("--features wgpu"));
        }
        if !cfg!(feature = "cuda") {
            assert_eq!(DeviceSpec::Cuda(0).describe(), Err(DeviceError::NotBuilt { backend: "cuda" }));
        }
    }
}
