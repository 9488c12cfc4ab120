//! Semantic analysis: resolve names, elaborate each network (block instantiation, shape
//! and channel inference through a union-find), then derive the search space. Never
//! touches Burn; produces [`crate::ir::Network`]s or a list of errors.

mod apply;
pub mod builtins;
pub mod channels;
pub mod error;
mod eval;
mod functions;
pub mod names;
mod network;
mod resolve;
mod space;
mod value;
pub mod warning;

pub use error::SemaError;
pub use eval::limits;
pub use resolve::name_table;
pub use warning::Warning;

use crate::ir::{self, ParamValue, Rounding};
use crate::syntax::ast::File;

/// Compile-time choices made outside the file.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Network parameter overrides; each must be a parameter of some network of the file.
    pub settings: Vec<(String, ParamValue)>,
    /// Values offered for parameters a network may declare (a data set's `classes`,
    /// `in_channels`, `size`): used where declared and not set, ignored elsewhere.
    pub context: Vec<(String, ParamValue)>,
    /// Replaces the network's declared rounding policy.
    pub rounding: Option<Rounding>,
}

/// What [`analyse`] found: the networks or every error, and the warnings.
pub struct Analysed {
    pub networks: Result<Vec<ir::Network>, Vec<SemaError>>,
    pub warnings: Vec<Warning>,
}

/// Analyses every network of a parsed file. All errors of the file are returned together.
pub fn analyse(file: &File, options: &Options) -> Analysed {
    let index = match resolve::resolve(file) {
        Ok(index) => index,
        Err(errors) => return Analysed { networks: Err(errors), warnings: Vec::new() },
    };
    let mut warnings = index.warnings.clone();
    let mut networks = Vec::new();
    let mut errors = unknown_settings(file, options);
    for def in &file.networks {
        let mut elab = eval::Elab::new(&index, Rounding::Floor);
        let result = elab.network(def, options);
        errors.append(&mut elab.errors);
        if let Ok(Some(e)) = result {
            warnings.extend(elab.warnings(e.output));
            if errors.is_empty() {
                let rounding = elab.rounding;
                networks.push(space::build(&def.name.name, elab.nodes, elab.blocks, elab.ch, e, rounding));
            }
        }
    }
    let networks = if errors.is_empty() { Ok(networks) } else { Err(errors) };
    Analysed { networks, warnings }
}

/// Every setting must name a parameter of some network of the file.
fn unknown_settings(file: &File, options: &Options) -> Vec<SemaError> {
    let declared = || file.networks.iter().flat_map(|n| n.params.iter().map(|p| p.name.name.as_str()));
    let mut errors = Vec::new();
    for (name, _) in &options.settings {
        if declared().any(|p| p == name) || file.networks.is_empty() {
            continue;
        }
        let networks = file.networks.iter().map(|n| (n.name.name.clone(), n.name.span)).collect();
        let parameters = declared().map(String::from).collect();
        let candidates = builtins::similar(name, declared());
        errors.push(SemaError::UnknownSetting { name: name.clone(), networks, parameters, candidates });
    }
    errors
}
