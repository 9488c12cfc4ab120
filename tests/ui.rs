//! One broken `.slim` file per diagnostic under `tests/ui/`; each rendered error text
//! (no colour) is an insta snapshot. `cargo insta review` after changing a message.

use slimc::{compile_bytes, Options};

#[test]
fn ui() {
    insta::glob!("ui/*.slim", |path| {
        let bytes = std::fs::read(path).expect("fixture is readable");
        let name = format!("tests/ui/{}", path.file_name().unwrap().to_string_lossy());
        let rendered = match compile_bytes(&bytes, &name, &Options::default()) {
            Ok(nets) => panic!("{name} compiled cleanly ({} networks); every ui fixture must fail", nets.len()),
            Err(d) => d.render(),
        };
        insta::assert_snapshot!(rendered);
    });
}
