//! `slimc space FILE` and `slimc cost FILE` at a width: the derived search space and
//! every layer's channels, MACs and parameters (table or `--json`), or just the totals.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use slimc_lang::cost::{self, human};
use slimc_lang::ir::{self, Network};

use super::{load_network, CompileArgs, Failure};

#[derive(Args)]
pub struct WidthArgs {
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

/// A network decoded at one width: everything `space` and `cost` print.
struct AtWidth {
    net: Network,
    wm: Vec<f64>,
    dims: Vec<u32>,
    shapes: Vec<ir::LayerShape>,
    per: Vec<cost::Cost>,
    total: cost::Cost,
}

pub fn run(args: &WidthArgs, cost_only: bool) -> Result<(), Failure> {
    let net = load_network(&args.file, args.network.as_deref(), &args.compile.options())?;
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

/// The human-readable table; columns are as wide as their longest entry.
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
    let name_w = net.compute_layers().map(|(_, l)| l.name.len()).chain([5]).max().unwrap_or(5);
    let op_w = net.compute_layers().map(|(_, l)| l.op.kind().len()).chain([2]).max().unwrap_or(2);
    let _ = writeln!(
        s,
        "\n{:<name_w$} {:<op_w$} {:>5} {:>5} {:>6} {:>3}/{:<2} {:>9} {:>12} {:>10}",
        "layer", "op", "in", "out", "groups", "k", "s", "out_hw", "MACs", "params"
    );
    for (id, l) in net.compute_layers() {
        let sh = shapes[id.index()];
        let _ = writeln!(
            s,
            "{:<name_w$} {:<op_w$} {:>5} {:>5} {:>6} {:>3}/{:<2} {:>9} {:>12} {:>10}",
            l.name,
            l.op.kind(),
            sh.in_c,
            sh.out,
            sh.groups,
            l.op.kernel()[0],
            l.op.stride()[0],
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
