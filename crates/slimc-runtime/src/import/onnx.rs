//! An ONNX model read into a [`Graph`] of slimc ops: initializers and external data
//! loaded, shape arithmetic (`Shape`, `Gather`, `Concat`, … on constants) folded, and each
//! remaining node translated to the op of `ir` that computes it, with its weights in
//! PyTorch's layout. Patterns spanning several ONNX nodes become one op: `x · sigmoid(x)`
//! (swish), Reshape–Transpose–Reshape (channel shuffle), a row slice then a column slice
//! (subsample), `Div`–`Erf`–`Add`–`Mul`–`Mul` (exact GELU), and channels-last stretches
//! (`Transpose` to `[N, H, W, C]`, LayerNormalization over C, MatMul + Add as a per-position
//! linear, that is a 1×1 conv, and `Transpose` back: ConvNeXt's blocks).

use std::collections::HashMap;
use std::path::{Component, Path};

use prost::Message;

use super::{Graph, ImportError, Node, Pinned};
use crate::export::proto::{attribute_type, data_type, AttributeProto, ModelProto, NodeProto, TensorProto, EXTERNAL};
use crate::export::HostTensor;
use crate::ir::{Activation, Groups, Op};

/// The largest ONNX file read (graph and inline weights): 4 GiB, protobuf's own limit is 2.
const MAX_MODEL_BYTES: u64 = 4 << 30;
/// The most elements one constant may hold, and one external tensor.
const MAX_ELEMENTS: usize = 1 << 31;
/// The most elements a constant made by folding (`ConstantOfShape`) may hold: 16M.
const MAX_FOLDED: usize = 1 << 24;
/// The most nodes a graph may have (a network's limit in the language).
const MAX_NODES: usize = 100_000;
/// A map's channels, as the language allows them.
const MAX_CHANNELS: u64 = 65_536;

/// A constant: an initializer, a `Constant` node, or folded shape arithmetic. Values are
/// f64 (integers up to 2⁵³ exact, which shapes never pass).
#[derive(Clone, Debug)]
struct Const {
    dims: Vec<usize>,
    data: Vec<f64>,
    int: bool,
}

impl Const {
    fn ints(&self) -> Vec<i64> {
        self.data.iter().map(|&v| v as i64).collect()
    }

    fn host(&self) -> HostTensor {
        HostTensor { shape: self.dims.clone(), data: self.data.iter().map(|&v| v as f32).collect() }
    }

    fn scalar(&self) -> Option<f64> {
        (self.data.len() == 1).then(|| self.data[0])
    }
}

/// What an ONNX tensor name holds while the graph is read.
#[derive(Clone, Debug)]
enum Value {
    Const(Const),
    /// The output of node `.0` of the graph: `[N, C, H, W]` (a `[N, F]` vector is a 1×1 map).
    Map(usize),
    /// The same, channels last: `[N, H, W, C]` (ConvNeXt's layer norm and linears).
    Last(usize),
    /// A map viewed as `[N, g, C/g, H, W]` (a channel shuffle's first reshape).
    Grouped {
        node: usize,
        groups: u32,
    },
    /// …with its two group axes swapped (the shuffle's transpose).
    Swapped {
        node: usize,
        groups: u32,
    },
    /// A map sliced along its rows only (`x[:, :, o::s]`, the first half of a subsample).
    Rows {
        node: usize,
        stride: u32,
        offset: u32,
    },
    /// `x / √2` and `erf(x / √2)`, `1 + erf(x / √2)`, `x · (1 + erf(x / √2))` of map `x`:
    /// the steps of an exact GELU as the TorchScript exporter writes it.
    Gelu {
        node: usize,
        step: u8,
        last: bool,
    },
}

/// Reads `path` (and its external data, beside it) into a graph.
pub(super) fn read(path: &Path) -> Result<Graph, ImportError> {
    let bad = |reason: String| ImportError::NotOnnx { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|error| ImportError::Read { path: path.to_path_buf(), error })?;
    if !meta.is_file() {
        return Err(bad("it is not a regular file".into()));
    }
    if meta.len() > MAX_MODEL_BYTES {
        return Err(bad(format!("it is {} bytes, more than the 4 GiB an ONNX file can hold", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|error| ImportError::Read { path: path.to_path_buf(), error })?;
    let model =
        ModelProto::decode(bytes.as_slice()).map_err(|e| bad(format!("it does not decode as an ONNX model ({e})")))?;
    drop(bytes);
    let graph = model.graph.ok_or_else(|| bad("it holds no graph".into()))?;
    if graph.node.is_empty() {
        return Err(bad("its graph has no nodes".into()));
    }
    if graph.node.len() > MAX_NODES {
        return Err(bad(format!("its graph has {} nodes, more than the {MAX_NODES} slimc reads", graph.node.len())));
    }
    let opset =
        model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(1, |o| o.version);
    let dir = path.parent().unwrap_or(Path::new("."));

    let mut reader = Reader { path, dir, opset, values: HashMap::new(), graph: Graph::default() };
    for t in &graph.initializer {
        let c = reader.tensor(t, &t.name)?;
        reader.values.insert(t.name.clone(), Value::Const(c));
    }
    // The input: the first graph input that is not an initializer, `[N, C, H, W]`.
    let input = graph
        .input
        .iter()
        .find(|i| !reader.values.contains_key(&i.name))
        .ok_or_else(|| bad("its graph has no input".into()))?;
    let dims: Vec<Option<i64>> = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(crate::export::proto::DimValue::DimValue(v)) => Some(*v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let [_, Some(c), Some(h), Some(w)] = dims[..] else {
        return Err(ImportError::Unsupported {
            node: input.name.clone(),
            op: "input".into(),
            reason: format!(
                "the input must be an image batch [N, C, H, W] with C, H and W given; it is {}",
                shape_text(&dims)
            ),
        });
    };
    let side = |v: i64| u32::try_from(v).ok().filter(|&v| (1..=65_536).contains(&v));
    let (Some(c), Some(h), Some(w)) = (side(c), side(h), side(w)) else {
        return Err(ImportError::Unsupported {
            node: input.name.clone(),
            op: "input".into(),
            reason: format!("the input's sides must be 1..65536; it is {}", shape_text(&dims)),
        });
    };
    reader.graph.nodes.push(Node::new(Op::Input, Vec::new(), c, [h, w], &input.name, "input"));
    reader.values.insert(input.name.clone(), Value::Map(0));

    for node in &graph.node {
        reader.node(node)?;
    }
    let output = graph.output.first().ok_or_else(|| bad("its graph has no output".into()))?;
    let out = match reader.values.get(&output.name) {
        Some(Value::Map(n)) => *n,
        _ => {
            return Err(ImportError::Unsupported {
                node: output.name.clone(),
                op: "output".into(),
                reason: "the graph's output is not computed from its input".into(),
            })
        }
    };
    reader.graph.output = out;
    Ok(reader.graph)
}

/// An f32 attribute as the decimal it was written as (`1e-6`, not 9.99999997e-7).
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

fn shape_text(dims: &[Option<i64>]) -> String {
    let d: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
    format!("[{}]", d.join(", "))
}

struct Reader<'a> {
    path: &'a Path,
    dir: &'a Path,
    opset: i64,
    values: HashMap<String, Value>,
    graph: Graph,
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).filter(|a| a.r#type == attribute_type::INTS || !a.ints.is_empty()).map(|a| a.ints.clone())
}

fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn node_name(node: &NodeProto) -> String {
    if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_default()
    } else {
        node.name.clone()
    }
}

impl Reader<'_> {
    fn unsupported(&self, node: &NodeProto, reason: impl Into<String>) -> ImportError {
        ImportError::Unsupported { node: node_name(node), op: node.op_type.clone(), reason: reason.into() }
    }

    /// A tensor's values: raw little-endian bytes, the typed fields, or external data.
    fn tensor(&self, t: &TensorProto, name: &str) -> Result<Const, ImportError> {
        let bad =
            |reason: String| ImportError::Tensor { path: self.path.to_path_buf(), name: name.to_string(), reason };
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| bad(format!("dimension {d} is negative"))))
            .collect::<Result<_, _>>()?;
        let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS);
        let count = count.ok_or_else(|| bad(format!("shape {dims:?} holds too many values")))?;
        let width = match t.data_type {
            data_type::FLOAT | data_type::INT32 => 4,
            data_type::INT64 => 8,
            other => return Err(bad(format!("element type {other} is not float32, int32 or int64"))),
        };
        let int = t.data_type != data_type::FLOAT;
        let external;
        let raw: &[u8] = if t.data_location == EXTERNAL {
            external = self.external(t, count * width).map_err(bad)?;
            &external
        } else {
            &t.raw_data
        };
        let data: Vec<f64> = if !raw.is_empty() || t.data_location == EXTERNAL {
            if raw.len() != count * width {
                return Err(bad(format!("holds {} bytes; shape {dims:?} needs {}", raw.len(), count * width)));
            }
            match t.data_type {
                data_type::FLOAT => {
                    raw.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
                }
                data_type::INT32 => {
                    raw.chunks_exact(4).map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
                }
                _ => raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64)
                    .collect(),
            }
        } else {
            match t.data_type {
                data_type::FLOAT => t.float_data.iter().map(|&v| f64::from(v)).collect(),
                data_type::INT32 => t.int32_data.iter().map(|&v| f64::from(v)).collect(),
                _ => t.int64_data.iter().map(|&v| v as f64).collect(),
            }
        };
        if data.len() != count {
            return Err(bad(format!("holds {} values; shape {dims:?} needs {count}", data.len())));
        }
        Ok(Const { dims, data, int })
    }

    /// The bytes of an external tensor: `location` relative to the model's directory (no
    /// absolute path, no `..`), `offset` and `length` within that file.
    fn external(&self, t: &TensorProto, expected: usize) -> Result<Vec<u8>, String> {
        let get = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
        let location = get("location").ok_or("its external data has no location")?;
        let rel = Path::new(location);
        if !rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(format!("its external data `{location}` is not a path inside the model's directory"));
        }
        let file = self.dir.join(rel);
        let number = |k: &str, default: u64| -> Result<u64, String> {
            get(k).map_or(Ok(default), |v| v.parse().map_err(|_| format!("its external data's {k} `{v}` is no number")))
        };
        let offset = number("offset", 0)?;
        let length = number("length", expected as u64)?;
        if length != expected as u64 {
            return Err(format!("its external data is {length} bytes; its shape needs {expected}"));
        }
        use std::io::{Read, Seek, SeekFrom};
        let mut f =
            std::fs::File::open(&file).map_err(|e| format!("cannot read its external data {}: {e}", file.display()))?;
        let size = f.metadata().map_err(|e| format!("cannot read {}: {e}", file.display()))?.len();
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(format!(
                "its external data lies at bytes {offset}..{} of {}, which has {size}",
                offset.saturating_add(length),
                file.display()
            ));
        }
        f.seek(SeekFrom::Start(offset)).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let mut buf = vec![0u8; expected];
        f.read_exact(&mut buf).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        Ok(buf)
    }

    fn value(&self, node: &NodeProto, i: usize) -> Result<Option<&Value>, ImportError> {
        match node.input.get(i).filter(|n| !n.is_empty()) {
            None => Ok(None),
            Some(name) => self
                .values
                .get(name)
                .map(Some)
                .ok_or_else(|| self.unsupported(node, format!("its input `{name}` is not computed before it"))),
        }
    }

    fn konst(&self, node: &NodeProto, i: usize) -> Result<Option<Const>, ImportError> {
        match self.value(node, i)? {
            None => Ok(None),
            Some(Value::Const(c)) => Ok(Some(c.clone())),
            Some(_) => Err(self.unsupported(node, format!("input {} must be a constant here", i + 1))),
        }
    }

    fn map(&self, node: &NodeProto, i: usize) -> Result<usize, ImportError> {
        match self.value(node, i)? {
            Some(Value::Map(n)) => Ok(*n),
            _ => Err(self.unsupported(node, format!("input {} must be a feature map [N, C, H, W]", i + 1))),
        }
    }

    fn set(&mut self, node: &NodeProto, v: Value) {
        if let Some(out) = node.output.first() {
            self.values.insert(out.clone(), v);
        }
    }

    fn push(&mut self, node: &NodeProto, op: Op, inputs: Vec<usize>, channels: u32, hw: [u32; 2]) -> usize {
        let id = self.graph.nodes.len();
        self.graph.nodes.push(Node::new(op, inputs, channels, hw, &node_name(node), &node.op_type));
        self.set(node, Value::Map(id));
        id
    }

    /// `node` took channel ranges of a map of `channels` that are not equal parts: a
    /// warning of the import ([`Pinned`]).
    fn pinned(&mut self, node: &NodeProto, channels: u32, ranges: Vec<[u32; 2]>) {
        self.graph.pinned.push(Pinned { node: node_name(node), op: node.op_type.clone(), channels, ranges });
    }

    /// A channel count the language allows (1..=65,536), or an error naming the node.
    fn channels(&self, node: &NodeProto, c: u64) -> Result<u32, ImportError> {
        if (1..=MAX_CHANNELS).contains(&c) {
            Ok(c as u32)
        } else {
            Err(self.unsupported(node, format!("it makes {c} channels; slimc's maps have 1 to {MAX_CHANNELS}")))
        }
    }

    fn shape(&self, id: usize) -> (u32, [u32; 2]) {
        let n = &self.graph.nodes[id];
        (n.channels, n.hw)
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(self.unsupported(node, format!("operators of domain `{}` are not ONNX's own", node.domain)));
        }
        let inputs: Vec<Option<&Value>> =
            (0..node.input.len()).map(|i| self.value(node, i)).collect::<Result<_, _>>()?;
        // Shape arithmetic on constants (and `Shape` of a map) folds to a constant.
        let all_const = inputs.iter().all(|v| matches!(v, None | Some(Value::Const(_))));
        if all_const || node.op_type == "Shape" {
            if let Some(c) = self.fold(node)? {
                self.set(node, Value::Const(c));
                return Ok(());
            }
        }
        match node.op_type.as_str() {
            "Identity" | "Dropout" => {
                let v = self.value(node, 0)?.cloned().ok_or_else(|| self.unsupported(node, "it has no input"))?;
                self.set(node, v);
            }
            "Conv" => self.conv(node)?,
            "BatchNormalization" => self.batch_norm(node)?,
            "Relu" => self.act(node, Activation::Relu)?,
            "HardSwish" => self.act(node, Activation::Hswish)?,
            "Sigmoid" => self.act(node, Activation::Sigmoid)?,
            "Gelu" => {
                let approx = attr(node, "approximate").map(|a| String::from_utf8_lossy(&a.s).into_owned());
                if approx.as_deref().is_some_and(|a| a != "none") {
                    return Err(
                        self.unsupported(node, "the tanh approximation of GELU is not slimc's gelu (exact, erf)")
                    );
                }
                self.act(node, Activation::Gelu)?
            }
            "HardSigmoid" => {
                let (alpha, beta) = (attr_float(node, "alpha", 0.2), attr_float(node, "beta", 0.5));
                if (alpha - 1.0 / 6.0).abs() > 1e-6 || (beta - 0.5).abs() > 1e-6 {
                    return Err(self.unsupported(
                        node,
                        format!(
                            "hsigmoid is relu6(x + 3) / 6 (alpha 1/6, beta 0.5); this has alpha {alpha}, beta {beta}"
                        ),
                    ));
                }
                self.act(node, Activation::Hsigmoid)?
            }
            "Clip" => {
                let (lo, hi) = if self.opset < 11 {
                    (f64::from(attr_float(node, "min", f32::MIN)), f64::from(attr_float(node, "max", f32::MAX)))
                } else {
                    let lo = self.konst(node, 1)?.and_then(|c| c.scalar()).unwrap_or(f64::NEG_INFINITY);
                    let hi = self.konst(node, 2)?.and_then(|c| c.scalar()).unwrap_or(f64::INFINITY);
                    (lo, hi)
                };
                if lo == 0.0 && hi == 6.0 {
                    self.act(node, Activation::Relu6)?
                } else if lo == 0.0 && hi > 3e38 {
                    self.act(node, Activation::Relu)?
                } else {
                    return Err(self.unsupported(node, format!("a clip to [{lo}, {hi}] is neither relu nor relu6")));
                }
            }
            "Add" | "Sum" => self.add(node)?,
            "Mul" => self.mul(node)?,
            "Div" => self.div(node)?,
            "Erf" => match self.value(node, 0)? {
                Some(&Value::Gelu { node: x, step: 1, last }) => self.set(node, Value::Gelu { node: x, step: 2, last }),
                _ => {
                    return Err(
                        self.unsupported(node, "erf is read only as part of an exact GELU, x · (1 + erf(x / √2)) / 2")
                    )
                }
            },
            "Concat" => {
                let axis = attr_int(node, "axis", 0);
                let ids: Vec<usize> = (0..node.input.len()).map(|i| self.map(node, i)).collect::<Result<_, _>>()?;
                if axis != 1 {
                    return Err(
                        self.unsupported(node, format!("only channels (axis 1) are concatenated; this is axis {axis}"))
                    );
                }
                if let [one] = ids[..] {
                    self.set(node, Value::Map(one));
                    return Ok(());
                }
                let hw = self.shape(ids[0]).1;
                if ids.iter().any(|&i| self.shape(i).1 != hw) {
                    return Err(self.unsupported(node, "its inputs differ in height or width"));
                }
                let c = self.channels(node, ids.iter().map(|&i| u64::from(self.shape(i).0)).sum())?;
                self.push(node, Op::Concat, ids, c, hw);
            }
            "MaxPool" | "AveragePool" => self.pool(node)?,
            "GlobalAveragePool" => {
                let x = self.map(node, 0)?;
                let c = self.shape(x).0;
                self.push(node, Op::GlobalAvgPool, vec![x], c, [1, 1]);
            }
            "ReduceMean" => {
                let x = self.map(node, 0)?;
                let axes = match attr_ints(node, "axes") {
                    Some(a) => a,
                    None => self.konst(node, 1)?.map(|c| c.ints()).unwrap_or_default(),
                };
                let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + 4 } else { a }).collect();
                axes.sort_unstable();
                if axes != [2, 3] {
                    return Err(self.unsupported(
                        node,
                        format!("only a mean over height and width (axes 2, 3) is a pool; these are {axes:?}"),
                    ));
                }
                let c = self.shape(x).0;
                self.push(node, Op::GlobalAvgPool, vec![x], c, [1, 1]);
            }
            "Flatten" | "Reshape" => self.reshape(node)?,
            "Transpose" => self.transpose(node)?,
            "Gemm" => self.gemm(node)?,
            "MatMul" => self.matmul(node)?,
            "LayerNormalization" => self.layer_norm(node)?,
            "Gather" => self.gather(node)?,
            "Split" => self.split(node)?,
            "Slice" => self.slice(node)?,
            "Pad" => self.pad(node)?,
            _ => return Err(self.unsupported(node, "slimc has no op for it")),
        }
        Ok(())
    }

    fn act(&mut self, node: &NodeProto, a: Activation) -> Result<(), ImportError> {
        let (x, last) = self.any_map(node, 0)?;
        let (c, hw) = self.shape(x);
        self.push_in(node, Op::Act(a), vec![x], c, hw, last);
        Ok(())
    }

    /// A map in either layout: its node and whether it is channels last.
    fn any_map(&self, node: &NodeProto, i: usize) -> Result<(usize, bool), ImportError> {
        match self.value(node, i)? {
            Some(Value::Map(n)) => Ok((*n, false)),
            Some(Value::Last(n)) => Ok((*n, true)),
            _ => Err(self.unsupported(node, format!("input {} must be a feature map", i + 1))),
        }
    }

    /// [`Reader::push`], the output in the layout `last` says.
    fn push_in(&mut self, node: &NodeProto, op: Op, inputs: Vec<usize>, c: u32, hw: [u32; 2], last: bool) -> usize {
        let id = self.push(node, op, inputs, c, hw);
        if last {
            self.set(node, Value::Last(id));
        }
        id
    }

    /// LayerNormalization over the channels of a channels-last map.
    fn layer_norm(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = match self.value(node, 0)? {
            Some(Value::Last(x)) => *x,
            _ => return Err(self.unsupported(node, "slimc's layernorm normalises the channels at each position: the map must be channels last ([N, H, W, C])")),
        };
        let axis = attr_int(node, "axis", -1);
        if axis != -1 && axis != 3 {
            return Err(
                self.unsupported(node, format!("only the last axis (the channels) is normalised; this is axis {axis}"))
            );
        }
        let (c, hw) = self.shape(x);
        let gamma = self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "its scale is not a constant"))?;
        let beta = self
            .konst(node, 2)?
            .map_or_else(|| HostTensor { shape: vec![c as usize], data: vec![0.0; c as usize] }, |b| b.host());
        if gamma.dims != [c as usize] || beta.shape != [c as usize] {
            return Err(self.unsupported(node, format!("its scale and bias are not [{c}]")));
        }
        let eps = decimal(attr_float(node, "epsilon", 1e-5));
        let id = self.push_in(node, Op::LayerNorm { eps }, vec![x], c, hw, true);
        self.graph.nodes[id].weights = vec![("weight", gamma.host()), ("bias", beta)];
        Ok(())
    }

    /// `x W` on a channels-last map: a 1×1 conv (its bias from the `Add` after it).
    fn matmul(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = match self.value(node, 0)? {
            Some(Value::Last(x)) => *x,
            _ => {
                return Err(self
                    .unsupported(node, "a matrix product is read only on a channels-last map (a linear per position)"))
            }
        };
        let w = self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "its second operand is not a constant"))?;
        let (in_c, hw) = self.shape(x);
        if w.dims.len() != 2 || w.dims[0] != in_c as usize {
            return Err(self.unsupported(node, format!("its weight {:?} does not read {in_c} channels", w.dims)));
        }
        let t = crate::export::transpose(&w.host());
        let out = self.channels(node, t.shape[0] as u64)? as usize;
        let weight = HostTensor { shape: vec![out, in_c as usize, 1, 1], data: t.data };
        let op = Op::Conv {
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: Groups::Count(1),
            bias: false,
        };
        let id = self.push_in(node, op, vec![x], out as u32, hw, true);
        self.graph.nodes[id].weights.push(("weight", weight));
        Ok(())
    }

    fn conv(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = self.map(node, 0)?;
        let w = self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "it has no weight"))?;
        let b = self.konst(node, 2)?;
        let (in_c, [h, wd]) = self.shape(x);
        if w.dims.len() != 4 {
            return Err(self.unsupported(node, format!("only 2-D convolutions are read; its weight is {:?}", w.dims)));
        }
        let pair = |name: &str, default: i64| -> Result<[u32; 2], ImportError> {
            let v = attr_ints(node, name).unwrap_or_else(|| vec![default, default]);
            match v[..] {
                [a, b] if (1..=1024).contains(&a) && (1..=1024).contains(&b) => Ok([a as u32, b as u32]),
                _ => Err(self.unsupported(node, format!("its {name} {v:?} is not two numbers 1..1024"))),
            }
        };
        if !w.dims[2..].iter().all(|&k| (1..=1024).contains(&k)) {
            return Err(self.unsupported(node, format!("its kernel {:?} is not 1..1024 on each side", &w.dims[2..])));
        }
        let kernel = [w.dims[2] as u32, w.dims[3] as u32];
        let stride = pair("strides", 1)?;
        let dilation = pair("dilations", 1)?;
        let padding = self.pads(node, kernel, stride, dilation)?;
        let groups = attr_int(node, "group", 1);
        let out = self.channels(node, w.dims[0] as u64)?;
        if groups < 1 || in_c as i64 % groups != 0 || (w.dims[1] as i64).checked_mul(groups) != Some(i64::from(in_c)) {
            return Err(self.unsupported(
                node,
                format!("its weight {:?} does not fit {in_c} input channels in {groups} groups", w.dims),
            ));
        }
        let groups = groups as u32;
        let groups = if groups == 1 {
            Groups::Count(1)
        } else if groups == in_c && out == in_c {
            Groups::Depthwise
        } else {
            Groups::Width(in_c / groups)
        };
        let size = |n: u32, i: usize| {
            (i64::from(n) + 2 * i64::from(padding[i]) - i64::from(dilation[i]) * (i64::from(kernel[i]) - 1) - 1)
                / i64::from(stride[i])
                + 1
        };
        let (oh, ow) = (size(h, 0), size(wd, 1));
        if oh < 1 || ow < 1 {
            return Err(self.unsupported(node, format!("its kernel does not fit the {h}x{wd} map")));
        }
        if let Some(b) = &b {
            if b.dims != [out as usize] {
                return Err(self.unsupported(node, format!("its bias is {:?}, not [{out}]", b.dims)));
            }
        }
        let op = Op::Conv { kernel, stride, padding, dilation, groups, bias: b.is_some() };
        let id = self.push(node, op, vec![x], out, [oh as u32, ow as u32]);
        self.graph.nodes[id].weights.push(("weight", w.host()));
        if let Some(b) = b {
            self.graph.nodes[id].weights.push(("bias", b.host()));
        }
        Ok(())
    }

    /// Symmetric padding per axis from `pads` (or `auto_pad`).
    fn pads(
        &self,
        node: &NodeProto,
        kernel: [u32; 2],
        stride: [u32; 2],
        dilation: [u32; 2],
    ) -> Result<[u32; 2], ImportError> {
        let auto = attr(node, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned()).unwrap_or_default();
        match auto.as_str() {
            "" | "NOTSET" => {}
            "VALID" => return Ok([0, 0]),
            _ => {
                // SAME_*: symmetric only when the total padding is even at stride 1.
                let total = |i: usize| dilation[i] * (kernel[i] - 1);
                if stride == [1, 1] && total(0) % 2 == 0 && total(1) % 2 == 0 {
                    return Ok([total(0) / 2, total(1) / 2]);
                }
                return Err(self.unsupported(
                    node,
                    format!("auto_pad {auto} pads one side more than the other; slimc pads both sides alike"),
                ));
            }
        }
        let p = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
        match p[..] {
            [t, l, b, r] if t == b && l == r && (0..=1024).contains(&t) && (0..=1024).contains(&l) => {
                Ok([t as u32, l as u32])
            }
            _ => Err(self.unsupported(node, format!("its pads {p:?} are not the same on both sides of each axis"))),
        }
    }

    fn batch_norm(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = self.map(node, 0)?;
        let (c, hw) = self.shape(x);
        let mut ts = Vec::new();
        for (i, name) in [(1, "weight"), (2, "bias"), (3, "running_mean"), (4, "running_var")] {
            let t = self.konst(node, i)?.ok_or_else(|| self.unsupported(node, format!("it has no {name}")))?;
            if t.dims != [c as usize] {
                return Err(self.unsupported(node, format!("its {name} is {:?}, not [{c}]", t.dims)));
            }
            ts.push((name, t.host()));
        }
        if node.output.len() > 1 && node.output[1..].iter().any(|o| !o.is_empty()) {
            return Err(
                self.unsupported(node, "it updates running statistics (a training-mode graph); export in eval mode")
            );
        }
        // slimc's ε is fixed: σ² + ε is kept by shifting the variance.
        let eps = f64::from(attr_float(node, "epsilon", 1e-5));
        let shift = (eps - crate::runtime::BN_EPS) as f32;
        if let Some((_, var)) = ts.iter_mut().find(|(n, _)| *n == "running_var") {
            var.data.iter_mut().for_each(|v| *v += shift);
            if var.data.iter().any(|&v| v + crate::runtime::BN_EPS as f32 <= 0.0) {
                return Err(self.unsupported(node, "its running variance is not positive"));
            }
        }
        let id = self.push(node, Op::BatchNorm, vec![x], c, hw);
        self.graph.nodes[id].weights = ts;
        Ok(())
    }

    fn add(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let (a, b) = (self.value(node, 0)?.cloned(), self.value(node, 1)?.cloned());
        match (a, b) {
            // 1 + erf(x / √2).
            (Some(Value::Gelu { node: x, step: 2, last }), Some(Value::Const(c)))
            | (Some(Value::Const(c)), Some(Value::Gelu { node: x, step: 2, last }))
                if c.scalar() == Some(1.0) =>
            {
                self.set(node, Value::Gelu { node: x, step: 3, last });
                Ok(())
            }
            // A per-position linear's bias.
            (Some(Value::Last(x)), Some(Value::Const(b))) | (Some(Value::Const(b)), Some(Value::Last(x)))
                if matches!(self.graph.nodes[x].op, Op::Conv { bias: false, .. })
                    && b.data.len() == self.graph.nodes[x].channels as usize =>
            {
                let n = &mut self.graph.nodes[x];
                if let Op::Conv { bias, .. } = &mut n.op {
                    *bias = true;
                }
                n.weights.push(("bias", HostTensor { shape: vec![b.data.len()], data: b.host().data }));
                self.set(node, Value::Last(x));
                Ok(())
            }
            _ if node.input.len() >= 2 => {
                let ids: Vec<usize> = (0..node.input.len()).map(|i| self.map(node, i)).collect::<Result<_, _>>()?;
                let s = self.shape(ids[0]);
                if ids.iter().any(|&i| self.shape(i) != s) {
                    let shapes: Vec<String> = ids
                        .iter()
                        .map(|&i| {
                            let (c, [h, w]) = self.shape(i);
                            format!("{c}x{h}x{w}")
                        })
                        .collect();
                    return Err(self.unsupported(
                        node,
                        format!("its inputs differ in shape ({}); slimc adds maps of one shape", shapes.join(" vs ")),
                    ));
                }
                self.push(node, Op::Add, ids, s.0, s.1);
                Ok(())
            }
            _ => Err(self.unsupported(node, "it has one input")),
        }
    }

    fn mul(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let (a, b) = (self.value(node, 0)?.cloned(), self.value(node, 1)?.cloned());
        match (a, b) {
            // x · (1 + erf(x / √2)), then · 0.5.
            (Some(Value::Map(x) | Value::Last(x)), Some(Value::Gelu { node: y, step: 3, last }))
            | (Some(Value::Gelu { node: y, step: 3, last }), Some(Value::Map(x) | Value::Last(x)))
                if x == y =>
            {
                self.set(node, Value::Gelu { node: x, step: 4, last });
                Ok(())
            }
            (Some(Value::Gelu { node: x, step: 4, last }), Some(Value::Const(c)))
            | (Some(Value::Const(c)), Some(Value::Gelu { node: x, step: 4, last }))
                if c.scalar() == Some(0.5) =>
            {
                let (ch, hw) = self.shape(x);
                self.push_in(node, Op::Act(Activation::Gelu), vec![x], ch, hw, last);
                Ok(())
            }
            // A learned per-channel scale (ConvNeXt's layer scale): [C, 1, 1] on a map, [C]
            // on a channels-last one.
            (Some(Value::Map(x) | Value::Last(x)), Some(Value::Const(g)))
            | (Some(Value::Const(g)), Some(Value::Map(x) | Value::Last(x)))
                if g.data.len() == self.graph.nodes[x].channels as usize && g.data.len() > 1 =>
            {
                let last = matches!(self.value(node, 0)?, Some(Value::Last(_)))
                    || matches!(self.value(node, 1)?, Some(Value::Last(_)));
                let per_channel = if last { g.dims.len() == 1 } else { g.dims.len() == 3 && g.dims[1..] == [1, 1] };
                if !per_channel {
                    return Err(self.unsupported(node, format!("a factor {:?} is not one per channel", g.dims)));
                }
                let (ch, hw) = self.shape(x);
                let id = self.push_in(node, Op::LayerScale { init: 1e-6 }, vec![x], ch, hw, last);
                self.graph.nodes[id]
                    .weights
                    .push(("weight", HostTensor { shape: vec![ch as usize], data: g.host().data }));
                Ok(())
            }
            (Some(Value::Map(a)), Some(Value::Map(b))) => {
                // x · sigmoid(x): swish.
                for (x, s) in [(a, b), (b, a)] {
                    let sn = &self.graph.nodes[s];
                    if sn.op == Op::Act(Activation::Sigmoid) && sn.inputs == [x] {
                        let (c, hw) = self.shape(x);
                        self.push(node, Op::Act(Activation::Swish), vec![x], c, hw);
                        return Ok(());
                    }
                }
                // The map first, its gate second.
                let (a, b) = if self.shape(a).1 == [1, 1] && self.shape(b).1 != [1, 1] { (b, a) } else { (a, b) };
                let ((ca, hwa), (cb, hwb)) = (self.shape(a), self.shape(b));
                let fits = |c: u32, hw: [u32; 2]| (c == ca || c == 1) && (hw == hwa || hw == [1, 1]);
                if !(fits(cb, hwb) && (ca, hwa) != (1, [1, 1]) || cb == ca && hwb == hwa) {
                    return Err(self.unsupported(node, format!("a {ca}x{}x{} map times a {cb}x{}x{} one: slimc multiplies maps of one shape, a 1x1 channel gate or a one-channel map", hwa[0], hwa[1], hwb[0], hwb[1])));
                }
                self.push(node, Op::Mul, vec![a, b], ca, hwa);
                Ok(())
            }
            _ => Err(self.unsupported(node, "slimc multiplies two feature maps (a gate); a constant factor has no op")),
        }
    }

    fn div(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        match (self.value(node, 0)?.cloned(), self.konst(node, 1).ok().flatten()) {
            (Some(Value::Map(x) | Value::Last(x)), Some(c))
                if c.scalar().is_some_and(|v| (v - std::f64::consts::SQRT_2).abs() < 1e-5) =>
            {
                let last = matches!(self.value(node, 0)?, Some(Value::Last(_)));
                self.set(node, Value::Gelu { node: x, step: 1, last });
                Ok(())
            }
            _ => {
                Err(self
                    .unsupported(node, "a division is read only as part of an exact GELU, x · (1 + erf(x / √2)) / 2"))
            }
        }
    }

    fn pool(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = self.map(node, 0)?;
        let (c, [h, w]) = self.shape(x);
        let k = attr_ints(node, "kernel_shape").unwrap_or_default();
        let [kh, kw] = k[..] else {
            return Err(self.unsupported(node, format!("its kernel {k:?} is not 2-D")));
        };
        if !(1..=1024).contains(&kh) || !(1..=1024).contains(&kw) {
            return Err(self.unsupported(node, format!("its kernel {k:?} is not 1..1024 on each side")));
        }
        let kernel = [kh as u32, kw as u32];
        let s = attr_ints(node, "strides").unwrap_or_else(|| vec![1, 1]);
        let stride = match s[..] {
            [a, b] if (1..=1024).contains(&a) && (1..=1024).contains(&b) => [a as u32, b as u32],
            _ => return Err(self.unsupported(node, format!("its strides {s:?} are not two numbers 1..1024"))),
        };
        if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err(self.unsupported(node, "slimc's pools are not dilated"));
        }
        let padding = self.pads(node, kernel, stride, [1, 1])?;
        let ceil_mode = attr_int(node, "ceil_mode", 0) != 0;
        let size = |n: u32, i: usize| {
            let span = i64::from(n) + 2 * i64::from(padding[i]) - i64::from(kernel[i]);
            let s = i64::from(stride[i]);
            let mut o = if ceil_mode { (span + s - 1).div_euclid(s) + 1 } else { span.div_euclid(s) + 1 };
            if ceil_mode && (o - 1) * s >= i64::from(n) + i64::from(padding[i]) {
                o -= 1;
            }
            o
        };
        let (oh, ow) = (size(h, 0), size(w, 1));
        if oh < 1 || ow < 1 {
            return Err(self.unsupported(node, format!("its window does not fit the {h}x{w} map")));
        }
        let op = if node.op_type == "MaxPool" {
            if node.output.len() > 1 && !node.output[1].is_empty() {
                return Err(self.unsupported(node, "its indices output has no slimc op"));
            }
            Op::MaxPool { kernel, stride, padding, ceil_mode }
        } else {
            let count_include_pad = attr_int(node, "count_include_pad", 0) != 0;
            Op::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad }
        };
        self.push(node, op, vec![x], c, [oh as u32, ow as u32]);
        Ok(())
    }

    /// Flatten and Reshape: to a vector (`[N, F]`), or the two reshapes of a channel shuffle.
    fn reshape(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let v = self.value(node, 0)?.cloned();
        let target = if node.op_type == "Flatten" {
            let axis = attr_int(node, "axis", 1);
            if axis != 1 {
                return Err(
                    self.unsupported(node, format!("only a flatten from axis 1 keeps the batch; this is axis {axis}"))
                );
            }
            vec![0, -1]
        } else {
            self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "its shape is not a constant"))?.ints()
        };
        match v {
            Some(Value::Map(x)) => {
                let (c, [h, w]) = self.shape(x);
                let features = i64::from(c) * i64::from(h) * i64::from(w);
                match target[..] {
                    // A 1×1 map's values as one vector (batch 1): the map itself.
                    [f] if (f == -1 || f == features) && [h, w] == [1, 1] => self.set(node, Value::Map(x)),
                    [_, f] if f == -1 || f == features => {
                        if [h, w] == [1, 1] {
                            self.set(node, Value::Map(x));
                        } else {
                            let f = self.channels(node, features as u64)?;
                            self.push(node, Op::Flatten, vec![x], f, [1, 1]);
                        }
                    }
                    [_, g, cg, th, tw]
                        if g > 0
                            && g.checked_mul(cg) == Some(i64::from(c))
                            && [th, tw] == [i64::from(h), i64::from(w)] =>
                    {
                        self.set(node, Value::Grouped { node: x, groups: g as u32 });
                    }
                    [_, tc, th, tw] if tc == i64::from(c) && th == i64::from(h) && tw == i64::from(w) => {
                        self.set(node, Value::Map(x));
                    }
                    _ => {
                        return Err(self.unsupported(
                            node,
                            format!(
                            "a reshape of a {c}x{h}x{w} map to {target:?} is neither a flatten nor a channel shuffle"
                        ),
                        ))
                    }
                }
            }
            Some(Value::Swapped { node: x, groups }) => {
                let (c, [h, w]) = self.shape(x);
                if target.len() == 4 && target[1] == i64::from(c) && target[2..] == [i64::from(h), i64::from(w)] {
                    self.push(node, Op::Shuffle { groups }, vec![x], c, [h, w]);
                } else {
                    return Err(self.unsupported(
                        node,
                        format!("a reshape to {target:?} after a group transpose is no channel shuffle"),
                    ));
                }
            }
            _ => return Err(self.unsupported(node, "it reshapes something other than a feature map")),
        }
        Ok(())
    }

    fn transpose(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let perm = attr_ints(node, "perm").unwrap_or_default();
        match self.value(node, 0)?.cloned() {
            Some(Value::Grouped { node: x, groups }) if perm == [0, 2, 1, 3, 4] => {
                self.set(node, Value::Swapped { node: x, groups });
                Ok(())
            }
            Some(Value::Map(x)) if perm == [0, 2, 3, 1] => {
                self.set(node, Value::Last(x));
                Ok(())
            }
            Some(Value::Last(x)) if perm == [0, 3, 1, 2] => {
                self.set(node, Value::Map(x));
                Ok(())
            }
            _ => Err(self.unsupported(
                node,
                format!("a transpose {perm:?} of a feature map has no slimc op (only a channel shuffle's)"),
            )),
        }
    }

    fn gemm(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = self.map(node, 0)?;
        let (in_c, hw) = self.shape(x);
        if hw != [1, 1] {
            return Err(self.unsupported(node, "a linear layer reads a vector; flatten or pool the map first"));
        }
        let w = self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "its weight is not a constant"))?;
        let b = self.konst(node, 2)?;
        if attr_int(node, "transA", 0) != 0
            || attr_float(node, "alpha", 1.0) != 1.0
            || attr_float(node, "beta", 1.0) != 1.0
        {
            return Err(self.unsupported(node, "only y = x Wᵀ + b (or x W + b) is a linear layer"));
        }
        if w.dims.len() != 2 {
            return Err(self.unsupported(node, format!("its weight is {:?}, not a matrix", w.dims)));
        }
        // PyTorch's layout is [out, in].
        let weight = if attr_int(node, "transB", 0) != 0 { w.host() } else { crate::export::transpose(&w.host()) };
        if weight.shape[1] != in_c as usize {
            return Err(self.unsupported(node, format!("its weight {:?} does not read {in_c} features", w.dims)));
        }
        let out = self.channels(node, weight.shape[0] as u64)?;
        let bias = match b {
            Some(b) if b.data.len() == out as usize => {
                Some(HostTensor { shape: vec![out as usize], data: b.host().data })
            }
            Some(b) => return Err(self.unsupported(node, format!("its bias {:?} is not one value per output", b.dims))),
            None => None,
        };
        let id = self.push(node, Op::Linear { bias: bias.is_some() }, vec![x], out, [1, 1]);
        self.graph.nodes[id].weights.push(("weight", weight));
        if let Some(b) = bias {
            self.graph.nodes[id].weights.push(("bias", b));
        }
        Ok(())
    }

    /// Gathering every channel of a 1×1 map in order (the default exporter's `as_strided`
    /// after a pooled mean): the map itself.
    fn gather(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = self.map(node, 0)?;
        let idx = self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "its indices are not constant"))?;
        let (c, hw) = self.shape(x);
        let in_order = idx.ints().iter().enumerate().all(|(i, &v)| v == i as i64);
        if hw == [1, 1] && idx.data.len() == c as usize && in_order && attr_int(node, "axis", 0) == 0 {
            self.set(node, Value::Map(x));
            Ok(())
        } else {
            Err(self.unsupported(node, "a gather from a feature map has no slimc op"))
        }
    }

    fn split(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = self.map(node, 0)?;
        let (c, hw) = self.shape(x);
        let axis = attr_int(node, "axis", 0);
        if axis != 1 {
            return Err(self.unsupported(node, format!("only channels (axis 1) are split; this is axis {axis}")));
        }
        let parts = node.output.len() as u32;
        let sizes = match attr_ints(node, "split") {
            Some(s) => s,
            None => self.konst(node, 1)?.map(|c| c.ints()).unwrap_or_default(),
        };
        if parts == 0 || sizes.is_empty() && c % parts != 0 {
            return Err(self.unsupported(node, format!("{c} channels do not split into {parts} equal parts")));
        }
        let equal = c % parts == 0 && (sizes.is_empty() || sizes.iter().all(|&s| s == i64::from(c / parts)));
        if !equal
            && (sizes.len() != parts as usize
                || sizes.iter().any(|&s| s < 1)
                || sizes.iter().sum::<i64>() != i64::from(c))
        {
            return Err(
                self.unsupported(node, format!("its sizes {sizes:?} do not split {c} channels into {parts} parts"))
            );
        }
        let (mut start, mut ranges) = (0, Vec::new());
        for (part, out) in node.output.iter().enumerate() {
            // Equal parts slim; unequal ones are fixed slices, which pin the map they read.
            let (op, n) = if equal {
                (Op::Split { part: part as u32, parts }, c / parts)
            } else {
                let n = sizes[part] as u32;
                ranges.push([start, start + n]);
                (Op::Slice { start, end: start + n }, n)
            };
            start += n;
            let id = self.graph.nodes.len();
            self.graph.nodes.push(Node::new(op, vec![x], n, hw, &node_name(node), &node.op_type));
            self.values.insert(out.clone(), Value::Map(id));
        }
        if !equal {
            self.pinned(node, c, ranges);
        }
        Ok(())
    }

    /// A slice of channels (`split`) or of every `s`-th row and column (`subsample`).
    fn slice(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let v = self.value(node, 0)?.cloned();
        let starts = self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "its starts are not constant"))?.ints();
        let ends = self.konst(node, 2)?.ok_or_else(|| self.unsupported(node, "its ends are not constant"))?.ints();
        let axes = self.konst(node, 3)?.map_or_else(|| (0..starts.len() as i64).collect(), |c| c.ints());
        let steps = self.konst(node, 4)?.map_or_else(|| vec![1; starts.len()], |c| c.ints());
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(self.unsupported(node, "its starts, ends, axes and steps differ in length"));
        }
        let x = match v {
            Some(Value::Map(x)) | Some(Value::Rows { node: x, .. }) => x,
            _ => return Err(self.unsupported(node, "it slices something other than a feature map")),
        };
        let (c, [h, w]) = self.shape(x);
        let dims = [1i64, i64::from(c), i64::from(h), i64::from(w)];
        let mut rows = match v {
            Some(Value::Rows { stride, offset, .. }) => Some((stride, offset)),
            _ => None,
        };
        let mut cols = None;
        let mut chans = None;
        for (i, &axis) in axes.iter().enumerate() {
            let axis = if axis < 0 { axis + 4 } else { axis };
            let n = *dims
                .get(axis as usize)
                .ok_or_else(|| self.unsupported(node, format!("axis {axis} is out of range")))?;
            let clamp = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
            let (s, e, st) = (clamp(starts[i]), clamp(ends[i]), steps.get(i).copied().unwrap_or(1));
            if st < 1 {
                return Err(self.unsupported(node, "a slice backwards has no slimc op"));
            }
            let whole = s == 0 && e == n && st == 1;
            match axis {
                0 if whole => {}
                1 if !whole => chans = Some((s, e, st)),
                1 => {}
                2 if !(s == 0 && e == n && st == 1) => rows = Some((st as u32, s as u32)),
                2 => {}
                3 if !(s == 0 && e == n && st == 1) => cols = Some((st as u32, s as u32)),
                3 => {}
                _ => return Err(self.unsupported(node, format!("a slice of axis {axis} has no slimc op"))),
            }
            if axis >= 2 && e != n {
                return Err(self.unsupported(node, "a slice that stops before the map's edge has no slimc op"));
            }
        }
        match (chans, rows, cols) {
            (Some((s, e, 1)), None, None) => {
                let len = e - s;
                if len <= 0 {
                    return Err(self.unsupported(node, format!("channels {s}..{e} of {c} are none")));
                }
                if i64::from(c) % len == 0 && s % len == 0 {
                    let parts = (i64::from(c) / len) as u32;
                    self.push(node, Op::Split { part: (s / len) as u32, parts }, vec![x], len as u32, [h, w]);
                } else {
                    // Not one of equal parts: a fixed slice, which pins the map it reads.
                    let (start, end) = (s as u32, e as u32);
                    self.push(node, Op::Slice { start, end }, vec![x], end - start, [h, w]);
                    self.pinned(node, c, vec![[start, end]]);
                }
            }
            (None, Some((s, oy)), None) if !matches!(v, Some(Value::Rows { .. })) => {
                self.set(node, Value::Rows { node: x, stride: s, offset: oy });
            }
            (None, Some((sy, oy)), Some((sx, ox))) if sy == sx && oy < sy && ox < sx && oy < h && ox < w => {
                let out = |n: u32, o: u32| (n - o).div_ceil(sy);
                self.push(node, Op::Subsample { stride: sy, offset: [oy, ox] }, vec![x], c, [out(h, oy), out(w, ox)]);
            }
            (None, None, None) => self.set(node, Value::Map(x)),
            _ => {
                return Err(
                    self.unsupported(node, "this slice is neither equal channel parts nor every s-th row and column")
                )
            }
        }
        Ok(())
    }

    /// Zero channels appended (an option-A shortcut).
    fn pad(&mut self, node: &NodeProto) -> Result<(), ImportError> {
        let x = self.map(node, 0)?;
        let mode =
            attr(node, "mode").map(|a| String::from_utf8_lossy(&a.s).into_owned()).unwrap_or_else(|| "constant".into());
        let pads = match attr_ints(node, "pads") {
            Some(p) => p,
            None => self.konst(node, 1)?.ok_or_else(|| self.unsupported(node, "its pads are not constant"))?.ints(),
        };
        let value = self.konst(node, 2)?.and_then(|c| c.scalar()).unwrap_or(0.0);
        let (c, hw) = self.shape(x);
        match pads[..] {
            [0, 0, 0, 0, 0, after, 0, 0] if mode == "constant" && value == 0.0 && after >= 0 => {
                let out = self.channels(node, u64::from(c).saturating_add(after as u64))?;
                self.push(node, Op::ZeroPad, vec![x], out, hw);
                Ok(())
            }
            _ => Err(self.unsupported(
                node,
                format!("only zero channels appended are padding slimc has (pads {pads:?}, mode {mode})"),
            )),
        }
    }

    /// Folds a node of constants (and `Shape` of a map) to a constant; `None` where the
    /// node is not shape arithmetic.
    fn fold(&self, node: &NodeProto) -> Result<Option<Const>, ImportError> {
        let c = |i: usize| self.konst(node, i);
        let need = |i: usize| -> Result<Const, ImportError> {
            c(i)?.ok_or_else(|| self.unsupported(node, format!("input {} is missing", i + 1)))
        };
        let out = match node.op_type.as_str() {
            "Constant" => {
                let a = node.attribute.first().ok_or_else(|| self.unsupported(node, "it has no value"))?;
                match a.name.as_str() {
                    "value" => self.tensor(
                        a.t.as_ref().ok_or_else(|| self.unsupported(node, "its value is no tensor"))?,
                        &node_name(node),
                    )?,
                    "value_float" => Const { dims: vec![], data: vec![f64::from(a.f)], int: false },
                    "value_int" => Const { dims: vec![], data: vec![a.i as f64], int: true },
                    "value_floats" => Const {
                        dims: vec![a.floats.len()],
                        data: a.floats.iter().map(|&v| f64::from(v)).collect(),
                        int: false,
                    },
                    "value_ints" => {
                        Const { dims: vec![a.ints.len()], data: a.ints.iter().map(|&v| v as f64).collect(), int: true }
                    }
                    other => return Err(self.unsupported(node, format!("a constant's `{other}` is not read"))),
                }
            }
            "Shape" => {
                let dims: Vec<f64> = match self.value(node, 0)? {
                    Some(Value::Map(n)) => {
                        let (c, [h, w]) = self.shape(*n);
                        vec![1.0, f64::from(c), f64::from(h), f64::from(w)]
                    }
                    Some(Value::Const(k)) => k.dims.iter().map(|&d| d as f64).collect(),
                    _ => return Err(self.unsupported(node, "the shape of this value is not known")),
                };
                let n = dims.len() as i64;
                let norm = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) } as usize;
                let (s, e) = (norm(attr_int(node, "start", 0)), norm(attr_int(node, "end", n)));
                let data = dims[s..e.max(s)].to_vec();
                Const { dims: vec![data.len()], data, int: true }
            }
            "Identity" => need(0)?,
            "Cast" => {
                let mut k = need(0)?;
                let to = attr_int(node, "to", 1) as i32;
                k.int = to != data_type::FLOAT;
                if k.int {
                    k.data.iter_mut().for_each(|v| *v = v.trunc());
                }
                k
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let (a, b) = (need(0)?, need(1)?);
                let f = |x: f64, y: f64| match node.op_type.as_str() {
                    "Add" => x + y,
                    "Sub" => x - y,
                    "Mul" => x * y,
                    _ if a.int && y != 0.0 => (x / y).trunc(),
                    _ => x / y,
                };
                broadcast(&a, &b, f).ok_or_else(|| self.unsupported(node, "its constant operands do not broadcast"))?
            }
            "Unsqueeze" | "Squeeze" => {
                let mut k = need(0)?;
                let axes = attr_ints(node, "axes").or(c(1)?.map(|a| a.ints())).unwrap_or_default();
                if node.op_type == "Unsqueeze" {
                    let rank = (k.dims.len() + axes.len()) as i64;
                    let mut axes: Vec<usize> =
                        axes.iter().map(|&a| if a < 0 { a + rank } else { a } as usize).collect();
                    axes.sort_unstable();
                    for a in axes {
                        k.dims.insert(a.min(k.dims.len()), 1);
                    }
                } else {
                    k.dims.retain(|&d| d != 1);
                }
                k
            }
            "Concat" => {
                let parts: Vec<Const> = (0..node.input.len()).map(need).collect::<Result<_, _>>()?;
                if parts.iter().any(|p| p.dims.len() > 1) {
                    return Err(self.unsupported(node, "only 1-D constants are concatenated"));
                }
                let data: Vec<f64> = parts.iter().flat_map(|p| p.data.clone()).collect();
                Const { dims: vec![data.len()], data, int: parts.first().is_some_and(|p| p.int) }
            }
            "Gather" => {
                let (a, i) = (need(0)?, need(1)?);
                if a.dims.len() != 1 || attr_int(node, "axis", 0) != 0 {
                    return Err(self.unsupported(node, "only a 1-D constant is gathered from"));
                }
                let n = a.data.len() as i64;
                let data = i
                    .ints()
                    .iter()
                    .map(|&j| a.data.get(if j < 0 { j + n } else { j } as usize).copied())
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| self.unsupported(node, "an index is out of range"))?;
                Const { dims: i.dims.clone(), data, int: a.int }
            }
            "Slice" => {
                let a = need(0)?;
                let rank = a.dims.len() as i64;
                let (starts, ends) = (need(1)?.ints(), need(2)?.ints());
                let axes = c(3)?.map_or_else(|| (0..starts.len() as i64).collect(), |k| k.ints());
                let steps = c(4)?.map_or_else(|| vec![1; starts.len()], |k| k.ints());
                // Per axis, the indices kept, in order.
                let mut keep: Vec<Vec<usize>> = a.dims.iter().map(|&d| (0..d).collect()).collect();
                for (i, &axis) in axes.iter().enumerate() {
                    let axis = if axis < 0 { axis + rank } else { axis };
                    let d = *a
                        .dims
                        .get(axis as usize)
                        .ok_or_else(|| self.unsupported(node, "a slice axis is out of range"))?
                        as i64;
                    let step = steps.get(i).copied().unwrap_or(1);
                    let (s, e) = (starts.get(i).copied().unwrap_or(0), ends.get(i).copied().unwrap_or(d));
                    let mut idx = Vec::new();
                    if step > 0 {
                        let norm = |v: i64| if v < 0 { (v + d).max(0) } else { v.min(d) };
                        let mut j = norm(s);
                        while j < norm(e) {
                            idx.push(j as usize);
                            j += step;
                        }
                    } else if step < 0 {
                        let norm = |v: i64| if v < 0 { (v + d).max(-1) } else { v.min(d - 1) };
                        let (mut j, e) = (norm(s), norm(e));
                        while j > e {
                            idx.push(j as usize);
                            j += step;
                        }
                    } else {
                        return Err(self.unsupported(node, "a slice step of 0"));
                    }
                    keep[axis as usize] = idx;
                }
                let dims: Vec<usize> = keep.iter().map(Vec::len).collect();
                let strides: Vec<usize> = (0..a.dims.len()).map(|i| a.dims[i + 1..].iter().product()).collect();
                let data = each_index(&dims, |pos| {
                    a.data[pos.iter().enumerate().map(|(i, &p)| keep[i][p] * strides[i]).sum::<usize>()]
                });
                Const { dims, data, int: a.int }
            }
            "Reshape" => {
                let (mut a, shape) = (need(0)?, need(1)?.ints());
                let total = a.data.len() as i64;
                let known: i64 = shape
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d == 0 {
                            a.dims.get(i).copied().unwrap_or(1) as i64
                        } else if d < 0 {
                            1
                        } else {
                            d
                        }
                    })
                    .product();
                a.dims = shape
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d == 0 {
                            a.dims.get(i).copied().unwrap_or(1)
                        } else if d < 0 {
                            (total / known.max(1)) as usize
                        } else {
                            d as usize
                        }
                    })
                    .collect();
                if a.dims.iter().product::<usize>() != a.data.len() {
                    return Err(self.unsupported(node, "a constant reshaped to another count"));
                }
                a
            }
            "Transpose" => {
                let a = need(0)?;
                let rank = a.dims.len();
                let perm: Vec<usize> = attr_ints(node, "perm")
                    .map_or_else(|| (0..rank).rev().collect(), |p| p.iter().map(|&v| v as usize).collect());
                if perm.len() != rank || perm.iter().any(|&p| p >= rank) {
                    return Err(self.unsupported(node, "its permutation does not fit the constant"));
                }
                let dims: Vec<usize> = perm.iter().map(|&p| a.dims[p]).collect();
                let strides: Vec<usize> = (0..rank).map(|i| a.dims[i + 1..].iter().product()).collect();
                let data = each_index(&dims, |idx| {
                    a.data[idx.iter().enumerate().map(|(i, &v)| v * strides[perm[i]]).sum::<usize>()]
                });
                Const { dims, data, int: a.int }
            }
            "ConstantOfShape" => {
                let shape = need(0)?.ints();
                let (v, int) = match attr(node, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => {
                        let k = self.tensor(t, &node_name(node))?;
                        (k.data.first().copied().unwrap_or(0.0), k.int)
                    }
                    None => (0.0, false),
                };
                let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
                let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_FOLDED);
                let Some(n) = n else {
                    return Err(self.unsupported(
                        node,
                        format!("a constant of {dims:?} is more than the {MAX_FOLDED} values slimc folds"),
                    ));
                };
                Const { dims, data: vec![v; n], int }
            }
            _ => return Ok(None),
        };
        Ok(Some(out))
    }
}

/// `f` of every index of a row-major array of `dims`, in order (a constant's values
/// gathered into a new shape).
fn each_index<T>(dims: &[usize], mut f: impl FnMut(&[usize]) -> T) -> Vec<T> {
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut pos = vec![0usize; dims.len()];
    for _ in 0..total {
        out.push(f(&pos));
        for d in (0..dims.len()).rev() {
            pos[d] += 1;
            if pos[d] < dims[d] {
                break;
            }
            pos[d] = 0;
        }
    }
    out
}

/// `f` elementwise over two constants of one shape, or one of them a single value.
fn broadcast(a: &Const, b: &Const, f: impl Fn(f64, f64) -> f64) -> Option<Const> {
    let int = a.int && b.int;
    if a.data.len() == b.data.len() {
        Some(Const { dims: a.dims.clone(), data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(), int })
    } else if b.data.len() == 1 {
        Some(Const { dims: a.dims.clone(), data: a.data.iter().map(|&x| f(x, b.data[0])).collect(), int })
    } else if a.data.len() == 1 {
        Some(Const { dims: b.dims.clone(), data: b.data.iter().map(|&y| f(a.data[0], y)).collect(), int })
    } else {
        None
    }
}
