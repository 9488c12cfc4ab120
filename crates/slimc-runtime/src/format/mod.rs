//! Format versions of the files slimc writes and reads back: a checkpoint's `meta.json`
//! (with the run's state), a search's `search.json`, a front's `pareto.json` and a Burn
//! export's `OUT.json` (which also numbers its `OUT.mpk` record). Each
//! carries `format`; a file without it was written before formats were numbered and has
//! format 1's layout. A reader checks the number before it reads anything else, so a file
//! from a newer slimc is refused by its version instead of by a field it does not know.
//! Changing a stored type's fields changes its format: bump the number here and read the
//! old one explicitly (`tests/state.rs` holds the committed run directory to its layout).
//!
//! The documents inside those files that the library also uses in memory have types of
//! their own here ([`run`]: the run state and metrics; [`eval`]: an evaluated
//! configuration), converted at the boundary, so an internal rename cannot change a file.

pub mod eval;
pub mod run;

/// `meta.json` (and the run state it holds). Format 2 adds the training augmentation
/// (`options.augment`), evaluation's resize of photographs (`options.eval_resize`) and the
/// `WebDataset` data set. A format-1 run has neither option and reads them as absent: it
/// keeps the padded crop and the resize to the input size it trained with.
pub const META: u32 = 2;
/// `search.json`.
pub const SEARCH: u32 = 1;
/// `pareto.json`.
pub const PARETO: u32 = 1;
/// A Burn export's `OUT.json` and `OUT.mpk`. Format 1 stored each layer as a struct of
/// optional Burn modules; format 2 stores one Burn module per layer (an enum record).
/// Exports are made again from their run, so format 1 is refused by its number.
pub const BURN: u32 = 2;

/// A stored file of a format this slimc cannot read (the error that holds it names the
/// file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "has format version {found}; slimc {} reads versions up to {supported}: open it with the slimc that wrote it",
    env!("CARGO_PKG_VERSION")
)]
pub struct FormatError {
    /// The `format` value as written.
    pub found: String,
    pub supported: u32,
}

/// The format of a stored JSON document: its `format` field, 1 when it has none, refused
/// when above `supported` or not a whole number from 1.
pub fn check(doc: &serde_json::Value, supported: u32) -> Result<u32, FormatError> {
    match doc.get("format") {
        None => Ok(unnumbered()),
        Some(v) => match v.as_u64() {
            Some(found) if (1..=u64::from(supported)).contains(&found) => Ok(found as u32),
            _ => Err(FormatError { found: v.to_string(), supported }),
        },
    }
}

/// The format of a file written before formats were numbered (serde's default for the
/// field).
pub fn unnumbered() -> u32 {
    1
}
