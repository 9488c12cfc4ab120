//! A real run through the library, as `slimc train` and `slimc eval` make it: load a data
//! set, compile the network for it, create the run (checked against the data, its memory
//! estimated), train it with checkpoints, then open it again and report it: every width and the Pareto front.
//! Trains the small network of `tests/fixtures/tiny.slim` on the synthetic set committed
//! beside it (30 short epochs, about a second), into a temporary directory: from 10% (chance)
//! to about half right at full width.
//!
//! `cargo run --example start_run` (from the repository root)

use std::path::Path;

use slimc_runtime::data::{DataSpec, Holdout};
use slimc_runtime::runtime::device::{Cpu, CpuTrain};
use slimc_runtime::train::eval::{self, EvalOptions};
use slimc_runtime::train::parallel::Replica;
use slimc_runtime::train::run::{Quiet, Run, Schedule, TrainOptions};
use slimc_runtime::train::scheme::Scheme;
use slimc_runtime::train::start::{self, Setup};
use slimc_runtime::train::Sampling;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source_path = "tests/fixtures/tiny.slim";
    let spec = DataSpec::parse("mnist:tests/fixtures/data")?;
    // The data set offers its image shape and class count to the network's parameters.
    let (data, context) = start::load_data(&spec, &[], None)?;
    let source = std::fs::read_to_string(source_path)?;
    let compile = slimc_lang::Options { context, ..Default::default() };
    let net = slimc_lang::compile(&source, source_path, &compile).map_err(|d| d.render())?.remove(0);
    let options = TrainOptions {
        scheme: Scheme::Us,
        sampling: Sampling::Uniform,
        min_width: 0.25,
        random: 2,
        epochs: 30,
        batch: 32,
        lr: 0.2,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: Schedule::Cosine,
        warmup: 0.0,
        label_smoothing: 0.0,
        seed: 0,
        max_steps: None,
        val: 0,
        calibrate: 2,
        data: spec,
        // The data set's own: no augmentation for digits.
        augment: None,
        eval_resize: None,
        teacher: None,
    };
    let out = std::env::temp_dir().join(format!("slimc-example-run-{}", std::process::id()));
    let setup = Setup {
        source_path: source_path.into(),
        source,
        compile,
        options,
        holdout: Holdout::Images(64),
        out: Some(out.clone()),
        // Measured on the training images (pretrained weights would give their own).
        normalize: None,
    };
    let device = Default::default();
    let (run, dir) = Run::<CpuTrain>::create(net, &data, setup, &device)?;
    let trained = run.train(&data, dir.root(), &device, &mut Quiet, &Replica::single())?;
    for m in &trained.state.history {
        println!("epoch {}: loss {:.3}", m.epoch, m.train_loss);
    }
    // Open the run and report it as `slimc eval --pareto` does: test accuracy at the
    // scheme's Pareto widths, and the front among them.
    let loaded = eval::open::<Cpu>(dir.root(), None, &Default::default())?;
    let request = eval::Request {
        widths: None,
        configs: None,
        pareto: Some(eval::ParetoRequest::default()),
        baselines: Vec::new(),
        data: None,
        opts: EvalOptions { batch: 64, calibrate: 2 },
    };
    let report = eval::report(&loaded, &request, &Default::default())?;
    for row in &report.rows {
        println!("width {:.3}: top-1 {:.1}% at {} MACs", row.width.unwrap_or(0.0), 100.0 * row.top1, row.macs);
    }
    let front = report.pareto.expect("a Pareto document was asked for");
    println!(
        "{} of {} widths on the front; area under it {:.1}%",
        front.front.len(),
        report.rows.len(),
        100.0 * front.area
    );
    assert!(Path::new(&dir.metrics()).is_file(), "the run wrote its metrics");
    std::fs::remove_dir_all(&out)?;
    Ok(())
}
