//! The fixed parts of an emitted PyTorch module: the submodule container and the slimmable
//! layers, each written once per file when used. Each computes what [`crate::ir::Op`]
//! specifies for its op, on the leading slices of its full-width tensors.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Scope,
    /// The base class of the slimmable layers (`set_in_ch`, `set_out_ch`, `set_groups`).
    Slim,
    Conv,
    ConvTranspose,
    Linear,
    BatchNorm,
    LayerNorm,
    LayerScale,
    ZeroPad,
    Split,
    Shuffle,
    DropPath,
    Attend,
    ClassToken,
    PosEmbed,
    WindowAttention,
}

impl Part {
    /// Whether the part is a slimmable layer (a subclass of `Slim`).
    pub fn is_module(self) -> bool {
        matches!(
            self,
            Part::Conv
                | Part::ConvTranspose
                | Part::Linear
                | Part::BatchNorm
                | Part::LayerNorm
                | Part::LayerScale
                | Part::ClassToken
                | Part::PosEmbed
                | Part::WindowAttention
                | Part::ZeroPad
        )
    }

    pub fn code(self) -> &'static str {
        match self {
            Part::Scope => SCOPE,
            Part::Slim => SLIM,
            Part::Conv => CONV,
            Part::ConvTranspose => CONV_TRANSPOSE,
            Part::Linear => LINEAR,
            Part::BatchNorm => BATCH_NORM,
            Part::LayerNorm => LAYER_NORM,
            Part::LayerScale => LAYER_SCALE,
            Part::ZeroPad => ZERO_PAD,
            Part::Split => SPLIT,
            Part::Shuffle => SHUFFLE,
            Part::DropPath => DROP_PATH,
            Part::Attend => ATTEND,
            Part::ClassToken => CLASS_TOKEN,
            Part::PosEmbed => POS_EMBED,
            Part::WindowAttention => WINDOW_ATTENTION,
        }
    }
}

const SCOPE: &str = r#"class Scope(nn.Module):
    """Submodules under the components of slimc's layer names (`0`, `main`, `conv1`), so
    that `state_dict()` keys are the names `slimc space` lists."""

    def __init__(self, *ordered, **named):
        super().__init__()
        for i, module in enumerate(ordered):
            self._modules[str(i)] = module
        for name, module in named.items():
            self._modules[name] = module

    def __getitem__(self, key):
        return self._modules[str(key)]
"#;

const SLIM: &str = r#"class Slim(nn.Module):
    """A slimmable layer: full-width parameters, run at the channels last set."""

    def __init__(self, in_ch, out_ch, groups=1):
        super().__init__()
        self.in_ch, self.out_ch, self.groups = in_ch, out_ch, groups

    def set_in_ch(self, in_ch):
        self.in_ch = in_ch

    def set_out_ch(self, out_ch):
        self.out_ch = out_ch

    def set_groups(self, groups):
        self.groups = groups
"#;

const CONV: &str = r#"class SlimConv2d(Slim):
    """A conv with weights `[out, in / groups, kh, kw]` at full width; it runs on the slice
    `[:out_ch, :in_ch / groups]`. `group_width`: channels per group (groups follow the
    input); initialised Kaiming-normal (fan-out, ReLU gain), as slimc does."""

    def __init__(
        self,
        in_ch,
        out_ch,
        kernel,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        group_width=None,
        bias=False,
    ):
        groups = groups if group_width is None else max(1, in_ch // group_width)
        super().__init__(in_ch, out_ch, groups)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        std = math.sqrt(2.0 / (out_ch * kh * kw))
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch // groups, kh, kw) * std)
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x):
        w = self.weight[: self.out_ch, : self.in_ch // self.groups]
        b = None if self.bias is None else self.bias[: self.out_ch]
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)
"#;

const CONV_TRANSPOSE: &str = r#"class SlimConvTranspose2d(Slim):
    """A transposed conv with weights `[in, out, kh, kw]` at full width (PyTorch's layout);
    it runs on the slice `[:in_ch, :out_ch]`."""

    def __init__(self, in_ch, out_ch, kernel, stride, padding, output_padding, bias):
        super().__init__(in_ch, out_ch)
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        std = math.sqrt(2.0 / (out_ch * kh * kw))
        self.weight = nn.Parameter(torch.randn(in_ch, out_ch, kh, kw) * std)
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x):
        w = self.weight[: self.in_ch, : self.out_ch]
        b = None if self.bias is None else self.bias[: self.out_ch]
        return F.conv_transpose2d(
            x, w, b, self.stride, self.padding, self.output_padding
        )
"#;

const LINEAR: &str = r#"class SlimLinear(Slim):
    """A linear map with weights `[out, in]` at full width, run on `[:out_ch, :in_ch]`, on
    a `[N, C, 1, 1]` input; initialised as PyTorch's `nn.Linear`."""

    def __init__(self, in_ch, out_ch, bias=True):
        super().__init__(in_ch, out_ch)
        bound = 1.0 / math.sqrt(in_ch)
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch).uniform_(-bound, bound))
        self.bias = (
            nn.Parameter(torch.empty(out_ch).uniform_(-bound, bound)) if bias else None
        )

    def forward(self, x):
        w = self.weight[: self.out_ch, : self.in_ch]
        b = None if self.bias is None else self.bias[: self.out_ch]
        return F.linear(x.flatten(1), w, b)[:, :, None, None]
"#;

const BATCH_NORM: &str = r#"class SlimBatchNorm2d(Slim):
    """Batch norm (eps 1e-5) over the leading channels of its full-width parameters and
    statistics: batch statistics in training, the stored ones in evaluation. With
    `switches` > 1 (S-Nets' switchable BN) each is `[switches, ch]`, and `switch` picks
    the row in use."""

    def __init__(self, ch, switches=1):
        super().__init__(ch, ch)
        self.momentum = 0.1
        self.switch = 0
        shape = (ch,) if switches == 1 else (switches, ch)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))

    def forward(self, x):
        c = x.shape[1]
        tensors = (self.running_mean, self.running_var, self.weight, self.bias)
        if self.weight.dim() == 2:
            tensors = tuple(t[self.switch] for t in tensors)
        mean, var, weight, bias = (t[:c] for t in tensors)
        return F.batch_norm(
            x, mean, var, weight, bias, self.training, self.momentum, 1e-5
        )
"#;

const LAYER_NORM: &str = r#"class SlimLayerNorm2d(Slim):
    """Layer norm over the active channels at each position (ConvNeXt's `LayerNorm2d`)."""

    def __init__(self, ch, eps):
        super().__init__(ch, ch)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ch))
        self.bias = nn.Parameter(torch.zeros(ch))

    def forward(self, x):
        c = x.shape[1]
        y = x.permute(0, 2, 3, 1)
        y = F.layer_norm(y, (c,), self.weight[:c], self.bias[:c], self.eps)
        return y.permute(0, 3, 1, 2)
"#;

const LAYER_SCALE: &str = r#"class SlimLayerScale(Slim):
    """A learned per-channel multiplier (ConvNeXt's layer scale)."""

    def __init__(self, ch, init):
        super().__init__(ch, ch)
        self.weight = nn.Parameter(torch.full((ch,), float(init)))

    def forward(self, x):
        return x * self.weight[: x.shape[1], None, None]
"#;

const CLASS_TOKEN: &str = r#"class SlimClassToken(Slim):
    """A learned token `[C, 1]` put before a row of tokens `[N, C, 1, L]` (ViT's class
    token, zeros at first)."""

    def __init__(self, ch):
        super().__init__(ch, ch)
        self.weight = nn.Parameter(torch.zeros(ch, 1))

    def forward(self, x):
        n, c = x.shape[:2]
        token = self.weight[None, :c, :, None].expand(n, c, 1, 1)
        return torch.cat([token, x], dim=3)
"#;

const POS_EMBED: &str = r#"class SlimPosEmbed(Slim):
    """A learned embedding `[C, H*W]` added to the map, one vector per position, row by row
    (ViT's position embedding, N(0, 0.02^2) at first)."""

    def __init__(self, ch, positions):
        super().__init__(ch, ch)
        self.weight = nn.Parameter(torch.randn(ch, positions) * 0.02)

    def forward(self, x):
        _, c, h, w = x.shape
        return x + self.weight[:c].reshape(1, c, h, w)
"#;

const ZERO_PAD: &str = r#"class ZeroPad(Slim):
    """Zero channels after the input's, up to `out_ch` (an option-A shortcut)."""

    def __init__(self, in_ch, out_ch):
        super().__init__(in_ch, out_ch)

    def forward(self, x):
        return F.pad(x, (0, 0, 0, 0, 0, self.out_ch - x.shape[1]))
"#;

const SPLIT: &str = r#"def _split(x, part, parts):
    """Part `part` of `parts` equal channel chunks."""
    c = x.shape[1] // parts
    return x[:, part * c : (part + 1) * c]
"#;

const SHUFFLE: &str = r#"def _shuffle(x, groups):
    """Channel shuffle: channels viewed as `[groups, C / groups]`, transposed, flattened."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
"#;

const DROP_PATH: &str = r#"def _drop_path(x, p, training):
    """Stochastic depth: each sample's tensor zeroed with probability `p` in training."""
    if not training or p == 0.0:
        return x
    keep = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= p).to(x.dtype)
    return x * keep / (1.0 - p)
"#;

const ATTEND: &str = r#"def _attend(q, k, v, split, by_count=False, share=1, window=None, table=None):
    """Attention over the positions. Heads of `split` channels (channels `h*d : (h+1)*d` are
    head `h`, a narrower width keeps whole heads), or with `by_count` `split` heads (channel
    `j*n + h` is dimension `j` of head `h`); `share` query heads read each key/value head.
    Per head softmax(Q K^T / sqrt(d) + B) V. With `window=(size, shift)` (Swin), within
    `size x size` windows of the map rolled by `-shift`, `B` the relative position bias
    from `table` `[heads, (2*size - 1)^2]` plus -100 between tokens of a shifted window
    from different regions."""
    n, c, h, w = q.shape
    heads, d = (split, c // split) if by_count else (c // split, split)
    size, shift = window if window is not None else (None, 0)
    sh, sw = (size, size) if size else (h, w)
    ty = 0 if size is None or size >= h else shift
    tx = 0 if size is None or size >= w else shift
    gh, gw = h // sh, w // sw

    def cut(t):
        cc = t.shape[1]
        t = torch.roll(t, (-ty, -tx), (2, 3))
        t = (
            t.reshape(n, cc, gh, sh, gw, sw)
            .permute(0, 2, 4, 1, 3, 5)
            .reshape(n * gh * gw, cc, sh * sw)
        )
        if by_count:
            t = t.reshape(t.shape[0], d, cc // d, sh * sw).transpose(1, 2)
        else:
            t = t.reshape(t.shape[0], cc // d, d, sh * sw)
        return t.transpose(2, 3)

    q, k, v = cut(q), cut(k), cut(v)
    k, v = k.repeat_interleave(share, dim=1), v.repeat_interleave(share, dim=1)
    bias = None
    if table is not None:
        pos = torch.arange(sh * sw, device=q.device)
        ys, xs = pos // size, pos % size
        index = (ys[:, None] - ys[None, :] + size - 1) * (2 * size - 1) + (
            xs[:, None] - xs[None, :] + size - 1
        )
        bias = table[:heads, index][None]
        if ty or tx:

            def region(side, t):
                r = torch.zeros(side, dtype=torch.long, device=q.device)
                if t:
                    r[side - size :] = 1
                    r[side - t :] = 2
                return r

            label = 3 * region(h, ty)[:, None] + region(w, tx)[None, :]
            label = (
                label.reshape(gh, sh, gw, sw)
                .permute(0, 2, 1, 3)
                .reshape(gh * gw, sh * sw)
            )
            mask = (label[:, :, None] != label[:, None, :]).to(q.dtype) * -100.0
            bias = (bias + mask[:, None]).repeat(n, 1, 1, 1)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    y = y.permute(0, 3, 1, 2) if by_count else y.transpose(2, 3)
    y = y.reshape(n, gh, gw, c, sh, sw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)
    return torch.roll(y, (ty, tx), (2, 3))
"#;

const WINDOW_ATTENTION: &str = r#"class SlimWindowAttention(Slim):
    """Swin's window attention (see `_attend`) with its learned relative position bias
    table `[heads, (2*size - 1)^2]` (N(0, 0.02^2) at first); a narrower width of whole
    heads uses the leading heads' rows."""

    def __init__(self, ch, heads, size, shift, split, by_count=False, share=1):
        super().__init__(ch, ch)
        self.window = (size, shift)
        self.split, self.by_count, self.share = split, by_count, share
        self.weight = nn.Parameter(torch.randn(heads, (2 * size - 1) ** 2) * 0.02)

    def forward(self, q, k, v):
        return _attend(
            q, k, v, self.split, self.by_count, self.share, self.window, self.weight
        )
"#;
