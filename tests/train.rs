//! `slimc train` / `eval` end to end on a tiny synthetic data set written in the MNIST
//! IDX format (so the real reader runs), and, where the Debian package is installed, a
//! short real Fashion-MNIST run with a stated accuracy bar.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::backend::Backend;
use flate2::write::GzEncoder;
use slimc::runtime::checkpoint;
use slimc::runtime::device::Cpu;
use slimc::runtime::SlimNet;

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
    for p in &m.layers {
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
    ok(&slimc(&["train", "--resume", &split, "--max-steps", "9", "--quiet"]));
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
        Path::new(slimc::data::FASHION_MNIST_DIR).is_dir(),
        "{} is missing: apt-get install dataset-fashion-mnist",
        slimc::data::FASHION_MNIST_DIR
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
    let (fixed, _) = slimc::export::burn::open::<Cpu>(&dir.join("subnet.mpk"), &Default::default()).unwrap();
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
    let (_, meta) = slimc::export::burn::open::<Cpu>(&mpk, &Default::default()).unwrap();
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
        slimc::export::safetensors::read(&std::fs::read(path).unwrap()).unwrap()
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
