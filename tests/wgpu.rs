//! The GPU code path on wgpu, against flex. On CUDA and wgpu, slimc's convolutions are
//! Burn's CubeCL kernels reached through `SlimBackend`'s default methods (flex has its own
//! im2col + gemm kernels), and every other op runs Burn's GPU kernels. This suite runs each
//! backend-generic piece on a wgpu adapter and compares it with flex, which the rest of the
//! tests check against first principles: the slimmed forward (eval and train mode), every
//! parameter's gradient with the zero-gradient invariant on inactive slices, a sandwich step
//! with inplace distillation, BN calibration, subnet export and an emitted module.
//!
//! Built with `--features wgpu` only, and then required: without an adapter every test
//! fails, naming the packages (`bash .ci/run` installs Mesa's software Vulkan, llvmpipe).
//! `SLIMC_TEST_WGPU` picks the adapter (default `wgpu`, the best one; CI: `wgpu:cpu`).
//! Inputs are small: llvmpipe runs the kernels on the CPU, about 15 times slower than flex.
//! Dropout is set to 0 in these networks, so that train-mode passes are the same function
//! on both backends (their random streams differ), and the gradient comparisons run the
//! networks with their kinks smoothed (see `smooth`).
#![cfg(feature = "wgpu")]

#[macro_use]
mod common;

#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet20.rs"]
mod resnet20;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/mobilenet_v2.rs"]
mod mobilenet_v2;

use std::sync::{Arc, OnceLock};

use burn::backend::wgpu::WgpuDevice;
use burn::module::Param;
use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;

use slimc_lang::ir::{LayerShape, Network, Op};
use slimc_runtime::export::burn::FixedNet;
use slimc_runtime::export::{FixedParams, HostTensor, Subnet};
use slimc_runtime::runtime::device::{Cpu, CpuTrain, DeviceSpec, Wgpu, WgpuTrain};
use slimc_runtime::runtime::params::{StoredLayer, StoredNet};
use slimc_runtime::runtime::{calibrate, BnSet, Mode, SlimNet, WidthConfig};
use slimc_runtime::train::parallel::Replica;
use slimc_runtime::train::{cross_entropy, step, Sandwich, StepOptions};

use common::{condition_bn, rel, relative_diff, small};

/// Four families: residual, inverted residual with depthwise convs, channel split +
/// shuffle, group convs with squeeze-excite. (name, input size.) The ImageNet models run at
/// 64x64 so that their last BN layers in train mode see 2x2 maps: over a batch of 4 that is
/// 16 values per channel. With 1x1 maps and 2 images, BN divides by the spread of two
/// numbers, which amplifies the last bits of any sum by up to 1/sqrt(eps) (measured: 3e-2
/// relative between backends, against 1e-5 at 64x64).
const MODELS: &[(&str, i64)] = &[("resnet20", 16), ("mobilenet_v2", 64), ("shufflenet_v2", 64), ("regnety_400mf", 64)];
/// The forward and export comparisons also run `edge_cases`: layer norm, layer scale, both
/// upsamplings, a transposed conv, adaptive pooling, asymmetric kernels and a flatten of a
/// map on the GPU kernels. (Its gradients agree with flex only to about 3e-3 relative, over
/// the 2e-3 the gradient test asks: gated, layer-normed 4- to 8-channel maps amplify the
/// backends' rounding.)
const FORWARD_MODELS: &[(&str, i64)] =
    &[("resnet20", 16), ("mobilenet_v2", 64), ("shufflenet_v2", 64), ("regnety_400mf", 64), ("edge_cases", 16)];

/// Images per batch.
const BATCH: usize = 4;

/// The adapter under test, probed once.
fn device() -> WgpuDevice {
    static DEVICE: OnceLock<WgpuDevice> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let name = std::env::var("SLIMC_TEST_WGPU").unwrap_or_else(|_| "wgpu".into());
            let spec = DeviceSpec::parse(&name).unwrap_or_else(|e| panic!("SLIMC_TEST_WGPU: {e}"));
            let DeviceSpec::Wgpu(adapter) = spec else { panic!("SLIMC_TEST_WGPU={name} is not a wgpu device") };
            if let Err(e) = spec.describe() {
                panic!("the wgpu suite needs an adapter: {e}");
            }
            DeviceSpec::wgpu_device(adapter)
        })
        .clone()
}

/// A zoo model at a small input size (7 classes), with dropout and stochastic depth off.
fn network(name: &str, size: i64) -> Arc<Network> {
    without_dropout(&small(name, size))
}

fn without_dropout(net: &Network) -> Arc<Network> {
    let mut net = net.clone();
    for i in 0..net.layers.len() {
        let layer = net.layers.get_mut(slimc_lang::ir::LayerId::new(i)).unwrap();
        if let Op::Dropout { p } | Op::DropPath { p } = &mut layer.op {
            *p = 0.0;
        }
    }
    Arc::new(net)
}

/// The network with its kinks smoothed, for the gradient comparisons: ReLU, ReLU6 and
/// h-swish become swish, h-sigmoid becomes sigmoid, max pooling becomes average pooling.
/// The backends sum in different orders, so forward values differ in their last bits; at a
/// kink that can flip which side a value falls on, and with it a whole gradient entry
/// (measured: one ReLU6 mask in MobileNetV2's head flipped, which moved one BN β gradient
/// by 17% and every gradient below it by about 1%). Smooth functions keep gradients as
/// close as the forward values are; the kinks themselves are Burn's generic autodiff,
/// the same code on every backend.
fn smooth(net: &Network) -> Arc<Network> {
    use slimc_lang::ir::Activation;
    let mut net = net.clone();
    for i in 0..net.layers.len() {
        let layer = net.layers.get_mut(slimc_lang::ir::LayerId::new(i)).unwrap();
        layer.op = match layer.op.clone() {
            Op::Act(Activation::Relu | Activation::Relu6 | Activation::Hswish) => Op::Act(Activation::Swish),
            Op::Act(Activation::Hsigmoid) => Op::Act(Activation::Sigmoid),
            Op::MaxPool { kernel, stride, padding, ceil_mode } => {
                Op::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad: true }
            }
            op => op,
        };
    }
    Arc::new(net)
}

/// Full, half, smallest, and a non-uniform configuration.
fn configs<B: Backend>(slim: &SlimNet<B>) -> Vec<WidthConfig> {
    let net = &slim.net;
    let wm: Vec<f64> = (0..net.space.search_dim()).map(|i| [1.0, 0.4, 0.7][i % 3]).collect();
    let mut cfgs: Vec<WidthConfig> = [1.0, 0.5, 0.25].iter().map(|&w| slim.uniform(w).unwrap()).collect();
    cfgs.push(WidthConfig::new(net.space.decode(&wm, net.rounding).unwrap()));
    cfgs
}

/// A deterministic batch on flex and its copy on wgpu.
fn batch(net: &Network, n: usize, seed: u64) -> (Tensor<Cpu, 4>, Tensor<Wgpu, 4>) {
    let [c, h, w] = net.input.map(|v| v as usize);
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Tensor<Cpu, 4> = slimc_runtime::runtime::init::sample(
        [n, c, h, w],
        rand_distr::Normal::new(0.0, 1.0).unwrap(),
        &mut rng,
        &Default::default(),
    );
    let g = Tensor::from_data(x.to_data(), &device());
    (x, g)
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

fn param<A: Backend, B: Backend, const D: usize>(p: &Param<Tensor<A, D>>, device: &B::Device) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(p.val().into_data(), device))
}

/// The same network and parameters on another backend.
fn moved<A: Backend, B: Backend>(slim: &SlimNet<A>, device: &B::Device) -> SlimNet<B> {
    let layers = slim
        .clone()
        .stored()
        .layers
        .iter()
        .map(|p| StoredLayer {
            conv: p.conv.as_ref().map(|w| param(w, device)),
            linear: p.linear.as_ref().map(|w| param(w, device)),
            bias: p.bias.as_ref().map(|b| param(b, device)),
            gamma: p.gamma.iter().map(|g| param(g, device)).collect(),
            beta: p.beta.iter().map(|b| param(b, device)).collect(),
        })
        .collect();
    SlimNet::from_stored(StoredNet { layers }, slim.net.clone(), slim.switches.clone()).unwrap()
}

/// Every parameter of a model on the host, named `layer.kind`, in layer order.
fn parameters<B: Backend>(slim: &SlimNet<B>) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for ((_, l), p) in slim.net.layers.iter().zip(slim.clone().stored().layers) {
        let name = |kind: &str| format!("{}.{kind}", l.name);
        if let Some(w) = &p.conv {
            out.push((name("weight"), host(w.val())));
        }
        if let Some(w) = &p.linear {
            out.push((name("weight"), host(w.val())));
        }
        if let Some(b) = &p.bias {
            out.push((name("bias"), host(b.val())));
        }
        for (g, b) in p.gamma.iter().zip(&p.beta) {
            out.push((name("gamma"), host(g.val())));
            out.push((name("beta"), host(b.val())));
        }
    }
    out
}

#[test]
fn slimmed_forward_matches_flex() {
    for &(name, size) in FORWARD_MODELS {
        let net = network(name, size);
        let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 7, &Default::default());
        let mut stats = condition_bn(&mut slim, &Default::default());
        let gpu = moved::<Cpu, Wgpu>(&slim, &device());
        let (x, gx) = batch(&net, BATCH, 1);
        for cfg in configs(&slim) {
            stats.key = cfg.key();
            let gstats = BnSet::<Wgpu>::from_host(&stats.to_host(), &device());
            let want = slim.forward(x.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
            let got = gpu.forward(gx.clone(), &cfg, Mode::Eval(&gstats)).unwrap().logits;
            let d = rel(&host(want), &host(got), 1.0);
            assert!(d <= 1e-4, "{name} at {:?}: eval logits differ by {d} (relative)", cfg.dims);

            let want = slim.forward(x.clone(), &cfg, Mode::Train).unwrap();
            let got = gpu.forward(gx.clone(), &cfg, Mode::Train).unwrap();
            let d = rel(&host(want.logits), &host(got.logits), 1.0);
            assert!(d <= 1e-4, "{name} at {:?}: train-mode logits differ by {d} (relative)", cfg.dims);
            for (i, (a, b)) in want.batch_stats.into_iter().zip(got.batch_stats).enumerate() {
                let (Some((am, av)), Some((bm, bv))) = (a, b) else { continue };
                let layer = &net.layers[slimc_lang::ir::LayerId::new(i)].name;
                let (dm, dv) = (rel(&host(am), &host(bm), 1.0), rel(&host(av), &host(bv), 1.0));
                assert!(
                    dm <= 1e-4 && dv <= 1e-4,
                    "{name} {layer} at {:?}: batch statistics differ ({dm}, {dv})",
                    cfg.dims
                );
            }
        }
    }
}

/// Gradients of inactive slices (output rows and input columns beyond this width, BN
/// affine entries beyond the active channels) are exactly zero.
fn assert_inactive_zero(name: &str, layer: &str, kind: &str, grad: &[f32], full: &[usize], s: LayerShape) {
    let (out, per_group) = (s.out as usize, (s.in_c / s.groups) as usize);
    match (kind, full) {
        ("weight", [o, i, kh, kw]) => {
            for (k, v) in grad.iter().enumerate() {
                let (row, col) = (k / (i * kh * kw), k / (kh * kw) % i);
                let active = row < out && (col < per_group || *i == 1);
                assert!(active || *v == 0.0, "{name} {layer}: weight[{row}, {col}] of [{o}, {i}] has gradient {v}");
            }
        }
        ("weight", [i, o]) => {
            for (k, v) in grad.iter().enumerate() {
                let (row, col) = (k / o, k % o);
                let active = row < s.in_c as usize && col < out;
                assert!(active || *v == 0.0, "{name} {layer}: linear[{row}, {col}] of [{i}, {o}] has gradient {v}");
            }
        }
        (_, [c]) => {
            for (k, v) in grad.iter().enumerate().skip(out.min(*c)) {
                assert!(*v == 0.0, "{name} {layer}: {kind}[{k}] beyond {out} active channels has gradient {v}");
            }
        }
        _ => unreachable!("{kind} of shape {full:?}"),
    }
}

#[test]
fn gradients_match_flex_and_vanish_on_inactive_slices() {
    for &(name, size) in MODELS {
        let net = smooth(&network(name, size));
        let slim = SlimNet::<CpuTrain>::new(net.clone(), Vec::new(), 11, &Default::default());
        let gpu = moved::<CpuTrain, WgpuTrain>(&slim, &device());
        let (x, gx) = batch(&net, BATCH, 2);
        let classes = net.layers[net.output].channels as i64;
        let labels: Vec<i64> = (0..BATCH as i64).map(|i| (i * 5 + 1) % classes).collect();
        let y = Tensor::<CpuTrain, 1, Int>::from_data(TensorData::new(labels.clone(), [BATCH]), &Default::default());
        let gy = Tensor::<WgpuTrain, 1, Int>::from_data(TensorData::new(labels, [BATCH]), &device());
        for cfg in configs(&slim) {
            let (grads, ggrads) = common::alone(|| {
                let loss = cross_entropy(
                    slim.forward(Tensor::from_inner(x.clone()), &cfg, Mode::Train).unwrap().logits,
                    y.clone(),
                    0.1,
                );
                let gloss = cross_entropy(
                    gpu.forward(Tensor::from_inner(gx.clone()), &cfg, Mode::Train).unwrap().logits,
                    gy.clone(),
                    0.1,
                );
                (loss.backward(), gloss.backward())
            });
            let shapes = net.layer_shapes(&cfg.dims);
            // (layer, kind, flex gradient, wgpu gradient, full shape, active shape)
            let mut pairs = Vec::new();
            let (stored, gstored) = (slim.clone().stored(), gpu.clone().stored());
            for (((id, l), p), gp) in net.layers.iter().zip(&stored.layers).zip(&gstored.layers) {
                let s = shapes[id.index()];
                let mut add = |kind: &'static str, want: Option<Vec<f32>>, got: Option<Vec<f32>>, full: Vec<usize>| {
                    let (Some(want), Some(got)) = (want.clone(), got.clone()) else {
                        panic!(
                            "{name} {}.{kind} at {:?}: a gradient on one backend only (flex: {}, wgpu: {})",
                            l.name,
                            cfg.dims,
                            want.is_some(),
                            got.is_some()
                        )
                    };
                    pairs.push((l.name.clone(), kind, want, got, full, s));
                };
                if let (Some(w), Some(gw)) = (&p.conv, &gp.conv) {
                    let full = w.val().dims().to_vec();
                    add("weight", w.val().grad(&grads).map(host), gw.val().grad(&ggrads).map(host), full);
                }
                if let (Some(w), Some(gw)) = (&p.linear, &gp.linear) {
                    let full = w.val().dims().to_vec();
                    add("weight", w.val().grad(&grads).map(host), gw.val().grad(&ggrads).map(host), full);
                }
                if let (Some(b), Some(gb)) = (&p.bias, &gp.bias) {
                    let full = b.val().dims().to_vec();
                    add("bias", b.val().grad(&grads).map(host), gb.val().grad(&ggrads).map(host), full);
                }
                for (kind, a, b) in [("gamma", &p.gamma, &gp.gamma), ("beta", &p.beta, &gp.beta)] {
                    if let (Some(t), Some(gt)) = (a.first(), b.first()) {
                        let full = t.val().dims().to_vec();
                        add(kind, t.val().grad(&grads).map(host), gt.val().grad(&ggrads).map(host), full);
                    }
                }
            }
            // Each gradient relative to its own scale, or to a thousandth of the largest
            // gradient of the network where it is smaller: some are zero in exact arithmetic
            // (the β of a BN whose output a later BN re-centres), so rounding is all they hold.
            let largest = pairs.iter().flat_map(|p| &p.2).fold(0f32, |m, v| m.max(v.abs()));
            for (layer, kind, want, got, full, s) in &pairs {
                let d = rel(want, got, 1e-3 * largest);
                assert!(d <= 2e-3, "{name} {layer}.{kind} at {:?}: gradients differ by {d} (relative)", cfg.dims);
                assert_inactive_zero(name, layer, kind, got, full, *s);
            }
            let compared = pairs.len();
            assert!(compared > 20, "{name}: {compared} gradients compared");
        }
    }
}

#[test]
fn sandwich_steps_match_flex() {
    for &(name, size) in MODELS {
        let net = smooth(&network(name, size));
        let mut slim = SlimNet::<CpuTrain>::new(net.clone(), Vec::new(), 13, &Default::default());
        let mut gpu = moved::<CpuTrain, WgpuTrain>(&slim, &device());
        let sgd = || {
            SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0).with_nesterov(true)))
        };
        let (mut optim, mut goptim) =
            (sgd().init::<CpuTrain, SlimNet<CpuTrain>>(), sgd().init::<WgpuTrain, SlimNet<WgpuTrain>>());
        let opts = StepOptions { distill: true, lr: 0.05, weight_decay: 5e-4, label_smoothing: 0.1 };
        let (mut rng, sandwich) = (StdRng::seed_from_u64(3), Sandwich::default());
        let classes = net.layers[net.output].channels as i64;
        // Two steps, so that the second applies momentum.
        for k in 0..2u64 {
            let (x, gx) = batch(&net, BATCH, 10 + k);
            let labels: Vec<i64> = (0..BATCH as i64).map(|i| (i * 3 + k as i64) % classes).collect();
            let y = Tensor::from_data(TensorData::new(labels.clone(), [BATCH]), &Default::default());
            let gy = Tensor::from_data(TensorData::new(labels, [BATCH]), &device());
            let widths = sandwich.widths(&slim, &mut rng).unwrap();
            let one = Replica::single();
            let (next, loss) = step(slim, &mut optim, Tensor::from_inner(x), y, &widths, &opts, &one).unwrap();
            let (gnext, gloss) = step(gpu, &mut goptim, Tensor::from_inner(gx), gy, &widths, &opts, &one).unwrap();
            (slim, gpu) = (next, gnext);
            let (loss, gloss) = (loss.read(), gloss.read());
            assert!((loss - gloss).abs() <= 1e-4 * loss.abs().max(1.0), "{name} step {k}: loss {loss} vs {gloss}");
        }
        for ((what, want), (_, got)) in parameters(&slim).into_iter().zip(parameters(&gpu)) {
            // Relative to the tensor's scale, or to 0.01 for the ones near zero (the β of a
            // BN that a later BN re-centres moves by rounding alone).
            let d = rel(&want, &got, 1e-2);
            assert!(d <= 2e-3, "{name} {what}: weights after two sandwich steps differ by {d} (relative)");
        }
    }
}

/// Calibrated statistics, the exported subnet's tensors, and that subnet run as Burn's
/// fixed network on wgpu.
#[test]
fn calibration_and_export_match_flex() {
    for &(name, size) in FORWARD_MODELS {
        let net = network(name, size);
        let slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 17, &Default::default());
        let gpu = moved::<Cpu, Wgpu>(&slim, &device());
        let batches: Vec<_> = (0..2).map(|i| batch(&net, BATCH, 20 + i)).collect();
        let cfgs = configs(&slim);
        for cfg in [&cfgs[1], &cfgs[3]] {
            let stats = calibrate(&slim, cfg, batches.iter().map(|b| b.0.clone())).unwrap();
            let gstats = calibrate(&gpu, cfg, batches.iter().map(|b| b.1.clone())).unwrap();
            let (want, got) = (stats.to_host(), gstats.to_host());
            assert_eq!(want.key, got.key);
            for (i, (a, b)) in want.layers.iter().zip(&got.layers).enumerate() {
                let (Some((am, av)), Some((bm, bv))) = (a, b) else {
                    assert_eq!(a.is_some(), b.is_some(), "{name}: layer {i} calibrated on one backend only");
                    continue;
                };
                let (dm, dv) = (rel(am, bm, 1.0), rel(av, bv, 1.0));
                assert!(dm <= 1e-4 && dv <= 1e-4, "{name} layer {i} at {:?}: statistics differ ({dm}, {dv})", cfg.dims);
            }

            let subnet = Subnet::extract(&slim, cfg, &stats).unwrap();
            let gsubnet = Subnet::extract(&gpu, cfg, &gstats).unwrap();
            assert_eq!(subnet.info.channels, gsubnet.info.channels);
            let tensors = |s: &Subnet| -> Vec<HostTensor> {
                // Weights and biases (BN's calibrated statistics are compared above).
                let learned = s.layers.iter().filter(|l| !matches!(l, FixedParams::Bn(_)));
                learned.flat_map(|l| l.tensors().into_iter().map(|(_, t)| t)).collect()
            };
            for (a, b) in tensors(&subnet).iter().zip(&tensors(&gsubnet)) {
                assert_eq!(a.shape, b.shape, "{name}: exported shapes");
                assert_eq!(a.data, b.data, "{name}: exported weights are the active slices, bit for bit");
            }
            let fixed = FixedNet::<Wgpu>::from_subnet(&gsubnet, &device());
            let gx = batches[0].1.clone();
            let want = gpu.forward(gx.clone(), cfg, Mode::Eval(&gstats)).unwrap().logits;
            let d = relative_diff(want, fixed.forward(gx));
            assert!(d <= 1e-4, "{name} at {:?}: the exported subnet differs by {d} on wgpu", cfg.dims);
        }
    }
}

/// `slimc emit`'s module for ResNet-20 and MobileNetV2 (emitted for the networks' default
/// parameters: the class count is fixed in the code), on wgpu with the runtime's weights,
/// computes flex's runtime logits.
#[test]
fn emitted_modules_run_on_wgpu() {
    macro_rules! emitted {
        ($module:ident, $ty:ident, $name:literal, $size:literal) => {{
            let src = std::fs::read_to_string(concat!("models/", $name, ".slim")).unwrap();
            let options = slimc_lang::Options {
                settings: vec![("size".into(), slimc_lang::ir::ParamValue::Int($size))],
                ..Default::default()
            };
            let net = without_dropout(&slimc_lang::compile(&src, $name, &options).unwrap().remove(0));
            let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 19, &Default::default());
            let mut stats = condition_bn(&mut slim, &Default::default());
            let gpu = moved::<Cpu, Wgpu>(&slim, &device());
            let gstats = BnSet::<Wgpu>::from_host(&stats.to_host(), &device());
            let module = loaded!($module, $ty, Wgpu, gpu, gstats);
            let (x, gx) = batch(&net, BATCH, 30);
            for cfg in configs(&slim) {
                stats.key = cfg.key();
                let want = slim.forward(x.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
                let widths: Vec<usize> = cfg.dims.iter().map(|&d| d as usize).collect();
                let d = rel(&host(want), &host(module.forward(gx.clone(), &widths)), 1.0);
                assert!(d <= 1e-4, "{} at {:?}: the emitted module on wgpu differs by {d}", $name, cfg.dims);
            }
        }};
    }
    emitted!(resnet20, Resnet20, "resnet20", 16);
    emitted!(mobilenet_v2, MobilenetV2, "mobilenet_v2", 64);
}
