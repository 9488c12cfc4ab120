//! `slimc lsp`: the language server on stdin/stdout, for editors (README: Editor support).
//! The server is the library's (`slimc_lang::lsp::serve`), and so is the transport
//! (`slimc_lang::lsp::transport`: frames bounded, a bad one named); this file connects them.

use clap::Args;

use super::Failure;

#[derive(Args)]
pub struct LspArgs {
    /// Accepted and ignored: editors (VS Code's client) pass it to say the transport is stdio,
    /// which is the only one.
    #[arg(long)]
    stdio: bool,
}

pub fn run(_: &LspArgs) -> Result<(), Failure> {
    let stdio = slimc_lang::lsp::transport::stdio();
    let served = slimc_lang::lsp::serve(&stdio.connection);
    // A frame the reader refused ends the connection: that is the reason to report, not
    // the disconnection the server saw.
    let read = stdio.close();
    read.map_err(|e| Failure::Usage(format!("slimc lsp: {e}")))?;
    served.map_err(|e| Failure::Usage(format!("slimc lsp: {e}")))
}
