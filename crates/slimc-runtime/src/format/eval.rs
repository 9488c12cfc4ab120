//! An evaluated configuration as `pareto.json` (its `points`) and `slimc eval --json`
//! store it: a type of its own, converted from `crate::train::eval::Row`.

use serde::{Deserialize, Serialize};

/// One evaluated configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub series: String,
    pub width: Option<f64>,
    pub wm: Vec<f64>,
    pub channels: Vec<u32>,
    pub top1: f64,
    pub top5: Option<f64>,
    pub macs: u64,
    pub params: u64,
}
