//! The command-line contract (docs/design.md §6): exit codes, JSON keys, human output.

use std::process::{Command, Output};

fn slimc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slimc")).args(args).output().expect("slimc runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document: {e}\n{}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn check_exit_codes() {
    let zoo: Vec<String> =
        std::fs::read_dir("models").unwrap().map(|e| e.unwrap().path().display().to_string()).collect();
    let args: Vec<&str> = std::iter::once("check").chain(zoo.iter().map(String::as_str)).collect();
    let o = slimc(&args);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), zoo.len(), "one summary line per network");

    let o = slimc(&["check", "tests/ui/channel_mismatch_add.slim"]);
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("error[E0201]: channel mismatch in add"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert!(!err.contains('\u{1b}'), "no colour when stderr is not a terminal");

    assert_eq!(code(&slimc(&["check", "no/such/file.slim"])), 2);
    assert_eq!(code(&slimc(&["check"])), 2);
    assert_eq!(code(&slimc(&["frobnicate"])), 2);
    assert_eq!(code(&slimc(&["check", "tests/ui/not_utf8.slim"])), 1);
}

#[test]
fn check_json() {
    let o = slimc(&["check", "--json", "models/resnet20.slim", "tests/ui/empty_stage.slim"]);
    assert_eq!(code(&o), 1);
    let doc = json(&o);
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files[0]["ok"], true);
    assert_eq!(files[0]["networks"][0]["search_dim"], 12);
    assert_eq!(files[1]["ok"], false);
    assert_eq!(files[1]["errors"][0]["code"], "E0208");
}

#[test]
fn space_json_contract() {
    let o = slimc(&["space", "models/resnet20.slim", "--width", "0.5", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let d = json(&o);
    for key in ["network", "input", "search_dim", "channel_space", "dims", "wm", "channels", "layers", "macs", "params"]
    {
        assert!(d.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(d["network"], "resnet20");
    assert_eq!(d["input"], serde_json::json!([3, 32, 32]));
    assert_eq!(d["search_dim"], 12);
    assert_eq!(d["channel_space"], serde_json::json!([16, [16, 16, 16], [32, 32, 32, 32], [64, 64, 64, 64]]));
    assert_eq!(d["channels"][0], 8);
    let dim = &d["dims"][0];
    for key in ["index", "base", "stage", "divisor", "layers"] {
        assert!(dim.get(key).is_some(), "dims[0] lacks {key}");
    }
    assert_eq!(dim["layers"][0], "stem.conv1");
    let layer = &d["layers"][0];
    for key in ["name", "op", "in", "out", "groups", "kernel", "stride", "out_hw", "macs", "params"] {
        assert!(layer.get(key).is_some(), "layers[0] lacks {key}");
    }
    assert_eq!(layer["in"], 3);
    assert_eq!(layer["out"], 8);
    let sum: u64 = d["layers"].as_array().unwrap().iter().map(|l| l["macs"].as_u64().unwrap()).sum();
    assert_eq!(d["macs"].as_u64().unwrap(), sum);

    // cost reports the same numbers.
    let c = json(&slimc(&["cost", "models/resnet20.slim", "--width", "0.5", "--json"]));
    assert_eq!(c["macs"], d["macs"]);
    assert_eq!(c["params"], d["params"]);
}

#[test]
fn width_vectors_and_overrides() {
    let wm = ["1"; 12].join(",");
    let a = json(&slimc(&["cost", "models/resnet20.slim", "--wm", &wm, "--json"]));
    let b = json(&slimc(&["cost", "models/resnet20.slim", "--json"]));
    assert_eq!(a["macs"], b["macs"]);
    assert_eq!(code(&slimc(&["cost", "models/resnet20.slim", "--wm", "0.5,1"])), 2);
    assert_eq!(code(&slimc(&["cost", "models/resnet20.slim", "--width", "1.5"])), 2);
    assert_eq!(code(&slimc(&["cost", "models/resnet20.slim", "--width", "0.5", "--wm", "1"])), 2);
    assert_eq!(code(&slimc(&["cost", "models/resnet20.slim", "--rounding", "ceil"])), 2);
    // An unknown setting is the compiler's error (E0118), so the input has errors: exit 1.
    assert_eq!(code(&slimc(&["cost", "models/resnet20.slim", "--set", "clases=5"])), 1);
    assert_eq!(code(&slimc(&["cost", "models/resnet20.slim", "--set", "classes"])), 2);
    let o = slimc(&[
        "space",
        "models/resnet20.slim",
        "--set",
        "classes=100",
        "--rounding",
        "nearest",
        "--width",
        "0.3",
        "--json",
    ]);
    assert_eq!(code(&o), 0);
    let d = json(&o);
    assert_eq!(d["layers"].as_array().unwrap().last().unwrap()["out"], 100);
    assert_eq!(d["channels"][0], 5);
    let o = slimc(&["space", "models/mobilenet_v2.slim", "--width", "0.35"]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("search_dim") && text.contains("total"), "{text}");
}

/// `slimc bench` times the training step of every scheme `slimc train` has, each one's
/// widths: the S-Nets switches (its own BN per switch) and Joslim's prior pool.
#[test]
fn bench_times_every_scheme() {
    let args = ["bench", "models/resnet20.slim", "--set", "size=8", "--batch", "2", "--steps", "1", "--json"];
    for (scheme, label, widths) in
        [("us", "sandwich", 4), ("s", "switches", 2), ("fixed", "fixed 0.5", 1), ("joslim", "joslim", 4)]
    {
        let mut argv = args.to_vec();
        argv.extend(["--scheme", scheme]);
        match scheme {
            "fixed" => argv.extend(["--width", "0.5"]),
            "s" => argv.extend(["--widths", "0.5,1.0"]),
            _ => {}
        }
        let o = slimc(&argv);
        assert_eq!(code(&o), 0, "--scheme {scheme}: {}", String::from_utf8_lossy(&o.stderr));
        let d = json(&o);
        assert!(d["widths"].as_str().unwrap().contains(label), "--scheme {scheme}: {}", d["widths"]);
        assert!(d["train_img_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(d["infer_img_per_s"].as_object().unwrap().len(), widths, "--scheme {scheme}");
    }
    let o = slimc(&[&args[..], &["--scheme", "us", "--width", "0.5"]].concat());
    assert_eq!(code(&o), 2, "--width belongs to --scheme fixed");
}

#[test]
fn bench_reports_throughput() {
    let o = slimc(&["bench", "models/resnet20.slim", "--set", "size=8", "--batch", "4", "--steps", "1", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let d = json(&o);
    for key in ["img_per_s", "train_img_per_s", "infer_img_per_s", "device", "batch"] {
        assert!(d.get(key).is_some(), "missing {key}");
    }
    assert!(d["train_img_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(d["infer_img_per_s"].as_object().unwrap().len(), 4);
    assert_eq!(d["batch"], 4);
    let args = ["bench", "models/resnet20.slim", "--set", "size=8", "--batch", "2", "--steps", "1"];
    let o = slimc(&[&args[..], &["--scheme", "fixed", "--width", "0.5"]].concat());
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("fixed 0.5") && out.contains("inference at width 0.5"), "{out}");
    let o = slimc(&[&args[..], &["--widths", "0.5:1.0:0.25", "--json"]].concat());
    assert_eq!(json(&o)["infer_img_per_s"].as_object().unwrap().len(), 3, "--widths takes a range as everywhere");
    assert_eq!(code(&slimc(&["bench", "models/resnet20.slim", "--device", "tpu"])), 2);
    assert_eq!(code(&slimc(&["bench", "models/resnet20.slim", "--widths", "2"])), 2);
    assert_eq!(code(&slimc(&["bench", "models/resnet20.slim", "--scheme", "fixed"])), 2);
    assert_eq!(code(&slimc(&["bench", "models/resnet20.slim", "--batch", "0"])), 2);
    if !cfg!(feature = "cuda") {
        let o = slimc(&["bench", "models/resnet20.slim", "--device", "cuda"]);
        assert_eq!(code(&o), 2);
        assert!(String::from_utf8_lossy(&o.stderr).contains("--features cuda"));
    }
    if !cfg!(feature = "wgpu") {
        let o = slimc(&["bench", "models/resnet20.slim", "--device", "wgpu:cpu"]);
        assert_eq!(code(&o), 2);
        assert!(String::from_utf8_lossy(&o.stderr).contains("--features wgpu"));
    }
    // An adapter that does not exist is refused before Burn is asked for it.
    let o = slimc(&["bench", "models/resnet20.slim", "--device", "wgpu:integrated:97"]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    if cfg!(feature = "wgpu") {
        assert!(err.contains("wgpu:integrated:97: no such adapter"), "{err}");
    }
}

#[test]
fn emit_writes_source_or_fails_cleanly() {
    let o = slimc(&["emit", "models/resnet20.slim"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let src = String::from_utf8_lossy(&o.stdout);
    assert!(src.starts_with("// Generated by slimc"), "{src}");
    assert!(src.contains("pub struct Resnet20<B: Backend>") && src.contains("pub struct BasicA<B: Backend>"));
    assert!(src.contains("pub fn forward(&self, x: Tensor<B, 4>, widths: &[usize]) -> Tensor<B, 2>"));

    let o = slimc(&["emit", "models/resnet20.slim", "--set", "classes=100"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("pub const CLASSES: usize = 100;"));

    let dir = std::env::temp_dir().join(format!("slimc-cli-emit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("model.rs");
    let o = slimc(&["emit", "models/mobilenet_v2.slim", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(std::fs::read_to_string(&out).unwrap().contains("pub struct MobilenetV2<B: Backend>"));
    let o = slimc(&["emit", "models/mobilenet_v2.slim", "-o", "no/such/dir/model.rs"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no/such/dir"), "names the path");
    assert_eq!(code(&slimc(&["emit", "tests/ui/channel_mismatch_add.slim"])), 1, "diagnostics, not code");
    assert_eq!(code(&slimc(&["emit", "no/such/file.slim"])), 2);
    assert_eq!(code(&slimc(&["emit", "models/resnet20.slim", "--network", "nope"])), 2);
    // Two layers whose names become one Rust identifier: a clear refusal.
    let clash = dir.join("clash.slim");
    std::fs::write(
        &clash,
        "network clash(classes = 10) {\n    input 3 x 16 x 16\n    stem = conv(8, k=3) -> bn -> relu\n    \
         stage = outer(8)\n    head = avgpool -> linear(classes)\n}\n\
         block outer(c) {\n    a_b = in -> conv(c, k=1)\n    a = a_b -> b_conv1(c)\n    out = a\n}\n\
         block b_conv1(c) {\n    out = in -> conv(c, k=1)\n}\n",
    )
    .unwrap();
    assert_eq!(code(&slimc(&["check", clash.to_str().unwrap()])), 0);
    let o = slimc(&["emit", clash.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("both named `a_b_conv1`"));
    // The same clash in Python, where the variables take the same name.
    let o = slimc(&["emit", clash.to_str().unwrap(), "--target", "pytorch"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("both named `a_b_conv1`"));

    // The PyTorch target: a Python module, written only over Python source.
    let o = slimc(&["emit", "models/resnet20.slim", "--target", "pytorch"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let src = String::from_utf8_lossy(&o.stdout);
    assert!(src.starts_with("# Generated by slimc") && src.contains("class Resnet20(Scope):"), "{src}");
    assert!(src.contains("def decode_wm(self, wm):") && src.contains("def set_real_ch(self, real_ch):"));
    let py = dir.join("model.py");
    assert_eq!(code(&slimc(&["emit", "models/resnet20.slim", "--target", "pytorch", "-o", py.to_str().unwrap()])), 0);
    let o = slimc(&["emit", "models/resnet20.slim", "--target", "pytorch", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "model.rs holds Rust");
    assert!(String::from_utf8_lossy(&o.stderr).contains("is Rust source; not replacing it with Python source"));
    let o = slimc(&["emit", "models/resnet20.slim", "--target", "tensorflow"]);
    assert_eq!(code(&o), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn init_weights_that_cannot_be_read_are_refused_before_the_data() {
    // Neither command reads a data set (there is none at this path) before the weights.
    for cmd in [
        &["train", "models/resnet20.slim", "--data", "mnist:no/such/data"][..],
        &["eval", "models/resnet20.slim", "--data", "mnist:no/such/data"][..],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--init", "no/such/weights.safetensors"]);
        let o = slimc(&args);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains("cannot read weights no/such/weights.safetensors"), "{}", stderr(&o));
    }
    let dir = std::env::temp_dir().join(format!("slimc-cli-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not safetensors").unwrap();
    let o = slimc(&["eval", "models/resnet20.slim", "--init", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is not a safetensors file"), "{}", stderr(&o));
    // Settings belong to --init: a run keeps its own.
    let o = slimc(&["eval", "no/such/run", "--set", "classes=3"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--set and --rounding go with --init"), "{}", stderr(&o));
    let o = slimc(&["train", "--resume", "no/such/run", "--init", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--init"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_rejects_bad_runs_and_flags() {
    let o = slimc(&["export", "no/such/run", "--config", "0.5", "--format", "onnx", "-o", "x.onnx"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no/such/run"));
    assert!(!std::path::Path::new("x.onnx").exists());
    assert_eq!(code(&slimc(&["export", "models", "--config", "0.5", "--format", "onnx"])), 2, "-o is required");
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An unreadable file is an entry of `check --json`'s document; the others are reported.
#[test]
fn check_json_reports_unreadable_files() {
    let o = slimc(&["check", "--json", "models/resnet20.slim", "no/such/file.slim", "tests/ui/unknown_op.slim"]);
    assert_eq!(code(&o), 2, "an unreadable file is an IO error");
    let files = json(&o)["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["ok"], true);
    assert_eq!(files[1]["ok"], false);
    assert!(files[1]["read_error"].as_str().unwrap().contains("no/such/file.slim"), "{}", files[1]);
    assert_eq!(files[2]["errors"][0]["code"], "E0104");
    let o = slimc(&["check", "no/such/file.slim", "models/resnet20.slim"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("resnet20: ok"), "the readable file is still checked");
}

/// Settings are checked by the compiler: an unknown one with a suggestion, and a bad value
/// reported once, where it is used, with a note that a setting gave it.
#[test]
fn settings_are_compiler_errors() {
    let o = slimc(&["check", "models/resnet20.slim", "--set", "classs=100"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("error[E0118]: no network has a parameter `classs`"), "{err}");
    assert!(err.contains("did you mean `classes`?"), "{err}");
    let o = slimc(&["space", "models/resnet20.slim", "--set", "size=true"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert_eq!(err.matches("error[").count(), 1, "one mistake, one error: {err}");
    assert!(err.contains("expected an integer, found the boolean true"), "{err}");
    assert!(err.contains("`size` is true here because it was set outside the file"), "{err}");
}

/// Enumerated flags list their values in --help and suggest on a typo.
#[test]
fn enumerated_flags_list_and_suggest_values() {
    let o = slimc(&["train", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for v in ["us", "per-dim", "cosine", "--val-images", "--val-fraction"] {
        assert!(help.contains(v), "train --help names {v}");
    }
    let o = slimc(&["train", "models/resnet20.slim", "--scheme", "uss"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("us"), "{}", stderr(&o));
    let o = slimc(&["space", "models/resnet20.slim", "--rounding", "neareast"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("did you mean `nearest`?"), "{}", stderr(&o));
    let o = slimc(&["export", "runs/none", "--config", "0.5", "--format", "tflite", "-o", "x.onnx"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("burn, safetensors, onnx"), "{}", stderr(&o));
}

/// The human-readable `space` table, whose columns fit every name (`global_avgpool`).
#[test]
fn space_table_snapshot() {
    let o = slimc(&["space", "models/resnet20.slim", "--width", "0.5"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout));
}

/// LSP messages as framed on stdio: a `Content-Length` header, a blank line, the JSON.
fn lsp_frames(messages: &[serde_json::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let body = m.to_string();
        out.extend(format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes());
    }
    out
}

fn run_lsp(input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_slimc"))
        .arg("lsp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("slimc runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn lsp_over_stdio() {
    use serde_json::json;
    let text = std::fs::read_to_string("tests/ui/channel_mismatch_add.slim").unwrap();
    let uri = "file:///t/channel_mismatch_add.slim";
    let o = run_lsp(&lsp_frames(&[
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": null, "rootUri": null, "capabilities": {}}}),
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "slimc", "version": 1, "text": text}}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": null}),
        json!({"jsonrpc": "2.0", "method": "exit", "params": null}),
    ]));
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(r#""method":"textDocument/publishDiagnostics""#) && out.contains("E0201"), "{out}");
    assert!(out.contains(r#""name":"slimc""#), "server info: {out}");

    // The client goes away without `shutdown`: one message, exit 2. Garbage: the same.
    let o = run_lsp(&lsp_frames(&[
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": null, "rootUri": null, "capabilities": {}}}),
    ]));
    assert_eq!(code(&o), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("closed the connection"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run_lsp(b"Content-Length: 5\r\n\r\nnope!");
    assert_eq!(code(&o), 2);
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1, "{}", String::from_utf8_lossy(&o.stderr));
    // Hostile frames: sizes refused before any allocation, the real cause named.
    for (frame, cause) in [
        (&b"Content-Length: 20000000000000000000\r\n\r\n"[..], "is not a byte count"),
        (b"Content-Length: 100000000000\r\n\r\n", "exceeds the limit"),
        (b"Garbage\r\n\r\n", "malformed LSP header"),
        (b"Content-Length: 2\r\n\r\n\xff\xfe", "not UTF-8"),
    ] {
        let o = run_lsp(frame);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 2, "{err}");
        assert!(err.contains(cause) && !err.contains("closed the connection"), "{err}");
    }
}

#[test]
fn warnings_show_count_and_can_be_denied() {
    let file = "tests/ui/warn_unused_binding.slim";
    let o = slimc(&["check", file]);
    assert_eq!(code(&o), 0, "warnings do not fail check");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.trim_end().ends_with("at full width, 1 warning"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning[W0301]: `extra` is never used"), "{err}");
    assert!(err.contains(&format!("warning: `{file}` has 1 warning")), "{err}");

    let j = json(&slimc(&["check", "--json", file]));
    let doc = &j["files"][0];
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["warnings"][0]["code"], "W0301");
    assert_eq!(doc["warnings"][0]["severity"], "warning");

    let o = slimc(&["check", "--deny", "warnings", file]);
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("error[W0301]") && err.contains("warnings are denied"), "{err}");
    let j = json(&slimc(&["check", "--json", "--deny", "warnings", file]));
    assert_eq!(j["files"][0]["ok"], false);
    assert_eq!(j["files"][0]["errors"][0]["code"], "W0301");
    assert_eq!(code(&slimc(&["check", "--deny", "warning", file])), 2, "a typo in --deny is a usage error");

    // The zoo has none.
    let zoo: Vec<String> =
        std::fs::read_dir("models").unwrap().map(|e| e.unwrap().path().display().to_string()).collect();
    let args: Vec<&str> = ["check", "--deny", "warnings"].into_iter().chain(zoo.iter().map(String::as_str)).collect();
    let o = slimc(&args);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty());
}
