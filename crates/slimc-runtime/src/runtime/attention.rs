//! Attention and tokens: what [`crate::ir::Op::Attend`], [`crate::ir::Op::Tokens`],
//! [`crate::ir::Op::ClassToken`], [`crate::ir::Op::PosEmbed`] and [`crate::ir::Op::Token`]
//! specify.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::ir::{Heads, Window};

/// Attention on `[N, C, H, W]` maps as [`crate::ir::Op::Attend`] specifies: heads split by `heads`,
/// `share` query heads per key/value head, Swin's (shifted) windows with the relative
/// position bias `table` (`[heads, (2·size − 1)²]`, its leading rows used) when `window`
/// is given. Burn differentiates it.
pub fn attend<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    (heads, share, window): (Heads, u32, Option<Window>),
    table: Option<Tensor<B, 2>>,
) -> Tensor<B, 4> {
    let [n, c, h, w] = q.dims();
    let (nh, d) = heads.split(c as u32);
    let (nh, d, share) = (nh as usize, d as usize, share as usize);
    let device = q.device();
    let (size, shift) = match window {
        Some(win) => ([win.size as usize; 2], [win.shift_on(h), win.shift_on(w)]),
        None => ([h, w], [0, 0]),
    };
    let grid = [h / size[0], w / size[1]];
    let (batch, tokens) = (n * grid[0] * grid[1], size[0] * size[1]);
    let by_count = matches!(heads, Heads::Count(_));
    // [N, C, H, W] → [N·windows, heads, d, L]: rolled, cut into windows, split into heads.
    let split = |x: Tensor<B, 4>, heads: usize| -> Tensor<B, 4> {
        let c = x.dims()[1];
        // Burn's roll by `s` reads `x[i + s]` (torch.roll's by `−s`).
        let x = if shift == [0, 0] { x } else { x.roll(&[shift[0] as i64, shift[1] as i64], &[2, 3]) };
        let x = if window.is_some() {
            let x: Tensor<B, 6> = x.reshape([n, c, grid[0], size[0], grid[1], size[1]]);
            x.permute([0, 2, 4, 1, 3, 5]).reshape([batch, c, tokens])
        } else {
            x.reshape([batch, c, tokens])
        };
        if by_count {
            x.reshape([batch, d, heads, tokens]).swap_dims(1, 2)
        } else {
            x.reshape([batch, heads, d, tokens])
        }
    };
    // Key/value head g serves query heads g·share .. (g+1)·share.
    let repeat = |x: Tensor<B, 4>| -> Tensor<B, 4> {
        if share == 1 {
            return x;
        }
        let x: Tensor<B, 5> = x.unsqueeze_dim(2);
        x.expand([batch, nh / share, share, d, tokens]).reshape([batch, nh, d, tokens])
    };
    // The scale on q, the smaller tensor whenever there are more positions than channels.
    let q = split(q.mul_scalar(1.0 / (d as f64).sqrt()), nh).swap_dims(2, 3);
    let (k, v) = (repeat(split(k, nh / share)), repeat(split(v, nh / share)).swap_dims(2, 3));
    let mut scores = q.matmul(k);
    if let (Some(win), Some(table)) = (window, table) {
        let index = win.relative_index().into_iter().map(|i| i as i64).collect::<Vec<_>>();
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [tokens * tokens]), &device);
        let bias = table.narrow(0, 0, nh).select(1, index).reshape([1, nh, tokens, tokens]);
        scores = scores + bias;
        if let Some(mask) = win.mask([h, w]) {
            let windows = grid[0] * grid[1];
            let mask = Tensor::<B, 5>::from_data(TensorData::new(mask, [1, windows, 1, tokens, tokens]), &device);
            let grouped: Tensor<B, 5> = scores.reshape([n, windows, nh, tokens, tokens]);
            scores = (grouped + mask).reshape([batch, nh, tokens, tokens]);
        }
    }
    // [N·windows, heads, L, d] back to [N, C, H, W].
    let y = softmax(scores, 3).matmul(v);
    let y = if by_count { y.permute([0, 3, 1, 2]) } else { y.swap_dims(2, 3) }.reshape([batch, c, tokens]);
    let y = if window.is_some() {
        let y: Tensor<B, 6> = y.reshape([n, grid[0], grid[1], c, size[0], size[1]]);
        y.permute([0, 3, 1, 4, 2, 5]).reshape([n, c, h, w])
    } else {
        y.reshape([n, c, h, w])
    };
    if shift == [0, 0] {
        y
    } else {
        y.roll(&[-(shift[0] as i64), -(shift[1] as i64)], &[2, 3])
    }
}

/// `[N, C, H, W] → [N, C, 1, H·W]`.
pub fn tokens<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, 1, h * w])
}

/// Position `index` (row by row) as a 1×1 map.
pub fn token<B: Backend>(x: Tensor<B, 4>, index: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w, 1]).narrow(2, index, 1)
}

/// The class token's leading `C` channels (`table` is `[C_full, 1]`) before the row.
pub fn class_token<B: Backend>(x: Tensor<B, 4>, table: Tensor<B, 2>) -> Tensor<B, 4> {
    let [n, c, _, _] = x.dims();
    let token = table.narrow(0, 0, c).reshape([1, c, 1, 1]).expand([n, c, 1, 1]);
    Tensor::cat(vec![token, x], 3)
}

/// The position embedding's leading `C` channels (`table` is `[C_full, H·W]`) added.
pub fn pos_embed<B: Backend>(x: Tensor<B, 4>, table: Tensor<B, 2>) -> Tensor<B, 4> {
    let [_, c, h, w] = x.dims();
    x + table.narrow(0, 0, c).reshape([1, c, h, w])
}
