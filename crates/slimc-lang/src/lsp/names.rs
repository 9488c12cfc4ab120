//! Names for the editor: every declaration of a file (networks, blocks, parameters, named
//! widths, bindings) and every use, linked to the declaration it means. Scoping follows
//! `sema/resolve.rs`: inside a definition a name is one of its parameters or statements
//! declared before the use (the latest such), otherwise a block; `in` is the block's input
//! and declares nothing; a keyword argument of a block call names that block's parameter.

use std::collections::HashMap;

use crate::syntax::ast::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclKind {
    Network,
    Block,
    Param,
    /// `width NAME = …`.
    Width,
    /// `NAME = …`, including the network sections `stem`, `stage`, `head`.
    Binding,
}

#[derive(Clone, Debug)]
pub struct Decl {
    pub name: String,
    /// The declaring identifier.
    pub span: Span,
    pub kind: DeclKind,
    /// The whole statement or definition, for document symbols.
    pub full: Span,
    /// The enclosing declaration (a network or block), for document symbols.
    pub parent: Option<usize>,
}

/// Declarations (blocks with their parameters first, then in walk order), and uses as
/// `(span of the name, declaration index)`.
#[derive(Debug, Default)]
pub struct Names {
    pub decls: Vec<Decl>,
    pub uses: Vec<(Span, usize)>,
}

impl Names {
    pub fn new(file: &File) -> Names {
        let mut names = Names::default();
        // Each block's declaration and its parameters' first, so that calls above a block's
        // definition find it; a duplicate block name means the first (as sema reports it).
        let mut own: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut blocks: HashMap<&str, (usize, Vec<usize>)> = HashMap::new();
        for def in &file.blocks {
            let at = names.declare(&def.name, DeclKind::Block, def.span, None);
            let params =
                def.params.iter().map(|p| names.declare(&p.name, DeclKind::Param, p.name.span, Some(at))).collect();
            own.push((at, params));
            blocks.entry(def.name.name.as_str()).or_insert_with(|| own[own.len() - 1].clone());
        }
        for (def, (at, params)) in file.blocks.iter().zip(&own) {
            Walk { names: &mut names, blocks: &blocks, scope: HashMap::new() }.definition(def, *at, Some(params));
        }
        for def in &file.networks {
            let at = names.declare(&def.name, DeclKind::Network, def.span, None);
            Walk { names: &mut names, blocks: &blocks, scope: HashMap::new() }.definition(def, at, None);
        }
        names
    }

    fn declare(&mut self, id: &Ident, kind: DeclKind, full: Span, parent: Option<usize>) -> usize {
        self.decls.push(Decl { name: id.name.clone(), span: id.span, kind, full, parent });
        self.decls.len() - 1
    }

    /// The declaration whose name, or a use of it, covers `offset`.
    pub fn at(&self, offset: usize) -> Option<usize> {
        let covers = |s: &Span| s.start <= offset && offset <= s.end;
        self.uses
            .iter()
            .find(|(s, _)| covers(s))
            .map(|(_, d)| *d)
            .or_else(|| self.decls.iter().position(|d| covers(&d.span)))
    }

    /// Every use of declaration `d` (in walk order: blocks before networks).
    pub fn uses_of(&self, d: usize) -> impl Iterator<Item = Span> + '_ {
        self.uses.iter().filter(move |(_, x)| *x == d).map(|(s, _)| *s)
    }
}

struct Walk<'n, 'f> {
    names: &'n mut Names,
    blocks: &'n HashMap<&'f str, (usize, Vec<usize>)>,
    scope: HashMap<String, usize>,
}

impl Walk<'_, '_> {
    /// `params`: the block's parameter declarations, already made; `None` for a network.
    fn definition(&mut self, def: &Definition, at: usize, params: Option<&[usize]>) {
        for (i, p) in def.params.iter().enumerate() {
            if let Some(d) = &p.default {
                self.expr(d);
            }
            let decl = match params {
                Some(ps) => ps[i],
                None => self.names.declare(&p.name, DeclKind::Param, p.name.span, Some(at)),
            };
            self.scope.insert(p.name.name.clone(), decl);
        }
        for stmt in &def.stmts {
            match stmt {
                Stmt::Input { dims, .. } => dims.iter().for_each(|d| self.expr(d)),
                Stmt::Rounding { policy, .. } => self.expr(policy),
                Stmt::Width { name, value } => {
                    self.expr(value);
                    let d = self.names.declare(name, DeclKind::Width, name.span.to(value.span), Some(at));
                    self.scope.insert(name.name.clone(), d);
                }
                Stmt::Bind { name, value } => {
                    self.expr(value);
                    let d = self.names.declare(name, DeclKind::Binding, name.span.to(value.span), Some(at));
                    self.scope.insert(name.name.clone(), d);
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) => {}
            ExprKind::Name(id) => {
                let d = self.scope.get(&id.name).copied().or_else(|| self.blocks.get(id.name.as_str()).map(|b| b.0));
                if let Some(d) = d {
                    self.names.uses.push((id.span, d));
                }
            }
            ExprKind::Unary(_, x) | ExprKind::Field(x, _) => self.expr(x),
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Chain(items) => items.iter().for_each(|x| self.expr(x)),
            ExprKind::Call { callee, args } => {
                let block = self.blocks.get(callee.name.as_str()).cloned();
                if let Some((d, _)) = &block {
                    self.names.uses.push((callee.span, *d));
                }
                for a in args {
                    if let (Some(name), Some((d, params))) = (&a.name, &block) {
                        let param = params.iter().copied().find(|&p| self.names.decls[p].name == name.name);
                        if let Some(p) = param.filter(|&p| self.names.decls[p].parent == Some(*d)) {
                            self.names.uses.push((name.span, p));
                        }
                    }
                    self.expr(&a.value);
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
        }
    }
}
