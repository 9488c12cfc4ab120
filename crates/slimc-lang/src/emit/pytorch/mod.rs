//! `slimc emit --target pytorch`: one self-contained Python module (PyTorch only) for a
//! network. Every block kind becomes a class (instances whose code differs become numbered
//! variants, as in the Burn emit); the network class holds full-width parameters under
//! slimc's layer names, so that `state_dict()` keys are `slimc space`'s and a
//! `slimc export --format safetensors` file loads with `load_state_dict`. It runs at any
//! width through the two interfaces the seeds' training code uses: Joslim's `DynModel`
//! (`search_dim`, `channel_space`, `decode_wm`, `decode_ch`, `set_real_ch`, written out
//! from the IR's search space and width expressions) and the S-/US-Nets `width_mult`
//! attribute. The fixed parts are in `parts.rs`.

mod layout;
mod parts;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use super::tree::{Item, Local, Tree};
use super::{network_name, variant_name, EmitError};
use crate::ir::{Activation, Groups, Heads, Interp, Network, Op, Resize, Rounding, SpaceEntry, Width};
use layout::{atom, call, Py};
use parts::Part;

/// The Python source of `net` (compiled from `source_path`). `switches`: the widths of
/// S-Nets' switchable BN (one set of BN parameters and statistics per width, as an
/// `--scheme s` run trains them); empty for one shared BN.
pub fn emit(net: &Network, source_path: &str, switches: &[f64]) -> Result<String, EmitError> {
    let dims_sorted = net.space.dims.windows(2).all(|w| w[0].section <= w[1].section);
    if !dims_sorted {
        return Err(EmitError::Unparsable("search dimensions are not in channel_space order".into()));
    }
    let mut e = Emitter::new(net, switches);
    e.file(source_path)
}

/// Python's keywords and the names the emitted code itself uses, which a variable must not take.
const RESERVED: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "x", "self", "c", "F", "torch", "nn",
    "math",
];

/// The names in [`RESERVED`] only because the generated code uses them as local names or
/// imports: they can still be keyword arguments (`Scope(x=...)`).
const LOCALS: &[&str] = &["x", "c", "F", "torch", "nn", "math"];

/// Attributes of `nn.Module` and of the generated classes: a submodule with one of these
/// names is reached as `self["name"]`, not `self.name`.
const MODULE_ATTRS: &[&str] = &[
    "T_destination",
    "add_module",
    "apply",
    "bfloat16",
    "buffers",
    "call_super_init",
    "channel_space",
    "children",
    "compile",
    "cpu",
    "cuda",
    "decode_ch",
    "decode_wm",
    "double",
    "dump_patches",
    "eval",
    "extra_repr",
    "float",
    "forward",
    "get_buffer",
    "get_extra_state",
    "get_parameter",
    "get_submodule",
    "half",
    "ipu",
    "load_state_dict",
    "load_subnet",
    "modules",
    "mtia",
    "named_buffers",
    "named_children",
    "named_modules",
    "named_parameters",
    "parameters",
    "register_backward_hook",
    "register_buffer",
    "register_forward_hook",
    "register_forward_pre_hook",
    "register_full_backward_hook",
    "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook",
    "register_module",
    "register_parameter",
    "register_state_dict_post_hook",
    "register_state_dict_pre_hook",
    "requires_grad_",
    "search_dim",
    "set_extra_state",
    "set_real_ch",
    "set_submodule",
    "set_width_mult",
    "share_memory",
    "slim_layers",
    "state_dict",
    "to",
    "to_empty",
    "train",
    "training",
    "type",
    "width_mult",
    "xpu",
    "zero_grad",
];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A local variable from a name relative to a scope: `main.conv1` → `main_conv1`.
fn var(name: &str) -> String {
    let v = name.replace(['.', '-'], "_");
    let v = if v.starts_with(|c: char| c.is_ascii_digit() || c == '_') { format!("l{v}") } else { v };
    if RESERVED.contains(&v.as_str()) || !is_identifier(&v) {
        format!("{v}_")
    } else {
        v
    }
}

/// One step of a submodule path: `.conv1`, `[0]`, or `["type"]`.
fn step(component: &str) -> String {
    if !component.is_empty() && component.chars().all(|c| c.is_ascii_digit()) {
        format!("[{component}]")
    } else if is_identifier(component)
        && !component.starts_with('_')
        && !RESERVED.contains(&component)
        && !MODULE_ATTRS.contains(&component)
    {
        format!(".{component}")
    } else {
        format!("[{component:?}]")
    }
}

/// `self.main.conv1` for the name `main.conv1`.
fn access(name: &str) -> String {
    std::iter::once("self".to_string()).chain(name.split('.').map(step)).collect()
}

/// A Python float literal that reads back as the same f64.
fn float(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'n', 'i']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// An int or a `(a, b)` pair, for a kernel, stride or padding.
fn pair(a: [u32; 2]) -> String {
    if a[0] == a[1] {
        a[0].to_string()
    } else {
        format!("({}, {})", a[0], a[1])
    }
}

/// A tree of submodule constructors under their relative names.
#[derive(Default)]
struct Node {
    /// Children by name component, in insertion order.
    children: Vec<(String, Node)>,
    /// The constructor of a leaf.
    leaf: Option<Py>,
}

impl Node {
    fn insert(&mut self, path: &[&str], ctor: Py) {
        match path.split_first() {
            None => self.leaf = Some(ctor),
            Some((first, rest)) => {
                let i = match self.children.iter().position(|(n, _)| n == first) {
                    Some(i) => i,
                    None => {
                        self.children.push((first.to_string(), Node::default()));
                        self.children.len() - 1
                    }
                };
                self.children[i].1.insert(rest, ctor);
            }
        }
    }

    /// The arguments of a `Scope(...)` (or `super().__init__(...)`) holding the children,
    /// one per line at `indent`: positional when they are named 0, 1, …, else keywords.
    fn args(&self, indent: usize) -> String {
        let positional = self.children.iter().enumerate().all(|(i, (n, _))| *n == i.to_string());
        let pad = " ".repeat(indent);
        let mut out = String::new();
        for (name, node) in &self.children {
            let (prefix, suffix) = if positional {
                (String::new(), ",")
            } else if is_identifier(name) && (!RESERVED.contains(&name.as_str()) || LOCALS.contains(&name.as_str())) {
                (format!("{name}="), ",")
            } else {
                (format!("**{{{name:?}: "), "},")
            };
            match &node.leaf {
                Some(ctor) => out += &ctor.lines(indent, &prefix, suffix),
                None => {
                    let _ = write!(out, "{pad}{prefix}Scope(\n{}{pad}){suffix}\n", node.args(indent + 4));
                }
            }
        }
        out
    }
}

struct Emitter<'n> {
    net: &'n Network,
    tree: Tree<'n>,
    switches: &'n [f64],
    parts: BTreeSet<Part>,
    /// Class definitions by their code, so that equal instances share one.
    variants: HashMap<String, String>,
    classes: Vec<String>,
    taken: BTreeSet<String>,
    /// The dimensions' channels at full width (the network's own counts).
    full: Vec<u32>,
}

/// A block instance's class and the full-width channel counts it is built with.
struct Instance {
    class: String,
    /// The counts the class reads as `c[0]`, `c[1]`, …, as width expressions.
    slots: Vec<Width>,
}

impl<'n> Emitter<'n> {
    fn new(net: &'n Network, switches: &'n [f64]) -> Emitter<'n> {
        let taken = [
            "Scope",
            "SlimConv2d",
            "SlimConvTranspose2d",
            "SlimLinear",
            "SlimBatchNorm2d",
            "SlimLayerNorm2d",
            "SlimLayerScale",
            "SlimClassToken",
            "SlimPosEmbed",
            "SlimWindowAttention",
            "ZeroPad",
            "Slim",
        ]
        .map(String::from)
        .into();
        Emitter {
            net,
            tree: Tree::new(net),
            switches,
            parts: BTreeSet::new(),
            variants: HashMap::new(),
            classes: Vec::new(),
            taken,
            full: net.full_width(),
        }
    }

    /// The width of what layer `i` reads (the network's input channels for the first layer).
    fn in_width(&self, i: usize) -> Width {
        let l = self.tree.layer(i);
        match l.inputs.first() {
            Some(j) if self.net.layers[*j].op != Op::Input => self.net.layers[*j].width.clone(),
            _ => Width::Fixed(self.net.input[0]),
        }
    }

    /// A channel count in a scope's constructor: a number in the network, `c[k]` in a block
    /// (a new slot in `slots` when no earlier count had the same width expression).
    fn count(&self, scope: usize, w: &Width, slots: &mut Vec<Width>) -> String {
        if scope == 0 {
            return w.eval(&self.full).to_string();
        }
        let k = slots.iter().position(|s| s == w).unwrap_or_else(|| {
            slots.push(w.clone());
            slots.len() - 1
        });
        format!("c[{k}]")
    }

    /// The constructor of layer `i`'s module, if it has one.
    #[deny(clippy::wildcard_enum_match_arm)]
    fn module(&mut self, scope: usize, i: usize, slots: &mut Vec<Width>) -> Option<Py> {
        let l = self.tree.layer(i);
        let in_w = self.in_width(i);
        let ctor = match &l.op {
            Op::Conv { kernel, stride, padding, dilation, groups, bias } => {
                self.parts.insert(Part::Conv);
                let (i_c, o_c) = (self.count(scope, &in_w, slots), self.count(scope, &l.width, slots));
                let mut args = vec![i_c, o_c, pair(*kernel)];
                if *stride != [1, 1] {
                    args.push(format!("stride={}", pair(*stride)));
                }
                if *padding != [0, 0] {
                    args.push(format!("padding={}", pair(*padding)));
                }
                if *dilation != [1, 1] {
                    args.push(format!("dilation={}", pair(*dilation)));
                }
                match groups {
                    Groups::Count(1) => {}
                    Groups::Count(n) => args.push(format!("groups={n}")),
                    Groups::Width(k) => args.push(format!("group_width={k}")),
                    Groups::Depthwise => args.push("group_width=1".into()),
                }
                if *bias {
                    args.push("bias=True".into());
                }
                call("SlimConv2d", args.into_iter().map(atom).collect())
            }
            Op::ConvTranspose { kernel, stride, padding, output_padding, bias } => {
                self.parts.insert(Part::ConvTranspose);
                let (i_c, o_c) = (self.count(scope, &in_w, slots), self.count(scope, &l.width, slots));
                let args = [
                    i_c,
                    o_c,
                    pair(*kernel),
                    format!("stride={}", pair(*stride)),
                    format!("padding={}", pair(*padding)),
                    format!("output_padding={}", pair(*output_padding)),
                    format!("bias={}", if *bias { "True" } else { "False" }),
                ];
                call("SlimConvTranspose2d", args.into_iter().map(atom).collect())
            }
            Op::Linear { bias } => {
                self.parts.insert(Part::Linear);
                let (i_c, o_c) = (self.count(scope, &in_w, slots), self.count(scope, &l.width, slots));
                let mut args = vec![atom(i_c), atom(o_c)];
                if !*bias {
                    args.push(atom("bias=False"));
                }
                call("SlimLinear", args)
            }
            Op::BatchNorm => {
                self.parts.insert(Part::BatchNorm);
                let mut args = vec![atom(self.count(scope, &l.width, slots))];
                if self.switches.len() > 1 {
                    args.push(atom(format!("switches={}", self.switches.len())));
                }
                call("SlimBatchNorm2d", args)
            }
            Op::LayerNorm { eps } => {
                self.parts.insert(Part::LayerNorm);
                let c = self.count(scope, &l.width, slots);
                call("SlimLayerNorm2d", vec![atom(c), atom(format!("eps={}", float(*eps)))])
            }
            Op::LayerScale { init } => {
                self.parts.insert(Part::LayerScale);
                let c = self.count(scope, &l.width, slots);
                call("SlimLayerScale", vec![atom(c), atom(format!("init={}", float(*init)))])
            }
            Op::ClassToken => {
                self.parts.insert(Part::ClassToken);
                call("SlimClassToken", vec![atom(self.count(scope, &l.width, slots))])
            }
            Op::PosEmbed { positions } => {
                self.parts.insert(Part::PosEmbed);
                call("SlimPosEmbed", vec![atom(self.count(scope, &l.width, slots)), atom(positions.to_string())])
            }
            Op::Attend { heads, share, window: Some(win) } => {
                self.parts.insert(Part::Attend);
                self.parts.insert(Part::WindowAttention);
                let c = self.count(scope, &l.width, slots);
                let (rows, split, by_count) = match heads {
                    Heads::Width(d) => (format!("{c} // {d}"), d, "False"),
                    Heads::Count(n) => (n.to_string(), n, "True"),
                };
                let args = [c, rows, win.size.to_string(), win.shift.to_string(), split.to_string()];
                let mut args: Vec<Py> = args.into_iter().map(atom).collect();
                args.extend([atom(format!("by_count={by_count}")), atom(format!("share={share}"))]);
                call("SlimWindowAttention", args)
            }
            Op::ZeroPad => {
                self.parts.insert(Part::ZeroPad);
                let (i_c, o_c) = (self.count(scope, &in_w, slots), self.count(scope, &l.width, slots));
                call("ZeroPad", vec![atom(i_c), atom(o_c)])
            }
            // Every op without a module, listed so that a new op must be named here.
            Op::Input
            | Op::Act(_)
            | Op::MaxPool { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::AdaptiveAvgPool { .. }
            | Op::Flatten
            | Op::Upsample { .. }
            | Op::Attend { window: None, .. }
            | Op::Tokens
            | Op::Token { .. }
            | Op::Dropout { .. }
            | Op::DropPath { .. }
            | Op::Add
            | Op::Mul
            | Op::Concat
            | Op::Split { .. }
            | Op::Slice { .. }
            | Op::Shuffle { .. }
            | Op::Subsample { .. } => return None,
        };
        Some(ctor)
    }

    /// The expression of layer `i` on its inputs `args` (`module`: the access path of its
    /// module, for layers that have one).
    fn layer_expr(&mut self, i: usize, args: &[String], module: &str) -> Py {
        let l = self.tree.layer(i);
        let x = args.first().cloned().unwrap_or_default();
        let f =
            |callee: &str, rest: Vec<String>| call(callee, std::iter::once(x.clone()).chain(rest).map(atom).collect());
        match &l.op {
            Op::Input => atom(x),
            Op::Conv { .. }
            | Op::ConvTranspose { .. }
            | Op::Linear { .. }
            | Op::BatchNorm
            | Op::LayerNorm { .. }
            | Op::LayerScale { .. }
            | Op::ClassToken
            | Op::PosEmbed { .. }
            | Op::ZeroPad => f(module, vec![]),
            Op::Act(a) => match a {
                Activation::Relu => f("F.relu", vec![]),
                Activation::Relu6 => f("F.relu6", vec![]),
                Activation::Hswish => f("F.hardswish", vec![]),
                Activation::Swish => f("F.silu", vec![]),
                Activation::Sigmoid => f("torch.sigmoid", vec![]),
                Activation::Hsigmoid => f("F.hardsigmoid", vec![]),
                Activation::Gelu => f("F.gelu", vec![]),
            },
            Op::MaxPool { kernel, stride, padding, ceil_mode } => {
                let mut rest = vec![pair(*kernel), pair(*stride), pair(*padding)];
                if *ceil_mode {
                    rest.push("ceil_mode=True".into());
                }
                f("F.max_pool2d", rest)
            }
            Op::AvgPool { kernel, stride, padding, ceil_mode, count_include_pad } => {
                let mut rest = vec![pair(*kernel), pair(*stride), pair(*padding)];
                if *ceil_mode {
                    rest.push("ceil_mode=True".into());
                }
                if !*count_include_pad {
                    rest.push("count_include_pad=False".into());
                }
                f("F.avg_pool2d", rest)
            }
            Op::GlobalAvgPool => call(format!("{x}.mean"), vec![atom("(2, 3)"), atom("keepdim=True")]),
            Op::AdaptiveAvgPool { out } => f("F.adaptive_avg_pool2d", vec![format!("({}, {})", out[0], out[1])]),
            Op::Flatten => atom(format!("{x}.flatten(1)[:, :, None, None]")),
            Op::Upsample { to, mode } => {
                let mut rest = vec![match to {
                    Resize::Scale(s) => format!("scale_factor={s}"),
                    Resize::Size([h, w]) => format!("size=({h}, {w})"),
                    Resize::Like => format!("size={}.shape[-2:]", args.get(1).map_or("", String::as_str)),
                }];
                match mode {
                    Interp::Nearest => rest.push("mode=\"nearest\"".into()),
                    Interp::Bilinear => {
                        rest.push("mode=\"bilinear\"".into());
                        rest.push("align_corners=False".into());
                    }
                }
                f("F.interpolate", rest)
            }
            Op::Dropout { p } => f("F.dropout", vec![float(*p), "self.training".into()]),
            Op::Tokens => atom(format!("{x}.flatten(2)[:, :, None, :]")),
            Op::Token { index } => atom(format!("{x}.flatten(2)[:, :, {index}, None, None]")),
            Op::Attend { window: Some(_), .. } => f(module, args.iter().skip(1).cloned().collect()),
            Op::Attend { heads, share, window: None } => {
                self.parts.insert(Part::Attend);
                let mut rest: Vec<String> = args.iter().skip(1).cloned().collect();
                match heads {
                    Heads::Width(d) => rest.push(d.to_string()),
                    Heads::Count(n) => rest.extend([n.to_string(), "by_count=True".into()]),
                }
                if *share > 1 {
                    rest.push(format!("share={share}"));
                }
                f("_attend", rest)
            }
            Op::DropPath { p } => {
                self.parts.insert(Part::DropPath);
                f("_drop_path", vec![float(*p), "self.training".into()])
            }
            Op::Add => atom(args.join(" + ")),
            Op::Mul => atom(args.join(" * ")),
            Op::Concat => call("torch.cat", vec![Py::List(args.iter().map(atom).collect()), atom("1")]),
            Op::Split { part, parts } => {
                self.parts.insert(Part::Split);
                f("_split", vec![part.to_string(), parts.to_string()])
            }
            Op::Slice { start, end } => atom(format!("{x}[:, {start}:{end}]")),
            Op::Shuffle { groups } => {
                self.parts.insert(Part::Shuffle);
                f("_shuffle", vec![groups.to_string()])
            }
            Op::Subsample { stride, offset: [0, 0] } => atom(format!("{x}[:, :, ::{stride}, ::{stride}]")),
            Op::Subsample { stride, offset: [oy, ox] } => atom(format!("{x}[:, :, {oy}::{stride}, {ox}::{stride}]")),
        }
    }

    /// The Python variable of layer `layer`'s output in `scope`.
    fn local(&self, scope: usize, layer: usize) -> Result<String, EmitError> {
        Ok(match self.tree.local(scope, layer)? {
            Local::Input => "x".into(),
            Local::Name(name) => var(name),
        })
    }

    /// A scope's forward body (indented for a method), its submodules, and the full-width
    /// counts its constructor reads (`c`, in a block).
    fn body(&mut self, scope: usize) -> Result<(String, Node, Vec<Width>), EmitError> {
        let items = self.tree.items(scope);
        let mut modules = Node::default();
        let mut slots = Vec::new();
        let mut lines = String::new();
        let mut declared = BTreeSet::new();
        for item in &items {
            if let Item::Layer(i) = item {
                if self.tree.passes_on(*i) {
                    continue;
                }
            }
            let args: Vec<String> = self
                .tree
                .inputs(item)
                .into_iter()
                .map(|j| self.local(scope, self.tree.source(j)))
                .collect::<Result<_, _>>()?;
            let (name, expr) = match item {
                Item::Child(c) => {
                    let name = self.tree.suffix(scope, &self.net.blocks[*c - 1].name);
                    let inst = self.instance(*c - 1)?;
                    let counts = inst.slots.iter().map(|w| atom(self.count(scope, w, &mut slots))).collect();
                    modules.insert(&name.split('.').collect::<Vec<_>>(), call(inst.class, vec![Py::List(counts)]));
                    (name, call(access(name), vec![atom(args[0].clone())]))
                }
                Item::Layer(i) => {
                    let name = self.tree.suffix(scope, &self.tree.layer(*i).name);
                    if let Some(ctor) = self.module(scope, *i, &mut slots) {
                        modules.insert(&name.split('.').collect::<Vec<_>>(), ctor);
                    }
                    (name, self.layer_expr(*i, &args, &access(name)))
                }
            };
            let v = var(name);
            if !declared.insert(v.clone()) {
                let scope = if scope == 0 { &self.net.name } else { &self.tree.scopes[scope].prefix };
                return Err(EmitError::Clash { scope: scope.clone(), ident: v });
            }
            lines += &expr.lines(8, &format!("{v} = "), "");
        }
        let ret = self.local(scope, self.tree.source(self.tree.scopes[scope].output))?;
        if scope != 0 {
            let _ = writeln!(lines, "        return {ret}");
        } else {
            let [h, w] = self.net.layers[self.net.output].hw;
            let out = if h * w == 1 { format!("{ret}.flatten(1)") } else { ret };
            let _ = writeln!(lines, "        return {out}");
        }
        Ok((lines, modules, slots))
    }

    /// Emits block instance `b`'s class, unless an equal instance did, and says how to build it.
    fn instance(&mut self, b: usize) -> Result<Instance, EmitError> {
        let (body, modules, slots) = self.body(b + 1)?;
        let init = if modules.children.is_empty() {
            "        super().__init__()\n".to_string()
        } else {
            format!("        super().__init__(\n{}        )\n", modules.args(12))
        };
        let block = &self.net.blocks[b];
        let c = if slots.is_empty() { "_c" } else { "c" };
        let code = format!("    def __init__(self, {c}):\n{init}\n    def forward(self, x):\n{body}",);
        let signature = format!("{} {code}", block.kind);
        let class = match self.variants.get(&signature) {
            Some(class) => class.clone(),
            None => {
                let name = variant_name(&mut self.taken, &block.kind);
                let doc = format!(
                    "    \"\"\"Block `{}` (first instance `{}`); `c`: its full-width channel counts.\"\"\"\n\n",
                    block.kind, block.name
                );
                self.classes.push(format!("class {name}(Scope):\n{doc}{code}"));
                self.variants.insert(signature, name.clone());
                name
            }
        };
        Ok(Instance { class, slots })
    }

    fn file(&mut self, source_path: &str) -> Result<String, EmitError> {
        let net = self.net;
        let (body, modules, _) = self.body(0)?;
        let class = network_name(&self.taken, &net.name);
        let [c, h, w] = net.input;
        let [oh, ow] = net.layers[net.output].hw;
        let classes_out = net.layers[net.output].channels;
        let output = if oh * ow == 1 {
            format!("`[N, {classes_out}]` logits")
        } else {
            format!("a `[N, {classes_out}, {oh}, {ow}]` map")
        };
        let mut out = String::new();
        let _ = write!(
            out,
            "# Generated by slimc {} from {source_path} (network `{}`). Edit the .slim file\n\
             # and run `slimc emit --target pytorch` again rather than editing this file.\n\
             \"\"\"The slimmable network `{}` as a PyTorch module, `{class}`.\n\n\
             It holds full-width parameters under slimc's layer names (`state_dict()` keys are the\n\
             names `slimc space` lists, so a `slimc export --format safetensors` file loads with\n\
             `load_state_dict`) and runs at any width: set `width_mult` (a uniform multiplier, as\n\
             `model.apply(lambda m: setattr(m, \"width_mult\", w))` does in the S-/US-Nets code), or\n\
             apply one channel count per search dimension with Joslim's `DynModel` interface,\n\
             `model.set_real_ch(model.decode_ch(model.decode_wm(wm)))`. Batch norm keeps one set of\n\
             statistics: calibrate them at the width to be evaluated. Input `[N, {c}, {h}, {w}]`,\n\
             normalised as in training; output {output}.\n\
             \"\"\"\n\n\
             import math\n\n\
             import torch\n\
             import torch.nn.functional as F\n\
             from torch import nn\n\n",
            env!("CARGO_PKG_VERSION"),
            net.name,
            net.name,
        );
        let _ = write!(out, "INPUT = ({c}, {h}, {w})\nCLASSES = {classes_out}\n");
        let switches: Vec<String> = self.switches.iter().map(|w| float(*w)).collect();
        let switches = match switches.len() {
            0 => "()".to_string(),
            1 => format!("({},)", switches[0]),
            _ => format!("({})", switches.join(", ")),
        };
        out += "# The widths of switchable BN (S-Nets): one set of BN parameters and statistics per\n\
                # width, chosen by `width_mult`; empty: one BN for every width.\n";
        out += &atom(switches).lines(0, "SWITCHES = ", "");
        out.push_str(&self.tables());
        out.push_str(&self.functions());
        let parts: Vec<&str> = std::iter::once(Part::Scope).chain(self.parts.iter().copied()).map(Part::code).collect();
        let needs_slim = self.parts.iter().any(|p| p.is_module());
        if needs_slim {
            out.push_str("\n\n");
            out.push_str(Part::Slim.code());
        }
        for p in parts {
            out.push_str("\n\n");
            out.push_str(p);
        }
        for cls in &self.classes {
            out.push_str("\n\n");
            out.push_str(cls);
        }
        out.push_str("\n\n");
        out.push_str(&self.network_class(&class, &modules, &body));
        // `math` is imported for the rounding functions; drop it when none is emitted.
        if !out.contains("math.") {
            out = out.replacen("import math\n\n", "", 1);
        }
        Ok(out)
    }

    /// `DIMS`, `ROUNDING`, `CHANNEL_SPACE` and `LAYERS`.
    fn tables(&self) -> String {
        let net = self.net;
        let mut out = String::new();
        let _ = write!(
            out,
            "# Width multipliers become channel counts with this rounding (`slimc space` shows it).\n\
             ROUNDING = \"{}\"\n\
             # The search dimensions (`slimc space` lists them): full-width channels, the divisor\n\
             # every count is a multiple of, and the stage (0: input and stem, then 1, 2, ...).\n\
             DIMS = (\n",
            net.rounding
        );
        for d in &net.space.dims {
            let _ = writeln!(out, "    ({}, {}, {}),", d.base, d.divisor, d.section.index(net.space.stages));
        }
        out.push_str(")\n# The full-width counts, stem entries then one list per stage (Joslim's `channel_space`).\n");
        out.push_str("CHANNEL_SPACE = [\n");
        for e in net.space.channel_space() {
            let e = match e {
                SpaceEntry::Dim(n) => atom(n.to_string()),
                SpaceEntry::Stage(v) => Py::List(v.iter().map(|n| atom(n.to_string())).collect()),
            };
            out += &e.lines(4, "", ",");
        }
        out.push_str(
            "]\n# Every layer in forward order: its name, op, the index of the layer it reads (-1: the\n\
             # input) and its groups (a count, \"depthwise\", or \"width K\": K channels per group).\n\
             LAYERS = (\n",
        );
        let index: HashMap<usize, usize> =
            net.compute_layers().enumerate().map(|(k, (id, _))| (id.index(), k)).collect();
        for (_, l) in net.compute_layers() {
            let src = l.inputs.first().and_then(|j| index.get(&j.index())).map_or(-1, |&k| k as i64);
            let groups = match l.op {
                Op::Conv { groups: Groups::Count(n), .. } => n.to_string(),
                Op::Conv { groups: Groups::Depthwise, .. } => "\"depthwise\"".into(),
                Op::Conv { groups: Groups::Width(k), .. } => format!("\"width {k}\""),
                _ => "1".into(),
            };
            let entry = [format!("{:?}", l.name), format!("\"{}\"", l.op.kind()), src.to_string(), groups];
            out += &Py::Tuple(entry.into_iter().map(atom).collect()).lines(4, "", ",");
        }
        out.push_str(")\n");
        out
    }

    /// `decode`, `layer_channels` and the helpers they call.
    fn functions(&mut self) -> String {
        let net = self.net;
        let mut rounding = BTreeSet::new();
        let round = |r: Rounding, v: &str, used: &mut BTreeSet<&'static str>| match r {
            Rounding::Floor => {
                used.insert(FLOOR);
                format!("_floor({v})")
            }
            Rounding::Nearest => format!("round({v})"),
            Rounding::MakeDivisible(d) => {
                used.insert(MAKE_DIVISIBLE);
                format!("_make_divisible({v}, {d})")
            }
        };
        let first = round(net.rounding, "base * w", &mut rounding);
        let mut bounds = String::new();
        for (i, d) in net.space.dims.iter().enumerate() {
            for b in &d.at_least {
                let need = width_py(b, &mut rounding, &round);
                let args = vec![atom(format!("d[{i}]")), atom(need), atom(i.to_string())];
                bounds += &call("_at_least", args).lines(4, &format!("d[{i}] = "), "");
            }
        }
        let bounds = if bounds.is_empty() {
            String::new()
        } else {
            format!("    # Lower bounds from zero-padded shortcuts: a dimension keeps what it pads.\n{bounds}")
        };
        let mut layers = String::new();
        for (_, l) in net.compute_layers() {
            let _ = writeln!(layers, "        {},", width_py(&l.width, &mut rounding, &round));
        }
        let mut out = String::new();
        for f in rounding {
            out.push_str("\n\n");
            out.push_str(f);
        }
        let _ = write!(
            out,
            "\n\n{DECODE_HEAD}    d = []\n    for (base, divisor, _), w in zip(DIMS, wm):\n        d.append(_fit({first}, base, divisor))\n\
             {bounds}    return d\n\n\n\
             def layer_channels(d):\n    \
             \"\"\"Every layer's output channels (in `LAYERS` order) when the dimensions have `d`.\"\"\"\n    \
             return [\n{layers}    ]\n\n\n{FIXED_FUNCTIONS}"
        );
        out
    }

    fn network_class(&self, class: &str, modules: &Node, body: &str) -> String {
        let doc =
            format!("    \"\"\"The slimmable network `{}` (`slimc space` describes it).\"\"\"\n\n", self.net.name);
        format!(
            "class {class}(Scope):\n{doc}    \
             search_dim = len(DIMS)\n    \
             channel_space = CHANNEL_SPACE\n\n    \
             def __init__(self):\n        \
             super().__init__(\n{}        )\n        \
             self.width_mult = 1.0\n        \
             self._applied_width_mult = 1.0\n\n{NETWORK_METHODS}\n    \
             def forward(self, x):\n        \
             \"\"\"The output at the width last set (`width_mult` or `set_real_ch`).\"\"\"\n        \
             if self.width_mult != self._applied_width_mult:\n            \
             self.set_width_mult(self.width_mult)\n{body}",
            modules.args(12)
        )
    }
}

/// Python for a width expression over `d` (the dimensions' channels).
fn width_py(
    w: &Width,
    used: &mut BTreeSet<&'static str>,
    round: &impl Fn(Rounding, &str, &mut BTreeSet<&'static str>) -> String,
) -> String {
    match w {
        Width::Dim(i) => format!("d[{i}]"),
        Width::Fixed(n) => n.to_string(),
        Width::Sum(items) => {
            let items: Vec<String> = items.iter().map(|w| width_py(w, used, round)).collect();
            format!("({})", items.join(" + "))
        }
        Width::Part { of, parts } => format!("({} // {parts})", width_py(of, used, round)),
        Width::Ratio { of, ratio, rounding } => {
            let of = width_py(of, used, round);
            format!("max(1, {})", round(*rounding, &format!("{} * {of}", float(*ratio)), used))
        }
    }
}

/// Rust's `(v + 1e-6).floor()` ([`Rounding::Floor`]).
const FLOOR: &str = "def _floor(v):\n    \
    \"\"\"`int(v)`, with slack for products such as 0.29 * 100 = 28.999...\"\"\"\n    \
    return math.floor(v + 1e-6)\n";

/// [`Rounding::MakeDivisible`], MobileNet's `_make_divisible`.
const MAKE_DIVISIBLE: &str = "def _make_divisible(v, d):\n    \
    \"\"\"The nearest multiple of `d`, at least `d`, never more than 10 % below `v`.\"\"\"\n    \
    n = max(d, math.floor((v + d / 2 + 1e-6) / d) * d)\n    \
    return n + d if n < 0.9 * v - 1e-6 else n\n";

const DECODE_HEAD: &str = r#"def decode(wm):
    """One channel count per search dimension at multipliers `wm` (one each, in (0, 1])."""
    if len(wm) != len(DIMS):
        raise ValueError(
            f"expected {len(DIMS)} width multipliers (one per search dimension), got {len(wm)}"
        )
    for i, w in enumerate(wm):
        if not 0.0 < w <= 1.0:
            raise ValueError(
                f"width multiplier {i} is {w}; multipliers must be in (0, 1]"
            )
"#;

const FIXED_FUNCTIONS: &str = r#"def _fit(v, base, divisor):
    """A rounded count kept in 1..base and rounded down to its divisor (never below it)."""
    v = min(max(v, 1), base)
    return v if divisor <= 1 else min(max(v // divisor * divisor, divisor), base)


def _at_least(v, need, dim):
    """Dimension `dim`'s count `v` raised to `need` (a multiple of its divisor, at most
    its base)."""
    base, divisor, _ = DIMS[dim]
    return v if v >= need else min(-(-need // divisor) * divisor, base)


def _groups(spec, in_ch):
    """A conv's groups at `in_ch` input channels (`LAYERS` gives `spec`)."""
    if spec == "depthwise":
        return in_ch
    if isinstance(spec, str):
        return max(1, in_ch // int(spec.split()[1]))
    return spec


def _flatten(ch):
    """Hierarchical channel counts (as `CHANNEL_SPACE` nests them) as one flat list."""
    return [c for e in ch for c in (e if isinstance(e, (list, tuple)) else [e])]


def _switch(w):
    """The index of width `w` in `SWITCHES`."""
    found = [i for i, s in enumerate(SWITCHES) if abs(s - w) < 1e-9]
    if not found:
        raise ValueError(f"width {w} is not one of the BN switches {SWITCHES}")
    return found[0]


BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def _nest(flat):
    """One count per search dimension, nested as `CHANNEL_SPACE` is."""
    it = iter(flat)
    return [
        [next(it) for _ in e] if isinstance(e, list) else next(it)
        for e in CHANNEL_SPACE
    ]
"#;

const NETWORK_METHODS: &str = r#"    def decode_wm(self, wm):
        """Width multipliers, one per search dimension in (0, 1] -> channels, nested as
        `channel_space` is."""
        return _nest(decode(list(wm)))

    def decode_ch(self, ch):
        """Channels per search dimension (nested or flat) -> every layer's output channels,
        in `LAYERS` order, shared counts expanded."""
        d = _flatten(ch)
        if len(d) != len(DIMS):
            raise ValueError(
                f"{len(d)} channel counts, the network has {len(DIMS)} search dimensions"
            )
        return layer_channels(d)

    def slim_layers(self):
        """The slimmable layers by slimc name."""
        return {name: m for name, m in self.named_modules() if isinstance(m, Slim)}

    def set_real_ch(self, real_ch):
        """Applies every layer's output channels (from `decode_ch`) to the slimmable layers,
        through their `set_in_ch`, `set_out_ch` and `set_groups`."""
        if len(real_ch) != len(LAYERS):
            raise ValueError(
                f"{len(real_ch)} layer channel counts, the network has {len(LAYERS)} layers"
            )
        slim = self.slim_layers()
        for (name, _, src, groups), out in zip(LAYERS, real_ch):
            if name in slim:
                in_ch = INPUT[0] if src < 0 else real_ch[src]
                slim[name].set_in_ch(in_ch)
                slim[name].set_out_ch(out)
                slim[name].set_groups(_groups(groups, in_ch))

    def set_width_mult(self, w):
        """Runs every search dimension at the multiplier `w` (with switchable BN, one of
        `SWITCHES`, whose BN it selects)."""
        if SWITCHES:
            for m in self.modules():
                if hasattr(m, "switch"):
                    m.switch = _switch(w)
        self.set_real_ch(self.decode_ch(self.decode_wm([w] * self.search_dim)))
        self.width_mult = self._applied_width_mult = w

    def load_subnet(self, state_dict, width_mult=None):
        """Copies a narrower subnet's tensors (`slimc export` at a width) into the leading
        slices of the full-width ones; `load_state_dict` loads a full-width file. With
        switchable BN, the BN tensors go to the switch of `width_mult`, the export's width."""
        own = self.state_dict()
        if SWITCHES:
            if width_mult is None:
                raise ValueError("switchable BN: give the export's width as width_mult")
            s = _switch(width_mult)
            bn = [n for n, m in self.named_modules() if hasattr(m, "switch")]
            own.update({f"{n}.{k}": own[f"{n}.{k}"][s] for n in bn for k in BN_TENSORS})
        missing = sorted(set(own) - set(state_dict))
        unknown = sorted(set(state_dict) - set(own))
        if missing or unknown:
            raise KeyError(f"missing tensors {missing}, unknown tensors {unknown}")
        with torch.no_grad():
            for name, t in state_dict.items():
                dst = own[name]
                fits = t.dim() == dst.dim() and all(
                    a <= b for a, b in zip(t.shape, dst.shape)
                )
                if not fits:
                    shapes = f"{tuple(t.shape)} does not fit {tuple(dst.shape)}"
                    raise ValueError(f"{name}: shape {shapes}")
                dst[tuple(slice(0, n) for n in t.shape)].copy_(t)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(src: &str) -> String {
        let nets = crate::compile(src, "t.slim", &Default::default()).unwrap_or_else(|d| panic!("{}", d.render()));
        emit(&nets[0], "t.slim", &[]).unwrap()
    }

    #[test]
    fn names_python_cannot_take_are_reached_by_key() {
        assert_eq!(access("main.conv1"), "self.main.conv1");
        assert_eq!(access("stage1.0"), "self.stage1[0]");
        // An attribute of nn.Module, a keyword, a name that is no identifier.
        assert_eq!(access("eval.conv1"), "self[\"eval\"].conv1");
        assert_eq!(access("lambda.conv1"), "self[\"lambda\"].conv1");
        assert_eq!(var("lambda.conv1"), "lambda_conv1");
        assert_eq!(var("0.conv1"), "l0_conv1");
        assert_eq!(var("torch"), "torch_");
        assert_eq!(float(1e-6), "1e-6");
        assert_eq!(float(2.0), "2.0");
    }

    #[test]
    fn a_module_holds_its_layers_under_slimcs_names() {
        let code = emitted(
            "network tiny(classes = 10) {\n    input 3 x 16 x 16\n    stem = conv(8, k=3) -> bn -> relu\n    \
             stage = unit(8) -> unit(16, stride=2)\n    head = avgpool -> linear(classes)\n}\n\
             block unit(c, stride = 1) {\n    eval = in -> conv(c, k=3, stride=stride) -> bn -> relu\n    out = eval\n}\n",
        );
        // Two instances whose code differs are two classes; the binding `eval` (an nn.Module
        // method) is a key, never an attribute.
        assert!(code.contains("class Unit(Scope):") && code.contains("class Unit2(Scope):"), "{code}");
        assert!(code.contains("**{\"eval\": Scope(") || code.contains("eval=Scope("), "{code}");
        assert!(code.contains("self[\"eval\"].conv1(x)"), "{code}");
        assert!(
            code.contains("stage1=Scope(\n                Unit([8, 8]),\n                Unit2([8, 16]),"),
            "{code}"
        );
        assert!(code.contains("CHANNEL_SPACE = [\n    8,\n    [16, 8],\n]"), "{code}");
        assert!(code.starts_with("# Generated by slimc"), "{code}");
        assert!(code.contains("import math") && code.contains("def _floor(v):"), "the network's rounding");
    }
}
