//! Reordering channels by importance (`--order`): a permutation of each search
//! dimension's channels at full width, carried through every layer the dimension reaches,
//! so that the full-width network computes the same function and a narrower width keeps
//! the channels ranked first. The weights are scored and permuted by the runtime; this
//! module decides which dimensions can be reordered and what order each layer's output
//! channels end up in.
//!
//! A permutation is a list `order[new] = old` of full-width channel indices. A layer's
//! output order follows from its op and its inputs' orders; where the op cannot carry a
//! reordering (a grouped conv, attention heads, a channel split across its parts, an add
//! of differently ordered inputs) or a layer of a dimension would end up ordered unlike the
//! dimension, the dimensions involved keep their order ([`Reordering::kept`]).

use super::{Groups, Network, Op, Width};

/// Why a layer keeps the dimensions it touches in their declared order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("layer `{layer}`: {why}")]
pub struct Kept {
    /// The layer's name.
    pub layer: String,
    pub why: &'static str,
    /// The search dimensions it involves (its own width's and its inputs').
    pub dims: Vec<usize>,
}

/// The outcome of [`Network::reorder`].
#[derive(Clone, Debug, PartialEq)]
pub struct Reordering {
    /// Per search dimension, its new order (`order[new] = old`); `None` where it keeps its own.
    pub dims: Vec<Option<Vec<u32>>>,
    /// Per layer (indexed like `layers`), the order of its output channels at full width.
    pub layers: Vec<Vec<u32>>,
    /// The dimensions left in order, each with the first layer that forbade reordering it.
    pub kept: Vec<(usize, Kept)>,
}

fn identity(n: u32) -> Vec<u32> {
    (0..n).collect()
}

fn is_identity(order: &[u32]) -> bool {
    order.iter().enumerate().all(|(i, &v)| i == v as usize)
}

/// Channels `[start, end)` of an input in order `input`, renumbered from 0; `None` when
/// the order brought channels from outside the range into it (a split's part, a slice).
fn piece(input: &[u32], start: u32, end: u32) -> Option<Vec<u32>> {
    let piece = input.get(start as usize..end as usize).unwrap_or(&[]);
    piece.iter().all(|&c| (start..end).contains(&c)).then(|| piece.iter().map(|&c| c - start).collect())
}

impl Network {
    /// Orders each search dimension's channels by `scores` (per dimension, one score per
    /// full-width channel; higher first, ties in declared order) where the network lets
    /// that dimension be reordered, and derives every layer's output order from them.
    ///
    /// A zero-padded shortcut (`zeropad`) copies its input's channels to the front of a
    /// wider dimension: that dimension's first channels keep the input dimension's order,
    /// and only the channels after them are ranked. Dimensions that cannot be reordered
    /// are found by trying: a conflict at some layer removes the dimensions it involves,
    /// and the rest are tried again (with every dimension kept nothing conflicts).
    pub fn reorder(&self, scores: &[Vec<f64>]) -> Reordering {
        let dims = &self.space.dims;
        let tied = self.padded_from();
        let mut free = vec![true; dims.len()];
        let mut kept = Vec::new();
        loop {
            let orders = self.rank(scores, &free, &tied);
            match self.carry(&orders) {
                Ok(layers) => return Reordering { dims: orders, layers, kept },
                Err(conflict) => {
                    let mut removed = false;
                    for &d in &conflict.dims {
                        if std::mem::replace(&mut free[d], false) {
                            kept.push((d, conflict.clone()));
                            removed = true;
                        }
                    }
                    if !removed {
                        // Unreachable: with every dimension in order, every layer is.
                        let layers = self.layers.iter().map(|(_, l)| identity(l.channels)).collect();
                        return Reordering { dims: vec![None; dims.len()], layers, kept };
                    }
                }
            }
        }
    }

    /// For each dimension, the dimension a zero-padded shortcut copies to its front.
    fn padded_from(&self) -> Vec<Option<usize>> {
        let mut tied = vec![None; self.space.dims.len()];
        for (_, l) in self.layers.iter() {
            if let (Op::ZeroPad, &Width::Dim(j), Some(&input)) = (&l.op, &l.width, l.inputs.first()) {
                if let Width::Dim(i) = self.layers[input].width {
                    if i != j {
                        tied[j] = Some(i);
                    }
                }
            }
        }
        tied
    }

    /// Each dimension's order: `None` for the ones kept; the others ranked by score after
    /// the prefix a zero-padded shortcut fixes.
    fn rank(&self, scores: &[Vec<f64>], free: &[bool], tied: &[Option<usize>]) -> Vec<Option<Vec<u32>>> {
        let dims = &self.space.dims;
        let mut orders: Vec<Option<Vec<u32>>> = vec![None; dims.len()];
        let mut done = vec![false; dims.len()];
        // Sources first; a cycle of ties (never declared by sema) leaves its dims in order.
        for _ in 0..dims.len() {
            for j in 0..dims.len() {
                if done[j] || tied[j].is_some_and(|i| !done[i]) {
                    continue;
                }
                done[j] = true;
                if !free[j] {
                    continue;
                }
                let base = dims[j].base;
                let mut order: Vec<u32> = match tied[j] {
                    Some(i) => orders[i].clone().unwrap_or_else(|| identity(dims[i].base)),
                    None => Vec::new(),
                };
                order.truncate(base as usize);
                let mut rest: Vec<u32> = (order.len() as u32..base).collect();
                let score = |c: u32| scores.get(j).and_then(|s| s.get(c as usize)).copied().unwrap_or(0.0);
                rest.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
                order.extend(rest);
                orders[j] = (!is_identity(&order)).then_some(order);
            }
        }
        orders
    }

    /// Every layer's output order under the dimensions' `orders`, or the first layer that
    /// cannot carry them.
    fn carry(&self, orders: &[Option<Vec<u32>>]) -> Result<Vec<Vec<u32>>, Kept> {
        let shapes = self.layer_shapes(&self.full_width());
        let mut out: Vec<Vec<u32>> = Vec::with_capacity(self.layers.len());
        for (id, l) in self.layers.iter() {
            let conflict = |why: &'static str| {
                let mut dims = Vec::new();
                l.width.dims(&mut dims);
                for i in &l.inputs {
                    self.layers[*i].width.dims(&mut dims);
                }
                dims.sort_unstable();
                dims.dedup();
                Kept { layer: l.name.clone(), why, dims }
            };
            let input = |k: usize| l.inputs.get(k).map_or(&[][..], |i| out[i.index()].as_slice());
            let declared = self.declared(&l.width, orders);
            let mine = || declared.clone().unwrap_or_else(|| identity(l.channels));
            let order = match &l.op {
                Op::Input => identity(l.channels),
                Op::Conv { groups: Groups::Depthwise, .. } => input(0).to_vec(),
                Op::Conv { .. } if shapes[id.index()].groups > 1 => {
                    if !is_identity(input(0)) || !is_identity(&mine()) {
                        return Err(conflict("a grouped conv keeps its channels in place"));
                    }
                    identity(l.channels)
                }
                Op::Conv { .. } | Op::ConvTranspose { .. } | Op::Linear { .. } => mine(),
                Op::Attend { .. } => {
                    if !l.inputs.iter().all(|i| is_identity(&out[i.index()])) {
                        return Err(conflict("attention keeps its heads' channels in place"));
                    }
                    identity(l.channels)
                }
                Op::BatchNorm
                | Op::Act(_)
                | Op::MaxPool { .. }
                | Op::AvgPool { .. }
                | Op::GlobalAvgPool
                | Op::AdaptiveAvgPool { .. }
                | Op::LayerNorm { .. }
                | Op::LayerScale { .. }
                | Op::Upsample { .. }
                | Op::Tokens
                | Op::ClassToken
                | Op::PosEmbed { .. }
                | Op::Token { .. }
                | Op::Dropout { .. }
                | Op::DropPath { .. }
                | Op::Subsample { .. } => input(0).to_vec(),
                Op::Flatten => {
                    let hw = l.inputs.first().map_or(1, |i| {
                        let [h, w] = self.layers[*i].hw;
                        h * w
                    });
                    input(0).iter().flat_map(|&c| (0..hw).map(move |p| c * hw + p)).collect()
                }
                Op::Add | Op::Mul => {
                    let full: Vec<&Vec<u32>> =
                        l.inputs.iter().map(|i| &out[i.index()]).filter(|o| o.len() == l.channels as usize).collect();
                    if full.windows(2).any(|w| w[0] != w[1]) {
                        return Err(conflict("its inputs' channels would be ordered differently"));
                    }
                    full.first().map_or_else(|| identity(l.channels), |o| o.to_vec())
                }
                Op::Concat => {
                    let mut order = Vec::with_capacity(l.channels as usize);
                    for i in &l.inputs {
                        let offset = order.len() as u32;
                        order.extend(out[i.index()].iter().map(|&c| c + offset));
                    }
                    order
                }
                Op::Split { part, parts } => {
                    let n = input(0).len() as u32 / (*parts).max(1);
                    piece(input(0), part * n, part * n + n)
                        .ok_or_else(|| conflict("a split's part would take channels of another part"))?
                }
                // Its input is fixed, so in its declared order; checked all the same.
                Op::Slice { start, end } => piece(input(0), *start, *end)
                    .ok_or_else(|| conflict("a slice would take channels from outside it"))?,
                Op::Shuffle { groups } => {
                    let (g, n) = (*groups.max(&1), input(0).len() as u32);
                    let per = n / g;
                    // Output j reads input (j % g)·per + j / g.
                    let src = |j: u32| (j % g) * per + j / g;
                    let dst = |q: u32| (q % per.max(1)) * g + q / per.max(1);
                    (0..n).map(|j| dst(input(0)[src(j) as usize])).collect()
                }
                // The appended channels are zeros: any order of them is the same tensor.
                Op::ZeroPad => {
                    let n = input(0).len();
                    match &declared {
                        Some(d) if d.len() >= n && d[..n] == *input(0) && d[n..].iter().all(|&c| c as usize >= n) => {
                            d.clone()
                        }
                        _ => {
                            let mut order = input(0).to_vec();
                            order.extend(n as u32..l.channels);
                            order
                        }
                    }
                }
            };
            if order.len() != l.channels as usize {
                return Err(conflict("its channel count does not follow its inputs'"));
            }
            if declared.as_ref().is_some_and(|d| *d != order) {
                return Err(conflict("its channels would be ordered unlike its dimension's"));
            }
            debug_assert_eq!(id.index(), out.len());
            out.push(order);
        }
        Ok(out)
    }

    /// The order a width's channels take from the dimensions' orders, where the width says
    /// which channels they are (a dimension, a fixed count, a concatenation of those).
    fn declared(&self, width: &Width, orders: &[Option<Vec<u32>>]) -> Option<Vec<u32>> {
        match width {
            Width::Dim(i) => {
                Some(orders.get(*i).cloned().flatten().unwrap_or_else(|| identity(self.space.dims[*i].base)))
            }
            Width::Fixed(n) => Some(identity(*n)),
            Width::Sum(items) => {
                let mut order = Vec::new();
                for w in items {
                    let offset = order.len() as u32;
                    order.extend(self.declared(w, orders)?.into_iter().map(|c| c + offset));
                }
                Some(order)
            }
            Width::Part { .. } | Width::Ratio { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{compile, Options};

    fn net(src: &str) -> crate::ir::Network {
        compile(src, "t.slim", &Options::default()).unwrap_or_else(|d| panic!("{}", d.render())).remove(0)
    }

    /// Scores that rank every dimension's channels in reverse.
    fn reversed(n: &crate::ir::Network) -> Vec<Vec<f64>> {
        n.space.dims.iter().map(|d| (0..d.base).map(f64::from).collect()).collect()
    }

    #[test]
    fn a_zero_padded_shortcut_keeps_the_narrower_order_in_front() {
        let n = net("network t {
            input 3 x 8 x 8
            stem = conv(4, k=3) -> bn -> relu
            stage = res(8)
            head = avgpool -> linear(2)
        }
        block res(c) {
            main = in -> conv(c, k=3) -> bn
            skip = in -> zeropad(c)
            out = relu(main + skip)
        }");
        let r = n.reorder(&reversed(&n));
        assert!(r.kept.is_empty(), "{:?}", r.kept);
        let narrow = (0..n.space.dims.len()).find(|&j| n.space.dims[j].base == 4).unwrap();
        let wide = (0..n.space.dims.len()).find(|&j| n.space.dims[j].base == 8).unwrap();
        assert_eq!(r.dims[narrow], Some(vec![3, 2, 1, 0]));
        // The wider dimension: the narrower one's order, then its own channels ranked.
        assert_eq!(r.dims[wide], Some(vec![3, 2, 1, 0, 7, 6, 5, 4]));
    }

    #[test]
    fn a_grouped_conv_keeps_its_dimensions_and_says_where() {
        let n = net("network t {
            input 3 x 8 x 8
            stem = conv(8, k=1) -> bn -> relu
            stage = conv(8, k=3, groups=2) -> bn -> relu -> conv(4, k=1) -> bn -> relu
            head = avgpool -> linear(2)
        }");
        let r = n.reorder(&reversed(&n));
        assert!(!r.kept.is_empty());
        assert!(r.kept.iter().all(|(_, k)| k.why.contains("grouped")), "{:?}", r.kept);
        // The dimension after the grouped conv's is free.
        let (last, _) = n.layers.iter().filter(|(_, l)| l.op.kind() == "conv" && l.channels == 4).last().unwrap();
        assert_eq!(r.layers[last.index()], vec![3, 2, 1, 0]);
    }
}
