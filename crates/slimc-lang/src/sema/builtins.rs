//! The built-in ops and functions, with their parameter names (for arity and
//! "did you mean" checks in `resolve.rs`, and argument binding in `eval.rs`).

use crate::ir::Activation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Conv,
    DwConv,
    ConvTranspose,
    Linear,
    Bn,
    Act(Activation),
    MaxPool,
    AvgPool,
    Flatten,
    LayerNorm,
    LayerScale,
    Upsample,
    Dropout,
    DropPath,
    Identity,
    Add,
    Mul,
    Concat,
    Split,
    Slice,
    Shuffle,
    Subsample,
    ZeroPad,
    Attend,
    Tokens,
    ClassToken,
    PosEmbed,
    Token,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FnKind {
    /// `fixed(n)`: a width that is never slimmed.
    Fixed,
    /// `ratio(t, r[, rounding])`: a width derived from tensor `t`.
    Ratio,
    /// `make_divisible(d)`: the MobileNet rounding policy.
    MakeDivisible,
    Min,
    Max,
    /// `int(x)`: truncate towards zero.
    Int,
    /// `round(x)`: half to even, as Python.
    Round,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Op(OpKind),
    Fn(FnKind),
}

pub struct Signature {
    pub name: &'static str,
    pub builtin: Builtin,
    /// Parameter names in positional order.
    pub params: &'static [&'static str],
    /// Takes its tensors by position and its `params` by name only (add, mul and concat
    /// take any number of tensors and nothing else; attend takes q, k, v and `heads`).
    pub variadic: bool,
}

const fn op(name: &'static str, kind: OpKind, params: &'static [&'static str]) -> Signature {
    Signature { name, builtin: Builtin::Op(kind), params, variadic: false }
}

const fn func(name: &'static str, kind: FnKind, params: &'static [&'static str]) -> Signature {
    Signature { name, builtin: Builtin::Fn(kind), params, variadic: false }
}

const fn tensors(name: &'static str, kind: OpKind) -> Signature {
    Signature { name, builtin: Builtin::Op(kind), params: &[], variadic: true }
}

const CONV_PARAMS: &[&str] = &["out", "k", "stride", "padding", "dilation", "groups", "group_width", "bias"];
const POOL_PARAMS: &[&str] = &["k", "stride", "padding", "ceil_mode"];

pub static SIGNATURES: &[Signature] = &[
    op("conv", OpKind::Conv, CONV_PARAMS),
    op("dwconv", OpKind::DwConv, &["k", "stride", "padding", "dilation", "bias"]),
    op("conv_transpose", OpKind::ConvTranspose, &["out", "k", "stride", "padding", "output_padding", "bias"]),
    op("linear", OpKind::Linear, &["out", "bias"]),
    op("bn", OpKind::Bn, &[]),
    op("relu", OpKind::Act(Activation::Relu), &[]),
    op("relu6", OpKind::Act(Activation::Relu6), &[]),
    op("hswish", OpKind::Act(Activation::Hswish), &[]),
    op("swish", OpKind::Act(Activation::Swish), &[]),
    op("sigmoid", OpKind::Act(Activation::Sigmoid), &[]),
    op("hsigmoid", OpKind::Act(Activation::Hsigmoid), &[]),
    op("gelu", OpKind::Act(Activation::Gelu), &[]),
    op("maxpool", OpKind::MaxPool, POOL_PARAMS),
    op("avgpool", OpKind::AvgPool, &["k", "stride", "padding", "ceil_mode", "count_include_pad", "out"]),
    op("flatten", OpKind::Flatten, &[]),
    op("layernorm", OpKind::LayerNorm, &["eps"]),
    op("layer_scale", OpKind::LayerScale, &["init"]),
    op("upsample", OpKind::Upsample, &["scale", "mode", "size"]),
    op("dropout", OpKind::Dropout, &["p"]),
    op("drop_path", OpKind::DropPath, &["p"]),
    op("identity", OpKind::Identity, &[]),
    tensors("add", OpKind::Add),
    tensors("mul", OpKind::Mul),
    tensors("concat", OpKind::Concat),
    Signature {
        name: "attend",
        builtin: Builtin::Op(OpKind::Attend),
        params: &["heads", "kv_heads", "fixed_heads", "window", "shift"],
        variadic: true,
    },
    op("split", OpKind::Split, &["part", "parts"]),
    op("slice", OpKind::Slice, &["start", "end"]),
    op("shuffle", OpKind::Shuffle, &["groups"]),
    op("subsample", OpKind::Subsample, &["stride", "offset"]),
    op("zeropad", OpKind::ZeroPad, &["out"]),
    op("tokens", OpKind::Tokens, &[]),
    op("class_token", OpKind::ClassToken, &[]),
    op("pos_embed", OpKind::PosEmbed, &[]),
    op("token", OpKind::Token, &["index"]),
    func("fixed", FnKind::Fixed, &["channels"]),
    func("ratio", FnKind::Ratio, &["of", "ratio", "rounding"]),
    func("make_divisible", FnKind::MakeDivisible, &["divisor"]),
    func("min", FnKind::Min, &["a", "b"]),
    func("max", FnKind::Max, &["a", "b"]),
    func("int", FnKind::Int, &["x"]),
    func("round", FnKind::Round, &["x"]),
];

/// Names usable as values without definition: the rounding policies and the upsampling
/// modes (`nearest` is both).
pub const CONSTANTS: &[&str] = &["floor", "nearest", "bilinear"];

pub fn lookup(name: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.name == name)
}

/// Up to three names from `pool` close to `name`, closest first.
pub fn similar<'a>(name: &str, pool: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> =
        pool.into_iter().map(|c| (strsim::jaro_winkler(name, c), c)).filter(|(s, c)| *s >= 0.8 && *c != name).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c.to_string()).collect()
}

/// Up to three names from `pool` that a mistyped op or block name was probably meant as:
/// the same first letter and either one edit away (two for names over six letters; a swap
/// of neighbours is one edit) or a prefix of it (`conv2d` → `conv`). A different op that is
/// merely spelled alike (`gelu` → `relu`) is not offered as a fix.
pub fn similar_op<'a>(name: &str, pool: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let first = lower.chars().next();
    let max = if lower.len() > 6 { 2 } else { 1 };
    let mut scored: Vec<(usize, &str)> = pool
        .into_iter()
        .filter(|c| *c != name && c.chars().next() == first)
        .filter_map(|c| {
            let d = strsim::osa_distance(&lower, c);
            let prefix = c.len() >= 2 && lower.starts_with(c);
            (d <= max || prefix).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c.to_string()).collect()
}
