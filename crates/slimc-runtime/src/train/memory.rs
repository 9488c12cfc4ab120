//! Training memory, estimated before anything is allocated: a network that cannot fit is
//! refused with the estimate and the machine's memory named, instead of the allocator
//! aborting the process half-way into building it.

/// The estimate of one training run, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weights, their gradients and the optimizer's momentum: three copies of every
    /// full-width parameter.
    pub state: u64,
    /// Activations at the batch: every layer's full-width output kept for the backward
    /// pass and its gradient, for the two concurrent width streams of a sandwich step.
    pub activations: u64,
}

impl MemoryEstimate {
    /// The estimate for `net` trained at `batch` images per step.
    pub fn of(net: &crate::ir::Network, batch: usize) -> MemoryEstimate {
        let params = crate::cost::cost(net, &net.full_width()).0.params;
        let per_image: u64 = net
            .layers
            .iter()
            .map(|(_, l)| u64::from(l.channels).saturating_mul(u64::from(l.hw[0]) * u64::from(l.hw[1])))
            .fold(0u64, u64::saturating_add);
        let f32s = |n: u64| n.saturating_mul(4);
        MemoryEstimate {
            state: f32s(params.saturating_mul(3)),
            activations: f32s(per_image.saturating_mul(batch as u64).saturating_mul(4)),
        }
    }

    pub fn total(&self) -> u64 {
        self.state.saturating_add(self.activations)
    }
}

/// The memory this process may use, in bytes: the least of the machine's available
/// memory, a cgroup's limit and the address-space limit (`ulimit -v`), where each is known.
pub fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|t| t.trim().parse::<u64>().ok());
    let rlimit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Max address space"))?;
        line.split_whitespace().nth(3)?.parse::<u64>().ok()
    });
    [meminfo, cgroup, rlimit].into_iter().flatten().min()
}

/// Why a run was refused before it started.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "training `{network}` at a batch of {batch} needs about {} (weights, gradients and optimizer state {}, \
     activations {}), more than the {} this machine has available; use a smaller batch or network",
    gib(.estimate.total()), gib(.estimate.state), gib(.estimate.activations), gib(*.available)
)]
pub struct TooLarge {
    pub network: String,
    pub batch: usize,
    pub estimate: MemoryEstimate,
    pub available: u64,
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// Refuses `net` at `batch` on the host when its estimate passes the available memory
/// (GPU memory is the device's own and is not checked here).
pub fn check_host(net: &crate::ir::Network, batch: usize) -> Result<MemoryEstimate, TooLarge> {
    let estimate = MemoryEstimate::of(net, batch);
    match available() {
        Some(available) if estimate.total() > available => {
            Err(TooLarge { network: net.name.clone(), batch, estimate, available })
        }
        _ => Ok(estimate),
    }
}
