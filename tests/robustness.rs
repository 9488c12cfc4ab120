//! Whatever the bytes, compiling answers with networks or diagnostics: never a panic,
//! a stack overflow or a hang; whatever compiles, `slimc emit` writes. Mutations of zoo
//! files, and hand-made hostile inputs.

mod common;

use common::mutate::{apply, edit, zoo_sources};
use proptest::prelude::*;
use slimc_lang::{compile_bytes, Options};

/// Compiles and, on success, exercises decode and cost at an odd width and emits Rust
/// (which the emitter parses back before printing).
fn run(bytes: &[u8]) {
    if let Ok(nets) = compile_bytes(bytes, "fuzz.slim", &Options::default()) {
        for net in nets {
            let dims = net.decode_uniform(0.37, net.rounding).unwrap();
            let _ = slimc_lang::cost::cost(&net, &dims);
            // The refusals: two names that become the same Rust identifier, and a network
            // whose output is a map (the U-Net's).
            if let Err(e) = slimc_lang::emit::emit(&net, "fuzz.slim") {
                let e = e.to_string();
                assert!(e.contains("rename a binding") || e.contains("outputs a"), "{e}");
            }
        }
    } else if let Err(d) = compile_bytes(bytes, "fuzz.slim", &Options::default()) {
        assert!(!d.items.is_empty(), "an error result carries diagnostics");
        let _ = d.render();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_zoo_files_never_panic(which in 0..64usize, edits in prop::collection::vec(edit(), 1..6)) {
        // The zoo, and the corners of every op in one network.
        let mut zoo = zoo_sources();
        zoo.push(std::fs::read("tests/edge_cases.slim").unwrap());
        let src = &zoo[which % zoo.len()];
        run(&apply(src, &edits));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        run(&bytes);
    }

    /// Any nesting depth of brackets around a kernel tuple, a call or an expression parses
    /// (in linear time) up to the limit and is error E0002 past it.
    #[test]
    fn any_nesting_depth_parses_or_is_the_nesting_error(depth in 0..60usize, form in 0..3usize) {
        let open = "(".repeat(depth);
        let close = ")".repeat(depth);
        let body = match form {
            0 => format!(" stem = conv(16, k={open}(3, 3){close}) -> bn"),
            1 => format!(" stem = {open}conv(16){close} -> bn"),
            _ => format!(" c = {open}8 + 8{close}\n stem = conv(c) -> bn"),
        };
        let src = net(&body, "");
        match compile_bytes(src.as_bytes(), "t", &Options::default()) {
            Ok(nets) => prop_assert_eq!(nets.len(), 1),
            Err(d) => {
                prop_assert!(depth + 3 > slimc_lang::syntax::MAX_NESTING, "depth {}: {}", depth, d.render());
                prop_assert!(d.items.iter().any(|i| i.code == "E0002"), "{}", d.render());
            }
        }
    }
}

fn net(body: &str, blocks: &str) -> String {
    format!("network t(classes = 10, in_channels = 3, size = 32) {{\n input in_channels x size x size\n{body}\n head = avgpool -> linear(classes)\n}}\n{blocks}")
}

fn fails_with(src: &str, code: &str) {
    match compile_bytes(src.as_bytes(), "t.slim", &Options::default()) {
        Ok(_) => panic!("compiled cleanly: {}", &src[..src.len().min(200)]),
        Err(d) => assert!(d.items.iter().any(|i| i.code == code), "expected {code}, got:\n{}", d.render()),
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("network t() {{ input 3 x 8 x 8 stem = conv({}16{}) }}", "(".repeat(10_000), ")".repeat(10_000));
    fails_with(&deep, "E0002");
    let braces = format!("network t() {{ input 3 x 8 x 8 stem = {}", "if true { ".repeat(10_000));
    fails_with(&braces, "E0002");
    let unary = format!("network t() {{ input 3 x 8 x 8 stem = conv({}16) }}", "-".repeat(10_000));
    fails_with(&unary, "E0001");
    let long = net(&format!(" stem = conv(16){}", " -> bn".repeat(5_000)), "");
    fails_with(&long, "E0003");
    let sum = net(&format!(" x = 1{}\n stem = conv(16)", " + 1".repeat(100_000)), "");
    fails_with(&sum, "E0003");
}

#[test]
fn absurd_sizes_are_errors_with_limits() {
    fails_with(&net(" stem = conv(1000000000, k=3)", ""), "E0117");
    fails_with(&net(" stem = conv(16) * 1000000", ""), "E0117");
    fails_with(&net(" stem = (conv(16) * 1000) * 1000", ""), "E0117");
    fails_with("network t() { input 3 x 100000000 x 100000000 }", "E0117");
    fails_with(&net(" stem = conv(16, k=1000000)", ""), "E0117");
    fails_with(&net(" stem = conv(99999999999999999999999999)", ""), "E0004");
    fails_with(&net(" stem = conv(9223372036854775807 + 1)", ""), "E0116");
    // Doubling block chains blow up exponentially; the layer limit stops them.
    let mut blocks = String::from("block b0(c) { out = in -> bn }\n");
    for i in 1..40 {
        blocks += &format!("block b{i}(c) {{ out = in -> b{}(c) -> b{}(c) }}\n", i - 1, i - 1);
    }
    fails_with(&net(" stem = conv(16) -> b39(16)", &blocks), "E0117");
}

#[test]
fn recursion_is_reported() {
    fails_with(&net(" stem = conv(16) -> r(16)", "block r(c) { out = in -> r(c) }"), "E0108");
    fails_with(
        &net(
            " stem = conv(16) -> a(16)",
            "block a(c) { out = in -> b(c) }\nblock b(c) { out = in -> c3(c) }\nblock c3(c) { out = in -> a(c) }",
        ),
        "E0108",
    );
}

#[test]
fn binary_and_empty_input() {
    fails_with("\u{0}\u{1}\u{2}network", "E0001");
    assert!(compile_bytes(&[0xff, 0xfe, 0x00], "t", &Options::default()).is_err());
    // An empty file is valid and holds no networks.
    assert_eq!(compile_bytes(b"", "t", &Options::default()).unwrap().len(), 0);
}

/// All errors of a file are reported, sorted by position.
#[test]
fn errors_are_collected_and_sorted() {
    let src = net(
        " stem = conv(16, k=3) -> bn\n stage = bad(32) -> bad(64)",
        "block bad(c) { main = in -> conv(c, k=3) -> bn\n out = main + in }",
    );
    let d = compile_bytes(src.as_bytes(), "t", &Options::default()).unwrap_err();
    assert_eq!(d.items.iter().filter(|i| i.code == "E0201").count(), 1, "same site reported once:\n{}", d.render());
    let src = net(
        " stem = conv(16, k=3) -> two()",
        "block two() { a = in -> conv(7, group_width=2)\n b = in -> conv(16, k=2.5)\n c = in -> zeropad(3)\n out = in }",
    );
    let d = compile_bytes(src.as_bytes(), "t", &Options::default()).unwrap_err();
    let codes: Vec<&str> = d.items.iter().map(|i| i.code).collect();
    assert!(codes.len() >= 2, "{codes:?}");
    let positions: Vec<usize> = d.items.iter().map(|i| i.position().start).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
}

/// A long chain of distinct blocks, each calling the next inside an expression, stops at
/// the nesting limit instead of exhausting the (2 MiB test-thread) stack.
#[test]
fn deep_block_nesting_is_bounded() {
    let mut blocks = String::from("block b0(c) { out = in -> bn }\n");
    for i in 1..200 {
        blocks += &format!(
            "block b{i}(c) {{ x = if c > 0 {{ in -> conv(c, k=1) -> b{}(c) }} else {{ in }}\n out = relu(x) }}\n",
            i - 1
        );
    }
    fails_with(&net(" stem = conv(16) -> b199(16)", &blocks), "E0117");
    let mut ok = String::from("block b0(c) { out = in -> bn }\n");
    for i in 1..60 {
        ok += &format!(
            "block b{i}(c) {{ x = if c > 0 {{ in -> conv(c, k=1) -> b{}(c) }} else {{ in }}\n out = relu(x) }}\n",
            i - 1
        );
    }
    assert!(compile_bytes(net(" stem = conv(16) -> b59(16)", &ok).as_bytes(), "t", &Options::default()).is_ok());
}

/// Runs `f` on its own thread and fails the test, instead of hanging it, when it takes
/// longer than two minutes (what an exponential parse of 40 levels would take many times over).
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(120)).unwrap_or_else(|_| panic!("{what} did not finish"))
}

/// Brackets at the deepest nesting allowed parse in linear time: a tuple and a bracketed
/// expression are one grammar rule, so no level is read twice (the parse used to double
/// with each level: 20 deep took 8 s, 30 deep never finished).
#[test]
fn nesting_at_the_limit_parses_in_linear_time() {
    let limit = slimc_lang::syntax::MAX_NESTING;
    // `network t(...) {` holds one level and `conv(` another.
    let kernel = format!("{}3, 3{}", "(".repeat(limit - 2), ")".repeat(limit - 2));
    let src = net(&format!(" stem = conv(16, k={kernel}) -> bn"), "");
    let nets = finishes("a 40-deep kernel tuple", move || compile_bytes(src.as_bytes(), "t", &Options::default()));
    assert_eq!(nets.unwrap()[0].layers.iter().filter(|(_, l)| l.op.kernel() == [3, 3]).count(), 1);
    let stem = format!("{}conv(16){}", "(".repeat(limit - 2), ")".repeat(limit - 2));
    let src = net(&format!(" stem = {stem} -> bn"), "");
    let nets = finishes("a 40-deep bracketed call", move || compile_bytes(src.as_bytes(), "t", &Options::default()));
    assert!(nets.is_ok());
    // One level more is the nesting error, found before parsing.
    fails_with(&net(&format!(" stem = ({stem}) -> bn"), ""), "E0002");
    // A one-element tuple with a trailing comma stays a syntax error, as before.
    fails_with(&net(" stem = conv(16, k=(3,)) -> bn", ""), "E0001");
}

/// Thousands of errors on one long line print a screenful: the first 50 diagnostics, a
/// line counting the rest, and each source line cut to a window around its label.
#[test]
fn a_flood_of_errors_is_capped() {
    let many: String = (0..5_000).map(|i| format!(" x{i} = nope{i};")).collect();
    let src = net(&format!(" stem = conv(16) ->bn{many}"), "");
    let d = finishes("5,000 errors", move || compile_bytes(src.as_bytes(), "t", &Options::default()).unwrap_err());
    assert!(d.items.len() >= 5_000, "{}", d.items.len());
    let text = d.render();
    assert!(text.len() < 100_000, "{} bytes rendered", text.len());
    assert!(text.contains("more not shown"), "{}", &text[text.len().saturating_sub(500)..]);
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest < 400, "a rendered line of {widest} characters");
    // Columns are those of the original line: the 50th error sits far along line 3.
    assert!(text.contains("t:3:"), "{}", &text[..500]);
    let far = text.lines().filter_map(|l| l.trim().strip_prefix("┌─ t:3:")).next_back().unwrap();
    assert!(far.parse::<usize>().unwrap() > 500, "column {far}");
}

/// A network whose MACs pass 2^64 is a diagnostic, not a saturated count printed as exact.
#[test]
fn counts_that_overflow_are_errors() {
    let src = "network t() { input 65536 x 65536 x 65536\n stem = conv(65536, k=1024, padding=511) -> bn\n head = avgpool -> linear(10) }";
    fails_with(src, "E0120");
}

/// A UTF-8 byte-order mark (what some Windows editors write first) is a blank.
#[test]
fn a_byte_order_mark_is_accepted() {
    let src = format!("\u{feff}{}", net(" stem = conv(16) -> bn", ""));
    assert_eq!(compile_bytes(src.as_bytes(), "t", &Options::default()).unwrap().len(), 1);
}
