//! The runtime against first principles: a slimmed forward equals a separately built
//! fixed-width network (plain `burn::nn` layers) whose weights are copied from the active
//! slices; gradients of inactive slices are exactly zero; the active parameter count is
//! `slimc cost`'s; BN calibration fills statistics and restores accuracy.

mod common;

use std::sync::Arc;

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2dConfig, AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::{activation, Distribution, ElementConversion, Int, Tensor, TensorData};

use slimc_lang::ir::{Activation, Heads, Interp, LayerShape, Network, Op, ParamValue, Window};
use slimc_lang::Options;
use slimc_runtime::runtime::device::{Cpu, CpuTrain};
use slimc_runtime::runtime::{calibrate, BnSet, LayerParams, Mode, SlimNet, WidthConfig};

use rand::rngs::StdRng;
use rand::SeedableRng;

/// Deterministic test data, independent of the backend's global RNG (tests run in parallel).
fn data<const D: usize>(shape: [usize; D], mean: f64, std: f64, seed: u64) -> Tensor<Cpu, D> {
    let mut rng = StdRng::seed_from_u64(seed);
    slimc_runtime::runtime::init::sample(
        shape,
        rand_distr::Normal::new(mean, std).unwrap(),
        &mut rng,
        &Default::default(),
    )
}

use common::{condition_bn, small, ZOO};

fn max_abs_diff<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
    (a - b).abs().max().into_scalar().elem::<f32>()
}

/// One plain layer of the fixed-width reference network.
enum Plain<B: Backend> {
    Conv(Conv2d<B>),
    Linear(Linear<B>),
    Norm(BatchNorm<B>),
    LayerNorm(LayerNorm<B>),
    Scale(Tensor<B, 1>),
    /// A class token's or position embedding's active table `[C, P]`.
    Table(Tensor<B, 2>),
    /// A transposed conv's active weight `[in, out, kh, kw]`, bias, stride, padding and output padding.
    ConvT(Tensor<B, 4>, Option<Tensor<B, 1>>, [usize; 6]),
    Other,
}

/// Builds the fixed-width network for `cfg` from plain Burn layers, copying the active
/// slices of `slim`'s parameters and the statistics of `stats`.
fn fixed_network<B: Backend>(
    slim: &SlimNet<B>,
    shapes: &[LayerShape],
    stats: &BnSet<B>,
    device: &B::Device,
) -> Vec<Plain<B>> {
    let net = &slim.net;
    net.layers
        .iter()
        .map(|(id, l)| {
            let s = shapes[id.index()];
            let p = &slim.layers[id.index()];
            let (i, o) = (s.in_c as usize, s.out as usize);
            match &l.op {
                Op::Conv { kernel, stride, padding, dilation, bias, .. } => {
                    let [kh, kw] = kernel.map(|v| v as usize);
                    let g = s.groups as usize;
                    let mut conv = Conv2dConfig::new([i, o], [kh, kw])
                        .with_stride(stride.map(|v| v as usize))
                        .with_dilation(dilation.map(|v| v as usize))
                        .with_padding(PaddingConfig2d::Explicit(
                            padding[0] as usize,
                            padding[1] as usize,
                            padding[0] as usize,
                            padding[1] as usize,
                        ))
                        .with_groups(g)
                        .with_bias(*bias)
                        .init::<B>(device);
                    let kernel = p.kernel().unwrap();
                    let full = kernel.weight.val();
                    conv.weight = Param::from_tensor(full.slice([0..o, 0..i / g, 0..kh, 0..kw]));
                    if let Some(b) = &kernel.bias {
                        conv.bias = Some(Param::from_tensor(b.val().slice(0..o)));
                    }
                    Plain::Conv(conv)
                }
                Op::Linear { bias } => {
                    let mut lin = LinearConfig::new(i, o).with_bias(*bias).init::<B>(device);
                    let matrix = p.matrix().unwrap();
                    let full = matrix.weight.val();
                    // After a flatten of a map, input feature (c, y, x) is row c·H·W + y·W + x of
                    // the full weight: gather the rows of the active channels one by one.
                    let source = &net.layers[l.inputs[0]];
                    let rows = match source.op {
                        Op::Flatten if net.layers[source.inputs[0]].hw != [1, 1] => {
                            let [h, w] = net.layers[source.inputs[0]].hw.map(|v| v as usize);
                            let c = i / (h * w);
                            let idx: Vec<i64> =
                                (0..c).flat_map(|ch| (0..h * w).map(move |q| (ch * h * w + q) as i64)).collect();
                            let idx = Tensor::<B, 1, burn::tensor::Int>::from_ints(idx.as_slice(), device);
                            full.select(0, idx)
                        }
                        _ => full,
                    };
                    lin.weight = Param::from_tensor(rows.slice([0..i, 0..o]));
                    if let Some(b) = &matrix.bias {
                        lin.bias = Some(Param::from_tensor(b.val().slice(0..o)));
                    }
                    Plain::Linear(lin)
                }
                Op::BatchNorm => {
                    let mut bn = BatchNormConfig::new(o).with_epsilon(1e-5).init::<B>(device);
                    let sw = 0;
                    let (gamma, beta) = p.affine().unwrap().at(sw);
                    bn.gamma = Param::from_tensor(gamma.slice(0..o));
                    bn.beta = Param::from_tensor(beta.slice(0..o));
                    let (m, v) = stats.layers[id.index()].clone().expect("calibrated");
                    bn.running_mean = burn::module::RunningState::new(m.slice(0..o));
                    bn.running_var = burn::module::RunningState::new(v.slice(0..o));
                    Plain::Norm(bn)
                }
                Op::LayerNorm { eps } => {
                    let mut ln = LayerNormConfig::new(o).with_epsilon(*eps).init::<B>(device);
                    let (gamma, beta) = p.affine().unwrap().at(0);
                    ln.gamma = Param::from_tensor(gamma.slice(0..o));
                    ln.beta = Some(Param::from_tensor(beta.slice(0..o)));
                    Plain::LayerNorm(ln)
                }
                Op::LayerScale { .. } => Plain::Scale(p.scale().unwrap().gamma.val().slice(0..o)),
                Op::ClassToken | Op::PosEmbed { .. } => {
                    let table = p.matrix().unwrap().weight.val();
                    let positions = table.dims()[1];
                    Plain::Table(table.slice([0..o, 0..positions]))
                }
                // The relative position bias of the active heads.
                Op::Attend { heads, window: Some(_), .. } => {
                    let table = p.matrix().unwrap().weight.val();
                    let positions = table.dims()[1];
                    Plain::Table(table.slice([0..heads.split(o as u32).0 as usize, 0..positions]))
                }
                Op::ConvTranspose { kernel, stride, padding, output_padding, .. } => {
                    let [kh, kw] = kernel.map(|v| v as usize);
                    let kernel = p.kernel().unwrap();
                    let w = kernel.weight.val().slice([0..i, 0..o, 0..kh, 0..kw]);
                    let b = kernel.bias.as_ref().map(|b| b.val().slice(0..o));
                    let [s0, s1, p0, p1, q0, q1] =
                        [stride[0], stride[1], padding[0], padding[1], output_padding[0], output_padding[1]];
                    Plain::ConvT(w, b, [s0, s1, p0, p1, q0, q1].map(|v| v as usize))
                }
                _ => Plain::Other,
            }
        })
        .collect()
}

/// A transposed conv as the textbook identity: spread the input with `s − 1` zeros between
/// pixels, pad by `k − 1 − p` (plus the output padding after), and run a plain stride-1
/// conv with the kernel flipped and its in/out axes swapped.
fn conv_transpose_reference<B: Backend>(
    x: Tensor<B, 4>,
    w: &Tensor<B, 4>,
    b: &Option<Tensor<B, 1>>,
    [s0, s1, p0, p1, q0, q1]: [usize; 6],
) -> Tensor<B, 4> {
    let [n, c, h, wd] = x.dims();
    let [_, o, kh, kw] = w.dims();
    let mut spread = Tensor::<B, 4>::zeros([n, c, (h - 1) * s0 + 1, (wd - 1) * s1 + 1], &x.device());
    for y in 0..h {
        for z in 0..wd {
            let pixel = x.clone().narrow(2, y, 1).narrow(3, z, 1);
            spread = spread.slice_assign([0..n, 0..c, y * s0..y * s0 + 1, z * s1..z * s1 + 1], pixel);
        }
    }
    let padded = spread.pad([(kh - 1 - p0, kh - 1 - p0 + q0), (kw - 1 - p1, kw - 1 - p1 + q1)], 0.0);
    let kernel = w.clone().flip([2, 3]).swap_dims(0, 1);
    let conv = Conv2dConfig::new([c, o], [kh, kw]).with_bias(false).init::<B>(&x.device());
    let conv = Conv2d { weight: Param::from_tensor(kernel), ..conv };
    let y = conv.forward(padded);
    match b {
        Some(b) => y + b.clone().reshape([1, o, 1, 1]),
        None => y,
    }
}

/// Adaptive average pooling from its definition: output cell `i` of a side `H` averages
/// rows `floor(i·H / OH) .. ceil((i + 1)·H / OH)`.
fn adaptive_avg_pool<B: Backend>(t: Tensor<B, 4>, [oh, ow]: [usize; 2]) -> Tensor<B, 4> {
    let [_, _, h, w] = t.dims();
    let window = |i: usize, size: usize, n: usize| (i * size / n, ((i + 1) * size).div_ceil(n));
    let rows: Vec<Tensor<B, 4>> = (0..oh)
        .map(|i| {
            let (r0, r1) = window(i, h, oh);
            let cells: Vec<Tensor<B, 4>> = (0..ow)
                .map(|j| {
                    let (c0, c1) = window(j, w, ow);
                    t.clone().narrow(2, r0, r1 - r0).narrow(3, c0, c1 - c0).mean_dim(2).mean_dim(3)
                })
                .collect();
            Tensor::cat(cells, 3)
        })
        .collect();
    Tensor::cat(rows, 2)
}

/// Resampling one axis to `out` pixels from its definition, `r = in / out`: nearest reads
/// source `min(floor(o · r), in − 1)` (r in f32, as PyTorch); bilinear (half-pixel centres)
/// mixes sources `floor(u)` and `floor(u) + 1` (the last clamped) at
/// `u = max((o + 0.5) · r − 0.5, 0)`.
fn upsample_axis<B: Backend>(t: Tensor<B, 4>, axis: usize, out: usize, mode: Interp) -> Tensor<B, 4> {
    let n = t.dims()[axis];
    let cols: Vec<Tensor<B, 4>> = (0..out)
        .map(|o| match mode {
            Interp::Nearest => {
                let r = n as f32 / out as f32;
                t.clone().narrow(axis, ((o as f32 * r).floor() as usize).min(n - 1), 1)
            }
            Interp::Bilinear => {
                let u = ((o as f64 + 0.5) * n as f64 / out as f64 - 0.5).max(0.0);
                let lo = (u.floor() as usize).min(n - 1);
                let hi = (lo + 1).min(n - 1);
                let f = u - lo as f64;
                t.clone().narrow(axis, lo, 1).mul_scalar(1.0 - f) + t.clone().narrow(axis, hi, 1).mul_scalar(f)
            }
        })
        .collect();
    Tensor::cat(cols, axis)
}

/// Attention as the textbook writes it, one window and one head at a time: each window's
/// pixels gathered by their coordinates in the unrolled map (`(by·S + i + shift) mod H`),
/// a head's channels picked by index (`h·d + j`, or `j·heads + h` with a fixed head
/// count), the bias read from `table` at `(yp − yq + S − 1)·(2S − 1) + (xp − xq + S − 1)`,
/// −100 between pixels from different regions of the rolled map, `exp(s − max) / Σ`,
/// then every output put back at its pixel and channel.
fn attention_reference<B: Backend>(
    ins: &[Tensor<B, 4>],
    (heads, share, window): (Heads, u32, Option<Window>),
    table: Option<&Tensor<B, 2>>,
) -> Tensor<B, 4> {
    let device = ins[0].device();
    let [n, c, h, w] = ins[0].dims();
    let (nh, d) = heads.split(c as u32);
    let (nh, d, share) = (nh as usize, d as usize, share as usize);
    let by_count = matches!(heads, Heads::Count(_));
    let (s, shift) = match window {
        Some(win) => (
            [win.size as usize; 2],
            [0, 1].map(|i| if win.size as usize >= [h, w][i] { 0 } else { win.shift as usize }),
        ),
        None => ([h, w], [0, 0]),
    };
    let index = |v: Vec<usize>| {
        let len = v.len();
        Tensor::<B, 1, Int>::from_data(
            TensorData::new(v.into_iter().map(|i| i as i64).collect::<Vec<_>>(), [len]),
            &device,
        )
    };
    let region = |v: usize, side: usize, t: usize, s: usize| {
        if t == 0 || v < side - s {
            0
        } else if v < side - t {
            1
        } else {
            2
        }
    };
    let channels = |head: usize, of: usize| -> Vec<usize> {
        (0..d).map(|j| if by_count { j * of + head } else { head * d + j }).collect()
    };
    let flat: Vec<Tensor<B, 3>> = ins.iter().map(|t| t.clone().reshape([n, t.dims()[1], h * w])).collect();
    let mut order = Vec::new();
    let mut outputs: Vec<Vec<Tensor<B, 3>>> = vec![Vec::new(); nh];
    for (by, bx) in (0..h / s[0]).flat_map(|by| (0..w / s[1]).map(move |bx| (by, bx))) {
        // Rolled coordinates (y', x') of the window's tokens, row by row.
        let rolled: Vec<(usize, usize)> =
            (0..s[0] * s[1]).map(|t| (by * s[0] + t / s[1], bx * s[1] + t % s[1])).collect();
        let pixels: Vec<usize> = rolled.iter().map(|&(y, x)| ((y + shift[0]) % h) * w + (x + shift[1]) % w).collect();
        order.extend(pixels.iter().copied());
        let l = pixels.len();
        let mut bias = vec![0.0f32; l * l];
        for (p, &(yp, xp)) in rolled.iter().enumerate() {
            for (q, &(yq, xq)) in rolled.iter().enumerate() {
                let label = |y: usize, x: usize| 3 * region(y, h, shift[0], s[0]) + region(x, w, shift[1], s[1]);
                if label(yp, xp) != label(yq, xq) {
                    bias[p * l + q] = -100.0;
                }
            }
        }
        let mask = Tensor::<B, 2>::from_data(TensorData::new(bias, [l, l]), &device);
        for (head, out) in outputs.iter_mut().enumerate() {
            let pick = |t: &Tensor<B, 3>, head: usize, of: usize| {
                t.clone().select(1, index(channels(head, of))).select(2, index(pixels.clone()))
            };
            let q = pick(&flat[0], head, nh);
            let (k, v) = (pick(&flat[1], head / share, nh / share), pick(&flat[2], head / share, nh / share));
            let mut scores = q.swap_dims(1, 2).matmul(k).div_scalar((d as f64).sqrt());
            if let (Some(win), Some(table)) = (window, table) {
                let z = win.size as usize;
                let entries: Vec<usize> = (0..l * l)
                    .map(|pq| {
                        let ((yp, xp), (yq, xq)) = (rolled[pq / l], rolled[pq % l]);
                        (yp + z - 1 - yq) * (2 * z - 1) + (xp + z - 1 - xq)
                    })
                    .collect();
                let b = table.clone().narrow(0, head, 1).reshape([table.dims()[1]]).select(0, index(entries));
                scores = scores + (b.reshape([l, l]) + mask.clone()).unsqueeze_dim(0);
            }
            let e = (scores.clone() - scores.max_dim(2)).exp();
            let a = e.clone() / e.sum_dim(2);
            out.push(v.matmul(a.swap_dims(1, 2)));
        }
    }
    // Heads side by side (head h's dimension j at h·d + j), windows one after another;
    // then each channel and pixel taken from where it was computed.
    let joined = Tensor::cat(outputs.into_iter().map(|o| Tensor::cat(o, 2)).collect(), 1);
    let channel_from: Vec<usize> = (0..c).map(|ch| if by_count { (ch % nh) * d + ch / nh } else { ch }).collect();
    let mut pixel_from = vec![0; h * w];
    for (at, &p) in order.iter().enumerate() {
        pixel_from[p] = at;
    }
    joined.select(1, index(channel_from)).select(2, index(pixel_from)).reshape([n, c, h, w])
}

/// Runs the reference network: plain layers, and the channel plumbing written again here.
fn run_fixed<B: Backend>(net: &Network, plain: &[Plain<B>], shapes: &[LayerShape], x: Tensor<B, 4>) -> Tensor<B, 2> {
    let mut vals: Vec<Option<Tensor<B, 4>>> = vec![None; net.layers.len()];
    for (id, l) in net.layers.iter() {
        let ins: Vec<Tensor<B, 4>> = l.inputs.iter().map(|j| vals[j.index()].clone().unwrap()).collect();
        let first = ins.first().cloned();
        let out = match (&l.op, &plain[id.index()]) {
            (Op::Input, _) => x.clone(),
            (_, Plain::Conv(c)) => c.forward(first.unwrap()),
            (_, Plain::Linear(lin)) => {
                let t = first.unwrap();
                let [n, c, _, _] = t.dims();
                let y = lin.forward(t.reshape([n, c]));
                let o = y.dims()[1];
                y.reshape([n, o, 1, 1])
            }
            (_, Plain::Norm(bn)) => bn.forward(first.unwrap()),
            (_, Plain::LayerNorm(ln)) => ln.forward(first.unwrap().permute([0, 2, 3, 1])).permute([0, 3, 1, 2]),
            (_, Plain::ConvT(w, b, geometry)) => conv_transpose_reference(first.unwrap(), w, b, *geometry),
            (_, Plain::Scale(gamma)) => {
                let t = first.unwrap();
                let [n, c, h, w] = t.dims();
                t * gamma.clone().reshape([1, c, 1, 1]).expand([n, c, h, w])
            }
            (Op::AdaptiveAvgPool { out }, _) => adaptive_avg_pool(first.unwrap(), out.map(|v| v as usize)),
            (Op::Attend { heads, share, window }, plain) => {
                let table = if let Plain::Table(t) = plain { Some(t) } else { None };
                attention_reference(&ins, (*heads, *share, *window), table)
            }
            // Rows one after another; position `i` is row `i / W`, column `i % W`.
            (Op::Tokens, _) => {
                let t = first.unwrap();
                let rows: Vec<Tensor<B, 4>> = (0..t.dims()[2]).map(|y| t.clone().narrow(2, y, 1)).collect();
                Tensor::cat(rows, 3)
            }
            (Op::Token { index }, _) => {
                let t = first.unwrap();
                let (i, w) = (*index as usize, t.dims()[3]);
                t.narrow(2, i / w, 1).narrow(3, i % w, 1)
            }
            (Op::ClassToken, Plain::Table(table)) => {
                let t = first.unwrap();
                let [n, c, _, _] = t.dims();
                let token = table.clone().reshape([1, c, 1, 1]).repeat_dim(0, n);
                Tensor::cat(vec![token, t], 3)
            }
            (Op::PosEmbed { .. }, Plain::Table(table)) => {
                let t = first.unwrap();
                let [n, c, h, w] = t.dims();
                // Position y·W + x of the table is pixel (y, x).
                let per_row: Vec<Tensor<B, 4>> =
                    (0..h).map(|y| table.clone().narrow(1, y * w, w).reshape([1, c, 1, w])).collect();
                t + Tensor::cat(per_row, 2).repeat_dim(0, n)
            }
            (Op::Upsample { to, mode }, _) => {
                let t = first.as_ref().unwrap();
                let like = ins.get(1).map(|y| [y.dims()[2], y.dims()[3]]);
                let [h, w] = to.output([t.dims()[2], t.dims()[3]], like);
                upsample_axis(upsample_axis(first.unwrap(), 2, h, *mode), 3, w, *mode)
            }
            (Op::Flatten, _) => {
                let t = first.unwrap();
                let [n, c, h, w] = t.dims();
                t.reshape([n, c * h * w, 1, 1])
            }
            (Op::Act(a), _) => {
                let t = first.unwrap();
                match a {
                    Activation::Relu => activation::relu(t),
                    Activation::Relu6 => activation::relu(t.clone()) - activation::relu(t.sub_scalar(6.0)),
                    Activation::Hswish => activation::hard_swish(t),
                    Activation::Swish => activation::silu(t),
                    Activation::Sigmoid => activation::sigmoid(t),
                    Activation::Hsigmoid => activation::hard_sigmoid(t, 1.0 / 6.0, 0.5),
                    // From its definition through erf, not Burn's gelu.
                    Activation::Gelu => {
                        t.clone() * t.div_scalar(std::f32::consts::SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5)
                    }
                }
            }
            (Op::MaxPool { kernel, stride, padding, ceil_mode }, _) => {
                let p = padding.map(|v| v as usize);
                MaxPool2dConfig::new(kernel.map(|v| v as usize))
                    .with_strides(stride.map(|v| v as usize))
                    .with_padding(PaddingConfig2d::Explicit(p[0], p[1], p[0], p[1]))
                    .with_ceil_mode(*ceil_mode)
                    .init()
                    .forward(first.unwrap())
            }
            (Op::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad }, _) => {
                let p = padding.map(|v| v as usize);
                AvgPool2dConfig::new(kernel.map(|v| v as usize))
                    .with_strides(stride.map(|v| v as usize))
                    .with_padding(PaddingConfig2d::Explicit(p[0], p[1], p[0], p[1]))
                    .with_ceil_mode(*ceil_mode)
                    .with_count_include_pad(*count_include_pad)
                    .init()
                    .forward(first.unwrap())
            }
            (Op::GlobalAvgPool, _) => AdaptiveAvgPool2dConfig::new([1, 1]).init().forward(first.unwrap()),
            (Op::Dropout { .. } | Op::DropPath { .. }, _) => first.unwrap(),
            (Op::Add, _) => ins.into_iter().reduce(|a, b| a + b).unwrap(),
            (Op::Mul, _) => ins.into_iter().reduce(|a, b| a * b).unwrap(),
            (Op::Concat, _) => Tensor::cat(ins, 1),
            (Op::Split { part, parts }, _) => {
                let t = first.unwrap();
                let [n, c, h, w] = t.dims();
                let k = c / *parts as usize;
                let start = *part as usize * k;
                t.slice([0..n, start..start + k, 0..h, 0..w])
            }
            (Op::Slice { start, end }, _) => {
                let t = first.unwrap();
                let [n, _, h, w] = t.dims();
                t.slice([0..n, *start as usize..*end as usize, 0..h, 0..w])
            }
            (Op::Shuffle { groups }, _) => {
                // Gather channels explicitly: output channel j reads input (j % g)·(C/g) + j / g.
                let t = first.unwrap();
                let c = t.dims()[1];
                let g = *groups as usize;
                let order: Vec<Tensor<B, 4>> =
                    (0..c).map(|j| t.clone().narrow(1, (j % g) * (c / g) + j / g, 1)).collect();
                Tensor::cat(order, 1)
            }
            (Op::Subsample { stride, offset }, _) => {
                let t = first.unwrap();
                let [_, _, h, w] = t.dims();
                let (s, [oy, ox]) = (*stride as usize, offset.map(|o| o as usize));
                let rows: Vec<Tensor<B, 4>> = (oy..h).step_by(s).map(|r| t.clone().narrow(2, r, 1)).collect();
                let t = Tensor::cat(rows, 2);
                let cols: Vec<Tensor<B, 4>> = (ox..w).step_by(s).map(|c| t.clone().narrow(3, c, 1)).collect();
                Tensor::cat(cols, 3)
            }
            (Op::ZeroPad, _) => {
                let t = first.unwrap();
                let [n, c, h, w] = t.dims();
                let out = shapes[id.index()].out as usize;
                let zeros = Tensor::zeros([n, out - c, h, w], &t.device());
                Tensor::cat(vec![t, zeros], 1)
            }
            (op, _) => panic!("reference has no {op:?}"),
        };
        vals[id.index()] = Some(out);
    }
    let out = vals[net.output.index()].clone().unwrap();
    let [n, c, _, _] = out.dims();
    out.reshape([n, c])
}

fn compare_model(name: &str, size: i64, widths: &[f64]) {
    let device = Default::default();
    let net = small(name, size);
    let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 7, &device);
    let mut stats = condition_bn(&mut slim, &device);
    for &w in widths {
        let mut cfg = slim.uniform(w).unwrap();
        if w < 1.0 {
            // A non-uniform vector too: every third dimension at full width.
            let wm: Vec<f64> =
                net.space.dims.iter().enumerate().map(|(i, _)| if i % 3 == 1 { 1.0 } else { w }).collect();
            cfg.dims = net.space.decode(&wm, net.rounding).unwrap();
        }
        stats.key = cfg.key();
        let shapes = net.layer_shapes(&cfg.dims);
        let x = Tensor::random(
            [2, net.input[0] as usize, size as usize, size as usize],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ours = slim.forward(x.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
        let plain = fixed_network(&slim, &shapes, &stats, &device);
        let theirs = run_fixed(&net, &plain, &shapes, x);
        assert_eq!(ours.dims(), theirs.dims());
        let scale: f32 = ours.clone().abs().max().into_scalar();
        let diff = max_abs_diff(ours, theirs);
        assert!(
            diff < 1e-4 * scale.max(1.0),
            "{name} at {w} ({:?}): max |slim - fixed| = {diff}, max |logit| = {scale}",
            cfg.dims
        );
    }
}

#[test]
fn slimmed_forward_equals_fixed_network_cifar() {
    for name in ["resnet20", "resnet32", "wrn40_4"] {
        compare_model(name, 16, &[1.0, 0.5, 0.3]);
    }
}

#[test]
fn slimmed_forward_equals_fixed_network_imagenet() {
    for name in ["resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mnasnet"] {
        compare_model(name, 32, &[1.0, 0.5, 0.35]);
    }
}

#[test]
fn slimmed_forward_equals_fixed_network_exotic() {
    for name in [
        "mobilenet_v3_large",
        "efficientnet_b0",
        "shufflenet_v2",
        "regnetx_400mf",
        "regnety_400mf",
        "edge_cases",
        "convnext_tiny",
        "vgg16",
    ] {
        compare_model(name, 32, &[1.0, 0.5, 0.3]);
    }
}

#[test]
fn inactive_slices_get_exactly_zero_gradient() {
    // edge_cases and ConvNeXt: backward through layer norm, layer scale, both upsamplings,
    // adaptive pooling and a flatten of a map into a linear.
    for (name, size) in [("resnet20", 8), ("edge_cases", 16), ("convnext_tiny", 32)] {
        inactive_slices_of(name, size);
    }
}

fn inactive_slices_of(name: &str, size: usize) {
    let device = Default::default();
    let net = small(name, size as i64);
    let slim = SlimNet::<CpuTrain>::new(net.clone(), Vec::new(), 3, &device);
    let cfg = slim.uniform(0.5).unwrap();
    let x = Tensor::random([4, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
    let grads = common::alone(|| slim.forward(x, &cfg, Mode::Train).unwrap().logits.sum().backward());
    let shapes = net.layer_shapes(&cfg.dims);
    let mut checked = 0;
    for (id, l) in net.layers.iter() {
        let p = &slim.layers[id.index()];
        let s = shapes[id.index()];
        if let Some(k) = p.kernel() {
            let g = k.weight.val().grad(&grads).expect("conv weight has a gradient");
            let [o, i, _, _] = g.dims();
            let [_, _, kh, kw] = g.dims();
            let (so, si) = (s.out as usize, (s.in_c / s.groups) as usize);
            let active = g.clone().slice([0..so, 0..si.min(i), 0..kh, 0..kw]).abs().sum().into_scalar();
            assert!(active > 0.0, "{} active slice has a gradient", l.name);
            if so < o {
                let rows = g.clone().slice([so..o, 0..i, 0..kh, 0..kw]).abs().max().into_scalar();
                assert_eq!(rows, 0.0, "{}: inactive output rows of [{o}, {i}]", l.name);
            }
            if si < i {
                let cols = g.clone().slice([0..o, si..i, 0..kh, 0..kw]).abs().max().into_scalar();
                assert_eq!(cols, 0.0, "{}: inactive input columns of [{o}, {i}]", l.name);
            }
            checked += 1;
        }
        if let Some(m) = p.matrix() {
            let g = m.weight.val().grad(&grads).expect("linear weight has a gradient");
            let [i, o] = g.dims();
            // A token table `[C, P]` uses its leading channels at every position.
            let (si, so) = match l.op {
                Op::ClassToken | Op::PosEmbed { .. } => (s.out as usize, o),
                // A relative position bias `[heads, P]` uses its active heads' rows.
                Op::Attend { heads, .. } => (heads.split(s.out).0 as usize, o),
                _ => (s.in_c as usize, s.out as usize),
            };
            if si < i {
                let rows = g.clone().slice([si..i, 0..o]).abs().max().into_scalar();
                assert_eq!(rows, 0.0, "{}: inactive input rows of [{i}, {o}]", l.name);
            }
            assert!(g.slice([0..si, 0..so]).abs().sum().into_scalar() > 0.0, "{} active slice", l.name);
        }
        let gamma = match p {
            LayerParams::Affine(a) => Some(&a.gamma[0]),
            LayerParams::Scale(s) => Some(&s.gamma),
            _ => None,
        };
        if let Some(gamma) = gamma {
            let g = gamma.val().grad(&grads).unwrap();
            let c = g.dims()[0];
            if (s.out as usize) < c {
                let rest = g.slice(s.out as usize..c).abs().sum().into_scalar();
                assert_eq!(rest, 0.0, "{} γ beyond the active channels", l.name);
            }
        }
    }
    assert!(checked > 10, "{name}");
}

/// slimc's conv node (im2col + gemm kernels on flex) gives the gradients Burn's own
/// `conv2d` gives, for x, weight and bias, over strides, groups, depthwise and 1×1 convs.
#[test]
fn conv_gradients_equal_burns() {
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::TensorPrimitive;
    use slimc_runtime::runtime::SlimBackend;

    let cases = [
        ([4, 6, 9, 9], [8, 6, 3, 3], [1, 1], [1, 1], 1),
        ([4, 6, 9, 9], [8, 6, 3, 3], [2, 2], [1, 1], 1),
        ([4, 6, 9, 9], [8, 3, 3, 3], [1, 1], [1, 1], 2),
        ([4, 6, 9, 9], [6, 1, 5, 5], [2, 2], [2, 2], 6),
        ([4, 6, 9, 9], [5, 6, 1, 1], [1, 1], [0, 0], 1),
        ([4, 6, 9, 9], [5, 6, 1, 1], [2, 2], [0, 0], 1),
    ];
    for (i, (xs, ws, stride, padding, groups)) in cases.into_iter().enumerate() {
        let options = ConvOptions::new(stride, padding, [1, 1], groups);
        let grads = |ours: bool| {
            let _alone = slimc_runtime::runtime::graphs::backward();
            let x = Tensor::<CpuTrain, 4>::from_inner(data(xs, 0.0, 1.0, 1)).require_grad();
            let w = Tensor::<CpuTrain, 4>::from_inner(data(ws, 0.0, 1.0, 2)).require_grad();
            let b = Tensor::<CpuTrain, 1>::from_inner(data([ws[0]], 0.0, 1.0, 3)).require_grad();
            let y = if ours {
                Tensor::<CpuTrain, 4>::from_primitive(TensorPrimitive::Float(CpuTrain::slim_conv2d(
                    x.clone().into_primitive().tensor(),
                    w.clone().into_primitive().tensor(),
                    Some(b.clone().into_primitive().tensor()),
                    options.clone(),
                )))
            } else {
                burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
            };
            let probe = Tensor::<CpuTrain, 4>::from_inner(data(y.dims(), 0.0, 1.0, 4));
            let g = (y.clone() * probe).sum().backward();
            let flat = |t: Tensor<Cpu, 4>| {
                let [a, b, c, d] = t.dims();
                t.reshape([a * b, c * d])
            };
            (
                flat(y.inner()),
                flat(x.grad(&g).unwrap()),
                flat(w.grad(&g).unwrap()),
                b.grad(&g).unwrap().unsqueeze::<2>(),
            )
        };
        let (ours, burns) = (grads(true), grads(false));
        for (what, a, b) in
            [("y", ours.0, burns.0), ("dx", ours.1, burns.1), ("dw", ours.2, burns.2), ("db", ours.3, burns.3)]
        {
            let scale = b.clone().abs().max().into_scalar().elem::<f32>().max(1.0);
            let diff = max_abs_diff(a, b);
            assert!(diff <= 1e-4 * scale, "case {i}: {what} differs by {diff} (scale {scale})");
        }
    }
}

#[test]
fn active_parameters_equal_cost() {
    let device = Default::default();
    for name in ZOO {
        let net = small(name, common::test_size(name));
        let slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 1, &device);
        for w in [1.0, 0.5, 0.3] {
            let cfg = slim.uniform(w).unwrap();
            let (cost, _) = slimc_lang::cost::cost(&net, &cfg.dims);
            assert_eq!(slim.active_params(&cfg), cost.params, "{name} at {w}");
        }
    }
}

/// Each layer stores the tensors `Op::weights` lays out at full width, in the order
/// `SlimNet::learned` walks them (a switchable BN: a γ per switch, then a β per switch), so
/// the leading slices `Op::weights` gives at a narrower width are always in range.
#[test]
fn stored_tensors_are_the_ir_layout_at_full_width() {
    use slimc_lang::ir::Weights;
    let device = Default::default();
    for name in ZOO {
        let net = small(name, common::test_size(name));
        let switches = vec![0.5, 1.0];
        let slim = SlimNet::<Cpu>::new(net.clone(), switches.clone(), 1, &device);
        let shapes = net.layer_shapes(&net.full_width());
        let mut stored = vec![Vec::new(); net.layers.len()];
        for t in slim.learned() {
            stored[t.layer].push(t.dims);
        }
        for (id, l) in net.layers.iter() {
            let with_bias = |mut v: Vec<Vec<usize>>, bias: Option<usize>| {
                v.extend(bias.map(|b| vec![b]));
                v
            };
            let weights = l.op.weights(shapes[id.index()]);
            assert!(slim.layers[id.index()].is(weights), "{name}: {} holds {weights:?}", l.name);
            let want = match weights {
                Weights::None => Vec::new(),
                Weights::Kernel { shape, bias } => with_bias(vec![shape.to_vec()], bias),
                Weights::Matrix { shape, bias } => with_bias(vec![shape.to_vec()], bias),
                Weights::Affine { channels } => {
                    let copies = if l.op == Op::BatchNorm { switches.len() } else { 1 };
                    vec![vec![channels]; 2 * copies]
                }
                Weights::Scale { channels } => vec![vec![channels]],
                Weights::Table { shape } => vec![shape.to_vec()],
            };
            assert_eq!(stored[id.index()], want, "{name}: {}", l.name);
        }
    }
}

/// Per-channel mean and unbiased variance of `y` (`[N, C, H, W]`), two-pass in f64.
fn channel_stats(y: Tensor<Cpu, 4>) -> Vec<(f64, f64)> {
    let [n, c, h, w] = y.dims();
    let v: Vec<f32> = y.into_data().to_vec().unwrap();
    (0..c)
        .map(|ch| {
            let xs: Vec<f64> = (0..n)
                .flat_map(|i| (0..h * w).map(move |p| ((i * c + ch) * h * w) + p))
                .map(|k| f64::from(v[k]))
                .collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
            (mean, var)
        })
        .collect()
}

/// Calibration against an independent computation: the first BN follows the stem conv, so
/// its statistics are that conv's output statistics, computed here with Burn's own
/// `conv2d` (not slimc's kernels) on the active weight slice and a two-pass variance in
/// f64 on the host, averaged over the batches. The batches have a large mean, where
/// E[x²] − mean² would lose digits.
#[test]
fn calibration_statistics_match_an_independent_computation() {
    let device = Default::default();
    let net = small("resnet20", 8);
    let slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 5, &device);
    let cfg = slim.uniform(0.5).unwrap();
    let batches: Vec<Tensor<Cpu, 4>> = (0..3).map(|i| data([4, 3, 8, 8], 40.0 + i as f64, 1.0 + i as f64, i)).collect();
    let stats = calibrate(&slim, &cfg, batches.clone()).unwrap();
    let (bn, layer) = net.layers.iter().find(|(_, l)| l.op == Op::BatchNorm).unwrap();
    let stem = layer.inputs[0];
    let Op::Conv { stride, padding, dilation, .. } = net.layers[stem].op else { panic!("the stem is a conv") };
    let c = cfg.dims[0] as usize;
    let weight = slim.layers[stem.index()].kernel().unwrap().weight.val();
    let [_, i, kh, kw] = weight.dims();
    let weight = weight.slice([0..c, 0..i, 0..kh, 0..kw]);
    let us = |a: [u32; 2]| a.map(|v| v as usize);
    let options = burn::tensor::ops::ConvOptions::new(us(stride), us(padding), us(dilation), 1);
    let mut want = vec![(0.0, 0.0); c];
    for b in &batches {
        let y = burn::tensor::module::conv2d(b.clone(), weight.clone(), None, options.clone());
        for (acc, (m, v)) in want.iter_mut().zip(channel_stats(y)) {
            *acc = (acc.0 + m / 3.0, acc.1 + v / 3.0);
        }
    }
    let (mean, var) = stats.layers[bn.index()].clone().unwrap();
    let mean: Vec<f32> = mean.into_data().to_vec().unwrap();
    let var: Vec<f32> = var.into_data().to_vec().unwrap();
    assert_eq!(mean.len(), c);
    for (k, (m, v)) in want.iter().enumerate() {
        let close = |got: f32, want: f64| (f64::from(got) - want).abs() <= 1e-4 * want.abs().max(1.0);
        assert!(close(mean[k], *m), "channel {k}: mean {} vs {m}", mean[k]);
        assert!(close(var[k], *v), "channel {k}: variance {} vs {v}", var[k]);
    }
}

/// Each width has its own statistics: the stem's first channels see the same input and
/// weights at every width (equal statistics), but a BN after a conv that reads slimmed
/// channels sees other sums at width 0.5 than in the first half of the full-width ones.
#[test]
fn calibration_statistics_differ_between_widths() {
    let device = Default::default();
    let net = small("resnet20", 8);
    let slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 5, &device);
    let batches: Vec<Tensor<Cpu, 4>> = (0..3).map(|i| data([4, 3, 8, 8], i as f64, 1.0 + i as f64, i)).collect();
    let half = calibrate(&slim, &slim.uniform(0.5).unwrap(), batches.clone()).unwrap();
    let full = calibrate(&slim, &slim.uniform(1.0).unwrap(), batches).unwrap();
    let bns: Vec<usize> = net.layers.iter().filter(|(_, l)| l.op == Op::BatchNorm).map(|(id, _)| id.index()).collect();
    let gap = |bn: usize| {
        let (h, _) = half.layers[bn].clone().unwrap();
        let (f, _) = full.layers[bn].clone().unwrap();
        let c = h.dims()[0];
        assert!(c < f.dims()[0], "BN {bn} is slimmed at 0.5");
        (h - f.slice(0..c)).abs().max().into_scalar()
    };
    assert!(gap(bns[0]) < 1e-5, "the stem BN's statistics depend only on its own channels");
    assert!(gap(bns[1]) > 1e-3, "a BN after a slimmed input must get its own statistics");
}

/// Batch statistics differ per width; evaluating a narrow width with statistics gathered
/// at full width (and sliced) loses accuracy that calibrating at that width restores.
#[test]
fn calibration_restores_accuracy_at_a_narrow_width() {
    let device = Default::default();
    let net = small("resnet20", 8);
    let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 11, &device);
    // Without its bias the classifier's decision follows the features, so labels vary.
    let head = net.output.index();
    let LayerParams::Matrix(classifier) = &mut slim.layers[head] else { panic!("the head is a linear") };
    classifier.bias = Some(Param::from_tensor(Tensor::zeros([net.layers[net.output].channels as usize], &device)));
    let narrow = slim.uniform(0.25).unwrap();
    let full = slim.uniform(1.0).unwrap();
    let train: Vec<Tensor<Cpu, 4>> = (0..8).map(|i| data([32, 3, 8, 8], 1.0, 2.0, 100 + i)).collect();
    // Labels: what the narrow network predicts with its own (large-sample) statistics.
    let truth = calibrate(&slim, &narrow, train.clone()).unwrap();
    let test: Vec<Tensor<Cpu, 4>> = (0..4).map(|i| data([32, 3, 8, 8], 1.0, 2.0, 200 + i)).collect();
    let labels: Vec<_> =
        test.iter().map(|x| slim.forward(x.clone(), &narrow, Mode::Eval(&truth)).unwrap().logits.argmax(1)).collect();
    let classes: std::collections::HashSet<i64> =
        labels.iter().flat_map(|y| y.to_data().convert::<i64>().to_vec::<i64>().unwrap()).collect();
    assert!(classes.len() >= 3, "the toy labels use {} classes", classes.len());
    let accuracy = |stats: &BnSet<Cpu>| -> f64 {
        let mut correct = 0i64;
        for (x, y) in test.iter().zip(&labels) {
            let p = slim.forward(x.clone(), &narrow, Mode::Eval(stats)).unwrap().logits.argmax(1);
            correct += p.equal(y.clone()).int().sum().into_scalar() as i64;
        }
        correct as f64 / 128.0
    };
    // What a calibration that never updates its statistics leaves behind (the reference
    // implementation's bug): the initial mean 0 and variance 1.
    let mut untouched = slim.empty_stats(narrow.key());
    for (i, (_, l)) in net.layers.iter().enumerate() {
        if l.op == Op::BatchNorm {
            let c = l.channels as usize;
            untouched.layers[i] = Some((Tensor::zeros([c], &device), Tensor::ones([c], &device)));
        }
    }
    // Statistics gathered at full width and sliced.
    let mut sliced = calibrate(&slim, &full, train[..2].to_vec()).unwrap();
    sliced.key = narrow.key();
    let calibrated = calibrate(&slim, &narrow, train[..2].to_vec()).unwrap();
    let (before, wide, after) = (accuracy(&untouched), accuracy(&sliced), accuracy(&calibrated));
    eprintln!("accuracy with untouched statistics {before}, full-width statistics {wide}, calibrated {after}");
    assert!(after >= before + 0.1, "calibration: {before} -> {after}");
    assert!(after >= wide + 0.05, "narrow-width statistics ({after}) beat full-width ones ({wide})");
    assert!(after >= 0.95, "calibrated accuracy {after}");
}

#[test]
fn runtime_errors_are_reported() {
    let device = Default::default();
    let net = small("resnet20", 8);
    let slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 5, &device);
    let cfg = slim.uniform(0.5).unwrap();
    let x = Tensor::<Cpu, 4>::zeros([1, 2, 8, 8], &device);
    assert!(slim.forward(x, &cfg, Mode::Train).is_err(), "wrong channel count");
    let x = Tensor::<Cpu, 4>::zeros([1, 3, 8, 8], &device);
    let empty = slim.empty_stats(cfg.key());
    assert!(slim.forward(x.clone(), &cfg, Mode::Eval(&empty)).is_err(), "not calibrated");
    let bad = WidthConfig::new(vec![1; 3]);
    assert!(slim.forward(x, &bad, Mode::Train).is_err(), "wrong width vector");
    assert!(slim.uniform(1.5).is_err());
}

#[test]
fn switchable_bn_uses_one_set_per_switch() {
    let device = Default::default();
    let net = small("resnet20", 8);
    let slim = SlimNet::<CpuTrain>::new(net.clone(), vec![0.25, 0.5, 1.0], 5, &device);
    let bn = net.layers.iter().find(|(_, l)| l.op == Op::BatchNorm).unwrap().0.index();
    let gamma = &slim.layers[bn].affine().unwrap().gamma;
    assert_eq!(gamma.len(), 3);
    let cfg = slim.uniform(0.5).unwrap();
    assert_eq!(cfg.switch, Some(1));
    assert!(slim.uniform(0.75).is_err(), "0.75 is not a switch");
    let x = Tensor::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let grads = common::alone(|| slim.forward(x, &cfg, Mode::Train).unwrap().logits.sum().backward());
    assert!(gamma[0].val().grad(&grads).map_or(0.0, |g| g.abs().sum().into_scalar()) == 0.0);
    assert!(gamma[1].val().grad(&grads).unwrap().abs().sum().into_scalar() > 0.0);
}

mod checkpoints {
    use super::*;
    use slimc_runtime::runtime::checkpoint::{self, CheckpointError, Meta};

    fn setup(dir: &std::path::Path) -> (SlimNet<Cpu>, Meta, String) {
        let src = std::fs::read_to_string("models/resnet20.slim").unwrap();
        let options = Options { settings: vec![("size".into(), ParamValue::Int(8))], ..Options::default() };
        let net = Arc::new(slimc_lang::compile(&src, "models/resnet20.slim", &options).unwrap().remove(0));
        let slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 9, &Default::default());
        let cfg = slim.uniform(0.5).unwrap();
        let stats = calibrate(&slim, &cfg, [data([4, 3, 8, 8], 0.0, 1.0, 1)]).unwrap();
        let mut meta = Meta::new("models/resnet20.slim", &src, &net, &options, Vec::new());
        meta.bn.push(stats.to_host());
        checkpoint::save(&slim, &meta, dir).unwrap();
        (slim, meta, src)
    }

    #[test]
    fn round_trip_restores_weights_and_statistics() {
        let dir = std::env::temp_dir().join(format!("slimc-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (slim, meta, src) = setup(&dir);
        let (loaded, meta2) = checkpoint::load::<Cpu>(&dir, Some(&src), &Default::default()).unwrap();
        assert_eq!(meta, meta2);
        let cfg = loaded.uniform(0.5).unwrap();
        let stats = BnSet::from_host(&meta2.bn[0], &Default::default());
        let x = data([2, 3, 8, 8], 0.0, 1.0, 2);
        let a = slim.forward(x.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
        let b = loaded.forward(x, &cfg, Mode::Eval(&stats)).unwrap().logits;
        assert_eq!(max_abs_diff(a, b), 0.0);
        // No temporary files are left behind.
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn changed_source_and_corruption_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("slimc-ckpt-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (_, _, src) = setup(&dir);
        let edited = src.replace("basic_a(64, stride=2)", "basic_a(128, stride=2)");
        match checkpoint::load::<Cpu>(&dir, Some(&edited), &Default::default()) {
            Err(e @ CheckpointError::SourceChanged { .. }) => {
                assert!(e.to_string().contains("first difference at line"), "{e}")
            }
            other => panic!("expected a source mismatch, got {:?}", other.map(|_| ())),
        }
        std::fs::write(dir.join("model.mpk"), b"garbage").unwrap();
        assert!(matches!(
            checkpoint::load::<Cpu>(&dir, None, &Default::default()),
            Err(CheckpointError::Corrupt { .. })
        ));
        std::fs::write(dir.join("meta.json"), b"{ not json").unwrap();
        assert!(matches!(
            checkpoint::load::<Cpu>(&dir, None, &Default::default()),
            Err(CheckpointError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(checkpoint::load::<Cpu>(&dir, None, &Default::default()), Err(CheckpointError::Io { .. })));
    }
}
