//! The `slimc` command line: the only place that prints or exits.
//! Exit codes: 0 success, 1 the input has errors, 2 usage or IO error.

#[macro_use]
mod cli;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
use serde_json::{json, Value};

use slimc::cost::{self, human};
use slimc::ir::{self, Network, ParamValue, Rounding};
use slimc::{Diagnostics, Options};

#[derive(Parser)]
#[command(name = "slimc", version, about = "Compiler for slimmable neural networks (.slim files)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check files and print diagnostics; one summary line per network.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        compile: CompileArgs,
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show the derived search space and every layer's channels at a width.
    Space(WidthArgs),
    /// MACs and parameters at a width.
    Cost(WidthArgs),
    /// Training-step (sandwich rule) and per-width inference throughput on synthetic data.
    Bench(BenchArgs),
    /// Train a slimmable network on a data set (US-Nets, S-Nets or one fixed width).
    Train(Box<cli::train::TrainArgs>),
    /// Accuracy, MACs and parameters of a trained network at many widths.
    Eval(cli::eval::EvalArgs),
    /// AutoSlim greedy search for the best configuration at target MACs.
    Search(cli::search::SearchArgs),
    /// A fixed-width subnet as a standalone model: Burn record, safetensors or ONNX.
    Export(cli::export::ExportArgs),
    /// Rust source of a Burn module for a network (a struct per block kind, any width).
    Emit(EmitArgs),
}

#[derive(Args)]
struct EmitArgs {
    file: PathBuf,
    /// Which network of the file (needed when it holds several).
    #[arg(long)]
    network: Option<String>,
    /// Write the source here instead of standard output.
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    compile: CompileArgs,
}

#[derive(Args)]
struct BenchArgs {
    file: PathBuf,
    /// Which network of the file (needed when it holds several).
    #[arg(long)]
    network: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Timed steps (after two warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// `sandwich` (max, min, 2 random widths, inplace distillation) or one width W.
    #[arg(long, default_value = "sandwich")]
    widths: String,
    #[command(flatten)]
    compile: CompileArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct CompileArgs {
    /// Override the network's rounding policy: floor, nearest, make_divisible(8).
    #[arg(long, value_name = "POLICY")]
    rounding: Option<String>,
    /// Set a network parameter, e.g. --set classes=100 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct WidthArgs {
    file: PathBuf,
    /// Which network of the file (needed when it holds several).
    #[arg(long)]
    network: Option<String>,
    /// One width multiplier for every search dimension (default 1.0).
    #[arg(long, conflicts_with = "wm")]
    width: Option<f64>,
    /// One width multiplier per search dimension, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "W1,W2,...")]
    wm: Option<Vec<f64>>,
    #[command(flatten)]
    compile: CompileArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// A failure that ends the command with its exit code.
enum Failure {
    /// Diagnostics were printed: exit 1.
    Input,
    /// Usage or IO: exit 2, with the message.
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, compile, json } => check(&files, &compile, json),
        Command::Space(args) => space(&args, false),
        Command::Cost(args) => space(&args, true),
        Command::Bench(args) => bench(&args),
        Command::Train(args) => cli::train::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Search(args) => cli::search::run(&args),
        Command::Export(args) => cli::export::run(&args),
        Command::Emit(args) => emit(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input) => ExitCode::from(1),
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn options(args: &CompileArgs) -> Result<Options, Failure> {
    let rounding = match &args.rounding {
        None => None,
        Some(s) => Some(Rounding::parse(s).ok_or_else(|| {
            Failure::Usage(format!("unknown rounding policy `{s}`; use floor, nearest or make_divisible(8)"))
        })?),
    };
    let mut settings = Vec::new();
    for kv in &args.set {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Failure::Usage(format!("--set expects NAME=VALUE, got `{kv}`")));
        };
        let value = if let Ok(i) = v.parse::<i64>() {
            ParamValue::Int(i)
        } else if let Some(f) = v.parse::<f64>().ok().filter(|f| f.is_finite()) {
            ParamValue::Float(f)
        } else if let Ok(b) = v.parse::<bool>() {
            ParamValue::Bool(b)
        } else {
            return Err(Failure::Usage(format!("--set {k}: `{v}` is not a number or a boolean")));
        };
        settings.push((k.trim().to_string(), value));
    }
    Ok(Options { settings, rounding })
}

fn read(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}

/// Every `--set` name must be a parameter of the networks it applies to.
fn check_settings(bytes: &[u8], options: &Options, network: Option<&str>) -> Result<(), Failure> {
    let Some(nets) = std::str::from_utf8(bytes).ok().and_then(slimc::network_params) else { return Ok(()) };
    for (name, _) in &options.settings {
        let known = nets.iter().filter(|(n, _)| network.is_none_or(|w| w == n)).any(|(_, ps)| ps.contains(name));
        if !known && !nets.is_empty() {
            let all: Vec<&str> = nets.iter().flat_map(|(_, ps)| ps.iter().map(String::as_str)).collect();
            return Err(Failure::Usage(format!(
                "--set {name}: no such network parameter (parameters: {})",
                all.join(", ")
            )));
        }
    }
    Ok(())
}

fn print_diagnostics(d: &Diagnostics) {
    use std::io::IsTerminal;
    let choice = if std::io::stderr().is_terminal() { ColorChoice::Auto } else { ColorChoice::Never };
    let mut stderr = StandardStream::stderr(choice);
    if d.emit(&mut stderr).is_err() {
        eprint!("{}", d.render());
    }
    let n = d.items.len();
    eprintln!("error: could not compile `{}` due to {n} error{}", d.path, if n == 1 { "" } else { "s" });
}

fn check(files: &[PathBuf], args: &CompileArgs, json: bool) -> Result<(), Failure> {
    let options = options(args)?;
    let mut failed = false;
    let mut docs = Vec::new();
    for path in files {
        let bytes = read(path)?;
        check_settings(&bytes, &options, None)?;
        let shown = path.display().to_string();
        match slimc::compile_bytes(&bytes, &shown, &options) {
            Ok(nets) => {
                let mut summaries = Vec::new();
                for net in &nets {
                    let (total, _) = cost::cost(net, &net.full_width());
                    if !json {
                        println!(
                            "{shown}: {}: ok, {} search dimensions, {} layers, {} MACs, {} params at full width",
                            net.name,
                            net.space.search_dim(),
                            net.compute_layers().count(),
                            human(total.macs),
                            human(total.params)
                        );
                    }
                    summaries.push(json!({"network": net.name, "search_dim": net.space.search_dim(), "macs": total.macs, "params": total.params}));
                }
                docs.push(json!({"file": shown, "ok": true, "networks": summaries, "errors": []}));
            }
            Err(d) => {
                failed = true;
                if json {
                    let errors: Vec<Value> = d.items.iter().map(|i| json!({"code": i.code, "message": i.message, "start": i.position().start, "end": i.position().end})).collect();
                    docs.push(
                        json!({"file": shown, "ok": false, "networks": [], "errors": errors, "rendered": d.render()}),
                    );
                } else {
                    print_diagnostics(&d);
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({"files": docs})).unwrap_or_default());
    }
    if failed {
        Err(Failure::Input)
    } else {
        Ok(())
    }
}

fn load(args: &WidthArgs) -> Result<Network, Failure> {
    load_network(&args.file, args.network.as_deref(), &args.compile)
}

fn load_network(file: &PathBuf, network: Option<&str>, compile: &CompileArgs) -> Result<Network, Failure> {
    let options = options(compile)?;
    let bytes = read(file)?;
    compile_one(file, &bytes, network, &options)
}

/// Compiles `bytes` (read from `file`) and picks the network to use.
fn compile_one(
    file: &std::path::Path,
    bytes: &[u8],
    network: Option<&str>,
    options: &Options,
) -> Result<Network, Failure> {
    check_settings(bytes, options, network)?;
    let shown = file.display().to_string();
    let nets = slimc::compile_bytes(bytes, &shown, options).map_err(|d| {
        print_diagnostics(&d);
        Failure::Input
    })?;
    let names: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
    let pick = match network {
        Some(name) => nets.iter().position(|n| n.name == name).ok_or_else(|| {
            Failure::Usage(format!("{shown} has no network `{name}` (networks: {})", names.join(", ")))
        })?,
        None if nets.len() == 1 => 0,
        None if nets.is_empty() => return Err(Failure::Usage(format!("{shown} defines no network"))),
        None => {
            return Err(Failure::Usage(format!(
                "{shown} has several networks; pick one with --network ({})",
                names.join(", ")
            )))
        }
    };
    Ok(nets.into_iter().nth(pick).expect("index checked above"))
}

/// A network decoded at one width: everything `space` and `cost` print.
struct AtWidth {
    net: Network,
    wm: Vec<f64>,
    dims: Vec<u32>,
    shapes: Vec<ir::LayerShape>,
    per: Vec<cost::Cost>,
    total: cost::Cost,
}

fn space(args: &WidthArgs, cost_only: bool) -> Result<(), Failure> {
    let net = load(args)?;
    let wm = match (&args.wm, args.width) {
        (Some(wm), _) => wm.clone(),
        (None, w) => net.space.uniform(w.unwrap_or(1.0)),
    };
    let dims = net.space.decode(&wm, net.rounding).map_err(|e| Failure::Usage(e.to_string()))?;
    let shapes = net.layer_shapes(&dims);
    let (total, per) = cost::cost_of_shapes(&net, &shapes);
    let at = AtWidth { net, wm, dims, shapes, per, total };
    let text = if args.json {
        let doc = if cost_only {
            json!({"network": at.net.name, "wm": at.wm, "channels": at.dims, "macs": total.macs, "params": total.params})
        } else {
            space_json(&at)
        };
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else if cost_only {
        format!(
            "{}: {} MACs ({}), {} params ({})\n",
            at.net.name,
            total.macs,
            human(total.macs),
            total.params,
            human(total.params)
        )
    } else {
        space_table(&at)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

fn space_json(at: &AtWidth) -> Value {
    let net = &at.net;
    let stages = net.space.stages;
    let dim_docs: Vec<Value> = net
        .space
        .dims
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let layers: Vec<&str> = d.layers.iter().map(|l| net.layers[*l].name.as_str()).collect();
            json!({"index": i, "base": d.base, "stage": d.section.index(stages), "divisor": d.divisor, "layers": layers})
        })
        .collect();
    let layers: Vec<Value> = net
        .compute_layers()
        .map(|(id, l)| {
            let s = at.shapes[id.index()];
            let c = at.per[id.index()];
            json!({
                "name": l.name, "op": l.op.kind(), "in": s.in_c, "out": s.out, "groups": s.groups,
                "kernel": l.op.kernel(), "stride": l.op.stride(), "out_hw": l.hw,
                "macs": c.macs, "params": c.params, "width": ir::dump::width(&l.width),
            })
        })
        .collect();
    // `params` is the contract's name for the total; the network's parameters are `settings`.
    let settings: serde_json::Map<String, Value> = net.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "network": net.name,
        "settings": settings,
        "input": net.input,
        "rounding": net.rounding.to_string(),
        "search_dim": net.space.search_dim(),
        "channel_space": net.space.channel_space(),
        "dims": dim_docs,
        "wm": at.wm,
        "channels": at.dims,
        "layers": layers,
        "macs": at.total.macs,
        "params": at.total.params,
    })
}

fn space_table(at: &AtWidth) -> String {
    use std::fmt::Write as _;
    let AtWidth { net, wm, dims, shapes, per, total } = at;
    let mut s = String::new();
    let [c, h, w] = net.input;
    let _ = writeln!(s, "network {}  input {c}x{h}x{w}  rounding {}", net.name, net.rounding);
    let settings: Vec<String> = net.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(s, "parameters  {}", settings.join(" "));
    let _ = writeln!(s, "search_dim  {}", net.space.search_dim());
    let _ = writeln!(s, "channel_space  {}", ir::dump::channel_space(&net.space.channel_space()));
    let _ = writeln!(s, "\n{:>4}  {:<7} {:>5} {:>5} {:>5} {:>7}  sets", "dim", "section", "base", "w", "ch", "divisor");
    for (i, d) in net.space.dims.iter().enumerate() {
        let sets: Vec<&str> = d.layers.iter().take(3).map(|l| net.layers[*l].name.as_str()).collect();
        let more = if d.layers.len() > 3 { format!(" (+{})", d.layers.len() - 3) } else { String::new() };
        let _ = writeln!(
            s,
            "{:>4}  {:<7} {:>5} {:>5.3} {:>5} {:>7}  {}{more}",
            i,
            ir::dump::section(d.section),
            d.base,
            wm[i],
            dims[i],
            d.divisor,
            sets.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\n{:<34} {:<8} {:>5} {:>5} {:>6} {:>3}/{:<2} {:>9} {:>12} {:>10}",
        "layer", "op", "in", "out", "groups", "k", "s", "out_hw", "MACs", "params"
    );
    for (id, l) in net.compute_layers() {
        let sh = shapes[id.index()];
        let k = l.op.kernel();
        let st = l.op.stride();
        let _ = writeln!(
            s,
            "{:<34} {:<8} {:>5} {:>5} {:>6} {:>3}/{:<2} {:>9} {:>12} {:>10}",
            l.name,
            l.op.kind(),
            sh.in_c,
            sh.out,
            sh.groups,
            k[0],
            st[0],
            format!("{}x{}", l.hw[0], l.hw[1]),
            per[id.index()].macs,
            per[id.index()].params
        );
    }
    let _ = writeln!(
        s,
        "\ntotal  {} MACs ({})  {} params ({})",
        total.macs,
        human(total.macs),
        total.params,
        human(total.params)
    );
    s
}

/// `slimc bench` on one backend: a freshly initialised model of `net`.
fn bench_on<B: slimc::runtime::SlimAutodiff>(
    net: std::sync::Arc<Network>,
    device_name: String,
    opts: &slimc::runtime::bench::BenchOptions,
    dev: B::Device,
) -> Result<slimc::runtime::bench::BenchReport, slimc::runtime::RuntimeError> {
    let model = slimc::runtime::SlimNet::<B>::new(net, Vec::new(), 0, &dev);
    slimc::runtime::bench::run(model, &dev, device_name, opts)
}

fn bench(args: &BenchArgs) -> Result<(), Failure> {
    use slimc::runtime::bench::{BenchOptions, BenchWidths};
    let device = cli::device(&args.device)?;
    if args.batch == 0 || args.steps == 0 {
        return Err(Failure::Usage("--batch and --steps must be at least 1".into()));
    }
    let widths = match args.widths.as_str() {
        "sandwich" => BenchWidths::Sandwich,
        w => match w.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 1.0 => BenchWidths::Fixed(v),
            _ => return Err(Failure::Usage(format!("--widths takes `sandwich` or a width in (0, 1], got `{w}`"))),
        },
    };
    let infer_widths = match widths {
        BenchWidths::Sandwich => vec![0.25, 0.5, 0.75, 1.0],
        BenchWidths::Fixed(w) => vec![w],
    };
    let net = std::sync::Arc::new(load_network(&args.file, args.network.as_deref(), &args.compile)?);
    let opts = BenchOptions { batch: args.batch, steps: args.steps, warmup: 2, widths, infer_widths };
    let report = on_device!(device, CpuTrain, GpuTrain, bench_on(net, device.to_string(), &opts))
        .map_err(|e| Failure::Usage(e.to_string()))?;
    if args.json {
        let infer: serde_json::Map<String, Value> =
            report.infer_img_per_s.iter().map(|t| (format!("{}", t.width), json!(t.img_per_s))).collect();
        let doc = json!({
            "network": report.network, "device": report.device, "batch": report.batch, "steps": report.steps,
            "widths": report.widths, "img_per_s": report.train_img_per_s, "train_img_per_s": report.train_img_per_s,
            "step_s": report.step_s, "infer_img_per_s": infer,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("{} on {}, batch {}, {} timed steps", report.network, report.device, report.batch, report.steps);
        println!("train ({}): {:.1} img/s ({:.3} s/step)", report.widths, report.train_img_per_s, report.step_s);
        for t in &report.infer_img_per_s {
            println!("inference at width {:<5} {:.1} img/s", t.width, t.img_per_s);
        }
    }
    Ok(())
}

fn emit(args: &EmitArgs) -> Result<(), Failure> {
    let net = load_network(&args.file, args.network.as_deref(), &args.compile)?;
    let code = slimc::emit::emit(&net, &args.file.display().to_string()).map_err(|e| Failure::Usage(e.to_string()))?;
    match &args.out {
        Some(path) => {
            slimc::runtime::checkpoint::write_atomic(path, code.as_bytes())
                .map_err(|e| Failure::Usage(e.to_string()))?;
            eprintln!("wrote {} ({} lines)", path.display(), code.lines().count());
        }
        None => print!("{code}"),
    }
    Ok(())
}
