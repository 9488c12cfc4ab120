//! One process-wide lock over Burn's autodiff graphs.
//!
//! Burn 0.21 ends every backward pass by sweeping every autodiff graph in the process, and
//! can free the steps of a graph another thread is still building: that thread's backward
//! pass then silently lacks some parameters' gradients (tracel-ai/burn#5573; here a
//! RegNetY squeeze-excite bias lost its gradient when two tests trained side by side).
//! Code that builds graphs holds [`building`] (shared: graphs are built side by side); a
//! backward pass holds [`backward`] (alone). A finished graph, whose loss is still held,
//! is never swept, so a thread may build, release, then wait for its backward pass.
//! Training ([`crate::train::gradients`]) takes both; so must any other code that runs
//! autodiff in the same process as a training step (tests beside each other).

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

static GRAPHS: RwLock<()> = RwLock::new(());

/// Held while building autodiff graphs (forward passes, losses); shared.
pub fn building() -> RwLockReadGuard<'static, ()> {
    GRAPHS.read().unwrap_or_else(PoisonError::into_inner)
}

/// Held during backward passes; exclusive of every graph being built.
pub fn backward() -> RwLockWriteGuard<'static, ()> {
    GRAPHS.write().unwrap_or_else(PoisonError::into_inner)
}
