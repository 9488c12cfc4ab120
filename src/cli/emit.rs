//! `slimc emit FILE [-o model.rs]`: Rust source of a Burn module for the network.

use std::path::PathBuf;

use clap::Args;

use super::{fail, load_network, CompileArgs, Failure};

#[derive(Args)]
pub struct EmitArgs {
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

pub fn run(a: &EmitArgs) -> Result<(), Failure> {
    let net = load_network(&a.file, a.network.as_deref(), &a.compile.options())?;
    let code = slimc_lang::emit::emit(&net, &a.file.display().to_string()).map_err(fail)?;
    match &a.out {
        Some(path) => {
            slimc_lang::write_output(path, code.as_bytes(), slimc_lang::FileKind::RustSource).map_err(fail)?;
            eprintln!("wrote {} ({} lines)", path.display(), code.lines().count());
        }
        None => print!("{code}"),
    }
    Ok(())
}
