//! `slimc emit` for every zoo model: `tests/emitted/*.rs` is exactly what the emitter
//! writes today (so this crate compiles the emitted code), and each emitted module, given
//! the runtime's weights and BN statistics through its `layers_mut()`, computes the
//! runtime's logits at full, uniform and non-uniform widths.

#[macro_use]
mod common;

// The emitted code of every zoo model (scripts/emit-zoo.sh writes these files).
// Each is a private module of this test binary, so the builders it does not call are dead here.
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/convnext_tiny.rs"]
mod convnext_tiny;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/vgg16.rs"]
mod vgg16;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/vit_b_16.rs"]
mod vit_b_16;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/deit_tiny.rs"]
mod deit_tiny;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/vit_fmnist.rs"]
mod vit_fmnist;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/swin_t.rs"]
mod swin_t;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/efficientnet_b0.rs"]
mod efficientnet_b0;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/mnasnet.rs"]
mod mnasnet;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/mobilenet_v1.rs"]
mod mobilenet_v1;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/mobilenet_v2.rs"]
mod mobilenet_v2;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/mobilenet_v3_large.rs"]
mod mobilenet_v3_large;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/mobilenet_v3_small.rs"]
mod mobilenet_v3_small;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/regnetx_400mf.rs"]
mod regnetx_400mf;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/regnety_400mf.rs"]
mod regnety_400mf;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet101.rs"]
mod resnet101;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet152.rs"]
mod resnet152;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet18.rs"]
mod resnet18;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/edge_cases.rs"]
mod edge_cases;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet20.rs"]
mod resnet20;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet32.rs"]
mod resnet32;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet34.rs"]
mod resnet34;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet44.rs"]
mod resnet44;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet50.rs"]
mod resnet50;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/resnet56.rs"]
mod resnet56;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/shufflenet_v2.rs"]
mod shufflenet_v2;
#[allow(dead_code)]
#[rustfmt::skip]
#[path = "emitted/wrn40_4.rs"]
mod wrn40_4;

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use slimc_lang::ir::Network;
use slimc_runtime::runtime::device::{Cpu, CpuTrain};
use slimc_runtime::runtime::{BnSet, Mode, SlimNet, WidthConfig};

use common::{condition_bn, relative_diff};

/// A zoo model, or the edge-case network of `tests/emitted/`.
fn source(name: &str) -> String {
    if name == "edge_cases" {
        "tests/edge_cases.slim".into()
    } else {
        format!("models/{name}.slim")
    }
}

fn compile(name: &str) -> Network {
    let src = std::fs::read_to_string(source(name)).unwrap();
    let mut nets = slimc_lang::compile(&src, name, &Default::default()).unwrap_or_else(|d| panic!("{}", d.render()));
    nets.remove(0)
}

#[test]
fn emitted_files_are_current() {
    let mut stale = Vec::new();
    for name in common::classifiers().chain(["edge_cases"]) {
        let code = slimc_lang::emit::emit(&compile(name), &source(name)).unwrap();
        let path = format!("tests/emitted/{name}.rs");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(code.as_str()) {
            stale.push(path);
        }
    }
    assert!(stale.is_empty(), "stale emitted code (run scripts/emit-zoo.sh): {stale:?}");
}

/// A zoo model with random weights and well-conditioned BN statistics, and the widths to
/// compare at: full, uniform 0.5, and every third dimension at full width with the rest at 0.4.
fn setup<B: Backend>(name: &str) -> (SlimNet<B>, BnSet<B>, Vec<WidthConfig>) {
    let net = Arc::new(compile(name));
    let mut slim = SlimNet::<B>::new(net.clone(), Vec::new(), 5, &Default::default());
    let stats = condition_bn(&mut slim, &Default::default());
    let mut cfgs = vec![slim.uniform(1.0).unwrap(), slim.uniform(0.5).unwrap()];
    let wm: Vec<f64> = (0..net.space.search_dim()).map(|i| if i % 3 == 1 { 1.0 } else { 0.4 }).collect();
    cfgs.push(WidthConfig::new(net.space.decode(&wm, net.rounding).unwrap()));
    (slim, stats, cfgs)
}

/// Inference: the emitted module against the runtime with stored statistics.
macro_rules! compare {
    ($module:ident, $ty:ident $(, $($kinds:ident)+)?) => {{
        let name = stringify!($module);
        let (slim, mut stats, cfgs) = setup::<Cpu>(name);
        let emitted = loaded!($module, $ty, Cpu, slim, stats $(, $($kinds)+)?);
        let full: Vec<usize> = slim.net.full_width().iter().map(|&d| d as usize).collect();
        assert_eq!($module::BASE_WIDTHS.to_vec(), full, "{name}");
        assert_eq!($module::INPUT, slim.net.input.map(|v| v as usize), "{name}");
        assert_eq!($module::CLASSES, slim.net.layers[slim.net.output].channels as usize, "{name}");
        let c = slim.net.input[0] as usize;
        // Position embeddings and windows hold for the compiled size; other networks run at 32x32.
        let sized = slim.net.layers.iter().any(|(_, l)| {
            matches!(l.op, slimc_lang::ir::Op::PosEmbed { .. } | slimc_lang::ir::Op::Attend { window: Some(_), .. })
        });
        let s = if sized { slim.net.input[1] as usize } else { 32 };
        for cfg in cfgs {
            stats.key = cfg.key();
            let x = Tensor::<Cpu, 4>::random([2, c, s, s], Distribution::Normal(0.0, 1.0), &Default::default());
            let ours = slim.forward(x.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
            let widths: Vec<usize> = cfg.dims.iter().map(|&d| d as usize).collect();
            let d = relative_diff(ours, emitted.forward(x, &widths));
            assert!(d <= 1e-4, "{name} at {:?}: emitted differs by {d} (relative)", cfg.dims);
        }
    }};
}

/// Training: on an autodiff backend the emitted module normalises with batch statistics,
/// as the runtime's train mode does, and gradients reach the parameters.
macro_rules! compare_training {
    ($module:ident, $ty:ident) => {{
        let name = stringify!($module);
        let (slim, stats, cfgs) = setup::<CpuTrain>(name);
        let emitted = loaded!($module, $ty, CpuTrain, slim, stats);
        let c = slim.net.input[0] as usize;
        for cfg in cfgs {
            let x = Tensor::<CpuTrain, 4>::random([4, c, 64, 64], Distribution::Normal(0.0, 1.0), &Default::default());
            let widths: Vec<usize> = cfg.dims.iter().map(|&d| d as usize).collect();
            let (ours, theirs, grads) = common::alone(|| {
                let ours = slim.forward(x.clone(), &cfg, Mode::Train).unwrap().logits;
                let theirs = emitted.forward(x, &widths);
                let grads = theirs.clone().sum().backward();
                (ours, theirs, grads)
            });
            let d = relative_diff(ours, theirs);
            assert!(d <= 1e-4, "{name} at {:?}: emitted (training) differs by {d} (relative)", cfg.dims);
            let mut params = emitted.clone();
            let (_, first) = params.layers_mut().into_iter().next().unwrap();
            let $module::LayerMut::Conv(conv) = first else { panic!("{name}: the first layer is a conv") };
            assert!(conv.weight.grad(&grads).is_some(), "{name}: the stem conv gets a gradient");
        }
    }};
}

#[test]
fn emitted_cifar_models_compute_the_runtime_logits() {
    compare!(resnet20, Resnet20);
    compare!(resnet32, Resnet32);
    compare!(resnet44, Resnet44);
    compare!(resnet56, Resnet56);
    compare!(wrn40_4, Wrn404);
}

#[test]
fn emitted_resnets_compute_the_runtime_logits() {
    compare!(resnet18, Resnet18);
    compare!(resnet34, Resnet34);
    compare!(resnet50, Resnet50);
    compare!(resnet101, Resnet101);
    compare!(resnet152, Resnet152);
}

#[test]
fn emitted_mobile_models_compute_the_runtime_logits() {
    compare!(mobilenet_v1, MobilenetV1);
    compare!(mobilenet_v2, MobilenetV2);
    compare!(mobilenet_v3_large, MobilenetV3Large);
    compare!(mobilenet_v3_small, MobilenetV3Small);
    compare!(efficientnet_b0, EfficientnetB0);
    compare!(mnasnet, Mnasnet);
}

#[test]
fn emitted_modules_train_with_batch_statistics() {
    // Networks without dropout, whose training forward is deterministic.
    compare_training!(resnet20, Resnet20);
    compare_training!(shufflenet_v2, ShufflenetV2);
    compare_training!(regnety_400mf, Regnety400mf);
    // Dropout is active in training: two passes over one batch differ.
    let (slim, stats, _) = setup::<CpuTrain>("mobilenet_v3_small");
    let emitted = loaded!(mobilenet_v3_small, MobilenetV3Small, CpuTrain, slim, stats);
    let x = Tensor::<CpuTrain, 4>::random([4, 3, 64, 64], Distribution::Normal(0.0, 1.0), &Default::default());
    let widths = mobilenet_v3_small::BASE_WIDTHS;
    let d = relative_diff(emitted.forward(x.clone(), &widths), emitted.forward(x, &widths));
    assert!(d > 1e-3, "dropout changes a training pass ({d})");
}

#[test]
fn emitted_grouped_and_shuffled_models_compute_the_runtime_logits() {
    compare!(shufflenet_v2, ShufflenetV2);
    compare!(regnetx_400mf, Regnetx400mf);
    compare!(regnety_400mf, Regnety400mf);
    compare!(edge_cases, EdgeCases, bn norms up tables);
}

#[test]
fn emitted_convnext_and_vgg_compute_the_runtime_logits() {
    compare!(convnext_tiny, ConvnextTiny, norms);
    compare!(vgg16, Vgg16, plain);
}

#[test]
fn emitted_vision_transformer_computes_the_runtime_logits() {
    compare!(deit_tiny, DeitTiny, ln tables);
    compare!(vit_fmnist, VitFmnist, ln tables);
    compare!(swin_t, SwinT, ln tables);
}

#[test]
fn the_unet_is_not_emitted() {
    let e = slimc_lang::emit::emit(&compile("unet"), "models/unet.slim").unwrap_err();
    assert!(e.to_string().contains("outputs a 64x64 map"), "{e}");
}
