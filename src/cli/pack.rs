//! `slimc pack DIR OUT`: an image folder as WebDataset shards.

use std::path::PathBuf;

use clap::Args;

use slimc_runtime::data::shards;

use super::{fail, Failure};

#[derive(Args)]
pub struct PackArgs {
    /// The image folder: DIR/train/<class>/*.{jpg,jpeg,png} and DIR/val/<class>/...
    src: PathBuf,
    /// The directory to create (it must not exist): train-NNNNNN.tar, val-NNNNNN.tar and
    /// classes.txt.
    out: PathBuf,
    /// Images per shard (WebDataset's usual shards hold a few hundred megabytes).
    #[arg(long, default_value_t = 1000)]
    per_shard: usize,
}

pub fn run(a: &PackArgs) -> Result<(), Failure> {
    if a.per_shard == 0 {
        return Err(Failure::Usage("--per-shard must be at least 1".into()));
    }
    let p = shards::pack(&a.src, &a.out, a.per_shard).map_err(fail)?;
    eprintln!(
        "packed {} training and {} validation images of {} classes into {} shards ({:.1} MB) in {}; \
         train on them with --data webdataset:{}",
        p.train,
        p.val,
        p.classes,
        p.shards,
        p.bytes as f64 / 1e6,
        a.out.display(),
        a.out.display()
    );
    Ok(())
}
