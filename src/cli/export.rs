//! `slimc export RUN --config (W | W1,W2,… | FILE#TARGET) --format burn|safetensors|onnx
//! -o OUT [--fold-bn]`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::json;

use slimc_lang::cost::human;
use slimc_runtime::data::DataSpec;
use slimc_runtime::export::{self, ExtractOptions, Format, Subnet};
use slimc_runtime::runtime::{SlimBackend, SlimNet, WidthConfig};
use slimc_runtime::train::eval::open;

use super::{fail, parse_data, parse_device, Device, Failure, LoaderArgs, Widths};

/// The file format written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A Burn record of plain `burn::nn` layers: OUT.mpk + OUT.json.
    Burn,
    /// PyTorch names and layouts, with the layer table in the metadata.
    Safetensors,
    /// ONNX opset 17.
    Onnx,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A run directory (from `slimc train`) or a checkpoint directory.
    path: PathBuf,
    /// The width: one multiplier (0.5), one per search dimension (0.5,1,0.75,…), a
    /// `slimc search` result and target (search.json#50% or #20M; the file alone when it
    /// holds one configuration), or a `slimc eval --pareto` front and a MAC budget
    /// (pareto.json#20M: its most accurate configuration within 20M MACs).
    #[arg(long)]
    config: String,
    #[arg(long, value_enum)]
    format: FormatArg,
    /// The file to write.
    #[arg(short, long)]
    out: PathBuf,
    /// Fold each BN into the conv before it (scale the weights, add a bias).
    #[arg(long)]
    fold_bn: bool,
    /// BN calibration batches (training images, cumulative average) at the chosen width.
    #[arg(long, default_value_t = 10, value_parser = super::parse_calibrate)]
    calibrate: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Calibrate on another copy of the data set (default: the one the run trained on).
    #[arg(long, value_parser = parse_data)]
    data: Option<DataSpec>,
    /// cpu, cuda[:N], wgpu[:N], wgpu:integrated[:N] or wgpu:cpu (for calibration).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    #[command(flatten)]
    loader: LoaderArgs,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &ExportArgs) -> Result<(), Failure> {
    a.loader.apply(&a.device.spec)?;
    on_device!(a.device.spec, infer, go(a))
}

fn go<B: SlimBackend>(a: &ExportArgs, dev: B::Device) -> Result<(), Failure> {
    let format = match a.format {
        FormatArg::Burn => Format::Burn,
        FormatArg::Safetensors => Format::Safetensors,
        FormatArg::Onnx => Format::Onnx,
    };
    if a.batch == 0 {
        return Err(Failure::Usage("--batch must be at least 1".into()));
    }
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(Failure::Usage(format!("{} does not exist", parent.display())));
        }
    }
    let l = open::<B>(&a.path, a.data.as_ref(), &dev).map_err(fail)?;
    let cfg = config(&a.config, &l.model)?;
    let opts = ExtractOptions { batch: a.batch, calibrate: a.calibrate, fold_bn: a.fold_bn };
    let (subnet, folded) = Subnet::of_run(&l, &cfg, opts, &dev).map_err(fail)?;
    let written = match format {
        Format::Onnx => write(&a.out, &export::onnx::to_bytes(&subnet))?,
        Format::Safetensors => write(&a.out, &export::safetensors::to_bytes(&subnet).map_err(fail)?)?,
        Format::Burn => {
            let mpk = export::burn::save(&subnet, &l.meta, &a.out).map_err(fail)?;
            vec![mpk.clone(), export::burn::meta_path(&mpk)]
        }
    };
    let bytes: u64 = written.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let info = &subnet.info;
    if a.json {
        let doc = json!({
            "files": written, "format": format_name(a.format), "bytes": bytes, "network": info.network,
            "channels": info.channels, "wm": info.wm, "macs": info.macs, "params": info.params,
            "bn_folded": folded, "calibrate": a.calibrate,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {} ({}, {})", files.join(" + "), format_name(a.format), size(bytes));
    println!("{} at channels {:?}", info.network, info.channels);
    println!("{} MACs, {} params", human(info.macs), human(info.params));
    println!(
        "BN: calibrated on {} batches{}",
        a.calibrate,
        if a.fold_bn { format!(", {folded} folded into convs") } else { String::new() }
    );
    println!(
        "input: [N, {}, {}, {}], normalised per channel (mean {:?}, std {:?})",
        l.model.net.input[0], l.model.net.input[1], l.model.net.input[2], info.input_mean, info.input_std
    );
    Ok(())
}

fn format_name(f: FormatArg) -> String {
    f.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
}

fn write(path: &Path, bytes: &[u8]) -> Result<Vec<PathBuf>, Failure> {
    slimc_lang::write_output(path, bytes, slimc_lang::FileKind::Weights).map_err(fail)?;
    Ok(vec![path.to_path_buf()])
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// `--config`: a uniform multiplier, one multiplier per dimension, or `FILE#TARGET`.
fn config<B: SlimBackend>(s: &str, model: &SlimNet<B>) -> Result<WidthConfig, Failure> {
    let net = &model.net;
    if s.contains('#') || Path::new(s).is_file() {
        return super::configured(s, net).map(WidthConfig::new);
    }
    let ws = s.parse::<Widths>().map(|w| w.0).map_err(|_| {
        Failure::Usage(format!(
            "--config takes a width (0.5), one width per search dimension ({} values), or FILE#TARGET, not `{s}`",
            net.space.search_dim()
        ))
    })?;
    match ws[..] {
        [w] => model.uniform(w).map_err(fail),
        _ if !model.switches.is_empty() => {
            Err(Failure::Usage("this run has one BN per width switch: --config must be one of its widths".into()))
        }
        _ if ws.len() != net.space.search_dim() => Err(Failure::Usage(format!(
            "--config has {} widths, {} has {} search dimensions",
            ws.len(),
            net.name,
            net.space.search_dim()
        ))),
        _ => Ok(WidthConfig::new(net.space.decode(&ws, net.rounding).map_err(fail)?)),
    }
}
