//! A run's state files against old versions and hostile edits: `tests/fixtures/run-v0` is a
//! run written by the slimc before the workspace split (its `meta.json`, weights, optimizer,
//! metrics, search and front, trained on the committed synthetic set `tests/fixtures/data`),
//! and it still resumes, evaluates, searches and exports. Seeded mutations of each state
//! file (`meta.json`, `metrics.jsonl`, `search.json`, `pareto.json`) end in one message and
//! exit 0, 1 or 2: never a panic, an abort or a hang.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proptest::prelude::*;
use serde_json::Value;

use common::scratch;

const FIXTURE: &str = "tests/fixtures/run-v0";

fn slimc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slimc")).args(args).output().expect("slimc runs")
}

/// A copy of the committed run (which is never written to) in a scratch directory.
fn copy_of_fixture(name: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let run = scratch(name).join("run");
    copy(Path::new(FIXTURE), &run);
    run
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_run_written_before_the_split_resumes_evaluates_searches_and_exports() {
    let run = copy_of_fixture("v0");
    let dir = run.display().to_string();
    let json: Value = serde_json::from_str(&ok(&slimc(&["eval", &dir, "--widths", "0.5,1.0", "--json"]))).unwrap();
    assert_eq!(json["results"].as_array().map(Vec::len), Some(2), "{json}");
    let search = run.join("search.json").display().to_string();
    let pareto = run.join("pareto.json").display().to_string();
    ok(&slimc(&["eval", &dir, "--configs", &search, "--calibrate", "1"]));
    let onnx = run.parent().unwrap().join("tiny.onnx").display().to_string();
    ok(&slimc(&["export", &dir, "--config", &format!("{pareto}#100%"), "--format", "onnx", "-o", &onnx]));
    // One reader of configuration references: every command takes every form.
    let lines = run.parent().unwrap().join("configs.txt");
    std::fs::write(&lines, "# two configurations of tiny's 2 dimensions\n0.5, 1.0\n1.0, 0.5\n").unwrap();
    let lines = lines.display().to_string();
    let second = format!("{lines}#3");
    for reference in [pareto.as_str(), &format!("{search}#50%"), &lines, &second] {
        let json: Value =
            serde_json::from_str(&ok(&slimc(&["eval", &dir, "--configs", reference, "--calibrate", "1", "--json"])))
                .unwrap();
        assert!(!json["results"].as_array().unwrap().is_empty(), "{reference}: {json}");
    }
    for reference in [format!("{pareto}#60%"), format!("{search}#50%"), second.clone()] {
        let out = run.parent().unwrap().join("one.safetensors").display().to_string();
        ok(&slimc(&["export", &dir, "--config", &reference, "--format", "safetensors", "-o", &out]));
    }
    let o = slimc(&["export", &dir, "--config", &lines, "--format", "safetensors", "-o", "x.safetensors"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("#TARGET") && err.contains("lines #2, #3"), "{err}");
    ok(&slimc(&["train", "--resume", &dir, "--epochs", "2", "--quiet"]));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "one line per epoch, the first from the old run:\n{metrics}");
    let _ = std::fs::remove_dir_all(run.parent().unwrap());
}

/// The object keys along every path of `v` (array indices dropped), sorted and each once:
/// a document's layout, whatever its values.
fn layout(v: &Value) -> Vec<String> {
    let mut all = Vec::new();
    paths(v, Vec::new(), &mut all);
    let mut keys: Vec<String> = all
        .iter()
        .map(|p| p.iter().filter(|k| k.parse::<usize>().is_err()).cloned().collect::<Vec<_>>().join("."))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Today's stored types read the committed run's files and write every field back under
/// the name it had: a renamed or removed field fails here, not in a user's old run. (A
/// change of layout bumps `slimc_runtime::format` and reads the old number explicitly.)
#[test]
fn stored_types_keep_the_layout_of_the_committed_run() {
    use slimc_runtime::format;
    use slimc_runtime::runtime::checkpoint::{self, Meta};
    use slimc_runtime::train::pareto::ParetoFile;
    use slimc_runtime::train::run::{EpochMetrics, RunState};
    use slimc_runtime::train::search::SearchState;

    let read = |file: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(Path::new(FIXTURE).join(file)).unwrap()).unwrap()
    };
    // The files carry no `format`: they were written before formats were numbered.
    let without_format = |mut v: Value| {
        v.as_object_mut().unwrap().remove("format");
        v
    };
    let stored = read("checkpoint/meta.json");
    let original: Meta = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(original.format, 1, "a meta.json without a format number has format 1");
    // Into the library's own types and back: the same fields, the same values.
    let mut meta = original.clone();
    let state = RunState::from(meta.state.clone().expect("the run's state"));
    meta.state = Some(format::run::State::from(&state));
    let again = without_format(serde_json::from_str(&serde_json::to_string(&meta).unwrap()).unwrap());
    assert_eq!(layout(&again), layout(&stored), "meta.json (with the run state)");
    assert_eq!(serde_json::from_value::<Meta>(again).unwrap(), original, "meta.json read back");
    for line in std::fs::read_to_string(Path::new(FIXTURE).join("metrics.jsonl")).unwrap().lines() {
        let stored: Value = serde_json::from_str(line).unwrap();
        let metrics = EpochMetrics::from(serde_json::from_value::<format::run::Metrics>(stored.clone()).unwrap());
        assert_eq!(serde_json::to_value(format::run::Metrics::from(&metrics)).unwrap(), stored, "metrics.jsonl");
    }

    let net = checkpoint::network(&meta, None).unwrap();
    for file in ["search.json", "pareto.json"] {
        let stored = read(file);
        let text = std::fs::read_to_string(Path::new(FIXTURE).join(file)).unwrap();
        let again = match file {
            "search.json" => serde_json::to_value(SearchState::parse(&text, &net).unwrap()).unwrap(),
            _ => serde_json::to_value(ParetoFile::parse(&text, &net).unwrap()).unwrap(),
        };
        assert_eq!(again["format"], 1, "{file}");
        assert_eq!(layout(&without_format(again)), layout(&stored), "{file}");
    }
}

/// A file from a newer slimc is refused by its format number, with the file named, and
/// nothing of the run is touched.
#[test]
fn a_newer_format_is_refused_by_its_number() {
    let cases = [
        ("checkpoint/meta.json", vec!["eval", "{dir}", "--widths", "1.0", "--calibrate", "1"]),
        ("search.json", vec!["eval", "{dir}", "--configs", "{dir}/search.json", "--calibrate", "1"]),
        (
            "pareto.json",
            vec!["export", "{dir}", "--config", "{dir}/pareto.json#100%", "--format", "onnx", "-o", "{dir}/../x.onnx"],
        ),
    ];
    for (file, args) in cases {
        let run = copy_of_fixture(&format!("format-{}", file.replace('/', "-")));
        let dir = run.display().to_string();
        let path = run.join(file);
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        doc["format"] = serde_json::json!(7);
        let edited = serde_json::to_string_pretty(&doc).unwrap();
        std::fs::write(&path, &edited).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", &dir)).collect();
        let o = slimc(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains("format version 7") && err.contains(file.rsplit('/').next().unwrap()), "{file}: {err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edited, "{file} is left as it was");
        let _ = std::fs::remove_dir_all(run.parent().unwrap());
    }
}

/// Every path to a value inside `v` (object keys and array indices), `v` itself first.
fn paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(map) => map.iter().for_each(|(k, c)| paths(c, [at.clone(), vec![k.clone()]].concat(), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .take(8)
            .for_each(|(i, c)| paths(c, [at.clone(), vec![i.to_string()]].concat(), out)),
        _ => {}
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(items) => &mut items[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

/// What a mutation puts in place of a value (or `None`: remove it).
fn replacement() -> impl Strategy<Value = Option<Value>> {
    prop::sample::select(vec![
        None,
        Some(Value::Null),
        Some(serde_json::json!(0)),
        Some(serde_json::json!(-1)),
        Some(serde_json::json!(1_000_000_000_000u64)),
        Some(serde_json::json!(1e300)),
        Some(serde_json::json!(0.5)),
        Some(serde_json::json!("")),
        Some(serde_json::json!([])),
        Some(serde_json::json!({})),
        Some(serde_json::json!(true)),
        Some(serde_json::json!([0.0, 1e9, -3])),
    ])
}

/// Applies one mutation to the JSON document `text`: the `pick`-th value replaced (or
/// removed from its object or array).
fn mutate(text: &str, pick: usize, with: Option<Value>) -> String {
    let mut doc: Value = serde_json::from_str(text).unwrap();
    let mut all = Vec::new();
    paths(&doc, Vec::new(), &mut all);
    let path = &all[pick % all.len()];
    match (with, path.split_last()) {
        (Some(value), _) => *at_mut(&mut doc, path) = value,
        (None, Some((last, parent))) => match at_mut(&mut doc, parent) {
            Value::Object(map) => {
                map.remove(last);
            }
            Value::Array(items) => {
                items.remove(last.parse::<usize>().unwrap());
            }
            _ => {}
        },
        (None, None) => doc = Value::Null,
    }
    doc.to_string()
}

/// The commands that read `file` of a run directory, each a list of arguments.
fn readers(file: &str, dir: &str) -> Vec<Vec<String>> {
    let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let search = format!("{dir}/search.json");
    let pareto = format!("{dir}/pareto.json#100%");
    match file {
        "checkpoint/meta.json" => vec![s(&["eval", dir, "--widths", "1.0", "--calibrate", "1"])],
        "metrics.jsonl" => vec![s(&["train", "--resume", dir, "--max-steps", "9", "--quiet"])],
        "search.json" => vec![s(&["eval", dir, "--configs", &search, "--calibrate", "1"])],
        _ => vec![s(&[
            "export",
            dir,
            "--config",
            &pareto,
            "--format",
            "safetensors",
            "-o",
            &format!("{dir}/../x.safetensors"),
        ])],
    }
}

fn never_panics(o: &Output, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0..=2)), "{what}: exit {:?}\n{err}", o.status.code());
    assert!(!err.contains("panicked"), "{what}:\n{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_state_files_are_refused_or_read_never_a_panic(
        which in 0..4usize,
        pick in 0..10_000usize,
        with in replacement(),
    ) {
        let file = ["checkpoint/meta.json", "metrics.jsonl", "search.json", "pareto.json"][which];
        let run = copy_of_fixture(&format!("mutate-{which}-{pick}"));
        let path = run.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = if file.ends_with(".jsonl") {
            // One line of the metrics, mutated like a JSON document.
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let at = pick % lines.len();
            lines[at] = mutate(&lines[at], pick / lines.len(), with.clone());
            lines.join("\n") + "\n"
        } else {
            mutate(&text, pick, with.clone())
        };
        std::fs::write(&path, &edited).unwrap();
        let dir = run.display().to_string();
        for args in readers(file, &dir) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            never_panics(&slimc(&args), &format!("{file} with value {pick} replaced by {with:?}"));
        }
        let _ = std::fs::remove_dir_all(run.parent().unwrap());
    }
}
