//! Attention and tokens: what [`crate::ir::Op::Attend`], [`crate::ir::Op::Tokens`],
//! [`crate::ir::Op::ClassToken`], [`crate::ir::Op::PosEmbed`] and [`crate::ir::Op::Token`]
//! specify.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Multi-head scaled dot-product attention on `[N, C, H, W]` maps: channels
/// `h·d .. (h+1)·d` are head `h` (at a narrower width the inputs hold a prefix of whole
/// heads); per head `softmax(Q Kᵀ / √d) V` over the H·W tokens. Burn differentiates it.
pub fn attend<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, head_dim: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = q.dims();
    // [N, heads, d, HW]: q and v as rows of tokens, k as columns.
    let shape = [n, c / head_dim, head_dim, h * w];
    let (q, k, v) = (q.reshape(shape).swap_dims(2, 3), k.reshape(shape), v.reshape(shape).swap_dims(2, 3));
    let scores = q.matmul(k).mul_scalar(1.0 / (head_dim as f64).sqrt());
    softmax(scores, 3).matmul(v).swap_dims(2, 3).reshape([n, c, h, w])
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
