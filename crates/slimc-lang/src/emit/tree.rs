//! The scopes of a network as both emitters see them: the network itself and each block
//! instance, which layers and child blocks each one computes, in forward order, and the
//! name each value has inside a scope.

use std::collections::BTreeSet;

use super::EmitError;
use crate::ir::{Layer, LayerId, Network, Op};

/// One scope: the network itself or a block instance.
pub(super) struct Scope {
    /// Layer-name prefix, without the trailing dot ("" for the network).
    pub prefix: String,
    /// The layer whose output is this scope's `x`.
    pub input: Option<usize>,
    /// The layer whose output the scope returns.
    pub output: usize,
}

/// A statement of a scope's forward: a layer of its own, or a call of a child block.
pub(super) enum Item {
    Layer(usize),
    Child(usize),
}

/// What a value is called inside a scope.
pub(super) enum Local<'n> {
    /// The scope's input (`x`).
    Input,
    /// A layer's or a child block's output, by its name relative to the scope (`main.conv1`).
    Name(&'n str),
}

pub(super) struct Tree<'n> {
    pub net: &'n Network,
    /// Scope of each layer: 0 for the network, `b + 1` for block `b`.
    pub owner: Vec<usize>,
    pub scopes: Vec<Scope>,
}

impl<'n> Tree<'n> {
    pub fn new(net: &'n Network) -> Tree<'n> {
        let mut scopes = vec![Scope { prefix: String::new(), input: None, output: net.output.index() }];
        scopes.extend(net.blocks.iter().map(|b| Scope {
            prefix: b.name.clone(),
            input: Some(b.input.index()),
            output: b.output.index(),
        }));
        let owner = net.layers.iter().map(|(_, l)| l.block.map_or(0, |b| b + 1)).collect();
        Tree { net, owner, scopes }
    }

    pub fn parent(&self, scope: usize) -> Option<usize> {
        if scope == 0 {
            None
        } else {
            Some(self.net.blocks[scope - 1].parent.map_or(0, |p| p + 1))
        }
    }

    /// The child of `scope` that `s` lies in (or `s` itself when it is a direct child).
    pub fn child_of(&self, scope: usize, mut s: usize) -> Option<usize> {
        while let Some(p) = self.parent(s) {
            if p == scope {
                return Some(s);
            }
            s = p;
        }
        None
    }

    /// A scope's statements in forward order.
    pub fn items(&self, scope: usize) -> Vec<Item> {
        let mut items = Vec::new();
        let mut seen = BTreeSet::new();
        for (id, l) in self.net.layers.iter() {
            let i = id.index();
            if l.op == Op::Input {
                continue;
            }
            let o = self.owner[i];
            if o == scope {
                items.push(Item::Layer(i));
            } else if let Some(c) = self.child_of(scope, o) {
                if seen.insert(c) {
                    items.push(Item::Child(c));
                }
            }
        }
        items
    }

    pub fn layer(&self, i: usize) -> &'n Layer {
        &self.net.layers[LayerId::new(i)]
    }

    /// The inputs of a statement, as layers.
    pub fn inputs(&self, item: &Item) -> Vec<usize> {
        match item {
            Item::Layer(i) => self.layer(*i).inputs.iter().map(|j| j.index()).collect(),
            Item::Child(c) => vec![self.scopes[*c].input.expect("a block has an input")],
        }
    }

    /// The name of layer `layer`'s output (after [`Self::source`]) in `scope`.
    pub fn local(&self, scope: usize, layer: usize) -> Result<Local<'n>, EmitError> {
        let input = self.scopes[scope].input.map(|i| self.source(i));
        if input == Some(layer) || (scope == 0 && self.layer(layer).op == Op::Input) {
            return Ok(Local::Input);
        }
        let o = self.owner[layer];
        let name = &self.layer(layer).name;
        if o == scope {
            return Ok(Local::Name(self.suffix(scope, name)));
        }
        match self.child_of(scope, o) {
            // Only a child's output is visible outside it.
            Some(c) if self.source(self.scopes[c].output) == layer => {
                Ok(Local::Name(self.suffix(scope, &self.net.blocks[c - 1].name)))
            }
            _ => Err(EmitError::OutsideBlock(name.clone())),
        }
    }

    /// `name` relative to `scope`'s prefix.
    pub fn suffix<'a>(&self, scope: usize, name: &'a str) -> &'a str {
        let prefix = &self.scopes[scope].prefix;
        if prefix.is_empty() {
            name
        } else {
            name.strip_prefix(prefix.as_str()).map_or(name, |s| s.trim_start_matches('.'))
        }
    }

    /// Whether layer `i` passes its input on unchanged (a flatten of a 1×1 map).
    pub fn passes_on(&self, i: usize) -> bool {
        let l = self.layer(i);
        l.op == Op::Flatten && self.net.layers[l.inputs[0]].hw == [1, 1]
    }

    /// The layer behind a variable that passes its input on: its input.
    pub fn source(&self, mut layer: usize) -> usize {
        while self.passes_on(layer) {
            layer = self.layer(layer).inputs[0].index();
        }
        layer
    }

    /// The scopes from the network down to the one that owns `layer`.
    pub fn chain(&self, layer: usize) -> Vec<usize> {
        let mut scopes = vec![self.owner[layer]];
        while let Some(p) = self.parent(*scopes.last().expect("non-empty")) {
            scopes.push(p);
        }
        scopes.reverse();
        scopes
    }
}
