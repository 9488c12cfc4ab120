//! `slimc emit FILE [--target burn|pytorch] [-o FILE]`: source code of the network for
//! another framework: a Burn module (Rust) or a PyTorch module (Python).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{fail, load_network, CompileArgs, Failure, Widths};
use slimc_lang::FileKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Rust source of a Burn module: a struct per block kind, `forward(x, widths)`.
    Burn,
    /// A Python module for PyTorch: a class per block kind, Joslim's `DynModel` interface
    /// and the S-/US-Nets `width_mult` switch; parameters under slimc's layer names.
    Pytorch,
}

#[derive(Args)]
pub struct EmitArgs {
    file: PathBuf,
    /// Which network of the file (needed when it holds several).
    #[arg(long)]
    network: Option<String>,
    /// The framework the code is for.
    #[arg(long, value_enum, default_value = "burn")]
    target: Target,
    /// PyTorch: switchable BN (S-Nets) for these widths, W1,W2,... (an `--scheme s` run's
    /// `--widths`): one set of BN parameters and statistics per width, chosen by `width_mult`.
    #[arg(long)]
    switches: Option<Widths>,
    /// Write the source here instead of standard output.
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    compile: CompileArgs,
}

pub fn run(a: &EmitArgs) -> Result<(), Failure> {
    if a.switches.is_some() && a.target != Target::Pytorch {
        return Err(Failure::Usage(
            "--switches goes with --target pytorch (the Burn module has one BN per layer)".into(),
        ));
    }
    let net = load_network(&a.file, a.network.as_deref(), &a.compile.options())?;
    let source = a.file.display().to_string();
    let (code, kind) = match a.target {
        Target::Burn => (slimc_lang::emit::emit(&net, &source).map_err(fail)?, FileKind::RustSource),
        Target::Pytorch => (
            slimc_lang::emit::pytorch::emit(&net, &source, a.switches.as_ref().map_or(&[][..], |w| &w.0))
                .map_err(fail)?,
            FileKind::PythonSource,
        ),
    };
    match &a.out {
        Some(path) => {
            slimc_lang::write_output(path, code.as_bytes(), kind).map_err(fail)?;
            eprintln!("wrote {} ({} lines)", path.display(), code.lines().count());
        }
        None => print!("{code}"),
    }
    Ok(())
}
