//! Semantic analysis: resolve names, elaborate each network (block instantiation, shape
//! and channel inference through a union-find), then derive the search space. Never
//! touches Burn; produces [`crate::ir::Network`]s or a list of errors.

mod apply;
pub mod builtins;
pub mod channels;
pub mod error;
mod eval;
mod functions;
mod network;
mod resolve;
mod space;
mod value;

pub use error::SemaError;
pub use eval::limits;

use crate::ir::{self, ParamValue, Rounding};
use crate::syntax::ast::File;

/// Compile-time choices from the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--set name=value`: network parameter overrides.
    pub settings: Vec<(String, ParamValue)>,
    /// `--rounding`: replaces the network's declared policy.
    pub rounding: Option<Rounding>,
}

/// Analyses every network of a parsed file. All errors of the file are returned together.
pub fn analyse(file: &File, options: &Options) -> Result<Vec<ir::Network>, Vec<SemaError>> {
    let index = resolve::resolve(file)?;
    let mut networks = Vec::new();
    let mut errors = Vec::new();
    for def in &file.networks {
        let mut elab = eval::Elab::new(&index, Rounding::Floor);
        let result = elab.network(def, &options.settings, options.rounding);
        errors.append(&mut elab.errors);
        if let Ok(Some(e)) = result {
            if errors.is_empty() {
                let rounding = elab.rounding;
                networks.push(space::build(&def.name.name, elab.nodes, elab.blocks, elab.ch, e, rounding));
            }
        }
    }
    if errors.is_empty() {
        Ok(networks)
    } else {
        Err(errors)
    }
}
