//! The `slimc` command line: the `Cli` definition and dispatch. Each command lives in
//! `src/cli/<command>.rs`; exit codes: 0 success, 1 the input has errors, 2 usage or IO error.

#[macro_use]
mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cli::Failure;

/// A training step frees and allocates the same large buffers every step (activations,
/// gradients, column matrices). By default glibc's malloc serves those from `mmap` and
/// trims freed memory, so the kernel hands each back as fresh zeroed pages: 10–18% of a
/// ResNet-20 step in `perf` was `clear_page` (6% after this). Up to 32 MiB per buffer now
/// comes from one heap (one arena: per-thread arenas trim on their own), never trimmed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; this runs before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

#[derive(Parser)]
#[command(name = "slimc", version, about = "Compiler for slimmable neural networks (.slim files)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check files and print diagnostics; one summary line per network.
    Check(cli::check::CheckArgs),
    /// Show the derived search space and every layer's channels at a width.
    Space(cli::space::WidthArgs),
    /// MACs and parameters at a width.
    Cost(cli::space::WidthArgs),
    /// Training-step and per-width inference throughput on synthetic data.
    Bench(cli::bench::BenchArgs),
    /// Train a slimmable network on a data set (US-Nets, S-Nets or one fixed width).
    Train(Box<cli::train::TrainArgs>),
    /// Accuracy, MACs and parameters of a trained network at many widths.
    Eval(cli::eval::EvalArgs),
    /// AutoSlim greedy search for the best configuration at target MACs.
    Search(cli::search::SearchArgs),
    /// Pack an image folder into WebDataset shards (tar files), read as `--data webdataset:DIR`.
    Pack(cli::pack::PackArgs),
    /// A fixed-width subnet as a standalone model: Burn record, safetensors or ONNX.
    Export(cli::export::ExportArgs),
    /// An ONNX model (PyTorch's export) as a .slim file and its weights under the file's layer names.
    Import(cli::import::ImportArgs),
    /// Source of the network for Burn (Rust) or PyTorch (Python): a class per block kind, any width
    Emit(cli::emit::EmitArgs),
    /// The language server for editors, over stdin/stdout (LSP).
    Lsp(cli::lsp::LspArgs),
}

fn main() -> ExitCode {
    keep_freed_memory();
    // Before clap: parsing `--device wgpu…` already asks the Vulkan driver for adapters.
    cli::quiet_mesa();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Check(args) => cli::check::run(&args),
        Command::Space(args) => cli::space::run(&args, false),
        Command::Cost(args) => cli::space::run(&args, true),
        Command::Bench(args) => cli::bench::run(&args),
        // `--resume` refuses the flags a run cannot change, which needs to know what was typed.
        Command::Train(args) => cli::train::run(&args, matches.subcommand_matches("train")),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Search(args) => cli::search::run(&args),
        Command::Export(args) => cli::export::run(&args),
        Command::Pack(args) => cli::pack::run(&args),
        Command::Emit(args) => cli::emit::run(&args),
        Command::Import(args) => cli::import::run(&args),
        Command::Lsp(args) => cli::lsp::run(&args),
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
