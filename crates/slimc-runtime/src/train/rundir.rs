//! A run directory and its layout: the one place that names its files.
//!
//! ```text
//! RUN/checkpoint/            the latest checkpoint (meta.json, model.mpk, optimizer.mpk)
//! RUN/checkpoint.tmp-write/  the next one while it is written, renamed over `checkpoint/`
//! RUN/checkpoint.old/        the previous one during that rename (an interrupted save
//!                            leaves it, and it is still a run)
//! RUN/metrics.jsonl          one line per epoch, rewritten from the checkpoint's state
//! RUN/search.json            `slimc search`'s state and result
//! RUN/pareto.json            `slimc eval --pareto`'s front
//! ```

use std::path::{Path, PathBuf};

/// The directory of one training run (`slimc train --out`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// The default directory of a new run: `runs/NETWORK-SCHEME`.
    pub fn default_for(network: &str, scheme: &str) -> RunDir {
        RunDir::new(format!("runs/{network}-{scheme}"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The latest checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    /// Where the next checkpoint is written before it is renamed into place.
    pub fn next_checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.tmp-write")
    }

    /// Where the previous checkpoint waits while the next one is renamed into place.
    pub fn previous_checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.old")
    }

    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `slimc search`'s default output.
    pub fn search(&self) -> PathBuf {
        self.root.join("search.json")
    }

    /// `slimc eval --pareto`'s default output.
    pub fn pareto(&self) -> PathBuf {
        self.root.join("pareto.json")
    }

    /// Whether the directory holds any state of a run: a checkpoint (also the `.old` or
    /// half-written one an interrupted save leaves), metrics, a search or a front. Such a
    /// directory is a run, and a new run never starts there (it would replace what is saved).
    pub fn holds_run(&self) -> bool {
        [
            self.checkpoint(),
            self.previous_checkpoint(),
            self.next_checkpoint(),
            self.metrics(),
            self.search(),
            self.pareto(),
        ]
        .iter()
        .any(|p| p.exists())
    }

    /// The checkpoint to read: `checkpoint/`, else (after an interrupted save)
    /// `checkpoint.old/`, each only if it holds a `meta.json`.
    pub fn readable_checkpoint(&self, meta: &str) -> Option<PathBuf> {
        [self.checkpoint(), self.previous_checkpoint()].into_iter().find(|d| d.join(meta).is_file())
    }
}
