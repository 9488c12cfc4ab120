//! Compile a `.slim` source with the library and print its search space: every search
//! dimension, the layers whose width it sets, and the channels and MACs at a few widths.
//!
//! `cargo run --example search_space`

const SOURCE: &str = r#"
network tiny_resnet(classes = 10, in_channels = 3, size = 32) {
    input in_channels x size x size
    stem  = conv(16, k=3) -> bn -> relu
    stage = basic(16) * 2
    stage = basic(32, stride=2) -> basic(32)
    head  = avgpool -> linear(classes)
}

block basic(c, stride = 1) {
    main = in -> conv(c, k=3, stride=stride) -> bn -> relu -> conv(c, k=3) -> bn
    skip = if stride == 1 && in.c == c { in } else { in -> conv(c, k=1, stride=stride) -> bn }
    out  = relu(main + skip)
}
"#;

fn main() {
    let networks = match slimc_lang::compile(SOURCE, "tiny_resnet.slim", &slimc_lang::Options::default()) {
        Ok(nets) => nets,
        Err(diagnostics) => {
            eprint!("{}", diagnostics.render());
            std::process::exit(1);
        }
    };
    for net in &networks {
        let space = &net.space;
        println!("network {}: {} search dimensions", net.name, space.search_dim());
        println!("channel_space {}", slimc_lang::ir::dump::channel_space(&space.channel_space()));
        for (i, dim) in space.dims.iter().enumerate() {
            let layers: Vec<&str> = dim.layers.iter().map(|l| net.layers[*l].name.as_str()).collect();
            println!("  dim {i}: {} channels at full width, sets {}", dim.base, layers.join(", "));
        }
        for width in [1.0, 0.5, 0.25] {
            let channels = net.decode_uniform(width, net.rounding).expect("a width in (0, 1]");
            let (cost, _) = slimc_lang::cost::cost(net, &channels);
            println!("  width {width}: channels {channels:?}, {} MACs, {} params", cost.macs, cost.params);
        }
    }
}
