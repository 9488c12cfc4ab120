//! The intermediate representation: one [`Network`] per `network` definition, an arena of
//! layers in forward order with typed handles, every layer's channel count as a [`Width`]
//! over the search dimensions, and the [`SearchSpace`]. Backends (cost, runtime, emit) read
//! only this; it mirrors the language, not any framework.

mod arena;
pub mod attention;
pub mod dump;
mod graph;
pub mod order;
mod space;
mod validate;
mod weights;

pub use arena::{Arena, Handle};
pub use attention::{Heads, Window};
pub use graph::BnFold;
pub use space::{ChannelsError, DecodeError, LayerShape, SpaceEntry};
pub use validate::{validate, IrError};
pub use weights::Weights;

use serde::Serialize;

use crate::syntax::ast::Span;

pub type LayerId = Handle<Layer>;

/// How a real-valued channel count `base × w` becomes an integer (docs/design.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Rounding {
    /// `int(v)` (Joslim, S-ResNet).
    Floor,
    /// Round half to even, as Python's `round`.
    Nearest,
    /// MobileNet's `_make_divisible(v, d)`: nearest multiple of `d`, at least `d`, and
    /// never more than 10 % below `v`.
    MakeDivisible(u32),
}

/// Slack for `base × w` products such as `0.29 × 100 = 28.999…`, so that a written width
/// of 0.29 gives the 29 channels a user expects.
const EPS: f64 = 1e-6;

impl Rounding {
    pub fn apply(self, v: f64) -> u32 {
        let r = match self {
            Rounding::Floor => (v + EPS).floor(),
            Rounding::Nearest => v.round_ties_even(),
            Rounding::MakeDivisible(d) => {
                let d = f64::from(d.max(1));
                let mut n = d.max(((v + d / 2.0 + EPS) / d).floor() * d);
                if n < 0.9 * v - EPS {
                    n += d;
                }
                n
            }
        };
        r.clamp(0.0, f64::from(u32::MAX)) as u32
    }

    /// Parses the CLI spelling: `floor`, `nearest`, `make_divisible(8)` or `make_divisible:8`.
    pub fn parse(s: &str) -> Option<Rounding> {
        match s {
            "floor" => Some(Rounding::Floor),
            "nearest" => Some(Rounding::Nearest),
            "make_divisible" => Some(Rounding::MakeDivisible(8)),
            _ => {
                let rest = s.strip_prefix("make_divisible")?;
                let d = rest.trim_start_matches([':', '(']).trim_end_matches(')');
                d.parse().ok().filter(|&d| d > 0).map(Rounding::MakeDivisible)
            }
        }
    }
}

impl std::fmt::Display for Rounding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rounding::Floor => f.write_str("floor"),
            Rounding::Nearest => f.write_str("nearest"),
            Rounding::MakeDivisible(d) => write!(f, "make_divisible({d})"),
        }
    }
}

/// A layer's output channel count as a function of the search dimensions' channels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Width {
    /// Search dimension `i`.
    Dim(usize),
    /// Never slimmed.
    Fixed(u32),
    /// Concatenation.
    Sum(Vec<Width>),
    /// One of `parts` equal channel splits.
    Part { of: Box<Width>, parts: u32 },
    /// `rounding(ratio × of)`, at least 1 (an SE squeeze).
    Ratio { of: Box<Width>, ratio: f64, rounding: Rounding },
}

impl Width {
    /// The channel count when the dimensions have `dims` channels.
    pub fn eval(&self, dims: &[u32]) -> u32 {
        match self {
            Width::Dim(i) => dims[*i],
            Width::Fixed(n) => *n,
            Width::Sum(items) => items.iter().map(|w| w.eval(dims)).sum(),
            Width::Part { of, parts } => of.eval(dims) / parts,
            Width::Ratio { of, ratio, rounding } => rounding.apply(ratio * f64::from(of.eval(dims))).max(1),
        }
    }

    /// Every search dimension this width depends on.
    pub fn dims(&self, out: &mut Vec<usize>) {
        match self {
            Width::Dim(i) => out.push(*i),
            Width::Fixed(_) => {}
            Width::Sum(items) => items.iter().for_each(|w| w.dims(out)),
            Width::Part { of, .. } | Width::Ratio { of, .. } => of.dims(out),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Relu6,
    Hswish,
    Swish,
    Sigmoid,
    Hsigmoid,
    /// `x · Φ(x) = x · (1 + erf(x / √2)) / 2`, the exact form (PyTorch's default).
    Gelu,
}

/// The output size of an [`Op::Upsample`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// `scale` times the input, per axis (`upsample(scale=2)`).
    Scale(u32),
    /// A fixed `[H, W]` (`upsample(size=(65, 65))`).
    Size([u32; 2]),
    /// The size of the layer's second input (`upsample(size=t)`, PyTorch's
    /// `F.interpolate(x, size=t.shape[-2:])`), whatever the network's input size.
    Like,
}

impl Resize {
    /// The output size for an input of `input` pixels; `like` is the second input's size
    /// (read only for [`Resize::Like`]).
    pub fn output(self, input: [usize; 2], like: Option<[usize; 2]>) -> [usize; 2] {
        match self {
            Resize::Scale(s) => input.map(|v| v * s as usize),
            Resize::Size(size) => size.map(|v| v as usize),
            Resize::Like => like.unwrap_or(input),
        }
    }
}

/// How [`Op::Upsample`] fills the new pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interp {
    Nearest,
    Bilinear,
}

/// How a convolution's channels are grouped, evaluated at each width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Groups {
    /// A fixed number of groups (1 for a dense conv).
    Count(u32),
    /// Groups of this many channels (RegNet's group width): `groups = in / k`.
    Width(u32),
    /// One group per input channel; output channels follow the input.
    Depthwise,
}

impl Groups {
    pub fn eval(self, in_c: u32) -> u32 {
        match self {
            Groups::Count(n) => n,
            Groups::Width(k) => (in_c / k).max(1),
            Groups::Depthwise => in_c,
        }
    }
}

/// What each layer computes: the specification every backend (runtime, ONNX, Burn export,
/// emitted code) implements and is tested against. Tensors are `[N, C, H, W]`; `C` is the
/// layer's channel count at the width in use ([`LayerShape`]): weights are used as their
/// leading slices (`[..out, ..in / groups]`), so a narrower width is a prefix of a wider one.
/// Output sizes follow PyTorch: `floor((H + 2p − d(k − 1) − 1) / s) + 1`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The network input, `in_channels × size × size`; never slimmed. Reads nothing.
    Input,
    /// 2-D cross-correlation, zero padding: `y[o] = b[o] + Σ_{i in o's group} W[o, i] ⋆ x[i]`
    /// with `groups` evaluated at the input width ([`Groups::eval`]). Bias only if `bias`.
    Conv { kernel: [u32; 2], stride: [u32; 2], padding: [u32; 2], dilation: [u32; 2], groups: Groups, bias: bool },
    /// Transposed convolution (the adjoint of a strided conv; a learned upsampling), dense,
    /// zero padding: input pixel `(y, x)` adds `W[i, o] · x[i, y, x]` to the output window at
    /// `(y·s − p, x·s − p)`, so `H_out = (H − 1)·s − 2p + k + output_padding`. `W` is
    /// `[in, out, kh, kw]` (PyTorch's layout), used as its slice `[..in, ..out]`.
    ConvTranspose { kernel: [u32; 2], stride: [u32; 2], padding: [u32; 2], output_padding: [u32; 2], bias: bool },
    /// `y = x W + b` on a `[N, C]` input (a 1×1 map or a [`Op::Flatten`]ed one), `W` stored
    /// `[in, out]`.
    Linear { bias: bool },
    /// Batch norm, ε = 1e-5: `y = γ (x − μ) / sqrt(σ² + ε) + β` per channel. Training uses
    /// the batch's μ and biased σ² = mean((x − μ)²) over N, H, W (computed in two passes,
    /// never as E[x²] − μ²); evaluation uses stored statistics, the unbiased variance
    /// (× n / (n − 1)) averaged over calibration batches at that width.
    BatchNorm,
    /// An elementwise activation (see [`Activation`]; hswish `x·relu6(x + 3)/6`, hsigmoid
    /// `relu6(x + 3)/6`, swish `x·sigmoid(x)`, gelu `x·(1 + erf(x/√2))/2`).
    Act(Activation),
    /// Max over each window; padded positions never win. With `ceil_mode` the output size
    /// rounds up, PyTorch's rule: `ceil((H + 2p − k) / s) + 1`, less one when that last window
    /// would start beyond `H + p` (in the right padding).
    MaxPool { kernel: [u32; 2], stride: [u32; 2], padding: [u32; 2], ceil_mode: bool },
    /// Mean over each window, sizes as [`Op::MaxPool`]. The divisor counts the zero-padded
    /// positions when `count_include_pad` (PyTorch's default), else only the input's; the
    /// positions a `ceil_mode` window reaches past the padding never count.
    AvgPool { kernel: [u32; 2], stride: [u32; 2], padding: [u32; 2], ceil_mode: bool, count_include_pad: bool },
    /// Mean over H and W: `[N, C, H, W] → [N, C, 1, 1]`.
    GlobalAvgPool,
    /// Adaptive average pooling to `out` = `[OH, OW]` (PyTorch's rule): output cell `i` of a
    /// side of length `H` averages input rows `floor(i·H / OH) .. ceil((i + 1)·H / OH)`.
    AdaptiveAvgPool { out: [u32; 2] },
    /// `[N, C, H, W] → [N, C·H·W, 1, 1]`, row-major (channel, then row, then column), so the
    /// first `c·H·W` features are those of the first `c` channels: its width is the input's
    /// times `H·W` (a [`Width::Ratio`] with floor rounding, exact for whole numbers).
    Flatten,
    /// Layer norm over the channels at each position (ConvNeXt's `LayerNorm2d`):
    /// `y[c] = γ[c] (x[c] − μ) / sqrt(σ² + eps) + β[c]`, μ and the biased σ² over the
    /// active channels of one sample and position; the same in training and evaluation.
    LayerNorm { eps: f64 },
    /// A learnable per-channel multiplier `y[c] = γ[c] · x[c]` (ConvNeXt's layer scale),
    /// γ initialised to `init`; C parameters, no MACs.
    LayerScale { init: f64 },
    /// Resampling to the size [`Resize`] gives (`Like` reads a second input, only for its
    /// size), per axis with `r = in / out`: nearest copies input pixel
    /// `min(floor(o · r), in − 1)` with `r` in f32 (PyTorch's `nearest`); bilinear is
    /// PyTorch's `align_corners=False` (half-pixel centres: source coordinate
    /// `(o + 0.5) · r − 0.5` clamped at 0, the neighbour past the last pixel repeated). No
    /// antialiasing when `out < in`.
    Upsample { to: Resize, mode: Interp },
    /// Multi-head scaled dot-product attention over the map's positions (each of the H·W
    /// pixels, row by row, is a token). Inputs q `[C, H, W]`, k and v `[C / share, H, W]`.
    /// [`Heads`] splits the channels into heads (`Width(d)`: head `h` is channels
    /// `h·d .. (h+1)·d`, a narrower width keeps whole heads; `Count(n)`: channel `j·n + h`
    /// is dimension `j` of head `h`, a narrower width narrows every head); k and v split
    /// the same way into `heads / share` heads, and query head `h` reads key/value head
    /// `h / share` (grouped-query attention; `share = 1` is multi-head attention). Per
    /// head, with `Q, K, V` its `[L, d]` rows: `softmax(Q Kᵀ / √d + B) V` (softmax over
    /// the keys), written back to the head's channels.
    ///
    /// With a [`Window`] (Swin), the map (H and W multiples of its size) is first rolled
    /// by `−shift` rows and columns (`x'[y, x] = x[y + shift, x + shift]`, wrapping round;
    /// no shift on a side one window covers), cut into `size × size` windows, row by row,
    /// whose `L = size²` tokens attend among themselves; `B` is the learned relative
    /// position bias, `table[h, index(p, q)]` ([`Window::relative_index`]), plus
    /// [`attention::MASKED`] between tokens of a shifted window from different regions
    /// ([`Window::mask`]); the result is rolled back. Without a window, `L = H·W` and `B = 0`.
    ///
    /// Learns the table `[heads, (2·size − 1)²]` (initialised N(0, 0.02²); a narrower
    /// width of [`Heads::Width`] uses the leading heads' rows), nothing without a window.
    /// Its two products (`2·H·W·L·C` MACs) are reported apart from the conv and linear
    /// MACs ([`crate::cost::attention_macs`]).
    Attend { heads: Heads, share: u32, window: Option<Window> },
    /// The map's positions as one row of tokens: `[C, H, W] → [C, 1, H·W]`, row by row
    /// (PyTorch's `x.flatten(2)`).
    Tokens,
    /// A learned token `[C]` put before a row of tokens: `[C, 1, L] → [C, 1, L + 1]` (ViT's
    /// class token, initialised to zeros). Stored `[C, 1]`; a narrower width uses its
    /// leading channels.
    ClassToken,
    /// A learned embedding `[C, H·W]` added to the map, one vector per position, row by row
    /// (ViT's position embedding, initialised N(0, 0.02²)). `positions` is `H·W`; a
    /// narrower width uses the leading channels.
    PosEmbed { positions: u32 },
    /// Position `index` of the map, row by row, as a 1×1 map: `[C, H, W] → [C, 1, 1]`
    /// (`token(index=0)` reads ViT's class token).
    Token { index: u32 },
    /// Inverted dropout with probability `p` in training; the identity in evaluation.
    Dropout { p: f64 },
    /// Stochastic depth: in training each sample's whole tensor is zeroed with probability
    /// `p` and the others scaled by `1 / (1 − p)`; the identity in evaluation.
    DropPath { p: f64 },
    /// Elementwise sum of two or more inputs of equal shape.
    Add,
    /// Elementwise product of two or more inputs; a `[N, C, 1, 1]` gate broadcasts over H and
    /// W, a one-channel `[N, 1, H, W]` map (a spatial attention gate) over C.
    Mul,
    /// Channels of two or more inputs, in input order.
    Concat,
    /// Channels `[part·C/parts, (part+1)·C/parts)` of the input (`C` its width).
    Split { part: u32, parts: u32 },
    /// Channels `[start, end)` of the input. The input keeps its full-width count at every
    /// width (a slice pins it: the language makes its width fixed) and so does the output,
    /// `end − start` channels: an unequal split, or a trim (GhostNet's `x[:, :oup]`).
    Slice { start: u32, end: u32 },
    /// Channel shuffle: view the channels as `[groups, C/groups]`, transpose, flatten.
    Shuffle { groups: u32 },
    /// Spatial subsampling from an offset `(oy, ox)` (each below the stride):
    /// `x[:, :, oy::s, ox::s]`, `ceil((H − oy) / s)` rows. At offset 0 an option-A shortcut;
    /// four offsets concatenated are Swin's patch merging (space-to-depth).
    Subsample { stride: u32, offset: [u32; 2] },
    /// Zero channels appended after the input's up to the output width (option-A shortcut).
    ZeroPad,
}

impl Op {
    /// The short name used in tables, JSON and layer names.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv { groups: Groups::Depthwise, .. } => "dwconv",
            Op::Conv { .. } => "conv",
            Op::ConvTranspose { .. } => "conv_transpose",
            Op::Linear { .. } => "linear",
            Op::BatchNorm => "bn",
            Op::Act(Activation::Relu) => "relu",
            Op::Act(Activation::Relu6) => "relu6",
            Op::Act(Activation::Hswish) => "hswish",
            Op::Act(Activation::Swish) => "swish",
            Op::Act(Activation::Sigmoid) => "sigmoid",
            Op::Act(Activation::Hsigmoid) => "hsigmoid",
            Op::Act(Activation::Gelu) => "gelu",
            Op::MaxPool { .. } => "maxpool",
            Op::AvgPool { .. } => "avgpool",
            Op::GlobalAvgPool => "global_avgpool",
            Op::AdaptiveAvgPool { .. } => "adaptive_avgpool",
            Op::Flatten => "flatten",
            Op::LayerNorm { .. } => "layernorm",
            Op::LayerScale { .. } => "layer_scale",
            Op::Upsample { .. } => "upsample",
            Op::Attend { .. } => "attend",
            Op::Tokens => "tokens",
            Op::ClassToken => "class_token",
            Op::PosEmbed { .. } => "pos_embed",
            Op::Token { .. } => "token",
            Op::Dropout { .. } => "dropout",
            Op::DropPath { .. } => "drop_path",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Concat => "concat",
            Op::Split { .. } => "split",
            Op::Slice { .. } => "slice",
            Op::Shuffle { .. } => "shuffle",
            Op::Subsample { .. } => "subsample",
            Op::ZeroPad => "zeropad",
        }
    }

    pub fn kernel(&self) -> [u32; 2] {
        match self {
            Op::Conv { kernel, .. }
            | Op::ConvTranspose { kernel, .. }
            | Op::MaxPool { kernel, .. }
            | Op::AvgPool { kernel, .. } => *kernel,
            _ => [1, 1],
        }
    }

    pub fn stride(&self) -> [u32; 2] {
        match self {
            Op::Conv { stride, .. }
            | Op::ConvTranspose { stride, .. }
            | Op::MaxPool { stride, .. }
            | Op::AvgPool { stride, .. } => *stride,
            Op::Subsample { stride, .. } => [*stride, *stride],
            _ => [1, 1],
        }
    }
}

/// Which part of the network a layer belongs to; search dimensions are ordered by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Section {
    Input,
    Stem,
    /// Stage `i`, counted from 1 as in the papers' tables.
    Stage(usize),
    Head,
}

impl Section {
    /// The number used in JSON: 0 for the input and stem, `i` for stage `i`, stages + 1 for the head.
    pub fn index(self, stages: usize) -> usize {
        match self {
            Section::Input | Section::Stem => 0,
            Section::Stage(i) => i,
            Section::Head => stages + 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Layer {
    /// Hierarchical name, e.g. `stage2.0.main.conv1`.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<LayerId>,
    /// Output channels as a function of the search dimensions.
    pub width: Width,
    /// Output channels at full width.
    pub channels: u32,
    /// Output height and width.
    pub hw: [u32; 2],
    pub section: Section,
    /// The innermost block instance the layer belongs to (an index into
    /// [`Network::blocks`]); `None` for layers written in the network itself.
    pub block: Option<usize>,
    #[serde(skip)]
    pub span: Span,
}

/// One call of a block: the emit backend turns each kind into a struct.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Block {
    /// The block definition's name, e.g. `basic_a`.
    pub kind: String,
    /// The name prefix of its layers, e.g. `stage2.0` or `stage2.0.main.squeeze_excite`.
    pub name: String,
    /// The enclosing instance, for blocks called inside blocks.
    pub parent: Option<usize>,
    /// The layer whose output is the block's `in`.
    pub input: LayerId,
    /// The layer whose output is the block's `out` (its input, for a block that returns `in`).
    pub output: LayerId,
    /// The call that made this instance (shared by the instances of `block(...) * n`).
    #[serde(skip)]
    pub span: Span,
}

/// A parameter value of a network, after defaults and `--set`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// One search dimension: a set of layers whose output channels move together.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dim {
    /// Channels at full width (the declared count).
    pub base: u32,
    pub section: Section,
    /// Every decoded count is a multiple of this (group widths, channel splits).
    pub divisor: u32,
    /// Lower bounds from zero-padded shortcuts: this dimension is at least each of these.
    pub at_least: Vec<Width>,
    /// Layers whose output width is exactly this dimension.
    pub layers: Vec<LayerId>,
    /// Where the channel counts merged into this dimension were written: the ops that
    /// declare them and the `width NAME` statements (sorted, each once).
    #[serde(skip)]
    pub origins: Vec<Span>,
}

/// The derived search space: what the reference code's `search_dim`, `channel_space`,
/// `decode_wm`, `decode_ch` and `set_real_ch` compute by hand.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchSpace {
    pub dims: Vec<Dim>,
    pub stages: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Network {
    pub name: String,
    pub params: Vec<(String, ParamValue)>,
    /// `[C, H, W]`.
    pub input: [u32; 3],
    pub rounding: Rounding,
    pub layers: Arena<Layer>,
    pub output: LayerId,
    pub space: SearchSpace,
    /// Block instances in call order; a parent comes before its children.
    pub blocks: Vec<Block>,
}

impl Network {
    /// The layers in forward order, without the input.
    pub fn compute_layers(&self) -> impl Iterator<Item = (LayerId, &Layer)> {
        self.layers.iter().filter(|(_, l)| l.op != Op::Input)
    }

    /// Whether a training forward draws random numbers (dropout or drop path with p > 0).
    pub fn draws_random(&self) -> bool {
        self.compute_layers().any(|(_, l)| matches!(l.op, Op::Dropout { p } | Op::DropPath { p } if p > 0.0))
    }
}
