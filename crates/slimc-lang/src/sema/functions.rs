//! The built-in functions: `fixed`, `ratio`, `make_divisible`, `min`, `max`, `int`,
//! `round`, and the channel-count check shared by every width argument.

use super::builtins::FnKind;
use super::error::SemaError;
use super::eval::{limits::MAX_CHANNELS, Elab};
use super::value::*;
use super::warning::Warning;
use crate::ir::Rounding;
use crate::syntax::ast::Span;

impl<'a> Elab<'a, '_> {
    pub(super) fn function(&mut self, kind: FnKind, name: &str, args: &Bound<'a>, span: Span) -> Value<'a> {
        let get = |p: &str| args.iter().find(|(n, _, _)| *n == p).map(|(_, v, s)| (v.clone(), *s));
        let need = |me: &mut Self, p: &str| -> Option<(Value<'a>, Span)> {
            let r = get(p);
            if r.is_none() {
                me.errors.push(SemaError::MissingArgument { callee: name.into(), param: p.into(), span });
            }
            r
        };
        match kind {
            FnKind::Fixed => {
                let Some((v, s)) = need(self, "channels") else { return Value::Poison };
                match self.channel_count(&v, s) {
                    Some(n) => Value::Width(WidthVal::Fixed(n)),
                    None => Value::Poison,
                }
            }
            FnKind::Ratio => {
                let (Some((of, os)), Some((r, rs))) = (need(self, "of"), need(self, "ratio")) else {
                    return Value::Poison;
                };
                let Value::Tensor(t) = of else {
                    return self.type_error(
                        "a tensor",
                        &of,
                        os,
                        Some("`ratio(in, 0.25)` derives a width from a tensor's"),
                    );
                };
                let Some(ratio) = r.as_float().filter(|r| *r > 0.0 && *r <= 64.0) else {
                    return self.type_error("a ratio between 0 and 64", &r, rs, None);
                };
                let rounding = match get("rounding") {
                    None => None,
                    Some((Value::Rounding(p), _)) => Some(p),
                    Some((other, s)) => {
                        return self.type_error(
                            "a rounding policy",
                            &other,
                            s,
                            Some("use `floor`, `nearest` or `make_divisible(8)`"),
                        )
                    }
                };
                if rounding.is_none() {
                    let exact = f64::from(t.c) * ratio;
                    let (got, floor) = (self.rounding.apply(exact), Rounding::Floor.apply(exact));
                    // Once per `ratio` written: the first instance that rounds differently.
                    let seen =
                        self.found.iter().any(|w| matches!(w, Warning::RatioRounding { span: s, .. } if *s == span));
                    if got != floor && !seen {
                        let policy = self.rounding;
                        self.found.push(Warning::RatioRounding { span, of: t.c, ratio, policy, got, floor });
                    }
                }
                Value::Width(WidthVal::Ratio { of: t.term, of_c: t.c, ratio, rounding })
            }
            FnKind::MakeDivisible => {
                let Some((v, s)) = need(self, "divisor") else { return Value::Poison };
                match v.as_int() {
                    Some(d) if (1..=1024).contains(&d) => Value::Rounding(Rounding::MakeDivisible(d as u32)),
                    _ => self.type_error("a divisor from 1 to 1024", &v, s, None),
                }
            }
            FnKind::Min | FnKind::Max => {
                let (Some((a, as_)), Some((b, bs))) = (need(self, "a"), need(self, "b")) else { return Value::Poison };
                let pick_a = match (a.as_float(), b.as_float()) {
                    (Some(x), Some(y)) => (x <= y) == (kind == FnKind::Min),
                    (None, _) => return self.type_error("a number", &a, as_, None),
                    _ => return self.type_error("a number", &b, bs, None),
                };
                if pick_a {
                    a
                } else {
                    b
                }
            }
            FnKind::Int | FnKind::Round => {
                let Some((x, xs)) = need(self, "x") else { return Value::Poison };
                let Some(f) = x.as_float() else { return self.type_error("a number", &x, xs, None) };
                let r = if kind == FnKind::Int { f.trunc() } else { f.round_ties_even() };
                if r.abs() > 9.0e15 {
                    return self.error(SemaError::Arithmetic { message: "number too large".into(), span });
                }
                Value::Int(r as i64)
            }
        }
    }

    /// A positive channel count within the limit, or an error.
    pub fn channel_count(&mut self, v: &Value<'a>, span: Span) -> Option<u32> {
        match v.as_int() {
            Some(n) if (1..=MAX_CHANNELS).contains(&n) => Some(n as u32),
            Some(n) => {
                self.limit("a channel count", n, format!("1 to {MAX_CHANNELS} channels"), span);
                None
            }
            None => {
                let help = matches!(v, Value::Float(_))
                    .then_some("channel counts are whole numbers; use `int(...)` or `round(...)`");
                self.type_error("a channel count", v, span, help);
                None
            }
        }
    }
}
