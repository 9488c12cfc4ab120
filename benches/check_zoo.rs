//! `cargo bench --bench check_zoo`: time to compile (parse, resolve, elaborate, solve
//! channels, derive the search space, validate) each zoo model, as `slimc check` does.
//! Reports the median of repeated runs per model and the total for the whole zoo.

use std::time::{Duration, Instant};

fn main() {
    let mut paths: Vec<_> =
        std::fs::read_dir("models").expect("run from the repository root").map(|e| e.unwrap().path()).collect();
    paths.sort();
    let runs = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(50usize);
    let mut total = Duration::ZERO;
    println!("{:<22} {:>7} {:>12} {:>12}", "model", "layers", "median", "min");
    for path in &paths {
        let src = std::fs::read_to_string(path).unwrap();
        let shown = path.display().to_string();
        let mut times = Vec::with_capacity(runs);
        let mut layers = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let nets = slimc_lang::compile(&src, &shown, &slimc_lang::Options::default()).expect("zoo compiles");
            times.push(t.elapsed());
            layers = nets[0].layers.len();
            std::hint::black_box(nets);
        }
        times.sort();
        let median = times[runs / 2];
        total += median;
        let name = path.file_stem().unwrap().to_string_lossy();
        println!(
            "{name:<22} {layers:>7} {:>10.3}ms {:>10.3}ms",
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3
        );
    }
    println!("{:<22} {:>7} {:>10.3}ms", "whole zoo", "", total.as_secs_f64() * 1e3);
}
