//! A custom training loop on the library API: the US-Nets sandwich rule (largest,
//! smallest and random widths each step, inplace distillation) on synthetic data.
//!
//! `cargo run --example custom_training`

use std::sync::Arc;

use burn::optim::SgdConfig;
use burn::tensor::{Distribution, Int, Tensor};
use rand::SeedableRng;
use slimc_lang::ir::ParamValue;
use slimc_runtime::runtime::device::CpuTrain;
use slimc_runtime::runtime::SlimNet;
use slimc_runtime::train::parallel::Replica;
use slimc_runtime::train::{step, Sandwich, StepOptions};

fn main() {
    let source = include_str!("../models/resnet20.slim");
    let settings = vec![("size".into(), ParamValue::Int(8)), ("classes".into(), ParamValue::Int(4))];
    let options = slimc_lang::Options { settings, ..Default::default() };
    let net = slimc_lang::compile(source, "models/resnet20.slim", &options).expect("the zoo compiles").remove(0);
    let device = Default::default();
    let mut model = SlimNet::<CpuTrain>::new(Arc::new(net), Vec::new(), 0, &device);
    let mut optim = SgdConfig::new().init();
    let (sandwich, mut rng) = (Sandwich::default(), rand::rngs::StdRng::seed_from_u64(0));
    let opts = StepOptions { distill: true, lr: 0.05, weight_decay: 5e-4, label_smoothing: 0.0 };
    // One replica: `step` averages nothing (several devices pass theirs, see `parallel`).
    let one_device = Replica::single();
    // One fixed batch: the loss must fall as the network learns it.
    let x = Tensor::<CpuTrain, 4>::random([16, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<CpuTrain, 1, Int>::random([16], Distribution::Uniform(0.0, 4.0), &device);
    for i in 0..20 {
        let widths = sandwich.widths(&model, &mut rng).expect("widths of the network");
        let (next, loss) =
            step(model, &mut optim, x.clone(), y.clone(), &widths, &opts, &one_device).expect("a training step");
        model = next;
        if i % 5 == 0 || i == 19 {
            println!("step {i:>2}: full-width loss {:.4}", loss.read());
        }
    }
}
