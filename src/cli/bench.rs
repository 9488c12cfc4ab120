//! `slimc bench FILE`: training-step and per-width inference throughput on synthetic data.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::{json, Value};

use slimc_lang::ir::Network;
use slimc_runtime::data::{self, DataSpec, Normalize, Split};
use slimc_runtime::runtime::SlimAutodiff;
use slimc_runtime::train::bench::{self, BenchOptions, BenchReport};
use slimc_runtime::train::joslim::JoslimOptions;
use slimc_runtime::train::parallel::Cluster;
use slimc_runtime::train::TrainError;

use super::{
    fail, load_network, on_devices, parse_data, parse_device, parse_devices, parse_width, CompileArgs, Device, Devices,
    Failure, LoaderArgs, SchemeArg, Widths,
};

#[derive(Args)]
pub struct BenchArgs {
    file: PathBuf,
    /// Which network of the file (needed when it holds several).
    #[arg(long)]
    network: Option<String>,
    /// cpu, cuda[:N], wgpu[:N], wgpu:integrated[:N] or wgpu:cpu (the software adapter).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    #[command(flatten)]
    loader: LoaderArgs,
    /// Also time data-parallel training on these devices (cpu:0,cpu:1 splits the cores;
    /// cuda:0,cuda:1,…), --batch split over them, against one device (the first).
    #[arg(long, conflicts_with = "device", value_parser = parse_devices)]
    devices: Option<Devices>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Timed steps (after two warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// The training step to time: us, s, fixed or joslim (its sandwich over the prior pool),
    /// each as `slimc train --scheme` trains it.
    #[arg(long, value_enum, default_value_t = SchemeArg::Us)]
    scheme: SchemeArg,
    /// The width trained by --scheme fixed.
    #[arg(long, value_parser = parse_width)]
    width: Option<f64>,
    /// Widths whose inference is timed, W1,W2,... or START:END:STEP; with --scheme s, also
    /// the switches trained [default: 0.25,0.5,0.75,1.0; with --scheme fixed, its width].
    #[arg(long)]
    widths: Option<Widths>,
    /// Also time the data loader on this data set (fashion-mnist[:DIR], mnist:DIR,
    /// cifar10:DIR, cifar100:DIR, imagefolder:DIR or webdataset:DIR): alone, training's
    /// batches of --batch with its default augmentation for 50 batches; then the training
    /// step fed by it, for --steps steps.
    #[arg(long, value_parser = parse_data)]
    data: Option<DataSpec>,
    #[command(flatten)]
    compile: CompileArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Batches the loader benchmark times.
const LOADER_BATCHES: usize = 50;

/// `slimc bench` on one backend: a freshly initialised model of `net`.
fn bench_on<B: SlimAutodiff>(
    net: Arc<Network>,
    device_name: String,
    opts: &BenchOptions,
    dev: B::Device,
) -> Result<BenchReport, TrainError> {
    bench::run::<B>(net, &dev, device_name, opts)
}

/// Training images per second fed by the data loader.
fn fed_on<B: SlimAutodiff>(
    net: Arc<Network>,
    split: &Split,
    norm: &Normalize,
    augment: data::Augment,
    opts: &BenchOptions,
    dev: B::Device,
) -> Result<f64, TrainError> {
    bench::fed::<B>(net, &dev, split, norm, augment, opts)
}

/// The data-parallel figure of `slimc bench --devices`: training images per second.
fn data_parallel_on<B: SlimAutodiff>(
    net: Arc<Network>,
    opts: &BenchOptions,
    threads: Option<usize>,
    devs: Vec<B::Device>,
) -> Result<f64, TrainError> {
    bench::data_parallel::<B>(net, devs, threads, opts)
}

pub fn run(a: &BenchArgs) -> Result<(), Failure> {
    if a.batch == 0 || a.steps == 0 {
        return Err(Failure::Usage("--batch and --steps must be at least 1".into()));
    }
    if a.width.is_some() && a.scheme != SchemeArg::Fixed {
        return Err(Failure::Usage("--width goes with --scheme fixed".into()));
    }
    a.loader.apply(a.devices.as_ref().map_or(&a.device.spec, |d| &d.specs[0]))?;
    let scheme = a.scheme.scheme(a.width, a.widths.as_ref(), || Ok(JoslimOptions::default()))?;
    scheme.validate().map_err(|e| Failure::Usage(e.problem))?;
    let net = Arc::new(load_network(&a.file, a.network.as_deref(), &a.compile.options())?);
    let infer_widths = a.widths.as_ref().map(|w| w.0.clone());
    let opts = BenchOptions { batch: a.batch, steps: a.steps, warmup: 2, scheme, infer_widths };
    let (spec, name) = match &a.devices {
        Some(d) => (d.specs[0], d.specs[0].describe().map_err(fail)?),
        None => (a.device.spec, a.device.name.clone()),
    };
    if let Some(d) = &a.devices {
        // Refused before the one-device run, not after it.
        let cluster = Cluster::local(d.specs.len(), std::time::Duration::MAX);
        cluster.check_batch(a.batch).map_err(|e| Failure::Usage(format!("{e}; choose a --batch that they divide")))?;
    }
    // The data set is read before the timed runs, so a missing one fails at once.
    let loader = match &a.data {
        None => None,
        Some(spec) => {
            let size = net.input[1] as usize;
            let set = data::load(spec, size, DataSpec::eval_resize(size)).map_err(fail)?;
            let augment = spec.augment(size);
            let split = Split::all(set.train.clone());
            // Measured once, for both timings (for photographs it decodes up to 10,000).
            let norm = Normalize::measure(&split).map_err(fail)?;
            let ips = bench::loader(&split, &norm, augment, a.batch, LOADER_BATCHES).map_err(fail)?;
            // The step fed by the loader, where the network takes these images.
            let fits = set.shape() == net.input.map(|v| v as usize);
            Some((spec, ips, fits.then_some((split, norm, augment))))
        }
    };
    let report = on_device!(spec, train, bench_on(net.clone(), name, &opts)).map_err(fail)?;
    let fed = match &loader {
        Some((_, _, Some((split, norm, augment)))) => {
            Some(on_device!(spec, train, fed_on(net.clone(), split, norm, *augment, &opts)).map_err(fail)?)
        }
        _ => None,
    };
    let parallel = match &a.devices {
        None => None,
        Some(d) => {
            let img_per_s = on_devices!(&d.specs, data_parallel_on(net, &opts, d.cpu_threads())).map_err(fail)?;
            Some((d, img_per_s))
        }
    };
    if a.json {
        let infer: serde_json::Map<String, Value> =
            report.infer_img_per_s.iter().map(|t| (format!("{}", t.width), json!(t.img_per_s))).collect();
        let doc = json!({
            "network": report.network, "device": report.device, "batch": report.batch, "steps": report.steps,
            "widths": report.widths, "img_per_s": report.train_img_per_s, "train_img_per_s": report.train_img_per_s,
            "step_s": report.step_s, "infer_img_per_s": infer,
            "data_parallel": parallel.as_ref().map(|(d, ips)| json!({
                "devices": d.specs.len(), "train_img_per_s": ips, "scaling": ips / report.train_img_per_s,
            })),
            "loader": loader.as_ref().map(|(spec, ips, _)| json!({
                "data": spec.to_string(), "workers": data::workers(), "img_per_s": ips,
                "train_fed_img_per_s": fed,
                "fed_vs_synthetic": fed.map(|f| f / report.train_img_per_s),
            })),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("{} on {}, batch {}, {} timed steps", report.network, report.device, report.batch, report.steps);
        println!("train ({}): {:.1} img/s ({:.3} s/step)", report.widths, report.train_img_per_s, report.step_s);
        for t in &report.infer_img_per_s {
            println!("inference at width {:<5} {:.1} img/s", t.width, t.img_per_s);
        }
        if let Some((spec, ips, _)) = &loader {
            println!(
                "loader alone ({spec}, training's augmentation, {} workers): {ips:.1} img/s, {:.1}x training",
                data::workers(),
                ips / report.train_img_per_s
            );
            match fed {
                Some(f) => println!(
                    "train fed by the loader: {f:.1} img/s, {:.2}x training on one synthetic batch",
                    f / report.train_img_per_s
                ),
                None => println!("(the network does not take these images: the step fed by the loader is not timed)"),
            }
        }
        if let Some((d, ips)) = &parallel {
            println!(
                "data-parallel train on {}: {:.1} img/s, {:.2}x one device",
                d.name,
                ips,
                ips / report.train_img_per_s
            );
        }
    }
    Ok(())
}
