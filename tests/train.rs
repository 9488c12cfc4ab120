//! `slimc train` / `eval` end to end on a tiny synthetic data set written in the MNIST
//! IDX format (so the real reader runs), and, where the Debian package is installed, a
//! short real Fashion-MNIST run with a stated accuracy bar.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use flate2::write::GzEncoder;
use rand::rngs::StdRng;
use rand::SeedableRng;
use slimc_runtime::runtime::checkpoint;
use slimc_runtime::runtime::device::{Cpu, CpuTrain};
use slimc_runtime::runtime::{LayerParams, SlimNet};
use slimc_runtime::train::parallel::{Cluster, Replica};
use slimc_runtime::train::{apply, gradients, Sandwich, StepOptions};

use common::{onnx_check, require_onnxruntime, scratch};

fn slimc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slimc")).args(args).output().expect("slimc runs")
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn gz(path: &Path, bytes: &[u8]) {
    let mut e = GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap();
}

/// Writes an IDX data set of `n` training and `n / 4` test images, 12×12, 10 classes:
/// class k is a bright 3×3 square at the k-th of ten positions, on noise.
fn synthetic(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, count, seed) in [("train", n, 1u64), ("t10k", n / 4, 2)] {
        let mut images = vec![0, 0, 8, 3];
        for d in [count as u32, 12, 12] {
            images.extend(d.to_be_bytes());
        }
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((count as u32).to_be_bytes());
        let mut state = seed;
        let mut noise = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 60) as u8 * 3
        };
        for i in 0..count {
            let class = (i * 7 + seed as usize) % 10;
            let (cy, cx) = (1 + (class / 5) * 6, 1 + (class % 5) * 2);
            for y in 0..12 {
                for x in 0..12 {
                    let on = (cy..cy + 3).contains(&y) && (cx..cx + 3).contains(&x);
                    images.push(if on { 200 + noise() } else { noise() });
                }
            }
            labels.push(class as u8);
        }
        gz(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")), &images);
        gz(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), &labels);
    }
}

/// A scratch directory holding a synthetic set of `n` training images, and its `--data`.
fn synthetic_run(name: &str, n: usize) -> (PathBuf, String) {
    let dir = scratch(name);
    synthetic(&dir.join("data"), n);
    let data = format!("mnist:{}", dir.join("data").display());
    (dir, data)
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every parameter of a checkpoint, flattened in order.
fn weights(run: &Path) -> Vec<f32> {
    let (model, _) = checkpoint::load::<Cpu>(&run.join("checkpoint"), None, &Default::default()).unwrap();
    flatten(&model)
}

fn flatten<B: Backend>(m: &SlimNet<B>) -> Vec<f32> {
    let mut out = Vec::new();
    for p in &m.clone().stored().layers {
        let mut push = |d: burn::tensor::TensorData| out.extend(d.iter::<f32>());
        if let Some(w) = &p.conv {
            push(w.val().into_data());
        }
        if let Some(w) = &p.linear {
            push(w.val().into_data());
        }
        for t in p.bias.iter().chain(&p.gamma).chain(&p.beta) {
            push(t.val().into_data());
        }
    }
    out
}

const TINY: &[&str] = &["--batch", "32", "--val-images", "64", "--calibrate", "2", "--quiet", "--lr", "0.05"];

#[test]
fn us_training_learns_and_eval_reports_every_width() {
    let (dir, data) = synthetic_run("learn", 512);
    let run = dir.join("run");
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--epochs", "3"];
    let out = run.display().to_string();
    args.extend(["--out", &out]);
    args.extend(TINY);
    ok(&slimc(&args));
    let m = metrics(&run);
    assert_eq!(m.len(), 3, "one metrics line per epoch");
    let last = &m[2];
    assert_eq!(last["complete"], true);
    assert!(last["val_acc_max"].as_f64().unwrap() > 0.9, "{last}");
    assert!(last["val_acc_min"].as_f64().unwrap() > 0.8, "{last}");

    let plot = dir.join("curve.svg").display().to_string();
    let o = slimc(&["eval", &out, "--widths", "0.25:1.0:0.25", "--calibrate", "2", "--json", "--plot", &plot]);
    let doc: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let macs: Vec<u64> = rows.iter().map(|r| r["macs"].as_u64().unwrap()).collect();
    assert!(macs.windows(2).all(|w| w[0] < w[1]), "MACs grow with width: {macs:?}");
    assert!(rows.iter().all(|r| r["top1"].as_f64().unwrap() > 0.8), "{rows:?}");
    assert!(rows.iter().all(|r| r["top5"].as_f64().unwrap() >= r["top1"].as_f64().unwrap()));
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("MACs"), "an SVG with axis labels");

    // AutoSlim search: each target's configuration is at or below it, the path only
    // descends, and a search stopped midway continues to the same result.
    let found = dir.join("search.json").display().to_string();
    let search = |extra: &[&str]| {
        let mut args = vec!["search", &out, "--targets", "70%,40%", "--val-batches", "1", "--calibrate", "1"];
        args.extend(["--batch", "32", "--step", "4", "--quiet", "--out", &found]);
        args.extend(extra);
        slimc(&args)
    };
    let doc: serde_json::Value = serde_json::from_str(&ok(&search(&["--json"]))).unwrap();
    let full = doc["path"][0]["macs"].as_u64().unwrap();
    let targets = doc["found"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{doc}");
    for t in targets {
        assert!(t["macs"].as_u64().unwrap() <= t["target_macs"].as_u64().unwrap());
        // Per-layer channels: ResNet-20's stem conv has the first dimension's channels.
        assert_eq!(t["layers"][0]["name"], "stem.conv1", "{t}");
        assert_eq!(t["layers"][0]["out"], t["channels"][0], "{t}");
        assert_eq!(t["layers"].as_array().unwrap().len(), 20, "19 convs and the classifier");
        assert!(t["target_macs"].as_u64().unwrap() < full);
    }
    let path: Vec<u64> = doc["path"].as_array().unwrap().iter().map(|p| p["macs"].as_u64().unwrap()).collect();
    assert!(path.windows(2).all(|w| w[1] < w[0]), "{path:?}");
    let mut stopped = doc.clone();
    stopped["path"] = serde_json::json!(doc["path"].as_array().unwrap()[..2]);
    stopped["found"] = serde_json::json!([]);
    stopped["complete"] = serde_json::json!(false);
    std::fs::write(&found, serde_json::to_vec(&stopped).unwrap()).unwrap();
    let resumed: serde_json::Value = serde_json::from_str(&ok(&search(&["--json"]))).unwrap();
    assert_eq!(resumed["found"], doc["found"], "a resumed search finds the same configurations");
    let o = search(&["--rank", "per-mac"]);
    assert_eq!(o.status.code(), Some(2), "other options over an existing search are refused");
    edited_search_files_are_refused(&dir, &out, &found);
    let table = ok(&slimc(&["eval", &out, "--configs", &found, "--calibrate", "1"]));
    assert_eq!(table.matches("search ").count(), 2, "{table}");
    assert!(table.contains("uniform (same MACs)"), "{table}");

    exports_of_the_searched_configuration(&dir, &out, &found);

    // A fixed-width baseline overlays; the table form names it.
    let base = dir.join("fixed").display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--epochs", "1", "--scheme", "fixed"];
    args.extend(["--width", "0.5", "--out", &base]);
    args.extend(TINY);
    ok(&slimc(&args));
    let png = dir.join("curve.png").display().to_string();
    let table = ok(&slimc(&["eval", &out, "--baseline", &base, "--calibrate", "1", "--plot", &png]));
    assert!(table.contains("slimmable") && table.contains(&base), "{table}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Trains a synthetic run straight to step 9 and another one to step 4, resumed to 9 (the
/// epoch has 6 steps: interrupted mid-epoch, resumed past the epoch end), with `scheme`'s
/// flags; the weights must agree. Returns both run directories and the resumed weights.
fn straight_and_resumed(dir: &Path, data: &str, scheme: &[&str]) -> (String, String, Vec<f32>) {
    resumed_on(dir, data, scheme, &[])
}

/// [`straight_and_resumed`], with `resume` (e.g. `--devices …`) added to the resumption.
fn resumed_on(dir: &Path, data: &str, scheme: &[&str], resume: &[&str]) -> (String, String, Vec<f32>) {
    let straight = dir.join("straight").display().to_string();
    let split = dir.join("split").display().to_string();
    let train = |out: &str, steps: &str| {
        let mut args = vec!["train", "models/resnet20.slim", "--data", data, "--epochs", "2", "--out", out];
        args.extend(scheme);
        args.extend(["--max-steps", steps]);
        args.extend(TINY);
        ok(&slimc(&args));
    };
    train(&straight, "9");
    train(&split, "4");
    let mut args = vec!["train", "--resume", &split, "--max-steps", "9", "--quiet"];
    args.extend(resume);
    ok(&slimc(&args));
    let (a, b) = (weights(Path::new(&straight)), weights(Path::new(&split)));
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "resumed weights differ from the uninterrupted run's by {diff}");
    (straight, split, b)
}

#[test]
fn resume_continues_exactly_where_the_run_stopped() {
    let (dir, data) = synthetic_run("resume", 256);
    let (straight, split, b) = straight_and_resumed(&dir, &data, &[]);
    let (ma, mb) = (metrics(Path::new(&straight)), metrics(Path::new(&split)));
    let last = |m: &[serde_json::Value]| m.last().unwrap()["step"].as_u64().unwrap();
    assert_eq!(last(&ma), 9);
    assert_eq!(last(&mb), 9);
    // Flags that a resumed run cannot change are refused, by name, before anything runs.
    let o = slimc(&["train", "--resume", &split, "--lr", "5", "--batch", "7", "--data", "cifar10:/nope"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--batch, --data, --lr cannot change"), "{err}");
    assert_eq!(weights(Path::new(&split)), b, "the run is untouched");
    // Training on into a finished run's directory without --resume is refused.
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--out", &straight];
    args.extend(TINY);
    let o = slimc(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Joslim on the synthetic set: GP updates every 2 steps (at steps 2, 4, 6 and 8), a run
/// interrupted at step 4 and resumed repeats the uninterrupted one (weights and pool); its
/// Pareto front is evaluated, and `export` and `search --from` take a configuration from it.
#[test]
fn joslim_trains_resumes_exactly_and_its_front_feeds_export_and_search() {
    let (dir, data) = synthetic_run("joslim", 256);
    let joslim = ["--scheme", "joslim", "--prior", "4", "--tau", "2", "--per-update", "2", "--pool", "6"];
    let (straight, split, b) = straight_and_resumed(&dir, &data, &joslim);
    let state = |run: &str| {
        let meta = Path::new(run).join("checkpoint").join(checkpoint::META);
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
        meta["state"]["joslim"].clone()
    };
    let (ja, jb) = (state(&straight), state(&split));
    assert_eq!(ja["updates"], 4, "{ja}");
    let pool = ja["pool"].as_array().unwrap();
    assert_eq!(pool.len(), 6);
    // The prior (4) plus 4 updates of 2 proposals, the oldest gone: all proposed by the GPs.
    assert!(pool.iter().all(|m| m["born"].as_u64().unwrap() >= 1), "{ja}");
    // Resumed, the GP data and proposals are the same, bit for bit.
    assert_eq!(ja, jb, "the resumed pool differs");
    // An edited pool is refused on resume, by name, and the checkpoint stays as it was.
    let meta_path = Path::new(&split).join("checkpoint").join(checkpoint::META);
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["state"]["joslim"]["pool"] = serde_json::json!([]);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let o = slimc(&["train", "--resume", &split, "--max-steps", "12", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("joslim.pool is empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(weights(Path::new(&split)), b, "the run is untouched");
    assert!(metrics(Path::new(&straight)).iter().all(|m| m["search_seconds"].as_f64().is_some_and(|s| s > 0.0)));

    // The measured objective: each member's latency is taken once, when it joins the pool.
    let timed = dir.join("latency").display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--out", &timed, "--max-steps", "3"];
    args.extend(["--scheme", "joslim", "--objective", "latency", "--prior", "3", "--tau", "2"]);
    args.extend(TINY);
    ok(&slimc(&args));
    let j = state(&timed);
    assert_eq!(j["pool"].as_array().unwrap().len(), 5, "{j}");
    assert!(j["pool"].as_array().unwrap().iter().all(|m| m["cost"].as_f64().is_some_and(|ms| ms > 0.0 && ms < 1e4)));
    // The front: the pool's 6 configurations next to the uniform widths.
    let front = dir.join("front.json").display().to_string();
    let doc: serde_json::Value = serde_json::from_str(&ok(&slimc(&[
        "eval",
        &straight,
        "--pareto",
        &front,
        "--calibrate",
        "1",
        "--batch",
        "64",
        "--json",
    ])))
    .unwrap();
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.iter().filter(|r| r["series"] == "joslim pool").count(), 6);
    assert_eq!(rows.iter().filter(|r| r["series"] == "slimmable").count(), 7, "0.25 to 1 in eighths");
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&front).unwrap()).unwrap();
    let on_front: Vec<&serde_json::Value> =
        stored["front"].as_array().unwrap().iter().map(|i| &stored["points"][i.as_u64().unwrap() as usize]).collect();
    assert!(!on_front.is_empty());
    for pair in on_front.windows(2) {
        assert!(pair[0]["macs"].as_u64() < pair[1]["macs"].as_u64());
        assert!(pair[0]["top1"].as_f64() < pair[1]["top1"].as_f64());
    }
    let area = stored["area"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&area), "{area}");
    // A budget at the cheapest front point's MACs picks exactly that configuration.
    let cheapest = on_front[0];
    let budget = format!("{front}#{}", cheapest["macs"].as_u64().unwrap());
    let out = dir.join("sub.safetensors").display().to_string();
    let report: serde_json::Value = serde_json::from_str(&ok(&slimc(&[
        "export",
        &straight,
        "--config",
        &budget,
        "--format",
        "safetensors",
        "-o",
        &out,
        "--calibrate",
        "1",
        "--batch",
        "64",
        "--json",
    ])))
    .unwrap();
    assert_eq!(report["macs"], cheapest["macs"], "{report}");
    // Below every front point there is nothing to pick: one clear error.
    let o = slimc(&["export", &straight, "--config", &format!("{front}#1K"), "--format", "onnx", "-o", &out]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no configuration within"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The greedy search starts at a front configuration.
    let searched = dir.join("search.json").display().to_string();
    let doc: serde_json::Value = serde_json::from_str(&ok(&slimc(&[
        "search",
        &straight,
        "--from",
        &budget,
        "--targets",
        "20%",
        "--val-batches",
        "1",
        "--calibrate",
        "1",
        "--batch",
        "32",
        "--out",
        &searched,
        "--json",
        "--quiet",
    ])))
    .unwrap();
    assert_eq!(doc["path"][0]["channels"], cheapest["channels"], "{doc}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_diverging_run_stops_and_keeps_its_last_checkpoint() {
    let (dir, data) = synthetic_run("nan", 256);
    let out = dir.join("run").display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--epochs", "1", "--out", &out];
    args.extend(TINY);
    ok(&slimc(&args));
    let before = weights(Path::new(&out));
    // Raise the learning rate in the stored options until the loss overflows.
    let meta_path = Path::new(&out).join("checkpoint").join(checkpoint::META);
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["state"]["options"]["lr"] = serde_json::json!(1e30);
    meta["state"]["options"]["warmup"] = serde_json::json!(0.0);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let o = slimc(&["train", "--resume", &out, "--epochs", "3", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the loss became") && err.contains("last good checkpoint"), "{err}");
    assert_eq!(weights(Path::new(&out)), before, "the checkpoint is untouched");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_and_corrupt_data_are_clear_errors_and_write_nothing() {
    let dir = scratch("baddata");
    let out = dir.join("run");
    let out_s = out.display().to_string();
    let run = |data: &str| slimc(&["train", "models/resnet20.slim", "--data", data, "--out", &out_s, "--quiet"]);

    let o = run("fashion-mnist:/no/such/dir");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("train-images-idx3-ubyte"));

    let o = run("cifar10:/no/such/dir");
    assert!(String::from_utf8_lossy(&o.stderr).contains("data_batch_1.bin"));

    let o = run("imagenet:/x");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown data set"));

    // A truncated gzip file.
    let data = dir.join("data");
    synthetic(&data, 64);
    let f = data.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&format!("mnist:{}", data.display()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("gzip"), "{}", String::from_utf8_lossy(&o.stderr));

    // Pixels that do not match the header.
    let mut idx = vec![0, 0, 8, 3];
    for d in [64u32, 12, 12] {
        idx.extend(d.to_be_bytes());
    }
    idx.extend(vec![0u8; 100]);
    gz(&f, &idx);
    let o = run(&format!("mnist:{}", data.display()));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bytes of pixels"));
    assert!(!out.exists(), "a failed start writes nothing");

    // Bad flags.
    synthetic(&data, 64);
    let d = format!("mnist:{}", data.display());
    for bad in [
        vec!["--scheme", "fixed"],
        vec!["--scheme", "zz"],
        vec!["--min-width", "0"],
        vec!["--val-fraction", "64"],
        vec!["--batch", "0"],
        vec!["--scheme", "joslim", "--tau", "0"],
        vec!["--scheme", "joslim", "--prior", "0"],
        vec!["--scheme", "joslim", "--per-update", "0"],
        vec!["--scheme", "joslim", "--pool", "0"],
        vec!["--scheme", "joslim", "--min-width", "1.5"],
        vec!["--scheme", "joslim", "--min-width", "0"],
        vec!["--scheme", "joslim", "--beta", "-1"],
        vec!["--scheme", "joslim", "--objective", "flops"],
        vec!["--scheme", "joslim", "--val-images", "0"],
        vec!["--tau", "5"],
    ] {
        let mut args = vec!["train", "models/resnet20.slim", "--data", &d, "--out", &out_s, "--quiet"];
        args.extend(bad.iter().copied());
        let o = slimc(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(!out.exists());
    // A network whose output is a map (segmentation) is not trained as a classifier.
    let seg = dir.join("seg.slim");
    std::fs::write(
        &seg,
        "network seg(classes = 10, in_channels = 1, size = 12) {\n    input in_channels x size x size\n    \
         stem = conv(8, k=3) -> bn -> relu\n    head = conv(classes, k=1)\n}\n",
    )
    .unwrap();
    let o = slimc(&["train", &seg.display().to_string(), "--data", &d, "--out", &out_s, "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("outputs a 10x12x12 map"));
    assert!(!out.exists());
    assert_eq!(slimc(&["eval", "/no/such/run"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A short ResNet-20 run on the real Fashion-MNIST (Debian's `dataset-fashion-mnist`,
/// which `bash .ci/run` installs before running the ignored tests).
#[test]
#[ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"]
fn real_fashion_mnist_short_run_beats_the_stated_accuracy() {
    assert!(
        Path::new(slimc_runtime::data::FASHION_MNIST_DIR).is_dir(),
        "{} is missing: apt-get install dataset-fashion-mnist",
        slimc_runtime::data::FASHION_MNIST_DIR
    );
    let dir = scratch("fashion");
    let out = dir.join("run").display().to_string();
    ok(&slimc(&[
        "train",
        "models/resnet20.slim",
        "--epochs",
        "1",
        "--max-steps",
        "150",
        "--lr",
        "0.05",
        "--val-images",
        "2000",
        "--out",
        &out,
        "--quiet",
    ]));
    let m = metrics(Path::new(&out));
    let last = m.last().unwrap();
    let (min, max) = (last["val_acc_min"].as_f64().unwrap(), last["val_acc_max"].as_f64().unwrap());
    eprintln!("Fashion-MNIST after 150 steps: {min:.3} at 0.25, {max:.3} at 1.0");
    assert!(max > FASHION_MAX && min > FASHION_MIN, "{min:.3} at 0.25 / {max:.3} at 1.0");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The accuracy bars of the real run (validation top-1 after 150 US steps of batch 128).
// Data-parallel training (`--devices`, `--nodes`). The tests that form a collective in this
// process take turns: burn-collective's local server is one per process.
static COLLECTIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A network without BN (so that one device on 2B images and two on B each compute the
/// same thing): convs with biases, a slimmable linear.
const PLAIN: &str = "network plain(classes = 10) {
    input 1 x 12 x 12
    stem  = conv(8, k=3, bias=true) -> relu
    stage = conv(16, k=3, stride=2, bias=true) -> relu
    head  = avgpool -> linear(24) -> relu -> linear(classes)
}";

/// Runs `f` on `n` replicas of a collective in this process, one thread each.
fn in_replicas<T: Send>(n: usize, f: impl Fn(usize, &Replica) -> T + Sync) -> Vec<T> {
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    // A session that an earlier failing test left open is forgotten.
    burn_collective::reset_collective::<Cpu>();
    let cluster = Cluster::local(n, std::time::Duration::from_secs(60));
    let abort = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (cluster, abort, f) = (&cluster, abort.clone(), &f);
                s.spawn(move || {
                    let replica = Replica::join::<Cpu>(cluster, i, Default::default(), abort).unwrap();
                    let out = f(i, &replica);
                    replica.leave::<Cpu>();
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Every gradient of `model` in `grads`, in layer order.
fn grads_of(model: &SlimNet<CpuTrain>, grads: &GradientsParams) -> Vec<f32> {
    let mut out = Vec::new();
    for p in &model.clone().stored().layers {
        let mut push = |d: Option<burn::tensor::TensorData>| out.extend(d.expect("a gradient").iter::<f32>());
        if let Some(w) = &p.conv {
            push(grads.get::<Cpu, 4>(w.id).map(|g| g.into_data()));
        }
        if let Some(w) = &p.linear {
            push(grads.get::<Cpu, 2>(w.id).map(|g| g.into_data()));
        }
        if let Some(b) = &p.bias {
            push(grads.get::<Cpu, 1>(b.id).map(|g| g.into_data()));
        }
        for g in p.gamma.iter().chain(&p.beta) {
            push(grads.get::<Cpu, 1>(g.id).map(|g| g.into_data()));
        }
    }
    out
}

/// With two rayon threads a sandwich step runs its widths as two concurrent streams whose
/// gradients are added; with one, one backward of the summed loss. Both are the same
/// gradient: ResNet-20 (BN), and MobileNetV2, whose dropout keeps the forwards in width
/// order so that both draw the same masks.
#[test]
fn concurrent_widths_give_the_serial_gradient() {
    use slimc_lang::ir::ParamValue;
    let device = Default::default();
    for (file, size) in [("models/resnet20.slim", 8), ("models/mobilenet_v2.slim", 16)] {
        let options = slimc_lang::Options {
            settings: vec![("size".into(), ParamValue::Int(size)), ("classes".into(), ParamValue::Int(10))],
            ..Default::default()
        };
        let src = std::fs::read_to_string(file).unwrap();
        let net = std::sync::Arc::new(slimc_lang::compile(&src, file, &options).unwrap().remove(0));
        assert_eq!(net.draws_random(), file.contains("mobilenet"));
        let model = SlimNet::<CpuTrain>::new(net, Vec::new(), 3, &device);
        let size = size as usize;
        let x = Tensor::<CpuTrain, 4>::random([6, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<CpuTrain, 1, Int>::from_data(TensorData::new((0..6i64).collect::<Vec<_>>(), [6]), &device);
        let widths = Sandwich::default().widths(&model, &mut StdRng::seed_from_u64(5)).unwrap();
        let opts = StepOptions { distill: true, lr: 0.1, weight_decay: 5e-4, label_smoothing: 0.1 };
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                CpuTrain::seed(&device, 11);
                let (grads, loss) = gradients(&model, x.clone(), y.clone(), &widths, &opts).unwrap().unwrap();
                (grads_of(&model, &grads), loss.into_scalar())
            })
        };
        let ((serial, serial_loss), (concurrent, concurrent_loss)) = (on(1), on(2));
        let d = common::rel(&serial, &concurrent, 1e-6);
        assert!(d < 1e-5, "{file}: the concurrent step's gradients differ from the serial one's by {d}");
        assert_eq!(serial_loss, concurrent_loss, "{file}: the first width's loss");
        assert!(serial.iter().any(|&v| v != 0.0));
        assert_eq!(on(2).0, concurrent, "{file}: the concurrent step is deterministic");
    }
}

/// `slimc bench --data` times the loader alone next to training; a missing data set is
/// one error, before anything is timed.
#[test]
fn bench_times_the_loader_alone() {
    let dir = scratch("bench-loader");
    synthetic(&dir, 64);
    let data = format!("fashion-mnist:{}", dir.display());
    let args = ["bench", "models/resnet20.slim", "--set", "in_channels=1", "--set", "size=12", "--batch", "8"];
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&slimc(&[&args[..], &["--steps", "1", "--data", &data, "--json"]].concat()))).unwrap();
    assert!(doc["loader"]["img_per_s"].as_f64().unwrap() > 0.0, "{doc}");
    assert_eq!(doc["loader"]["data"], data.as_str());
    let text = ok(&slimc(&[&args[..], &["--steps", "1", "--data", &data]].concat()));
    assert!(text.contains("loader alone (") && text.contains("x training"), "{text}");
    let missing = format!("fashion-mnist:{}", dir.join("nothing").display());
    let o = slimc(&[&args[..], &["--data", &missing]].concat());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nothing") && !err.contains("panicked") && !err.contains("train ("), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One sandwich step (4 widths, distillation, weight decay) on 2 replicas with 4 images each
/// averages to the gradient of one device on all 8, and moves the weights the same way.
#[test]
fn two_replicas_average_to_the_one_device_gradient_and_step() {
    let net = std::sync::Arc::new(slimc_lang::compile(PLAIN, "plain", &Default::default()).unwrap().remove(0));
    let device = Default::default();
    let model = SlimNet::<CpuTrain>::new(net, Vec::new(), 3, &device);
    let x = Tensor::<CpuTrain, 4>::random([8, 1, 12, 12], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<CpuTrain, 1, Int>::from_data(TensorData::new((0..8i64).collect::<Vec<_>>(), [8]), &device);
    let widths = Sandwich::default().widths(&model, &mut StdRng::seed_from_u64(5)).unwrap();
    assert_eq!(widths.len(), 4);
    let opts = StepOptions { distill: true, lr: 0.1, weight_decay: 5e-4, label_smoothing: 0.1 };
    let sgd = || {
        SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_nesterov(true).with_dampening(0.0)))
            .init::<CpuTrain, SlimNet<CpuTrain>>()
    };

    let (grads, _) = gradients(&model, x.clone(), y.clone(), &widths, &opts).unwrap().unwrap();
    let whole = grads_of(&model, &grads);
    let stepped = flatten(&apply(model.clone(), &mut sgd(), grads, &opts));

    let replicas = in_replicas(2, |i, replica| {
        let mine = model.clone().fork(&device);
        let rows = i * 4..i * 4 + 4;
        let (g, loss) =
            gradients(&mine, x.clone().slice(rows.clone()), y.clone().slice(rows), &widths, &opts).unwrap().unwrap();
        let (g, _) = replica.average(&mine, g, loss).unwrap();
        (grads_of(&mine, &g), flatten(&apply(mine, &mut sgd(), g, &opts)))
    });
    for (i, (g, w)) in replicas.iter().enumerate() {
        let (eg, ew) = (common::rel(&whole, g, 1e-6), common::rel(&stepped, w, 1e-6));
        assert!(eg < 1e-5, "replica {i}: averaged gradients differ from one device's by {eg}");
        assert!(ew < 1e-5, "replica {i}: new weights differ from one device's by {ew}");
    }
    assert_eq!(replicas[0], replicas[1], "the replicas' gradients and weights are identical");
    assert!(whole.iter().any(|&v| v != 0.0));
}

/// The agreement check at the start and end of a distributed run sees a single differing
/// weight, and passes identical replicas.
#[test]
fn replicas_that_differ_are_refused() {
    let net = std::sync::Arc::new(slimc_lang::compile(PLAIN, "plain", &Default::default()).unwrap().remove(0));
    let device = Default::default();
    let model = SlimNet::<Cpu>::new(net, Vec::new(), 3, &device);
    let same = in_replicas(2, |_, r| r.agree::<Cpu>(&[("the step", 7.0)], &model, &device).is_ok());
    assert_eq!(same, [true, true]);
    let results = in_replicas(2, |i, r| {
        let mut mine = model.clone();
        if i == 1 {
            let kernel = mine
                .layers
                .iter_mut()
                .find_map(|l| if let LayerParams::Kernel(k) = l { Some(k) } else { None })
                .unwrap();
            let w = kernel.weight.clone();
            let nudged =
                w.val().add_scalar(0.0).slice_assign([0..1, 0..1, 0..1, 0..1], Tensor::ones([1, 1, 1, 1], &device));
            kernel.weight = burn::module::Param::initialized(w.id, nudged);
        }
        r.agree::<Cpu>(&[("the step", 7.0)], &mine, &device).map_err(|e| e.to_string())
    });
    for r in &results {
        assert!(r.as_ref().is_err_and(|e| e.contains("weights differ")), "{results:?}");
    }
    let steps =
        in_replicas(2, |i, r| r.agree::<Cpu>(&[("the step", i as f64)], &model, &device).map_err(|e| e.to_string()));
    assert!(steps[1].as_ref().is_err_and(|e| e.contains("the step is 1 here")), "{steps:?}");
    assert!(steps[0].is_err(), "every replica learns of the difference: {steps:?}");
}

/// Starts slimc in the background, its stderr captured.
fn spawn_slimc(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_slimc"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Picks a free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The line a distributed run ends with, naming the replicas' common weights.
fn same_weights_line(stderr: &[u8]) -> String {
    let err = String::from_utf8_lossy(stderr);
    err.lines()
        .find(|l| l.contains("replicas hold the same weights"))
        .unwrap_or_else(|| panic!("no agreement line in:\n{err}"))
        .split("(hash ")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// ResNet-20 (BN with per-replica batch statistics) on 2 CPU devices: 20 steps end with
/// the replicas identical, bit for bit, and the loss lower; every scheme trains on 2
/// devices; a 2-device run resumed on 2 devices repeats the uninterrupted one exactly.
#[test]
fn two_devices_keep_replicas_identical_for_every_scheme_and_resume_exactly() {
    let (dir, data) = synthetic_run("devices", 256);
    let out = dir.join("bn").display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--epochs", "4", "--out", &out];
    args.extend(["--devices", "cpu:0,cpu:1", "--max-steps", "20"]);
    args.extend(TINY);
    let o = slimc(&args);
    ok(&o);
    assert!(!same_weights_line(&o.stderr).is_empty());
    let m = metrics(Path::new(&out));
    assert_eq!(m.last().unwrap()["step"], 20);
    let loss = |e: &serde_json::Value| e["train_loss"].as_f64().unwrap();
    assert!(loss(m.last().unwrap()) < loss(&m[0]), "the loss did not decrease: {m:?}");

    for (name, scheme) in [
        ("s", &["--scheme", "s"][..]),
        ("fixed", &["--scheme", "fixed", "--width", "0.5"]),
        ("joslim", &["--scheme", "joslim", "--prior", "3", "--tau", "2", "--pool", "5"]),
    ] {
        let out = dir.join(name).display().to_string();
        let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--out", &out, "--max-steps", "5"];
        args.extend(["--devices", "cpu:0,cpu:1"]);
        args.extend(scheme);
        args.extend(TINY);
        let o = slimc(&args);
        ok(&o);
        assert!(!same_weights_line(&o.stderr).is_empty(), "{name}");
    }

    let two = ["--devices", "cpu:0,cpu:1"];
    resumed_on(&dir.join("resume"), &data, &two, &two);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two processes on loopback train together (node 0 runs the coordinator) and end with the
/// same weights; a killed node makes the other stop with an error within the timeout, and
/// node 0's last checkpoint stays readable.
#[test]
fn two_processes_on_loopback_train_together_and_a_lost_node_is_an_error() {
    let (dir, data) = synthetic_run("nodes", 256);
    let node = |rank: usize, port: u16, out: &str, extra: &[&str]| {
        let coordinator = format!("127.0.0.1:{port}");
        let address = format!("127.0.0.1:{}", free_port());
        let rank = rank.to_string();
        let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--out", out, "--nodes", "2"];
        args.extend(["--node-rank", &rank, "--coordinator", &coordinator, "--node-address", &address]);
        args.extend(["--timeout", "20"]);
        args.extend(extra);
        args.extend(TINY);
        spawn_slimc(&args)
    };
    let out = dir.join("run").display().to_string();
    let port = free_port();
    let steps = ["--epochs", "4", "--max-steps", "20"];
    let (a, b) = (node(0, port, &out, &steps), node(1, port, &dir.join("unused").display().to_string(), &steps));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    ok(&a);
    ok(&b);
    assert_eq!(same_weights_line(&a.stderr), same_weights_line(&b.stderr), "the nodes' weights differ");
    assert_eq!(metrics(Path::new(&out)).last().unwrap()["step"], 20);
    assert!(!dir.join("unused").exists(), "only node 0 writes");

    // Node 1 is killed after node 0's first checkpoint: node 0 stops with an error.
    let out = dir.join("killed").display().to_string();
    let port = free_port();
    let long = ["--epochs", "1000"];
    let mut a = node(0, port, &out, &long);
    let mut b = node(1, port, &dir.join("unused").display().to_string(), &long);
    let started = std::time::Instant::now();
    while !Path::new(&out).join("metrics.jsonl").exists() {
        assert!(started.elapsed().as_secs() < 120, "no checkpoint after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    b.kill().unwrap();
    let _ = b.wait();
    let killed = std::time::Instant::now();
    let done = loop {
        if let Some(status) = a.try_wait().unwrap() {
            break status;
        }
        assert!(killed.elapsed().as_secs() < 60, "node 0 still runs a minute after node 1 died");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let err = String::from_utf8_lossy(&a.wait_with_output().unwrap().stderr).into_owned();
    assert_eq!(done.code(), Some(2), "{err}");
    assert!(err.contains("another node stopped") || err.contains("no answer from the other replicas"), "{err}");
    assert!(!weights(Path::new(&out)).is_empty(), "the last checkpoint loads");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Distributed settings that cannot work: one clear error each, exit 2, nothing written.
#[test]
fn bad_distributed_settings_are_clear_errors_and_write_nothing() {
    let (dir, data) = synthetic_run("badnodes", 128);
    let out = dir.join("run");
    let out_s = out.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--out", &out_s, "--quiet"];
        args.extend(extra);
        slimc(&args)
    };
    let dead = format!("127.0.0.1:{}", free_port());
    let cases: &[(&[&str], &str)] = &[
        (&["--devices", "cpu:0,cpu:0"], "listed twice"),
        (&["--devices", "cpu:0,cuda:0"], "mixes"),
        (&["--devices", "cpu:0,cpu:1,cpu:2", "--batch", "32"], "does not split evenly"),
        (&["--nodes", "2", "--node-rank", "1", "--coordinator", &dead, "--timeout", "2"], "unreachable"),
        (&["--nodes", "2", "--node-rank", "2", "--coordinator", &dead], "not a node"),
        (&["--nodes", "2"], "needs --coordinator"),
        (&["--coordinator", &dead], "need --nodes"),
        (&["--nodes", "2", "--coordinator", "nowhere"], "HOST:PORT"),
    ];
    let mut cases = cases.to_vec();
    if !cfg!(feature = "cuda") {
        cases.push((&["--devices", "cuda:0"], "built without cuda"));
    }
    for (extra, message) in cases {
        let o = run(extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(message), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    // Nodes started with different --nodes counts: neither trains or writes.
    let port = free_port();
    let coordinator = format!("127.0.0.1:{port}");
    let spawn = |nodes: &str, rank: &str| {
        let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--out", &out_s, "--quiet"];
        args.extend(["--nodes", nodes, "--node-rank", rank, "--coordinator", &coordinator, "--timeout", "10"]);
        args.extend(["--batch", "48", "--val-images", "32"]);
        spawn_slimc(&args)
    };
    let a = spawn("2", "0");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let b = spawn("3", "1");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let errs = format!("{}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(errs.contains("different node counts"), "{errs}");
    assert!(!out.exists());
    // Nodes whose options differ in one that changes the arithmetic (here the learning
    // rate): refused before the first step, the option named.
    let port = free_port();
    let coordinator = format!("127.0.0.1:{port}");
    // Each node's data service on a port of its own asking (the default, the coordinator's
    // port + 1 + rank, may already be taken by another test's connection).
    let addresses = [free_port(), free_port()].map(|p| format!("127.0.0.1:{p}"));
    let spawn = |rank: &str, lr: &str| {
        let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--out", &out_s, "--quiet"];
        args.extend(["--nodes", "2", "--node-rank", rank, "--coordinator", &coordinator, "--timeout", "20"]);
        args.extend(["--node-address", &addresses[rank.parse::<usize>().unwrap()]]);
        args.extend(["--batch", "48", "--val-images", "32", "--lr", lr]);
        spawn_slimc(&args)
    };
    let a = spawn("0", "0.1");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let b = spawn("1", "0.2");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let errs = format!("{}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(errs.contains("the option `lr` differs"), "{errs}");
    assert!(!out.join("checkpoint").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

const FASHION_MAX: f64 = 0.45;
const FASHION_MIN: f64 = 0.45;

/// A hand-edited `search.json` (one extra channel entry in a path point, a found point's
/// MACs changed) is refused by search, eval and export alike, naming the wrong entry.
fn edited_search_files_are_refused(dir: &Path, run: &str, found: &str) {
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(found).unwrap()).unwrap();
    let mut extra = doc.clone();
    extra["path"][1]["channels"].as_array_mut().unwrap().push(serde_json::json!(8));
    extra["complete"] = serde_json::json!(false);
    let mut cost = doc.clone();
    cost["found"][0]["macs"] = serde_json::json!(12345);
    for (edited, why) in [(extra, "path[1].channels: 13 channel counts"), (cost, "found[0].macs is 12345")] {
        let file = dir.join("edited.json");
        std::fs::write(&file, serde_json::to_vec(&edited).unwrap()).unwrap();
        let file = file.display().to_string();
        let resumed = slimc(&[
            "search",
            run,
            "--targets",
            "70%,40%",
            "--val-batches",
            "2",
            "--calibrate",
            "1",
            "--batch",
            "32",
            "--step",
            "4",
            "--quiet",
            "--out",
            &file,
        ]);
        let evaluated = slimc(&["eval", run, "--configs", &file, "--calibrate", "1"]);
        let bad = dir.join("bad.onnx").display().to_string();
        let exported = slimc(&["export", run, "--config", &format!("{file}#70%"), "--format", "onnx", "-o", &bad]);
        for (what, o) in [("search", resumed), ("eval", evaluated), ("export", exported)] {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{what}: {err}");
            assert!(err.contains(why), "{what} names the entry ({why}): {err}");
        }
    }
}

/// A trained subnet exported as ONNX (plain and with BN folded) computes the reloaded
/// Burn export's logits in onnxruntime.
#[test]
#[ignore = "needs onnxruntime: python3 -m pip install onnx onnxruntime numpy"]
fn exported_subnet_runs_in_onnxruntime() {
    require_onnxruntime();
    let (dir, data) = synthetic_run("onnxrt", 256);
    let out = dir.join("run").display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--epochs", "1", "--out", &out];
    args.extend(TINY);
    ok(&slimc(&args));
    let export = |format: &str, file: &str, extra: &[&str]| {
        let path = dir.join(file).display().to_string();
        let mut args = vec!["export", &out, "--config", "0.5", "--format", format, "-o", &path, "--calibrate", "2"];
        args.extend(extra);
        ok(&slimc(&args));
    };
    export("burn", "subnet.mpk", &[]);
    export("onnx", "subnet.onnx", &[]);
    export("onnx", "folded.onnx", &["--fold-bn"]);
    let (fixed, _) = slimc_runtime::export::burn::open::<Cpu>(&dir.join("subnet.mpk"), &Default::default()).unwrap();
    let x = burn::tensor::Tensor::<Cpu, 4>::random(
        [3, 1, 12, 12],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    let logits = fixed.forward(x.clone());
    for model in ["subnet.onnx", "folded.onnx"] {
        let o = onnx_check(&dir.join(model), &x, &logits);
        assert!(
            o.status.success(),
            "{model}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `slimc export` of a search result: the Burn export reloads and classifies like the run,
/// the ONNX export computes the Burn export's logits in onnxruntime, and bad requests
/// write nothing.
fn exports_of_the_searched_configuration(dir: &Path, run: &str, found: &str) {
    let export = |config: &str, format: &str, out: &Path, extra: &[&str]| {
        let out = out.display().to_string();
        let mut args = vec!["export", run, "--config", config, "--format", format, "-o", &out];
        args.extend(["--calibrate", "2", "--batch", "32"]);
        args.extend(extra);
        slimc(&args)
    };
    let target = format!("{found}#70%");
    let mpk = dir.join("subnet.mpk");
    let doc: serde_json::Value = serde_json::from_str(&ok(&export(&target, "burn", &mpk, &["--json"]))).unwrap();
    let searched: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(found).unwrap()).unwrap();
    let first = &searched["found"].as_array().unwrap().iter().max_by_key(|f| f["macs"].as_u64()).unwrap();
    assert_eq!(doc["channels"], first["channels"], "#70% is the search's 70% configuration");
    assert_eq!(doc["macs"], first["macs"]);
    assert!(doc["bytes"].as_u64().unwrap() > 1000, "{doc}");
    let (_, meta) = slimc_runtime::export::burn::open::<Cpu>(&mpk, &Default::default()).unwrap();
    assert_eq!(meta.info.input_mean.len(), 1, "the input normalisation is recorded");

    let onnx = dir.join("subnet.onnx");
    let table = ok(&export(&target, "onnx", &onnx, &[]));
    assert!(table.contains("MACs") && table.contains("KiB"), "size and MACs are reported: {table}");
    let o = export(&format!("{found}#70%"), "onnx", &dir.join("folded.onnx"), &["--fold-bn"]);
    assert!(ok(&o).contains("folded into convs"));
    for (config, format, why) in [
        ("0.5", "tflite", "--format"),
        ("1.5", "onnx", "--config"),
        ("0.5,0.5", "onnx", "search dimensions"),
        (&format!("{found}#33%") as &str, "onnx", "no target 33%"),
        (&format!("{found}#lots") as &str, "onnx", "cannot read target"),
        ("missing.json#50%", "onnx", "cannot read missing.json"),
    ] {
        let bad = dir.join("bad.onnx");
        let o = export(config, format, &bad, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{config} {format}: {err}");
        assert!(err.contains(why), "{config} {format}: {err}");
        assert!(!bad.exists(), "nothing is written");
    }
}

/// `slimc train`, `export` and `bench` on a wgpu adapter through the real binary
/// (`--features wgpu`; `SLIMC_TEST_WGPU` names the adapter, default `wgpu:cpu`, Mesa's
/// llvmpipe). A first step gives flex's weights; the run resumes on wgpu to five steps; the
/// exported subnet, calibrated on wgpu, is flex's export.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_device_trains_exports_and_benches() {
    let device = std::env::var("SLIMC_TEST_WGPU").unwrap_or_else(|_| "wgpu:cpu".into());
    let (dir, data) = synthetic_run("wgpu", 128);
    let runs: Vec<String> = ["cpu", "wgpu"].iter().map(|d| dir.join(d).display().to_string()).collect();
    for (run, dev) in runs.iter().zip(["cpu", device.as_str()]) {
        let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--epochs", "1", "--out", run];
        args.extend(["--max-steps", "1", "--device", dev, "--batch", "16", "--val-images", "32", "--calibrate", "1"]);
        args.extend(["--quiet", "--lr", "0.05"]);
        ok(&slimc(&args));
    }
    // One step only: later steps drift apart at ReLU kinks, where a last-bit difference in
    // a value near zero flips its mask (tests/wgpu.rs compares smoothed networks instead).
    let (want, got) = (weights(Path::new(&runs[0])), weights(Path::new(&runs[1])));
    let d = common::rel(&want, &got, 0.0);
    assert!(d <= 1e-5, "a step on {device} differs from flex by {d} (relative)");
    ok(&slimc(&["train", "--resume", &runs[1], "--max-steps", "5", "--device", &device, "--quiet"]));
    let m = metrics(Path::new(&runs[1]));
    let last = m.last().unwrap();
    assert_eq!(last["step"], 5, "{last}");
    assert!(last["train_loss"].as_f64().unwrap().is_finite() && last["val_acc_max"].as_f64().is_some(), "{last}");

    let export = |dev: &str, file: &str| {
        let path = dir.join(file);
        let out = path.display().to_string();
        let args = ["export", &runs[1], "--config", "0.5", "--format", "safetensors", "-o", &out, "--calibrate", "2"];
        ok(&slimc(&[&args[..], &["--device", dev]].concat()));
        slimc_runtime::export::safetensors::read(&std::fs::read(path).unwrap()).unwrap()
    };
    let (want, got) = (export("cpu", "cpu.safetensors"), export(&device, "wgpu.safetensors"));
    assert_eq!(want.len(), got.len());
    for ((name, a), (_, b)) in want.iter().zip(&got) {
        assert_eq!(a.shape, b.shape, "{name}");
        let d = common::rel(&a.data, &b.data, 1.0);
        assert!(d <= 1e-4, "{name}: exported on {device}, differs by {d} (relative)");
    }

    let args = ["bench", "models/resnet20.slim", "--set", "size=8", "--batch", "4", "--steps", "1", "--json"];
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&slimc(&[&args[..], &["--device", &device]].concat()))).unwrap();
    assert!(doc["device"].as_str().unwrap().starts_with(&format!("{device} (")), "{doc}");
    assert!(doc["train_img_per_s"].as_f64().unwrap() > 0.0, "{doc}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn refused(o: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "expected a refusal naming {needle}; stderr:\n{err}");
    assert!(err.contains(needle), "expected {needle} in:\n{err}");
    err
}

/// Every file of a run directory, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// Edited state files are refused with the field named (never a panic), outputs never
/// replace a file of another kind, a directory holding any run state is never reused,
/// and a step that leaves non-finite weights writes no checkpoint.
#[test]
fn edited_state_and_hostile_output_paths_lose_nothing() {
    let (dir, data) = synthetic_run("hostile", 256);
    let run = dir.join("run");
    let out = run.display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--max-steps", "2", "--out", &out];
    args.extend(TINY);
    ok(&slimc(&args));
    let meta_path = run.join("checkpoint").join(checkpoint::META);
    let stored = std::fs::read(&meta_path).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&stored).unwrap();

    // Seeded mutations of meta.json: each refused on resume and on eval, the field named.
    let mutations: &[(&[&str], serde_json::Value, &str)] = &[
        (&["state", "options", "batch"], serde_json::json!(0), "options.`batch`"),
        (&["state", "options", "random"], serde_json::json!(1_000_000_000u64), "options.`random`"),
        (&["state", "options", "min_width"], serde_json::json!(0.0), "options.`min_width`"),
        (&["state", "options", "max_steps"], serde_json::json!(0), "options.`max_steps`"),
        (&["state", "options", "scheme"], serde_json::json!({"S": []}), "options.`scheme`"),
        (&["state", "normalize", "mean"], serde_json::json!([]), "`normalize`"),
        (&["state", "normalize", "std"], serde_json::json!([0.0]), "`normalize`"),
    ];
    for (path, value, needle) in mutations {
        let mut edited = meta.clone();
        let mut at = &mut edited;
        for key in *path {
            at = &mut at[*key];
        }
        *at = value.clone();
        std::fs::write(&meta_path, serde_json::to_vec(&edited).unwrap()).unwrap();
        refused(&slimc(&["train", "--resume", &out, "--epochs", "2", "--quiet"]), needle);
        refused(&slimc(&["eval", &out, "--widths", "1.0", "--calibrate", "1"]), needle);
    }
    std::fs::write(&meta_path, &stored).unwrap();
    let before = snapshot(&run);

    // Outputs never replace a checkpoint's metadata, and flags out of range write nothing.
    let meta_s = meta_path.display().to_string();
    refused(&slimc(&["eval", &out, "--widths", "1.0", "--calibrate", "1", "--pareto", &meta_s]), "not replacing it");
    refused(&slimc(&["eval", &out, "--widths", "1.0", "--calibrate", "0"]), "--calibrate");
    refused(&slimc(&["train", "--resume", &out, "--max-steps", "0"]), "--max-steps");
    assert_eq!(snapshot(&run), before, "every file of the run is byte-identical");

    // `--pareto` alone writes RUN/pareto.json.
    ok(&slimc(&["eval", &out, "--widths", "0.5,1.0", "--calibrate", "1", "--pareto"]));
    assert!(run.join("pareto.json").is_file());

    // A run killed between the checkpoint's renames leaves `checkpoint.old`: still a run.
    let half = dir.join("half");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::rename(run.join("checkpoint"), half.join("checkpoint.old")).unwrap();
    let kept = snapshot(&half);
    let half_s = half.display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--max-steps", "1", "--out", &half_s];
    args.extend(TINY);
    refused(&slimc(&args), "already holds a run");
    assert_eq!(snapshot(&half), kept);

    // One step at a learning rate of 1e30: the weights overflow, no checkpoint is written.
    let wild = dir.join("wild").display().to_string();
    let mut args = vec!["train", "models/resnet20.slim", "--data", &data, "--max-steps", "1", "--out", &wild];
    args.extend([
        "--batch",
        "32",
        "--val-images",
        "64",
        "--calibrate",
        "2",
        "--quiet",
        "--lr",
        "1e30",
        "--warmup",
        "0",
    ]);
    let err = refused(&slimc(&args), "training diverged");
    assert!(!Path::new(&wild).join("checkpoint").exists(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A network that cannot fit in memory is refused before anything is allocated, with the
/// estimate named (two 65,536-channel convs hold 38.7 G parameters).
#[test]
fn a_network_too_large_for_memory_is_refused_before_allocation() {
    let (dir, data) = synthetic_run("huge", 64);
    let file = dir.join("huge.slim");
    std::fs::write(
        &file,
        "network huge(classes = 10, in_channels = 1, size = 12) {\n input in_channels x size x size\n \
         stem = conv(65536, k=3) -> bn -> relu -> conv(65536, k=3) -> bn -> relu\n head = avgpool -> linear(classes)\n}\n",
    )
    .unwrap();
    let out = dir.join("run").display().to_string();
    let file_s = file.display().to_string();
    let o = slimc(&["train", &file_s, "--data", &data, "--out", &out, "--batch", "8", "--val-images", "8", "--quiet"]);
    let err = refused(&o, "more than the");
    assert!(err.contains("GiB"), "{err}");
    assert!(!Path::new(&out).exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--teacher`: given a frozen teacher's class probabilities, the largest width learns
/// from the labels and every other width from them: the gradient is that of the sum
/// built by hand from the public losses; without them (inplace distillation) the step
/// differs.
#[test]
fn a_teachers_targets_replace_the_largest_widths_softmax() {
    use slimc_runtime::export::Subnet;
    use slimc_runtime::runtime::{Mode, WidthConfig};
    use slimc_runtime::train::teacher::Teacher;
    use slimc_runtime::train::{cross_entropy, gradients_from, soft_cross_entropy};
    let device = Default::default();
    let net = common::small("resnet20", 16);
    // The teacher: weights of its own, with BN statistics.
    let mut other = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 9, &device);
    let stats = common::condition_bn(&mut other, &device);
    let full = WidthConfig::new(net.full_width());
    let tensors = Subnet::extract(&other, &full, &stats).unwrap().named_tensors();
    let teacher = Teacher::<Cpu>::new(net.clone(), tensors.clone(), Path::new("teacher"), &device).unwrap();
    // Without BN statistics there is nothing to evaluate the teacher with.
    let bare: Vec<_> = tensors.into_iter().filter(|(n, _)| !n.ends_with("running_var")).collect();
    assert!(Teacher::<Cpu>::new(net.clone(), bare, Path::new("bare"), &device).is_err());

    let model = SlimNet::<CpuTrain>::new(net.clone(), Vec::new(), 3, &device);
    let x = Tensor::<CpuTrain, 4>::random([6, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<CpuTrain, 1, Int>::from_data(TensorData::new((0..6i64).collect::<Vec<_>>(), [6]), &device);
    let widths = Sandwich::default().widths(&model, &mut StdRng::seed_from_u64(5)).unwrap();
    let opts = StepOptions { distill: true, lr: 0.1, weight_decay: 5e-4, label_smoothing: 0.1 };
    let targets = Tensor::<CpuTrain, 2>::from_inner(teacher.targets(x.clone().inner()).unwrap());
    // A data-parallel replica's copy of the teacher gives the same targets.
    let forked = teacher.fork(&device).targets(x.clone().inner()).unwrap();
    let (a, b): (Vec<f32>, Vec<f32>) =
        (targets.clone().inner().into_data().to_vec().unwrap(), forked.into_data().to_vec().unwrap());
    assert_eq!(a, b, "a forked teacher's targets");
    // `gradients` takes the graph locks itself; only the loss built here runs `alone`.
    let (g, _) = gradients_from(&model, x.clone(), y.clone(), &widths, &opts, Some(targets.clone())).unwrap().unwrap();
    let (own, _) = gradients(&model, x.clone(), y.clone(), &widths, &opts).unwrap().unwrap();
    let hand = common::alone(|| {
        let logits = |w: &WidthConfig| model.forward(x.clone(), w, Mode::Train).unwrap().logits;
        let mut loss = cross_entropy(logits(&widths[0]), y.clone(), 0.1);
        for w in &widths[1..] {
            loss = loss + soft_cross_entropy(logits(w), targets.clone());
        }
        GradientsParams::from_grads(loss.backward(), &model)
    });
    let (taught, by_hand, inplace) = (grads_of(&model, &g), grads_of(&model, &hand), grads_of(&model, &own));
    let d = common::rel(&by_hand, &taught, 1e-6);
    assert!(d < 1e-5, "the teacher's step differs from the loss built by hand by {d}");
    let d = common::rel(&inplace, &taught, 1e-6);
    assert!(d > 1e-3, "the teacher's targets changed nothing ({d})");
}
