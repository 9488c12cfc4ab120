//! Fixed-width export against the slimmable runtime: the subnet as plain Burn layers,
//! BN folded or not, computes what the slimmed network computes; the Burn record and
//! safetensors files read back to the same tensors; every zoo model's ONNX export runs in
//! onnxruntime (Python, from PyPI) with logits equal to slimc's to 1e-4.
//!
//! The ONNX check needs `python3 -m pip install onnx onnxruntime numpy`: it is an ignored
//! test, run by `cargo test -- --include-ignored` (as `bash .ci/run` does).

mod common;

use std::path::Path;

use burn::tensor::{Distribution, Tensor};

use slimc_runtime::export::burn::FixedNet;
use slimc_runtime::export::{onnx, safetensors, Subnet};
use slimc_runtime::runtime::checkpoint::Meta;
use slimc_runtime::runtime::device::Cpu;
use slimc_runtime::runtime::{Mode, SlimNet, WidthConfig};

use common::{condition_bn, onnx_check, relative_diff, require_onnxruntime, scratch, small, test_size};

/// A model with random weights and well-conditioned BN statistics, a non-uniform width
/// configuration (every third dimension at full width, the rest at `w`), the slimmed
/// logits for a batch, the batch and the extracted subnet.
struct Case {
    input: Tensor<Cpu, 4>,
    logits: Tensor<Cpu, 2>,
    subnet: Subnet,
}

fn case(name: &str, w: f64) -> Case {
    let device = Default::default();
    let s = test_size(name);
    let net = small(name, s);
    let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 11, &device);
    let mut stats = condition_bn(&mut slim, &device);
    let wm: Vec<f64> = (0..net.space.search_dim()).map(|i| if i % 3 == 1 { 1.0 } else { w }).collect();
    let cfg = WidthConfig::new(net.space.decode(&wm, net.rounding).unwrap());
    stats.key = cfg.key();
    let input =
        Tensor::random([2, net.input[0] as usize, s as usize, s as usize], Distribution::Normal(0.0, 1.0), &device);
    let logits = slim.forward(input.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
    let subnet = Subnet::extract(&slim, &cfg, &stats).unwrap();
    Case { input, logits, subnet }
}

fn assert_close(name: &str, what: &str, ours: &Tensor<Cpu, 2>, theirs: &Tensor<Cpu, 2>) {
    let d = relative_diff(ours.clone(), theirs.clone());
    assert!(d < 1e-4, "{name}: {what} differs from the slimmed forward by {d} (relative)");
}

#[test]
fn burn_subnet_equals_the_slimmed_forward_with_and_without_folding() {
    let device = Default::default();
    for name in common::classifiers().chain(["edge_cases"]) {
        let mut c = case(name, 0.5);
        let fixed = FixedNet::<Cpu>::from_subnet(&c.subnet, &device);
        assert_close(name, "the fixed-width Burn network", &c.logits, &fixed.forward(c.input.clone()));
        let params = c.subnet.parameter_count();
        assert_eq!(params, c.subnet.info.params, "{name}: stored parameters are the cost model's");
        let folded = c.subnet.fold_bn();
        let has_bn = c.subnet.net.layers.iter().any(|(_, l)| l.op == slimc_lang::ir::Op::BatchNorm);
        assert_eq!(folded > 0, has_bn, "{name}: some BN follows a conv");
        let fixed = FixedNet::<Cpu>::from_subnet(&c.subnet, &device);
        assert_close(name, "the BN-folded network", &c.logits, &fixed.forward(c.input.clone()));
        assert!(!has_bn || c.subnet.parameter_count() < params, "{name}: folding removes BN's γ and β");
    }
}

#[test]
fn burn_record_and_safetensors_read_back_the_same_model() {
    let dir = scratch("files");
    let src = std::fs::read_to_string("models/mobilenet_v2.slim").unwrap();
    let meta = Meta {
        format: slimc_runtime::format::META,
        slimc_version: String::new(),
        source_path: "models/mobilenet_v2.slim".into(),
        source: src,
        network: "mobilenet_v2".into(),
        settings: vec![
            ("size".into(), slimc_lang::ir::ParamValue::Int(32)),
            ("classes".into(), slimc_lang::ir::ParamValue::Int(7)),
        ],
        rounding: "make_divisible(8)".into(),
        switches: vec![],
        bn: vec![],
        state: None,
    };
    for fold in [false, true] {
        let mut c = case("mobilenet_v2", 0.6);
        if fold {
            c.subnet.fold_bn();
        }
        let mpk = slimc_runtime::export::burn::save(&c.subnet, &meta, &dir.join("model.mpk")).unwrap();
        let (loaded, info) = slimc_runtime::export::burn::open::<Cpu>(&mpk, &Default::default()).unwrap();
        assert_eq!(info.info.channels, c.subnet.info.channels);
        assert_close("mobilenet_v2", "the reloaded Burn record", &c.logits, &loaded.forward(c.input.clone()));

        let bytes = safetensors::to_bytes(&c.subnet).unwrap();
        let mut expected = c.subnet.named_tensors();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(safetensors::read(&bytes).unwrap(), expected);
        let header =
            String::from_utf8_lossy(&bytes[8..8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize])
                .into_owned();
        assert!(header.contains("slimc.channels") && header.contains("slimc.layers"), "{header}");
    }
    // A dotted name is written beside, never over, the file its first part names.
    std::fs::write(dir.join("other.mpk"), b"keep me").unwrap();
    let c = case("mobilenet_v2", 0.6);
    let dotted = slimc_runtime::export::burn::save(&c.subnet, &meta, &dir.join("other.best.mpk")).unwrap();
    assert_eq!(dotted, dir.join("other.best.mpk"));
    assert_eq!(std::fs::read(dir.join("other.mpk")).unwrap(), b"keep me");
    assert!(slimc_runtime::export::burn::open::<Cpu>(&dotted, &Default::default()).is_ok());
    // The record of another network's layers (other kinds, another count) beside this
    // network's JSON is refused, never loaded into the wrong layers.
    let other = case("resnet20", 0.5);
    slimc_runtime::export::burn::save(&other.subnet, &meta, &dir.join("resnet.mpk")).unwrap();
    std::fs::copy(dir.join("resnet.mpk"), dir.join("other.best.mpk")).unwrap();
    let err = slimc_runtime::export::burn::open::<Cpu>(&dotted, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    // An export from before formats were numbered (format 1: another record layout), or
    // from a newer slimc, is refused by its number.
    let json = dir.join("resnet.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for (format, says) in [(None, "format version 1"), (Some(99), "format version 99")] {
        match format {
            None => doc.as_object_mut().unwrap().remove("format"),
            Some(v) => doc.as_object_mut().unwrap().insert("format".into(), v.into()),
        };
        std::fs::write(&json, serde_json::to_vec(&doc).unwrap()).unwrap();
        let err = slimc_runtime::export::burn::open::<Cpu>(&dir.join("resnet.mpk"), &Default::default()).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    // A record from another configuration, or a missing one, is an error, not a panic.
    std::fs::write(dir.join("model.mpk"), b"not a record").unwrap();
    let err = slimc_runtime::export::burn::open::<Cpu>(&dir.join("model.mpk"), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("model.mpk"), "{err}");
    let err = slimc_runtime::export::burn::open::<Cpu>(&dir.join("none.mpk"), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("none.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes the model and checks it in onnxruntime against slimc's logits.
fn onnxruntime_agrees(dir: &Path, name: &str, c: &Case) {
    let model = dir.join(format!("{name}.onnx"));
    std::fs::write(&model, onnx::to_bytes(&c.subnet)).unwrap();
    let o = onnx_check(&model, &c.input, &c.logits);
    eprintln!("{name}: {}", String::from_utf8_lossy(&o.stdout).trim());
    assert!(
        o.status.success(),
        "{name}: onnxruntime disagrees or rejects the model:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
#[ignore = "needs onnxruntime: python3 -m pip install onnx onnxruntime numpy"]
fn onnx_export_of_every_zoo_model_runs_in_onnxruntime() {
    require_onnxruntime();
    let dir = scratch("onnx");
    for (k, name) in common::classifiers().chain(["edge_cases"]).enumerate() {
        let mut c = case(name, 0.5);
        // Half the models with BN folded into the convs, half with BatchNormalization nodes.
        if k % 2 == 1 {
            c.subnet.fold_bn();
        }
        onnxruntime_agrees(&dir, name, &c);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn switchable_bn_exports_the_switch_of_the_width() {
    let device = Default::default();
    let net = small("mobilenet_v2", 32);
    let mut slim = SlimNet::<Cpu>::new(net.clone(), vec![0.5, 1.0], 3, &device);
    let mut stats = condition_bn(&mut slim, &device);
    let x = Tensor::<Cpu, 4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    for w in [0.5, 1.0] {
        let cfg = slim.uniform(w).unwrap();
        stats.key = cfg.key();
        let ours = slim.forward(x.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
        let subnet = Subnet::extract(&slim, &cfg, &stats).unwrap();
        let fixed = FixedNet::<Cpu>::from_subnet(&subnet, &device);
        assert_close("mobilenet_v2", &format!("the switch-{w} subnet"), &ours, &fixed.forward(x.clone()));
    }
}
