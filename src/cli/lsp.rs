//! `slimc lsp`: the language server on stdin/stdout, for editors (README: Editor support).
//! The server is the library's (`slimc_lang::lsp::serve`); this file only opens the transport.

use clap::Args;
use lsp_server::Connection;

use super::Failure;

#[derive(Args)]
pub struct LspArgs {
    /// Accepted and ignored: editors (VS Code's client) pass it to say the transport is stdio,
    /// which is the only one.
    #[arg(long)]
    stdio: bool,
}

pub fn run(_: &LspArgs) -> Result<(), Failure> {
    let (connection, io) = Connection::stdio();
    let served = slimc_lang::lsp::serve(&connection);
    // Dropping the connection closes the writer thread's channel, so `join` returns.
    drop(connection);
    let joined = io.join();
    served.map_err(|e| Failure::Usage(e.to_string()))?;
    joined.map_err(|e| Failure::Usage(format!("slimc lsp: {e}")))
}
