//! Build a slimmable network from a zoo file and run one batch through it at three widths:
//! the same weights, sliced to the channels each width keeps.
//!
//! `cargo run --example widths`

use std::sync::Arc;

use burn::tensor::{Distribution, Tensor};
use slimc_lang::ir::ParamValue;
use slimc_runtime::runtime::device::Cpu;
use slimc_runtime::runtime::{calibrate, Mode, SlimNet};

fn main() {
    let source = include_str!("../models/resnet20.slim");
    // Small inputs keep the example fast: 16x16 images instead of CIFAR's 32x32.
    let options = slimc_lang::Options { settings: vec![("size".into(), ParamValue::Int(16))], ..Default::default() };
    let net = slimc_lang::compile(source, "models/resnet20.slim", &options).expect("the zoo compiles").remove(0);
    let device = Default::default();
    let model = SlimNet::<Cpu>::new(Arc::new(net), Vec::new(), 0, &device);
    let x = Tensor::<Cpu, 4>::random([8, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    for width in [1.0, 0.5, 0.25] {
        let cfg = model.uniform(width).expect("a width in (0, 1]");
        // Evaluation needs BN statistics measured at this width (here: on the batch itself).
        let stats = calibrate(&model, &cfg, [x.clone()]).expect("one calibration batch");
        let logits = model.forward(x.clone(), &cfg, Mode::Eval(&stats)).expect("a valid width").logits;
        let params = model.active_params(&cfg);
        println!("width {width}: channels {:?}, {params} parameters in use, logits {:?}", cfg.dims, logits.dims());
    }
}
