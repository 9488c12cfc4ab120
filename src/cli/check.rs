//! `slimc check FILE... [--json] [--deny warnings]`: diagnostics on stderr, one summary
//! line per network. Every file is reported, readable or not; an unreadable one makes the
//! exit code 2, one with errors (or warnings, when denied) 1.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use slimc_lang::cost::{self, human};

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
    /// `--deny warnings`: warnings become errors (exit 1).
    #[arg(long, value_name = "warnings")]
    deny: Option<Deny>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Deny {
    Warnings,
}

/// The `--json` entries of the diagnostics of one severity.
fn entries(d: &slimc_lang::Diagnostics, severity: slimc_lang::Severity) -> Vec<Value> {
    let name = if severity == slimc_lang::Severity::Warning { "warning" } else { "error" };
    let entry = |i: &slimc_lang::Diagnostic| json!({"code": i.code, "severity": name, "message": i.message, "start": i.position().start, "end": i.position().end});
    d.items.iter().filter(|i| i.severity == severity).map(entry).collect()
}

pub fn run(a: &CheckArgs) -> Result<(), Failure> {
    let options = a.compile.options();
    let mut docs = Vec::new();
    let (mut unreadable, mut failed) = (0usize, false);
    for path in &a.files {
        let shown = path.display().to_string();
        let bytes = match slimc_lang::read_source(path) {
            Ok(b) => b,
            Err(e) => {
                let msg = e.to_string();
                if a.json {
                    docs.push(json!({"file": shown, "ok": false, "read_error": msg, "networks": [], "errors": []}));
                } else {
                    eprintln!("error: {msg}");
                }
                unreadable += 1;
                continue;
            }
        };
        let checked = slimc_lang::check_bytes(&bytes, &shown, &options);
        let all = checked.diagnostics(a.deny.is_some());
        let (errors, warnings) = all.counts();
        let (warning, error) = (slimc_lang::Severity::Warning, slimc_lang::Severity::Error);
        match checked.networks {
            // Other commands refuse such a file ("defines no network"); say it here too.
            Ok(nets) if errors == 0 && nets.is_empty() => {
                let msg = format!("{shown} defines no network");
                if a.json {
                    docs.push(json!({"file": shown, "ok": false, "networks": [], "errors": [{"code": null, "severity": "error", "message": "defines no network"}], "warnings": entries(&all, warning), "rendered": all.render()}));
                } else {
                    if warnings > 0 {
                        print_diagnostics(&all);
                    }
                    eprintln!("error: {msg}");
                    eprintln!("  = help: a file declares its networks as `network NAME(...) {{ ... }}`");
                }
                failed = true;
            }
            Ok(nets) if errors == 0 => {
                if !a.json && warnings > 0 {
                    print_diagnostics(&all);
                }
                let mut summaries = Vec::new();
                let note = match warnings {
                    0 => String::new(),
                    1 => ", 1 warning".into(),
                    n => format!(", {n} warnings"),
                };
                for net in &nets {
                    let (total, _) = cost::cost(net, &net.full_width());
                    let attention = cost::attention_macs(net, &net.full_width());
                    if !a.json {
                        let products = match attention {
                            0 => String::new(),
                            n => format!(" (+ {} in attention products)", human(n)),
                        };
                        println!(
                            "{shown}: {}: ok, {} search dimensions, {} layers, {} MACs{products}, {} params at full width{note}",
                            net.name,
                            net.space.search_dim(),
                            net.compute_layers().count(),
                            human(total.macs),
                            human(total.params)
                        );
                    }
                    summaries.push(json!({"network": net.name, "search_dim": net.space.search_dim(), "macs": total.macs, "attention_macs": attention, "params": total.params}));
                }
                docs.push(json!({"file": shown, "ok": true, "networks": summaries, "errors": [], "warnings": entries(&all, warning), "rendered": all.render()}));
            }
            _ => {
                if a.json {
                    docs.push(json!({"file": shown, "ok": false, "networks": [], "errors": entries(&all, error), "warnings": entries(&all, warning), "rendered": all.render()}));
                } else {
                    print_diagnostics(&all);
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
