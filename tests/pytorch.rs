//! `slimc emit --target pytorch` against slimc itself, in PyTorch (from PyPI, with
//! safetensors and ruff): for every zoo model the generated module's `search_dim`,
//! `channel_space`, `decode_wm` and `decode_ch` are `slimc space --json`'s, `set_real_ch`
//! and `width_mult` give every layer its channels, and with slimc's weights its logits
//! equal slimc's runtime at three widths; ruff accepts the code as it is formatted. One
//! sandwich step of ResNet-20 in PyTorch updates the weights as slimc's step does, and
//! weights saved from the PyTorch module load back into slimc with the same logits.
//!
//! These tests need `python3 -m pip install torch safetensors ruff numpy`: they are
//! ignored, run by `cargo test -- --include-ignored` (as `bash .ci/run` does).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::backend::Autodiff;
use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::{json, Value};

use slimc_runtime::export::{named, safetensors, HostTensor, Subnet};
use slimc_runtime::runtime::device::Cpu;
use slimc_runtime::runtime::{BnSet, Mode, SlimNet, WidthConfig};
use slimc_runtime::train::parallel::Replica;
use slimc_runtime::train::{step, StepOptions};

use common::{condition_bn, relative_diff, scratch, small, source, test_size, write_f32};

fn require_torch() {
    let ok = Command::new("python3")
        .args(["-c", "import torch, safetensors, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 cannot import torch, safetensors and numpy: python3 -m pip install torch safetensors numpy ruff"
    );
}

/// The `slimc` binary with `args` (the settings every model here is compiled with added,
/// as `common::small` sets them).
fn slimc(args: &[&str], name: &str) -> Output {
    let s = test_size(name).to_string();
    let settings = ["--set", &format!("size={s}"), "--set", "classes=7", "--set", "in_channels=3"];
    Command::new(env!("CARGO_BIN_EXE_slimc")).args(args).args(settings).output().unwrap()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Emits `name`'s PyTorch module into `dir` through the binary.
fn emit(dir: &Path, name: &str) -> PathBuf {
    let module = dir.join(format!("{name}.py"));
    let src = source(name);
    ok(slimc(&["emit", &src, "--target", "pytorch", "-o", module.to_str().unwrap()], name), "slimc emit");
    module
}

/// The BN statistics a saved `state_dict` holds (`running_mean`, `running_var`; the row of
/// switch `switch` of a switchable BN's `[S, C]`), as `slim`'s statistics set `key`.
fn bn_stats(slim: &SlimNet<Cpu>, tensors: &[(String, HostTensor)], switch: usize, key: String) -> BnSet<Cpu> {
    let mut set = slim.empty_stats(key);
    for (id, l) in slim.net.layers.iter() {
        if l.op == slimc_lang::ir::Op::BatchNorm {
            let row = |s: &str| {
                let t = &tensors.iter().find(|(n, _)| *n == format!("{}.{s}", l.name)).unwrap().1;
                let c = *t.shape.last().unwrap();
                HostTensor { shape: vec![c], data: t.data[switch * c..(switch + 1) * c].to_vec() }
                    .to_tensor(&Default::default())
            };
            set.layers[id.index()] = Some((row("running_mean"), row("running_var")));
        }
    }
    set
}

fn python(args: &[&str]) -> Output {
    Command::new("python3").args(args).output().unwrap()
}

#[test]
#[ignore = "needs PyTorch: python3 -m pip install torch safetensors numpy ruff"]
fn emitted_pytorch_module_of_every_zoo_model_computes_what_slimc_does() {
    require_torch();
    let dir = scratch("pytorch");
    let device = Default::default();
    for name in common::classifiers().chain(["edge_cases"]) {
        let module = emit(&dir, name);
        let net = small(name, test_size(name));
        let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 11, &device);
        let mut stats = condition_bn(&mut slim, &device);
        let s = test_size(name) as usize;
        let input = Tensor::<Cpu, 4>::random([2, net.input[0] as usize, s, s], Distribution::Normal(0.0, 1.0), &device);
        let in_path = dir.join(format!("{name}.in.f32"));
        write_f32(&in_path, &input);
        let dims = net.space.search_dim();
        // Full width, a uniform width (through `width_mult`) and a non-uniform one.
        let cases: [(Vec<f64>, Option<f64>); 3] = [
            (vec![1.0; dims], Some(1.0)),
            (vec![0.5; dims], Some(0.5)),
            ((0..dims).map(|i| if i % 3 == 1 { 1.0 } else { 0.6 }).collect(), None),
        ];
        let mut docs = Vec::new();
        for (k, (wm, uniform)) in cases.into_iter().enumerate() {
            let cfg = WidthConfig::new(net.space.decode(&wm, net.rounding).unwrap());
            stats.key = cfg.key();
            let logits = slim.forward(input.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
            let weights = dir.join(format!("{name}.{k}.safetensors"));
            std::fs::write(&weights, safetensors::to_bytes(&Subnet::extract(&slim, &cfg, &stats).unwrap()).unwrap())
                .unwrap();
            let out = dir.join(format!("{name}.{k}.out.f32"));
            write_f32(&out, &logits);
            let wm_arg = wm.iter().map(f64::to_string).collect::<Vec<_>>().join(",");
            let space: Value =
                serde_json::from_str(&ok(slimc(&["space", &source(name), "--wm", &wm_arg, "--json"], name), "space"))
                    .unwrap();
            docs.push(json!({
                "wm": wm, "uniform": uniform, "space": space, "full": k == 0,
                "weights": weights, "input": in_path, "shape": input.dims(), "logits": out,
            }));
        }
        let cases = dir.join(format!("{name}.json"));
        std::fs::write(&cases, serde_json::to_vec(&docs).unwrap()).unwrap();
        let o = python(&["scripts/pytorch_check.py", "model", module.to_str().unwrap(), cases.to_str().unwrap()]);
        eprintln!("{name}:\n{}", String::from_utf8_lossy(&o.stdout).trim_end());
        ok(o, &format!("{name}: the PyTorch module against slimc"));
    }
    // The code as emitted: it compiles, lints clean and is formatted as ruff formats it.
    let modules: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .map(|p| p.display().to_string())
        .collect();
    let args = |cmd: &[&str]| cmd.iter().map(|s| s.to_string()).chain(modules.iter().cloned()).collect::<Vec<_>>();
    ok(Command::new("python3").args(args(&["-m", "py_compile"])).output().unwrap(), "py_compile");
    ok(Command::new("ruff").args(args(&["check", "--no-cache", "--isolated"])).output().unwrap(), "ruff check");
    ok(
        Command::new("ruff").args(args(&["format", "--check", "--no-cache", "--isolated"])).output().unwrap(),
        "ruff format",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs PyTorch: python3 -m pip install torch safetensors numpy ruff"]
fn a_sandwich_step_in_pytorch_updates_the_weights_as_slimcs_does() {
    require_torch();
    type Ad = Autodiff<Cpu>;
    let dir = scratch("pytorch-step");
    let device = Default::default();
    let module = emit(&dir, "resnet20");
    let net = small("resnet20", 32);
    let seed: u64 = std::env::var("SLIMC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    // Seeded throughout (the weights, `condition_bn`'s draws, the batch): one fixed start.
    <Ad as Backend>::seed(&device, seed);
    let mut slim = SlimNet::<Ad>::new(net.clone(), Vec::new(), seed, &device);
    let mut stats = condition_bn(&mut slim, &device);
    let full = WidthConfig::new(net.full_width());
    let low = WidthConfig::new(net.decode_uniform(0.5, net.rounding).unwrap());
    stats.key = full.key();
    let start = dir.join("start.safetensors");
    std::fs::write(&start, safetensors::to_bytes(&Subnet::extract(&slim, &full, &stats).unwrap()).unwrap()).unwrap();
    // A batch of 16 at 32×32 (BN's batch statistics over enough values), from a seeded generator.
    let mut rng = StdRng::seed_from_u64(seed);
    let pixels: Vec<f32> = (0..16 * 3 * 32 * 32).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
    let x = Tensor::<Ad, 4>::from_data(TensorData::new(pixels, [16, 3, 32, 32]), &device);
    let labels: Vec<i64> = (0..16).map(|i| (i * 3) % 7).collect();
    let y = Tensor::<Ad, 1, Int>::from_data(TensorData::new(labels.clone(), [16]), &device);
    let opts = StepOptions { distill: true, lr: 0.1, weight_decay: 5e-4, label_smoothing: 0.0 };
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0).with_nesterov(true)))
        .init();
    let (slim, _) = step(slim, &mut optim, x.clone(), y, &[full.clone(), low], &opts, &Replica::single()).unwrap();
    let end = dir.join("end.safetensors");
    std::fs::write(&end, safetensors::to_bytes(&Subnet::extract(&slim, &full, &stats).unwrap()).unwrap()).unwrap();
    let input = dir.join("input.f32");
    write_f32(&input, &x);
    let label_path = dir.join("labels.i64");
    std::fs::write(&label_path, labels.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let case = dir.join("step.json");
    let doc = json!({
        "start": start, "end": end, "input": input, "labels": label_path, "shape": [16, 3, 32, 32],
        "uniform": 0.5, "lr": opts.lr, "weight_decay": opts.weight_decay,
    });
    std::fs::write(&case, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = python(&["scripts/pytorch_check.py", "step", module.to_str().unwrap(), case.to_str().unwrap()]);
    eprintln!("{}", String::from_utf8_lossy(&o.stdout).trim_end());
    ok(o, "the PyTorch step against slimc's");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs PyTorch: python3 -m pip install torch safetensors numpy ruff"]
fn weights_saved_from_the_pytorch_module_load_into_slimc() {
    require_torch();
    let dir = scratch("pytorch-back");
    let device = Default::default();
    let name = "mobilenet_v2";
    let module = emit(&dir, name);
    // PyTorch initialises the module and saves its state_dict (random BN statistics, so
    // that evaluation uses them).
    let weights = dir.join("torch.safetensors");
    let code = format!(
        "import sys, torch\n\
         from safetensors.torch import save_file\n\
         sys.path.insert(0, 'scripts')\n\
         from pytorch_check import load_module, network_class\n\
         torch.manual_seed(3)\n\
         net = network_class(load_module({module:?}))()\n\
         for k, v in net.state_dict().items():\n    \
             if k.endswith('running_var'): v.uniform_(0.5, 2.0)\n    \
             elif v.dim() == 1 and k.endswith('.weight'): v.uniform_(0.5, 1.5)\n    \
             elif v.dim() == 1: v.normal_(0.0, 0.2)\n\
         save_file(net.state_dict(), {weights:?})\n\
         net.eval()\n\
         x = torch.randn(2, 3, 32, 32)\n\
         x.numpy().astype('<f4').tofile({:?})\n\
         net(x).detach().numpy().astype('<f4').tofile({:?})\n",
        dir.join("x.f32"),
        dir.join("y.f32"),
        module = module.display().to_string(),
        weights = weights.display().to_string(),
    );
    ok(python(&["-c", &code]), "saving the PyTorch module's weights");
    let net = small(name, 32);
    let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 0, &device);
    let tensors = named::read_file(&weights).unwrap();
    let full = WidthConfig::new(net.full_width());
    // BN statistics are not parameters: slimc keeps them per width; here the PyTorch ones.
    let stats = bn_stats(&slim, &tensors, 0, full.key());
    slim.load_named(tensors, &weights, &device).unwrap();
    let read = |p: &str| -> Vec<f32> {
        std::fs::read(dir.join(p)).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    };
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(read("x.f32"), [2, 3, 32, 32]), &device);
    let theirs = Tensor::<Cpu, 2>::from_data(TensorData::new(read("y.f32"), [2, 7]), &device);
    let ours = slim.forward(x, &full, Mode::Eval(&stats)).unwrap().logits;
    let d = relative_diff(ours, theirs);
    assert!(d < 1e-4, "slimc on the PyTorch weights differs from PyTorch by {d} (relative)");
    // A tensor of the wrong shape, a missing one and a stray one are each one error naming it.
    let mut tensors = named::read_file(&weights).unwrap();
    tensors[0].1.shape.push(1);
    let first = tensors[0].0.clone();
    let err = slim.load_named(tensors, &weights, &device).unwrap_err().to_string();
    assert!(err.contains(&first) && err.contains("full width needs"), "{err}");
    let mut tensors = named::read_file(&weights).unwrap();
    let k = tensors.iter().position(|(n, _)| n.ends_with(".weight")).unwrap();
    let gone = tensors.remove(k).0;
    let err = slim.load_named(tensors, &weights, &device).unwrap_err().to_string();
    assert!(err.contains(&gone) && err.contains("missing"), "{err}");
    let mut tensors = named::read_file(&weights).unwrap();
    tensors.push(("stem.conv9.weight".into(), tensors[0].1.clone()));
    let err = slim.load_named(tensors, &weights, &device).unwrap_err().to_string();
    assert!(err.contains("stem.conv9.weight") && err.contains("no parameter"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs PyTorch: python3 -m pip install torch safetensors numpy ruff"]
fn switchable_bn_crosses_both_ways() {
    require_torch();
    let dir = scratch("pytorch-switches");
    let device = Default::default();
    let name = "mobilenet_v2";
    let module = dir.join("switched.py");
    let args = ["emit", "models/mobilenet_v2.slim", "--target", "pytorch", "--switches", "0.5,1.0", "-o"];
    ok(slimc(&[&args[..], &[module.to_str().unwrap()]].concat(), name), "slimc emit --switches");
    // An S-Nets model: each switch its own γ, β and statistics.
    let net = small(name, 32);
    let switches = vec![0.5, 1.0];
    let mut slim = SlimNet::<Cpu>::new(net.clone(), switches.clone(), 3, &device);
    let mut stats = condition_bn(&mut slim, &device);
    let x = Tensor::<Cpu, 4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    write_f32(&dir.join("x.f32"), &x);
    let mut expected = Vec::new();
    for (k, &w) in switches.iter().enumerate() {
        let cfg = slim.uniform(w).unwrap();
        stats.key = cfg.key();
        let logits = slim.forward(x.clone(), &cfg, Mode::Eval(&stats)).unwrap().logits;
        write_f32(&dir.join(format!("y{k}.f32")), &logits);
        let export = safetensors::to_bytes(&Subnet::extract(&slim, &cfg, &stats).unwrap()).unwrap();
        std::fs::write(dir.join(format!("w{k}.safetensors")), export).unwrap();
        expected.push(logits);
    }
    // Each switch's export into the module; logits at each switch; its state_dict saved.
    let code = format!(
        "import sys, numpy as np, torch\n\
         from safetensors.torch import load_file, save_file\n\
         sys.path.insert(0, 'scripts')\n\
         from pytorch_check import load_module, network_class\n\
         m = load_module({module:?})\n\
         net = network_class(m)()\n\
         d = {dir:?}\n\
         for k, w in enumerate(m.SWITCHES):\n    \
             net.load_subnet(load_file(f'{{d}}/w{{k}}.safetensors'), width_mult=w)\n\
         net.eval()\n\
         x = torch.from_numpy(np.fromfile(f'{{d}}/x.f32', dtype='<f4').reshape(2, 3, 32, 32))\n\
         for k, w in enumerate(m.SWITCHES):\n    \
             net.apply(lambda mod, w=w: setattr(mod, 'width_mult', w))\n    \
             y = torch.from_numpy(np.fromfile(f'{{d}}/y{{k}}.f32', dtype='<f4').reshape(2, -1))\n    \
             diff = float((net(x) - y).abs().max()) / max(1.0, float(y.abs().max()))\n    \
             print(f'switch {{w}}: {{diff:.3g}}')\n    \
             assert diff < 1e-4, diff\n\
         save_file(net.state_dict(), f'{{d}}/back.safetensors')\n",
        module = module.display().to_string(),
        dir = dir.display().to_string(),
    );
    let o = python(&["-c", &code]);
    eprintln!("{}", String::from_utf8_lossy(&o.stdout).trim_end());
    ok(o, "switchable BN in PyTorch against slimc");
    // Back into slimc: `[switches, C]` BN tensors, one row per switch; each switch's logits
    // with that row's statistics are slimc's.
    let back = dir.join("back.safetensors");
    let tensors = named::read_file(&back).unwrap();
    let mut again = SlimNet::<Cpu>::new(net.clone(), switches.clone(), 0, &device);
    let sets: Vec<_> =
        (0..switches.len()).map(|k| bn_stats(&again, &tensors, k, again.uniform(switches[k]).unwrap().key())).collect();
    again.load_named(tensors, &back, &device).unwrap();
    for (k, &w) in switches.iter().enumerate() {
        let cfg = again.uniform(w).unwrap();
        let ours = again.forward(x.clone(), &cfg, Mode::Eval(&sets[k])).unwrap().logits;
        let d = relative_diff(ours, expected[k].clone());
        assert!(d < 1e-4, "switch {w}: slimc on the PyTorch state_dict differs by {d}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
