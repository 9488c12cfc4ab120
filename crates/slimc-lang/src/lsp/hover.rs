//! Hover text: what the compiler derived for the thing under the cursor. A network name
//! shows its search space and cost; a `width` name the search dimensions it became; a block
//! call each instance it made; an op every layer it made (one per block instance), each at
//! full width and at the editor's width multiplier.

use std::fmt::Write;

use super::Analysis;
use crate::cost::{self, human, Cost};
use crate::ir::{dump, Block, LayerShape, Network, Op, Width};
use crate::sema::names::DeclKind;
use crate::syntax::ast::Span;

/// Rows shown per table before "… and N more".
const MAX_ROWS: usize = 8;

pub fn hover(a: &Analysis, offset: usize, width: f64) -> Option<(String, Span)> {
    if let Some(d) = a.names.at(offset) {
        let decl = &a.names.decls[d];
        let on_decl = decl.span.start <= offset && offset <= decl.span.end;
        match decl.kind {
            DeclKind::Network if on_decl => {
                let net = a.networks.iter().find(|n| n.name == decl.name)?;
                return Some((network(net, width), decl.span));
            }
            DeclKind::Block if on_decl => return Some((block_kind(a, &decl.name, width), decl.span)),
            DeclKind::Width => return Some((named_width(a, &decl.name, decl.span, width), decl.span)),
            DeclKind::Param => {
                let span = a
                    .names
                    .uses
                    .iter()
                    .map(|u| u.0)
                    .chain([decl.span])
                    .find(|s| s.start <= offset && offset <= s.end)?;
                return Some((param(a, d), span));
            }
            _ => {}
        }
    }
    let covers = |s: &Span| s.start <= offset && offset < s.end.max(s.start + 1);
    let layer_span =
        a.networks.iter().flat_map(|n| n.layers.iter().map(|(_, l)| l.span)).filter(covers).min_by_key(width_of);
    let call_span = a.networks.iter().flat_map(|n| n.blocks.iter().map(|b| b.span)).filter(covers).min_by_key(width_of);
    match (layer_span, call_span) {
        (Some(l), Some(c)) if width_of(&c) <= width_of(&l) => Some((block_calls(a, c, width), c)),
        (Some(l), _) => Some((layers(a, l, width), l)),
        (None, Some(c)) => Some((block_calls(a, c, width), c)),
        (None, None) => None,
    }
}

fn width_of(s: &Span) -> usize {
    s.end - s.start
}

/// Per-layer shapes and costs of one network at full width and at `width`.
struct Measured {
    full: (Vec<LayerShape>, Vec<Cost>, Cost),
    at: Option<(Vec<LayerShape>, Vec<Cost>, Cost)>,
}

impl Measured {
    fn new(net: &Network, width: f64) -> Measured {
        let measure = |dims: Vec<u32>| {
            let shapes = net.layer_shapes(&dims);
            let (total, per) = cost::cost_of_shapes(net, &shapes);
            (shapes, per, total)
        };
        Measured { full: measure(net.full_width()), at: net.decode_uniform(width, net.rounding).ok().map(measure) }
    }

    /// `full · at w` of some quantity of the two measurements.
    fn pair<T: std::fmt::Display>(&self, f: impl Fn(&(Vec<LayerShape>, Vec<Cost>, Cost)) -> T) -> String {
        match &self.at {
            Some(at) => format!("{} · {}", f(&self.full), f(at)),
            None => f(&self.full).to_string(),
        }
    }
}

fn header(width: f64) -> String {
    format!("values: full width · width {width}\n\n")
}

fn network(net: &Network, width: f64) -> String {
    let m = Measured::new(net, width);
    let [c, h, w] = net.input;
    let mut s = format!("**network `{}`**: input {c}×{h}×{w}, rounding {}\n\n", net.name, net.rounding);
    let _ = writeln!(s, "search_dim **{}**, {} layers\n", net.space.search_dim(), net.compute_layers().count());
    s.push_str(&header(width));
    let _ = writeln!(s, "- MACs: {}", m.pair(|x| human(x.2.macs)));
    let _ = writeln!(s, "- params: {}", m.pair(|x| human(x.2.params)));
    let _ = writeln!(s, "- channel_space: `{}`", dump::channel_space(&net.space.channel_space()));
    s
}

fn named_width(a: &Analysis, name: &str, decl: Span, width: f64) -> String {
    let mut s = format!("**width `{name}`**\n\n");
    let mut rows = Vec::new();
    for net in &a.networks {
        let at = net.decode_uniform(width, net.rounding).ok();
        for (i, d) in net.space.dims.iter().enumerate().filter(|(_, d)| d.origins.contains(&decl)) {
            let channels = match &at {
                Some(at) => format!("{} · {}", d.base, at[i]),
                None => d.base.to_string(),
            };
            let prefix = prefix(a, net);
            rows.push(format!(
                "| {prefix}d{i} | {} | {channels} | {} | {} |",
                dump::section(d.section),
                d.divisor,
                d.layers.len()
            ));
        }
    }
    if rows.is_empty() {
        s.push_str("no search dimension starts here: a fixed width, an alias of another width, or unused\n");
        return s;
    }
    s.push_str(&header(width));
    s.push_str("| dimension | section | channels | divisor | layers |\n|---|---|---|---|---|\n");
    table(&mut s, rows);
    s
}

fn param(a: &Analysis, d: usize) -> String {
    let decl = &a.names.decls[d];
    let owner = decl.parent.map(|p| &a.names.decls[p]);
    let mut s = format!("**parameter `{}`**", decl.name);
    match owner {
        Some(o) if o.kind == DeclKind::Network => {
            let _ = write!(s, " of network `{}`", o.name);
            if let Some((_, v)) =
                a.networks.iter().find(|n| n.name == o.name).and_then(|n| n.params.iter().find(|p| p.0 == decl.name))
            {
                let _ = write!(s, " = {v} (set with `--set {}=…`)", decl.name);
            }
        }
        Some(o) => {
            let _ = write!(s, " of block `{}`", o.name);
        }
        None => {}
    }
    s.push('\n');
    s
}

/// The name prefix of a network's rows, when the file has several.
fn prefix(a: &Analysis, net: &Network) -> String {
    if a.networks.len() > 1 {
        format!("{}/", net.name)
    } else {
        String::new()
    }
}

fn layers(a: &Analysis, span: Span, width: f64) -> String {
    let mut rows = Vec::new();
    let mut kind = "";
    let mut totals = (Cost::default(), Cost::default());
    for net in &a.networks {
        let matching: Vec<_> = net.layers.iter().filter(|(_, l)| l.span == span).collect();
        if matching.is_empty() {
            continue;
        }
        let m = Measured::new(net, width);
        for (id, l) in matching {
            let i = id.index();
            kind = l.op.kind();
            totals.0 += m.full.1[i];
            if let Some(at) = &m.at {
                totals.1 += at.1[i];
            }
            let dim = match &l.width {
                Width::Dim(d) => format!("d{d} ({})", dump::section(net.space.dims[*d].section)),
                Width::Fixed(_) => "fixed".to_string(),
                derived => dump::width(derived),
            };
            let [h, w] = l.hw;
            // Attention slims by whole heads: show how many are active.
            let heads = |c: u32| match l.op {
                Op::Attend { heads, share, .. } => {
                    let (n, d) = heads.split(c);
                    let shared = if share > 1 { format!(", {} key/value heads", n / share) } else { String::new() };
                    format!(" ({n} heads of {d}{shared})")
                }
                _ => String::new(),
            };
            rows.push(format!(
                "| `{}{}` | {} | {h}×{w} | {} | {} | {} |",
                prefix(a, net),
                l.name,
                m.pair(|x| format!("{}→{}{}", x.0[i].in_c, x.0[i].out, heads(x.0[i].out))),
                dim,
                m.pair(|x| human(x.1[i].macs)),
                m.pair(|x| human(x.1[i].params)),
            ));
        }
    }
    let n = rows.len();
    let mut s = format!("**{kind}**: {} {}\n\n", n, if n == 1 { "layer" } else { "layers" });
    s.push_str(&header(width));
    s.push_str("| layer | channels in→out | out size | dimension | MACs | params |\n|---|---|---|---|---|---|\n");
    table(&mut s, rows);
    if n > 1 {
        let _ =
            writeln!(s, "\nall {n}: {} MACs, {} params at full width", human(totals.0.macs), human(totals.0.params));
    }
    s
}

fn block_calls(a: &Analysis, span: Span, width: f64) -> String {
    let (rows, kind) = instances(a, width, |b| b.span == span);
    let n = rows.len();
    let mut s = format!("**block `{kind}`**: {n} {}\n\n", if n == 1 { "instance" } else { "instances" });
    instance_table(&mut s, width, rows);
    s
}

fn block_kind(a: &Analysis, name: &str, width: f64) -> String {
    let (rows, _) = instances(a, width, |b| b.kind == name);
    let n = rows.len();
    let mut s = format!("**block `{name}`**: called {n} {}\n\n", if n == 1 { "time" } else { "times" });
    if n > 0 {
        instance_table(&mut s, width, rows);
    }
    s
}

/// A row for each block instance `pick` accepts, in every network, and the kind of the last.
fn instances(a: &Analysis, width: f64, pick: impl Fn(&Block) -> bool) -> (Vec<String>, String) {
    let mut rows = Vec::new();
    let mut kind = String::new();
    for net in &a.networks {
        let m = Measured::new(net, width);
        for (b, block) in net.blocks.iter().enumerate().filter(|(_, b)| pick(b)) {
            kind.clone_from(&block.kind);
            rows.push(instance_row(a, net, &m, b));
        }
    }
    (rows, kind)
}

fn instance_table(s: &mut String, width: f64, rows: Vec<String>) {
    s.push_str(&header(width));
    s.push_str("| instance | channels in→out | MACs | params |\n|---|---|---|---|\n");
    table(s, rows);
}

/// One block instance: its input and output channels and the cost of every layer inside it.
fn instance_row(a: &Analysis, net: &Network, m: &Measured, b: usize) -> String {
    let block = &net.blocks[b];
    let inside = |mut at: Option<usize>| {
        while let Some(x) = at {
            if x == b {
                return true;
            }
            at = net.blocks[x].parent;
        }
        false
    };
    let sum = |costs: &[Cost]| {
        let mut c = Cost::default();
        net.layers.iter().filter(|(_, l)| inside(l.block)).for_each(|(id, _)| c += costs[id.index()]);
        c
    };
    let (i, o) = (block.input.index(), block.output.index());
    format!(
        "| `{}{}` | {} | {} | {} |",
        prefix(a, net),
        block.name,
        m.pair(|x| format!("{}→{}", x.0[i].out, x.0[o].out)),
        m.pair(|x| human(sum(&x.1).macs)),
        m.pair(|x| human(sum(&x.1).params)),
    )
}

fn table(s: &mut String, rows: Vec<String>) {
    let n = rows.len();
    for r in rows.iter().take(MAX_ROWS) {
        s.push_str(r);
        s.push('\n');
    }
    if n > MAX_ROWS {
        let _ = writeln!(s, "\n… and {} more", n - MAX_ROWS);
    }
}
