//! `slimc import` on graphs PyTorch itself exported (tests/onnx, written by
//! scripts/onnx_graphs.py from torchvision's models and a CIFAR ResNet-20, each through the
//! TorchScript exporter, opset 17, and the default one, opset 20 with external data; their
//! weights left out, so the tests write weights of the right shapes):
//!
//! - every graph imports to a `.slim` that checks clean, whose parameter count is the
//!   PyTorch model's (recorded by the script in tests/onnx/manifest.json) and whose MACs
//!   are the zoo file's where the zoo has the model; where the graph carries the zoo
//!   file's whole design (ResNet-18, RegNetX-400MF, ShuffleNetV2, ConvNeXt-T, ResNet-20) the
//!   search space is the
//!   zoo file's too; both exporters give the same file;
//! - with random weights, the imported network's full-width logits equal onnxruntime's
//!   on the original graph to 1e-4 (ignored test: needs onnxruntime, as `bash .ci/run`
//!   installs it);
//! - channels taken by position (an unequal Split, a trim: scripts/onnx_graphs.py's
//!   SplitNet) pin the maps they read, with one warning naming each node;
//! - bad input (not ONNX, truncated, weights missing or short, an op slimc lacks, an output
//!   in the way) is one message, exit 2, nothing written;
//! - channels ranked by importance (`--order l1|bn`) leave the full-width logits of nine
//!   zoo networks unchanged.
//! - a PyTorch `state_dict` under its own module names loads into a zoo file by structure:
//!   twelve torchvision models compute torchvision's logits (ignored test: needs torch and
//!   torchvision), a ResNet-20 named as scripts/torch_resnet20.py names it gives back the
//!   network's own tensors, and a missing, extra or misshapen module is one message.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};

use slimc_lang::ir::Network;
use slimc_lang::Options;
use slimc_runtime::export::HostTensor;
use slimc_runtime::import::{import, ImportError, ImportOptions};
use slimc_runtime::runtime::device::Cpu;
use slimc_runtime::runtime::{Mode, SlimNet, WidthConfig};

use common::{require_onnxruntime, scratch};

/// The graphs the importer reads, with the zoo file of the same network where there is one.
const GRAPHS: &[(&str, Option<&str>)] = &[
    ("resnet18", Some("resnet18")),
    ("resnet50", Some("resnet50")),
    ("mobilenet_v2", Some("mobilenet_v2")),
    ("mobilenet_v3_large", Some("mobilenet_v3_large")),
    ("efficientnet_b0", Some("efficientnet_b0")),
    ("regnet_x_400mf", Some("regnetx_400mf")),
    ("shufflenet_v2_x1_0", Some("shufflenet_v2")),
    ("densenet121", None),
    ("convnext_tiny", Some("convnext_tiny")),
    ("resnet20", Some("resnet20")),
    ("split_net", None),
];

/// Zoo files whose whole search-space design the graph carries: their search space is the
/// imported one. (The others add choices no graph shows: ResNet-50's tied bottleneck
/// widths, MobileNet's fixed last conv and stages split at width changes, squeeze-excite
/// widths as a ratio of the block's.)
const SAME_SPACE: &[&str] = &["resnet18", "regnet_x_400mf", "shufflenet_v2_x1_0", "convnext_tiny", "resnet20"];

const EXPORTERS: &[&str] = &["ts", "dynamo"];

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string("tests/onnx/manifest.json").unwrap()).unwrap()
}

/// The graph copied into `dir` beside a zero-filled (sparse) external data file of the
/// length the manifest records.
fn weightless(dir: &Path, model: &str, exporter: &str) -> PathBuf {
    let file = format!("{model}.{exporter}.onnx");
    let path = dir.join(&file);
    std::fs::copy(Path::new("tests/onnx").join(&file), &path).unwrap();
    let len = manifest()[model][format!("{exporter}_data")].as_u64().unwrap();
    std::fs::File::create(dir.join(format!("{file}.data"))).unwrap().set_len(len).unwrap();
    path
}

fn zoo(name: &str) -> Network {
    let src = std::fs::read_to_string(format!("models/{name}.slim")).unwrap();
    slimc_lang::compile(&src, name, &Options::default()).unwrap().remove(0)
}

fn counts(net: &Network) -> (u64, u64) {
    let (c, _) = slimc_lang::cost::cost(net, &net.full_width());
    (c.macs, c.params)
}

#[test]
fn every_graph_imports_with_the_pytorch_models_counts() {
    let dir = scratch("import-counts");
    let manifest = manifest();
    for &(model, zoo_name) in GRAPHS {
        let mut sources = Vec::new();
        for &exporter in EXPORTERS {
            let path = weightless(&dir, model, exporter);
            let imported =
                import(&path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{model}.{exporter}: {e}"));
            let checked = slimc_lang::check(&imported.source, model, &Options::default());
            assert!(checked.networks.is_ok(), "{model}.{exporter}: {}", checked.diagnostics(false).render());
            assert!(checked.warnings.items.is_empty(), "{model}.{exporter}: {}", checked.warnings.render());
            let (macs, params) = counts(&imported.network);
            assert_eq!(params, manifest[model]["params"].as_u64().unwrap(), "{model}.{exporter}: parameters");
            assert_eq!(macs, imported.graph_macs, "{model}.{exporter}: MACs");
            if let Some(z) = zoo_name {
                let zoo = zoo(z);
                assert_eq!(
                    (macs, params),
                    counts(&zoo),
                    "{model}.{exporter}: MACs and parameters against models/{z}.slim"
                );
                if SAME_SPACE.contains(&model) {
                    let ours = &imported.network.space;
                    assert_eq!(ours.search_dim(), zoo.space.search_dim(), "{model}: search_dim");
                    assert_eq!(ours.channel_space(), zoo.space.channel_space(), "{model}: channel_space");
                }
            }
            // Every learned tensor and BN statistic is named, once.
            let mut names: Vec<&str> = imported.tensors.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), imported.tensors.len(), "{model}.{exporter}: a tensor named twice");
            sources.push(imported.source.lines().skip(1).collect::<Vec<_>>().join("\n"));
        }
        assert_eq!(sources[0], sources[1], "{model}: the two exporters' graphs import differently");
    }
}

#[test]
fn resnet18_reads_as_written_by_hand() {
    let dir = scratch("import-resnet18");
    let imported = import(&weightless(&dir, "resnet18", "ts"), &ImportOptions::default()).unwrap();
    insta::assert_snapshot!(imported.source.lines().skip(1).collect::<Vec<_>>().join("\n"));
}

/// Runs the imported network at full width on the batch onnxruntime ran, with the graph's
/// BN statistics, and compares the logits.
/// A file of raw little-endian f32s (the reference scripts' input.bin and logits.bin).
fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn agrees_with_onnxruntime(model: &str, exporter: &str) {
    let dir = scratch(&format!("import-ort-{model}-{exporter}"));
    let graph = format!("tests/onnx/{model}.{exporter}.onnx");
    let out = Command::new("python3").args(["scripts/onnx_random.py", &graph]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{model}.{exporter}: {}", String::from_utf8_lossy(&out.stderr));
    let imported = import(&dir.join(format!("{model}.{exporter}.onnx")), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{model}.{exporter}: {e}"));
    let device = Default::default();
    let net = Arc::new(imported.network.clone());
    let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 0, &device);
    let stats = slim.named_stats(&imported.tensors, &device).expect("every BN has its statistics");
    slim.load_named(imported.tensors.clone(), Path::new("imported"), &device).unwrap();
    let read = |f: &str| read_f32(&dir.join(f));
    let [c, h, w] = net.input.map(|v| v as usize);
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(read("input.bin"), [1, c, h, w]), &device);
    let cfg = WidthConfig::new(net.full_width());
    let ours: Vec<f32> = slim.forward(x, &cfg, Mode::Eval(&stats)).unwrap().logits.into_data().to_vec().unwrap();
    let theirs = read("logits.bin");
    let d = common::rel(&theirs, &ours, 1.0);
    assert!(d < 1e-4, "{model}.{exporter}: logits differ from onnxruntime's by {d} (relative)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs onnxruntime: python3 -m pip install onnx onnxruntime numpy"]
fn imported_logits_equal_onnxruntime_on_the_exported_graph() {
    require_onnxruntime();
    for &(model, _) in GRAPHS {
        for &exporter in EXPORTERS {
            agrees_with_onnxruntime(model, exporter);
        }
    }
}

#[test]
fn an_op_slimc_lacks_names_the_node_and_its_type() {
    let dir = scratch("import-unsupported");
    // A small net with an ELU (scripts/onnx_graphs.py's EluNet).
    for exporter in EXPORTERS {
        let e = import(&weightless(&dir, "elu_net", exporter), &ImportOptions::default()).unwrap_err();
        assert!(matches!(&e, ImportError::Unsupported { op, .. } if op == "Elu"), "{exporter}: {e}");
    }
    let e = import(&weightless(&dir, "elu_net", "ts"), &ImportOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "node `/Elu` (Elu): slimc has no op for it");
}

/// An unequal Split and a trim of a concatenation (`[:, :20]` of 24) take channels by
/// position: each becomes a `slice`, the maps they read are fixed (written `fixed(24)`
/// where declared), one warning names each node, and the stem and the last conv still slim.
#[test]
fn channels_taken_by_position_pin_the_maps_they_read() {
    let dir = scratch("import-pinned");
    for exporter in EXPORTERS {
        let imported = import(&weightless(&dir, "split_net", exporter), &ImportOptions::default()).unwrap();
        let pinned: Vec<(&str, &[[u32; 2]])> =
            imported.pinned.iter().map(|p| (p.op.as_str(), p.ranges.as_slice())).collect();
        assert_eq!(
            pinned,
            [("Split", &[[0, 8], [8, 24]][..]), ("Slice", &[[0, 20]][..])],
            "{exporter}: {:?}",
            imported.pinned
        );
        assert!(imported.source.contains("conv(fixed(24))"), "{exporter}:\n{}", imported.source);
        assert_eq!(imported.source.matches("slice(").count(), 3, "{exporter}:\n{}", imported.source);
        let bases: Vec<u32> = imported.network.space.dims.iter().map(|d| d.base).collect();
        assert_eq!(bases, [16, 32], "{exporter}: the stem and the last conv slim:\n{}", imported.source);
    }
    let out = slimc(&dir, &["import", "split_net.ts.onnx"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: node `/Split` (Split) takes channels 0..8, 8..24 of 24, not equal parts: the map it reads keeps its 24 channels at every width (fixed)"),
        "{err}"
    );
    assert!(err.contains("warning: node `/Slice` (Slice) takes channels 0..20 of 24"), "{err}");
    let out = slimc(&dir, &["check", "split_net.slim"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("warning"), "{err}");
}

fn slimc(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slimc")).current_dir(dir).args(args).output().unwrap()
}

/// Exit 2, one `error:` line naming `what`, and no file written beside the model.
fn refused(dir: &Path, args: &[&str], what: &str) {
    let before: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    let out = slimc(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(what), "{args:?}: expected `{what}` in: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one message: {err}");
    let after: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after, "{args:?}: wrote a file");
}

#[test]
fn bad_input_is_one_message_and_nothing_written() {
    let dir = scratch("import-bad");
    let model = weightless(&dir, "resnet20", "ts");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(dir.join("truncated.onnx"), &bytes[..bytes.len() / 2]).unwrap();
    refused(&dir, &["import", "truncated.onnx"], "truncated.onnx is not an ONNX model");
    std::fs::write(dir.join("text.onnx"), "network n() { }\n").unwrap();
    refused(&dir, &["import", "text.onnx"], "text.onnx is not an ONNX model");
    refused(&dir, &["import", "missing.onnx"], "cannot read missing.onnx");
    // The weights file cut short, then gone.
    let data = dir.join("resnet20.ts.onnx.data");
    std::fs::File::options().write(true).open(&data).unwrap().set_len(1000).unwrap();
    refused(&dir, &["import", "resnet20.ts.onnx"], "which has 1000");
    std::fs::remove_file(&data).unwrap();
    refused(&dir, &["import", "resnet20.ts.onnx"], "cannot read its external data");
    // An op slimc lacks.
    weightless(&dir, "elu_net", "dynamo");
    refused(&dir, &["import", "elu_net.dynamo.onnx"], "(Elu)");
    // An output in the way is kept.
    weightless(&dir, "resnet20", "ts");
    std::fs::write(dir.join("mine.slim"), "# mine\n").unwrap();
    refused(&dir, &["import", "resnet20.ts.onnx", "-o", "mine.slim"], "mine.slim exists");
    assert_eq!(std::fs::read_to_string(dir.join("mine.slim")).unwrap(), "# mine\n");
    refused(&dir, &["import", "resnet20.ts.onnx", "--name", "2x"], "--name 2x");
    // The weights' directory missing: not even the .slim is written.
    refused(&dir, &["import", "resnet20.ts.onnx", "--weights", "no/such/w.safetensors"], "no/such is not a directory");
}

#[test]
fn imported_files_check_and_load_as_init_weights() {
    let dir = scratch("import-cli");
    weightless(&dir, "resnet20", "dynamo");
    let out = slimc(&dir, &["import", "resnet20.dynamo.onnx"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = slimc(&dir, &["check", "resnet20.slim"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The weights file loads into the written network by name.
    let src = std::fs::read_to_string(dir.join("resnet20.slim")).unwrap();
    let net = Arc::new(slimc_lang::compile(&src, "resnet20.slim", &Options::default()).unwrap().remove(0));
    let device = Default::default();
    let mut slim = SlimNet::<Cpu>::new(net, Vec::new(), 0, &device);
    let path = dir.join("resnet20.safetensors");
    let tensors = slimc_runtime::export::named::read_file(&path).unwrap();
    slim.load_named(tensors, &path, &device).unwrap();
    // A second import does not replace them; --force does.
    assert_eq!(slimc(&dir, &["import", "resnet20.dynamo.onnx"]).status.code(), Some(2));
    assert!(slimc(&dir, &["import", "resnet20.dynamo.onnx", "--force"]).status.success());
}

/// Seeded byte damage to a real graph: every damaged file imports or is refused with an
/// error, never a panic.
#[test]
fn damaged_graphs_are_refused_never_a_panic() {
    use rand::{Rng, SeedableRng};
    let dir = scratch("import-damaged");
    let model = weightless(&dir, "resnet20", "ts");
    let bytes = std::fs::read(&model).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(31);
    let mut refused = 0;
    for i in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..b.len());
            b[at] = rng.random();
        }
        std::fs::write(&model, &b).unwrap();
        let r = std::panic::catch_unwind(|| import(&model, &ImportOptions::default()));
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                refused += 1;
                assert!(!e.to_string().is_empty(), "damage {i}: an empty message");
            }
            Err(_) => panic!("damage {i}: import panicked"),
        }
    }
    assert!(refused > 0, "no damage was noticed: the test damages nothing");
}

/// Ranking channels by importance (`--order`) permutes every tensor a search dimension
/// reaches together: the full-width network computes the same logits with the reordered
/// weights (and their BN statistics), something moves in every model, and ranking the
/// reordered weights again moves nothing (each dimension's scores now descend). Covers
/// option-A zero padding (ResNet-20), residual adds, depthwise convs, squeeze-excite gates,
/// splits and shuffles (ShuffleNetV2), group convs (RegNetX), layer norm and layer scale
/// (ConvNeXt), attention with a class token and a position embedding (ViT).
#[test]
fn importance_ordering_keeps_the_full_width_function() {
    use slimc_runtime::export::Subnet;
    use slimc_runtime::import::order::{reorder, Criterion};
    let models = [
        "resnet20",
        "resnet18",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "shufflenet_v2",
        "regnetx_400mf",
        "convnext_tiny",
        "vit_fmnist",
    ];
    let device = Default::default();
    for name in models {
        let net = common::small(name, common::test_size(name));
        let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 3, &device);
        let stats = common::condition_bn(&mut slim, &device);
        let full = WidthConfig::new(net.full_width());
        let tensors = Subnet::extract(&slim, &full, &stats).unwrap().named_tensors();
        let [c, h, w] = net.input.map(|v| v as usize);
        let x = Tensor::<Cpu, 4>::random([2, c, h, w], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let before: Vec<f32> =
            slim.forward(x.clone(), &full, Mode::Eval(&stats)).unwrap().logits.into_data().to_vec().unwrap();
        for criterion in [Criterion::L1, Criterion::Bn] {
            let (moved, plan) = reorder(&net, tensors.clone(), criterion);
            assert!(plan.dims.iter().any(Option::is_some), "{name} ({criterion}): no dimension was reordered");
            // Only group convs, splits and attention keep dimensions in place.
            if !["shufflenet_v2", "regnetx_400mf", "vit_fmnist"].contains(&name) {
                assert!(plan.kept.is_empty(), "{name} ({criterion}): kept {:?}", plan.kept);
            }
            assert_ne!(moved, tensors, "{name} ({criterion}): no tensor moved");
            let (again, replan) = reorder(&net, moved.clone(), criterion);
            assert!(replan.dims.iter().all(Option::is_none), "{name} ({criterion}): ranking is not idempotent");
            assert_eq!(again, moved);
            let mut ordered = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 0, &device);
            let ordered_stats = ordered.named_stats(&moved, &device).unwrap();
            ordered.load_named(moved, Path::new("ordered"), &device).unwrap();
            let after: Vec<f32> = ordered
                .forward(x.clone(), &full, Mode::Eval(&ordered_stats))
                .unwrap()
                .logits
                .into_data()
                .to_vec()
                .unwrap();
            let d = common::rel(&before, &after, 1.0);
            assert!(d < 1e-4, "{name} ({criterion}): reordered logits differ by {d} (relative)");
        }
    }
}

/// `--order`, `--normalize` and `--bn-eps` are refused with one message when they cannot apply or do
/// not parse, before any data is read.
#[test]
fn order_and_normalize_flags_are_checked() {
    let dir = scratch("import-flags");
    weightless(&dir, "resnet20", "ts");
    assert!(slimc(&dir, &["import", "resnet20.ts.onnx"]).status.success());
    let refusals: &[(&[&str], &str)] = &[
        (&["eval", "resnet20.slim", "--order", "l1"], "--init"),
        (&["eval", "resnet20.slim", "--init", "resnet20.safetensors", "--order", "l2"], "expected none, l1 or bn"),
        (&["eval", "resnet20.slim", "--init", "resnet20.safetensors", "--normalize", "0.5"], "MEAN/STD"),
        (&["eval", "resnet20.slim", "--init", "resnet20.safetensors", "--normalize", "0.5/0"], "MEAN/STD"),
        (&["eval", "resnet20.slim", "--init", "resnet20.safetensors", "--normalize", "0.1,0.2/0.3"], "MEAN/STD"),
        (&["train", "resnet20.slim", "--order", "bn"], "--init"),
        (&["train", "resnet20.slim", "--normalize", "nan/1"], "MEAN/STD"),
        (&["eval", "resnet20.slim", "--bn-eps", "0.001"], "--init"),
        (&["eval", "resnet20.slim", "--init", "resnet20.safetensors", "--bn-eps", "0"], "expected a positive number"),
        (&["eval", "resnet20.slim", "--init", "resnet20.safetensors", "--bn-eps", "inf"], "expected a positive number"),
    ];
    for (args, what) in refusals {
        let out = slimc(&dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// ResNet-20 for the committed data set (`tests/fixtures/data`: 1x12x12, 10 classes) and
/// random full-width weights with BN statistics, under its layer names.
fn fixture_resnet20() -> (Arc<Network>, Vec<(String, HostTensor)>) {
    use slimc_lang::ir::ParamValue;
    use slimc_runtime::export::Subnet;
    let options = Options {
        settings: vec![
            ("size".into(), ParamValue::Int(12)),
            ("classes".into(), ParamValue::Int(10)),
            ("in_channels".into(), ParamValue::Int(1)),
        ],
        ..Options::default()
    };
    let src = std::fs::read_to_string("models/resnet20.slim").unwrap();
    let net = Arc::new(slimc_lang::compile(&src, "resnet20", &options).unwrap().remove(0));
    let device = Default::default();
    let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 5, &device);
    let stats = common::condition_bn(&mut slim, &device);
    let tensors = Subnet::extract(&slim, &WidthConfig::new(net.full_width()), &stats).unwrap().named_tensors();
    (net, tensors)
}

/// ResNet-20's weights under the names scripts/torch_resnet20.py's module gives them
/// (`conv1`, `bn1`, `blocks.0.conv1` .. `blocks.8.bn2`, `fc`), which sort neither in the
/// order the layers run nor in the zoo file's names (`blocks.10` would sort before
/// `blocks.2`): matched to `models/resnet20.slim` by structure they are the network's own
/// tensors; through the binary, a file with a module missing, one too many or a wrong
/// shape is one message naming the tensor, exit 2, nothing written.
#[test]
fn a_pytorch_named_state_dict_loads_by_structure() {
    use slimc_runtime::export::safetensors;
    use slimc_runtime::import::state_dict::by_structure;
    let (net, ours) = fixture_resnet20();
    let torch_name = |name: &str| -> String {
        let name = name.strip_prefix("stem.").unwrap_or(name).replace("head.linear1", "fc");
        match name.strip_prefix("stage") {
            Some(rest) => {
                let (stage, rest) = rest.split_once('.').unwrap();
                let (block, rest) = rest.split_once(".main.").unwrap();
                let index = 3 * (stage.parse::<usize>().unwrap() - 1) + block.parse::<usize>().unwrap();
                format!("blocks.{index}.{rest}")
            }
            None => name,
        }
    };
    let theirs: Vec<(String, HostTensor)> = ours.iter().map(|(n, t)| (torch_name(n), t.clone())).collect();
    assert!(theirs.iter().any(|(n, _)| n == "blocks.8.bn2.running_var"));
    let (matched, modules) = by_structure(&net, theirs.clone(), Path::new("theirs")).unwrap();
    assert_eq!(modules, 39);
    let mut sorted = ours.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(matched, sorted, "matched by structure, the tensors are the network's own");
    // The network's own names are taken as they are.
    assert_eq!(by_structure(&net, ours.clone(), Path::new("ours")).unwrap().1, 0);

    let dir = scratch("state-dict-cli");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/resnet20.slim");
    let data = format!("mnist:{}", root.join("tests/fixtures/data").display());
    let write = |file: &str, tensors: &[(String, HostTensor)]| {
        std::fs::write(dir.join(file), safetensors::named_bytes(tensors, Default::default()).unwrap()).unwrap();
    };
    write("theirs.safetensors", &theirs);
    let eval = |file: &str| -> Vec<String> {
        ["eval", model.to_str().unwrap(), "--data", &data, "--widths", "1.0", "--init", file].map(String::from).to_vec()
    };
    let args = eval("theirs.safetensors");
    let out = slimc(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("39 modules matched to the layers of `resnet20` by structure"), "{err}");

    let without: Vec<_> = theirs.iter().filter(|(n, _)| !n.starts_with("blocks.4.bn2.")).cloned().collect();
    write("missing.safetensors", &without);
    let mut extra = theirs.clone();
    extra.push(("extra.weight".into(), HostTensor { shape: vec![3], data: vec![1.0; 3] }));
    write("extra.safetensors", &extra);
    let mut narrow = theirs.clone();
    let fc = narrow.iter_mut().find(|(n, _)| n == "fc.weight").unwrap();
    fc.1 = HostTensor { shape: vec![10, 63], data: vec![0.0; 630] };
    write("shape.safetensors", &narrow);
    for (file, what) in [
        // The last of the 32-channel BNs goes without.
        ("missing.safetensors", "no tensor of the file fits `stage2.2.main.bn2.weight` [32]"),
        ("extra.safetensors", "tensor `extra.weight` [3] fits no layer of `resnet20`"),
        ("shape.safetensors", "the file's first unused `weight` of this kind is `fc.weight` [10, 63]"),
    ] {
        let args = eval(file);
        refused(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>(), what);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A torchvision model's `state_dict` (its own module names, random weights and BN
/// statistics; scripts/torchvision_state_dict.py) loaded into the zoo's hand-written file
/// of the same network by structure computes torchvision's logits (1e-4), with
/// MobileNetV3's BN epsilon (0.001) given as `slimc eval --bn-eps` gives it.
#[test]
#[ignore = "needs PyTorch and torchvision: python3 -m pip install torch torchvision safetensors"]
fn torchvision_state_dicts_load_into_zoo_files_by_structure() {
    use slimc_lang::ir::ParamValue;
    use slimc_runtime::export::named;
    use slimc_runtime::import::state_dict::{by_structure, shift_bn_eps};
    let models = [
        ("resnet18", "resnet18"),
        ("resnet50", "resnet50"),
        ("mobilenet_v2", "mobilenet_v2"),
        ("mobilenet_v3_large", "mobilenet_v3_large"),
        ("mobilenet_v3_small", "mobilenet_v3_small"),
        ("efficientnet_b0", "efficientnet_b0"),
        ("regnet_x_400mf", "regnetx_400mf"),
        ("regnet_y_400mf", "regnety_400mf"),
        ("shufflenet_v2_x1_0", "shufflenet_v2"),
        ("convnext_tiny", "convnext_tiny"),
        ("mnasnet1_0", "mnasnet"),
        ("vgg16", "vgg16"),
    ];
    let size = 64;
    let device = Default::default();
    let mut failed = Vec::new();
    for (torchvision, zoo) in models {
        let dir = scratch(&format!("state-dict-{zoo}"));
        let out = Command::new("python3")
            .args(["scripts/torchvision_state_dict.py", torchvision])
            .arg(&dir)
            .arg(size.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{torchvision}: {}", String::from_utf8_lossy(&out.stderr));
        let options = Options {
            settings: vec![("size".into(), ParamValue::Int(size)), ("classes".into(), ParamValue::Int(1000))],
            ..Options::default()
        };
        let src = std::fs::read_to_string(format!("models/{zoo}.slim")).unwrap();
        let net =
            Arc::new(slimc_lang::compile(&src, zoo, &options).unwrap_or_else(|d| panic!("{}", d.render())).remove(0));
        let path = dir.join("state_dict.safetensors");
        let tensors = named::read_file(&path).unwrap();
        let (mut tensors, modules) = match by_structure(&net, tensors, &path) {
            Ok(matched) => matched,
            Err(e) => {
                failed.push(format!("{zoo}: {e}"));
                continue;
            }
        };
        assert!(modules > 0, "{zoo}: the names were taken as the network's own");
        if torchvision.starts_with("mobilenet_v3") {
            shift_bn_eps(&net, &mut tensors, 1e-3, &path).unwrap();
        }
        let mut slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 0, &device);
        let stats = slim.named_stats(&tensors, &device).expect("every BN has its statistics");
        slim.load_named(tensors, &path, &device).unwrap_or_else(|e| panic!("{zoo}: {e}"));
        let read = |f: &str| read_f32(&dir.join(f));
        let s = size as usize;
        let x = Tensor::<Cpu, 4>::from_data(TensorData::new(read("input.bin"), [1, 3, s, s]), &device);
        let cfg = WidthConfig::new(net.full_width());
        let ours: Vec<f32> = slim.forward(x, &cfg, Mode::Eval(&stats)).unwrap().logits.into_data().to_vec().unwrap();
        let d = common::rel(&read("logits.bin"), &ours, 1.0);
        if d < 1e-4 {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            failed.push(format!("{zoo}: logits differ from torchvision's by {d} (relative)"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// `slimc train --teacher`: a US run distils from a frozen teacher (full-width weights with
/// BN statistics), stores it and loads it again on `--resume`; a scheme that does not
/// distil, weights without BN statistics and a missing file are each one message, exit 2,
/// no run written; a teacher gone by the time of `--resume` is an error naming it.
#[test]
fn a_frozen_teacher_trains_resumes_and_is_checked() {
    use slimc_runtime::export::safetensors;
    let (_, tensors) = fixture_resnet20();
    let dir = scratch("teacher-cli");
    let write = |file: &str, tensors: &[(String, HostTensor)]| {
        std::fs::write(dir.join(file), safetensors::named_bytes(tensors, Default::default()).unwrap()).unwrap();
    };
    write("teacher.safetensors", &tensors);
    let bare: Vec<_> = tensors.iter().filter(|(n, _)| !n.contains("running_")).cloned().collect();
    write("bare.safetensors", &bare);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/resnet20.slim").display().to_string();
    let data = format!("mnist:{}", root.join("tests/fixtures/data").display());
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            &model,
            "--data",
            &data,
            "--val-images",
            "64",
            "--batch",
            "32",
            "--calibrate",
            "1",
            "--max-steps",
            "2",
            "--quiet",
        ];
        args.extend(extra);
        slimc(&dir, &args)
    };
    let out = train(&["--init", "teacher.safetensors", "--teacher", "teacher.safetensors", "--out", "run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("distilling from the teacher"), "{err}");
    let out = slimc(&dir, &["train", "--resume", "run", "--max-steps", "3", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for (extra, what) in [
        (
            &["--teacher", "teacher.safetensors", "--scheme", "fixed", "--width", "0.5", "--out", "a"][..],
            "--teacher needs a scheme",
        ),
        (&["--teacher", "bare.safetensors", "--out", "b"][..], "a teacher needs every BN's running_mean"),
        (&["--teacher", "missing.safetensors", "--out", "c"][..], "missing.safetensors"),
    ] {
        let out = train(extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(what), "{extra:?}: expected `{what}` in: {err}");
        assert!(!dir.join(extra[extra.len() - 1]).exists(), "{extra:?}: a run was written");
    }
    std::fs::remove_file(dir.join("teacher.safetensors")).unwrap();
    let out = slimc(&dir, &["train", "--resume", "run", "--max-steps", "4", "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("teacher.safetensors"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
