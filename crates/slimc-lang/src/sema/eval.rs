//! Elaboration: evaluates a network's statements, instantiating blocks and emitting one
//! node per op into a flat graph while channel terms are unified on the fly. Errors are
//! collected; a [`Value::Poison`] stands in for a failed value so that one mistake is
//! reported once.

use std::collections::HashMap;
use std::rc::Rc;

use super::builtins::{self, Builtin, OpKind, Signature};
use super::channels::{Channels, Term};
use super::error::SemaError;
use super::resolve::Index;
use super::value::*;
use super::warning::Warning;
use crate::ir::{Interp, Op, ParamValue, Rounding, Section};
use crate::syntax::ast::*;

/// Hard limits that keep hostile input from allocating without bound.
pub mod limits {
    pub const MAX_CHANNELS: i64 = 65_536;
    pub const MAX_SPATIAL: i64 = 65_536;
    /// Features a `flatten` may produce (VGG-16 has 25,088).
    pub const MAX_FEATURES: i64 = 1 << 24;
    pub const MAX_KERNEL: i64 = 1_024;
    pub const MAX_REPEAT: i64 = 1_000;
    pub const MAX_LAYERS: usize = 100_000;
    pub const MAX_CALL_DEPTH: usize = 64;
}
use limits::*;

/// Elaboration stopped early (too many layers, calls nested too deep); the error is recorded.
#[derive(Debug)]
pub struct Abort;

pub type Flow<T> = Result<T, Abort>;

/// One emitted op, before the search space is known.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<usize>,
    pub term: Term,
    pub channels: u32,
    pub hw: [u32; 2],
    pub section: Section,
    pub span: Span,
    /// The op declares its output width (conv, linear, zeropad) rather than passing it on.
    pub sets_width: bool,
    /// The innermost block instance that emitted it (set by [`Elab::emit`]).
    pub block: Option<usize>,
}

/// One call of a block: its definition's name, its name prefix (`stage2.0`,
/// `stage2.0.main.squeeze_excite`), the enclosing instance, and the nodes of its `in` and
/// `out` (node indices are layer indices).
#[derive(Clone, Debug)]
pub struct BlockInstance {
    pub kind: String,
    pub name: String,
    pub parent: Option<usize>,
    pub input: usize,
    pub output: usize,
    pub span: Span,
}

/// How emitted nodes are named: `stage2.0.main.conv1`.
struct Frame {
    prefix: String,
    counters: HashMap<String, u32>,
    /// Block instances are numbered (`stage2.0`) in sections, named (`main.se`) in bindings.
    number_blocks: bool,
}

pub type Env<'a> = HashMap<String, Value<'a>>;

pub struct Elab<'a, 'i> {
    pub index: &'i Index<'a>,
    pub ch: Channels,
    pub nodes: Vec<Node>,
    pub errors: Vec<SemaError>,
    pub rounding: Rounding,
    pub section: Section,
    /// Every block instance, in call order; `out` is filled in when the block returns.
    pub blocks: Vec<BlockInstance>,
    /// The instances being elaborated, innermost last (its length is the call depth).
    open_blocks: Vec<usize>,
    frames: Vec<Frame>,
    /// Network parameters whose value came from a setting, not the file.
    pub settings: Vec<(String, ParamValue)>,
    /// Where the network's own statements read those parameters: (span, index into `settings`).
    pub setting_uses: Vec<(Span, usize)>,
    /// Every binding that held a tensor, once per instance: for the unused-binding warning.
    bindings: Vec<BoundTensor>,
    /// Warnings found while elaborating (pool padding); see [`Elab::warnings`].
    pub found: Vec<Warning>,
}

/// A binding's name, the node of its tensor, and the nodes its statement emitted.
struct BoundTensor {
    name: String,
    span: Span,
    node: usize,
    emitted: std::ops::Range<usize>,
}

impl<'a, 'i> Elab<'a, 'i> {
    pub fn new(index: &'i Index<'a>, rounding: Rounding) -> Self {
        Elab {
            index,
            ch: Channels::default(),
            nodes: Vec::new(),
            errors: Vec::new(),
            rounding,
            section: Section::Input,
            blocks: Vec::new(),
            open_blocks: Vec::new(),
            frames: Vec::new(),
            settings: Vec::new(),
            setting_uses: Vec::new(),
            bindings: Vec::new(),
            found: Vec::new(),
        }
    }

    /// Evaluates `NAME = value`, remembering a tensor result for [`Elab::warnings`].
    pub fn bind(&mut self, name: &Ident, value: &'a Expr, env: &Env<'a>) -> Flow<Value<'a>> {
        let first = self.nodes.len();
        let v = self.eval(value, env)?;
        if let Value::Tensor(t) = &v {
            let emitted = first..self.nodes.len();
            self.bindings.push(BoundTensor { name: name.name.clone(), span: name.span, node: t.node, emitted });
        }
        Ok(v)
    }

    /// The network's warnings once elaboration reached `output`: bindings no path to the
    /// output reads (in none of their instances), slimmable widths a fixed one absorbed,
    /// and what elaboration found on the way.
    pub fn warnings(&mut self, output: usize) -> Vec<Warning> {
        let mut live = vec![false; self.nodes.len()];
        if let Some(l) = live.get_mut(output) {
            *l = true;
        }
        // Inputs point backwards, so one reverse pass marks every node the output reads.
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for &j in &self.nodes[i].inputs {
                    live[j] = true;
                }
            }
        }
        let mut out = std::mem::take(&mut self.found);
        let mut spans: Vec<Span> = self.bindings.iter().map(|b| b.span).collect();
        spans.sort();
        spans.dedup();
        for span in spans {
            let mut instances = self.bindings.iter().filter(|b| b.span == span);
            let Some(first) = instances.clone().next() else { continue };
            if instances.any(|b| live[b.node]) {
                continue;
            }
            let layers = first.emitted.clone().filter(|&n| !live[n]).count();
            out.push(Warning::UnusedBinding { name: first.name.clone(), span, layers });
        }
        for &(fixed, fixed_origin, slimmable_origin) in self.ch.absorbed() {
            out.push(Warning::FixedAbsorbs { fixed, fixed_origin, slimmable_origin });
        }
        for &(channels, slice, slimmable_origin) in self.ch.pinned() {
            out.push(Warning::SlicePins { channels, slice, slimmable_origin });
        }
        out
    }

    pub fn error(&mut self, e: SemaError) -> Value<'a> {
        self.errors.push(e);
        Value::Poison
    }

    pub(super) fn type_error(
        &mut self,
        expected: &str,
        found: &Value<'a>,
        span: Span,
        help: Option<&str>,
    ) -> Value<'a> {
        if matches!(found, Value::Poison) {
            return Value::Poison;
        }
        self.error(SemaError::Type {
            expected: expected.into(),
            found: found.describe(),
            span,
            help: help.map(Into::into),
        })
    }

    // ----- naming --------------------------------------------------------------------

    pub fn push_frame(&mut self, prefix: String, number_blocks: bool) {
        self.frames.push(Frame { prefix, counters: HashMap::new(), number_blocks });
    }

    pub fn pop_frame(&mut self) {
        self.frames.pop();
    }

    /// The name prefix of the nodes being built now, e.g. `stage3.0.out`.
    pub fn current_scope(&self) -> String {
        self.frames.last().map_or_else(|| "the network".to_string(), |f| f.prefix.clone())
    }

    pub fn node_name(&mut self, kind: &str) -> String {
        let Some(f) = self.frames.last_mut() else { return kind.to_string() };
        let n = f.counters.entry(kind.to_string()).or_insert(0);
        *n += 1;
        format!("{}.{}{}", f.prefix, kind, n)
    }

    fn block_name(&mut self, block: &str) -> String {
        let Some(f) = self.frames.last_mut() else { return block.to_string() };
        if f.number_blocks {
            let n = f.counters.entry("#block".to_string()).or_insert(0);
            *n += 1;
            return format!("{}.{}", f.prefix, *n - 1);
        }
        let n = f.counters.entry(format!("#{block}")).or_insert(0);
        *n += 1;
        if *n == 1 {
            format!("{}.{}", f.prefix, block)
        } else {
            format!("{}.{}{}", f.prefix, block, n)
        }
    }

    pub fn emit(&mut self, mut node: Node, span: Span) -> Flow<usize> {
        node.block = self.open_blocks.last().copied();
        if self.nodes.len() >= MAX_LAYERS {
            self.errors.push(SemaError::Limit {
                what: "the number of layers".into(),
                value: format!("more than {MAX_LAYERS}"),
                limit: format!("at most {MAX_LAYERS} layers per network"),
                span,
            });
            return Err(Abort);
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    // ----- expressions ---------------------------------------------------------------

    pub fn eval(&mut self, e: &'a Expr, env: &Env<'a>) -> Flow<Value<'a>> {
        Ok(match &e.kind {
            ExprKind::Int(v) => Value::Int(*v),
            ExprKind::Float(v) => Value::Float(*v),
            ExprKind::Bool(v) => Value::Bool(*v),
            ExprKind::Name(id) => match env.get(&id.name) {
                Some(v) => {
                    if self.open_blocks.is_empty() {
                        if let Some(i) = self.settings.iter().position(|(n, _)| *n == id.name) {
                            self.setting_uses.push((e.span, i));
                        }
                    }
                    v.clone()
                }
                None => match id.name.as_str() {
                    "floor" => Value::Rounding(Rounding::Floor),
                    "nearest" => Value::Rounding(Rounding::Nearest),
                    "bilinear" => Value::Interp(Interp::Bilinear),
                    // A bare op or block name is a call without arguments: `-> bn -> relu`.
                    _ => self.call(id, &[], e.span, env)?,
                },
            },
            ExprKind::Unary(op, x) => {
                let v = self.eval(x, env)?;
                match (op, &v) {
                    (_, Value::Poison) => Value::Poison,
                    (UnOp::Neg, Value::Int(i)) => match i.checked_neg() {
                        Some(n) => Value::Int(n),
                        None => self.error(SemaError::Arithmetic { message: "integer overflow".into(), span: e.span }),
                    },
                    (UnOp::Neg, Value::Float(f)) => Value::Float(-f),
                    (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnOp::Neg, _) => self.type_error("a number", &v, x.span, None),
                    (UnOp::Not, _) => self.type_error("a boolean", &v, x.span, None),
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e.span, env)?,
            ExprKind::Chain(items) => self.chain(items, env)?,
            ExprKind::Field(x, f) => {
                let v = self.eval(x, env)?;
                match &v {
                    Value::Tensor(t) => Value::Int(i64::from(match f.name.as_str() {
                        "c" => t.c,
                        "h" => t.h,
                        _ => t.w,
                    })),
                    Value::Width(WidthVal::Shared(g)) if f.name == "c" => Value::Int(i64::from(self.ch.base_of(*g))),
                    Value::Width(WidthVal::Fixed(n)) if f.name == "c" => Value::Int(i64::from(*n)),
                    Value::Poison => Value::Poison,
                    _ => self.type_error(
                        "a tensor",
                        &v,
                        x.span,
                        Some("tensors have `.c`, `.h` and `.w`; named widths have `.c`"),
                    ),
                }
            }
            ExprKind::If { arms, otherwise } => {
                for (cond, value) in arms {
                    match self.eval(cond, env)? {
                        Value::Bool(true) => return self.eval(value, env),
                        Value::Bool(false) => {}
                        Value::Poison => return Ok(Value::Poison),
                        other => return Ok(self.type_error("a boolean condition", &other, cond.span, None)),
                    }
                }
                self.eval(otherwise, env)?
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span, env)?,
            ExprKind::Tuple(items) => {
                const PAIR: &str = "a pair `(height, width)` of whole numbers";
                if items.len() != 2 {
                    let found = format!("{} values", items.len());
                    let help = Some("per-axis values are pairs, e.g. `k=(1, 7)`".to_string());
                    self.error(SemaError::Type { expected: PAIR.into(), found, span: e.span, help });
                    return Ok(Value::Poison);
                }
                let mut pair = [0; 2];
                for (slot, x) in pair.iter_mut().zip(items) {
                    match self.eval(x, env)? {
                        Value::Poison => return Ok(Value::Poison),
                        v => match v.as_int() {
                            Some(n) => *slot = n,
                            None => return Ok(self.type_error(PAIR, &v, x.span, None)),
                        },
                    }
                }
                Value::Pair(pair)
            }
        })
    }

    fn binary(&mut self, op: BinOp, a: &'a Expr, b: &'a Expr, span: Span, env: &Env<'a>) -> Flow<Value<'a>> {
        if matches!(op, BinOp::And | BinOp::Or) {
            let l = self.eval(a, env)?;
            return Ok(match l {
                Value::Bool(x) if (op == BinOp::And) != x => Value::Bool(x),
                Value::Bool(_) => match self.eval(b, env)? {
                    Value::Bool(y) => Value::Bool(y),
                    other => self.type_error("a boolean", &other, b.span, None),
                },
                other => self.type_error("a boolean", &other, a.span, None),
            });
        }
        let l = self.eval(a, env)?;
        let r = self.eval(b, env)?;
        if matches!(l, Value::Poison) || matches!(r, Value::Poison) {
            return Ok(Value::Poison);
        }
        match (op, &l, &r) {
            (BinOp::Add, Value::Tensor(x), Value::Tensor(y)) => {
                let operands = [(x.clone(), a.span), (y.clone(), b.span)];
                return self.merge_op(OpKind::Add, "add", &operands, span);
            }
            (BinOp::Mul, Value::Tensor(x), Value::Tensor(y)) => {
                let operands = [(x.clone(), a.span), (y.clone(), b.span)];
                return self.merge_op(OpKind::Mul, "mul", &operands, span);
            }
            (BinOp::Mul, Value::Layer(f), n) | (BinOp::Mul, n, Value::Layer(f)) if n.as_int().is_some() => {
                let n = n.as_int().unwrap_or(0);
                if !(0..=MAX_REPEAT).contains(&n) {
                    return Ok(self.limit("a repeat count", n, format!("0 to {MAX_REPEAT} repeats"), span));
                }
                return Ok(Value::Layer(Rc::new(LayerFn::Repeat(f.clone(), n as u32))));
            }
            (BinOp::Mul, Value::Layer(_), Value::Float(x)) | (BinOp::Mul, Value::Float(x), Value::Layer(_)) => {
                let at = if matches!(l, Value::Float(_)) { a.span } else { b.span };
                return Ok(self.error(SemaError::RepeatNotWhole { value: *x, span: at }));
            }
            _ => {}
        }
        Ok(self.arith(op, &l, &r, span, a.span, b.span))
    }

    fn arith(&mut self, op: BinOp, l: &Value<'a>, r: &Value<'a>, span: Span, ls: Span, rs: Span) -> Value<'a> {
        let overflow = |me: &mut Self| me.error(SemaError::Arithmetic { message: "integer overflow".into(), span });
        if let (Value::Bool(x), Value::Bool(y)) = (l, r) {
            return match op {
                BinOp::Eq => Value::Bool(x == y),
                BinOp::Ne => Value::Bool(x != y),
                _ => self.type_error("a number", l, ls, None),
            };
        }
        let (Some(x), Some(y)) = (l.as_float(), r.as_float()) else {
            let (bad, at) = if l.as_float().is_none() { (l, ls) } else { (r, rs) };
            let help = match (op, bad) {
                (BinOp::Mul, Value::Layer(_)) => Some("repeat a layer with an integer: `block(...) * 3`"),
                (BinOp::Add, Value::Layer(_)) => Some("`+` adds tensors; apply the layer first: `in -> layer`"),
                _ => None,
            };
            return self.type_error("a number", bad, at, help);
        };
        if let (Value::Int(x), Value::Int(y)) = (l, r) {
            let (x, y) = (*x, *y);
            let v = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::FloorDiv | BinOp::Rem | BinOp::Div if y == 0 => {
                    return self.error(SemaError::Arithmetic { message: "division by zero".into(), span });
                }
                BinOp::FloorDiv => x.checked_div_euclid(y),
                BinOp::Rem => x.checked_rem_euclid(y),
                BinOp::Div => return Value::Float(x as f64 / y as f64),
                _ => return Value::Bool(compare(op, x as f64, y as f64)),
            };
            return v.map(Value::Int).unwrap_or_else(|| overflow(self));
        }
        let v = match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div | BinOp::FloorDiv | BinOp::Rem if y == 0.0 => {
                return self.error(SemaError::Arithmetic { message: "division by zero".into(), span });
            }
            BinOp::Div => x / y,
            BinOp::FloorDiv => (x / y).floor(),
            BinOp::Rem => x.rem_euclid(y),
            _ => return Value::Bool(compare(op, x, y)),
        };
        if v.is_finite() {
            Value::Float(v)
        } else {
            overflow(self)
        }
    }

    pub fn limit(&mut self, what: &str, value: i64, limit: String, span: Span) -> Value<'a> {
        self.error(SemaError::Limit { what: what.into(), value: value.to_string(), limit, span })
    }

    fn chain(&mut self, items: &'a [Expr], env: &Env<'a>) -> Flow<Value<'a>> {
        let mut acc = self.eval(&items[0], env)?;
        for item in &items[1..] {
            let next = self.eval(item, env)?;
            acc = match (acc, next) {
                (Value::Poison, _) | (_, Value::Poison) => Value::Poison,
                (Value::Tensor(t), Value::Layer(f)) => self.apply(&f, t)?,
                (Value::Layer(f), Value::Layer(g)) => Value::Layer(Rc::new(LayerFn::Chain(vec![f, g]))),
                (Value::Tensor(_) | Value::Layer(_), other) => self.type_error(
                    "a layer",
                    &other,
                    item.span,
                    Some("the right of `->` is an op or block, e.g. `conv(64, k=3)`"),
                ),
                (other, _) => self.type_error(
                    "a tensor or a layer",
                    &other,
                    items[0].span,
                    Some("a chain starts from a tensor (`in`) or a layer"),
                ),
            };
        }
        Ok(acc)
    }

    // ----- calls ---------------------------------------------------------------------

    fn call(&mut self, callee: &'a Ident, args: &'a [Arg], span: Span, env: &Env<'a>) -> Flow<Value<'a>> {
        let mut positional = Vec::new();
        let mut named = Vec::new();
        for a in args {
            let v = self.eval(&a.value, env)?;
            match &a.name {
                Some(n) => named.push((n.name.as_str(), v, a.value.span, n.span)),
                None => positional.push((v, a.value.span)),
            }
        }
        if let Some(sig) = builtins::lookup(&callee.name) {
            return self.call_builtin(sig, positional, named, span);
        }
        let Some(&def) = self.index.blocks.get(callee.name.as_str()) else { return Ok(Value::Poison) };
        let input = take_tensor(&mut positional);
        let params: Vec<&'a str> = def.params.iter().map(|p| p.name.name.as_str()).collect();
        if self.given_twice(&callee.name, &params, &positional, &named) {
            return Ok(Value::Poison);
        }
        if positional.len() > params.len() {
            let got = positional.len();
            return Ok(self.error(SemaError::TooManyArguments {
                callee: callee.name.clone(),
                max: params.len(),
                got,
                span,
            }));
        }
        let mut bound: Vec<(String, Value<'a>)> = Vec::new();
        for (i, (v, _)) in positional.into_iter().enumerate() {
            bound.push((params[i].to_string(), v));
        }
        for (n, v, _, _) in named {
            bound.push((n.to_string(), v));
        }
        // Defaults are evaluated in the block's own parameter scope, in order.
        let mut scope: Env<'a> = HashMap::new();
        for p in &def.params {
            let v = match bound.iter().find(|(n, _)| *n == p.name.name) {
                Some((_, v)) => v.clone(),
                None => match &p.default {
                    Some(d) => self.eval(d, &scope)?,
                    None => {
                        let param = p.name.name.clone();
                        return Ok(self.error(SemaError::MissingArgument { callee: callee.name.clone(), param, span }));
                    }
                },
            };
            scope.insert(p.name.name.clone(), v);
        }
        let args = def.params.iter().map(|p| (p.name.name.clone(), scope[&p.name.name].clone())).collect();
        let f = Rc::new(LayerFn::Block { def, args, span });
        match input {
            Some(t) => self.apply(&f, t),
            None => Ok(Value::Layer(f)),
        }
    }

    fn call_builtin(
        &mut self,
        sig: &'static Signature,
        mut positional: Vec<(Value<'a>, Span)>,
        named: Vec<(&'a str, Value<'a>, Span, Span)>,
        span: Span,
    ) -> Flow<Value<'a>> {
        if positional.iter().any(|(v, _)| matches!(v, Value::Poison))
            || named.iter().any(|(_, v, _, _)| matches!(v, Value::Poison))
        {
            return Ok(Value::Poison);
        }
        if sig.variadic {
            let Builtin::Op(kind) = sig.builtin else { return Ok(Value::Poison) };
            let mut operands = Vec::new();
            for (v, s) in positional {
                match v {
                    Value::Tensor(t) => operands.push((t, s)),
                    other => return Ok(self.type_error("a tensor", &other, s, None)),
                }
            }
            if kind == OpKind::Attend {
                let args: Bound<'a> = named
                    .into_iter()
                    .filter_map(|(n, v, s, _)| sig.params.iter().find(|p| **p == n).map(|p| (*p, v, s)))
                    .collect();
                return self.attend_op(&operands, &args, span);
            }
            if operands.len() < 2 {
                return Ok(self.error(SemaError::MissingArgument {
                    callee: sig.name.into(),
                    param: "a second tensor".into(),
                    span,
                }));
            }
            return self.merge_op(kind, sig.name, &operands, span);
        }
        let input = match sig.builtin {
            Builtin::Op(_) => take_tensor(&mut positional),
            Builtin::Fn(_) => None,
        };
        if self.given_twice(sig.name, sig.params, &positional, &named) {
            return Ok(Value::Poison);
        }
        if positional.len() > sig.params.len() {
            let got = positional.len();
            return Ok(self.error(SemaError::TooManyArguments {
                callee: sig.name.into(),
                max: sig.params.len(),
                got,
                span,
            }));
        }
        let mut args: Bound<'a> = Vec::new();
        for (i, (v, s)) in positional.into_iter().enumerate() {
            args.push((sig.params[i], v, s));
        }
        for (n, v, s, _) in named {
            let Some(p) = sig.params.iter().find(|p| **p == n) else { continue };
            args.push((p, v, s));
        }
        match sig.builtin {
            Builtin::Fn(kind) => Ok(self.function(kind, sig.name, &args, span)),
            Builtin::Op(kind) => {
                let f = Rc::new(LayerFn::Op { kind, name: sig.name, args, span });
                match input {
                    Some(t) => self.apply(&f, t),
                    None => Ok(Value::Layer(f)),
                }
            }
        }
    }

    /// Reports each parameter that a positional argument fills and a named one names
    /// again; true if there was one. `positional` excludes the input tensor.
    fn given_twice(
        &mut self,
        callee: &str,
        params: &[&str],
        positional: &[(Value<'a>, Span)],
        named: &[(&str, Value<'a>, Span, Span)],
    ) -> bool {
        let mut found = false;
        for (n, _, _, name_span) in named {
            if let Some(i) = params.iter().take(positional.len()).position(|p| p == n) {
                self.errors.push(SemaError::PositionalAndNamed {
                    callee: callee.into(),
                    name: (*n).into(),
                    positional: positional[i].1,
                    named: *name_span,
                });
                found = true;
            }
        }
        found
    }

    // ----- applying layers -----------------------------------------------------------

    pub fn apply(&mut self, f: &Rc<LayerFn<'a>>, t: Tensor) -> Flow<Value<'a>> {
        match &**f {
            LayerFn::Op { kind, name, args, span } => self.op(*kind, name, args, t, *span),
            LayerFn::Chain(items) => {
                let mut v = Value::Tensor(t);
                for g in items {
                    v = match v {
                        Value::Tensor(t) => self.apply(g, t)?,
                        other => return Ok(other),
                    };
                }
                Ok(v)
            }
            LayerFn::Repeat(g, n) => {
                let mut v = Value::Tensor(t);
                for _ in 0..*n {
                    v = match v {
                        Value::Tensor(t) => self.apply(g, t)?,
                        other => return Ok(other),
                    };
                }
                Ok(v)
            }
            LayerFn::Block { def, args, span } => self.block(def, args, t, *span),
        }
    }

    fn block(&mut self, def: &'a Definition, args: &[(String, Value<'a>)], t: Tensor, span: Span) -> Flow<Value<'a>> {
        if self.open_blocks.len() >= MAX_CALL_DEPTH {
            self.errors.push(SemaError::Limit {
                what: "block nesting".into(),
                value: format!("more than {MAX_CALL_DEPTH} levels"),
                limit: format!("blocks nested at most {MAX_CALL_DEPTH} deep"),
                span,
            });
            return Err(Abort);
        }
        let prefix = self.block_name(&def.name.name);
        let instance = self.blocks.len();
        self.blocks.push(BlockInstance {
            kind: def.name.name.clone(),
            name: prefix.clone(),
            parent: self.open_blocks.last().copied(),
            input: t.node,
            output: t.node,
            span,
        });
        let mut env: Env<'a> = args.iter().cloned().collect();
        env.insert("in".to_string(), Value::Tensor(t));
        self.open_blocks.push(instance);
        let first_error = self.errors.len();
        let result = self.statements(def, &mut env, &prefix);
        self.open_blocks.pop();
        if self.errors.len() > first_error {
            let shown: Vec<String> = args.iter().map(|(n, v)| format!("{n}={}", v.brief())).collect();
            let call = format!("{}({})", def.name.name, shown.join(", "));
            let inner: Vec<SemaError> = self.errors.drain(first_error..).collect();
            let wrapped = inner.into_iter().map(|e| SemaError::InCall { error: Box::new(e), call: call.clone(), span });
            self.errors.extend(wrapped);
        }
        result?;
        Ok(match env.remove("out") {
            Some(Value::Tensor(t)) => {
                self.blocks[instance].output = t.node;
                Value::Tensor(t)
            }
            Some(Value::Poison) | None => Value::Poison,
            Some(other) => {
                let at = def.stmts.iter().rev().find_map(|s| match s {
                    Stmt::Bind { name, value } if name.name == "out" => Some(value.span),
                    _ => None,
                });
                self.type_error(
                    "a tensor for `out`",
                    &other,
                    at.unwrap_or(def.name.span),
                    Some("`out` is the tensor the block returns, e.g. `out = relu(main + in)`"),
                )
            }
        })
    }

    fn statements(&mut self, def: &'a Definition, env: &mut Env<'a>, prefix: &str) -> Flow<()> {
        for stmt in &def.stmts {
            match stmt {
                Stmt::Width { name, value } => {
                    let v = self.eval(value, env)?;
                    let w = self.width_decl(v, name.span, value.span);
                    env.insert(name.name.clone(), w);
                }
                Stmt::Bind { name, value } => {
                    self.push_frame(format!("{prefix}.{}", name.name), false);
                    let v = self.bind(name, value, env);
                    self.pop_frame();
                    env.insert(name.name.clone(), v?);
                }
                Stmt::Input { .. } | Stmt::Rounding { .. } => {}
            }
        }
        Ok(())
    }

    /// `width NAME = value`: a number becomes a shared free group.
    pub fn width_decl(&mut self, v: Value<'a>, name_span: Span, span: Span) -> Value<'a> {
        match v {
            Value::Width(w) => Value::Width(w),
            Value::Poison => Value::Poison,
            other => match self.channel_count(&other, span) {
                Some(n) => Value::Width(WidthVal::Shared(self.ch.fresh(n, false, name_span))),
                None => Value::Poison,
            },
        }
    }
}

fn compare(op: BinOp, x: f64, y: f64) -> bool {
    match op {
        BinOp::Eq => x == y,
        BinOp::Ne => x != y,
        BinOp::Lt => x < y,
        BinOp::Le => x <= y,
        BinOp::Gt => x > y,
        _ => x >= y,
    }
}

/// Removes a leading tensor argument: `relu(x)` applies `relu` to `x`.
fn take_tensor<'a>(positional: &mut Vec<(Value<'a>, Span)>) -> Option<Tensor> {
    match positional.first() {
        Some((Value::Tensor(_), _)) => match positional.remove(0).0 {
            Value::Tensor(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// Converts a `--set` or default value for reporting.
pub fn param_value(v: &Value) -> Option<ParamValue> {
    match v {
        Value::Int(i) => Some(ParamValue::Int(*i)),
        Value::Float(f) => Some(ParamValue::Float(*f)),
        Value::Bool(b) => Some(ParamValue::Bool(*b)),
        _ => None,
    }
}
