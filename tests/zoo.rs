//! The model zoo against published numbers (docs/design.md §7) and the search-space
//! conventions of the reference implementations.

mod common;

use slimc_lang::cost::cost;
use slimc_lang::ir::{Network, Op, Rounding, Section, Width};
use slimc_lang::{compile, Options};

fn load_with(name: &str, options: &Options) -> Network {
    let path = format!("models/{name}.slim");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match compile(&src, &path, options) {
        Ok(mut nets) => {
            assert_eq!(nets.len(), 1, "{path} holds one network");
            nets.remove(0)
        }
        Err(d) => panic!("{path} does not check:\n{}", d.render()),
    }
}

fn load(name: &str) -> Network {
    load_with(name, &Options::default())
}

/// (params, MACs) at full width.
fn full(net: &Network) -> (u64, u64) {
    let (c, _) = cost(net, &net.full_width());
    (c.params, c.macs)
}

fn macs_at(net: &Network, w: f64) -> u64 {
    let dims = net.decode_uniform(w, net.rounding).expect("valid width");
    cost(net, &dims).0.macs
}

use common::ZOO;

#[test]
fn every_zoo_model_checks_and_validates() {
    let mut files: Vec<String> = std::fs::read_dir("models")
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut zoo: Vec<String> = ZOO.iter().map(|s| s.to_string()).collect();
    zoo.sort();
    assert_eq!(files, zoo, "models/ holds exactly the zoo");
    for name in ZOO {
        let net = load(name);
        assert_eq!(net.name, *name);
        slimc_lang::ir::validate(&net).unwrap();
        assert!(net.space.search_dim() > 0, "{name} has something to slim");
        // Every zoo network takes classes, in_channels and size (docs/design.md §6).
        for p in ["classes", "in_channels", "size"] {
            assert!(net.params.iter().any(|(k, _)| k == p), "{name} lacks parameter {p}");
        }
        // The classifier output is never slimmed.
        assert!(matches!(net.layers[net.output].width, Width::Fixed(_)), "{name}: output slimmable");
    }
}

/// ViT-B/16 (torchvision) and DeiT-Ti (timm): exact parameters and conv + linear MACs at
/// 224x224 (197 tokens: 196 patches and the class token; the q, k, v, output and MLP
/// linears are per-position 1x1 convs), attention's two products counted apart (fvcore's
/// 17.56G for ViT-B/16 is the sum). Heads slim whole: every block's q/k/v dimension is a
/// multiple of the 64-wide head at every width.
#[test]
fn vit_and_deit_match_the_references_exactly() {
    for (name, params, macs, attention, heads) in [
        ("vit_b_16", 86_567_656, 16_848_500_736, 715_327_488, 12),
        ("deit_tiny", 5_717_416, 1_074_851_328, 178_831_872, 3),
    ] {
        let net = load(name);
        assert_eq!(full(&net), (params, macs), "{name}");
        assert_eq!(slimc_lang::cost::attention_macs(&net, &net.full_width()), attention, "{name}");
        let attends: Vec<_> = net.layers.iter().filter(|(_, l)| matches!(l.op, Op::Attend { .. })).collect();
        assert_eq!(attends.len(), 12, "{name}");
        // The embedding, then per block its heads and its MLP.
        assert_eq!(net.space.search_dim(), 1 + 2 * 12, "{name}");
        for (_, l) in attends {
            let Width::Dim(d) = l.width else { panic!("{name}: {} is slimmable", l.name) };
            assert_eq!(net.space.dims[d].base, heads * 64, "{name}");
            assert_eq!(net.space.dims[d].divisor, 64, "{name}: whole heads");
        }
        // A third of the width keeps a third of the heads.
        let dims = net.decode_uniform(1.0 / 3.0 + 1e-9, net.rounding).unwrap();
        let shapes = net.layer_shapes(&dims);
        let (id, _) = net.layers.iter().find(|(_, l)| matches!(l.op, Op::Attend { .. })).unwrap();
        assert_eq!(shapes[id.index()].out, heads / 3 * 64, "{name}");
    }
}

/// Swin-T (torchvision): exact parameters (the relative position bias tables, 169 entries
/// per head, included) and conv + linear MACs at 224x224; attention's products apart, each
/// token attending to the 49 of its window: `2·H·W·49·C` per block (their sum with the
/// MACs is the 4.49G of the paper's 4.5G FLOPs). Every block attends in 7x7 windows,
/// shifted by 3 in every second one; its heads slim whole (32 wide) and its bias table
/// keeps a row per active head.
#[test]
fn swin_matches_torchvision_exactly() {
    use slimc_lang::ir::{Heads, Weights, Window};
    let net = load("swin_t");
    assert_eq!(full(&net), (28_288_354, 4_350_425_088));
    let windows = 2 * 49 * (2 * 56 * 56 * 96 + 2 * 28 * 28 * 192 + 6 * 14 * 14 * 384 + 2 * 7 * 7 * 768);
    assert_eq!(slimc_lang::cost::attention_macs(&net, &net.full_width()), windows);
    let attends: Vec<_> = net.layers.iter().filter(|(_, l)| matches!(l.op, Op::Attend { .. })).collect();
    assert_eq!(attends.len(), 12);
    let half = net.layer_shapes(&net.decode_uniform(0.5, net.rounding).unwrap());
    for (k, (id, l)) in attends.into_iter().enumerate() {
        let Op::Attend { heads, share, window } = l.op else { unreachable!() };
        assert_eq!((heads, share), (Heads::Width(32), 1), "{}", l.name);
        assert_eq!(window, Some(Window { size: 7, shift: if k % 2 == 0 { 0 } else { 3 } }), "{}", l.name);
        let Width::Dim(d) = l.width else { panic!("{} is slimmable", l.name) };
        assert_eq!(net.space.dims[d].divisor, 32, "{}: whole heads", l.name);
        let s = half[id.index()];
        assert_eq!(l.op.weights(s), Weights::Table { shape: [(s.out / 32) as usize, 169] }, "{}", l.name);
    }
}

/// Grouped-query attention: the key/value heads are the search dimension and the query
/// heads follow, `heads / kv_heads` per key/value head, whole heads at every width. With
/// `fixed_heads` the head count stays and every head narrows.
#[test]
fn grouped_query_and_fixed_head_attention_slim_as_declared() {
    let src = "network toy(classes = 10, in_channels = 3, size = 16) {
        input in_channels x size x size
        stem  = conv(96, k=4, stride=4) -> layernorm
        stage = gqa(96) -> narrow(96)
        head  = avgpool -> linear(classes)
    }
    block gqa(c) {
        q   = in -> conv(c, k=1)
        k   = in -> conv(c / 4, k=1)
        v   = in -> conv(c / 4, k=1)
        out = in + attend(q, k, v, heads=8, kv_heads=2) -> conv(in.c, k=1)
    }
    block narrow(c) {
        q   = in -> conv(c, k=1)
        k   = in -> conv(c, k=1)
        v   = in -> conv(c, k=1)
        out = in + attend(q, k, v, heads=4, fixed_heads=true) -> conv(in.c, k=1)
    }";
    let net = compile(src, "toy.slim", &Options::default()).unwrap_or_else(|d| panic!("{}", d.render())).remove(0);
    let attends: Vec<_> =
        net.layers.iter().filter(|(_, l)| matches!(l.op, Op::Attend { .. })).map(|(id, _)| id).collect();
    for w in [1.0, 0.75, 0.5, 0.3] {
        let shapes = net.layer_shapes(&net.decode_uniform(w, net.rounding).unwrap());
        let channels = |id: slimc_lang::ir::LayerId, input: usize| shapes[net.layers[id].inputs[input].index()].out;
        // q has 4 times k's and v's channels, in whole heads of 12.
        let (q, k, v) = (channels(attends[0], 0), channels(attends[0], 1), channels(attends[0], 2));
        assert_eq!((q, v), (4 * k, k), "at {w}");
        assert_eq!(k % 12, 0, "at {w}: whole key/value heads");
        // 4 heads at every width.
        let q = channels(attends[1], 0);
        assert_eq!(q % 4, 0, "at {w}");
        assert_eq!(slimc_lang::ir::Heads::Count(4).split(q), (4, q / 4));
    }
    // One search dimension for the key/value heads (q follows), one for the fixed-count heads.
    let half = net.layer_shapes(&net.decode_uniform(0.5, net.rounding).unwrap());
    assert_eq!(half[net.layers[attends[0]].inputs[1].index()].out, 12, "half of 2 key/value heads of 12");
}

/// ConvNeXt-T and VGG-16: torchvision's exact parameters and conv+linear MACs at 224x224
/// (ConvNeXt's per-position linears are 1x1 convs, its layer scales C parameters and no
/// MACs; VGG's first classifier layer reads the flattened 7x7 map).
#[test]
fn convnext_and_vgg_match_torchvision_exactly() {
    for (name, params, macs) in [("convnext_tiny", 28_589_128, 4_455_531_264), ("vgg16", 138_357_544, 15_470_264_320)] {
        let net = load(name);
        assert_eq!(net.input, [3, 224, 224]);
        assert_eq!(full(&net), (params, macs), "{name}");
    }
    // VGG's classifier: 512·7·7 = 25,088 inputs at full width, and the flatten is slimmable
    // with the last conv: half the channels, half the features.
    let net = load("vgg16");
    let linear = net.layers.iter().find(|(_, l)| matches!(l.op, Op::Linear { .. })).unwrap().0;
    let dims = net.decode_uniform(0.5, net.rounding).unwrap();
    assert_eq!(net.layer_shapes(&net.full_width())[linear.index()].in_c, 25_088);
    assert_eq!(net.layer_shapes(&dims)[linear.index()].in_c, 12_544);
}

/// The U-Net checks, costs and runs forward at any width: the output is a per-pixel map of
/// class scores at the input's size.
#[test]
fn unet_runs_forward_at_any_width() {
    use burn::tensor::{Distribution, Tensor};
    use slimc_runtime::runtime::device::Cpu;
    use slimc_runtime::runtime::{Mode, SlimNet};
    let net = std::sync::Arc::new(load("unet"));
    assert_eq!(net.layers[net.output].hw, [64, 64]);
    let slim = SlimNet::<Cpu>::new(net.clone(), Vec::new(), 3, &Default::default());
    let x = Tensor::<Cpu, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &Default::default());
    let mut last = u64::MAX;
    for w in [1.0, 0.6, 0.25] {
        let cfg = slim.uniform(w).unwrap();
        let macs = cost(&net, &cfg.dims).0.macs;
        assert!(macs < last, "narrower is cheaper");
        last = macs;
        let y = slim.forward_map(x.clone(), &cfg, Mode::Train).unwrap().logits;
        assert_eq!(y.dims(), [2, 2, 64, 64], "at {w}");
        // Class logits are refused with a clear error, not a panic.
        let e = slim.forward(x.clone(), &cfg, Mode::Train).err().unwrap();
        assert!(e.to_string().contains("outputs a 2x64x64 map"), "{e}");
    }
}

/// torchvision at 224x224, full width: exact parameter counts and conv+linear MACs.
#[test]
fn imagenet_models_match_torchvision_exactly() {
    let published: &[(&str, u64, f64)] = &[
        ("resnet18", 11_689_512, 1.814e9),
        ("resnet50", 25_557_032, 4.089e9),
        ("mobilenet_v2", 3_504_872, 300.8e6),
        ("mobilenet_v3_large", 5_483_032, 216.6e6),
        ("mobilenet_v3_small", 2_542_856, 56.5e6),
        ("efficientnet_b0", 5_288_548, 385.8e6),
        ("regnetx_400mf", 5_495_976, 413.8e6),
        ("regnety_400mf", 4_344_144, 401.8e6),
        ("shufflenet_v2", 2_278_604, 144.9e6),
        ("mnasnet", 4_383_312, 314.4e6),
    ];
    for &(name, params, macs) in published {
        let net = load(name);
        assert_eq!(net.input, [3, 224, 224]);
        let (p, m) = full(&net);
        assert_eq!(p, params, "{name} params");
        // The published MACs carry four significant digits.
        let unit = if macs >= 1e9 { 1e6 } else { 1e5 };
        assert_eq!((m as f64 / unit).round(), (macs / unit).round(), "{name} MACs: {m}");
    }
    // torchvision's other ResNets.
    for (name, params) in [("resnet34", 21_797_672), ("resnet101", 44_549_160), ("resnet152", 60_192_808)] {
        assert_eq!(full(&load(name)).0, params, "{name} params");
    }
}

#[test]
fn mobilenet_v1_width_table() {
    let net = load("mobilenet_v1");
    assert_eq!(net.rounding, Rounding::MakeDivisible(8));
    for (w, published) in [(1.0, 569), (0.75, 325), (0.5, 150), (0.25, 41)] {
        let ours = macs_at(&net, w);
        // US-Nets' profiler also counts the final 7x7 average pool (one MAC per input
        // element), which docs/design.md §5 leaves out; with it, every entry matches exactly.
        let dims = net.decode_uniform(w, net.rounding).unwrap();
        let shapes = net.layer_shapes(&dims);
        let pool: u64 = net
            .layers
            .iter()
            .filter(|(_, l)| l.op == Op::GlobalAvgPool)
            .map(|(id, l)| {
                let input = net.layers[l.inputs[0]].hw;
                u64::from(shapes[id.index()].in_c) * u64::from(input[0]) * u64::from(input[1])
            })
            .sum();
        let m = (ours + pool) as f64 / 1e6;
        assert_eq!(m.round() as u64, published, "MobileNet v1 at {w}: {m}M MACs with the pool");
        assert!((ours as f64 / 1e6 - published as f64).abs() < 0.51, "MobileNet v1 at {w}: {ours} MACs");
    }
}

#[test]
fn cifar_resnets() {
    let net = load("resnet20");
    let (params, macs) = full(&net);
    assert_eq!((macs as f64 / 1e5).round(), 406.0, "ResNet-20 is about 40.6M MACs: {macs}");
    assert_eq!((params as f64 / 1e4).round(), 27.0, "ResNet-20 has 0.27M params: {params}");
    // The stem and stage 1's block outputs share one width (option-A shortcuts).
    let stem = net.layers.iter().find(|(_, l)| l.name == "stem.conv1").unwrap().1;
    let out = net.layers.iter().find(|(_, l)| l.name == "stage1.2.main.conv2").unwrap().1;
    assert_eq!(stem.width, Width::Dim(0));
    assert_eq!(out.width, Width::Dim(0));
    // One shared width per stage plus one inner width per block: 3 + 9.
    assert_eq!(net.space.search_dim(), 12);
    // Joslim's memory objective: the parameters plus the largest working set, a stage-1
    // residual add (two 16x32x32 inputs and its output), in f32 bytes.
    assert_eq!(slimc_lang::cost::peak_memory(&net, &net.full_width()), 4 * (params + 3 * 16 * 32 * 32));
    assert_eq!(
        slimc_lang::ir::dump::channel_space(&net.space.channel_space()),
        "[16, [16, 16, 16], [32, 32, 32, 32], [64, 64, 64, 64]]"
    );
    // Zero-padded shortcuts bound stage widths from below by their input's.
    assert_eq!(net.space.dims[4].at_least, vec![Width::Dim(0)]);
    for (name, blocks) in [("resnet32", 5), ("resnet44", 7), ("resnet56", 9)] {
        let net = load(name);
        assert_eq!(net.space.search_dim(), 3 + 3 * blocks, "{name}");
    }
}

#[test]
fn joslim_conventions() {
    // A bottleneck's two inner convs are one dimension.
    let net = load("resnet50");
    let w = |n: &str| net.layers.iter().find(|(_, l)| l.name == n).unwrap_or_else(|| panic!("{n}")).1.width.clone();
    assert_eq!(w("stage2.1.main.conv1"), w("stage2.1.main.conv2"));
    assert_ne!(w("stage2.1.main.conv1"), w("stage2.1.main.conv3"));
    // 1 stem + 4 stage widths + 16 blocks.
    assert_eq!(net.space.search_dim(), 21);
    // MobileNetV2's last 1x1 conv and the classifier are never slimmed.
    let net = load("mobilenet_v2");
    let last_conv = net.layers.iter().filter(|(_, l)| matches!(l.op, Op::Conv { .. })).last().unwrap().1;
    assert_eq!(last_conv.width, Width::Fixed(1280));
    assert_eq!(net.layers[net.output].width, Width::Fixed(1000));
    // Dimensions are ordered stem, then per stage with the shared width first.
    let sections: Vec<Section> = net.space.dims.iter().map(|d| d.section).collect();
    let mut sorted = sections.clone();
    sorted.sort();
    assert_eq!(sections, sorted);
}

#[test]
fn group_widths_divide_regnet_dimensions() {
    let net = load("regnetx_400mf");
    for (id, l) in net.layers.iter() {
        if let Op::Conv { groups: slimc_lang::ir::Groups::Width(gw), .. } = l.op {
            let Width::Dim(d) = l.width else { panic!("{} not a dimension", l.name) };
            assert_eq!(net.space.dims[d].divisor % gw, 0);
            // The group conv's input and output are one width.
            assert_eq!(net.layers[net.layers[id].inputs[0]].width, l.width);
        }
    }
    for w in [0.25, 0.3, 0.5, 0.77] {
        let dims = net.decode_uniform(w, net.rounding).unwrap();
        for (s, (_, l)) in net.layer_shapes(&dims).iter().zip(net.layers.iter()) {
            if matches!(l.op, Op::Conv { .. }) {
                assert_eq!(s.in_c % s.groups, 0, "{} at {w}", l.name);
                assert_eq!(s.out % s.groups, 0, "{} at {w}", l.name);
            }
        }
    }
}

/// At any width, every concat/split/shuffle/add stays consistent.
#[test]
fn decoded_widths_are_consistent_everywhere() {
    for name in ZOO {
        let net = load(name);
        for w in [0.25, 0.35, 0.5, 0.6, 0.75, 1.0] {
            let dims = net.decode_uniform(w, net.rounding).unwrap();
            let shapes = net.layer_shapes(&dims);
            for (id, l) in net.layers.iter() {
                let s = shapes[id.index()];
                assert!(s.out >= 1 && s.in_c >= 1, "{name} {} at {w}", l.name);
                let ins: Vec<u32> = l.inputs.iter().map(|i| shapes[i.index()].out).collect();
                match &l.op {
                    Op::Add | Op::Mul => assert!(ins.iter().all(|&c| c == s.out), "{name} {} at {w}: {ins:?}", l.name),
                    Op::Concat => assert_eq!(ins.iter().sum::<u32>(), s.out, "{name} {}", l.name),
                    Op::Split { parts, .. } | Op::Shuffle { groups: parts } => {
                        assert_eq!(s.in_c % parts, 0, "{name} {} at {w}", l.name)
                    }
                    Op::Conv { groups: slimc_lang::ir::Groups::Depthwise, .. } => assert_eq!(s.in_c, s.out),
                    Op::ZeroPad => assert!(s.out >= s.in_c, "{name} {} at {w}", l.name),
                    Op::Flatten => {
                        let [h, w] = net.layers[l.inputs[0]].hw;
                        assert_eq!(s.out, s.in_c * h * w, "{name} {}: a flatten has C·H·W features", l.name)
                    }
                    _ => {}
                }
            }
            if w == 1.0 {
                assert_eq!(dims, net.full_width());
            }
        }
    }
}

#[test]
fn set_retargets_a_network() {
    let options = Options {
        settings: vec![
            ("classes".into(), slimc_lang::ir::ParamValue::Int(100)),
            ("size".into(), slimc_lang::ir::ParamValue::Int(64)),
        ],
        ..Options::default()
    };
    let net = load_with("resnet18", &options);
    assert_eq!(net.layers[net.output].channels, 100);
    assert_eq!(net.input, [3, 64, 64]);
    let fm = load_with(
        "resnet20",
        &Options {
            settings: vec![
                ("in_channels".into(), slimc_lang::ir::ParamValue::Int(1)),
                ("size".into(), slimc_lang::ir::ParamValue::Int(28)),
            ],
            ..Options::default()
        },
    );
    assert_eq!(fm.input, [1, 28, 28]);
}

#[test]
fn rounding_override() {
    let options = Options { rounding: Some(Rounding::Nearest), ..Options::default() };
    let net = load_with("resnet20", &options);
    assert_eq!(net.rounding, Rounding::Nearest);
    // 16 x 0.3 = 4.8: floor gives 4, nearest 5.
    assert_eq!(net.decode_uniform(0.3, net.rounding).unwrap()[0], 5);
    assert_eq!(load("resnet20").decode_uniform(0.3, Rounding::Floor).unwrap()[0], 4);
}

#[test]
fn resnet20_search_space_snapshot() {
    insta::assert_snapshot!(slimc_lang::ir::dump::dump(&load("resnet20")));
}

#[test]
fn shufflenet_space_snapshot() {
    let net = load("shufflenet_v2");
    let head: String = slimc_lang::ir::dump::dump(&net).lines().take(30).collect::<Vec<_>>().join("\n");
    insta::assert_snapshot!(head);
}

/// Pool output sizes against PyTorch's: `torch.nn.functional.max_pool2d(x, k, s, p,
/// ceil_mode=…)` on an `H`×`H` map gave these (PyTorch 2.x, including the case where the
/// last ceil window would start in the right padding and is dropped: 5, k=2, s=2, p=1).
#[test]
fn pool_sizes_follow_pytorch_ceil_mode() {
    // (H, k, s, p, ceil_mode size, floor size)
    let cases = [
        (8, 3, 2, 0, 4, 3),
        (9, 3, 2, 1, 5, 5),
        (5, 2, 2, 1, 3, 3),
        (16, 3, 2, 1, 9, 8),
        (7, 3, 2, 0, 3, 3),
        (6, 3, 3, 1, 3, 2),
    ];
    for (h, k, s, p, ceil, floor) in cases {
        for (mode, want) in [("true", ceil), ("false", floor)] {
            for op in ["maxpool", "avgpool"] {
                let src = format!(
                    "network n(classes = 4) {{ input 1 x {h} x {h}\n stem = conv(4, k=1) -> {op}(k={k}, stride={s}, padding={p}, ceil_mode={mode})\n head = avgpool -> linear(classes) }}"
                );
                let net = slimc_lang::compile(&src, "pool.slim", &Options::default()).map_err(|d| d.render()).unwrap();
                let pool = net.iter().flat_map(|n| n.layers.iter()).find(|(_, l)| l.op.kind() == op).unwrap().1;
                assert_eq!(pool.hw, [want, want], "{op} H={h} k={k} s={s} p={p} ceil_mode={mode}");
            }
        }
    }
}
