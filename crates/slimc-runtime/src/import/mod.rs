//! `slimc import`: an ONNX graph (PyTorch's exporters, either of them) becomes a `.slim`
//! file and its weights under the file's layer names.
//!
//! ```text
//! MODEL.onnx ─ onnx   (protobuf, external data, constants folded, nodes → ir ops: Graph)
//!            ─ here   (dead nodes dropped, a BN re-inserted after each conv with a folded one)
//!            ─ write  (cut points → blocks with parameters and repeats, stem/stages/head)
//!            ─ compile the text (slimc-lang) and match its layers to the graph's nodes
//!            → .slim source + named tensors (PyTorch layout, `slimc train --init`)
//! ```
//!
//! The graph's nodes are `ir` ops, so the text is checked against the graph twice: the
//! compiled network's layers must match the nodes one to one, op for op and shape for
//! shape (the weights are named through that match), and its MACs must equal the graph's.

mod onnx;
pub mod order;
pub mod state_dict;
mod write;

use std::path::{Path, PathBuf};

use crate::export::named::tensor_shapes;
use crate::export::HostTensor;
use crate::ir::{LayerShape, Network, Op};
use crate::runtime::BN_EPS;

/// Why a model could not be imported. Each names the file, and the ONNX node where one is
/// to blame.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{} is not an ONNX model: {reason}", path.display())]
    NotOnnx { path: PathBuf, reason: String },
    #[error("{}: tensor `{name}` cannot be read: {reason}", path.display())]
    Tensor { path: PathBuf, name: String, reason: String },
    #[error("node `{node}` ({op}): {reason}")]
    Unsupported { node: String, op: String, reason: String },
    /// The written text did not compile or did not match the graph: a bug of `import`.
    #[error("slimc import wrote a network that {reason} (a bug in slimc import; please report it with the model)")]
    Internal { reason: String },
}

/// A node slimc computes only at its full-width channels: an ONNX Split into unequal
/// parts or a Slice of channels that is not one of equal parts becomes a `slice`, which
/// pins the map it reads. Those channels keep their count at every width, and so does
/// every width tied to them (a residual, a concatenation's parts); `slimc check` on the
/// written file shows each as warning W0306.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    /// The ONNX node's name and op type.
    pub node: String,
    pub op: String,
    /// The channels of the map it reads.
    pub channels: u32,
    /// The channel ranges `[start, end)` it takes.
    pub ranges: Vec<[u32; 2]>,
}

impl std::fmt::Display for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> = self.ranges.iter().map(|[a, b]| format!("{a}..{b}")).collect();
        write!(
            f,
            "node `{}` ({}) takes channels {} of {}, not equal parts: the map it reads keeps its {} channels at every width (fixed), as does every width tied to it",
            self.node,
            self.op,
            ranges.join(", "),
            self.channels,
            self.channels
        )
    }
}

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The network's name (default: the model's, made an identifier).
    pub name: Option<String>,
    /// Take every conv bias as a bias: re-insert no BN (see [`import`]).
    pub keep_conv_bias: bool,
}

/// An imported model.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The `.slim` source.
    pub source: String,
    /// It compiled.
    pub network: Network,
    /// Every learned tensor and BN statistic under the network's layer names, PyTorch's
    /// layout (`slimc train --init` reads them).
    pub tensors: Vec<(String, HostTensor)>,
    /// BN layers re-inserted after convs whose BN the exporter had folded.
    pub bn_inserted: usize,
    /// Multiply-adds of the ONNX graph (convs and linears, batch 1), equal to the
    /// network's at full width.
    pub graph_macs: u64,
    /// Nodes that pinned a width: the import's warnings.
    pub pinned: Vec<Pinned>,
}

/// One node of the graph being imported: an `ir` op on the outputs of earlier nodes.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    op: Op,
    inputs: Vec<usize>,
    channels: u32,
    hw: [u32; 2],
    /// The ONNX node's name and op type, for messages.
    onnx: String,
    onnx_op: String,
    /// Tensors by PyTorch suffix (`weight`, `bias`, `running_mean`, `running_var`).
    weights: Vec<(&'static str, HostTensor)>,
}

impl Node {
    fn new(op: Op, inputs: Vec<usize>, channels: u32, hw: [u32; 2], onnx: &str, onnx_op: &str) -> Node {
        Node { op, inputs, channels, hw, onnx: onnx.to_string(), onnx_op: onnx_op.to_string(), weights: Vec::new() }
    }
}

/// Nodes in a topological order (node 0 the input) and the output node.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    nodes: Vec<Node>,
    output: usize,
    /// Slices that pinned the map they read (warnings).
    pinned: Vec<Pinned>,
}

impl Graph {
    /// The nodes the output reads, renumbered in their order, with `insert` changing a node
    /// and adding nodes after it: `insert(i, &mut node)` (`i` its index before) returns
    /// nodes that follow it in a chain, the last of which replaces it for its readers.
    fn rebuild(self, mut insert: impl FnMut(usize, &mut Node) -> Vec<Node>) -> Graph {
        let mut live = vec![false; self.nodes.len()];
        live[self.output] = true;
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for &j in &self.nodes[i].inputs {
                    live[j] = true;
                }
            }
        }
        live[0] = true;
        let mut map = vec![usize::MAX; self.nodes.len()];
        let mut nodes: Vec<Node> = Vec::new();
        for (i, mut n) in self.nodes.into_iter().enumerate() {
            if !live[i] {
                continue;
            }
            n.inputs = n.inputs.iter().map(|&j| map[j]).collect();
            let extra = insert(i, &mut n);
            nodes.push(n);
            for mut e in extra {
                e.inputs = vec![nodes.len() - 1];
                nodes.push(e);
            }
            map[i] = nodes.len() - 1;
        }
        Graph { output: map[self.output], nodes, pinned: self.pinned }
    }

    /// Multiply-adds at batch 1: each node's op costed by the language's rule
    /// ([`crate::cost::layer_cost`]) at the node's own channels and size.
    fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| {
                let in_c = n.inputs.first().map_or(0, |&i| self.nodes[i].channels);
                let groups = match n.op {
                    Op::Conv { groups, .. } => groups.eval(in_c),
                    _ => 1,
                };
                let shape = LayerShape { in_c, out: n.channels, groups };
                crate::cost::layer_cost(&n.op, shape, n.hw).macs
            })
            .sum()
    }
}

/// Imports the ONNX model at `path` (external data beside it).
///
/// A graph exported in eval mode has each BN folded into the conv before it (a conv with a
/// bias). To be trained at many widths the network needs its BN back: after every conv
/// with a bias that reads a map larger than 1×1 and feeds no BN, a BN is inserted with
/// γ = 1, β = the conv's bias, mean 0 and variance 1 − ε, and the conv loses its bias, so
/// the full-width function is unchanged (the statistics are the imported ones) and the
/// parameter count is the PyTorch model's (C biases become 2C BN parameters, as the conv
/// without bias and its BN had). `keep_conv_bias` turns this off for graphs whose convs
/// really have biases. A squeeze-excite's convs (on a 1×1 map) keep theirs.
pub fn import(path: &Path, options: &ImportOptions) -> Result<Imported, ImportError> {
    let graph = onnx::read(path)?;
    // A network normalised by layer norm (ConvNeXt) has no BN to re-insert.
    let layer_norms = graph.nodes.iter().any(|n| matches!(n.op, Op::LayerNorm { .. }));
    let mut feeds_bn = vec![false; graph.nodes.len()];
    for n in &graph.nodes {
        if n.op == Op::BatchNorm {
            feeds_bn[n.inputs[0]] = true;
        }
    }
    let mut inserted = 0;
    let input_hw: Vec<[u32; 2]> =
        graph.nodes.iter().map(|n| n.inputs.first().map_or(n.hw, |&i| graph.nodes[i].hw)).collect();
    let graph = graph.rebuild(|i, n| {
        let folded = matches!(n.op, Op::Conv { bias: true, .. })
            && !options.keep_conv_bias
            && !layer_norms
            && !feeds_bn[i]
            && input_hw[i] != [1, 1];
        if !folded {
            return Vec::new();
        }
        inserted += 1;
        let c = n.channels as usize;
        let bias = n.weights.iter().position(|(s, _)| *s == "bias").map(|p| n.weights.remove(p).1);
        let bias = bias.unwrap_or(HostTensor { shape: vec![c], data: vec![0.0; c] });
        if let Op::Conv { bias, .. } = &mut n.op {
            *bias = false;
        }
        let mut bn = Node::new(
            Op::BatchNorm,
            Vec::new(),
            n.channels,
            n.hw,
            &format!("{} (its folded BN)", n.onnx),
            "BatchNormalization",
        );
        bn.weights = vec![
            ("weight", HostTensor { shape: vec![c], data: vec![1.0; c] }),
            ("bias", bias),
            ("running_mean", HostTensor { shape: vec![c], data: vec![0.0; c] }),
            ("running_var", HostTensor { shape: vec![c], data: vec![(1.0 - BN_EPS) as f32; c] }),
        ];
        vec![bn]
    });
    let name = options.name.clone().unwrap_or_else(|| {
        identifier(
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
                .split('.')
                .next()
                .unwrap_or(""),
        )
    });
    let source = write::slim(&graph, &name, path);
    let network = compile(&source)?;
    let tensors = name_tensors(&graph, &network)?;
    let graph_macs = graph.macs();
    let (cost, _) = crate::cost::cost(&network, &network.full_width());
    if cost.macs != graph_macs {
        return Err(ImportError::Internal {
            reason: format!("counts {} MACs where the graph has {graph_macs}", cost.macs),
        });
    }
    Ok(Imported { source, network, tensors, bn_inserted: inserted, graph_macs, pinned: graph.pinned })
}

/// `stem` as a `.slim` identifier: lowercase letters, digits and `_`, not starting with a digit.
fn identifier(stem: &str) -> String {
    let mut s: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "net_");
    }
    s
}

fn compile(source: &str) -> Result<Network, ImportError> {
    let nets = crate::compile(source, "imported.slim", &crate::Options::default())
        .map_err(|d| ImportError::Internal { reason: format!("does not compile:\n{}", d.render()) })?;
    nets.into_iter().next().ok_or_else(|| ImportError::Internal { reason: "holds no network".into() })
}

/// Each node's tensors under the name of the layer that computes it. Layers and nodes are
/// matched by structure: a layer matches a node when its op is the node's and its inputs
/// are the layers matched to the node's inputs; the first such layer in forward order is
/// taken, and every layer must be matched once, with the node's channels and size.
fn name_tensors(graph: &Graph, net: &Network) -> Result<Vec<(String, HostTensor)>, ImportError> {
    use std::collections::HashMap;
    let internal = |reason: String| ImportError::Internal { reason };
    let mut by_inputs: HashMap<Vec<usize>, Vec<usize>> = HashMap::new();
    for (id, l) in net.layers.iter() {
        by_inputs.entry(l.inputs.iter().map(|i| i.index()).collect()).or_default().push(id.index());
    }
    let input = net.layers.iter().find(|(_, l)| l.op == Op::Input).map(|(id, _)| id.index());
    let mut layer_of = vec![usize::MAX; graph.nodes.len()];
    layer_of[0] = input.ok_or_else(|| internal("has no input".into()))?;
    let mut taken = vec![false; net.layers.len()];
    taken[layer_of[0]] = true;
    let layers: Vec<_> = net.layers.iter().map(|(_, l)| l).collect();
    for (i, n) in graph.nodes.iter().enumerate().skip(1) {
        let key: Vec<usize> = n.inputs.iter().map(|&j| layer_of[j]).collect();
        let found = by_inputs
            .get(&key)
            .and_then(|c| c.iter().copied().find(|&l| !taken[l] && layers[l].op == n.op))
            .ok_or_else(|| internal(format!("has no layer for node `{}` ({}, {:?})", n.onnx, n.onnx_op, n.op)))?;
        let l = layers[found];
        if l.channels != n.channels || l.hw != n.hw {
            return Err(internal(format!(
                "gives layer `{}` {} channels at {:?} where node `{}` has {} at {:?}",
                l.name, l.channels, l.hw, n.onnx, n.channels, n.hw
            )));
        }
        taken[found] = true;
        layer_of[i] = found;
    }
    if let Some(l) = taken.iter().position(|t| !t) {
        return Err(internal(format!("has layer `{}`, which no node of the graph computes", layers[l].name)));
    }
    let shapes = net.layer_shapes(&net.full_width());
    let mut out = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let l = layers[layer_of[i]];
        // What the layer learns at full width, as `slimc train --init` reads it.
        let expected = tensor_shapes(&l.op, l.op.weights(shapes[layer_of[i]]));
        for (suffix, shape) in expected {
            let t = n
                .weights
                .iter()
                .find(|(s, _)| *s == suffix)
                .ok_or_else(|| internal(format!("needs `{}.{suffix}`, which node `{}` lacks", l.name, n.onnx)))?;
            if t.1.shape != shape {
                return Err(internal(format!(
                    "needs `{}.{suffix}` of {shape:?}; node `{}` has {:?}",
                    l.name, n.onnx, t.1.shape
                )));
            }
            out.push((format!("{}.{suffix}", l.name), t.1.clone()));
        }
    }
    Ok(out)
}
