//! The `.slim` text of an imported graph, laid out as a person would write it:
//!
//! - **Cut points**: a node after which nothing earlier is read again (the only live
//!   tensor). Between two cut points lies a segment: a chain of ops is written inline, a
//!   segment with branches (a residual, a squeeze-excite, a concat) becomes a block
//!   instance whose body names its branches (`main`, `skip`, `gate`, …).
//! - **Blocks**: segments of one structure (the same text once their numbers are taken
//!   out) are one `block`; a number that differs between its instances is a parameter
//!   (`c`, `stride`, `k`, …; an out-channel count positional, the rest with the most common
//!   value as default), and equal consecutive calls are one call `* n`.
//! - **Sections**: the pooling and classifier at the end are the `head` (its last linear
//!   `classes` wide); stages start where the resolution drops (a block that downsamples,
//!   or the run of inline ops in which it drops, from after its last un-activated BN);
//!   the `stem` is what comes before the first stage.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::Graph;
use crate::ir::{Groups, Op};

/// One argument of an op call: written as `key=value` (or by position when `key` is
/// `None`), left out where every use has the op's default.
#[derive(Clone, Debug)]
struct Slot {
    key: Option<&'static str>,
    /// What a parameter holding it is called (`c`, `k`, `stride`, …).
    kind: &'static str,
    value: String,
    default: bool,
}

#[derive(Clone, Debug)]
struct Call {
    name: &'static str,
    slots: Vec<Slot>,
}

fn pair(v: [u32; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("({}, {})", v[0], v[1])
    }
}

fn slot(key: &'static str, kind: &'static str, value: String, default: bool) -> Slot {
    Slot { key: Some(key), kind, value, default }
}

fn positional(kind: &'static str, value: String) -> Slot {
    Slot { key: None, kind, value, default: false }
}

/// The op call that computes node `n` (`out` its channels; `classes` for the classifier).
fn call(op: &Op, out: String) -> Call {
    let (name, slots): (&'static str, Vec<Slot>) = match op {
        Op::Conv { kernel, stride, padding, dilation, groups, bias } => {
            let depthwise = *groups == Groups::Depthwise;
            let k_default = if depthwise { [3, 3] } else { [1, 1] };
            let pad_default = [0, 1].map(|i| (kernel[i] - 1) / 2 * dilation[i]);
            let mut s = Vec::new();
            if !depthwise {
                s.push(positional("c", out));
            }
            s.push(slot("k", "k", pair(*kernel), *kernel == k_default));
            s.push(slot("stride", "stride", pair(*stride), *stride == [1, 1]));
            s.push(slot("padding", "padding", pair(*padding), *padding == pad_default));
            s.push(slot("dilation", "dilation", pair(*dilation), *dilation == [1, 1]));
            match groups {
                Groups::Depthwise | Groups::Count(1) => {}
                Groups::Count(n) => s.push(slot("groups", "groups", n.to_string(), false)),
                Groups::Width(w) => s.push(slot("group_width", "gw", w.to_string(), false)),
            }
            s.push(slot("bias", "bias", bias.to_string(), !bias));
            (if depthwise { "dwconv" } else { "conv" }, s)
        }
        Op::Linear { bias } => ("linear", vec![positional("c", out), slot("bias", "bias", bias.to_string(), *bias)]),
        Op::MaxPool { kernel, stride, padding, ceil_mode } => (
            "maxpool",
            vec![
                slot("k", "k", pair(*kernel), false),
                slot("stride", "stride", pair(*stride), stride == kernel),
                slot("padding", "padding", pair(*padding), *padding == [0, 0]),
                slot("ceil_mode", "ceil_mode", ceil_mode.to_string(), !ceil_mode),
            ],
        ),
        Op::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad } => (
            "avgpool",
            vec![
                slot("k", "k", pair(*kernel), false),
                slot("stride", "stride", pair(*stride), stride == kernel),
                slot("padding", "padding", pair(*padding), *padding == [0, 0]),
                slot("ceil_mode", "ceil_mode", ceil_mode.to_string(), !ceil_mode),
                // Without padding the divisor is the window's either way.
                slot(
                    "count_include_pad",
                    "count_include_pad",
                    count_include_pad.to_string(),
                    *count_include_pad || *padding == [0, 0],
                ),
            ],
        ),
        Op::Split { part, parts } => (
            "split",
            vec![positional("part", part.to_string()), slot("parts", "parts", parts.to_string(), *parts == 2)],
        ),
        Op::Slice { start, end } => (
            "slice",
            vec![slot("start", "start", start.to_string(), *start == 0), slot("end", "end", end.to_string(), false)],
        ),
        Op::Shuffle { groups } => ("shuffle", vec![slot("groups", "groups", groups.to_string(), *groups == 2)]),
        Op::Subsample { stride, offset } => (
            "subsample",
            vec![
                positional("stride", stride.to_string()),
                slot("offset", "offset", format!("({}, {})", offset[0], offset[1]), *offset == [0, 0]),
            ],
        ),
        Op::ZeroPad => ("zeropad", vec![positional("c", out)]),
        Op::GlobalAvgPool => ("avgpool", vec![]),
        Op::LayerNorm { eps } => ("layernorm", vec![slot("eps", "eps", format!("{eps:e}"), *eps == 1e-5)]),
        Op::LayerScale { init } => ("layer_scale", vec![slot("init", "init", format!("{init:e}"), *init == 1e-6)]),
        Op::Input
        | Op::ConvTranspose { .. }
        | Op::BatchNorm
        | Op::Act(_)
        | Op::AdaptiveAvgPool { .. }
        | Op::Flatten
        | Op::Upsample { .. }
        | Op::Attend { .. }
        | Op::Tokens
        | Op::ClassToken
        | Op::PosEmbed { .. }
        | Op::Token { .. }
        | Op::Dropout { .. }
        | Op::DropPath { .. }
        | Op::Add
        | Op::Mul
        | Op::Concat => (op.kind(), vec![]),
    };
    Call { name, slots }
}

/// `name(args)` with each slot's text from `value` (`None` leaves it out).
fn render(c: &Call, mut value: impl FnMut(usize, &Slot) -> Option<String>) -> String {
    let mut args: Vec<String> = Vec::new();
    for (i, s) in c.slots.iter().enumerate() {
        if let Some(v) = value(i, s) {
            args.push(match s.key {
                Some(k) => format!("{k}={v}"),
                None => v,
            });
        }
    }
    if args.is_empty() {
        c.name.to_string()
    } else {
        format!("{}({})", c.name, args.join(", "))
    }
}

fn literal(c: &Call) -> String {
    render(c, |_, s| (!s.default).then(|| s.value.clone()))
}

/// One segment written as a block body: statements with op calls marked `\u{1}N\u{2}`.
struct Body {
    text: String,
    calls: Vec<Call>,
}

impl Body {
    /// The structure alone: the text, each call's name and argument keys.
    fn signature(&self) -> String {
        let mut s = self.text.clone();
        for c in &self.calls {
            let keys: Vec<String> = c.slots.iter().map(|s| format!("{:?}:{}", s.key, s.kind)).collect();
            let _ = write!(s, "|{}({})", c.name, keys.join(","));
        }
        s
    }
}

enum Item {
    Op(usize),
    /// A block instance: the segment's first and last node.
    Block {
        first: usize,
        last: usize,
    },
}

/// The `.slim` source of `graph`, a network called `name` (`path` is named in a comment).
pub(super) fn slim(graph: &Graph, name: &str, path: &Path) -> String {
    let nodes = &graph.nodes;
    let n = nodes.len();
    let mut consumers = vec![Vec::new(); n];
    for (i, node) in nodes.iter().enumerate() {
        for &j in &node.inputs {
            consumers[j].push(i);
        }
    }
    let (outs, widths) = tied_widths(graph);
    // Cut points: nothing before p is read after p.
    let mut cut = vec![false; n];
    let mut reach = 0;
    for p in 0..n {
        cut[p] = reach <= p;
        let last_use = consumers[p].iter().copied().max().unwrap_or(p);
        reach = reach.max(last_use);
    }
    // The head: the chain from the global pooling (or flatten) to the output.
    let out = graph.output;
    let mut head = out;
    loop {
        let node = &nodes[head];
        let [p] = node.inputs[..] else { break };
        if nodes[p].hw != [1, 1] || p == 0 || consumers[p].len() != 1 || nodes[p].inputs.len() != 1 {
            break;
        }
        head = p;
    }
    if nodes[head].inputs.len() != 1 || !cut[nodes[head].inputs[0]] {
        head = out + 1;
    }
    // Items of the body: inline ops and block instances, between cut points.
    let mut items = Vec::new();
    let mut start = 1;
    for (p, _) in cut.iter().enumerate().take(head.min(n)).skip(1).filter(|(_, &c)| c) {
        let chain = (start..=p).all(|i| nodes[i].inputs.len() == 1 && nodes[i].inputs[0] + 1 == i);
        if chain {
            items.extend((start..=p).map(Item::Op));
        } else {
            items.push(Item::Block { first: start, last: p });
        }
        start = p + 1;
    }
    // A block's trailing activations (the ReLU after a residual sum) and shuffle belong to it.
    let mut merged: Vec<Item> = Vec::new();
    for it in items {
        if let (Item::Op(j), Some(Item::Block { last, .. })) = (&it, merged.last_mut()) {
            if matches!(nodes[*j].op, Op::Act(_) | Op::Shuffle { .. }) && nodes[*j].inputs == [*last] {
                *last = *j;
                continue;
            }
        }
        merged.push(it);
    }
    let mut items = merged;
    // The ops after the last block (or the last BN no activation follows) and before the
    // pooling are the head's: MobileNet's and ShuffleNet's last 1×1 conv, DenseNet's last BN.
    let is_act = |it: Option<&Item>| matches!(it, Some(Item::Op(k)) if matches!(nodes[*k].op, Op::Act(_)));
    let anchor = (0..items.len()).rev().find(|&k| match &items[k] {
        Item::Block { .. } => true,
        Item::Op(j) => nodes[*j].op == Op::BatchNorm && !is_act(items.get(k + 1)),
    });
    if let (Some(k), true) = (anchor, head <= out) {
        if let Some(Item::Op(j)) = items.get(k + 1) {
            head = *j;
            items.truncate(k + 1);
        }
    }
    let item_hw = |it: &Item| -> ([u32; 2], [u32; 2]) {
        let (first, last) = match it {
            Item::Op(i) => (*i, *i),
            Item::Block { first, last } => (*first, *last),
        };
        let input = nodes[first].inputs.iter().copied().min().unwrap_or(0);
        (nodes[input].hw, nodes[last].hw)
    };

    // Blocks: each instance's body, grouped by structure.
    let mut bodies: Vec<Option<Body>> = Vec::new();
    for it in &items {
        bodies.push(match it {
            Item::Block { first, last } => Some(body(graph, &outs, &consumers, *first, *last)),
            Item::Op(_) => None,
        });
    }
    let mut kinds: Vec<String> = Vec::new();
    let mut kind_of: Vec<Option<usize>> = Vec::new();
    for b in &bodies {
        kind_of.push(b.as_ref().map(|b| {
            let sig = b.signature();
            kinds.iter().position(|k| *k == sig).unwrap_or_else(|| {
                kinds.push(sig);
                kinds.len() - 1
            })
        }));
    }
    let mut defs = String::new();
    let mut call_text: Vec<Option<String>> = vec![None; items.len()];
    for k in 0..kinds.len() {
        let members: Vec<usize> = (0..items.len()).filter(|&i| kind_of[i] == Some(k)).collect();
        let block_name = block_name(k);
        let (def, calls) =
            block(&block_name, members.iter().map(|&i| bodies[i].as_ref().expect("a block item")).collect());
        defs.push('\n');
        defs.push_str(&def);
        for (&i, c) in members.iter().zip(calls) {
            call_text[i] = Some(c);
        }
    }
    let text_of = |i: usize| -> String {
        match &items[i] {
            Item::Op(j) => literal(&call(&nodes[*j].op, outs[*j].clone())),
            Item::Block { .. } => call_text[i].clone().unwrap_or_default(),
        }
    };

    // Stage boundaries: where the resolution drops (a block's start, or the start of the
    // run of inline ops it drops in, after the run's last BN that no activation follows).
    let mut bounds: Vec<usize> = Vec::new();
    let mut anchor = 0;
    let mut stem_end = None;
    for (i, it) in items.iter().enumerate() {
        let (hw_in, hw_out) = item_hw(it);
        let drops = hw_out[0] < hw_in[0] || hw_out[1] < hw_in[1];
        if let Item::Block { .. } = it {
            if stem_end.is_none() {
                stem_end = Some(bounds.iter().copied().find(|&b| b > 0).unwrap_or(i));
            }
        }
        if drops {
            let b = if matches!(it, Item::Block { .. }) { i } else { anchor };
            if bounds.last() != Some(&b) {
                bounds.push(b);
            }
        }
        anchor = match it {
            Item::Block { .. } => i + 1,
            Item::Op(j) => {
                let next_is_act = matches!(items.get(i + 1), Some(Item::Op(k)) if matches!(nodes[*k].op, Op::Act(_)));
                match nodes[*j].op {
                    Op::BatchNorm if !next_is_act => i + 1,
                    Op::MaxPool { .. } | Op::AvgPool { .. } => i + 1,
                    _ => anchor,
                }
            }
        };
    }
    let stem_end = stem_end.unwrap_or_else(|| bounds.iter().copied().find(|&b| b > 0).unwrap_or(items.len()));
    let mut sections: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
    if stem_end > 0 {
        sections.push(("stem", 0..stem_end));
    }
    let mut starts: Vec<usize> = vec![stem_end];
    starts.extend(bounds.iter().copied().filter(|&b| b > stem_end));
    starts.push(items.len());
    for w in starts.windows(2) {
        if w[1] > w[0] {
            sections.push(("stage", w[0]..w[1]));
        }
    }

    // The network.
    let input = &nodes[0];
    let classes = nodes[out].channels;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Imported by `slimc import` from {} ({} ops; weights under these layer names).",
        path.file_name().map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into_owned()),
        n - 1
    );
    let square = input.hw[0] == input.hw[1];
    let (params, shape) = if square {
        (
            format!("classes = {classes}, in_channels = {}, size = {}", input.channels, input.hw[0]),
            "in_channels x size x size".to_string(),
        )
    } else {
        (
            format!(
                "classes = {classes}, in_channels = {}, height = {}, width = {}",
                input.channels, input.hw[0], input.hw[1]
            ),
            "in_channels x height x width".to_string(),
        )
    };
    let _ = writeln!(s, "network {name}({params}) {{");
    let _ = writeln!(s, "    input {shape}");
    let _ = writeln!(s, "    rounding floor");
    for (name, c) in &widths {
        let _ = writeln!(s, "    width {name} = {c}");
    }
    for (section, range) in sections {
        let mut parts: Vec<String> = Vec::new();
        let mut i = range.start;
        while i < range.end {
            let t = text_of(i);
            let mut j = i + 1;
            while j < range.end
                && matches!(items[j], Item::Block { .. })
                && matches!(items[i], Item::Block { .. })
                && text_of(j) == t
            {
                j += 1;
            }
            parts.push(if j - i > 1 { format!("{t} * {}", j - i) } else { t });
            i = j;
        }
        let _ = writeln!(s, "{}", wrap(&format!("    {section:<5} = "), &parts));
    }
    if head <= out {
        let parts: Vec<String> = (head..=out)
            .map(|j| {
                let c = if j == out { "classes".to_string() } else { outs[j].clone() };
                literal(&call(&nodes[j].op, c))
            })
            .collect();
        let _ = writeln!(s, "{}", wrap("    head  = ", &parts));
    }
    s.push_str("}\n");
    s.push_str(&defs);
    s
}

/// `parts` joined by ` -> ` after `lead`, broken before an arrow past 100 columns.
fn wrap(lead: &str, parts: &[String]) -> String {
    let mut out = lead.to_string();
    let mut col = out.len();
    let indent = " ".repeat(lead.len() - 2);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            if col + p.len() + 4 > 100 {
                out.push('\n');
                out.push_str(&indent);
                col = indent.len();
            } else {
                out.push(' ');
                col += 1;
            }
            out.push_str("-> ");
            col += 3;
        }
        out.push_str(p);
        col += p.len();
    }
    out
}

fn block_name(k: usize) -> String {
    let mut suffix = String::new();
    let mut k = k;
    loop {
        suffix.insert(0, (b'a' + (k % 26) as u8) as char);
        if k < 26 {
            break;
        }
        k = k / 26 - 1;
    }
    format!("block_{suffix}")
}

/// The body of the segment `first..=last` (its input the node before `first`).
fn body(graph: &Graph, outs: &[String], consumers: &[Vec<usize>], first: usize, last: usize) -> Body {
    let nodes = &graph.nodes;
    let inside = |j: usize| (first..=last).contains(&j);
    let multi = |j: usize| matches!(nodes[j].op, Op::Add | Op::Mul | Op::Concat);
    let bound: Vec<bool> = (0..nodes.len())
        .map(|j| inside(j) && (j == last || consumers[j].len() != 1 || consumers[j].iter().any(|&c| multi(c))))
        .collect();
    // Depth of each node within the segment (ops from `in`), to tell main from skip.
    let mut depth = vec![0usize; nodes.len()];
    for j in first..=last {
        depth[j] = 1 + nodes[j].inputs.iter().filter(|&&i| inside(i)).map(|&i| depth[i]).max().unwrap_or(0);
    }
    let mut names: HashMap<usize, String> = HashMap::new();
    let mut used: Vec<String> = vec!["out".into(), "in".into()];
    names.insert(last, "out".into());
    let mut take = |j: usize, base: &str, names: &mut HashMap<usize, String>| {
        if names.contains_key(&j) || !inside(j) {
            return;
        }
        let mut name = base.to_string();
        let mut k = 2;
        while used.contains(&name) {
            name = format!("{base}{k}");
            k += 1;
        }
        used.push(name.clone());
        names.insert(j, name);
    };
    for j in first..=last {
        let ins = &nodes[j].inputs;
        match nodes[j].op {
            Op::Add if ins.len() == 2 => {
                let (a, b) = (ins[0], ins[1]);
                let (main, skip) = if depth[a] >= depth[b] { (a, b) } else { (b, a) };
                take(main, "main", &mut names);
                take(skip, "skip", &mut names);
            }
            Op::Mul => {
                for &i in ins {
                    let base = if nodes[i].hw == [1, 1] && nodes[j].hw != [1, 1] { "gate" } else { "x" };
                    take(i, base, &mut names);
                }
            }
            Op::Concat | Op::Add => {
                for &i in ins {
                    take(i, "branch", &mut names);
                }
            }
            _ => {}
        }
    }
    for j in (first..=last).filter(|&j| bound[j]) {
        take(j, "x", &mut names);
    }
    let input = first - 1;
    let mut calls: Vec<Call> = Vec::new();
    let mut text = String::new();
    let reference = |i: usize| if i == input { "in".to_string() } else { names.get(&i).cloned().unwrap_or_default() };
    // The right-hand side of bound node `j`: its chain of unbound single-input ops (a loop,
    // not recursion: a chain may be long), on `in`, a bound name or a multi-input op, whose
    // operands are always bound or `in`.
    let rhs = |j: usize, calls: &mut Vec<Call>| -> String {
        let mut chain = Vec::new();
        let mut k = j;
        while k != input && (k == j || !bound[k]) && !multi(k) {
            chain.push(k);
            k = nodes[k].inputs[0];
        }
        let (mut text, mut brackets) = if k == input || (k != j && bound[k]) {
            (reference(k), false)
        } else {
            let ops: Vec<String> = nodes[k].inputs.iter().map(|&i| reference(i)).collect();
            match nodes[k].op {
                Op::Add => (ops.join(" + "), true),
                Op::Mul => (ops.join(" * "), true),
                _ => (format!("concat({})", ops.join(", ")), false),
            }
        };
        for &n in chain.iter().rev() {
            let c = call(&nodes[n].op, outs[n].clone());
            // `relu(main + skip)` rather than `(main + skip) -> relu`.
            if brackets && c.slots.is_empty() {
                text = format!("{}({text})", c.name);
            } else {
                if brackets {
                    text = format!("({text})");
                }
                calls.push(c);
                text = format!("{text} -> \u{1}{}\u{2}", calls.len() - 1);
            }
            brackets = false;
        }
        text
    };
    let width = (first..=last).filter(|&j| bound[j]).map(|j| names[&j].len()).max().unwrap_or(3).max(3);
    for j in first..=last {
        if bound[j] {
            let e = rhs(j, &mut calls);
            let _ = writeln!(text, "    {:<width$} = {e}", names[&j]);
        }
    }
    Body { text, calls }
}

/// The definition of block `name` from its instances' bodies (one structure), and each
/// instance's call.
fn block(name: &str, bodies: Vec<&Body>) -> (String, Vec<String>) {
    let first = bodies[0];
    // Every slot of every call, in order: (call, slot) → its value in each instance.
    let mut slots: Vec<(usize, usize)> = Vec::new();
    for (ci, c) in first.calls.iter().enumerate() {
        for si in 0..c.slots.len() {
            slots.push((ci, si));
        }
    }
    let values = |&(ci, si): &(usize, usize)| -> Vec<String> {
        bodies.iter().map(|b| b.calls[ci].slots[si].value.clone()).collect()
    };
    // Parameters: slots that differ between instances; equal value rows of one kind share one.
    let mut params: Vec<(String, &'static str, Vec<String>)> = Vec::new();
    let mut param_of: HashMap<(usize, usize), String> = HashMap::new();
    for s in &slots {
        let v = values(s);
        if v.iter().all(|x| *x == v[0]) {
            continue;
        }
        let kind = first.calls[s.0].slots[s.1].kind;
        let p = params.iter().position(|(_, k, pv)| *k == kind && *pv == v).unwrap_or_else(|| {
            let count = params.iter().filter(|(_, k, _)| *k == kind).count();
            let pname = if count == 0 { kind.to_string() } else { format!("{kind}{}", count + 1) };
            params.push((pname, kind, v));
            params.len() - 1
        });
        param_of.insert(*s, params[p].0.clone());
    }
    // Out-channel counts by position, the rest with their most common value as default.
    params.sort_by_key(|(_, k, _)| *k != "c");
    let defaults: Vec<Option<String>> = params
        .iter()
        .map(|(_, k, v)| {
            (*k != "c").then(|| {
                let mut counts: Vec<(&String, usize)> = Vec::new();
                for x in v {
                    match counts.iter_mut().find(|(y, _)| *y == x) {
                        Some(e) => e.1 += 1,
                        None => counts.push((x, 1)),
                    }
                }
                counts.iter().max_by_key(|(_, n)| *n).map(|(x, _)| (*x).clone()).unwrap_or_default()
            })
        })
        .collect();
    let mut text = first.text.clone();
    for (ci, c) in first.calls.iter().enumerate().rev() {
        let all_default = |si: usize| bodies.iter().all(|b| b.calls[ci].slots[si].default);
        let r = render(c, |si, s| match param_of.get(&(ci, si)) {
            Some(name) => Some(name.clone()),
            None if all_default(si) => None,
            None => Some(s.value.clone()),
        });
        text = text.replace(&format!("\u{1}{ci}\u{2}"), &r);
    }
    let header: Vec<String> = params
        .iter()
        .zip(&defaults)
        .map(|((n, _, _), d)| match d {
            Some(d) => format!("{n} = {d}"),
            None => n.clone(),
        })
        .collect();
    let def = format!("block {name}({}) {{\n{text}}}\n", header.join(", "));
    let calls = (0..bodies.len())
        .map(|b| {
            let args: Vec<String> = params
                .iter()
                .zip(&defaults)
                .filter_map(|((n, _, v), d)| match d {
                    None => Some(v[b].clone()),
                    Some(d) if *d == v[b] => None,
                    Some(_) => Some(format!("{n}={}", v[b])),
                })
                .collect();
            if args.is_empty() {
                name.to_string()
            } else {
                format!("{name}({})", args.join(", "))
            }
        })
        .collect();
    (def, calls)
}

/// Each node's out-channel argument: its count, or the name of a width the graph ties it
/// to; and those names with their counts, to declare (`width NAME = C`). A channel shuffle
/// of concatenated branches (ShuffleNet) ties the convs that end the branches into one
/// width, and a split of that shuffle's output carries the width on, to the next unit's
/// branch: as `models/shufflenet_v2.slim` is written by hand.
fn tied_widths(graph: &Graph) -> (Vec<String>, Vec<(String, u32)>) {
    #[derive(Clone)]
    enum Class {
        None,
        /// The width of this producer (a conv, linear or zero-pad).
        Own(usize),
        Concat(Vec<Class>),
    }
    let nodes = &graph.nodes;
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut class: Vec<Class> = Vec::with_capacity(nodes.len());
    let mut tied = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let input = |k: usize| n.inputs.get(k).map_or(Class::None, |&j| class[j].clone());
        let c = match &n.op {
            Op::Conv { groups: Groups::Depthwise, .. } => input(0),
            Op::Conv { .. } | Op::ConvTranspose { .. } | Op::Linear { .. } | Op::ZeroPad => Class::Own(i),
            Op::Input => Class::None,
            // One level: a concatenation of concatenations ties nothing.
            Op::Concat => Class::Concat(
                n.inputs
                    .iter()
                    .map(|&j| match class[j] {
                        Class::Own(p) => Class::Own(p),
                        Class::None | Class::Concat(_) => Class::None,
                    })
                    .collect(),
            ),
            Op::Split { part, parts } => match input(0) {
                Class::Concat(v) if v.len() == *parts as usize => {
                    let roots: Vec<Option<usize>> = v
                        .iter()
                        .map(|c| match c {
                            Class::Own(p) => Some(find(&mut parent, *p)),
                            _ => None,
                        })
                        .collect();
                    if roots.iter().all(|r| r.is_some() && *r == roots[0]) {
                        v[*part as usize].clone()
                    } else {
                        Class::None
                    }
                }
                _ => Class::None,
            },
            // Fixed channels: a slice ties nothing.
            Op::Slice { .. } => Class::None,
            Op::Shuffle { .. } => {
                let c = input(0);
                if let Class::Concat(v) = &c {
                    let own: Vec<usize> = v
                        .iter()
                        .filter_map(|c| match c {
                            Class::Own(p) => Some(*p),
                            _ => None,
                        })
                        .collect();
                    if own.len() == v.len() {
                        for &p in &own {
                            tied[p] = true;
                            let (a, b) = (find(&mut parent, own[0]), find(&mut parent, p));
                            parent[b] = a;
                        }
                    }
                }
                c
            }
            Op::BatchNorm
            | Op::Act(_)
            | Op::MaxPool { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::AdaptiveAvgPool { .. }
            | Op::Flatten
            | Op::LayerNorm { .. }
            | Op::LayerScale { .. }
            | Op::Upsample { .. }
            | Op::Attend { .. }
            | Op::Tokens
            | Op::ClassToken
            | Op::PosEmbed { .. }
            | Op::Token { .. }
            | Op::Dropout { .. }
            | Op::DropPath { .. }
            | Op::Add
            | Op::Mul
            | Op::Subsample { .. } => input(0),
        };
        class.push(c);
    }
    let mut names: HashMap<usize, String> = HashMap::new();
    let mut widths = Vec::new();
    // The producers of a map a slice reads are written `fixed(C)`: the slice pins them,
    // and the file says so where the width is declared.
    let mut pinned = vec![false; nodes.len()];
    for n in nodes {
        let (Op::Slice { .. }, Some(&j)) = (&n.op, n.inputs.first()) else { continue };
        let producers = match &class[j] {
            Class::Concat(v) => v.as_slice(),
            c => std::slice::from_ref(c),
        };
        for c in producers {
            if let Class::Own(p) = c {
                pinned[*p] = true;
            }
        }
    }
    let mut outs = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if !tied[i] {
            outs.push(if pinned[i] { format!("fixed({})", n.channels) } else { n.channels.to_string() });
            continue;
        }
        let root = find(&mut parent, i);
        let name = names
            .entry(root)
            .or_insert_with(|| {
                let name = format!("w{}", widths.len() + 1);
                widths.push((name.clone(), n.channels));
                name
            })
            .clone();
        outs.push(name);
    }
    (outs, widths)
}
