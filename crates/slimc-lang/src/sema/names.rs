//! The name table name resolution builds (`resolve.rs`): every declaration of a file
//! (networks, blocks, parameters, named widths, bindings) and every use, linked to the
//! declaration it means, for the editor. Inside a definition a name is one of its
//! parameters or statements declared before the use (the latest such), otherwise a block
//! (the first of that name); `in` is the block's input and declares nothing; a keyword
//! argument of a block call names that block's parameter.

use crate::syntax::ast::{Ident, Span};

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
    pub(super) fn declare(&mut self, id: &Ident, kind: DeclKind, full: Span, parent: Option<usize>) -> usize {
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
