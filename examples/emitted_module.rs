//! The Rust source `slimc emit models/resnet20.slim` writes, used in a plain Burn program:
//! no slimc at run time, only the generated module (here the copy the tests keep in
//! `tests/emitted/`), initialised and run at full width and at half width.
//!
//! `cargo run --example emitted_module`

#[allow(dead_code)]
#[rustfmt::skip]
#[path = "../tests/emitted/resnet20.rs"]
mod resnet20;

use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor};

fn main() {
    let device = Default::default();
    let model = resnet20::Resnet20::<Flex>::init(&device);
    let x = Tensor::<Flex, 4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let full: Vec<usize> = resnet20::BASE_WIDTHS.to_vec();
    let half: Vec<usize> = full.iter().map(|&c| c / 2).collect();
    for (name, widths) in [("full", &full), ("half", &half)] {
        let logits = model.forward(x.clone(), widths);
        println!("{name} width {widths:?}: logits {:?}", logits.dims());
    }
}
