//! `cargo bench --bench conv_kernels`: the im2col + gemm conv kernels on the convolutions
//! of a CIFAR ResNet-20 stage (batch 128, full width), forward and both gradients, in
//! GMAC/s. The median of `RUNS` (default 5) runs per kernel.

use std::time::Instant;

use slimc_runtime::runtime::kernels::{forward, input_grad, weight_grad, Epilogue, Geometry};

fn main() {
    let runs = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5usize);
    let conv = |c: usize, o: usize, hw: usize, stride: usize, k: usize| Geometry {
        batch: 128,
        in_c: c,
        in_hw: [hw, hw],
        out_c: o,
        kernel: [k, k],
        out_hw: [hw / stride, hw / stride],
        stride: [stride, stride],
        padding: [k / 2, k / 2],
        dilation: [1, 1],
        groups: 1,
    };
    let cases = [
        ("stem 3->16 @32", conv(3, 16, 32, 1, 3)),
        ("stage1 16->16 @32", conv(16, 16, 32, 1, 3)),
        ("stage2 16->32 /2", conv(16, 32, 32, 2, 3)),
        ("stage2 32->32 @16", conv(32, 32, 16, 1, 3)),
        ("stage3 64->64 @8", conv(64, 64, 8, 1, 3)),
        ("1x1 64->64 @8", conv(64, 64, 8, 1, 1)),
    ];
    println!("{:<20} {:>10} {:>10} {:>10}   (GMAC/s)", "conv", "forward", "dweight", "dinput");
    for (name, g) in cases {
        let x: Vec<f32> = (0..g.batch * g.in_c * g.in_hw[0] * g.in_hw[1]).map(|i| (i % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|i| (i % 7) as f32 * 0.1).collect();
        let dy: Vec<f32> = (0..g.batch * g.out_c * g.out_hw[0] * g.out_hw[1]).map(|i| (i % 5) as f32 * 0.1).collect();
        let macs = (g.batch * g.out_c * g.out_hw[0] * g.out_hw[1] * g.weight_len() / g.out_c) as f64;
        let rate = |f: &dyn Fn() -> Vec<f32>| {
            let mut times: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(f());
                    t.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            macs / times[runs / 2] / 1e9
        };
        println!(
            "{name:<20} {:>10.1} {:>10.1} {:>10.1}",
            rate(&|| forward(&g, &x, &w, Epilogue::default())),
            rate(&|| weight_grad(&g, &x, &dy)),
            rate(&|| input_grad(&g, &w, &dy))
        );
    }
}
