//! One `.slim` file per diagnostic under `tests/ui/`; each rendered text (errors and
//! warnings, no colour) is an insta snapshot. A `warn_*.slim` fixture compiles with
//! warnings; every other fixture must fail. `cargo insta review` after changing a message.

use slimc_lang::{check_bytes, Options, Severity};

#[test]
fn ui() {
    insta::glob!("ui/*.slim", |path| {
        let bytes = std::fs::read(path).expect("fixture is readable");
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let name = format!("tests/ui/{file}");
        let checked = check_bytes(&bytes, &name, &Options::default());
        let all = checked.diagnostics(false);
        if file.starts_with("warn_") {
            assert!(checked.networks.is_ok(), "{name} must compile: {}", all.render());
            assert!(!all.items.is_empty() && all.items.iter().all(|d| d.severity == Severity::Warning), "{name}");
        } else {
            assert!(checked.networks.is_err(), "{name} compiled cleanly; every other ui fixture must fail");
        }
        let rendered = all.render();
        insta::assert_snapshot!(rendered);
    });
}
