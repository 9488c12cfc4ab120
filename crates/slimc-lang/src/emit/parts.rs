//! The fixed parts of emitted code: slimmable conv / linear / batch-norm modules and the
//! free functions the forward passes call. Each is written once per file, only when used,
//! and computes what the runtime's op of the same name computes (`src/runtime/`).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Activation, Rounding};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ParamKind {
    Conv,
    ConvTranspose,
    Linear,
    BatchNorm,
    LayerNorm,
    LayerScale,
    Table,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Helper {
    Param(ParamKind),
    Act(Activation),
    Mul,
    Split,
    Shuffle,
    ZeroPad,
    Subsample,
    Dropout,
    DropPath,
    Flatten,
    Upsample,
    Attend,
    Tokens,
    Token,
    Round(Rounding),
}

impl Helper {
    pub fn name(self) -> Ident {
        match self {
            Helper::Param(ParamKind::Conv) => format_ident!("SlimConv2d"),
            Helper::Param(ParamKind::Linear) => format_ident!("SlimLinear"),
            Helper::Param(ParamKind::ConvTranspose) => format_ident!("SlimConvTranspose2d"),
            Helper::Param(ParamKind::BatchNorm) => format_ident!("SlimBatchNorm"),
            Helper::Param(ParamKind::LayerNorm) => format_ident!("SlimLayerNorm"),
            Helper::Param(ParamKind::LayerScale) => format_ident!("SlimLayerScale"),
            Helper::Param(ParamKind::Table) => format_ident!("SlimTable"),
            Helper::Act(a) => format_ident!("{}", format!("{a:?}").to_lowercase()),
            Helper::Mul => format_ident!("mul"),
            Helper::Split => format_ident!("split"),
            Helper::Shuffle => format_ident!("shuffle"),
            Helper::ZeroPad => format_ident!("zeropad"),
            Helper::Subsample => format_ident!("subsample"),
            Helper::Dropout => format_ident!("dropout"),
            Helper::DropPath => format_ident!("drop_path"),
            Helper::Flatten => format_ident!("flatten"),
            Helper::Upsample => format_ident!("upsample"),
            Helper::Attend => format_ident!("attend"),
            Helper::Tokens => format_ident!("tokens"),
            Helper::Token => format_ident!("token"),
            Helper::Round(Rounding::Floor) => format_ident!("floor_width"),
            Helper::Round(Rounding::Nearest) => format_ident!("nearest_width"),
            Helper::Round(Rounding::MakeDivisible(_)) => format_ident!("make_divisible"),
        }
    }

    pub fn tokens(self) -> TokenStream {
        match self {
            Helper::Param(ParamKind::Conv) => conv(),
            Helper::Param(ParamKind::Linear) => linear(),
            Helper::Param(ParamKind::ConvTranspose) => conv_transpose(),
            Helper::Param(ParamKind::BatchNorm) => batch_norm(),
            Helper::Param(ParamKind::LayerNorm) => layer_norm(),
            Helper::Param(ParamKind::LayerScale) => layer_scale(),
            Helper::Param(ParamKind::Table) => table(),
            Helper::Act(a) => activation(a),
            Helper::Mul => quote! {
                /// Elementwise product; a `[N, C, 1, 1]` gate (squeeze-excite) scales whole channel
                /// maps, a `[N, 1, H, W]` map (spatial attention) every channel.
                fn mul<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
                    let (ad, bd) = (a.dims(), b.dims());
                    let shape = [0, 1, 2, 3].map(|i| ad[i].max(bd[i]));
                    a.expand(shape) * b.expand(shape)
                }
            },
            Helper::Split => quote! {
                /// Part `part` of `parts` equal channel chunks.
                fn split<B: Backend>(x: Tensor<B, 4>, part: usize, parts: usize) -> Tensor<B, 4> {
                    let c = x.dims()[1] / parts;
                    x.narrow(1, part * c, c)
                }
            },
            Helper::Shuffle => quote! {
                /// ShuffleNet's channel shuffle: `[N, g, C/g, H·W]` transposed to `[N, C/g, g, H·W]`.
                fn shuffle<B: Backend>(x: Tensor<B, 4>, groups: usize) -> Tensor<B, 4> {
                    let [n, c, h, w] = x.dims();
                    x.reshape([n, groups, c / groups, h * w]).swap_dims(1, 2).reshape([n, c, h, w])
                }
            },
            Helper::ZeroPad => quote! {
                /// Zero channels appended up to `out` (an option-A shortcut).
                fn zeropad<B: Backend>(x: Tensor<B, 4>, out: usize) -> Tensor<B, 4> {
                    let [n, c, h, w] = x.dims();
                    if out <= c {
                        return x;
                    }
                    let zeros = Tensor::zeros([n, out - c, h, w], &x.device());
                    Tensor::cat(vec![x, zeros], 1)
                }
            },
            Helper::Subsample => quote! {
                /// `x[:, :, oy::s, ox::s]` (an option-A shortcut at offset 0, a quarter of
                /// a space-to-depth otherwise).
                fn subsample<B: Backend>(x: Tensor<B, 4>, s: isize, oy: isize, ox: isize) -> Tensor<B, 4> {
                    x.slice(burn::tensor::s![.., .., oy..;s, ox..;s])
                }
            },
            Helper::Dropout => quote! {
                /// Inverted dropout on an autodiff backend (training); the identity otherwise.
                fn dropout<B: Backend>(x: Tensor<B, 4>, p: f64) -> Tensor<B, 4> {
                    if p <= 0.0 || !B::ad_enabled(&x.device()) {
                        return x;
                    }
                    let keep = x.random_like(burn::tensor::Distribution::Bernoulli(1.0 - p));
                    x * keep.div_scalar(1.0 - p)
                }
            },
            Helper::DropPath => quote! {
                /// Stochastic depth on an autodiff backend (training): each sample kept with
                /// probability `1 - p`, scaled by `1 / (1 - p)`; the identity otherwise.
                fn drop_path<B: Backend>(x: Tensor<B, 4>, p: f64) -> Tensor<B, 4> {
                    if p <= 0.0 || !B::ad_enabled(&x.device()) {
                        return x;
                    }
                    let [n, c, h, w] = x.dims();
                    let keep = Tensor::<B, 4>::random([n, 1, 1, 1], burn::tensor::Distribution::Bernoulli(1.0 - p), &x.device());
                    x * keep.div_scalar(1.0 - p).expand([n, c, h, w])
                }
            },
            Helper::Flatten => quote! {
                /// `[N, C, H, W]` → `[N, C·H·W, 1, 1]` (channel, then row, then column).
                fn flatten<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
                    let [n, c, h, w] = x.dims();
                    x.reshape([n, c * h * w, 1, 1])
                }
            },
            Helper::Upsample => quote! {
                /// Resampling to `size`, or by a whole `scale` without one, as one matrix
                /// product per axis (which every backend differentiates), with
                /// `r = in / out`: nearest copies input `min(floor(o · r), in − 1)` (in f32,
                /// as PyTorch), bilinear mixes neighbours at half-pixel centres (PyTorch's
                /// `align_corners=False`).
                fn upsample<B: Backend>(x: Tensor<B, 4>, size: Option<[usize; 2]>, scale: usize, bilinear: bool) -> Tensor<B, 4> {
                    let [n, c, h, w] = x.dims();
                    let [ho, wo] = size.unwrap_or([h * scale, w * scale]);
                    // weights(len, out)[i, o]: input i's share of output o.
                    let weights = |len: usize, out: usize| {
                        let mut m = vec![0f32; len * out];
                        for o in 0..out {
                            if !bilinear {
                                let src = if len == out { o } else { (o as f32 * (len as f32 / out as f32)).floor() as usize };
                                m[src.min(len - 1) * out + o] = 1.0;
                                continue;
                            }
                            let u = ((o as f64 + 0.5) * (len as f64 / out as f64) - 0.5).max(0.0);
                            let lo = (u.floor() as usize).min(len - 1);
                            let hi = (lo + 1).min(len - 1);
                            m[lo * out + o] += (1.0 - (u - lo as f64)) as f32;
                            m[hi * out + o] += (u - lo as f64) as f32;
                        }
                        Tensor::<B, 2>::from_data(burn::tensor::TensorData::new(m, [len, out]), &x.device())
                    };
                    let (mw, mh) = (weights(w, wo), weights(h, ho));
                    let rows = x.reshape([n * c * h, w]).matmul(mw);
                    let cols = rows.reshape([n, c, h, wo]).swap_dims(2, 3).reshape([n * c * wo, h]);
                    cols.matmul(mh).reshape([n, c, wo, ho]).swap_dims(2, 3)
                }
            },
            Helper::Attend => quote! {
                /// Attention over the positions. `split`: `(d, false)`, heads of `d` channels
                /// (channels `h·d .. (h+1)·d` are head `h`, a narrower width keeps whole
                /// heads), or `(n, true)`, `n` heads (channel `j·n + h` is dimension `j` of
                /// head `h`); `share` query heads read each key/value head. Per head
                /// `softmax(Q Kᵀ / √d + B) V`. With `window = Some((size, shift))` (Swin),
                /// within `size × size` windows of the map rolled by `−shift`, `B` the
                /// relative position bias from `table` `[heads, (2·size − 1)²]` plus −100
                /// between tokens of a shifted window from different regions.
                fn attend<B: Backend>(
                    q: Tensor<B, 4>,
                    k: Tensor<B, 4>,
                    v: Tensor<B, 4>,
                    (split, by_count, share): (usize, bool, usize),
                    window: Option<(usize, usize)>,
                    table: Option<Tensor<B, 2>>,
                ) -> Tensor<B, 4> {
                    let [n, c, h, w] = q.dims();
                    let device = q.device();
                    let (nh, d) = if by_count { (split, c / split) } else { (c / split, split) };
                    // No shift on a side that one window covers.
                    let (size, shift) = match window {
                        Some((s, t)) => ([s, s], [if s >= h { 0 } else { t }, if s >= w { 0 } else { t }]),
                        None => ([h, w], [0, 0]),
                    };
                    let grid = [h / size[0], w / size[1]];
                    let (batch, tokens) = (n * grid[0] * grid[1], size[0] * size[1]);
                    let cut = |x: Tensor<B, 4>, heads: usize| -> Tensor<B, 4> {
                        let c = x.dims()[1];
                        // Burn's roll by `s` reads `x[i + s]` (torch.roll's by `−s`).
                        let x = x.roll(&[shift[0] as i64, shift[1] as i64], &[2, 3]);
                        let x: Tensor<B, 6> = x.reshape([n, c, grid[0], size[0], grid[1], size[1]]);
                        let x = x.permute([0, 2, 4, 1, 3, 5]).reshape([batch, c, tokens]);
                        if by_count {
                            x.reshape([batch, d, heads, tokens]).swap_dims(1, 2)
                        } else {
                            x.reshape([batch, heads, d, tokens])
                        }
                    };
                    let repeat = |x: Tensor<B, 4>| -> Tensor<B, 4> {
                        let x: Tensor<B, 5> = x.unsqueeze_dim(2);
                        x.expand([batch, nh / share, share, d, tokens]).reshape([batch, nh, d, tokens])
                    };
                    let q = cut(q.mul_scalar(1.0 / (d as f64).sqrt()), nh).swap_dims(2, 3);
                    let (k, v) = (repeat(cut(k, nh / share)), repeat(cut(v, nh / share)).swap_dims(2, 3));
                    let mut scores = q.matmul(k);
                    if let (Some((s, _)), Some(table)) = (window, table) {
                        // Entry (yp − yq + s − 1)·(2s − 1) + (xp − xq + s − 1) of the table.
                        let index: Vec<i64> = (0..tokens * tokens)
                            .map(|pq| {
                                let (p, q) = (pq / tokens, pq % tokens);
                                ((p / s + s - 1 - q / s) * (2 * s - 1) + (p % s + s - 1 - q % s)) as i64
                            })
                            .collect();
                        let index = Tensor::<B, 1, burn::tensor::Int>::from_data(
                            burn::tensor::TensorData::new(index, [tokens * tokens]),
                            &device,
                        );
                        scores = scores + table.narrow(0, 0, nh).select(1, index).reshape([1, nh, tokens, tokens]);
                        if shift != [0, 0] {
                            // Regions of the rolled map: cut at side − size and side − shift.
                            let region = |v: usize, side: usize, t: usize| {
                                if t == 0 || v < side - s { 0 } else if v < side - t { 1 } else { 2 }
                            };
                            let mut mask = Vec::with_capacity(grid[0] * grid[1] * tokens * tokens);
                            for b in 0..grid[0] * grid[1] {
                                let label = |t: usize| {
                                    let (y, x) = ((b / grid[1]) * s + t / s, (b % grid[1]) * s + t % s);
                                    3 * region(y, h, shift[0]) + region(x, w, shift[1])
                                };
                                mask.extend((0..tokens * tokens).map(|pq| {
                                    if label(pq / tokens) == label(pq % tokens) { 0.0f32 } else { -100.0 }
                                }));
                            }
                            let windows = grid[0] * grid[1];
                            let mask = Tensor::<B, 5>::from_data(
                                burn::tensor::TensorData::new(mask, [1, windows, 1, tokens, tokens]),
                                &device,
                            );
                            let grouped: Tensor<B, 5> = scores.reshape([n, windows, nh, tokens, tokens]);
                            scores = (grouped + mask).reshape([batch, nh, tokens, tokens]);
                        }
                    }
                    let y = burn::tensor::activation::softmax(scores, 3).matmul(v);
                    let y = if by_count { y.permute([0, 3, 1, 2]) } else { y.swap_dims(2, 3) };
                    let y: Tensor<B, 6> = y.reshape([n, grid[0], grid[1], c, size[0], size[1]]);
                    let y = y.permute([0, 3, 1, 4, 2, 5]).reshape([n, c, h, w]);
                    y.roll(&[-(shift[0] as i64), -(shift[1] as i64)], &[2, 3])
                }
            },
            Helper::Tokens => quote! {
                /// The map's positions as one row of tokens: `[N, C, H, W]` → `[N, C, 1, H·W]`.
                fn tokens<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
                    let [n, c, h, w] = x.dims();
                    x.reshape([n, c, 1, h * w])
                }
            },
            Helper::Token => quote! {
                /// Position `index` of the map (row by row) as a 1×1 map.
                fn token<B: Backend>(x: Tensor<B, 4>, index: usize) -> Tensor<B, 4> {
                    let [n, c, h, w] = x.dims();
                    x.reshape([n, c, h * w, 1]).narrow(2, index, 1)
                }
            },
            Helper::Round(r) => rounding(r),
        }
    }
}

fn conv() -> TokenStream {
    quote! {
        /// A convolution that runs on the active slice `weight[..out, ..in/groups]`.
        #[derive(Module, Debug)]
        pub struct SlimConv2d<B: Backend> {
            /// `[out, in / groups, kh, kw]` at full width.
            pub weight: Param<Tensor<B, 4>>,
            pub bias: Option<Param<Tensor<B, 1>>>,
            pub stride: [usize; 2],
            pub padding: [usize; 2],
            pub dilation: [usize; 2],
            /// A fixed number of groups (1: dense); ignored when `group_width` is set.
            pub groups: usize,
            /// Groups of this many channels (1: depthwise); 0 for a fixed group count.
            pub group_width: usize,
        }

        impl<B: Backend> SlimConv2d<B> {
            /// A dense conv with stride 1 and no bias; Kaiming-normal weights (fan-out, as
            /// torchvision).
            pub fn new(shape: [usize; 4], padding: [usize; 2], device: &B::Device) -> Self {
                let std = (2.0 / (shape[0] * shape[2] * shape[3]) as f64).sqrt();
                let weight = Tensor::random(shape, burn::tensor::Distribution::Normal(0.0, std), device);
                SlimConv2d {
                    weight: Param::from_tensor(weight),
                    bias: None,
                    stride: [1, 1],
                    padding,
                    dilation: [1, 1],
                    groups: 1,
                    group_width: 0,
                }
            }

            pub fn with_stride(self, stride: [usize; 2]) -> Self {
                SlimConv2d { stride, ..self }
            }

            pub fn with_dilation(self, dilation: [usize; 2]) -> Self {
                SlimConv2d { dilation, ..self }
            }

            pub fn with_groups(self, groups: usize) -> Self {
                SlimConv2d { groups, ..self }
            }

            /// Groups of `k` channels: `in / k` groups at every width (1: depthwise).
            pub fn with_group_width(self, group_width: usize) -> Self {
                SlimConv2d { group_width, ..self }
            }

            /// A zero bias.
            pub fn with_bias(self, device: &B::Device) -> Self {
                let out = self.weight.dims()[0];
                SlimConv2d { bias: Some(Param::from_tensor(Tensor::zeros([out], device))), ..self }
            }

            pub fn forward(&self, x: Tensor<B, 4>, out: usize) -> Tensor<B, 4> {
                let in_c = x.dims()[1];
                let [_, full_per_group, kh, kw] = self.weight.dims();
                let (groups, per_group) = match in_c.checked_div(self.group_width) {
                    Some(groups) => (groups.max(1), full_per_group),
                    None => (self.groups, in_c / self.groups),
                };
                let weight = self.weight.val().slice([0..out, 0..per_group, 0..kh, 0..kw]);
                let bias = self.bias.as_ref().map(|b| b.val().slice(0..out));
                let options = burn::tensor::ops::ConvOptions::new(self.stride, self.padding, self.dilation, groups);
                burn::tensor::module::conv2d(x, weight, bias, options)
            }
        }
    }
}

fn conv_transpose() -> TokenStream {
    quote! {
        /// A transposed convolution on the active slice `weight[..in, ..out]`.
        #[derive(Module, Debug)]
        pub struct SlimConvTranspose2d<B: Backend> {
            /// `[in, out, kh, kw]` at full width (PyTorch's layout).
            pub weight: Param<Tensor<B, 4>>,
            pub bias: Option<Param<Tensor<B, 1>>>,
            pub stride: [usize; 2],
            pub padding: [usize; 2],
            pub output_padding: [usize; 2],
        }

        impl<B: Backend> SlimConvTranspose2d<B> {
            /// Kaiming-normal weights over the `out·kh·kw` each input pixel feeds; a zero bias.
            pub fn new(
                shape: [usize; 4],
                stride: [usize; 2],
                padding: [usize; 2],
                output_padding: [usize; 2],
                bias: bool,
                device: &B::Device,
            ) -> Self {
                let std = (2.0 / (shape[1] * shape[2] * shape[3]) as f64).sqrt();
                let weight = Tensor::random(shape, burn::tensor::Distribution::Normal(0.0, std), device);
                SlimConvTranspose2d {
                    weight: Param::from_tensor(weight),
                    bias: bias.then(|| Param::from_tensor(Tensor::zeros([shape[1]], device))),
                    stride,
                    padding,
                    output_padding,
                }
            }

            pub fn forward(&self, x: Tensor<B, 4>, out: usize) -> Tensor<B, 4> {
                let in_c = x.dims()[1];
                let [_, _, kh, kw] = self.weight.dims();
                let weight = self.weight.val().slice([0..in_c, 0..out, 0..kh, 0..kw]);
                let bias = self.bias.as_ref().map(|b| b.val().slice(0..out));
                let options = burn::tensor::ops::ConvTransposeOptions::new(self.stride, self.padding, self.output_padding, [1, 1], 1);
                burn::tensor::module::conv_transpose2d(x, weight, bias, options)
            }
        }
    }
}

fn linear() -> TokenStream {
    quote! {
        /// A linear layer on the active slice `weight[..in, ..out]`, on `[N, C, 1, 1]` maps.
        #[derive(Module, Debug)]
        pub struct SlimLinear<B: Backend> {
            /// `[in, out]` at full width (Burn's layout: `y = x W + b`).
            pub weight: Param<Tensor<B, 2>>,
            pub bias: Option<Param<Tensor<B, 1>>>,
        }

        impl<B: Backend> SlimLinear<B> {
            /// PyTorch's default: uniform in ±1/sqrt(in) for weight and bias.
            pub fn new(in_c: usize, out: usize, bias: bool, device: &B::Device) -> Self {
                let bound = 1.0 / (in_c as f64).sqrt();
                let uniform = burn::tensor::Distribution::Uniform(-bound, bound);
                SlimLinear {
                    weight: Param::from_tensor(Tensor::random([in_c, out], uniform, device)),
                    bias: bias.then(|| Param::from_tensor(Tensor::random([out], uniform, device))),
                }
            }

            pub fn forward(&self, x: Tensor<B, 4>, out: usize) -> Tensor<B, 4> {
                let [n, c, _, _] = x.dims();
                let weight = self.weight.val().slice([0..c, 0..out]);
                let bias = self.bias.as_ref().map(|b| b.val().slice(0..out));
                burn::tensor::module::linear(x.reshape([n, c]), weight, bias).reshape([n, out, 1, 1])
            }
        }
    }
}

fn batch_norm() -> TokenStream {
    quote! {
        /// Batch norm on the active channels.
        #[derive(Module, Debug)]
        pub struct SlimBatchNorm<B: Backend> {
            pub gamma: Param<Tensor<B, 1>>,
            pub beta: Param<Tensor<B, 1>>,
            /// Running mean and (unbiased) variance; the first `c` entries are used at `c`
            /// channels, so store the statistics calibrated at the width being run.
            pub mean: burn::module::RunningState<Tensor<B, 1>>,
            pub var: burn::module::RunningState<Tensor<B, 1>>,
        }

        impl<B: Backend> SlimBatchNorm<B> {
            /// PyTorch's epsilon.
            pub const EPS: f64 = 1e-5;

            pub fn new(c: usize, device: &B::Device) -> Self {
                SlimBatchNorm {
                    gamma: Param::from_tensor(Tensor::ones([c], device)),
                    beta: Param::from_tensor(Tensor::zeros([c], device)),
                    mean: burn::module::RunningState::new(Tensor::zeros([c], device)),
                    var: burn::module::RunningState::new(Tensor::ones([c], device)),
                }
            }

            /// On an autodiff backend (training), normalises with the batch's statistics, as
            /// slimmable training does, and leaves the stored ones alone (calibrate them per
            /// width afterwards); otherwise uses the stored statistics.
            pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
                let c = x.dims()[1];
                let (mean, var) = if B::ad_enabled(&x.device()) {
                    let mean = x.clone().mean_dims(&[0, 2, 3]);
                    let var = (x.clone() - mean.clone()).square().mean_dims(&[0, 2, 3]);
                    (mean.reshape([c]), var.reshape([c]))
                } else {
                    (self.mean.value().slice(0..c), self.var.value().slice(0..c))
                };
                let scale = self.gamma.val().slice(0..c) / var.add_scalar(Self::EPS).sqrt();
                let shift = self.beta.val().slice(0..c) - mean * scale.clone();
                x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
            }
        }
    }
}

fn layer_norm() -> TokenStream {
    quote! {
        /// Layer norm over the active channels at each position (ConvNeXt's `LayerNorm2d`).
        #[derive(Module, Debug)]
        pub struct SlimLayerNorm<B: Backend> {
            pub gamma: Param<Tensor<B, 1>>,
            pub beta: Param<Tensor<B, 1>>,
            pub eps: f64,
        }

        impl<B: Backend> SlimLayerNorm<B> {
            pub fn new(c: usize, eps: f64, device: &B::Device) -> Self {
                SlimLayerNorm {
                    gamma: Param::from_tensor(Tensor::ones([c], device)),
                    beta: Param::from_tensor(Tensor::zeros([c], device)),
                    eps,
                }
            }

            pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
                let c = x.dims()[1];
                let mean = x.clone().mean_dim(1);
                let centered = x - mean;
                let var = centered.clone().square().mean_dim(1);
                let y = centered / var.add_scalar(self.eps).sqrt();
                y * self.gamma.val().slice(0..c).reshape([1, c, 1, 1]) + self.beta.val().slice(0..c).reshape([1, c, 1, 1])
            }
        }
    }
}

fn layer_scale() -> TokenStream {
    quote! {
        /// A learnable per-channel multiplier on the active channels (ConvNeXt's layer scale).
        #[derive(Module, Debug)]
        pub struct SlimLayerScale<B: Backend> {
            pub gamma: Param<Tensor<B, 1>>,
        }

        impl<B: Backend> SlimLayerScale<B> {
            pub fn new(c: usize, init: f64, device: &B::Device) -> Self {
                SlimLayerScale { gamma: Param::from_tensor(Tensor::full([c], init, device)) }
            }

            pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
                let c = x.dims()[1];
                x * self.gamma.val().slice(0..c).reshape([1, c, 1, 1])
            }
        }
    }
}

fn table() -> TokenStream {
    quote! {
        /// A learned table `[C, P]`, one vector per position, used on its leading channels:
        /// a class token (`P = 1`, put before the row of tokens) or a position embedding
        /// (`P = H·W`, added to the map).
        #[derive(Module, Debug)]
        pub struct SlimTable<B: Backend> {
            pub weight: Param<Tensor<B, 2>>,
        }

        impl<B: Backend> SlimTable<B> {
            /// Zeros (a class token) when `std` is 0, else N(0, std²) (a position embedding).
            pub fn new(c: usize, positions: usize, std: f64, device: &B::Device) -> Self {
                let weight = if std == 0.0 {
                    Tensor::zeros([c, positions], device)
                } else {
                    Tensor::random([c, positions], burn::tensor::Distribution::Normal(0.0, std), device)
                };
                SlimTable { weight: Param::from_tensor(weight) }
            }

            /// The class token before a row of tokens `[N, C, 1, L]` → `[N, C, 1, L + 1]`.
            pub fn prepend(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
                let [n, c, _, _] = x.dims();
                let token = self.weight.val().slice([0..c, 0..1]).reshape([1, c, 1, 1]).expand([n, c, 1, 1]);
                Tensor::cat(vec![token, x], 3)
            }

            /// The embedding added to the map, one vector per position.
            pub fn add(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
                let [_, c, h, w] = x.dims();
                x + self.weight.val().slice([0..c, 0..h * w]).reshape([1, c, h, w])
            }
        }
    }
}

fn activation(a: Activation) -> TokenStream {
    let name = Helper::Act(a).name();
    let body = match a {
        Activation::Relu => quote!(burn::tensor::activation::relu(x)),
        Activation::Relu6 => quote!(x.clamp(0.0, 6.0)),
        Activation::Hswish => quote!(x.clone() * x.add_scalar(3.0).clamp(0.0, 6.0).div_scalar(6.0)),
        Activation::Swish => quote!(x.clone() * burn::tensor::activation::sigmoid(x)),
        Activation::Sigmoid => quote!(burn::tensor::activation::sigmoid(x)),
        Activation::Hsigmoid => quote!(x.add_scalar(3.0).clamp(0.0, 6.0).div_scalar(6.0)),
        Activation::Gelu => quote!(burn::tensor::activation::gelu(x)),
    };
    let doc = match a {
        Activation::Relu => " max(x, 0)",
        Activation::Relu6 => " min(max(x, 0), 6)",
        Activation::Hswish => " x · relu6(x + 3) / 6",
        Activation::Swish => " x · sigmoid(x)",
        Activation::Sigmoid => " 1 / (1 + e^−x)",
        Activation::Hsigmoid => " relu6(x + 3) / 6",
        Activation::Gelu => " x · (1 + erf(x / √2)) / 2",
    };
    quote! {
        #[doc = #doc]
        fn #name<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
            #body
        }
    }
}

/// The rounding of a ratio width (an SE squeeze), as slimc's `Rounding::apply`.
fn rounding(r: Rounding) -> TokenStream {
    match r {
        Rounding::Floor => quote! {
            /// `int(v)`, with slack for products such as 0.29 × 100.
            fn floor_width(v: f64) -> usize {
                (v + 1e-6).floor().max(0.0) as usize
            }
        },
        Rounding::Nearest => quote! {
            /// Round half to even, as Python's `round`.
            fn nearest_width(v: f64) -> usize {
                v.round_ties_even().max(0.0) as usize
            }
        },
        Rounding::MakeDivisible(_) => quote! {
            /// MobileNet's `_make_divisible`: the nearest multiple of `d`, at least `d`, never
            /// more than 10 % below `v`.
            fn make_divisible(v: f64, d: usize) -> usize {
                let d = d.max(1) as f64;
                let mut n = d.max(((v + d / 2.0 + 1e-6) / d).floor() * d);
                if n < 0.9 * v - 1e-6 {
                    n += d;
                }
                n as usize
            }
        },
    }
}
