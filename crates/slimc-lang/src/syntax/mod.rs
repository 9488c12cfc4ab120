//! Syntax: `.slim` text → [`ast::File`]. The grammar is `grammar/slim.pest`; `lower.rs`
//! turns pest pairs into plain AST data, one function per rule.

pub mod ast;
mod lower;

use pest::error::{ErrorVariant, InputLocation};
use pest::Parser;

use crate::diagnostic::Diagnostic;
use ast::Span;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/slim.pest"]
struct SlimParser;

/// How deeply brackets may nest; deeper input is rejected before parsing so that a
/// hostile file cannot exhaust the stack.
pub const MAX_NESTING: usize = 40;
/// How many infix operators one expression may hold.
pub const MAX_OPERATORS: usize = 256;

/// Why a file could not be parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum SyntaxError {
    /// pest could not match the grammar at `at`.
    Unexpected {
        at: Span,
        expected: Vec<String>,
        found: Option<String>,
    },
    NestingTooDeep {
        at: Span,
    },
    ExpressionTooLong {
        at: Span,
        operators: usize,
    },
    NumberTooLarge {
        at: Span,
    },
    NotUtf8 {
        at: Span,
    },
    /// Two operands side by side inside an expression (`bn relu`): almost always a missing `->`.
    MissingArrow {
        at: Span,
        before: String,
        after: String,
    },
}

impl SyntaxError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            SyntaxError::Unexpected { at, expected, found } => {
                let found = found.as_deref().map_or("end of file".to_string(), |f| format!("`{f}`"));
                let wanted = join_alternatives(expected);
                Diagnostic::new("E0001", format!("syntax error: expected {wanted}, found {found}"))
                    .primary(*at, format!("expected {wanted}"))
                    .help("see the language reference in README.md; statements look like `name = conv(64, k=3) -> bn -> relu`")
            }
            SyntaxError::NestingTooDeep { at } => Diagnostic::new("E0002", "brackets nest too deeply")
                .primary(*at, format!("more than {MAX_NESTING} levels deep here"))
                .help("split the expression into named bindings"),
            SyntaxError::ExpressionTooLong { at, operators } => Diagnostic::new("E0003", "expression too long")
                .primary(*at, format!("{operators} operators in one expression; the limit is {MAX_OPERATORS}"))
                .help("use repetition (`block(...) * n`) or split it into named bindings"),
            SyntaxError::NumberTooLarge { at } => Diagnostic::new("E0004", "number too large")
                .primary(*at, "does not fit in a 64-bit integer or float")
                .help("channel counts, sizes and repeats are far smaller; see the limits in README.md"),
            SyntaxError::MissingArrow { at, before, after } => {
                Diagnostic::new("E0006", format!("syntax error: expected `->` between `{before}` and `{after}`"))
                    .primary(*at, "expected `->` before this")
                    .help(format!("layers are chained with `->`: `{before} -> {after}`"))
            }
            SyntaxError::NotUtf8 { at } => Diagnostic::new("E0005", "file is not valid UTF-8 text")
                .primary(*at, "invalid UTF-8 starts here")
                .help("`.slim` files are UTF-8 text"),
        }
    }
}

fn join_alternatives(items: &[String]) -> String {
    match items {
        [] => "something else".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// Parses a whole file.
pub fn parse(source: &str) -> Result<ast::File, SyntaxError> {
    check_nesting(source)?;
    pest::set_error_detail(true);
    let mut pairs = SlimParser::parse(Rule::file, source).map_err(|e| convert_error(source, e))?;
    let file = pairs.next().expect("the `file` rule always yields one pair");
    lower::file(file)
}

/// Rejects bracket nesting deeper than [`MAX_NESTING`] (comments skipped).
fn check_nesting(source: &str) -> Result<(), SyntaxError> {
    let mut depth = 0usize;
    let mut in_comment = false;
    for (i, c) in source.char_indices() {
        match c {
            '\n' => in_comment = false,
            _ if in_comment => {}
            '#' => in_comment = true,
            '(' | '{' | '[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(SyntaxError::NestingTooDeep { at: Span::new(i, i + 1) });
                }
            }
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn convert_error(source: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<String> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for rule in positives {
            if let Some(text) = describe_rule(*rule) {
                expected.push(text.to_string());
            }
        }
    }
    if let Some(attempts) = e.parse_attempts() {
        for token in attempts.expected_tokens() {
            let token = token.to_string();
            if is_readable_token(&token) {
                expected.push(format!("`{token}`"));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    expected.retain(|x| seen.insert(x.clone()));
    expected.truncate(6);
    let found = source[pos..].split_whitespace().next().map(|w| w.chars().take(20).collect::<String>());
    let end = source[pos..].chars().next().map_or(pos, |c| pos + c.len_utf8());
    if let Some(e) = missing_arrow(source, pos) {
        return e;
    }
    SyntaxError::Unexpected { at: Span::new(pos, end), expected, found }
}

/// `= … bn relu`: the parse stopped at a name that follows a name or `)` on the same line,
/// after the statement's `=`. The two operands need an operator between them, nearly always `->`.
fn missing_arrow(source: &str, pos: usize) -> Option<SyntaxError> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let after: String = source[pos..].chars().take_while(|&c| is_ident(c)).collect();
    if after.is_empty() || !after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let line = &source[source[..pos].rfind('\n').map_or(0, |i| i + 1)..pos];
    let code = line.split('#').next().unwrap_or("");
    let trimmed = code.trim_end();
    if trimmed.len() == code.len() || !code.contains('=') {
        return None;
    }
    let before = match trimmed.chars().last()? {
        ')' => {
            let open = trimmed.rfind('(')?;
            let name: String = trimmed[..open].chars().rev().take_while(|&c| is_ident(c)).collect();
            format!("{}(…)", name.chars().rev().collect::<String>())
        }
        c if is_ident(c) => {
            trimmed.chars().rev().take_while(|&c| is_ident(c)).collect::<Vec<_>>().into_iter().rev().collect()
        }
        _ => return None,
    };
    Some(SyntaxError::MissingArrow { at: Span::new(pos, pos + after.len()), before, after })
}

/// Punctuation and keywords worth naming in "expected …"; infix operators are left out
/// because almost any position accepts one and listing them hides the real problem.
fn is_readable_token(token: &str) -> bool {
    matches!(token, "{" | "}" | "(" | ")" | "=" | "," | "network" | "block" | "x" | "else")
}

/// The user-facing name of a grammar rule, or `None` for rules never worth naming.
pub fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::network => "`network`",
        Rule::block => "`block`",
        Rule::name => "a name",
        Rule::int => "an integer",
        Rule::float => "a number",
        Rule::expr | Rule::braced => "an expression",
        Rule::param_list => "a parameter list",
        Rule::param => "a parameter",
        Rule::input_stmt => "`input C x H x W`",
        Rule::rounding_stmt => "`rounding POLICY`",
        Rule::width_stmt => "`width NAME = ...`",
        Rule::binding => "a statement `name = ...`",
        Rule::if_expr => "`if`",
        Rule::call => "a call",
        Rule::call_args => "arguments",
        Rule::named_arg => "an argument",
        Rule::boolean => "`true` or `false`",
        Rule::EOI => "end of file",
        _ => return None,
    })
}
