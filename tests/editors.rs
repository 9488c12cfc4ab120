//! The editor files stay true to the language: the TextMate grammar and the Vim syntax name
//! every built-in op, function and keyword; the VS Code extension points at files that exist
//! and launches `slimc lsp`.

use std::path::Path;

use serde_json::Value;
use slimc_lang::sema::builtins::{Builtin, CONSTANTS, SIGNATURES};

fn json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The keywords of `crates/slimc-lang/grammar/slim.pest`'s `keyword` rule.
fn keywords() -> Vec<String> {
    let pest = std::fs::read_to_string("crates/slimc-lang/grammar/slim.pest").unwrap();
    let rule = pest.lines().find(|l| l.starts_with("keyword =")).expect("a keyword rule");
    rule.split('"').skip(1).step_by(2).map(String::from).collect()
}

/// The alternatives of the pattern whose comment starts with `comment`: `\b(a|b|c)\b`.
fn alternatives(grammar: &Value, comment: &str) -> Vec<String> {
    let patterns = grammar["repository"]["expression"]["patterns"].as_array().unwrap();
    let p = patterns.iter().find(|p| p["comment"].as_str().is_some_and(|c| c.starts_with(comment))).unwrap();
    let m = p["match"].as_str().unwrap();
    let inner = &m[m.find('(').unwrap() + 1..m.find(')').unwrap()];
    inner.split('|').map(String::from).collect()
}

#[test]
fn textmate_grammar_names_every_op_function_and_keyword() {
    let g = json("editors/vscode/syntaxes/slimc.tmLanguage.json");
    assert_eq!(g["scopeName"], "source.slimc");
    let ops = alternatives(&g, "built-in layer ops");
    let fns = alternatives(&g, "built-in functions");
    for sig in SIGNATURES {
        let list = match sig.builtin {
            Builtin::Op(_) => &ops,
            Builtin::Fn(_) => &fns,
        };
        assert!(list.iter().any(|x| x == sig.name), "the TextMate grammar misses `{}`", sig.name);
    }
    assert_eq!(ops.len() + fns.len(), SIGNATURES.len(), "the grammar lists names that are not built-ins");
    let text = std::fs::read_to_string("editors/vscode/syntaxes/slimc.tmLanguage.json").unwrap();
    for k in keywords().iter().map(String::as_str).chain(CONSTANTS.iter().copied()) {
        assert!(text.contains(k), "the TextMate grammar misses `{k}`");
    }
}

#[test]
fn vim_syntax_names_every_op_function_and_keyword() {
    let vim = std::fs::read_to_string("editors/neovim/syntax/slimc.vim").unwrap();
    let words: Vec<&str> =
        vim.lines().filter(|l| l.starts_with("syn keyword")).flat_map(|l| l.split_whitespace().skip(3)).collect();
    for name in
        SIGNATURES.iter().map(|s| s.name.to_string()).chain(keywords()).chain(CONSTANTS.iter().map(|c| c.to_string()))
    {
        assert!(words.contains(&name.as_str()), "editors/neovim/syntax/slimc.vim misses `{name}`");
    }
}

#[test]
fn vscode_extension_is_wired_to_its_files_and_the_server() {
    let pkg = json("editors/vscode/package.json");
    let dir = Path::new("editors/vscode");
    assert!(dir.join(pkg["main"].as_str().unwrap()).exists());
    let lang = &pkg["contributes"]["languages"][0];
    assert_eq!(lang["extensions"][0], ".slim");
    assert!(dir.join(lang["configuration"].as_str().unwrap()).exists());
    json(dir.join(lang["configuration"].as_str().unwrap()).to_str().unwrap());
    let grammar = &pkg["contributes"]["grammars"][0];
    assert_eq!(grammar["language"], lang["id"]);
    assert_eq!(grammar["scopeName"], "source.slimc");
    assert!(dir.join(grammar["path"].as_str().unwrap()).exists());
    assert_eq!(pkg["activationEvents"][0], format!("onLanguage:{}", lang["id"].as_str().unwrap()));
    let client = std::fs::read_to_string(dir.join("extension.js")).unwrap();
    assert!(
        client.contains(r#"args: ["lsp"]"#)
            && client.contains(&format!(r#"language: "{}""#, lang["id"].as_str().unwrap()))
    );
    for setting in ["slimc.path", "slimc.width", "slimc.inlayHints"] {
        assert!(pkg["contributes"]["configuration"]["properties"][setting].is_object(), "{setting}");
    }
}
