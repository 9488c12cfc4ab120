//! `slimc check FILE... [--json]`: diagnostics on stderr, one summary line per network.
//! Every file is reported, readable or not; an unreadable one makes the exit code 2,
//! one with errors 1.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use slimc::cost::{self, human};

use super::{print_diagnostics, CompileArgs, Failure};

#[derive(Args)]
pub struct CheckArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    compile: CompileArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &CheckArgs) -> Result<(), Failure> {
    let options = a.compile.options();
    let mut docs = Vec::new();
    let (mut unreadable, mut failed) = (0usize, false);
    for path in &a.files {
        let shown = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                let msg = format!("cannot read {shown}: {e}");
                if a.json {
                    docs.push(json!({"file": shown, "ok": false, "read_error": msg, "networks": [], "errors": []}));
                } else {
                    eprintln!("error: {msg}");
                }
                unreadable += 1;
                continue;
            }
        };
        match slimc::compile_bytes(&bytes, &shown, &options) {
            Ok(nets) => {
                let mut summaries = Vec::new();
                for net in &nets {
                    let (total, _) = cost::cost(net, &net.full_width());
                    if !a.json {
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
                if a.json {
                    let errors: Vec<Value> = d.items.iter().map(|i| json!({"code": i.code, "message": i.message, "start": i.position().start, "end": i.position().end})).collect();
                    docs.push(
                        json!({"file": shown, "ok": false, "networks": [], "errors": errors, "rendered": d.render()}),
                    );
                } else {
                    print_diagnostics(&d);
                }
                failed = true;
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json!({"files": docs})).unwrap_or_default());
    }
    if unreadable > 0 {
        // Each was named above (or in the JSON document); the exit code says the rest.
        let n = unreadable;
        return Err(Failure::Usage(format!("{n} file{} could not be read", if n == 1 { "" } else { "s" })));
    }
    if failed {
        return Err(Failure::Input);
    }
    Ok(())
}
