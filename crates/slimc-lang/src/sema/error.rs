//! Semantic errors as data; all wording lives in [`SemaError::to_diagnostic`].

use crate::diagnostic::Diagnostic;
use crate::syntax::ast::Span;

/// One operand of a failed channel or spatial match: where it is used, its value, and
/// where that value was set.
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    pub span: Span,
    pub value: String,
    pub origin: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SemaError {
    Duplicate {
        what: &'static str,
        name: String,
        first: Span,
        second: Span,
    },
    ShadowsBuiltin {
        name: String,
        span: Span,
    },
    UnknownName {
        name: String,
        span: Span,
        candidates: Vec<String>,
    },
    UnknownCallee {
        name: String,
        span: Span,
        candidates: Vec<String>,
    },
    UnknownArgument {
        callee: String,
        name: String,
        span: Span,
        candidates: Vec<String>,
        /// Every parameter of the callee, in order.
        params: Vec<String>,
    },
    UnknownField {
        name: String,
        span: Span,
        /// It follows a whole number (`1.e-6`): a number in scientific notation was meant.
        exponent: bool,
    },
    /// A network section (`stem`, `stage`, `head`) read as if it were a tensor; `above`:
    /// where that section is, when it comes before the use.
    SectionAsTensor {
        name: String,
        span: Span,
        above: Option<Span>,
    },
    ReservedName {
        name: String,
        span: Span,
    },
    Recursive {
        chain: Vec<String>,
        span: Span,
    },
    MissingOut {
        block: String,
        span: Span,
    },
    MissingInput {
        network: String,
        span: Span,
    },
    Misplaced {
        what: String,
        span: Span,
        help: String,
    },
    TooManyArguments {
        callee: String,
        max: usize,
        got: usize,
        span: Span,
    },
    MissingArgument {
        callee: String,
        param: String,
        span: Span,
    },
    RepeatedArgument {
        name: String,
        span: Span,
        first: Span,
    },
    Type {
        expected: String,
        found: String,
        span: Span,
        help: Option<String>,
    },
    Arithmetic {
        message: String,
        span: Span,
    },
    Limit {
        what: String,
        value: String,
        limit: String,
        span: Span,
    },
    ChannelMismatch {
        op: String,
        span: Span,
        operands: Vec<Operand>,
        within: String,
        /// How to make them agree, by op (a residual, a gate).
        help: String,
    },
    SpatialMismatch {
        op: String,
        span: Span,
        /// Each operand's size, and where that size was set (`origin`).
        operands: Vec<Operand>,
        within: String,
        /// The likely cause, from the sizes.
        help: String,
    },
    NotDivisible {
        what: String,
        channels: u32,
        divisor: u32,
        span: Span,
        origin: Span,
    },
    FixedForced {
        span: Span,
        fixed: u32,
        fixed_origin: Span,
        other_origin: Span,
    },
    DerivedConflict {
        span: Span,
        help: String,
    },
    ZeroPadNarrower {
        span: Span,
        input: u32,
        output: u32,
        input_origin: Span,
    },
    /// `layer * 2.4`: a repeat count that is not a whole number.
    RepeatNotWhole {
        value: f64,
        span: Span,
    },
    /// The window along one axis (`size` is that axis of the `map`) does not fit.
    KernelTooLarge {
        span: Span,
        kernel: u32,
        dilation: u32,
        size: u32,
        padding: u32,
        map: [u32; 2],
    },
    EmptyStage {
        span: Span,
    },
    HeadClasses {
        span: Span,
        got: u32,
        classes: u32,
        origin: Span,
    },
    NeedsFlat {
        op: String,
        span: Span,
        h: u32,
        w: u32,
    },
    BadRounding {
        span: Span,
    },
    /// An op on a row of tokens (`class_token`) applied to a map of several rows.
    /// Window attention on a map whose sides are not multiples of the window.
    WindowSize {
        span: Span,
        window: u32,
        h: u32,
        w: u32,
    },
    /// Grouped-query attention whose k (or v) is not `kv_heads` × the head width.
    KvWidth {
        span: Span,
        operand: Span,
        channels: u32,
        heads: u32,
        kv_heads: u32,
        head_width: u32,
    },
    /// `kv_heads` that does not divide `heads`.
    KvHeads {
        span: Span,
        heads: u32,
        kv_heads: u32,
    },
    NeedsTokens {
        op: String,
        span: Span,
        h: u32,
        w: u32,
    },
    GroupWidthChange {
        span: Span,
        input: u32,
        output: u32,
        input_origin: Span,
    },
    /// A setting (made outside the file) names no parameter of any network.
    UnknownSetting {
        name: String,
        networks: Vec<(String, Span)>,
        parameters: Vec<String>,
        candidates: Vec<String>,
    },
    /// `error` arose where the network reads a parameter whose value was set outside the file.
    FromSetting {
        error: Box<SemaError>,
        name: String,
        value: String,
    },
    /// `error` arose while building the block instance that the call at `span` made:
    /// `call` is that call as written with its arguments' values, `blk(c=16, r=1.2)`.
    InCall {
        error: Box<SemaError>,
        call: String,
        span: Span,
    },
    /// One parameter given by position and again by name: `conv(16, 3, k=5)`.
    PositionalAndNamed {
        callee: String,
        name: String,
        positional: Span,
        named: Span,
    },
}

fn did_you_mean(candidates: &[String]) -> Option<String> {
    match candidates {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => Some(format!(
            "did you mean one of {}?",
            many.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        )),
    }
}

impl SemaError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            SemaError::Duplicate { what, name, first, second } => {
                Diagnostic::new("E0101", format!("{what} `{name}` is defined twice"))
                    .primary(*second, "defined again here")
                    .secondary(*first, "first defined here")
                    .help(format!("rename one of the two {what}s"))
            }
            SemaError::ShadowsBuiltin { name, span } => Diagnostic::new("E0102", format!("block `{name}` has the name of a built-in"))
                .primary(*span, "this name is taken by a built-in op or function")
                .help(format!("rename the block, e.g. `{name}_block`")),
            SemaError::UnknownName { name, span, candidates } => {
                let d = Diagnostic::new("E0103", format!("unknown name `{name}`")).primary(*span, "not defined before this point");
                match did_you_mean(candidates) {
                    Some(h) => d.help(h),
                    None => d.help("define it with `name = ...` above, or add it as a parameter"),
                }
            }
            SemaError::UnknownCallee { name, span, candidates } => {
                let d = Diagnostic::new("E0104", format!("unknown op or block `{name}`")).primary(*span, "no op, block or function has this name");
                match did_you_mean(candidates) {
                    Some(h) => d.help(h),
                    None => d.help("define it with `block NAME(...) { ... }` or use a built-in op (see README.md)"),
                }
            }
            SemaError::UnknownArgument { callee, name, span, candidates, params } => {
                let d = Diagnostic::new("E0105", format!("`{callee}` has no parameter `{name}`")).primary(*span, "unknown parameter");
                let d = match did_you_mean(candidates) {
                    Some(h) => d.help(h),
                    None => d,
                };
                match params.as_slice() {
                    [] => d.note(format!("`{callee}` takes no parameters")),
                    ps => d.note(format!("the parameters of `{callee}` are {}", ps.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "))),
                }
            }
            SemaError::UnknownField { name, span, exponent } => {
                let d = Diagnostic::new("E0106", format!("unknown tensor property `.{name}`")).primary(*span, "not a tensor property");
                if *exponent {
                    d.help("a number in scientific notation has digits after the point or none: write `1e-6` or `1.0e-6`, not `1.e-6`")
                } else {
                    d.help("a tensor has `.c` (channels at full width), `.h` (height) and `.w` (width)")
                }
            }
            SemaError::SectionAsTensor { name, span, above } => {
                let d = Diagnostic::new("E0103", format!("`{name}` is a section of the network, not a tensor"))
                    .primary(*span, "a section cannot be read by name");
                let d = match above {
                    Some(at) => d.secondary(*at, format!("`{name}` is defined here, as a section")),
                    None => d,
                };
                d.note("`stem`, each `stage` and `head` are layers applied in order: each one starts from the output of the one before, so it needs no name for its input")
                    .help("to read a tensor twice (a skip connection, two branches), bind it inside a block (`x = in -> ...`, then `out = x + in`) and make the block a stage")
            }
            SemaError::ReservedName { name, span } => Diagnostic::new("E0107", format!("`{name}` cannot be redefined"))
                .primary(*span, format!("`{name}` is reserved"))
                .help("`in` is always the block's input; choose another name"),
            SemaError::Recursive { chain, span } => Diagnostic::new("E0108", format!("block `{}` is recursive", chain[0]))
                .primary(*span, "this call leads back to the block that contains it")
                .note(format!("cycle: {}", chain.join(" -> ")))
                .help("a network is finite: repeat a block with `block(...) * n` instead"),
            SemaError::MissingOut { block, span } => Diagnostic::new("E0109", format!("block `{block}` has no `out`"))
                .primary(*span, "this block never binds `out`")
                .help("end the block with `out = ...`, the tensor it returns"),
            SemaError::MissingInput { network, span } => Diagnostic::new("E0110", format!("network `{network}` has no `input`"))
                .primary(*span, "no `input C x H x W` statement")
                .help("add `input in_channels x size x size`"),
            SemaError::Misplaced { what, span, help } => {
                Diagnostic::new("E0111", what.clone()).primary(*span, "not allowed here").help(help.clone())
            }
            SemaError::TooManyArguments { callee, max, got, span } => {
                Diagnostic::new("E0112", format!("too many arguments to `{callee}`"))
                    .primary(*span, format!("{got} positional arguments, but `{callee}` takes at most {max}"))
                    .help("pass the rest by name, e.g. `stride=2`")
            }
            SemaError::MissingArgument { callee, param, span } => Diagnostic::new("E0113", format!("`{callee}` needs `{param}`"))
                .primary(*span, format!("missing argument `{param}`"))
                .help(format!("pass it, e.g. `{callee}(..., {param}=...)`")),
            SemaError::RepeatedArgument { name, span, first } => Diagnostic::new("E0114", format!("argument `{name}` given twice"))
                .primary(*span, "given again here")
                .secondary(*first, "first given here")
                .help("remove one of them"),
            SemaError::Type { expected, found, span, help } => {
                let d = Diagnostic::new("E0115", format!("expected {expected}, found {found}")).primary(*span, format!("this is {found}"));
                d.help(help.clone().unwrap_or_else(|| format!("pass {expected} here; README.md lists every op's parameters")))
            }
            SemaError::Arithmetic { message, span } => Diagnostic::new("E0116", message.clone())
                .primary(*span, "in this expression")
                .help("check the values of the parameters involved"),
            SemaError::Limit { what, value, limit, span } => Diagnostic::new("E0117", format!("{what} out of range"))
                .primary(*span, format!("{what} is {value}"))
                .help(format!("slimc accepts {limit}")),
            SemaError::ChannelMismatch { op, span, operands, within, help } => {
                let counts: Vec<&str> = operands.iter().map(|o| o.value.as_str()).collect();
                let mut d = Diagnostic::new("E0201", format!("channel mismatch in {op}: {}", counts.join(" vs ")))
                    .primary(*span, format!("{op} needs equal channel counts"));
                for o in operands {
                    d = d.secondary(o.span, format!("this has {}", o.value));
                }
                // Two operands can come from the same source line in different block
                // instances; label each distinct origin once.
                let mut origins: Vec<Span> = Vec::new();
                for o in operands {
                    let shared = operands.iter().filter(|p| p.origin == o.origin).count() > 1;
                    if o.origin != o.span && o.origin != Span::default() && !shared && !origins.contains(&o.origin) {
                        origins.push(o.origin);
                        d = d.secondary(o.origin, format!("{} set here", o.value));
                    }
                }
                d.note(format!("while building `{within}`")).help(help.clone())
            }
            SemaError::SpatialMismatch { op, span, operands, within, help } => {
                let sizes: Vec<&str> = operands.iter().map(|o| o.value.as_str()).collect();
                let mut d = Diagnostic::new("E0202", format!("spatial size mismatch in {op}: {}", sizes.join(" vs ")))
                    .primary(*span, format!("{op} needs equal feature-map sizes"));
                for o in operands {
                    d = d.secondary(o.span, format!("this is {}", o.value));
                }
                let mut set: Vec<&Operand> = Vec::new();
                for o in operands {
                    if o.origin != Span::default() && !set.iter().any(|s| s.origin == o.origin) {
                        set.push(o);
                    }
                }
                for o in set {
                    d = d.secondary(o.origin, format!("size set to {} here", o.value));
                }
                d.note(format!("while building `{within}`")).help(help.clone())
            }
            SemaError::NotDivisible { what, channels, divisor, span, origin } => {
                let mut d = Diagnostic::new("E0203", format!("{channels} channels are not divisible by {what} {divisor}"))
                    .primary(*span, format!("needs a multiple of {divisor}"));
                if *origin != Span::default() && origin != span {
                    d = d.secondary(*origin, format!("{channels} channels set here"));
                }
                d.help(format!("use a channel count that is a multiple of {divisor}"))
            }
            SemaError::FixedForced { span, fixed, fixed_origin, other_origin } => {
                Diagnostic::new("E0204", format!("fixed width {fixed} would have to change with the width multiplier"))
                    .primary(*span, "this ties a fixed width to a slimmable one")
                    .secondary(*fixed_origin, format!("fixed at {fixed} here"))
                    .secondary(*other_origin, "slimmable width set here")
                    .help("mark the other side `fixed(...)` too, or do not fix this one")
            }
            SemaError::DerivedConflict { span, help } => Diagnostic::new("E0205", "conflicting derived widths")
                .primary(*span, "these widths are derived differently and cannot be tied")
                .help(help.clone()),
            SemaError::ZeroPadNarrower { span, input, output, input_origin } => {
                Diagnostic::new("E0206", format!("zero-pad shortcut narrows {input} channels to {output}"))
                    .primary(*span, format!("pads to {output} channels"))
                    .secondary(*input_origin, format!("the input has {input} channels"))
                    .help("zeropad can only add channels; use a 1x1 conv shortcut to reduce them")
            }
            SemaError::RepeatNotWhole { value, span } => {
                let value = super::value::number(*value);
                Diagnostic::new("E0213", format!("a repeat count must be a whole number, found {value}"))
                    .primary(*span, format!("repeats the layer {value} times"))
                    .help("round it to the count you mean: `round(...)` (half to even) or `int(...)` (towards zero)")
            }
            SemaError::KernelTooLarge { span, kernel, dilation, size, padding, map: [h, w] } => {
                let reach = dilation * (kernel - 1) + 1;
                let px = if *size == 1 { "pixel" } else { "pixels" };
                let map = if h == w { format!("a map of {size} {px}") } else { format!("the {size} {px} of that axis") };
                let (title, label) = if *dilation > 1 {
                    (
                        format!("kernel {kernel} with dilation {dilation} spans {reach} pixels, more than the {h}x{w} feature map"),
                        format!("reaches {reach} pixels on {map} with padding {padding}"),
                    )
                } else {
                    (
                        format!("kernel {kernel} is larger than the {h}x{w} feature map"),
                        format!("kernel {kernel} on {map} with padding {padding}"),
                    )
                };
                let help = if *dilation > 1 {
                    "use a smaller kernel or dilation, more padding, or fewer strided layers before it"
                } else {
                    "use a smaller kernel, more padding, or fewer strided layers before it"
                };
                Diagnostic::new("E0207", title).primary(*span, label).help(help)
            }
            SemaError::EmptyStage { span } => Diagnostic::new("E0208", "empty stage")
                .primary(*span, "this stage has no layers")
                .help("give the stage at least one block, or remove it"),
            SemaError::HeadClasses { span, got, classes, origin } => {
                Diagnostic::new("E0209", format!("the head produces {got} outputs, but `classes` is {classes}"))
                    .primary(*span, format!("ends with {got} channels"))
                    .secondary(*origin, format!("{got} set here"))
                    .help("end the head with `linear(classes)`")
            }
            SemaError::NeedsFlat { op, span, h, w } => Diagnostic::new("E0210", format!("{op} needs a 1x1 feature map, found {h}x{w}"))
                .primary(*span, format!("input is {h}x{w}"))
                .help(format!(
                    "`flatten` it first to keep every position ({h}x{w} times the channels become the {op}'s inputs, as VGG's classifier), or `avgpool` it to 1x1 (global average pooling, far fewer weights); to apply it at every position (a per-position linear), use `conv(out, k=1)`"
                )),
            SemaError::WindowSize { span, window, h, w } => {
                let fit = |v: u32| v.div_ceil(*window) * window;
                Diagnostic::new("E0215", format!("window attention needs a map whose sides are multiples of the window {window}, found {h}x{w}"))
                    .primary(*span, format!("{h}x{w} does not split into {window}x{window} windows"))
                    .help(format!(
                        "choose an input size for which this map's sides are multiples of {window} (it is {h}x{w}; the nearest larger that fits is {}x{}), or a window that divides both; slimc does not pad the map as torchvision does",
                        fit(*h),
                        fit(*w)
                    ))
            }
            SemaError::KvWidth { span, operand, channels, heads, kv_heads, head_width } => {
                let need = kv_heads * head_width;
                Diagnostic::new(
                    "E0201",
                    format!("channel mismatch in attend: {kv_heads} key/value heads of {head_width} need {need} channels, found {channels}"),
                )
                .primary(*span, format!("{heads} query heads of {head_width} share {kv_heads} key/value heads"))
                .secondary(*operand, format!("this has {channels} channels"))
                .help(format!("with `kv_heads`, k and v are kv_heads × head width: project them with `conv({need}, k=1)`"))
            }
            SemaError::KvHeads { span, heads, kv_heads } => {
                Diagnostic::new("E0216", format!("kv_heads {kv_heads} does not divide heads {heads}"))
                    .primary(*span, format!("{heads} query heads cannot share {kv_heads} key/value heads evenly"))
                    .help(format!("each key/value head serves heads / kv_heads query heads: use a divisor of {heads}"))
            }
            SemaError::NeedsTokens { op, span, h, w } => {
                Diagnostic::new("E0214", format!("{op} needs a row of tokens (a 1xL map), found {h}x{w}"))
                    .primary(*span, format!("input is {h}x{w}"))
                    .help(format!("`tokens` first turns the map into its {} positions as one row (`-> tokens -> {op}`)", h * w))
            }
            SemaError::GroupWidthChange { span, input, output, input_origin } => {
                Diagnostic::new("E0212", format!("group-width conv changes {input} channels to {output}"))
                    .primary(*span, "`group_width` needs as many output channels as input channels")
                    .secondary(*input_origin, format!("the input has {input} channels"))
                    .help("with a fixed group width the number of groups follows the input, so the output must follow it too; change the width with a 1x1 conv before or after")
            }
            SemaError::UnknownSetting { name, networks, parameters, candidates } => {
                let mut d = Diagnostic::new("E0118", format!("no network has a parameter `{name}`"));
                for (i, (net, span)) in networks.iter().enumerate() {
                    let label = format!("network `{net}` is set through its parameters");
                    d = if i == 0 { d.primary(*span, label) } else { d.secondary(*span, label) };
                }
                let d = d.note(format!("the parameters are: {}", parameters.join(", ")));
                match did_you_mean(candidates) {
                    Some(h) => d.help(h),
                    None => d.help("a setting changes a network parameter declared in `network NAME(...)`"),
                }
            }
            SemaError::FromSetting { error, name, value } => error
                .to_diagnostic()
                .note(format!("`{name}` is {value} here because it was set outside the file, not by its default")),
            SemaError::InCall { error, call, span } => error.to_diagnostic().secondary(*span, format!("in the block built by this call: `{call}`")),
            SemaError::PositionalAndNamed { callee, name, positional, named } => {
                Diagnostic::new("E0119", format!("argument `{name}` of `{callee}` given both by position and by name"))
                    .primary(*named, "given by name here")
                    .secondary(*positional, format!("already given by position here: this is `{name}`"))
                    .help("remove one of them; positional arguments fill the parameters in order")
            }
            SemaError::BadRounding { span } => Diagnostic::new("E0211", "unknown rounding policy")
                .primary(*span, "not a rounding policy")
                .help("use `floor`, `nearest` or `make_divisible(8)`"),
        }
    }
}
