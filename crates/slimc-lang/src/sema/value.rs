//! Values of the elaborator: what a `.slim` expression evaluates to.

use std::rc::Rc;

use super::builtins::OpKind;
use super::channels::{GroupId, Term};
use crate::ir::{Interp, Rounding};
use crate::syntax::ast::{Definition, Span};

/// A tensor flowing through the network being built.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// The node that produced it.
    pub node: usize,
    pub term: Term,
    /// Channels at full width.
    pub c: u32,
    pub h: u32,
    pub w: u32,
    /// Where its channel count was set (for diagnostics).
    pub origin: Span,
    /// Where its spatial size was last changed: the input, or a strided or unpadded layer.
    pub size_origin: Span,
}

/// A width argument before it becomes a term.
#[derive(Clone, Debug)]
pub enum WidthVal {
    /// `width NAME = n`: every use is the same group.
    Shared(GroupId),
    /// `fixed(n)`.
    Fixed(u32),
    /// `ratio(t, r[, rounding])`.
    Ratio { of: Term, of_c: u32, ratio: f64, rounding: Option<Rounding> },
}

/// Evaluated arguments of a call, by parameter name.
pub type Bound<'a> = Vec<(&'static str, Value<'a>, Span)>;

/// Something that maps a tensor to a tensor: an op, a block instance, a chain, a repeat.
#[derive(Debug)]
pub enum LayerFn<'a> {
    Op { kind: OpKind, name: &'static str, args: Bound<'a>, span: Span },
    Block { def: &'a Definition, args: Vec<(String, Value<'a>)>, span: Span },
    Chain(Vec<Rc<LayerFn<'a>>>),
    Repeat(Rc<LayerFn<'a>>, u32),
}

#[derive(Clone, Debug)]
pub enum Value<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Tensor(Tensor),
    Layer(Rc<LayerFn<'a>>),
    Width(WidthVal),
    Rounding(Rounding),
    /// `(h, w)`: a per-axis pair of whole numbers.
    Pair([i64; 2]),
    /// `bilinear` (`nearest` is a [`Value::Rounding`] that `upsample` also takes).
    Interp(Interp),
    /// An error was already reported; suppress follow-on errors.
    Poison,
}

impl Value<'_> {
    /// How a type is named in "expected X, found Y".
    pub fn describe(&self) -> String {
        match self {
            Value::Int(v) => format!("the integer {v}"),
            Value::Float(v) => format!("the number {}", number(*v)),
            Value::Bool(v) => format!("the boolean {v}"),
            Value::Tensor(t) => format!("a tensor ({}x{}x{})", t.c, t.h, t.w),
            Value::Layer(_) => "a layer".to_string(),
            Value::Width(_) => "a width".to_string(),
            Value::Rounding(_) => "a rounding policy".to_string(),
            Value::Interp(_) => "an upsampling mode".to_string(),
            Value::Pair([a, b]) => format!("the pair ({a}, {b})"),
            Value::Poison => "an invalid value".to_string(),
        }
    }

    /// The value as an argument in a call shown back to the user: `16`, `1.2`, `floor`.
    pub fn brief(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Float(v) => number(*v),
            Value::Bool(v) => v.to_string(),
            Value::Tensor(t) => format!("a {}x{}x{} tensor", t.c, t.h, t.w),
            Value::Layer(_) => "a layer".to_string(),
            Value::Width(WidthVal::Fixed(n)) => format!("fixed({n})"),
            Value::Width(_) => "a width".to_string(),
            Value::Rounding(r) => r.to_string(),
            Value::Interp(Interp::Nearest) => "nearest".to_string(),
            Value::Interp(Interp::Bilinear) => "bilinear".to_string(),
            Value::Pair([a, b]) => format!("({a}, {b})"),
            Value::Poison => "?".to_string(),
        }
    }

    /// The value as an integer, when it is one (floats that are whole numbers count).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(*v as i64),
            _ => None,
        }
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }
}

/// A computed number as a person would write it: rounded to 10 significant digits, so
/// `0.1 * 12` shows as `1.2`, not `1.2000000000000002`.
pub fn number(v: f64) -> String {
    match format!("{v:.9e}").parse::<f64>() {
        Ok(r) if v.is_finite() => format!("{r}"),
        _ => format!("{v}"),
    }
}
