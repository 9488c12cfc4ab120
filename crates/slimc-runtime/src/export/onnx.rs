//! ONNX (opset 17) for a [`Subnet`]: one node (or a few) per IR layer, the subnet's
//! parameters as initializers, tensors named after the layers. Input `input`
//! `[N, C, H, W]` (N free), output `logits` `[N, classes]`.

use prost::Message;

use super::proto::*;
use super::{FixedParams, HostTensor, Subnet};
use crate::ir::{Activation, Heads, Interp, Layer, LayerShape, Op, Resize, Window};
use crate::runtime::BN_EPS;

/// The operator set written (BatchNormalization-15, HardSwish-14, Clip/Pad/Slice with
/// tensor inputs).
pub const OPSET: i64 = 17;
/// ONNX IR version 8 (ONNX 1.10+, what opset 17 models declare).
pub const IR_VERSION: i64 = 8;

/// The ONNX model of `subnet`, encoded.
pub fn to_bytes(subnet: &Subnet) -> Vec<u8> {
    model(subnet).encode_to_vec()
}

fn model(subnet: &Subnet) -> ModelProto {
    let mut g = Graph::default();
    let net = &subnet.net;
    let [c, h, w] = net.input.map(i64::from);
    // The name of each layer's output tensor; pass-through layers reuse their input's.
    let mut names: Vec<String> = vec![String::new(); net.layers.len()];
    for (id, l) in net.layers.iter() {
        let i = id.index();
        let ins: Vec<String> = l.inputs.iter().map(|j| names[j.index()].clone()).collect();
        let input_hw = l.inputs.first().map_or([h, w].map(|v| v as u32), |j| net.layers[*j].hw);
        names[i] = layer(&mut g, l, input_hw, subnet.shapes[i], &subnet.layers[i], ins);
    }
    let last = names[net.output.index()].clone();
    let logits = g.node("Flatten", vec![last], "logits", vec![int("axis", 1)]);
    let classes = i64::from(subnet.shapes[net.output.index()].out);
    let graph = GraphProto {
        node: g.nodes,
        name: net.name.clone(),
        initializer: g.inits,
        input: vec![value_info("input", vec![Dim::Param("N"), Dim::Value(c), Dim::Value(h), Dim::Value(w)])],
        output: vec![value_info(&logits, vec![Dim::Param("N"), Dim::Value(classes)])],
    };
    let metadata_props =
        subnet.metadata().into_iter().map(|(key, value)| StringStringEntryProto { key, value }).collect();
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "slimc".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} at channels {:?}, exported by slimc", net.name, subnet.info.channels),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        metadata_props,
    }
}

/// The node(s) of one IR layer; returns the name of its output tensor (its input's, for
/// layers that pass it on).
fn layer(g: &mut Graph, l: &Layer, input_hw: [u32; 2], s: LayerShape, p: &FixedParams, ins: Vec<String>) -> String {
    let out = l.name.clone();
    let x = ins.first().cloned().unwrap_or_default();
    match &l.op {
        Op::Input => "input".to_string(),
        Op::Conv { kernel, stride, padding, dilation, .. } => {
            let inputs = weighted(g, x, &out, p);
            let mut attrs = window(*kernel, *stride, *padding);
            attrs.push(ints("dilations", dilation.map(i64::from).to_vec()));
            attrs.push(int("group", i64::from(s.groups)));
            g.node("Conv", inputs, &out, attrs)
        }
        Op::ConvTranspose { kernel, stride, padding, output_padding, .. } => {
            let inputs = weighted(g, x, &out, p);
            let mut attrs = window(*kernel, *stride, *padding);
            attrs.push(ints("output_padding", output_padding.map(i64::from).to_vec()));
            g.node("ConvTranspose", inputs, &out, attrs)
        }
        Op::Linear { .. } => {
            let flat = g.node("Flatten", vec![x], &format!("{out}.flat"), vec![int("axis", 1)]);
            let inputs = weighted(g, flat, &out, p);
            let y = g.node("Gemm", inputs, &format!("{out}.gemm"), vec![]);
            let shape = g.int64s(&format!("{out}.shape"), &[0, i64::from(s.out), 1, 1]);
            g.node("Reshape", vec![y, shape], &out, vec![])
        }
        Op::BatchNorm if *p == FixedParams::Folded => x,
        Op::BatchNorm => {
            // γ, β, running mean, running variance: BatchNormalization's input order.
            let mut inputs = vec![x];
            inputs.extend(p.tensors().iter().map(|(suffix, t)| g.init(&format!("{out}.{suffix}"), t)));
            g.node("BatchNormalization", inputs, &out, vec![float("epsilon", BN_EPS as f32)])
        }
        Op::Act(a) => activation(g, *a, x, &out),
        Op::MaxPool { kernel, stride, padding, ceil_mode } | Op::AvgPool { kernel, stride, padding, ceil_mode, .. } => {
            let mut attrs = window(*kernel, *stride, *padding);
            attrs.push(int("ceil_mode", i64::from(*ceil_mode)));
            let op = match l.op {
                Op::AvgPool { count_include_pad, .. } => {
                    attrs.push(int("count_include_pad", i64::from(count_include_pad)));
                    "AveragePool"
                }
                _ => "MaxPool",
            };
            g.node(op, vec![x], &out, attrs)
        }
        Op::GlobalAvgPool => g.node("GlobalAveragePool", vec![x], &out, vec![]),
        Op::AdaptiveAvgPool { out: size } => adaptive_avg_pool(g, x, &out, input_hw, *size, s.out),
        Op::Flatten if input_hw == [1, 1] => x,
        Op::Flatten => {
            let shape = g.int64s(&format!("{out}.shape"), &[0, -1, 1, 1]);
            g.node("Reshape", vec![x, shape], &out, vec![])
        }
        Op::LayerNorm { eps } => {
            // LayerNormalization normalises trailing axes: channels last, then back.
            let last = g.node("Transpose", vec![x], &format!("{out}.nhwc"), vec![ints("perm", vec![0, 2, 3, 1])]);
            let inputs = weighted(g, last, &out, p);
            let attrs = vec![int("axis", -1), float("epsilon", *eps as f32)];
            let y = g.node("LayerNormalization", inputs, &format!("{out}.norm"), attrs);
            g.node("Transpose", vec![y], &out, vec![ints("perm", vec![0, 3, 1, 2])])
        }
        Op::LayerScale { .. } => {
            let FixedParams::Scale { gamma, .. } = p else { unreachable!("layer scale holds a γ") };
            let column = HostTensor { shape: vec![gamma.data.len(), 1, 1], data: gamma.data.clone() };
            let gamma = g.init(&format!("{out}.weight"), &column);
            g.node("Mul", vec![x, gamma], &out, vec![])
        }
        Op::Upsample { to, mode } => {
            // No region of interest (an empty name omits an optional input); a whole scale
            // as `scales`, else the output size as `sizes`, which in opset 17 names every
            // axis: the input's N (dynamic) and C, then H and W, fixed or another tensor's.
            let roi = String::new();
            let (scales, sizes) = match to {
                Resize::Scale(s) => {
                    (g.floats(&format!("{out}.scales"), &[1.0, 1.0, *s as f32, *s as f32]), String::new())
                }
                Resize::Size(_) | Resize::Like => {
                    let nc =
                        g.node("Shape", vec![x.clone()], &format!("{out}.nc"), vec![int("start", 0), int("end", 2)]);
                    let hw = match to {
                        Resize::Size(size) => g.int64s(&format!("{out}.hw"), &size.map(i64::from)),
                        _ => g.node(
                            "Shape",
                            vec![ins[1].clone()],
                            &format!("{out}.hw"),
                            vec![int("start", 2), int("end", 4)],
                        ),
                    };
                    (String::new(), g.node("Concat", vec![nc, hw], &format!("{out}.sizes"), vec![int("axis", 0)]))
                }
            };
            let attrs = match mode {
                Interp::Nearest => vec![
                    string("mode", "nearest"),
                    string("coordinate_transformation_mode", "asymmetric"),
                    string("nearest_mode", "floor"),
                ],
                Interp::Bilinear => {
                    vec![string("mode", "linear"), string("coordinate_transformation_mode", "half_pixel")]
                }
            };
            g.node("Resize", vec![x, roi, scales, sizes], &out, attrs)
        }
        Op::Tokens => {
            let shape = g.int64s(&format!("{out}.shape"), &[0, 0, 1, -1]);
            g.node("Reshape", vec![x, shape], &out, vec![])
        }
        Op::Token { index } => {
            let row = g.int64s(&format!("{out}.positions"), &[0, 0, -1]);
            let row = g.node("Reshape", vec![x, row], &format!("{out}.row"), vec![]);
            let at = g.int64s(&format!("{out}.index"), &[i64::from(*index)]);
            let picked = g.node("Gather", vec![row, at], &format!("{out}.picked"), vec![int("axis", 2)]);
            let shape = g.int64s(&format!("{out}.shape"), &[0, 0, 1, 1]);
            g.node("Reshape", vec![picked, shape], &out, vec![])
        }
        Op::ClassToken | Op::PosEmbed { .. } => {
            let FixedParams::Weighted { weight, .. } = p else { unreachable!("a token table holds a weight") };
            let [c, h, w] = [s.out as usize, l.hw[0] as usize, l.hw[1] as usize];
            if l.op == Op::ClassToken {
                // The token `[1, C, 1, 1]` repeated over the batch, then the row after it.
                let token = HostTensor { shape: vec![1, c, 1, 1], data: weight.data.clone() };
                let token = g.init(&format!("{out}.weight"), &token);
                let n = g.node("Shape", vec![x.clone()], &format!("{out}.n"), vec![int("start", 0), int("end", 1)]);
                let rest = g.int64s(&format!("{out}.c11"), &[c as i64, 1, 1]);
                let shape = g.node("Concat", vec![n, rest], &format!("{out}.shape"), vec![int("axis", 0)]);
                let tokens = g.node("Expand", vec![token, shape], &format!("{out}.tokens"), vec![]);
                g.node("Concat", vec![tokens, x], &out, vec![int("axis", 3)])
            } else {
                let table = HostTensor { shape: vec![1, c, h, w], data: weight.data.clone() };
                let table = g.init(&format!("{out}.weight"), &table);
                g.node("Add", vec![x, table], &out, vec![])
            }
        }
        Op::Attend { heads, share, window } => attend(g, &ins, &out, (l.hw, s.out), (*heads, *share, *window), p),
        Op::Dropout { .. } | Op::DropPath { .. } => x,
        Op::Add | Op::Mul => {
            let op = if l.op == Op::Add { "Add" } else { "Mul" };
            let mut acc = x;
            for (k, b) in ins.iter().enumerate().skip(1) {
                let name = if k + 1 == ins.len() { out.clone() } else { format!("{out}.{k}") };
                acc = g.node(op, vec![acc, b.clone()], &name, vec![]);
            }
            acc
        }
        Op::Concat => g.node("Concat", ins, &out, vec![int("axis", 1)]),
        Op::Split { part, parts } => {
            let c = s.in_c / parts;
            g.channels(x, &out, part * c, part * c + c)
        }
        Op::Slice { start, end } => g.channels(x, &out, *start, *end),
        Op::Shuffle { groups } => {
            let (gr, c) = (i64::from(*groups), i64::from(s.in_c));
            let [lh, lw] = l.hw.map(i64::from);
            let split = g.int64s(&format!("{out}.split"), &[0, gr, c / gr, lh * lw]);
            let y = g.node("Reshape", vec![x, split], &format!("{out}.grouped"), vec![]);
            let y = g.node("Transpose", vec![y], &format!("{out}.swapped"), vec![ints("perm", vec![0, 2, 1, 3])]);
            let back = g.int64s(&format!("{out}.shape"), &[0, c, lh, lw]);
            g.node("Reshape", vec![y, back], &out, vec![])
        }
        Op::Subsample { stride, offset } => {
            let st = i64::from(*stride);
            let starts = g.int64s(&format!("{out}.starts"), &offset.map(i64::from));
            let ends = g.int64s(&format!("{out}.ends"), &[i64::MAX, i64::MAX]);
            let axes = g.int64s(&format!("{out}.axes"), &[2, 3]);
            let steps = g.int64s(&format!("{out}.steps"), &[st, st]);
            g.node("Slice", vec![x, starts, ends, axes, steps], &out, vec![])
        }
        Op::ZeroPad if s.out <= s.in_c => x,
        Op::ZeroPad => {
            let extra = i64::from(s.out - s.in_c);
            let pads = g.int64s(&format!("{out}.pads"), &[0, 0, 0, 0, 0, extra, 0, 0]);
            g.node("Pad", vec![x, pads], &out, vec![])
        }
    }
}

/// A layer's input followed by its weight and, if it has one, its bias (initializers).
fn weighted(g: &mut Graph, x: String, out: &str, p: &FixedParams) -> Vec<String> {
    let mut inputs = vec![x];
    inputs.extend(p.tensors().iter().map(|(suffix, t)| g.init(&format!("{out}.{suffix}"), t)));
    inputs
}

/// `kernel_shape`, `strides` and symmetric `pads` of a sliding window.
fn window(kernel: [u32; 2], stride: [u32; 2], padding: [u32; 2]) -> Vec<AttributeProto> {
    let [ph, pw] = padding.map(i64::from);
    vec![
        ints("kernel_shape", kernel.map(i64::from).to_vec()),
        ints("strides", stride.map(i64::from).to_vec()),
        ints("pads", vec![ph, pw, ph, pw]),
    ]
}

/// Adaptive average pooling: an AveragePool when the sizes divide, else the average as a
/// product with a constant `[H·W, OH·OW]` matrix whose column `o` averages `o`'s window.
fn adaptive_avg_pool(g: &mut Graph, x: String, out: &str, [h, w]: [u32; 2], [oh, ow]: [u32; 2], c: u32) -> String {
    if h % oh == 0 && w % ow == 0 {
        let k = [h / oh, w / ow];
        return g.node("AveragePool", vec![x], out, window(k, k, [0, 0]));
    }
    let window = |i: u32, size: u32, n: u32| (i * size / n)..((i + 1) * size).div_ceil(n);
    let (hw, ohw) = ((h * w) as usize, (oh * ow) as usize);
    let mut m = vec![0f32; hw * ohw];
    for (i, j) in (0..oh).flat_map(|i| (0..ow).map(move |j| (i, j))) {
        let (rows, cols) = (window(i, h, oh), window(j, w, ow));
        let weight = 1.0 / (rows.len() * cols.len()) as f32;
        for (r, q) in rows.flat_map(|r| cols.clone().map(move |q| (r, q))) {
            m[(r * w + q) as usize * ohw + (i * ow + j) as usize] = weight;
        }
    }
    let c = i64::from(c);
    let flat_shape = g.int64s(&format!("{out}.flat_shape"), &[0, c, i64::from(h * w)]);
    let flat = g.node("Reshape", vec![x, flat_shape], &format!("{out}.flat"), vec![]);
    let matrix = g.init(&format!("{out}.windows"), &HostTensor { shape: vec![hw, ohw], data: m });
    let y = g.node("MatMul", vec![flat, matrix], &format!("{out}.pooled"), vec![]);
    let shape = g.int64s(&format!("{out}.shape"), &[0, c, i64::from(oh), i64::from(ow)]);
    g.node("Reshape", vec![y, shape], out, vec![])
}

fn activation(g: &mut Graph, a: Activation, x: String, out: &str) -> String {
    match a {
        Activation::Relu => g.node("Relu", vec![x], out, vec![]),
        Activation::Relu6 => {
            let lo = g.scalar(&format!("{out}.min"), 0.0);
            let hi = g.scalar(&format!("{out}.max"), 6.0);
            g.node("Clip", vec![x, lo, hi], out, vec![])
        }
        Activation::Hswish => g.node("HardSwish", vec![x], out, vec![]),
        Activation::Swish => {
            let gate = g.node("Sigmoid", vec![x.clone()], &format!("{out}.gate"), vec![]);
            g.node("Mul", vec![x, gate], out, vec![])
        }
        Activation::Sigmoid => g.node("Sigmoid", vec![x], out, vec![]),
        // relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)
        Activation::Hsigmoid => {
            g.node("HardSigmoid", vec![x], out, vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)])
        }
        // Opset 17 has no Gelu (it arrives in 20): x · (1 + erf(x / √2)) / 2 from Erf.
        Activation::Gelu => {
            let root2 = g.scalar(&format!("{out}.sqrt2"), std::f32::consts::SQRT_2);
            let one = g.scalar(&format!("{out}.one"), 1.0);
            let half = g.scalar(&format!("{out}.half"), 0.5);
            let scaled = g.node("Div", vec![x.clone(), root2], &format!("{out}.scaled"), vec![]);
            let erf = g.node("Erf", vec![scaled], &format!("{out}.erf"), vec![]);
            let gate = g.node("Add", vec![erf, one], &format!("{out}.gate"), vec![]);
            let halved = g.node("Mul", vec![x, half], &format!("{out}.halved"), vec![]);
            g.node("Mul", vec![halved, gate], out, vec![])
        }
    }
}

/// [`Op::Attend`] on `[N, C, H, W]` inputs, as the runtime computes it: rolled (Slice and
/// Concat per axis), cut into windows and heads (Reshape, Transpose), key/value heads
/// repeated for their query heads (Expand), the relative position bias gathered from the
/// table by a constant index, the shifted window's mask a constant, then back.
fn attend(
    g: &mut Graph,
    ins: &[String],
    out: &str,
    ([h, w], c): ([u32; 2], u32),
    (heads, share, window): (Heads, u32, Option<Window>),
    p: &FixedParams,
) -> String {
    let (nh, d) = heads.split(c);
    let (nh, d, share, c) = (i64::from(nh), i64::from(d), i64::from(share), i64::from(c));
    let (h, w) = (h as usize, w as usize);
    let (size, shift) = match window {
        Some(win) => ([win.size as usize; 2], [win.shift_on(h), win.shift_on(w)]),
        None => ([h, w], [0, 0]),
    };
    let [gh, gw] = [h / size[0], w / size[1]].map(|v| v as i64);
    let tokens = (size[0] * size[1]) as i64;
    let by_count = matches!(heads, Heads::Count(_));
    // Rolls by `by[i]` pixels along axis 2 + i: `x[by:] ++ x[:by]`.
    let roll = |g: &mut Graph, x: String, by: [usize; 2], name: &str| {
        let mut x = x;
        for (axis, (&by, side)) in by.iter().zip([h, w]).enumerate() {
            if by == 0 {
                continue;
            }
            let at = format!("{out}.{name}{axis}");
            let axes = g.int64s(&format!("{at}.axes"), &[axis as i64 + 2]);
            let (cut, end) =
                (g.int64s(&format!("{at}.cut"), &[by as i64]), g.int64s(&format!("{at}.end"), &[side as i64]));
            let zero = g.int64s(&format!("{at}.zero"), &[0]);
            let tail = g.node("Slice", vec![x.clone(), cut.clone(), end, axes.clone()], &format!("{at}.tail"), vec![]);
            let head = g.node("Slice", vec![x, zero, cut, axes], &format!("{at}.head"), vec![]);
            x = g.node("Concat", vec![tail, head], &at, vec![int("axis", axis as i64 + 2)]);
        }
        x
    };
    // [N, C', H, W] → [N·windows, heads, d, L].
    let split = |g: &mut Graph, x: &String, heads: i64, name: &str| {
        let channels = heads * d;
        let x = roll(g, x.clone(), shift, &format!("{name}.roll"));
        let rows = if window.is_some() {
            let cut =
                g.int64s(&format!("{out}.{name}.cut_shape"), &[0, channels, gh, size[0] as i64, gw, size[1] as i64]);
            let x = g.node("Reshape", vec![x, cut], &format!("{out}.{name}.cut"), vec![]);
            let perm = ints("perm", vec![0, 2, 4, 1, 3, 5]);
            g.node("Transpose", vec![x], &format!("{out}.{name}.windows"), vec![perm])
        } else {
            x
        };
        let (shape, perm) = if by_count { ([-1, d, heads, tokens], true) } else { ([-1, heads, d, tokens], false) };
        let shape = g.int64s(&format!("{out}.{name}.heads"), &shape);
        let x = g.node("Reshape", vec![rows, shape], &format!("{out}.{name}.split"), vec![]);
        if perm {
            g.node("Transpose", vec![x], &format!("{out}.{name}.bycount"), vec![ints("perm", vec![0, 2, 1, 3])])
        } else {
            x
        }
    };
    let tokens_first = || ints("perm", vec![0, 1, 3, 2]);
    let repeat = |g: &mut Graph, x: String, name: &str| {
        if share == 1 {
            return x;
        }
        let axes = g.int64s(&format!("{out}.{name}.axes"), &[2]);
        let x = g.node("Unsqueeze", vec![x, axes], &format!("{out}.{name}.unsq"), vec![]);
        let times = g.int64s(&format!("{out}.{name}.times"), &[1, 1, share, 1, 1]);
        let x = g.node("Expand", vec![x, times], &format!("{out}.{name}.shared"), vec![]);
        let shape = g.int64s(&format!("{out}.{name}.repeated"), &[0, nh, d, tokens]);
        g.node("Reshape", vec![x, shape], &format!("{out}.{name}.rep"), vec![])
    };
    let scale = g.scalar(&format!("{out}.scale"), 1.0 / (d as f32).sqrt());
    let q = g.node("Mul", vec![ins[0].clone(), scale], &format!("{out}.qs"), vec![]);
    let q = split(g, &q, nh, "q");
    let q = g.node("Transpose", vec![q], &format!("{out}.q.rows"), vec![tokens_first()]);
    let k = split(g, &ins[1], nh / share, "k");
    let k = repeat(g, k, "k");
    let v = split(g, &ins[2], nh / share, "v");
    let v = repeat(g, v, "v");
    let v = g.node("Transpose", vec![v], &format!("{out}.v.rows"), vec![tokens_first()]);
    let mut scores = g.node("MatMul", vec![q, k], &format!("{out}.scores"), vec![]);
    if let (Some(win), FixedParams::Weighted { weight, .. }) = (window, p) {
        let table = HostTensor { shape: vec![nh as usize, win.relative_positions()], data: weight.data.clone() };
        let table = g.init(&format!("{out}.weight"), &table);
        let index: Vec<i64> = win.relative_index().into_iter().map(|i| i as i64).collect();
        let raw = index.iter().flat_map(|x| x.to_le_bytes()).collect();
        let index = g.constant(&format!("{out}.relative_index"), vec![tokens, tokens], data_type::INT64, raw);
        let bias = g.node("Gather", vec![table, index], &format!("{out}.bias"), vec![int("axis", 1)]);
        scores = g.node("Add", vec![scores, bias], &format!("{out}.biased"), vec![]);
        if let Some(mask) = win.mask([h, w]) {
            let raw = mask.iter().flat_map(|x| x.to_le_bytes()).collect();
            let mask = g.constant(&format!("{out}.mask"), vec![1, gh * gw, 1, tokens, tokens], data_type::FLOAT, raw);
            let grouped = g.int64s(&format!("{out}.grouped"), &[-1, gh * gw, nh, tokens, tokens]);
            let s = g.node("Reshape", vec![scores, grouped], &format!("{out}.by_window"), vec![]);
            let s = g.node("Add", vec![s, mask], &format!("{out}.masked"), vec![]);
            let flat = g.int64s(&format!("{out}.ungrouped"), &[-1, nh, tokens, tokens]);
            scores = g.node("Reshape", vec![s, flat], &format!("{out}.masked_scores"), vec![]);
        }
    }
    let weights = g.node("Softmax", vec![scores], &format!("{out}.weights"), vec![int("axis", -1)]);
    let y = g.node("MatMul", vec![weights, v], &format!("{out}.tokens"), vec![]);
    // [N·windows, heads, L, d] → channels by head ([.., heads, d, L]) or by dimension.
    let perm = if by_count { vec![0, 3, 1, 2] } else { vec![0, 1, 3, 2] };
    let y = g.node("Transpose", vec![y], &format!("{out}.channels"), vec![ints("perm", perm)]);
    let y = if window.is_some() {
        let grid = g.int64s(&format!("{out}.grid"), &[-1, gh, gw, c, size[0] as i64, size[1] as i64]);
        let y = g.node("Reshape", vec![y, grid], &format!("{out}.by_grid"), vec![]);
        let perm = ints("perm", vec![0, 3, 1, 4, 2, 5]);
        g.node("Transpose", vec![y], &format!("{out}.merged"), vec![perm])
    } else {
        y
    };
    let back = g.int64s(&format!("{out}.shape"), &[-1, c, h as i64, w as i64]);
    if shift == [0, 0] {
        return g.node("Reshape", vec![y, back], out, vec![]);
    }
    let y = g.node("Reshape", vec![y, back], &format!("{out}.shifted"), vec![]);
    // Rolling back by `shift` is rolling on by `side − shift`.
    let back_by = [0, 1].map(|i| if shift[i] == 0 { 0 } else { [h, w][i] - shift[i] });
    let y = roll(g, y, back_by, "unroll");
    g.node("Identity", vec![y], out, vec![])
}

/// Nodes and initializers being collected.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

impl Graph {
    /// Adds a node with one output and returns the output's name.
    fn node(&mut self, op: &str, input: Vec<String>, out: &str, attribute: Vec<AttributeProto>) -> String {
        self.nodes.push(NodeProto {
            input,
            output: vec![out.to_string()],
            name: out.to_string(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        out.to_string()
    }

    fn init(&mut self, name: &str, t: &HostTensor) -> String {
        self.inits.push(TensorProto {
            dims: t.shape.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.to_string(),
            raw_data: t.bytes(),
            ..Default::default()
        });
        name.to_string()
    }

    /// A constant initializer: `raw` little-endian values of `data_type` with shape `dims`.
    fn constant(&mut self, name: &str, dims: Vec<i64>, data_type: i32, raw_data: Vec<u8>) -> String {
        self.inits.push(TensorProto { dims, data_type, name: name.to_string(), raw_data, ..Default::default() });
        name.to_string()
    }

    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.constant(name, vec![], data_type::FLOAT, v.to_le_bytes().to_vec())
    }

    fn floats(&mut self, name: &str, v: &[f32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, vec![v.len() as i64], data_type::FLOAT, raw)
    }

    /// Channels `[start, end)` of `x`: a Slice on axis 1 named `out`.
    fn channels(&mut self, x: String, out: &str, start: u32, end: u32) -> String {
        let starts = self.int64s(&format!("{out}.starts"), &[i64::from(start)]);
        let ends = self.int64s(&format!("{out}.ends"), &[i64::from(end)]);
        let axes = self.int64s(&format!("{out}.axes"), &[1]);
        self.node("Slice", vec![x, starts, ends, axes], out, vec![])
    }

    fn int64s(&mut self, name: &str, v: &[i64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, vec![v.len() as i64], data_type::INT64, raw)
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i, r#type: attribute_type::INT, ..Default::default() }
}

fn ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto { name: name.into(), ints, r#type: attribute_type::INTS, ..Default::default() }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto { name: name.into(), s: s.as_bytes().to_vec(), r#type: attribute_type::STRING, ..Default::default() }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), f, r#type: attribute_type::FLOAT, ..Default::default() }
}

enum Dim {
    Param(&'static str),
    Value(i64),
}

fn value_info(name: &str, dims: Vec<Dim>) -> ValueInfoProto {
    let dim = dims
        .into_iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Param(p) => DimValue::DimParam(p.to_string()),
                Dim::Value(v) => DimValue::DimValue(v),
            }),
        })
        .collect();
    let tensor_type = TypeTensor { elem_type: data_type::FLOAT, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto { name: name.to_string(), r#type: Some(TypeProto { tensor_type: Some(tensor_type) }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_protobuf() {
        let m = ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    op_type: "Conv".into(),
                    attribute: vec![ints("pads", vec![1, 1, 1, 1]), int("group", 4), float("epsilon", 1e-5)],
                    ..Default::default()
                }],
                input: vec![value_info("input", vec![Dim::Param("N"), Dim::Value(3)])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = m.encode_to_vec();
        assert_eq!(ModelProto::decode(bytes.as_slice()).unwrap(), m);
        // onnx.proto: ModelProto.ir_version is field 1, a varint: key byte (1 << 3) | 0.
        assert_eq!(&bytes[..2], &[0x08, IR_VERSION as u8]);
    }
}
