//! Elaborates one `network`: parameters (defaults and `--set`), `input`, `rounding`,
//! then `stem`, each `stage` and `head` applied in order to the running tensor.

use std::collections::HashMap;

use super::channels::Term;
use super::error::SemaError;
use super::eval::{limits::*, param_value, Elab, Env, Flow, Node};
use super::value::*;
use crate::ir::{Op, ParamValue, Section};
use crate::syntax::ast::*;

/// What elaboration hands to `space.rs`.
pub struct Elaborated {
    pub params: Vec<(String, ParamValue)>,
    pub input: [u32; 3],
    pub output: usize,
    pub stages: usize,
}

impl<'a> Elab<'a, '_> {
    /// Elaborates `def`. A parameter takes its value from `options.settings`, else from
    /// `options.context`, else its default. Errors at a use of a set parameter get a note.
    pub fn network(&mut self, def: &'a Definition, options: &super::Options) -> Flow<Option<Elaborated>> {
        let first_error = self.errors.len();
        let result = self.elaborate(def, options);
        let uses = std::mem::take(&mut self.setting_uses);
        let tail: Vec<SemaError> = self.errors.drain(first_error..).collect();
        for e in tail {
            let at = e.to_diagnostic().position();
            let e = match uses.iter().find(|(u, _)| at.start <= u.start && u.end <= at.end) {
                Some(&(_, i)) => {
                    let (name, value) = self.settings[i].clone();
                    SemaError::FromSetting { error: Box::new(e), name, value: value.to_string() }
                }
                None => e,
            };
            self.errors.push(e);
        }
        result
    }

    fn elaborate(&mut self, def: &'a Definition, options: &super::Options) -> Flow<Option<Elaborated>> {
        let mut env: Env<'a> = HashMap::new();
        let mut params = Vec::new();
        self.settings.clear();
        for p in &def.params {
            let name = &p.name.name;
            let set = options.settings.iter().find(|(n, _)| n == name);
            if let Some(s) = set {
                self.settings.push(s.clone());
            }
            let v = match set.or_else(|| options.context.iter().find(|(n, _)| n == name)) {
                Some((_, ParamValue::Int(i))) => Value::Int(*i),
                Some((_, ParamValue::Float(f))) => Value::Float(*f),
                Some((_, ParamValue::Bool(b))) => Value::Bool(*b),
                None => match &p.default {
                    Some(d) => self.eval(d, &env)?,
                    None => {
                        let param = p.name.name.clone();
                        self.errors.push(SemaError::MissingArgument {
                            callee: def.name.name.clone(),
                            param,
                            span: p.name.span,
                        });
                        Value::Poison
                    }
                },
            };
            if let Some(pv) = param_value(&v) {
                params.push((p.name.name.clone(), pv));
            }
            env.insert(p.name.name.clone(), v);
        }
        for stmt in &def.stmts {
            if let Stmt::Rounding { policy, .. } = stmt {
                match self.eval(policy, &env)? {
                    Value::Rounding(r) => self.rounding = r,
                    Value::Poison => {}
                    _ => self.errors.push(SemaError::BadRounding { span: policy.span }),
                }
            }
        }
        if let Some(r) = options.rounding {
            self.rounding = r;
        }

        let mut cur: Option<Tensor> = None;
        let mut input = [0; 3];
        // A section before any `input` is misplaced; after a broken one, the input's own
        // error is the only one to report.
        let mut input_seen = false;
        let mut stages = 0;
        let mut last_section: Option<(&str, Span)> = None;
        for stmt in &def.stmts {
            match stmt {
                Stmt::Input { dims, span } => {
                    input_seen = true;
                    let Some(t) = self.input(dims, *span, &env)? else { continue };
                    input = [t.c, t.h, t.w];
                    cur = Some(t);
                }
                Stmt::Rounding { .. } => {}
                Stmt::Width { name, value } => {
                    let v = self.eval(value, &env)?;
                    let w = self.width_decl(v, name.span, value.span);
                    env.insert(name.name.clone(), w);
                }
                Stmt::Bind { name, value } if matches!(name.name.as_str(), "stem" | "stage" | "head") => {
                    let section = match name.name.as_str() {
                        "stem" => Section::Stem,
                        "stage" => Section::Stage(stages + 1),
                        _ => Section::Head,
                    };
                    if let Some((prev, _)) = last_section {
                        let order = |s: &str| ["stem", "stage", "head"].iter().position(|x| *x == s);
                        if order(prev) > order(&name.name) || (prev == name.name && name.name != "stage") {
                            self.errors.push(SemaError::Misplaced {
                                what: format!("`{}` after `{prev}`", name.name),
                                span: name.span,
                                help: format!("a network has one `stem`, then its `stage`s, then one `head`; move this before the earlier `{prev}`"),
                            });
                            continue;
                        }
                    }
                    last_section = Some((name.name.as_str(), name.span));
                    if section != Section::Head && section != Section::Stem {
                        stages += 1;
                    }
                    let Some(t) = cur.take() else {
                        if !input_seen {
                            self.errors.push(SemaError::Misplaced {
                                what: format!("`{}` before `input`", name.name),
                                span: name.span,
                                help: "declare `input C x H x W` first".into(),
                            });
                        }
                        continue;
                    };
                    cur = self.section(section, &name.name, value, t, &env)?;
                }
                Stmt::Bind { name, value } => {
                    self.push_frame(name.name.clone(), false);
                    let v = self.bind(name, value, &env);
                    self.pop_frame();
                    env.insert(name.name.clone(), v?);
                }
            }
        }
        let Some(out) = cur else { return Ok(None) };
        self.check_head(def, &env, &out);
        Ok(Some(Elaborated { params, input, output: out.node, stages }))
    }

    fn input(&mut self, dims: &'a [Expr; 3], span: Span, env: &Env<'a>) -> Flow<Option<Tensor>> {
        let mut v = [0u32; 3];
        for (i, e) in dims.iter().enumerate() {
            let x = self.eval(e, env)?;
            let (hi, what) = if i == 0 { (MAX_CHANNELS, "input channels") } else { (MAX_SPATIAL, "the input size") };
            match x.as_int() {
                Some(n) if (1..=hi).contains(&n) => v[i] = n as u32,
                Some(n) => {
                    self.limit(what, n, format!("1 to {hi}"), e.span);
                    return Ok(None);
                }
                None => {
                    self.type_error("an integer", &x, e.span, None);
                    return Ok(None);
                }
            }
        }
        let g = self.ch.fresh(v[0], true, span);
        self.section = Section::Input;
        let node = Node {
            name: "input".into(),
            op: Op::Input,
            inputs: Vec::new(),
            term: Term::G(g),
            channels: v[0],
            hw: [v[1], v[2]],
            section: Section::Input,
            span,
            sets_width: true,
            block: None,
        };
        let id = self.emit(node, span)?;
        let size_origin = dims[1].span.to(dims[2].span);
        Ok(Some(Tensor { node: id, term: Term::G(g), c: v[0], h: v[1], w: v[2], origin: span, size_origin }))
    }

    fn section(
        &mut self,
        section: Section,
        name: &str,
        value: &'a Expr,
        t: Tensor,
        env: &Env<'a>,
    ) -> Flow<Option<Tensor>> {
        self.section = section;
        let prefix = match section {
            Section::Stage(i) => format!("stage{i}"),
            _ => name.to_string(),
        };
        let before = self.nodes.len();
        self.push_frame(prefix, true);
        let v = self.eval(value, env);
        let result = match v {
            Ok(Value::Layer(f)) => self.apply(&f, t),
            Ok(other) => {
                let help = matches!(other, Value::Tensor(_)).then_some(
                    "a section is a layer chain applied to the previous section's output, e.g. `stage = block(64) * 3`",
                );
                Ok(self.type_error("a layer", &other, value.span, help))
            }
            Err(e) => Err(e),
        };
        self.pop_frame();
        match result? {
            Value::Tensor(out) => {
                if self.nodes.len() == before {
                    self.errors.push(SemaError::EmptyStage { span: value.span });
                }
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    /// The output is the classifier: never slimmed, and `classes` wide when the network
    /// has that parameter.
    fn check_head(&mut self, def: &Definition, env: &Env<'a>, out: &Tensor) {
        let span = self.nodes[out.node].span;
        if let Some(classes) = env.get("classes").and_then(Value::as_int) {
            if i64::from(out.c) != classes {
                self.errors.push(SemaError::HeadClasses {
                    span,
                    got: out.c,
                    classes: classes.clamp(0, u32::MAX.into()) as u32,
                    origin: out.origin,
                });
                return;
            }
        }
        let fixed = Term::G(self.ch.fresh(out.c, true, def.name.span));
        // The output is fixed by definition: that absorbing the last layer's width is no warning.
        let absorbed = self.ch.absorbed().len();
        let unified = self.ch.unify(&out.term, &fixed);
        self.ch.forget_absorbed_since(absorbed);
        if let Err(c) = unified {
            let e = match c {
                super::channels::Conflict::FixedForced { fixed, fixed_origin, other_origin } => {
                    SemaError::FixedForced { span, fixed, fixed_origin, other_origin }
                }
                _ => SemaError::DerivedConflict { span, help: "end the network with `linear(classes)`".into() },
            };
            self.errors.push(e);
        }
    }
}
