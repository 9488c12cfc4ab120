//! The command line, one file per command: each parses its arguments, calls the library
//! and formats what it returns. This layer is the only one that prints or exits.
//! Exit codes: 0 success, 1 the input has errors (diagnostics printed), 2 usage or IO error.

/// Calls `f::<B>(args…, device)` with the backend `--device` chose: for `infer`,
/// `slimc_runtime::runtime::device`'s `Cpu`, `Cuda` or `Wgpu`; for `train`, their autodiff
/// `CpuTrain`, `CudaTrain` or `WgpuTrain`. A backend this build lacks was refused by
/// `parse_device`.
macro_rules! on_device {
    ($spec:expr, infer, $f:ident($($arg:expr),*)) => {
        on_device!(@ $spec, Cpu, Cuda, Wgpu, $f($($arg),*))
    };
    ($spec:expr, train, $f:ident($($arg:expr),*)) => {
        on_device!(@ $spec, CpuTrain, CudaTrain, WgpuTrain, $f($($arg),*))
    };
    (@ $spec:expr, $cpu:ident, $cuda:ident, $wgpu:ident, $f:ident($($arg:expr),*)) => {
        match $spec {
            slimc_runtime::runtime::device::DeviceSpec::Cpu => $f::<slimc_runtime::runtime::device::$cpu>($($arg,)* Default::default()),
            #[cfg(feature = "cuda")]
            slimc_runtime::runtime::device::DeviceSpec::Cuda(n) => {
                $f::<slimc_runtime::runtime::device::$cuda>($($arg,)* burn::backend::cuda::CudaDevice::new(n))
            }
            #[cfg(feature = "wgpu")]
            slimc_runtime::runtime::device::DeviceSpec::Wgpu(adapter) => {
                let device = slimc_runtime::runtime::device::DeviceSpec::wgpu_device(adapter);
                $f::<slimc_runtime::runtime::device::$wgpu>($($arg,)* device)
            }
            #[allow(unreachable_patterns)]
            other => unreachable!("{other} was refused by parse_device"),
        }
    };
}

pub mod bench;
pub mod check;
pub mod emit;
pub mod eval;
pub mod export;
pub mod import;
pub mod lsp;
pub mod pack;
pub mod plot;
pub mod search;
pub mod space;
pub mod train;

use std::path::Path;

use clap::Args;
use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};

use slimc_lang::ir::{Network, ParamValue, Rounding};
use slimc_lang::{Diagnostics, Options};
use slimc_runtime::export::HostTensor;
use slimc_runtime::import::order::{reorder, Criterion};
use slimc_runtime::import::state_dict;
use slimc_runtime::runtime::device::DeviceSpec;
use slimc_runtime::train::joslim::JoslimOptions;
use slimc_runtime::train::scheme::{Scheme, DEFAULT_SWITCHES};

/// A failure that ends the command with its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Diagnostics were printed: exit 1.
    Input,
    /// Usage or IO: exit 2, with the message.
    Usage(String),
}

/// A library error as a usage/IO failure (exit 2).
pub fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

/// `--workers`, shared by every command that reads a data set.
#[derive(Args, Clone, Debug, Default)]
pub struct LoaderArgs {
    /// Threads that decode and augment images, a pool apart from the one the network runs
    /// on; results do not depend on it [default: a quarter of the cores when the network
    /// runs on the CPU, all but one core with a GPU].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

impl LoaderArgs {
    /// Sizes the loader's pool for a network running on `device`.
    pub fn apply(&self, device: &DeviceSpec) -> Result<(), Failure> {
        use slimc_runtime::runtime::device::Adapter;
        let n = match self.workers {
            Some(0) => return Err(Failure::Usage("--workers must be at least 1".into())),
            Some(n) => n,
            None => match device {
                DeviceSpec::Cpu | DeviceSpec::Wgpu(Adapter::Cpu) => slimc_runtime::data::default_workers(),
                _ => std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1),
            },
        };
        slimc_runtime::data::set_workers(n);
        Ok(())
    }
}

/// `--rounding` and `--set`, shared by every command that compiles a file.
#[derive(Args, Clone, Debug, Default)]
pub struct CompileArgs {
    /// Override the network's rounding policy.
    #[arg(long, value_name = "POLICY", value_parser = parse_rounding)]
    pub rounding: Option<Rounding>,
    /// Set a network parameter, e.g. --set classes=100 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_setting)]
    pub set: Vec<(String, ParamValue)>,
}

impl CompileArgs {
    pub fn options(&self) -> Options {
        Options { settings: self.set.clone(), rounding: self.rounding, ..Options::default() }
    }
}

/// The rounding policies a flag accepts; `make_divisible(N)` takes any divisor.
const ROUNDINGS: &[&str] = &["floor", "nearest", "make_divisible(8)"];

/// `--rounding`: floor, nearest or make_divisible(N), with a suggestion for a typo.
fn parse_rounding(s: &str) -> Result<Rounding, String> {
    Rounding::parse(s).ok_or_else(|| {
        let close = slimc_lang::sema::builtins::similar(s, ROUNDINGS.iter().copied());
        let hint = close.first().map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
        format!("not a rounding policy{hint}; use {}", ROUNDINGS.join(", "))
    })
}

/// `--set NAME=VALUE`: an integer, a number or a boolean.
fn parse_setting(kv: &str) -> Result<(String, ParamValue), String> {
    let Some((k, v)) = kv.split_once('=') else { return Err("expected NAME=VALUE".into()) };
    let value = if let Ok(i) = v.parse::<i64>() {
        ParamValue::Int(i)
    } else if let Some(f) = v.parse::<f64>().ok().filter(|f| f.is_finite()) {
        ParamValue::Float(f)
    } else if let Ok(b) = v.parse::<bool>() {
        ParamValue::Bool(b)
    } else {
        return Err(format!("`{v}` is not a number or a boolean"));
    };
    Ok((k.trim().to_string(), value))
}

/// Mesa's Vulkan driver prints `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment` at every use when that variable is unset (containers, CI, `sudo`): harmless
/// (slimc opens no window) but alarming next to slimc's own errors. Where it is unset, slimc
/// points it at a private directory of its own under the temporary directory.
pub fn quiet_mesa() {
    #[cfg(all(unix, feature = "wgpu"))]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join("slimc-xdg-runtime");
        let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if made.is_ok() || dir.is_dir() {
            // Single-threaded here: main calls this before anything else runs.
            std::env::set_var("XDG_RUNTIME_DIR", dir);
        }
    }
}

/// A `--device` this build can run on, with what runs it (for wgpu, the adapter found).
#[derive(Clone, Debug)]
pub struct Device {
    pub spec: DeviceSpec,
    /// [`DeviceSpec::describe`], found once, at parse time.
    pub name: String,
}

/// `--device`: cpu, cuda[:N] or wgpu[:N|:integrated[:N]|:cpu], refused at parse time when
/// this build cannot run it or (wgpu) the adapter does not exist.
pub fn parse_device(s: &str) -> Result<Device, String> {
    let spec = DeviceSpec::parse(s).map_err(|e| e.to_string())?;
    let name = spec.describe().map_err(|e| e.to_string())?;
    Ok(Device { spec, name })
}

/// `--devices`: several devices of one kind, each once, each one this build can run on.
#[derive(Clone, Debug)]
pub struct Devices {
    pub specs: Vec<DeviceSpec>,
    /// What runs each replica, as shown to the user.
    pub name: String,
}

impl Devices {
    /// Several CPU replicas: the rayon threads each gets, its share of the cores (one pool
    /// per replica); `None` otherwise (GPU replicas, or one CPU device using them all).
    pub fn cpu_threads(&self) -> Option<usize> {
        let n = self.specs.len();
        (self.specs[0] == DeviceSpec::Cpu && n > 1)
            .then(|| (std::thread::available_parallelism().map_or(1, |c| c.get()) / n).max(1))
    }
}

pub fn parse_devices(s: &str) -> Result<Devices, String> {
    let specs = DeviceSpec::parse_list(s).map_err(|e| e.to_string())?;
    let names = specs.iter().map(|d| d.describe()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let name = match specs[0] {
        DeviceSpec::Cpu => format!("{} CPU replicas (flex), each with its share of the cores", specs.len()),
        _ => names.join(", "),
    };
    Ok(Devices { specs, name })
}

/// Calls `f::<B>(args…, devices)` with the training backend of `specs` (all of one kind,
/// as [`parse_devices`] ensures) and one Burn device per spec.
macro_rules! on_devices {
    ($specs:expr, $f:ident($($arg:expr),*)) => {{
        use slimc_runtime::runtime::device::DeviceSpec;
        let specs: &[DeviceSpec] = $specs;
        match specs[0] {
            DeviceSpec::Cpu => $f::<slimc_runtime::runtime::device::CpuTrain>($($arg,)* specs.iter().map(|_| Default::default()).collect()),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(_) => $f::<slimc_runtime::runtime::device::CudaTrain>($($arg,)* specs.iter().map(|s| match s {
                DeviceSpec::Cuda(n) => burn::backend::cuda::CudaDevice::new(*n),
                other => unreachable!("{other} in a cuda list was refused by parse_devices"),
            }).collect()),
            #[cfg(feature = "wgpu")]
            DeviceSpec::Wgpu(_) => $f::<slimc_runtime::runtime::device::WgpuTrain>($($arg,)* specs.iter().map(|s| match s {
                DeviceSpec::Wgpu(a) => DeviceSpec::wgpu_device(*a),
                other => unreachable!("{other} in a wgpu list was refused by parse_devices"),
            }).collect()),
            #[allow(unreachable_patterns)]
            other => unreachable!("{other} was refused by parse_devices"),
        }
    }};
}
pub(crate) use on_devices;

/// `--data`: fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, imagefolder:DIR or
/// webdataset:DIR.
pub fn parse_data(s: &str) -> Result<slimc_runtime::data::DataSpec, String> {
    slimc_runtime::data::DataSpec::parse(s).map_err(|e| e.to_string())
}

/// A list of widths in (0, 1]: `0.25,0.5,1.0` or a range `START:END:STEP`. The one meaning
/// of every `--widths` flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Widths(pub Vec<f64>);

impl std::str::FromStr for Widths {
    type Err = String;
    fn from_str(s: &str) -> Result<Widths, String> {
        let bad = || format!("expected W1,W2,... or START:END:STEP with widths in (0, 1], got `{s}`");
        let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let ws: Vec<f64> = match s.split(':').collect::<Vec<_>>()[..] {
            [a, b, step] => {
                let (a, b, step) = (num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?, num(step).ok_or_else(bad)?);
                if step <= 0.0 || b < a || (b - a) / step > 10_000.0 {
                    return Err(bad());
                }
                let n = ((b - a) / step + 1e-9).floor() as usize;
                (0..=n).map(|i| ((a + i as f64 * step) * 1e9).round() / 1e9).collect()
            }
            [_] => s.split(',').map(|t| num(t).ok_or_else(bad)).collect::<Result<_, _>>()?,
            _ => return Err(bad()),
        };
        if ws.is_empty() || ws.iter().any(|&w| w <= 0.0 || w > 1.0) {
            return Err(bad());
        }
        Ok(Widths(ws))
    }
}

/// One width in (0, 1].
pub fn parse_width(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(w) if w > 0.0 && w <= 1.0 => Ok(w),
        _ => Err(format!("expected a width in (0, 1], got `{s}`")),
    }
}

/// `--scheme`: which widths each training step trains (`slimc train` and `slimc bench`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeArg {
    /// US-Nets: max, min and random widths, inplace distillation.
    Us,
    /// S-Nets: every width of --widths each step, one BN per width.
    S,
    /// One width (--width), plain training: a baseline.
    Fixed,
    /// Joslim: max, min and --random widths from a pool that Gaussian processes over
    /// validation loss and cost steer toward the Pareto front; inplace distillation.
    Joslim,
}

impl SchemeArg {
    /// The library's [`Scheme`] from the flag and the flags it reads: `--width` (fixed),
    /// `--widths` (the S-Nets switches, by default the paper's four), Joslim's settings.
    pub fn scheme(
        self,
        width: Option<f64>,
        widths: Option<&Widths>,
        joslim: impl FnOnce() -> Result<JoslimOptions, Failure>,
    ) -> Result<Scheme, Failure> {
        Ok(match self {
            SchemeArg::Us => Scheme::Us,
            SchemeArg::S => Scheme::S(widths.map_or_else(|| DEFAULT_SWITCHES.to_vec(), |w| w.0.clone())),
            SchemeArg::Fixed => Scheme::Fixed(width.ok_or_else(|| fail("--scheme fixed needs --width W"))?),
            SchemeArg::Joslim => Scheme::Joslim(joslim()?),
        })
    }
}

/// `--calibrate N` of eval, export and search: at least one batch, since a width's
/// accuracy needs BN statistics calibrated at that width.
pub fn parse_calibrate(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a number of batches, at least 1 (a width's accuracy needs BN statistics calibrated at that width), got `{s}`"
        )),
    }
}

/// `--normalize MEAN/STD`: the input normalisation pretrained weights expect, one value
/// for every channel or one per channel (`0.286/0.353`, `0.485,0.456,0.406/0.229,0.224,0.225`).
pub fn parse_normalize(s: &str) -> Result<slimc_runtime::data::Normalize, String> {
    let bad =
        || format!("expected MEAN/STD (comma-separated per channel, each std above 0), e.g. 0.286/0.353, got `{s}`");
    let list = |t: &str| -> Option<Vec<f32>> {
        t.split(',').map(|v| v.trim().parse::<f32>().ok().filter(|v| v.is_finite())).collect()
    };
    let (mean, std) = s.split_once('/').ok_or_else(bad)?;
    let (mean, std) = (list(mean).ok_or_else(bad)?, list(std).ok_or_else(bad)?);
    if mean.len() != std.len() || std.iter().any(|&v| v <= 0.0) {
        return Err(bad());
    }
    Ok(slimc_runtime::data::Normalize { mean, std })
}

/// `--bn-eps EPS`: a BN epsilon, finite and positive.
pub fn parse_bn_eps(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(eps) if eps.is_finite() && eps > 0.0 => Ok(eps),
        _ => Err(format!("expected a positive number, got `{s}`")),
    }
}

/// `--order none|l1|bn`: how `--init`'s channels are ranked (`none` keeps them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order(pub Option<Criterion>);

impl std::str::FromStr for Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Order, String> {
        match s {
            "none" => Ok(Order(None)),
            _ => s
                .parse::<Criterion>()
                .map(|c| Order(Some(c)))
                .map_err(|_| format!("expected none, l1 or bn, got `{s}`")),
        }
    }
}

/// `--init`'s tensors (read from `path`) under `net`'s layer names: a PyTorch `state_dict`
/// with its own module names is matched to the layers by structure (said on stderr).
pub fn matched(
    net: &Network,
    path: &Path,
    tensors: Vec<(String, HostTensor)>,
) -> Result<Vec<(String, HostTensor)>, Failure> {
    let (tensors, modules) = state_dict::by_structure(net, tensors, path).map_err(fail)?;
    say_matched(net, path, modules);
    Ok(tensors)
}

/// Says on stderr how many modules of the weights in `path` were matched to `net`'s
/// layers by structure (nothing when the file used the layers' names).
pub fn say_matched(net: &Network, path: &Path, modules: usize) {
    if modules > 0 {
        eprintln!(
            "{}: {modules} modules matched to the layers of `{}` by structure (the names are not the network's)",
            path.display(),
            net.name
        );
    }
}

/// `--init`'s tensors for `net`, with each search dimension's channels ranked by `order`;
/// says on stderr which dimensions were reordered and which kept their order, and why.
pub fn ordered(net: &Network, tensors: Vec<(String, HostTensor)>, order: Order) -> Vec<(String, HostTensor)> {
    let Order(Some(criterion)) = order else { return tensors };
    let (tensors, plan) = reorder(net, tensors, criterion);
    let moved = plan.dims.iter().filter(|d| d.is_some()).count();
    eprintln!(
        "channels ranked by {criterion}: {moved} of {} search dimensions reordered, {} kept in order",
        plan.dims.len(),
        plan.kept.len()
    );
    for (dim, why) in &plan.kept {
        eprintln!("  dimension {dim} kept: {why}");
    }
    tensors
}

/// A source file's bytes, bounded in size (`slimc_lang::read_source`).
pub fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    slimc_lang::read_source(path).map_err(|e| Failure::Usage(e.to_string()))
}

pub fn print_diagnostics(d: &Diagnostics) {
    use std::io::IsTerminal;
    let choice = if std::io::stderr().is_terminal() { ColorChoice::Auto } else { ColorChoice::Never };
    let mut stderr = StandardStream::stderr(choice);
    if d.emit(&mut stderr).is_err() {
        eprint!("{}", d.render());
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match d.counts() {
        (0, 0) => {}
        (0, w) => eprintln!("warning: `{}` has {}", d.path, count(w, "warning")),
        (e, 0) => eprintln!("error: could not compile `{}` due to {}", d.path, count(e, "error")),
        (e, w) => {
            eprintln!("error: could not compile `{}` due to {} ({})", d.path, count(e, "error"), count(w, "warning"))
        }
    }
}

/// Reads and compiles `file` and picks its network `network` (or its only one).
pub fn load_network(file: &Path, network: Option<&str>, options: &Options) -> Result<Network, Failure> {
    let bytes = read(file)?;
    compile_one(file, &bytes, network, options)
}

/// Compiles `bytes` (read from `file`) and picks the network to use.
pub fn compile_one(file: &Path, bytes: &[u8], network: Option<&str>, options: &Options) -> Result<Network, Failure> {
    let shown = file.display().to_string();
    let checked = slimc_lang::check_bytes(bytes, &shown, options);
    let all = checked.diagnostics(false);
    if !all.items.is_empty() {
        print_diagnostics(&all);
    }
    let nets = checked.networks.map_err(|_| Failure::Input)?;
    slimc_lang::pick_network(nets, network).map_err(|e| Failure::Usage(format!("{shown}: {e}")))
}

/// The channels a configuration reference names (`FILE#TARGET`; the library's one reader
/// for `export --config` and `search --from`, as for `eval --configs`).
pub fn configured(reference: &str, net: &Network) -> Result<Vec<u32>, Failure> {
    use slimc_runtime::train::configs::{channels, ConfigRef};
    channels(&ConfigRef::parse(reference), net).map_err(fail)
}
