//! Shared by the integration tests (each uses some of it).
#![allow(dead_code)]

pub mod mutate;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, ElementConversion, Tensor};

use slimc_lang::ir::{Network, ParamValue};
use slimc_lang::Options;
use slimc_runtime::runtime::{BnSet, LayerParams, SlimNet};

/// Every model of the zoo, as named in `models/`.
pub const ZOO: &[&str] = &[
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wrn40_4",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "mnasnet",
    "shufflenet_v2",
    "regnetx_400mf",
    "regnety_400mf",
    "convnext_tiny",
    "vgg16",
    "vit_b_16",
    "deit_tiny",
    "vit_fmnist",
    "swin_t",
    "unet",
];

/// The zoo's classifiers: every model but the U-Net, whose output is a map (training,
/// export and emit take class logits).
pub fn classifiers() -> impl Iterator<Item = &'static str> {
    ZOO.iter().copied().filter(|n| *n != "unet")
}

/// The `.slim` file of a zoo model, or of `edge_cases` (not a model: the corners of emit
/// and export in one network).
pub fn source(name: &str) -> String {
    if name == "edge_cases" {
        "tests/edge_cases.slim".to_string()
    } else {
        format!("models/{name}.slim")
    }
}

/// The input size a model is tested at on the CPU: ImageNet models at 32, CIFAR ones at 16.
pub fn test_size(name: &str) -> i64 {
    match name {
        "resnet20" | "resnet32" | "resnet44" | "resnet56" | "wrn40_4" => 16,
        // Its windows (7x7) need maps of 56, 28, 14 and 7 pixels.
        "swin_t" => 224,
        _ => 32,
    }
}

/// A zoo model re-targeted to small inputs so that CPU tests stay fast.
pub fn small(name: &str, size: i64) -> Arc<Network> {
    let src = std::fs::read_to_string(source(name)).unwrap();
    let options = Options {
        settings: vec![
            ("size".into(), ParamValue::Int(size)),
            ("classes".into(), ParamValue::Int(7)),
            ("in_channels".into(), ParamValue::Int(3)),
        ],
        ..Options::default()
    };
    let mut nets = slimc_lang::compile(&src, name, &options).unwrap_or_else(|d| panic!("{}", d.render()));
    Arc::new(nets.remove(0))
}

/// Runs `f` (forward passes and the backward pass of their loss) alone among this
/// process's autodiff graphs: tests run side by side, and Burn 0.21's backward pass can
/// free another thread's graph under construction (`slimc_runtime::runtime::graphs`).
#[allow(dead_code)]
pub fn alone<T>(f: impl FnOnce() -> T) -> T {
    let _alone = slimc_runtime::runtime::graphs::backward();
    f()
}

/// Random but well-conditioned BN parameters and statistics (variances in [0.5, 2]), so
/// that the comparison measures slicing, not the chaos of an untrained deep network
/// normalised by near-zero variances.
pub fn condition_bn<B: Backend>(slim: &mut SlimNet<B>, device: &B::Device) -> BnSet<B> {
    let mut set = slim.empty_stats(String::new());
    for (i, p) in slim.layers.iter_mut().enumerate() {
        let gamma = |c: usize| Param::from_tensor(Tensor::random([c], Distribution::Uniform(0.5, 1.5), device));
        let c = match p {
            LayerParams::Affine(a) => {
                let c = a.gamma[0].val().dims()[0];
                a.gamma.iter_mut().for_each(|g| *g = gamma(c));
                for b in a.beta.iter_mut() {
                    *b = Param::from_tensor(Tensor::random([c], Distribution::Uniform(-0.2, 0.2), device));
                }
                c
            }
            LayerParams::Scale(s) => {
                let c = s.gamma.val().dims()[0];
                s.gamma = gamma(c);
                c
            }
            _ => continue,
        };
        let mean = Tensor::random([c], Distribution::Normal(0.0, 0.2), device);
        let var = Tensor::random([c], Distribution::Uniform(0.5, 2.0), device);
        set.layers[i] = Some((mean, var));
    }
    set
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slimc-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// max |a − b| over max(1, max |a|).
pub fn relative_diff<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let scale = a.clone().abs().max().into_scalar().elem::<f32>();
    let diff = (a - b).abs().max().into_scalar().elem::<f32>();
    diff / scale.max(1.0)
}

/// max |a − b| / max(max |a|, floor) over host values: the error relative to the values'
/// own scale.
pub fn rel(a: &[f32], b: &[f32], floor: f32) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(floor);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Fails the test unless `python3` can import onnx, onnxruntime and numpy. Tests that
/// call it are `#[ignore = "needs onnxruntime: …"]`, so a plain `cargo test` lists them as
/// ignored and `bash .ci/run` (which installs them) runs them.
pub fn require_onnxruntime() {
    let ok = Command::new("python3")
        .args(["-c", "import onnx, onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "python3 cannot import onnx, onnxruntime and numpy: python3 -m pip install onnx onnxruntime numpy");
}

/// A tensor's values as raw little-endian f32, the form the Python checks read.
pub fn write_f32<B: Backend, const D: usize>(path: &Path, t: &Tensor<B, D>) {
    let values: Vec<f32> = t.to_data().convert::<f32>().to_vec().unwrap();
    std::fs::write(path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

/// Runs `scripts/onnx_check.py` on `model` with a batch and the logits slimc computed for
/// it (written beside the model as raw little-endian f32).
pub fn onnx_check<B: Backend>(model: &Path, input: &Tensor<B, 4>, logits: &Tensor<B, 2>) -> Output {
    let (x, y) = (model.with_extension("in.f32"), model.with_extension("out.f32"));
    write_f32(&x, input);
    write_f32(&y, logits);
    Command::new("python3").arg("scripts/onnx_check.py").args([model, &x, &y]).output().unwrap()
}

/// The emitted module of `$module` on backend `$b`, holding `slim`'s parameters and the
/// statistics of `stats`, copied by layer name through `layers_mut()`, on `slim`'s device.
#[allow(unused_macros)]
macro_rules! loaded {
    // `$kinds`: which of batch norm (`bn`), layer norm with layer scale (`norms`), layer
    // norm alone (`ln`), transposed convs (`up`) and token tables (`tables`) the
    // module has, beyond convs and linears (its `LayerMut` has only the variants it uses).
    ($module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr) => {
        loaded!($module, $ty, $b, $slim, $stats, bn)
    };
    ($module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr, $($kinds:ident)+) => {
        loaded!(@ $module, $ty, $b, $slim, $stats; p i stats; $($kinds)+;)
    };
    (@ $module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr; $p:ident $i:ident $st:ident; bn $($kinds:ident)*; $($arms:tt)*) => {
        loaded!(@ $module, $ty, $b, $slim, $stats; $p $i $st; $($kinds)*; $($arms)*
            LayerMut::BatchNorm(bn) => {
                let (gamma, beta) = $p.affine().unwrap().at(0);
                bn.gamma = Param::from_tensor(gamma);
                bn.beta = Param::from_tensor(beta);
                let (mean, var) = $st.layers[$i].clone().unwrap();
                bn.mean = RunningState::new(mean);
                bn.var = RunningState::new(var);
            }
        )
    };
    (@ $module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr; $p:ident $i:ident $st:ident; norms $($kinds:ident)*; $($arms:tt)*) => {
        loaded!(@ $module, $ty, $b, $slim, $stats; $p $i $st; ln $($kinds)*; $($arms)*
            LayerMut::LayerScale(s) => s.gamma = Param::from_tensor($p.scale().unwrap().gamma.val()),
        )
    };
    (@ $module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr; $p:ident $i:ident $st:ident; up $($kinds:ident)*; $($arms:tt)*) => {
        loaded!(@ $module, $ty, $b, $slim, $stats; $p $i $st; $($kinds)*; $($arms)*
            LayerMut::ConvTranspose(c) => {
                c.weight = Param::from_tensor($p.kernel().unwrap().weight.val());
                c.bias = $p.kernel().unwrap().bias.as_ref().map(|b| Param::from_tensor(b.val()));
            }
        )
    };
    (@ $module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr; $p:ident $i:ident $st:ident; ln $($kinds:ident)*; $($arms:tt)*) => {
        loaded!(@ $module, $ty, $b, $slim, $stats; $p $i $st; $($kinds)*; $($arms)*
            LayerMut::LayerNorm(n) => {
                let (gamma, beta) = $p.affine().unwrap().at(0);
                n.gamma = Param::from_tensor(gamma);
                n.beta = Param::from_tensor(beta);
            }
        )
    };
    (@ $module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr; $p:ident $i:ident $st:ident; tables $($kinds:ident)*; $($arms:tt)*) => {
        loaded!(@ $module, $ty, $b, $slim, $stats; $p $i $st; $($kinds)*; $($arms)*
            LayerMut::Table(t) => t.weight = Param::from_tensor($p.matrix().unwrap().weight.val()),
        )
    };
    // `plain`: convs and linears only.
    (@ $module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr; $p:ident $i:ident $st:ident; plain $($kinds:ident)*; $($arms:tt)*) => {
        loaded!(@ $module, $ty, $b, $slim, $stats; $p $i $st; $($kinds)*; $($arms)*)
    };
    (@ $module:ident, $ty:ident, $b:ty, $slim:expr, $stats:expr; $p:ident $i:ident $st:ident; ; $($arms:tt)*) => {{
        #[allow(unused_imports)]
        use burn::module::{Module, Param, RunningState};
        use $module::LayerMut;
        #[allow(unused_variables)]
        let (slim, $st) = (&$slim, &$stats);
        let device = slim.devices().into_iter().next().expect("a network with parameters");
        let index: std::collections::HashMap<&str, usize> =
            slim.net.layers.iter().map(|(id, l)| (l.name.as_str(), id.index())).collect();
        let mut emitted = $module::$ty::<$b>::init(&device);
        let mut copied = 0;
        for (layer, target) in emitted.layers_mut() {
            let $i = index[layer];
            let $p = &slim.layers[$i];
            match target {
                LayerMut::Conv(c) => {
                    c.weight = Param::from_tensor($p.kernel().unwrap().weight.val());
                    c.bias = $p.kernel().unwrap().bias.as_ref().map(|b| Param::from_tensor(b.val()));
                }
                LayerMut::Linear(l) => {
                    l.weight = Param::from_tensor($p.matrix().unwrap().weight.val());
                    l.bias = $p.matrix().unwrap().bias.as_ref().map(|b| Param::from_tensor(b.val()));
                }
                $($arms)*
            }
            copied += 1;
        }
        let with_params = slim.layers.iter().filter(|p| !matches!(p, slimc_runtime::runtime::LayerParams::None(_)));
        assert_eq!(copied, with_params.count(), "layers_mut lists every parameter layer");
        emitted
    }};
}
