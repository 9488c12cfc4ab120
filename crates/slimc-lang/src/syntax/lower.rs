//! pest pairs → AST, one function per grammar rule. Assumes the input parsed, so
//! the shape of every pair is the grammar's; only numbers and limits can fail here.

use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::*;
use super::{Rule, SyntaxError, MAX_OPERATORS};

type Result<T> = std::result::Result<T, SyntaxError>;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::arrow, Assoc::Left))
        .op(Op::infix(Rule::or, Assoc::Left))
        .op(Op::infix(Rule::and, Assoc::Left))
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::floordiv, Assoc::Left)
            | Op::infix(Rule::rem, Assoc::Left))
        .op(Op::prefix(Rule::neg) | Op::prefix(Rule::not))
        .op(Op::postfix(Rule::field))
});

fn span(pair: &Pair<Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

fn ident(pair: Pair<Rule>) -> Ident {
    Ident { name: pair.as_str().to_string(), span: span(&pair) }
}

pub fn file(pair: Pair<Rule>) -> Result<File> {
    let mut out = File { networks: Vec::new(), blocks: Vec::new() };
    for item in pair.into_inner() {
        match item.as_rule() {
            Rule::network => out.networks.push(definition(item)?),
            Rule::block => out.blocks.push(definition(item)?),
            _ => {}
        }
    }
    Ok(out)
}

fn definition(pair: Pair<Rule>) -> Result<Definition> {
    let sp = span(&pair);
    let mut inner = pair.into_inner();
    let name = ident(inner.next().expect("definition has a name"));
    let mut params = Vec::new();
    let mut stmts = Vec::new();
    for p in inner {
        match p.as_rule() {
            Rule::param_list => {
                for param in p.into_inner() {
                    params.push(self::param(param)?);
                }
            }
            _ => stmts.push(stmt(p)?),
        }
    }
    Ok(Definition { name, params, stmts, span: sp })
}

fn param(pair: Pair<Rule>) -> Result<Param> {
    let mut inner = pair.into_inner();
    let name = ident(inner.next().expect("param has a name"));
    let default = inner.next().map(expr).transpose()?;
    Ok(Param { name, default })
}

fn stmt(pair: Pair<Rule>) -> Result<Stmt> {
    let sp = span(&pair);
    let rule = pair.as_rule();
    let mut inner = pair.into_inner();
    Ok(match rule {
        Rule::input_stmt => {
            let mut inner = inner.filter(|p| p.as_rule() != Rule::times);
            let c = expr(inner.next().expect("input C"))?;
            let h = expr(inner.next().expect("input H"))?;
            let w = expr(inner.next().expect("input W"))?;
            Stmt::Input { dims: [c, h, w], span: sp }
        }
        Rule::rounding_stmt => Stmt::Rounding { policy: expr(inner.next().expect("policy"))?, span: sp },
        Rule::width_stmt => {
            let name = ident(inner.next().expect("width name"));
            Stmt::Width { name, value: expr(inner.next().expect("width value"))? }
        }
        Rule::binding => {
            let name = ident(inner.next().expect("binding name"));
            Stmt::Bind { name, value: expr(inner.next().expect("binding value"))? }
        }
        other => unreachable!("statement rule {other:?}"),
    })
}

pub fn expr(pair: Pair<Rule>) -> Result<Expr> {
    let sp = span(&pair);
    let operators = pair.clone().into_inner().filter(|p| is_infix(p.as_rule())).count();
    if operators > MAX_OPERATORS {
        return Err(SyntaxError::ExpressionTooLong { at: sp, operators });
    }
    PRATT
        .map_primary(primary)
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            let un = if op.as_rule() == Rule::neg { UnOp::Neg } else { UnOp::Not };
            let sp = span(&op).to(rhs.span);
            Ok(Expr { kind: ExprKind::Unary(un, Box::new(rhs)), span: sp })
        })
        .map_postfix(|lhs, op| {
            let lhs = lhs?;
            let name = ident(op.into_inner().next().expect("field name"));
            let sp = lhs.span.to(name.span);
            Ok(Expr { kind: ExprKind::Field(Box::new(lhs), name), span: sp })
        })
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
            let sp = lhs.span.to(rhs.span);
            let kind = match binop(op.as_rule()) {
                BinOp::Arrow => match lhs.kind {
                    ExprKind::Chain(mut items) => {
                        items.push(rhs);
                        ExprKind::Chain(items)
                    }
                    _ => ExprKind::Chain(vec![lhs, rhs]),
                },
                b => ExprKind::Binary(b, Box::new(lhs), Box::new(rhs)),
            };
            Ok(Expr { kind, span: sp })
        })
        .parse(pair.into_inner())
}

fn is_infix(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::arrow
            | Rule::or
            | Rule::and
            | Rule::eq
            | Rule::ne
            | Rule::lt
            | Rule::le
            | Rule::gt
            | Rule::ge
            | Rule::add
            | Rule::sub
            | Rule::mul
            | Rule::div
            | Rule::floordiv
            | Rule::rem
    )
}

fn binop(rule: Rule) -> BinOp {
    match rule {
        Rule::arrow => BinOp::Arrow,
        Rule::or => BinOp::Or,
        Rule::and => BinOp::And,
        Rule::eq => BinOp::Eq,
        Rule::ne => BinOp::Ne,
        Rule::lt => BinOp::Lt,
        Rule::le => BinOp::Le,
        Rule::gt => BinOp::Gt,
        Rule::ge => BinOp::Ge,
        Rule::add => BinOp::Add,
        Rule::sub => BinOp::Sub,
        Rule::mul => BinOp::Mul,
        Rule::div => BinOp::Div,
        Rule::floordiv => BinOp::FloorDiv,
        Rule::rem => BinOp::Rem,
        other => unreachable!("infix rule {other:?}"),
    }
}

fn primary(pair: Pair<Rule>) -> Result<Expr> {
    let sp = span(&pair);
    let kind = match pair.as_rule() {
        Rule::int => ExprKind::Int(pair.as_str().parse().map_err(|_| SyntaxError::NumberTooLarge { at: sp })?),
        Rule::float => {
            let v: f64 = pair.as_str().parse().map_err(|_| SyntaxError::NumberTooLarge { at: sp })?;
            if !v.is_finite() {
                return Err(SyntaxError::NumberTooLarge { at: sp });
            }
            ExprKind::Float(v)
        }
        Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
        Rule::name => ExprKind::Name(ident(pair)),
        Rule::call => call(pair)?,
        Rule::if_expr => if_expr(pair)?,
        Rule::tuple => {
            let mut items = pair.into_inner().map(expr).collect::<Result<Vec<_>>>()?;
            // `(a)` is `a` itself, with its own span (the grammar's one rule for both forms).
            if items.len() == 1 {
                return Ok(items.pop().expect("one item"));
            }
            ExprKind::Tuple(items)
        }
        other => unreachable!("primary rule {other:?}"),
    };
    Ok(Expr { kind, span: sp })
}

fn call(pair: Pair<Rule>) -> Result<ExprKind> {
    let mut inner = pair.into_inner();
    let callee = ident(inner.next().expect("callee"));
    let mut args = Vec::new();
    for a in inner.next().expect("call args").into_inner() {
        if a.as_rule() == Rule::named_arg {
            let mut parts = a.into_inner();
            let name = ident(parts.next().expect("arg name"));
            args.push(Arg { name: Some(name), value: expr(parts.next().expect("arg value"))? });
        } else {
            args.push(Arg { name: None, value: expr(a)? });
        }
    }
    Ok(ExprKind::Call { callee, args })
}

fn if_expr(pair: Pair<Rule>) -> Result<ExprKind> {
    let mut parts: Vec<Pair<Rule>> = pair.into_inner().collect();
    let otherwise = braced(parts.pop().expect("else branch"))?;
    let mut arms = Vec::new();
    let mut it = parts.into_iter();
    while let (Some(cond), Some(body)) = (it.next(), it.next()) {
        arms.push((expr(cond)?, braced(body)?));
    }
    Ok(ExprKind::If { arms, otherwise: Box::new(otherwise) })
}

fn braced(pair: Pair<Rule>) -> Result<Expr> {
    expr(pair.into_inner().next().expect("braced expression"))
}
