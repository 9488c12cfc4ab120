//! Data-parallel training on burn-collective: one replica per device, in one process
//! (threads) or across processes and machines (nodes, with a global orchestrator on node 0).
//! Every replica runs the same sandwich step, with the same widths, on its slice of the
//! global batch; the gradients (and the step's loss) are averaged in one all-reduce before
//! the optimizer step, so the replicas' weights stay identical. BN uses each replica's own
//! batch statistics. Replica 0 validates and writes checkpoints.
//!
//! Every collective call waits at most [`Cluster::timeout`], and a replica that fails in
//! this process stops the others at their next exchange, so a lost peer is an error, not a
//! hang.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{CollectiveConfig, CollectiveError, PeerId, ReduceOperation};
use burn_communication::Address;

use crate::runtime::SlimNet;
use crate::train::TrainError;

/// What can stop a data-parallel run.
#[derive(Debug, thiserror::Error)]
pub enum ParallelError {
    /// No answer from the other replicas within the timeout.
    #[error("{what}: no answer from the other replicas within {seconds} s (a node stopped, or is still busy)")]
    Timeout { what: &'static str, seconds: u64 },
    /// burn-collective reported an error.
    #[error("{what} failed: {detail}")]
    Collective { what: &'static str, detail: String },
    /// Another replica of this process failed (its error is the one reported).
    #[error("another replica failed")]
    PeerFailed,
    /// The coordinator never accepted a connection.
    #[error("the coordinator {address} is unreachable (no connection within {seconds} s)")]
    Unreachable { address: String, seconds: u64 },
    /// A port this node must serve on is taken (or not allowed).
    #[error("cannot listen on port {port} for the {what}: {reason}")]
    Listen { port: u16, what: &'static str, reason: String },
    /// The nodes were started with different settings or checkpoints.
    #[error("{0}")]
    Mismatch(String),
    /// A worker thread (or its pool) could not start.
    #[error("cannot start a replica's threads: {0}")]
    Threads(String),
    /// The global batch does not split evenly.
    #[error("a batch of {batch} does not split evenly over {replicas} replicas")]
    Uneven { batch: usize, replicas: usize },
}

impl ParallelError {
    /// A disagreement, prefixed with what it means here.
    pub fn context(self, what: &str) -> ParallelError {
        match self {
            ParallelError::Mismatch(m) => ParallelError::Mismatch(format!("{what}: {m}")),
            e => e,
        }
    }
}

/// A coordinator or node address, `HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("expected HOST:PORT, got `{s}`"))?;
        let port =
            port.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("`{port}` is not a port (1-65535)"))?;
        if host.is_empty() {
            return Err(format!("expected HOST:PORT, got `{s}`"));
        }
        Ok(Endpoint { host: host.to_string(), port })
    }

    fn address(&self) -> Address {
        format!("ws://{self}").parse().expect("Address::from_str accepts any string")
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Several machines: where node 0's orchestrator listens, and where this node serves the
/// tensors its peers fetch.
#[derive(Clone, Debug)]
pub struct Nodes {
    pub count: usize,
    pub rank: usize,
    pub coordinator: Endpoint,
    pub node: Endpoint,
}

/// This process's place in a data-parallel run.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Replicas in this process (the same count on every node).
    pub devices: usize,
    /// `None`: one process.
    pub nodes: Option<Nodes>,
    /// How long any exchange may wait for the other replicas.
    pub timeout: Duration,
}

impl Cluster {
    /// One process, `devices` replicas.
    pub fn local(devices: usize, timeout: Duration) -> Cluster {
        Cluster { devices, nodes: None, timeout }
    }

    /// Replicas over all nodes.
    pub fn world(&self) -> usize {
        self.devices * self.nodes.as_ref().map_or(1, |n| n.count)
    }

    /// The global rank of this process's `local`-th replica.
    pub fn rank(&self, local: usize) -> usize {
        self.nodes.as_ref().map_or(0, |n| n.rank) * self.devices + local
    }

    /// Whether `batch` splits evenly over the replicas.
    pub fn check_batch(&self, batch: usize) -> Result<(), ParallelError> {
        if batch.is_multiple_of(self.world()) {
            Ok(())
        } else {
            Err(ParallelError::Uneven { batch, replicas: self.world() })
        }
    }

    /// Checks that this node's data port is free, and on node 0 the coordinator's (both are
    /// served on all interfaces); other nodes wait until the coordinator accepts a TCP
    /// connection. Before anything is trained or written.
    pub fn check_network(&self) -> Result<(), ParallelError> {
        let Some(n) = &self.nodes else { return Ok(()) };
        let free = |port: u16, what: &'static str| {
            std::net::TcpListener::bind(("0.0.0.0", port)).map(drop).map_err(|e| ParallelError::Listen {
                port,
                what,
                reason: e.to_string(),
            })
        };
        free(n.node.port, "node's data service")?;
        if n.rank == 0 {
            return free(n.coordinator.port, "coordinator");
        }
        let deadline = Instant::now() + self.timeout;
        let address = n.coordinator.to_string();
        loop {
            let reached = address.to_socket_addrs().ok().into_iter().flatten().any(|a| {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
                TcpStream::connect_timeout(&a, left.min(Duration::from_secs(2))).is_ok()
            });
            if reached {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ParallelError::Unreachable { address, seconds: self.timeout.as_secs() });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn config(&self) -> CollectiveConfig {
        let config = CollectiveConfig::default().with_num_devices(self.devices);
        match &self.nodes {
            None => config,
            Some(n) => config
                .with_num_nodes(n.count as u32)
                .with_global_address(n.coordinator.address())
                .with_node_address(n.node.address())
                .with_data_service_port(n.node.port),
        }
    }
}

/// Runs burn-collective's global orchestrator on `port` (node 0), until the process gets
/// SIGINT or SIGTERM; returns then.
pub fn serve_orchestrator(port: u16) -> Result<(), ParallelError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| ParallelError::Listen { port, what: "coordinator", reason: e.to_string() })?;
    runtime.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}

/// Runs `work` once per device, each on its own thread (and, with `threads`, its own pool
/// of that many CPU threads) as this process's replicas in `cluster`: `items[i]` and the
/// joined [`Replica`] go to the `i`-th. Returns the results in device order; the first
/// replica to fail stops the others at their next exchange, and its error is returned.
pub fn on_replicas<B: Backend, I: Send, T: Send>(
    cluster: &Cluster,
    devices: Vec<B::Device>,
    items: Vec<I>,
    threads: Option<usize>,
    work: impl Fn(I, &B::Device, &Replica) -> Result<T, TrainError> + Sync,
) -> Result<Vec<T>, TrainError> {
    let abort = Arc::new(AtomicBool::new(false));
    let results: Vec<Result<T, TrainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .into_iter()
            .zip(items)
            .enumerate()
            .map(|(i, (device, item))| {
                let (abort, work) = (abort.clone(), &work);
                s.spawn(move || {
                    let run = || -> Result<T, TrainError> {
                        let replica = Replica::join::<B>(cluster, i, device.clone(), abort.clone())
                            .inspect_err(|_| abort.store(true, Ordering::SeqCst))?;
                        let result = work(item, &device, &replica);
                        match &result {
                            Ok(_) => replica.leave::<B>(),
                            Err(_) => replica.abort(),
                        }
                        result
                    };
                    match threads {
                        None => run(),
                        Some(n) => rayon::ThreadPoolBuilder::new()
                            .num_threads(n)
                            .build()
                            .map_err(|e| ParallelError::Threads(e.to_string()))?
                            .install(run),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut done = Vec::with_capacity(results.len());
    let mut failure = None;
    for r in results {
        match r {
            Ok(t) => done.push(t),
            Err(TrainError::Parallel(ParallelError::PeerFailed)) => {}
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None if done.is_empty() => Err(ParallelError::PeerFailed.into()),
        None => Ok(done),
    }
}

/// One replica's handle on the collective: its rank, and how to exchange with the others.
pub struct Replica {
    pub rank: usize,
    pub world: usize,
    link: Option<Link>,
}

struct Link {
    peer: PeerId,
    timeout: Duration,
    /// Set when any replica of this process fails.
    abort: Arc<AtomicBool>,
}

impl Replica {
    /// Training on one device: no exchanges.
    pub fn single() -> Replica {
        Replica { rank: 0, world: 1, link: None }
    }

    /// Registers this process's `local`-th replica with the collective on `device`; waits
    /// until every replica of every node has registered.
    pub fn join<B: Backend>(
        cluster: &Cluster,
        local: usize,
        device: B::Device,
        abort: Arc<AtomicBool>,
    ) -> Result<Replica, ParallelError> {
        let rank = cluster.rank(local);
        let link = Link { peer: PeerId(rank as u32), timeout: cluster.timeout, abort };
        let (peer, config) = (link.peer, cluster.config());
        link.wait("joining the other replicas", move || burn_collective::register::<B>(peer, device, config))?;
        Ok(Replica { rank, world: cluster.world(), link: Some(link) })
    }

    pub fn is_lead(&self) -> bool {
        self.rank == 0
    }

    /// This replica's `(index, count)` of each batch.
    pub fn shard(&self) -> (usize, usize) {
        (self.rank, self.world)
    }

    /// Marks this process's run as failed: its other replicas stop at their next exchange.
    pub fn abort(&self) {
        if let Some(l) = &self.link {
            l.abort.store(true, Ordering::SeqCst);
        }
    }

    /// Leaves the collective (best effort, for at most 10 s: the run is over either way,
    /// and node 0's orchestrator may already be gone).
    pub fn leave<B: Backend>(self) {
        if let Some(l) = &self.link {
            let peer = l.peer;
            let brief = Link { peer, timeout: l.timeout.min(Duration::from_secs(10)), abort: l.abort.clone() };
            let _ = brief.wait("leaving", move || burn_collective::finish_collective::<B>(peer));
        }
    }

    /// The element-wise mean of `t` over all replicas (`t` itself on one device).
    pub fn mean<B: Backend>(&self, t: Tensor<B, 1>) -> Result<Tensor<B, 1>, ParallelError> {
        let Some(l) = &self.link else { return Ok(t) };
        let peer = l.peer;
        let prim = t.into_primitive().tensor();
        let out = l.wait("averaging across replicas", move || {
            burn_collective::all_reduce::<B>(peer, prim, ReduceOperation::Mean)
        })?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(out)))
    }

    /// The mean of host values over all replicas (they are made equal).
    pub fn mean_values<B: Backend>(&self, values: &[f64], device: &B::Device) -> Result<Vec<f64>, ParallelError> {
        if self.link.is_none() || values.is_empty() {
            return Ok(values.to_vec());
        }
        // The ring all-reduce between nodes cuts the tensor into one slice per node.
        let mut padded: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        padded.resize(values.len().max(self.world), 0.0);
        let t = self.mean(Tensor::<B, 1>::from_floats(padded.as_slice(), device))?;
        Ok(t.into_data().iter::<f32>().take(values.len()).map(f64::from).collect())
    }

    /// Checks that every replica is in the same state: `facts` (named numbers such as the
    /// step, the batch, the seed) and the weights, bit for bit ([`weights_hash`], sent as
    /// four 16-bit integers, which f32 means carry exactly), must be the same on all
    /// replicas, and every global rank must be taken exactly once. Two all-reduces: the
    /// means, then whether any replica differs from them (burn-collective 0.21 has no
    /// broadcast between nodes).
    pub fn agree<B: Backend>(
        &self,
        facts: &[(impl AsRef<str>, f64)],
        model: &SlimNet<B>,
        device: &B::Device,
    ) -> Result<(), ParallelError> {
        if self.link.is_none() {
            return Ok(());
        }
        let hash = weights_hash(model);
        let mut mine: Vec<f64> = facts.iter().map(|(_, v)| *v).collect();
        mine.extend((0..4).map(|k| ((hash >> (16 * k)) & 0xffff) as f64));
        let mut ranks = vec![0.0; self.world];
        ranks[self.rank] = 1.0;
        let values: Vec<f64> = mine.iter().copied().chain(ranks).collect();
        let means = self.mean_values::<B>(&values, device)?;
        let differ: Vec<String> = mine
            .iter()
            .zip(&means)
            .enumerate()
            .filter(|(_, (a, m))| (*a - *m).abs() > 1e-6 * m.abs().max(1.0))
            .map(|(i, (a, _))| match facts.get(i).map(|(name, _)| name.as_ref()) {
                Some(hashed) if hashed.starts_with('#') => format!("{} differs from another replica's", &hashed[1..]),
                Some(name) => format!("{name} is {a} here and different on another replica"),
                None => "the weights differ between replicas".to_string(),
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let any = self.mean_values::<B>(&[if differ.is_empty() { 0.0 } else { 1.0 }], device)?[0];
        if !differ.is_empty() {
            return Err(ParallelError::Mismatch(differ.join("; ")));
        }
        if any > 0.0 {
            return Err(ParallelError::Mismatch(
                "another node was started with other settings or another checkpoint".into(),
            ));
        }
        let world = self.world as f64;
        if means[mine.len()..].iter().any(|&f| (f * world - 1.0).abs() > 1e-3) {
            return Err(ParallelError::Mismatch(
                "two nodes have the same rank (each of 0..N-1 must be taken once)".into(),
            ));
        }
        Ok(())
    }

    /// Averages the gradients of `model` (and the step's loss) over all replicas, in one
    /// all-reduce of every gradient concatenated.
    pub fn average<B: AutodiffBackend>(
        &self,
        model: &SlimNet<B>,
        mut grads: GradientsParams,
        loss: Tensor<B::InnerBackend, 1>,
    ) -> Result<(GradientsParams, Tensor<B::InnerBackend, 1>), ParallelError> {
        if self.link.is_none() {
            return Ok((grads, loss));
        }
        let device = loss.device();
        let entries = entries(model);
        let mut flat = Vec::with_capacity(entries.len() + 1);
        let mut present = Vec::with_capacity(entries.len());
        for e in &entries {
            let g = take::<B>(&mut grads, e);
            present.push(g.is_some());
            flat.push(g.unwrap_or_else(|| Tensor::zeros([e.len()], &device)));
        }
        flat.push(loss);
        let mean = self.mean(Tensor::cat(flat, 0))?;
        let mut at = 0;
        for (e, here) in entries.iter().zip(present) {
            if here {
                put::<B>(&mut grads, e, mean.clone().slice(at..at + e.len()));
            }
            at += e.len();
        }
        Ok((grads, mean.slice(at..at + 1)))
    }
}

/// `a + b`, parameter by parameter (a parameter in one of them only keeps its gradient).
pub fn add_gradients<B: AutodiffBackend>(
    model: &SlimNet<B>,
    mut a: GradientsParams,
    mut b: GradientsParams,
) -> GradientsParams {
    for e in entries(model) {
        let sum = match (take::<B>(&mut a, &e), take::<B>(&mut b, &e)) {
            (Some(x), Some(y)) => x + y,
            (Some(g), None) | (None, Some(g)) => g,
            (None, None) => continue,
        };
        put::<B>(&mut a, &e, sum);
    }
    a
}

impl Link {
    /// Runs one collective call on its own thread and waits for it at most `timeout`,
    /// giving up early when another replica of this process failed.
    fn wait<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl FnOnce() -> Result<T, CollectiveError> + Send + 'static,
    ) -> Result<T, ParallelError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("slimc-collective".into())
            .spawn(move || {
                let _ = tx.send(call());
            })
            .map_err(|e| ParallelError::Collective { what, detail: e.to_string() })?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => return Err(ParallelError::Collective { what, detail: describe(e) }),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ParallelError::Collective { what, detail: "the connection to a peer broke".into() })
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.abort.load(Ordering::SeqCst) {
                        return Err(ParallelError::PeerFailed);
                    }
                    if Instant::now() >= deadline {
                        return Err(ParallelError::Timeout { what, seconds: self.timeout.as_secs() });
                    }
                }
            }
        }
    }
}

fn describe(e: CollectiveError) -> String {
    // burn-collective's global errors are not public types; their names are.
    let name = format!("{e:?}");
    if name.contains("LocalServerMissing") {
        "the exchange broke off: another node stopped or lost its connection".into()
    } else if name.contains("RegisterParamsMismatch") {
        "the nodes were started with different node counts".into()
    } else if name.contains("DoubleRegister") {
        "two nodes use the same address".into()
    } else if name.contains("PeerLost") {
        format!("lost the connection to another node ({name})")
    } else {
        name
    }
}

/// One parameter of a [`SlimNet`]: its id and shape.
struct Entry {
    id: ParamId,
    dims: Vec<usize>,
}

impl Entry {
    fn len(&self) -> usize {
        self.dims.iter().product()
    }
}

/// Every parameter, in the model's (deterministic) order ([`SlimNet::learned`]).
fn entries<B: Backend>(model: &SlimNet<B>) -> Vec<Entry> {
    model.learned().into_iter().map(|l| Entry { id: l.id, dims: l.dims }).collect()
}

fn take<B: AutodiffBackend>(grads: &mut GradientsParams, e: &Entry) -> Option<Tensor<B::InnerBackend, 1>> {
    let n = e.len();
    match e.dims.len() {
        1 => grads.remove::<B::InnerBackend, 1>(e.id),
        2 => grads.remove::<B::InnerBackend, 2>(e.id).map(|g| g.reshape([n])),
        4 => grads.remove::<B::InnerBackend, 4>(e.id).map(|g| g.reshape([n])),
        r => unreachable!("slimc's parameters have rank 1, 2 or 4, not {r}"),
    }
}

fn put<B: AutodiffBackend>(grads: &mut GradientsParams, e: &Entry, g: Tensor<B::InnerBackend, 1>) {
    let d = &e.dims;
    match d.len() {
        1 => grads.register(e.id, g),
        2 => grads.register(e.id, g.reshape([d[0], d[1]])),
        4 => grads.register(e.id, g.reshape([d[0], d[1], d[2], d[3]])),
        r => unreachable!("slimc's parameters have rank 1, 2 or 4, not {r}"),
    }
}

use crate::hash::{fnv1a, FNV_START};

/// A hash as four 16-bit facts for [`Replica::agree`] (f32 means carry them exactly),
/// named `#what` so that a difference is reported as "what differs".
pub fn hash_facts(what: &str, hash: u64) -> impl Iterator<Item = (String, f64)> + '_ {
    (0..4).map(move |k| (format!("#{what}"), ((hash >> (16 * k)) & 0xffff) as f64))
}

/// A 64-bit FNV-1a hash of every weight's bits, in the model's layer order.
pub fn weights_hash<B: Backend>(model: &SlimNet<B>) -> u64 {
    let mut h: u64 = FNV_START;
    model.for_each_value(|_, values| {
        for v in values.iter::<f32>() {
            h = fnv1a(h, &v.to_bits().to_le_bytes());
        }
    });
    h
}
