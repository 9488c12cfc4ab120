//! After elaboration: every remaining free group becomes one search dimension, ordered
//! stem first, then per stage (the stage's shared group first, then inner groups in
//! order of appearance), then the head. Terms become IR [`Width`]s.

use std::collections::{HashMap, HashSet};

use super::channels::{Channels, GroupId, Term};
use super::eval::{BlockInstance, Node};
use super::network::Elaborated;
use crate::ir::{Arena, Block, Dim, Layer, LayerId, Network, Rounding, SearchSpace, Section, Width};

pub fn build(
    name: &str,
    nodes: Vec<Node>,
    blocks: Vec<BlockInstance>,
    mut ch: Channels,
    e: Elaborated,
    rounding: Rounding,
) -> Network {
    let terms: Vec<Term> = nodes.iter().map(|n| ch.normalize(&n.term).unwrap_or_else(|_| n.term.clone())).collect();

    // First appearance of each free group, in forward order.
    let mut first: Vec<(GroupId, Section)> = Vec::new();
    let mut seen: HashSet<GroupId> = HashSet::new();
    for (n, t) in nodes.iter().zip(&terms) {
        let mut gs = Vec::new();
        free_groups(t, &mut ch, &mut gs);
        for g in gs {
            if seen.insert(g) {
                first.push((g, n.section));
            }
        }
    }
    // A stage's shared groups: the free groups of its output tensor.
    let mut stage_out: HashMap<usize, Vec<GroupId>> = HashMap::new();
    for (n, t) in nodes.iter().zip(&terms) {
        if let Section::Stage(s) = n.section {
            let mut gs = Vec::new();
            free_groups(t, &mut ch, &mut gs);
            stage_out.insert(s, gs);
        }
    }

    let mut order: Vec<(GroupId, Section)> = Vec::new();
    let mut placed: HashMap<GroupId, usize> = HashMap::new();
    let mut place = |g: GroupId, s: Section, order: &mut Vec<(GroupId, Section)>| {
        if let std::collections::hash_map::Entry::Vacant(e) = placed.entry(g) {
            e.insert(order.len());
            order.push((g, s));
        }
    };
    for &(g, s) in &first {
        if matches!(s, Section::Input | Section::Stem) {
            place(g, Section::Stem, &mut order);
        }
    }
    for s in 1..=e.stages {
        for &g in stage_out.get(&s).map(Vec::as_slice).unwrap_or(&[]) {
            place(g, Section::Stage(s), &mut order);
        }
        for &(g, sec) in &first {
            if sec == Section::Stage(s) {
                place(g, sec, &mut order);
            }
        }
    }
    for &(g, _) in &first {
        place(g, Section::Head, &mut order);
    }
    let index: HashMap<GroupId, usize> = order.iter().enumerate().map(|(i, (g, _))| (*g, i)).collect();

    let mut dims: Vec<Dim> = order
        .iter()
        .map(|&(g, section)| Dim {
            base: ch.base_of(g),
            section,
            divisor: ch.divisor(g),
            at_least: Vec::new(),
            layers: Vec::new(),
            origins: Vec::new(),
        })
        .collect();
    for g in (0..ch.group_count() as u32).map(GroupId) {
        let root = ch.find(g);
        if let (Some(&i), false) = (index.get(&root), ch.is_fixed(root)) {
            dims[i].origins.push(ch.declared_at(g));
        }
    }
    for d in &mut dims {
        d.origins.sort();
        d.origins.dedup();
    }
    let bounds: Vec<(GroupId, Term)> = ch.lower_bounds().iter().map(|(g, t, _)| (*g, t.clone())).collect();
    for (g, bound) in bounds {
        let Ok(Term::G(root)) = ch.normalize(&Term::G(g)) else { continue };
        if let Some(&i) = index.get(&root) {
            let b = ch.normalize(&bound).unwrap_or(bound);
            dims[i].at_least.push(to_width(&b, &mut ch, &index));
        }
    }

    let mut layers: Arena<Layer> = Arena::default();
    for (n, t) in nodes.into_iter().zip(&terms) {
        let width = to_width(t, &mut ch, &index);
        let id = layers.push(Layer {
            name: n.name,
            op: n.op,
            inputs: n.inputs.into_iter().map(LayerId::new).collect(),
            width: width.clone(),
            channels: n.channels,
            hw: n.hw,
            section: n.section,
            block: n.block,
            span: n.span,
        });
        if let (true, Width::Dim(d)) = (n.sets_width, &width) {
            dims[*d].layers.push(id);
        }
    }
    Network {
        name: name.to_string(),
        params: e.params,
        input: e.input,
        rounding,
        layers,
        output: LayerId::new(e.output),
        space: SearchSpace { dims, stages: e.stages },
        blocks: blocks
            .into_iter()
            .map(|b| Block {
                kind: b.kind,
                name: b.name,
                parent: b.parent,
                input: LayerId::new(b.input),
                output: LayerId::new(b.output),
                span: b.span,
            })
            .collect(),
    }
}

fn free_groups(t: &Term, ch: &mut Channels, out: &mut Vec<GroupId>) {
    match t {
        Term::G(g) => {
            let r = ch.find(*g);
            if !ch.is_fixed(r) && !out.contains(&r) {
                out.push(r);
            }
        }
        Term::Sum(items) => items.iter().for_each(|i| free_groups(i, ch, out)),
        Term::Part(t, _) | Term::Ratio(t, _, _) => free_groups(t, ch, out),
    }
}

fn to_width(t: &Term, ch: &mut Channels, index: &HashMap<GroupId, usize>) -> Width {
    match t {
        Term::G(g) => {
            let r = ch.find(*g);
            match index.get(&r) {
                Some(&i) if !ch.is_fixed(r) => Width::Dim(i),
                _ => Width::Fixed(ch.base_of(r)),
            }
        }
        Term::Sum(items) => Width::Sum(items.iter().map(|i| to_width(i, ch, index)).collect()),
        Term::Part(of, parts) => Width::Part { of: Box::new(to_width(of, ch, index)), parts: *parts },
        Term::Ratio(of, ratio, r) => {
            Width::Ratio { of: Box::new(to_width(of, ch, index)), ratio: *ratio, rounding: *r }
        }
    }
}
