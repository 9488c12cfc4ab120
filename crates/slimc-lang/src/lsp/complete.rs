//! Completion from the text alone: a file being typed rarely parses (`stem = conv(16) -> `
//! is a syntax error until the next name), so completion reads tokens, not the AST. Inside a
//! call's parentheses it offers the callee's keyword arguments; after `->` the layers (ops,
//! blocks, bindings); elsewhere every op, block, function, constant and visible name.

use crate::diagnostic::floor_char_boundary;
use crate::sema::builtins::{Builtin, CONSTANTS, SIGNATURES};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    /// A built-in layer op (`conv`, `bn`, `relu`).
    Op,
    /// A built-in function of widths and numbers (`fixed`, `ratio`, `min`).
    Function,
    Block,
    /// `name=` inside a call.
    Argument,
    /// A parameter, named width or binding of the enclosing definition.
    Name,
    /// A rounding policy (`floor`, `nearest`).
    Constant,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    /// A signature or where the name comes from.
    pub detail: String,
    /// The text to insert (`k=` for an argument).
    pub insert: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    /// Any other character, or `->` / `==` as one token.
    Punct(&'a str),
}

struct Token<'a> {
    tok: Tok<'a>,
    start: usize,
    end: usize,
}

/// Identifiers and punctuation, comments and numbers skipped.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token { tok: Tok::Ident(&text[start..i]), start, end: i });
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_') {
                i += 1;
            }
        } else if c.is_ascii_whitespace() || !c.is_ascii() {
            i += 1;
        } else {
            let two = text.get(i..i + 2).filter(|t| matches!(*t, "->" | "==" | "!=" | "<=" | ">=" | "//"));
            let len = two.map_or(1, str::len);
            out.push(Token { tok: Tok::Punct(&text[i..i + len]), start: i, end: i + len });
            i += len;
        }
    }
    out
}

/// A `network` or `block` definition found in the tokens.
struct Def<'a> {
    name: &'a str,
    block: bool,
    /// Token index range of the whole definition.
    tokens: std::ops::Range<usize>,
    params: Vec<&'a str>,
}

/// Definitions by their keyword and braces, tolerating unbalanced text.
fn definitions<'a>(toks: &[Token<'a>]) -> Vec<Def<'a>> {
    let mut defs = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let block = match toks[i].tok {
            Tok::Ident("block") => true,
            Tok::Ident("network") => false,
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i;
        let name = match toks.get(i + 1).map(|t| t.tok) {
            Some(Tok::Ident(n)) => n,
            _ => "",
        };
        i += 2;
        let mut params = Vec::new();
        if toks.get(i).map(|t| t.tok) == Some(Tok::Punct("(")) {
            let mut depth = 0;
            while i < toks.len() {
                match toks[i].tok {
                    Tok::Punct("(") => depth += 1,
                    Tok::Punct(")") => depth -= 1,
                    Tok::Ident(p) if depth == 1 && matches!(toks[i - 1].tok, Tok::Punct("(" | ",")) => params.push(p),
                    Tok::Ident("network" | "block") => break,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
        }
        // The body runs to the next definition keyword outside parentheses.
        while i < toks.len() && !matches!(toks[i].tok, Tok::Ident("network" | "block")) {
            i += 1;
        }
        defs.push(Def { name, block, tokens: start..i, params });
    }
    defs
}

pub fn completions(source: &str, offset: usize) -> Vec<Completion> {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let toks = tokens(source);
    let defs = definitions(&toks);
    // Tokens before the cursor; a name being typed at the cursor is not context.
    let mut before = toks.partition_point(|t| t.end <= offset);
    if before > 0 && matches!(toks[before - 1].tok, Tok::Ident(_)) && toks[before - 1].end == offset {
        before -= 1;
    }
    let current = defs.iter().find(|d| d.tokens.start < before && before <= d.tokens.end);

    if let Some(callee) = open_call(&toks[current.map_or(0, |d| d.tokens.start)..before]) {
        let params = match SIGNATURES.iter().find(|s| s.name == callee) {
            Some(sig) => sig.params.to_vec(),
            None => defs.iter().find(|d| d.block && d.name == callee).map_or_else(Vec::new, |d| d.params.clone()),
        };
        let at_argument_start = before == 0 || matches!(toks[before - 1].tok, Tok::Punct("(" | ","));
        if at_argument_start && !params.is_empty() {
            let mut out: Vec<Completion> = params
                .iter()
                .map(|p| Completion {
                    label: format!("{p}="),
                    kind: CompletionKind::Argument,
                    detail: format!("argument of `{callee}`"),
                    insert: format!("{p}="),
                })
                .collect();
            out.extend(values(current));
            return out;
        }
    }

    let after_arrow = before > 0 && toks[before - 1].tok == Tok::Punct("->");
    let mut out = Vec::new();
    for sig in SIGNATURES {
        let kind = match sig.builtin {
            Builtin::Op(_) => CompletionKind::Op,
            Builtin::Fn(_) if after_arrow => continue,
            Builtin::Fn(_) => CompletionKind::Function,
        };
        let args = if sig.variadic { "tensors…".to_string() } else { sig.params.join(", ") };
        out.push(Completion {
            label: sig.name.into(),
            kind,
            detail: format!("{}({args})", sig.name),
            insert: sig.name.into(),
        });
    }
    for d in defs.iter().filter(|d| d.block && !d.name.is_empty()) {
        out.push(Completion {
            label: d.name.into(),
            kind: CompletionKind::Block,
            detail: format!("block {}({})", d.name, d.params.join(", ")),
            insert: d.name.into(),
        });
    }
    if !after_arrow {
        out.extend(CONSTANTS.iter().map(|c| Completion {
            label: (*c).into(),
            kind: CompletionKind::Constant,
            detail: "rounding policy".into(),
            insert: (*c).into(),
        }));
    }
    out.extend(locals(current, &toks, before));
    out
}

/// The callee of the innermost call left open before the cursor.
fn open_call<'a>(toks: &[Token<'a>]) -> Option<&'a str> {
    let mut stack: Vec<Option<&str>> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::Punct("(") => {
                let callee = match i.checked_sub(1).map(|p| &toks[p]) {
                    Some(Token { tok: Tok::Ident(n), end, .. }) if *end == t.start => Some(*n),
                    _ => None,
                };
                stack.push(callee);
            }
            Tok::Punct(")") => {
                stack.pop();
            }
            Tok::Punct("{" | "}") => stack.clear(),
            _ => {}
        }
    }
    stack.pop().flatten()
}

/// What can be an argument's value: the enclosing definition's parameters.
fn values(current: Option<&Def<'_>>) -> Vec<Completion> {
    current.map_or_else(Vec::new, |d| d.params.iter().map(|p| name(p, "parameter")).collect())
}

/// Parameters, named widths and bindings of the enclosing definition, above the cursor.
fn locals(current: Option<&Def<'_>>, toks: &[Token<'_>], before: usize) -> Vec<Completion> {
    let Some(def) = current else { return Vec::new() };
    let mut out = values(current);
    if def.block {
        out.push(name("in", "the block's input"));
    }
    let mut depth = 0i32;
    for i in def.tokens.start..before.min(def.tokens.end) {
        match toks[i].tok {
            Tok::Punct("(" | "{") => depth += 1,
            Tok::Punct(")" | "}") => depth -= 1,
            Tok::Ident(n) if depth == 1 && toks.get(i + 1).map(|t| t.tok) == Some(Tok::Punct("=")) => {
                let what = if i > 0 && toks[i - 1].tok == Tok::Ident("width") { "named width" } else { "binding" };
                if !out.iter().any(|c| c.label == n) && !matches!(n, "stem" | "stage" | "head") {
                    out.push(name(n, what));
                }
            }
            _ => {}
        }
    }
    out
}

fn name(n: &str, what: &str) -> Completion {
    Completion { label: n.into(), kind: CompletionKind::Name, detail: what.into(), insert: n.into() }
}
