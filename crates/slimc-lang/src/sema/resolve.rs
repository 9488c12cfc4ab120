//! Name resolution, before any analysis: duplicate definitions, unknown names, ops,
//! arguments and fields, reserved names, and recursive blocks. Later passes may assume
//! every name they meet exists.

use std::collections::{HashMap, HashSet};

use super::builtins::{self, Signature, CONSTANTS, SIGNATURES};
use super::error::SemaError;
use super::names::{DeclKind, Names};
use super::warning::Warning;
use crate::syntax::ast::*;

/// Where each definition lives in the file, and the warnings name resolution found.
pub struct Index<'a> {
    pub blocks: HashMap<&'a str, &'a Definition>,
    pub warnings: Vec<Warning>,
}

const NETWORK_SECTIONS: &[&str] = &["stem", "stage", "head"];
const FIELDS: &[&str] = &["c", "h", "w"];

pub fn resolve(file: &File) -> Result<Index<'_>, Vec<SemaError>> {
    resolve_with_names(file).0
}

/// Every declaration and use in `file`, linked as resolution links them (also when it
/// reports errors): what the language server answers definitions, references and hovers
/// from.
pub fn name_table(file: &File) -> Names {
    resolve_with_names(file).1
}

/// [`resolve`], recording the name table as it goes.
fn resolve_with_names(file: &File) -> (Result<Index<'_>, Vec<SemaError>>, Names) {
    let mut table = Names::default();
    // Each block's declaration and its parameters' first, so that calls above a block's
    // definition find it; of blocks with one name, uses mean the first (the one sema
    // reports the others against).
    let mut own: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut block_decls: HashMap<&str, (usize, Vec<usize>)> = HashMap::new();
    for def in &file.blocks {
        let at = table.declare(&def.name, DeclKind::Block, def.span, None);
        let params =
            def.params.iter().map(|p| table.declare(&p.name, DeclKind::Param, p.name.span, Some(at))).collect();
        own.push((at, params));
        block_decls.entry(def.name.name.as_str()).or_insert_with(|| own[own.len() - 1].clone());
    }
    let mut errors = Vec::new();
    let mut blocks: HashMap<&str, &Definition> = HashMap::new();
    let mut networks: HashMap<&str, &Definition> = HashMap::new();
    for b in &file.blocks {
        if builtins::lookup(&b.name.name).is_some() || CONSTANTS.contains(&b.name.name.as_str()) {
            errors.push(SemaError::ShadowsBuiltin { name: b.name.name.clone(), span: b.name.span });
        }
        if let Some(first) = blocks.insert(&b.name.name, b) {
            errors.push(duplicate("block", &b.name, &first.name));
        }
    }
    for n in &file.networks {
        if let Some(first) = networks.insert(&n.name.name, n) {
            errors.push(duplicate("network", &n.name, &first.name));
        }
    }
    let mut index = Index { blocks, warnings: Vec::new() };
    let mut warnings = Vec::new();
    for (def, (at, params)) in file.blocks.iter().zip(&own) {
        let mut scope = Scope::new(&index, &mut errors, false, Recorder { table: &mut table, blocks: &block_decls });
        scope.definition(def, *at, Some(params));
        for p in def.params.iter().filter(|p| !scope.used.contains(&p.name.name)) {
            let (block, name) = (def.name.name.clone(), p.name.name.clone());
            warnings.push(Warning::UnusedParameter { block, name, span: p.name.span });
        }
    }
    for def in &file.networks {
        let at = table.declare(&def.name, DeclKind::Network, def.span, None);
        Scope::new(&index, &mut errors, true, Recorder { table: &mut table, blocks: &block_decls })
            .definition(def, at, None);
    }
    find_cycles(file, &index, &mut errors);
    index.warnings = warnings;
    let result = if errors.is_empty() { Ok(index) } else { Err(errors) };
    (result, table)
}

/// Where a [`Scope`] writes the name table: the declarations and uses, and the blocks'
/// declarations (with their parameters') by name.
struct Recorder<'t, 'f> {
    table: &'t mut Names,
    blocks: &'t HashMap<&'f str, (usize, Vec<usize>)>,
}

fn duplicate(what: &'static str, second: &Ident, first: &Ident) -> SemaError {
    SemaError::Duplicate { what, name: second.name.clone(), first: first.span, second: second.span }
}

struct Scope<'i, 'a, 'e, 't, 'f> {
    index: &'i Index<'a>,
    errors: &'e mut Vec<SemaError>,
    names: HashMap<String, Span>,
    /// Every name read.
    used: HashSet<String>,
    network: bool,
    /// A network's sections (`stem`, `stage`, `head`) seen so far: where each first is.
    sections: HashMap<String, Span>,
    record: Recorder<'t, 'f>,
    /// The name table's declaration of each name in scope.
    decls: HashMap<String, usize>,
}

impl<'i, 'a, 'e, 't, 'f> Scope<'i, 'a, 'e, 't, 'f> {
    fn new(index: &'i Index<'a>, errors: &'e mut Vec<SemaError>, network: bool, record: Recorder<'t, 'f>) -> Self {
        Scope {
            index,
            errors,
            names: HashMap::new(),
            used: HashSet::new(),
            network,
            sections: HashMap::new(),
            record,
            decls: HashMap::new(),
        }
    }

    /// Adds `name` to the name table (in the definition `at`) and to its scope.
    fn record_decl(&mut self, name: &Ident, kind: DeclKind, full: Span, at: usize) {
        let d = self.record.table.declare(name, kind, full, Some(at));
        self.decls.insert(name.name.clone(), d);
    }

    /// A use of `id`, if it names a declaration in scope or a block.
    fn record_use(&mut self, id: &Ident) {
        let d = self.decls.get(&id.name).copied().or_else(|| self.record.blocks.get(id.name.as_str()).map(|b| b.0));
        if let Some(d) = d {
            self.record.table.uses.push((id.span, d));
        }
    }

    /// `at`: the definition's declaration in the name table; `params`: a block's parameter
    /// declarations, already made (`None` for a network).
    fn definition(&mut self, def: &Definition, at: usize, params: Option<&[usize]>) {
        for (i, p) in def.params.iter().enumerate() {
            if let Some(d) = &p.default {
                self.expr(d);
            }
            self.declare(&p.name);
            let decl = match params {
                Some(ps) => ps[i],
                None => self.record.table.declare(&p.name, DeclKind::Param, p.name.span, Some(at)),
            };
            self.decls.insert(p.name.name.clone(), decl);
        }
        if !self.network {
            self.names.insert("in".to_string(), def.name.span);
        }
        let mut has_input = false;
        let mut has_out = false;
        for stmt in &def.stmts {
            match stmt {
                Stmt::Input { dims, span } => {
                    if has_input {
                        self.errors.push(SemaError::Misplaced {
                            what: "a second `input` statement".into(),
                            span: *span,
                            help: "a network has exactly one input".into(),
                        });
                    }
                    has_input = true;
                    dims.iter().for_each(|d| self.expr(d));
                }
                Stmt::Rounding { policy, .. } => self.expr(policy),
                Stmt::Width { name, value } => {
                    self.expr(value);
                    self.declare(name);
                    self.record_decl(name, DeclKind::Width, name.span.to(value.span), at);
                }
                Stmt::Bind { name, value } => {
                    self.expr(value);
                    self.record_decl(name, DeclKind::Binding, name.span.to(value.span), at);
                    if self.network && NETWORK_SECTIONS.contains(&name.name.as_str()) {
                        self.sections.entry(name.name.clone()).or_insert(name.span);
                        continue;
                    }
                    has_out |= name.name == "out";
                    self.declare(name);
                }
            }
        }
        if self.network && !has_input {
            self.errors.push(SemaError::MissingInput { network: def.name.name.clone(), span: def.name.span });
        }
        if !self.network && !has_out {
            self.errors.push(SemaError::MissingOut { block: def.name.name.clone(), span: def.name.span });
        }
    }

    fn declare(&mut self, name: &Ident) {
        if name.name == "in" {
            self.errors.push(SemaError::ReservedName { name: name.name.clone(), span: name.span });
            return;
        }
        if let Some(first) = self.names.insert(name.name.clone(), name.span) {
            self.errors.push(SemaError::Duplicate { what: "name", name: name.name.clone(), first, second: name.span });
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) => {}
            ExprKind::Name(id) => {
                self.record_use(id);
                self.used.insert(id.name.clone());
                if self.unknown(&id.name) {
                    if self.network && NETWORK_SECTIONS.contains(&id.name.as_str()) {
                        let above = self.sections.get(&id.name).copied();
                        self.errors.push(SemaError::SectionAsTensor { name: id.name.clone(), span: id.span, above });
                        return;
                    }
                    let mut pool: Vec<&str> = self.names.keys().map(String::as_str).collect();
                    pool.extend(CONSTANTS);
                    // `True`, `False`: Python's spelling of the literals.
                    pool.extend(["true", "false"]);
                    let candidates = builtins::similar(&id.name, pool);
                    self.errors.push(SemaError::UnknownName { name: id.name.clone(), span: id.span, candidates });
                }
            }
            ExprKind::Unary(_, x) => self.expr(x),
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Chain(items) => {
                for (i, x) in items.iter().enumerate() {
                    match &x.kind {
                        // After an arrow a bare name is a layer: an unknown one is an unknown op.
                        ExprKind::Name(id) if i > 0 && self.unknown(&id.name) => {
                            self.record_use(id);
                            self.used.insert(id.name.clone());
                            let pool =
                                SIGNATURES.iter().map(|s: &Signature| s.name).chain(self.index.blocks.keys().copied());
                            let candidates = builtins::similar_op(&id.name, pool);
                            self.errors.push(SemaError::UnknownCallee {
                                name: id.name.clone(),
                                span: id.span,
                                candidates,
                            });
                        }
                        _ => self.expr(x),
                    }
                }
            }
            ExprKind::Field(x, f) => {
                self.expr(x);
                if !FIELDS.contains(&f.name.as_str()) {
                    // `1.e-6` reads as the field `e` of the integer 1, minus 6.
                    let exponent = matches!(x.kind, ExprKind::Int(_)) && f.name.starts_with('e');
                    self.errors.push(SemaError::UnknownField { name: f.name.clone(), span: f.span, exponent });
                }
            }
            ExprKind::If { arms, otherwise } => {
                for (c, v) in arms {
                    self.expr(c);
                    self.expr(v);
                }
                self.expr(otherwise);
            }
            ExprKind::Tuple(items) => items.iter().for_each(|x| self.expr(x)),
            ExprKind::Call { callee, args } => {
                self.call(callee, args);
                let block = self.record.blocks.get(callee.name.as_str()).cloned();
                if let Some((d, _)) = &block {
                    self.record.table.uses.push((callee.span, *d));
                }
                for a in args {
                    // A keyword argument of a block call names that block's parameter.
                    if let (Some(name), Some((d, params))) = (&a.name, &block) {
                        let decls = &self.record.table.decls;
                        let param = params.iter().copied().find(|&p| decls[p].name == name.name);
                        if let Some(p) = param.filter(|&p| decls[p].parent == Some(*d)) {
                            self.record.table.uses.push((name.span, p));
                        }
                    }
                    self.expr(&a.value);
                }
            }
        }
    }

    /// Not a local, a constant, an op or a block.
    fn unknown(&self, name: &str) -> bool {
        let is_layer = matches!(builtins::lookup(name), Some(Signature { builtin: builtins::Builtin::Op(_), .. }))
            || self.index.blocks.contains_key(name);
        !self.names.contains_key(name) && !CONSTANTS.contains(&name) && !is_layer
    }

    fn call(&mut self, callee: &Ident, args: &[Arg]) {
        let params: Vec<&str> = if let Some(sig) = builtins::lookup(&callee.name) {
            sig.params.to_vec()
        } else if let Some(b) = self.index.blocks.get(callee.name.as_str()) {
            b.params.iter().map(|p| p.name.name.as_str()).collect()
        } else {
            let pool = SIGNATURES.iter().map(|s: &Signature| s.name).chain(self.index.blocks.keys().copied());
            let candidates = builtins::similar_op(&callee.name, pool);
            self.errors.push(SemaError::UnknownCallee { name: callee.name.clone(), span: callee.span, candidates });
            return;
        };
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for a in args {
            let Some(name) = &a.name else { continue };
            if !params.contains(&name.name.as_str()) {
                let candidates = builtins::similar(&name.name, params.iter().copied());
                self.errors.push(SemaError::UnknownArgument {
                    callee: callee.name.clone(),
                    name: name.name.clone(),
                    span: name.span,
                    candidates,
                    params: params.iter().map(|p| p.to_string()).collect(),
                });
            } else if let Some(first) = seen.insert(name.name.as_str(), name.span) {
                self.errors.push(SemaError::RepeatedArgument { name: name.name.clone(), span: name.span, first });
            }
        }
    }
}

/// Reports every block that can reach itself through calls, once per cycle.
fn find_cycles(file: &File, index: &Index, errors: &mut Vec<SemaError>) {
    let mut calls: HashMap<&str, Vec<(&str, Span)>> = HashMap::new();
    for b in &file.blocks {
        let mut out = Vec::new();
        for stmt in &b.stmts {
            let (Stmt::Width { value, .. } | Stmt::Bind { value, .. }) = stmt else { continue };
            collect_calls(value, index, &mut out);
        }
        for p in &b.params {
            if let Some(d) = &p.default {
                collect_calls(d, index, &mut out);
            }
        }
        calls.entry(b.name.name.as_str()).or_insert(out);
    }
    let mut reported: HashSet<Vec<&str>> = HashSet::new();
    let mut names: Vec<&str> = calls.keys().copied().collect();
    names.sort();
    for start in names {
        // Iterative DFS for a path from `start` back to `start`.
        let mut stack: Vec<(&str, usize, Vec<&str>, Option<Span>)> = vec![(start, 0, vec![start], None)];
        let mut visited: HashSet<&str> = HashSet::new();
        while let Some((node, i, path, first_span)) = stack.pop() {
            let edges = &calls[node];
            if i >= edges.len() {
                continue;
            }
            stack.push((node, i + 1, path.clone(), first_span));
            let (next, span) = edges[i];
            let first_span = first_span.or(Some(span));
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start);
                let mut key = path.clone();
                key.sort();
                if reported.insert(key) {
                    let span = if path.len() == 1 { span } else { first_span.unwrap_or(span) };
                    errors.push(SemaError::Recursive { chain: cycle.iter().map(|s| s.to_string()).collect(), span });
                }
                continue;
            }
            if calls.contains_key(next) && visited.insert(next) {
                let mut p = path.clone();
                p.push(next);
                stack.push((next, 0, p, first_span));
            }
        }
    }
}

fn collect_calls<'a>(e: &'a Expr, index: &Index, out: &mut Vec<(&'a str, Span)>) {
    match &e.kind {
        ExprKind::Call { callee, args } => {
            if index.blocks.contains_key(callee.name.as_str()) {
                out.push((callee.name.as_str(), callee.span));
            }
            args.iter().for_each(|a| collect_calls(&a.value, index, out));
        }
        ExprKind::Unary(_, x) | ExprKind::Field(x, _) => collect_calls(x, index, out),
        ExprKind::Binary(_, a, b) => {
            collect_calls(a, index, out);
            collect_calls(b, index, out);
        }
        ExprKind::Chain(items) | ExprKind::Tuple(items) => items.iter().for_each(|x| collect_calls(x, index, out)),
        ExprKind::If { arms, otherwise } => {
            for (c, v) in arms {
                collect_calls(c, index, out);
                collect_calls(v, index, out);
            }
            collect_calls(otherwise, index, out);
        }
        _ => {}
    }
}
