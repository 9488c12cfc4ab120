//! One function per op kind: checks arguments, infers the output's channel term and
//! spatial size (`shape`), and emits the node.

use super::builtins::OpKind;
use super::channels::{Conflict, Term};
use super::error::{Operand, SemaError};
use super::eval::{limits::*, Elab, Flow, Node};
use super::value::*;
use super::warning::Warning;
use crate::ir::{Groups, Heads, Interp, Op, Resize, Rounding, Window};
use crate::syntax::ast::Span;

/// Looks up an argument by parameter name.
fn arg<'b, 'a>(args: &'b Bound<'a>, name: &str) -> Option<&'b (&'static str, Value<'a>, Span)> {
    args.iter().find(|(n, _, _)| *n == name)
}

/// `linear(512, classes)` is a PyTorch habit: the in-features are inferred here.
const LINEAR_BIAS: &str = "`linear`'s second parameter is `bias` (true or false); its input features come from the \
incoming tensor, so `linear(512, classes)` is written `linear(classes)`";

impl<'a> Elab<'a, '_> {
    fn int_arg(&mut self, args: &Bound<'a>, name: &str, default: i64, lo: i64, hi: i64) -> Option<u32> {
        let Some((_, v, s)) = arg(args, name) else { return Some(default as u32) };
        match v.as_int() {
            Some(n) if (lo..=hi).contains(&n) => Some(n as u32),
            Some(n) => {
                self.limit(&format!("`{name}`"), n, format!("{lo} to {hi}"), *s);
                None
            }
            None => {
                let (v, s) = (v.clone(), *s);
                self.type_error("an integer", &v, s, None);
                None
            }
        }
    }

    /// A per-axis argument: a whole number for both axes, or a pair `(height, width)`.
    fn pair_arg(&mut self, args: &Bound<'a>, name: &str, default: [u32; 2], lo: i64, hi: i64) -> Option<[u32; 2]> {
        let Some((_, v, s)) = arg(args, name) else { return Some(default) };
        let pair = match v {
            Value::Pair(p) => *p,
            v => match v.as_int() {
                Some(n) => [n, n],
                None => {
                    let (v, s) = (v.clone(), *s);
                    self.type_error(&format!("an integer or a pair `(height, width)` for `{name}`"), &v, s, None);
                    return None;
                }
            },
        };
        if let Some(&n) = pair.iter().find(|n| !(lo..=hi).contains(*n)) {
            self.limit(&format!("`{name}`"), n, format!("{lo} to {hi}"), *s);
            return None;
        }
        Some(pair.map(|n| n as u32))
    }

    /// A boolean argument; `help` explains a wrong value (the parameter's place and meaning).
    fn bool_arg(&mut self, args: &Bound<'a>, name: &str, default: bool, help: &str) -> Option<bool> {
        match arg(args, name) {
            None => Some(default),
            Some((_, Value::Bool(b), _)) => Some(*b),
            Some((_, v, s)) => {
                let (v, s) = (v.clone(), *s);
                self.type_error(&format!("a boolean for `{name}`"), &v, s, Some(help));
                None
            }
        }
    }

    /// The `out` width argument of conv, linear and zeropad as a term, its full-width
    /// count and where it was set.
    fn width_arg(&mut self, args: &Bound<'a>, op: &str, span: Span) -> Option<(Term, u32, Span)> {
        let Some((_, v, s)) = arg(args, "out") else {
            self.errors.push(SemaError::MissingArgument { callee: op.into(), param: "out".into(), span });
            return None;
        };
        let (v, s) = (v.clone(), *s);
        match v {
            Value::Width(WidthVal::Shared(g)) => {
                let base = self.ch.base_of(g);
                Some((Term::G(g), base, span))
            }
            Value::Width(WidthVal::Fixed(n)) => Some((Term::G(self.ch.fresh(n, true, span)), n, span)),
            Value::Width(WidthVal::Ratio { of, of_c, ratio, rounding }) => {
                let rounding = rounding.unwrap_or(self.rounding);
                let base = rounding.apply(ratio * f64::from(of_c)).max(1);
                if i64::from(base) > MAX_CHANNELS {
                    self.limit("a channel count", i64::from(base), format!("1 to {MAX_CHANNELS} channels"), s);
                    return None;
                }
                Some((Term::Ratio(Box::new(of), ratio, rounding), base, span))
            }
            other => {
                let n = self.channel_count(&other, s)?;
                Some((Term::G(self.ch.fresh(n, false, span)), n, span))
            }
        }
    }

    fn node(
        &mut self,
        op: Op,
        inputs: &[&Tensor],
        out: (Term, u32, Span),
        hw: [u32; 2],
        span: Span,
        sets: bool,
    ) -> Flow<Value<'a>> {
        let name = self.node_name(op.kind());
        let (term, c, origin) = out;
        let node = Node {
            name,
            op,
            inputs: inputs.iter().map(|t| t.node).collect(),
            term: term.clone(),
            channels: c,
            hw,
            section: self.section,
            span,
            sets_width: sets,
            block: None,
        };
        let id = self.emit(node, span)?;
        let size_origin = match inputs.first() {
            Some(t) if [t.h, t.w] == hw => t.size_origin,
            _ => span,
        };
        Ok(Value::Tensor(Tensor { node: id, term, c, h: hw[0], w: hw[1], origin, size_origin }))
    }

    /// An op that keeps its input's channels: only the spatial size may change.
    fn pass(&mut self, op: Op, t: &Tensor, span: Span) -> Flow<Value<'a>> {
        self.pass_hw(op, t, [t.h, t.w], span)
    }

    fn pass_hw(&mut self, op: Op, t: &Tensor, hw: [u32; 2], span: Span) -> Flow<Value<'a>> {
        self.node(op, &[t], (t.term.clone(), t.c, t.origin), hw, span, false)
    }

    /// Output size of a sliding window `[kernel, stride, padding, dilation]`, or an error
    /// when the window does not fit. `ceil` rounds up as PyTorch's `ceil_mode` (see
    /// [`Op::MaxPool`]).
    fn window(&mut self, t: &Tensor, [k, s, p, d]: [[u32; 2]; 4], ceil: bool, span: Span) -> Option<[u32; 2]> {
        let mut out = [0; 2];
        for (i, size) in [t.h, t.w].into_iter().enumerate() {
            let (k, s, p, d) = (k[i], s[i], p[i], d[i]);
            let reach = d * (k - 1) + 1;
            let padded = size + 2 * p;
            if padded < reach {
                let map = [t.h, t.w];
                self.errors.push(SemaError::KernelTooLarge { span, kernel: k, dilation: d, size, padding: p, map });
                return None;
            }
            out[i] = if ceil {
                let n = (padded - reach).div_ceil(s) + 1;
                // The last window must start inside the input or its left padding.
                if (n - 1) * s >= size + p {
                    n - 1
                } else {
                    n
                }
            } else {
                (padded - reach) / s + 1
            };
        }
        Some(out)
    }

    fn divisible(&mut self, term: &Term, k: u32, what: &str, c: u32, span: Span, origin: Span) -> bool {
        match self.ch.require_divisible(term, k) {
            Ok(()) => true,
            Err(conflict) => {
                self.conflict(conflict, span, what, c, k, origin);
                false
            }
        }
    }

    fn conflict(&mut self, conflict: Conflict, span: Span, what: &str, c: u32, k: u32, origin: Span) {
        let e = match conflict {
            Conflict::NotDivisible { channels, divisor, origin } => {
                SemaError::NotDivisible { what: what.into(), channels, divisor, span, origin }
            }
            Conflict::DerivedDivisibility => SemaError::DerivedConflict {
                span,
                help: format!("{what} {k} needs a count the solver can choose; a ratio-derived width ({c} channels) cannot be steered, use a plain width"),
            },
            Conflict::Cyclic => SemaError::DerivedConflict { span, help: "a width cannot be derived from itself".into() },
            Conflict::Base { left, right } => SemaError::NotDivisible { what: what.into(), channels: left.max(right), divisor: k, span, origin },
            Conflict::FixedForced { fixed, fixed_origin, other_origin } => SemaError::FixedForced { span, fixed, fixed_origin, other_origin },
            Conflict::Derived => SemaError::DerivedConflict { span, help: "tie plain widths instead".into() },
        };
        self.errors.push(e);
    }

    pub fn op(&mut self, kind: OpKind, name: &str, args: &Bound<'a>, t: Tensor, span: Span) -> Flow<Value<'a>> {
        match kind {
            OpKind::Conv => self.conv(args, t, span),
            OpKind::DwConv => self.dwconv(args, t, span),
            OpKind::ConvTranspose => self.conv_transpose(args, t, span),
            OpKind::Linear => {
                let Some(out) = self.width_arg(args, name, span) else { return Ok(Value::Poison) };
                let Some(bias) = self.bool_arg(args, "bias", true, LINEAR_BIAS) else { return Ok(Value::Poison) };
                if !self.flat(&t, "linear", span) {
                    return Ok(Value::Poison);
                }
                self.node(Op::Linear { bias }, &[&t], out, [1, 1], span, true)
            }
            OpKind::Bn => self.pass(Op::BatchNorm, &t, span),
            OpKind::Act(a) => self.pass(Op::Act(a), &t, span),
            OpKind::Identity => Ok(Value::Tensor(t)),
            OpKind::Flatten => self.flatten(t, span),
            OpKind::LayerNorm => {
                let Some(eps) = self.positive_arg(args, "eps", 1e-5) else { return Ok(Value::Poison) };
                self.pass(Op::LayerNorm { eps }, &t, span)
            }
            OpKind::LayerScale => {
                let Some(init) = self.positive_arg(args, "init", 1e-6) else { return Ok(Value::Poison) };
                self.pass(Op::LayerScale { init }, &t, span)
            }
            OpKind::Upsample => {
                let mode = match arg(args, "mode") {
                    None | Some((_, Value::Rounding(Rounding::Nearest), _)) => Interp::Nearest,
                    Some((_, Value::Interp(mode), _)) => *mode,
                    Some((_, v, s)) => {
                        let (v, s) = (v.clone(), *s);
                        let help = "`mode` is `nearest` (copies pixels) or `bilinear` (half-pixel centres, PyTorch's `align_corners=False`)";
                        self.type_error("`nearest` or `bilinear`", &v, s, Some(help));
                        return Ok(Value::Poison);
                    }
                };
                let (to, size, like) = match (arg(args, "size"), arg(args, "scale")) {
                    (Some(_), Some((_, _, at))) => {
                        self.errors.push(SemaError::Misplaced {
                            what: "both `scale` and `size` given".into(),
                            span: *at,
                            help: "give a whole `scale` (`upsample(scale=2)`) or the output's `size` (`upsample(size=(65, 65))`, or `upsample(size=x)` for tensor `x`'s size), not both".into(),
                        });
                        return Ok(Value::Poison);
                    }
                    // To another tensor's size, as `F.interpolate(x, size=y.shape[-2:])`.
                    (Some((_, Value::Tensor(like), _)), None) => (Resize::Like, [like.h, like.w], Some(like.clone())),
                    (Some(_), None) => {
                        let Some(size) = self.pair_arg(args, "size", [1, 1], 1, MAX_SPATIAL) else {
                            return Ok(Value::Poison);
                        };
                        (Resize::Size(size), size, None)
                    }
                    (None, _) => {
                        let Some(scale) = self.int_arg(args, "scale", 2, 1, 64) else { return Ok(Value::Poison) };
                        let (h, w) = (i64::from(t.h) * i64::from(scale), i64::from(t.w) * i64::from(scale));
                        if h.max(w) > MAX_SPATIAL {
                            return Ok(self.limit(
                                "an upsampled size",
                                h.max(w),
                                format!("at most {MAX_SPATIAL}"),
                                span,
                            ));
                        }
                        (Resize::Scale(scale), [h as u32, w as u32], None)
                    }
                };
                let op = Op::Upsample { to, mode };
                match like {
                    Some(like) => self.node(op, &[&t, &like], (t.term.clone(), t.c, t.origin), size, span, false),
                    None => self.pass_hw(op, &t, size, span),
                }
            }
            OpKind::Dropout | OpKind::DropPath => {
                let p = match arg(args, "p") {
                    None => 0.0,
                    Some((_, v, s)) => match v.as_float() {
                        Some(p) if (0.0..1.0).contains(&p) => p,
                        _ => {
                            let (v, s) = (v.clone(), *s);
                            self.type_error("a probability in [0, 1)", &v, s, None);
                            return Ok(Value::Poison);
                        }
                    },
                };
                self.pass(if kind == OpKind::Dropout { Op::Dropout { p } } else { Op::DropPath { p } }, &t, span)
            }
            OpKind::MaxPool | OpKind::AvgPool => self.pool(kind, args, t, span),
            OpKind::Split => {
                let Some(parts) = self.int_arg(args, "parts", 2, 2, 64) else { return Ok(Value::Poison) };
                let Some(part) = self.int_arg(args, "part", 0, 0, i64::from(parts) - 1) else {
                    return Ok(Value::Poison);
                };
                if !t.c.is_multiple_of(parts) {
                    self.errors.push(SemaError::NotDivisible {
                        what: "split parts".into(),
                        channels: t.c,
                        divisor: parts,
                        span,
                        origin: t.origin,
                    });
                    return Ok(Value::Poison);
                }
                let term = match self.ch.part(&t.term, parts) {
                    Ok(term) => term,
                    Err(c) => {
                        self.conflict(c, span, "split parts", t.c, parts, t.origin);
                        return Ok(Value::Poison);
                    }
                };
                self.node(Op::Split { part, parts }, &[&t], (term, t.c / parts, t.origin), [t.h, t.w], span, false)
            }
            // Channels [start, end) of a width that no longer slims: the input is pinned at
            // its full-width count (W0306 when it was slimmable), the output is fixed.
            OpKind::Slice => {
                let c = i64::from(t.c);
                let Some(start) = self.int_arg(args, "start", 0, 0, c - 1) else { return Ok(Value::Poison) };
                let Some(end) = self.int_arg(args, "end", c, i64::from(start) + 1, c) else {
                    return Ok(Value::Poison);
                };
                if let Err(conflict) = self.ch.pin(&t.term, span) {
                    self.conflict(conflict, span, "slice", t.c, 1, t.origin);
                    return Ok(Value::Poison);
                }
                let term = Term::G(self.ch.fresh(end - start, true, span));
                self.node(Op::Slice { start, end }, &[&t], (term, end - start, span), [t.h, t.w], span, false)
            }
            OpKind::Shuffle => {
                let Some(groups) = self.int_arg(args, "groups", 2, 1, 1024) else { return Ok(Value::Poison) };
                if !self.divisible(&t.term, groups, "shuffle groups", t.c, span, t.origin) {
                    return Ok(Value::Poison);
                }
                self.pass(Op::Shuffle { groups }, &t, span)
            }
            OpKind::Subsample => {
                let Some(stride) = self.int_arg(args, "stride", 2, 1, MAX_KERNEL) else { return Ok(Value::Poison) };
                let top = i64::from(stride) - 1;
                let Some(offset) = self.pair_arg(args, "offset", [0, 0], 0, top) else { return Ok(Value::Poison) };
                // Every offset keeps at least one pixel only on a map at least stride wide.
                if offset.iter().zip([t.h, t.w]).any(|(&o, side)| o >= side) {
                    let at = arg(args, "offset").map_or(span, |a| a.2);
                    return Ok(self.limit(
                        "an offset",
                        i64::from(offset[0].max(offset[1])),
                        format!("below the map's size ({}x{})", t.h, t.w),
                        at,
                    ));
                }
                let hw = [(t.h - offset[0]).div_ceil(stride), (t.w - offset[1]).div_ceil(stride)];
                self.pass_hw(Op::Subsample { stride, offset }, &t, hw, span)
            }
            OpKind::Tokens => {
                let tokens = i64::from(t.h) * i64::from(t.w);
                if tokens > MAX_SPATIAL {
                    return Ok(self.limit("a row of tokens", tokens, format!("at most {MAX_SPATIAL}"), span));
                }
                self.pass_hw(Op::Tokens, &t, [1, tokens as u32], span)
            }
            OpKind::ClassToken => {
                if t.h != 1 {
                    self.errors.push(SemaError::NeedsTokens { op: "class_token".into(), span, h: t.h, w: t.w });
                    return Ok(Value::Poison);
                }
                if i64::from(t.w) + 1 > MAX_SPATIAL {
                    return Ok(self.limit(
                        "a row of tokens",
                        i64::from(t.w) + 1,
                        format!("at most {MAX_SPATIAL}"),
                        span,
                    ));
                }
                self.pass_hw(Op::ClassToken, &t, [1, t.w + 1], span)
            }
            OpKind::PosEmbed => self.pass(Op::PosEmbed { positions: t.h * t.w }, &t, span),
            OpKind::Token => {
                let positions = i64::from(t.h) * i64::from(t.w);
                let Some(index) = self.int_arg(args, "index", 0, 0, positions - 1) else { return Ok(Value::Poison) };
                self.pass_hw(Op::Token { index }, &t, [1, 1], span)
            }
            OpKind::ZeroPad => {
                let Some((term, c, origin)) = self.width_arg(args, name, span) else { return Ok(Value::Poison) };
                if c < t.c {
                    self.errors.push(SemaError::ZeroPadNarrower {
                        span,
                        input: t.c,
                        output: c,
                        input_origin: t.origin,
                    });
                    return Ok(Value::Poison);
                }
                if let Term::G(g) = &term {
                    self.ch.at_least(*g, t.term.clone(), span);
                }
                self.node(Op::ZeroPad, &[&t], (term, c, origin), [t.h, t.w], span, true)
            }
            OpKind::Add | OpKind::Mul | OpKind::Concat | OpKind::Attend => Ok(Value::Poison),
        }
    }

    /// A positive number argument (an epsilon, an initial value).
    fn positive_arg(&mut self, args: &Bound<'a>, name: &str, default: f64) -> Option<f64> {
        match arg(args, name) {
            None => Some(default),
            Some((_, v, s)) => match v.as_float() {
                Some(x) if x > 0.0 && x.is_finite() => Some(x),
                _ => {
                    let (v, s) = (v.clone(), *s);
                    self.type_error(&format!("a positive number for `{name}`"), &v, s, None);
                    None
                }
            },
        }
    }

    /// `flatten`: a 1×1 map passes on; a larger one becomes `C·H·W` features, a width
    /// derived from the input's (times `H·W`).
    fn flatten(&mut self, t: Tensor, span: Span) -> Flow<Value<'a>> {
        if t.h == 1 && t.w == 1 {
            return self.pass(Op::Flatten, &t, span);
        }
        let positions = u64::from(t.h) * u64::from(t.w);
        let features = u64::from(t.c) * positions;
        if features > MAX_FEATURES as u64 {
            let value = i64::try_from(features).unwrap_or(i64::MAX);
            return Ok(self.limit("flattened features", value, format!("at most {MAX_FEATURES}"), span));
        }
        let term = Term::Ratio(Box::new(t.term.clone()), positions as f64, Rounding::Floor);
        self.node(Op::Flatten, &[&t], (term, features as u32, t.origin), [1, 1], span, false)
    }

    fn flat(&mut self, t: &Tensor, op: &str, span: Span) -> bool {
        if t.h == 1 && t.w == 1 {
            return true;
        }
        self.errors.push(SemaError::NeedsFlat { op: op.into(), span, h: t.h, w: t.w });
        false
    }

    fn conv(&mut self, args: &Bound<'a>, t: Tensor, span: Span) -> Flow<Value<'a>> {
        let Some(out) = self.width_arg(args, "conv", span) else { return Ok(Value::Poison) };
        let (Some(k), Some(s), Some(d)) = (
            self.pair_arg(args, "k", [1, 1], 1, MAX_KERNEL),
            self.pair_arg(args, "stride", [1, 1], 1, MAX_KERNEL),
            self.pair_arg(args, "dilation", [1, 1], 1, 64),
        ) else {
            return Ok(Value::Poison);
        };
        let (Some(p), Some(g), Some(gw), Some(bias)) = (
            self.pair_arg(args, "padding", same_padding(k, d), 0, MAX_KERNEL),
            self.int_arg(args, "groups", 1, 1, MAX_CHANNELS),
            self.int_arg(args, "group_width", 0, 0, MAX_CHANNELS),
            self.bool_arg(args, "bias", false, "`bias` is true or false: whether the conv adds a learned bias"),
        ) else {
            return Ok(Value::Poison);
        };
        let groups = if gw > 0 {
            if g > 1 {
                let at = arg(args, "group_width").map_or(span, |a| a.2);
                self.errors.push(SemaError::Misplaced {
                    what: "both `groups` and `group_width` given".into(),
                    span: at,
                    help: "give the number of groups or the channels per group, not both".into(),
                });
                return Ok(Value::Poison);
            }
            Groups::Width(gw)
        } else {
            Groups::Count(g)
        };
        let k_div = match groups {
            Groups::Width(w) => w,
            Groups::Count(n) => n,
            Groups::Depthwise => 1,
        };
        let what = if gw > 0 { "group width" } else { "groups" };
        if !self.divisible(&t.term, k_div, what, t.c, span, t.origin)
            || !self.divisible(&out.0, k_div, what, out.1, span, out.2)
        {
            return Ok(Value::Poison);
        }
        if let Groups::Width(_) = groups {
            // groups = in / gw at every width, so out stays divisible by groups only if it
            // follows in: the two are one width.
            if t.c != out.1 {
                self.errors.push(SemaError::GroupWidthChange {
                    span,
                    input: t.c,
                    output: out.1,
                    input_origin: t.origin,
                });
                return Ok(Value::Poison);
            }
            if let Err(c) = self.ch.unify(&t.term, &out.0) {
                self.conflict(c, span, "group width", t.c, k_div, t.origin);
                return Ok(Value::Poison);
            }
        }
        let Some(hw) = self.window(&t, [k, s, p, d], false, span) else { return Ok(Value::Poison) };
        let op = Op::Conv { kernel: k, stride: s, padding: p, dilation: d, groups, bias };
        self.node(op, &[&t], out, hw, span, true)
    }

    fn dwconv(&mut self, args: &Bound<'a>, t: Tensor, span: Span) -> Flow<Value<'a>> {
        let (Some(k), Some(s), Some(d), Some(bias)) = (
            self.pair_arg(args, "k", [3, 3], 1, MAX_KERNEL),
            self.pair_arg(args, "stride", [1, 1], 1, MAX_KERNEL),
            self.pair_arg(args, "dilation", [1, 1], 1, 64),
            self.bool_arg(args, "bias", false, "`bias` is true or false: whether the conv adds a learned bias"),
        ) else {
            return Ok(Value::Poison);
        };
        let Some(p) = self.pair_arg(args, "padding", same_padding(k, d), 0, MAX_KERNEL) else {
            return Ok(Value::Poison);
        };
        let Some(hw) = self.window(&t, [k, s, p, d], false, span) else { return Ok(Value::Poison) };
        let op = Op::Conv { kernel: k, stride: s, padding: p, dilation: d, groups: Groups::Depthwise, bias };
        self.pass_hw(op, &t, hw, span)
    }

    fn conv_transpose(&mut self, args: &Bound<'a>, t: Tensor, span: Span) -> Flow<Value<'a>> {
        let Some(out) = self.width_arg(args, "conv_transpose", span) else { return Ok(Value::Poison) };
        let Some(k) = self.pair_arg(args, "k", [2, 2], 1, MAX_KERNEL) else { return Ok(Value::Poison) };
        let (Some(s), Some(p), Some(op), Some(bias)) = (
            self.pair_arg(args, "stride", k, 1, MAX_KERNEL),
            self.pair_arg(args, "padding", [0, 0], 0, MAX_KERNEL),
            self.pair_arg(args, "output_padding", [0, 0], 0, MAX_KERNEL),
            self.bool_arg(args, "bias", false, "`bias` is true or false: whether the conv adds a learned bias"),
        ) else {
            return Ok(Value::Poison);
        };
        if let Some(a) = (0..2).find(|&a| op[a] >= s[a]) {
            let at = arg(args, "output_padding").map_or(span, |x| x.2);
            self.errors.push(SemaError::Misplaced {
                what: format!("output padding {} with stride {}", op[a], s[a]),
                span: at,
                help:
                    "`output_padding` picks among the output sizes a stride allows: it must be smaller than the stride"
                        .into(),
            });
            return Ok(Value::Poison);
        }
        let mut hw = [0; 2];
        for (a, size) in [t.h, t.w].into_iter().enumerate() {
            let grown = i64::from(size - 1) * i64::from(s[a]) + i64::from(k[a]) + i64::from(op[a]);
            let n = grown - 2 * i64::from(p[a]);
            if !(1..=MAX_SPATIAL).contains(&n) {
                let limit = format!("1 to {MAX_SPATIAL} pixels");
                return Ok(self.limit("a transposed conv's output size", n, limit, span));
            }
            hw[a] = n as u32;
        }
        let op = Op::ConvTranspose { kernel: k, stride: s, padding: p, output_padding: op, bias };
        self.node(op, &[&t], out, hw, span, true)
    }

    fn pool(&mut self, kind: OpKind, args: &Bound<'a>, t: Tensor, span: Span) -> Flow<Value<'a>> {
        if kind == OpKind::AvgPool && arg(args, "k").is_none() {
            let Some(out) = self.int_arg(args, "out", 1, 1, MAX_SPATIAL) else { return Ok(Value::Poison) };
            if let Some((_, _, at)) =
                ["stride", "padding", "ceil_mode", "count_include_pad"].iter().find_map(|p| arg(args, p))
            {
                self.errors.push(SemaError::Misplaced {
                    what: "a window setting without a window".into(),
                    span: *at,
                    help: "`avgpool(k=...)` pools windows; `avgpool` or `avgpool(out=N)` pools adaptively to 1x1 or NxN and takes no stride, padding or mode".into(),
                });
                return Ok(Value::Poison);
            }
            if out == 1 {
                return self.pass_hw(Op::GlobalAvgPool, &t, [1, 1], span);
            }
            return self.pass_hw(Op::AdaptiveAvgPool { out: [out, out] }, &t, [out, out], span);
        }
        if let Some((_, _, at)) = arg(args, "out") {
            self.errors.push(SemaError::Misplaced {
                what: "both a window `k` and an output size `out`".into(),
                span: *at,
                help:
                    "give `k` (and `stride`, `padding`) to pool windows, or only `out` to pool adaptively to that size"
                        .into(),
            });
            return Ok(Value::Poison);
        }
        let Some(k) = self.pair_arg(args, "k", [2, 2], 1, MAX_KERNEL) else { return Ok(Value::Poison) };
        let (Some(s), Some(p)) =
            (self.pair_arg(args, "stride", k, 1, MAX_KERNEL), self.pair_arg(args, "padding", [0, 0], 0, MAX_KERNEL))
        else {
            return Ok(Value::Poison);
        };
        const CEIL: &str = "`ceil_mode` is true or false: whether the output size rounds up";
        const COUNT: &str = "`count_include_pad` is true or false: whether the padding counts in the average";
        let Some(ceil_mode) = self.bool_arg(args, "ceil_mode", false, CEIL) else { return Ok(Value::Poison) };
        let Some(count_include_pad) = self.bool_arg(args, "count_include_pad", true, COUNT) else {
            return Ok(Value::Poison);
        };
        let Some(hw) = self.window(&t, [k, s, p, [1, 1]], ceil_mode, span) else { return Ok(Value::Poison) };
        if let Some(i) = (0..2).find(|&i| 2 * p[i] > k[i]) {
            let at = arg(args, "padding").map_or(span, |a| a.2);
            let op = if kind == OpKind::MaxPool { "maxpool" } else { "avgpool" };
            self.found.push(Warning::PoolPadding { op, padding: p[i], kernel: k[i], span: at });
        }
        let (kernel, stride, padding) = (k, s, p);
        let op = if kind == OpKind::MaxPool {
            Op::MaxPool { kernel, stride, padding, ceil_mode }
        } else {
            Op::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad }
        };
        self.pass_hw(op, &t, hw, span)
    }

    /// `attend(q, k, v, heads=H, kv_heads=G, fixed_heads=false, window=S, shift=T)`:
    /// attention over the positions ([`Op::Attend`]). k and v have one width, `G / H` of
    /// q's (G divides H; by default G = H); q is `H / G` copies of k's width, so the key/
    /// value heads are the search dimension and the query heads follow them. By default a
    /// narrower width keeps whole heads (the head width stays fixed); with `fixed_heads`
    /// it keeps the head count and narrows every head. With `window`, Swin's window
    /// attention (shifted by `shift`) with its relative position bias.
    pub fn attend_op(&mut self, operands: &[(Tensor, Span)], args: &Bound<'a>, span: Span) -> Flow<Value<'a>> {
        if operands.len() != 3 {
            let what = if operands.len() < 3 { "the tensors q, k and v" } else { "exactly three tensors" };
            return Ok(self.error(SemaError::MissingArgument { callee: "attend".into(), param: what.into(), span }));
        }
        let Some(&(_, _, at)) = arg(args, "heads") else {
            return Ok(self.error(SemaError::MissingArgument { callee: "attend".into(), param: "heads".into(), span }));
        };
        let Some(heads) = self.int_arg(args, "heads", 1, 1, MAX_CHANNELS) else { return Ok(Value::Poison) };
        let Some(kv_heads) = self.int_arg(args, "kv_heads", i64::from(heads), 1, i64::from(heads)) else {
            return Ok(Value::Poison);
        };
        if !heads.is_multiple_of(kv_heads) {
            let at = arg(args, "kv_heads").map_or(span, |a| a.2);
            return Ok(self.error(SemaError::KvHeads { span: at, heads, kv_heads }));
        }
        const FIXED: &str =
            "`fixed_heads` is true (a narrower width narrows every head) or false (it keeps whole heads)";
        let Some(fixed_heads) = self.bool_arg(args, "fixed_heads", false, FIXED) else { return Ok(Value::Poison) };
        let hw = [operands[0].0.h, operands[0].0.w];
        if operands.iter().any(|(t, _)| [t.h, t.w] != hw) {
            self.spatial_mismatch("attend", operands, span);
            return Ok(Value::Poison);
        }
        let window = match arg(args, "window") {
            None => {
                if let Some(&(_, _, at)) = arg(args, "shift") {
                    return Ok(self.error(SemaError::Misplaced {
                        what: "`shift` without `window`".into(),
                        span: at,
                        help: "a shift moves Swin's windows: give the window too, e.g. `window=7, shift=3`".into(),
                    }));
                }
                None
            }
            Some(&(_, _, at)) => {
                let Some(size) = self.int_arg(args, "window", 7, 1, MAX_KERNEL) else { return Ok(Value::Poison) };
                let Some(shift) = self.int_arg(args, "shift", 0, 0, i64::from(size) - 1) else {
                    return Ok(Value::Poison);
                };
                if !hw[0].is_multiple_of(size) || !hw[1].is_multiple_of(size) {
                    return Ok(self.error(SemaError::WindowSize { span: at, window: size, h: hw[0], w: hw[1] }));
                }
                Some(Window { size, shift })
            }
        };
        let (q, k, v) = (&operands[0].0, &operands[1].0, &operands[2].0);
        let share = heads / kv_heads;
        if share > 1 && q.c.is_multiple_of(heads) {
            let head_width = q.c / heads;
            if let Some(&(ref t, operand)) = operands[1..].iter().find(|(t, _)| t.c != kv_heads * head_width) {
                let channels = t.c;
                return Ok(self.error(SemaError::KvWidth { span, operand, channels, heads, kv_heads, head_width }));
            }
        }
        let copies = Term::Sum(vec![k.term.clone(); share as usize]);
        for (a, b) in [(&k.term, &v.term), (&q.term, &copies)] {
            if let Err(conflict) = self.ch.unify(a, b) {
                self.unify_error(conflict, "attend", operands, span);
                return Ok(Value::Poison);
            }
        }
        if !q.c.is_multiple_of(heads) {
            self.errors.push(SemaError::NotDivisible {
                what: "heads".into(),
                channels: q.c,
                divisor: heads,
                span: at,
                origin: q.origin,
            });
            return Ok(Value::Poison);
        }
        // The key/value width carries the divisibility: whole key/value heads, or every
        // key/value head one dimension more or less.
        let (split, divisor, what) = if fixed_heads {
            (Heads::Count(heads), kv_heads, "kv_heads")
        } else {
            (Heads::Width(q.c / heads), q.c / heads, "head width")
        };
        if !self.divisible(&k.term, divisor, what, k.c, span, k.origin) {
            return Ok(Value::Poison);
        }
        let tensors: Vec<&Tensor> = operands.iter().map(|(t, _)| t).collect();
        let op = Op::Attend { heads: split, share, window };
        self.node(op, &tensors, (q.term.clone(), q.c, q.origin), hw, span, false)
    }

    /// add, mul and concat: several tensors into one.
    pub fn merge_op(&mut self, kind: OpKind, name: &str, operands: &[(Tensor, Span)], span: Span) -> Flow<Value<'a>> {
        let first = &operands[0].0;
        // Multiplying by a 1x1 gate (squeeze-excite) broadcasts over space.
        let hw = operands.iter().map(|(t, _)| [t.h, t.w]).max().unwrap_or([first.h, first.w]);
        let broadcast_ok = |t: &Tensor| [t.h, t.w] == hw || (kind == OpKind::Mul && t.h == 1 && t.w == 1);
        if !operands.iter().all(|(t, _)| broadcast_ok(t)) {
            self.spatial_mismatch(name, operands, span);
            return Ok(Value::Poison);
        }
        let tensors: Vec<&Tensor> = operands.iter().map(|(t, _)| t).collect();
        let (term, c) = if kind == OpKind::Concat {
            let c = tensors.iter().map(|t| t.c).sum::<u32>();
            if i64::from(c) > MAX_CHANNELS {
                return Ok(self.limit("a channel count", i64::from(c), format!("1 to {MAX_CHANNELS} channels"), span));
            }
            (Term::Sum(tensors.iter().map(|t| t.term.clone()).collect()), c)
        } else {
            // A one-channel map (a spatial attention gate) scales every channel of the others.
            let map = |t: &Tensor| kind == OpKind::Mul && t.c == 1;
            let main = tensors.iter().copied().find(|t| !map(t)).unwrap_or(first);
            for t in tensors.iter().filter(|t| !map(t) || map(main)) {
                if let Err(conflict) = self.ch.unify(&main.term, &t.term) {
                    self.unify_error(conflict, name, operands, span);
                    return Ok(Value::Poison);
                }
            }
            (main.term.clone(), main.c)
        };
        let op = match kind {
            OpKind::Add => Op::Add,
            OpKind::Mul => Op::Mul,
            _ => Op::Concat,
        };
        let origin = tensors.iter().find(|t| t.c == c).map_or(first.origin, |t| t.origin);
        self.node(op, &tensors, (term, c, origin), hw, span, false)
    }

    /// E0202 for operands of `op` that should have one size, with the likely cause.
    fn spatial_mismatch(&mut self, op: &str, operands: &[(Tensor, Span)], span: Span) {
        let sizes: Vec<Sized> =
            operands.iter().map(|(t, _)| Sized { hw: [t.h, t.w], resized: self.resized_by(t) }).collect();
        let operands = operands
            .iter()
            .map(|(t, s)| Operand { span: *s, value: format!("{}x{}", t.h, t.w), origin: t.size_origin })
            .collect();
        let within = self.current_scope();
        let help = spatial_help(&sizes);
        self.errors.push(SemaError::SpatialMismatch { op: op.into(), span, operands, within, help });
    }

    /// The op that last changed `t`'s spatial size, with the size it was given: walked back
    /// along first inputs to where the size was set (`None` at the network's input).
    fn resized_by(&self, t: &Tensor) -> Option<(Op, [u32; 2])> {
        let mut n = t.node;
        loop {
            let node = &self.nodes[n];
            let &i = node.inputs.first()?;
            if self.nodes[i].hw != node.hw {
                return Some((node.op.clone(), self.nodes[i].hw));
            }
            n = i;
        }
    }

    fn unify_error(&mut self, conflict: Conflict, name: &str, operands: &[(Tensor, Span)], span: Span) {
        match conflict {
            Conflict::Base { .. } => {
                let operands_of = operands;
                let operands = operands
                    .iter()
                    .map(|(t, s)| Operand { span: *s, value: format!("{} channels", t.c), origin: t.origin })
                    .collect();
                let within = self.current_scope();
                let help = channel_help(name, operands_of);
                self.errors.push(SemaError::ChannelMismatch { op: name.into(), span, operands, within, help });
            }
            other => self.conflict(other, span, "", 0, 0, Span::default()),
        }
    }
}

/// PyTorch-style "same" padding for stride 1: `(k − 1) / 2 · dilation` per axis.
fn same_padding(k: [u32; 2], d: [u32; 2]) -> [u32; 2] {
    [0, 1].map(|i| (k[i] - 1) / 2 * d[i])
}

/// How to make the operands of `op` agree on channels: a residual projects its shortcut;
/// a product broadcasts a 1x1 gate over space and a 1-channel map over channels, nothing else.
fn channel_help(op: &str, operands: &[(Tensor, Span)]) -> String {
    if op == "attend" {
        return "q, k and v need one width, heads × head width: project each from the same input with the same count, e.g. `conv(c, k=1)`".into();
    }
    if op != "mul" {
        return "make both branches produce the same count, e.g. project the shortcut with `conv(c, k=1) -> bn`".into();
    }
    let gated = operands.iter().find(|(t, _)| t.h * t.w > 1).or(operands.first()).map_or(0, |(t, _)| t.c);
    if operands.iter().any(|(t, _)| t.h == 1 && t.w == 1) {
        format!(
            "a gate scales each channel by its own value: it needs the gated map's {gated} channels (a 1x1 gate broadcasts over space, not over channels); end the gate with a conv to {gated} channels, e.g. `conv(in.c, k=1) -> sigmoid` when it gates `in`"
        )
    } else {
        "`mul` multiplies channel by channel: give both operands the same count, or make one a 1-channel map (a spatial gate, which scales every channel)".into()
    }
}

/// One operand of a spatial mismatch: its size, and the op that last changed it with the
/// size that op was given.
struct Sized {
    hw: [u32; 2],
    resized: Option<(Op, [u32; 2])>,
}

/// `padding=3`, or `padding=(3, 0)` when the axes differ.
fn per_axis(name: &str, v: [u32; 2]) -> String {
    if v[0] == v[1] {
        format!("`{name}={}`", v[0])
    } else {
        format!("`{name}=({}, {})`", v[0], v[1])
    }
}

/// Why two feature maps that should meet have different sizes. First from the op that
/// resized one of them to a size the other lacks: a transposed conv's `output_padding`, a
/// pool's `ceil_mode`, a stride-1 window's padding (per axis), an upsample of a level
/// downsampled from an odd size (one pixel short or long). Then from the sizes alone: one
/// strided branch or a missing upsample (a whole factor), odd-size rounding (one pixel), or
/// an unpadded window (a few pixels).
fn spatial_help(sizes: &[Sized]) -> String {
    let target = |me: &Sized| sizes.iter().map(|s| s.hw).find(|hw| *hw != me.hw);
    for me in sizes {
        let (Some((op, input)), Some(want)) = (&me.resized, target(me)) else { continue };
        let (have, input) = (me.hw, *input);
        let off = |i: usize| i64::from(want[i]) - i64::from(have[i]);
        match op {
            Op::ConvTranspose { stride, output_padding, .. } => {
                let fix = [0, 1].map(|i| i64::from(output_padding[i]) + off(i));
                if fix.iter().zip(stride).all(|(&f, &s)| (0..i64::from(s)).contains(&f)) {
                    let fix = fix.map(|f| f as u32);
                    return format!(
                        "a transposed conv gives (H - 1)·stride - 2·padding + k + output_padding pixels, {}x{} here; {} makes it {}x{}",
                        have[0],
                        have[1],
                        per_axis("output_padding", fix),
                        want[0],
                        want[1]
                    );
                }
            }
            Op::MaxPool { kernel, stride, padding, ceil_mode }
            | Op::AvgPool { kernel, stride, padding, ceil_mode, .. } => {
                let other = [0, 1].map(|i| {
                    let span = input[i] + 2 * padding[i] - kernel[i];
                    if *ceil_mode {
                        span / stride[i] + 1
                    } else {
                        span.div_ceil(stride[i]) + 1
                    }
                });
                if other == want && other != have {
                    return if *ceil_mode {
                        format!(
                            "`ceil_mode=true` rounds this pool's output up to {}x{}; without it the pool gives {}x{}",
                            have[0], have[1], want[0], want[1]
                        )
                    } else {
                        format!(
                            "this pool rounds its output down to {}x{}; `ceil_mode=true` rounds it up to {}x{}",
                            have[0], have[1], want[0], want[1]
                        )
                    };
                }
            }
            Op::Upsample { .. } => {
                if let Some(i) = (0..2).find(|&i| off(i).abs() == 1) {
                    let (h, w) = (have[i], want[i]);
                    return if h < w {
                        format!(
                            "an upsampled map is a whole multiple of its source, so a level pooled from an odd size ({w}) comes back one pixel short ({h}): upsample to the size of the map it meets, `upsample(size=x)` for that map `x`, or give the network an input size divisible by 2 for every downsampling (`--set size=...`)"
                        )
                    } else {
                        format!(
                            "an upsampled map is a whole multiple of its source, so a level downsampled from an odd size ({w}) by a layer that rounds up (padding or `ceil_mode`) comes back one pixel long ({h}): upsample to the size of the map it meets, `upsample(size=x)` for that map `x`, or give the network an input size divisible by 2 for every downsampling (`--set size=...`)"
                        )
                    };
                }
            }
            Op::Conv { kernel, stride: [1, 1], dilation, .. } if want == input => {
                let reach = [0, 1].map(|i| (kernel[i] - 1) * dilation[i]);
                if reach.iter().all(|r| r % 2 == 0) {
                    return format!(
                        "this conv changes the map from {}x{} to {}x{}; {} keeps its size ((k - 1)/2 per axis at stride 1)",
                        input[0],
                        input[1],
                        have[0],
                        have[1],
                        per_axis("padding", reach.map(|r| r / 2))
                    );
                }
            }
            _ => {}
        }
    }
    let side = |i: usize| -> (u32, u32) {
        let v: Vec<u32> = sizes.iter().map(|s| s.hw[i]).collect();
        (v.iter().copied().min().unwrap_or(0), v.iter().copied().max().unwrap_or(0))
    };
    let (small, big) = if side(0).0 != side(0).1 { side(0) } else { side(1) };
    if let Some(f) = (2..=32).find(|&f| small > 0 && (big / f == small || big.div_ceil(f) == small)) {
        return format!(
            "one branch is strided by {f} and the other is not: give the shortcut the same stride, e.g. `subsample({f})` or `conv(c, k=1, stride={f})`; in a decoder, `upsample(scale={f})` the smaller map"
        );
    }
    match big - small {
        1 => "odd sizes round differently: a strided layer with padding rounds up, without it rounds down; give both branches the same kernel and padding".into(),
        d => format!(
            "a window without padding shrinks the map by kernel - 1 ({d} here): give the layer that shrank it `padding={}`",
            d.div_ceil(2)
        ),
    }
}
