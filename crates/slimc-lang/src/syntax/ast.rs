//! The abstract syntax tree: plain data with byte spans, no pest types.

use std::fmt;

/// A byte range `start..end` in the source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A name together with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub networks: Vec<Definition>,
    pub blocks: Vec<Definition>,
}

/// A `network` or a `block`: a name, parameters and statements.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub name: Ident,
    pub params: Vec<Param>,
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub default: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `input C x H x W` (networks only).
    Input { dims: [Expr; 3], span: Span },
    /// `rounding POLICY` (networks only).
    Rounding { policy: Expr, span: Span },
    /// `width NAME = EXPR`: a named, shared width.
    Width { name: Ident, value: Expr },
    /// `NAME = EXPR`.
    Bind { name: Ident, value: Expr },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Arrow,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Arrow => "->",
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Bool(bool),
    Name(Ident),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a -> b -> c`, kept flat so long chains do not nest.
    Chain(Vec<Expr>),
    Call {
        callee: Ident,
        args: Vec<Arg>,
    },
    Field(Box<Expr>, Ident),
    /// `(a, b)`: a per-axis pair (height, width).
    Tuple(Vec<Expr>),
    /// `if c1 { e1 } else if c2 { e2 } else { e3 }`.
    If {
        arms: Vec<(Expr, Expr)>,
        otherwise: Box<Expr>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}
