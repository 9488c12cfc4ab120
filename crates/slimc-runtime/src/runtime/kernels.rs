//! Convolution on f32 host buffers by im2col + gemm, the batch split over rayon threads.
//! Burn's generic conv gradients (a conv with the batch as channels for the weight, a
//! transposed conv for the input) run several times slower than this on flex, and the
//! weight gradient is most of a training step, so the flex backend routes here
//! (`backend.rs`). Layouts are NCHW, weights `[out, in / groups, kh, kw]`, all contiguous.
//!
//! A conv whose groups hold one input channel each (depthwise, with any channel
//! multiplier) has a 1-row column matrix per group, where a gemm call costs more than its
//! arithmetic: those run as direct loops over kernel taps instead ([`Geometry::depthwise`]).

use gemm::Parallelism;
use rayon::prelude::*;

/// The shape of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub in_c: usize,
    pub in_hw: [usize; 2],
    pub out_c: usize,
    pub kernel: [usize; 2],
    pub out_hw: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Geometry {
    fn in_per_group(&self) -> usize {
        self.in_c / self.groups
    }
    fn out_per_group(&self) -> usize {
        self.out_c / self.groups
    }
    fn in_plane(&self) -> usize {
        self.in_hw[0] * self.in_hw[1]
    }
    fn out_plane(&self) -> usize {
        self.out_hw[0] * self.out_hw[1]
    }
    /// Rows of the column matrix: one per (input channel of a group, kernel tap).
    fn col_rows(&self) -> usize {
        self.in_per_group() * self.kernel[0] * self.kernel[1]
    }
    /// A 1×1, stride-1, unpadded conv reads its input as the column matrix itself.
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }
    pub fn weight_len(&self) -> usize {
        self.out_c * self.col_rows()
    }
    /// One input channel per group: every output channel reads a single input plane.
    fn depthwise(&self) -> bool {
        self.in_per_group() == 1
    }
}

/// A strided view of a matrix inside a slice.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }
    fn t(self) -> Mat<'a> {
        Mat { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`), `dst` row-major with `a.rows` rows.
fn matmul(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    assert_eq!(a.cols, b.rows, "matmul: inner dimensions differ");
    assert!(a.in_bounds() && b.in_bounds(), "matmul: operand outside its buffer");
    assert!(dst.len() >= a.rows * b.cols, "matmul: destination too small");
    if a.rows == 0 || b.cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            dst[..a.rows * b.cols].fill(0.0);
        }
        return;
    }
    // SAFETY: the three asserts above keep every index gemm touches inside the slices
    // (`dst` is `a.rows × b.cols` row-major), and `dst` is borrowed mutably, so it
    // cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst.as_mut_ptr(),
            1,
            b.cols as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Output positions `o` along one axis whose input `o·stride + offset − padding` lies in
/// `0..len`.
fn valid(offset: usize, stride: usize, padding: usize, len: usize, out_len: usize) -> std::ops::Range<usize> {
    let lo = padding.saturating_sub(offset).div_ceil(stride);
    let hi = (len + padding).saturating_sub(offset).div_ceil(stride);
    lo.min(out_len)..hi.min(out_len).max(lo.min(out_len))
}

/// Walks every (column row, output row) pair of the column matrix: `f(row, oy, iy, xs)`
/// where `iy` is the input row (None in the padding) and `xs` the valid output columns.
fn for_each_tap(g: &Geometry, mut f: impl FnMut(usize, usize, Option<usize>, std::ops::Range<usize>, usize)) {
    let [kh, kw] = g.kernel;
    let [h, w] = g.in_hw;
    let [oh, ow] = g.out_hw;
    for c in 0..g.in_per_group() {
        for ki in 0..kh {
            let ys = valid(ki * g.dilation[0], g.stride[0], g.padding[0], h, oh);
            for kj in 0..kw {
                let row = (c * kh + ki) * kw + kj;
                let xs = valid(kj * g.dilation[1], g.stride[1], g.padding[1], w, ow);
                let x_off = kj * g.dilation[1];
                for oy in 0..oh {
                    let iy = ys.contains(&oy).then(|| c * h + oy * g.stride[0] + ki * g.dilation[0] - g.padding[0]);
                    f(row, oy, iy, xs.clone(), x_off);
                }
            }
        }
    }
}

/// Fills the column matrix `[col_rows, out_plane]` of one group of one sample.
fn im2col(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    if g.stride == [1, 1] && g.out_hw[1] == g.in_hw[1] {
        return im2col_same_width(g, x, cols);
    }
    let (w, ow, p, s, pad) = (g.in_hw[1], g.out_hw[1], g.out_plane(), g.stride[1], g.padding[1]);
    for_each_tap(g, |row, oy, iy, xs, x_off| {
        let out = &mut cols[row * p + oy * ow..row * p + (oy + 1) * ow];
        let Some(iy) = iy else {
            out.fill(0.0);
            return;
        };
        let src = &x[iy * w..(iy + 1) * w];
        out[..xs.start].fill(0.0);
        out[xs.end..].fill(0.0);
        match (xs.is_empty(), s) {
            (true, _) => {}
            (false, 1) => {
                let start = xs.start + x_off - pad;
                out[xs.clone()].copy_from_slice(&src[start..start + xs.len()]);
            }
            _ => xs.for_each(|ox| out[ox] = src[ox * s + x_off - pad]),
        }
    });
}

/// [`im2col`] at stride 1 with rows as wide as the input's ("same" padding along the
/// width): a tap's column row is the input plane shifted by one constant offset, so it is
/// copied in one piece; the values that wrapped around a row edge land exactly in the
/// padding columns, which are then zeroed, as are the rows that read padding. One copy per
/// tap instead of one per output row (a 32-wide row made the call overhead a third of
/// inference).
fn im2col_same_width(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    let ([kh, kw], [h, w], oh) = (g.kernel, g.in_hw, g.out_hw[0]);
    let p = g.out_plane();
    for c in 0..g.in_per_group() {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for ki in 0..kh {
            let ys = valid(ki * g.dilation[0], 1, g.padding[0], h, oh);
            for kj in 0..kw {
                let row = (c * kh + ki) * kw + kj;
                let out = &mut cols[row * p..(row + 1) * p];
                let xs = valid(kj * g.dilation[1], 1, g.padding[1], w, w);
                if ys.is_empty() || xs.is_empty() {
                    out.fill(0.0);
                    continue;
                }
                // out[i] = plane[i + shift] for i in the valid rows, where it is inside.
                let shift =
                    (ki * g.dilation[0] * w + kj * g.dilation[1]) as isize - (g.padding[0] * w + g.padding[1]) as isize;
                let lo = ((ys.start * w) as isize).max(-shift) as usize;
                let hi = ((ys.end * w) as isize).min((h * w) as isize - shift) as usize;
                out[..lo].fill(0.0);
                out[hi..].fill(0.0);
                if lo < hi {
                    let from = (lo as isize + shift) as usize;
                    out[lo..hi].copy_from_slice(&plane[from..from + (hi - lo)]);
                }
                if xs.start > 0 || xs.end < w {
                    for oy in ys.clone() {
                        let r = &mut out[oy * w..(oy + 1) * w];
                        r[..xs.start].fill(0.0);
                        r[xs.end..].fill(0.0);
                    }
                }
            }
        }
    }
}

/// Adds the column matrix of one group of one sample back onto its input gradient.
fn col2im(g: &Geometry, cols: &[f32], dx: &mut [f32]) {
    let (w, ow, p, s, pad) = (g.in_hw[1], g.out_hw[1], g.out_plane(), g.stride[1], g.padding[1]);
    for_each_tap(g, |row, oy, iy, xs, x_off| {
        let Some(iy) = iy else { return };
        let src = &cols[row * p + oy * ow..row * p + (oy + 1) * ow];
        let dst = &mut dx[iy * w..(iy + 1) * w];
        match (xs.is_empty(), s) {
            (true, _) => {}
            (false, 1) => {
                let start = xs.start + x_off - pad;
                dst[start..start + xs.len()].iter_mut().zip(&src[xs]).for_each(|(d, v)| *d += v);
            }
            _ => xs.for_each(|ox| dst[ox * s + x_off - pad] += src[ox]),
        }
    });
}

/// Scratch space for one column matrix (none for a pointwise conv, which reads its input).
fn cols_buffer(g: &Geometry) -> Vec<f32> {
    vec![0.0; if g.pointwise() { 0 } else { g.col_rows() * g.out_plane() }]
}

/// The column matrix `[col_rows, out_plane]` of one group of one sample: the input itself
/// for a pointwise conv, else filled into `cols` (from [`cols_buffer`]).
fn columns<'a>(g: &Geometry, xg: &'a [f32], cols: &'a mut [f32]) -> &'a [f32] {
    if g.pointwise() {
        xg
    } else {
        im2col(g, xg, cols);
        cols
    }
}

/// Contiguous index ranges that split `0..n` into at most `parts` nearly equal pieces.
fn split(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts).map(|i| n * i / parts..n * (i + 1) / parts).collect()
}

fn check(g: &Geometry, x: &[f32], w: &[f32], y: &[f32]) {
    assert_eq!(x.len(), g.batch * g.in_c * g.in_plane(), "conv: input length");
    assert_eq!(w.len(), g.weight_len(), "conv: weight length");
    assert_eq!(y.len(), g.batch * g.out_c * g.out_plane(), "conv: output length");
    assert!(g.groups > 0 && g.in_c.is_multiple_of(g.groups) && g.out_c.is_multiple_of(g.groups), "conv: groups");
}

/// What the forward pass applies to a sample's output while it is still in cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// `bias[o]` added to every value of output plane `o`.
    pub bias: Option<&'a [f32]>,
    /// Every value clamped to `[lo, hi]` after the bias (a ReLU is `[0, ∞)`).
    pub clamp: Option<(f32, f32)>,
}

impl Epilogue<'_> {
    /// Applies the bias and the clamp to one sample's output planes of `p` values.
    fn finish(&self, sample: &mut [f32], p: usize) {
        if let Some(b) = self.bias {
            add_bias(sample, b, p);
        }
        self.clamp(sample);
    }

    /// Applies the clamp to consecutive output values.
    fn clamp(&self, values: &mut [f32]) {
        if let Some((lo, hi)) = self.clamp {
            values.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
        }
    }
}

/// The forward pass: `y[n, g] = W_g · cols(x[n, g])`, then the epilogue.
pub fn forward(g: &Geometry, x: &[f32], w: &[f32], epilogue: Epilogue<'_>) -> Vec<f32> {
    let mut y = vec![0.0; g.batch * g.out_c * g.out_plane()];
    check(g, x, w, &y);
    if let Some(b) = epilogue.bias {
        assert_eq!(b.len(), g.out_c, "conv: bias length");
    }
    if g.depthwise() {
        depthwise::forward(g, x, w, epilogue, &mut y);
        return y;
    }
    if (1..SMALL_PLANE).contains(&g.out_plane()) {
        forward_blocked(g, x, w, epilogue, &mut y);
        return y;
    }
    let (cg, og, rows, p, plane) = (g.in_per_group(), g.out_per_group(), g.col_rows(), g.out_plane(), g.in_plane());
    y.par_chunks_mut(g.out_c * p.max(1)).zip(x.par_chunks(g.in_c * plane.max(1))).for_each_init(
        || cols_buffer(g),
        |cols, (yn, xn)| {
            for grp in 0..g.groups {
                let xg = &xn[grp * cg * plane..(grp + 1) * cg * plane];
                let wg = Mat::row_major(&w[grp * og * rows..(grp + 1) * og * rows], og, rows);
                let yg = &mut yn[grp * og * p..(grp + 1) * og * p];
                matmul(yg, wg, Mat::row_major(columns(g, xg, cols), rows, p), false);
            }
            epilogue.finish(yn, p);
        },
    );
    y
}

/// Output planes smaller than this run several samples per gemm ([`forward_blocked`]).
const SMALL_PLANE: usize = 64;

/// [`forward`] for small output planes: the column matrices of a block of samples side by
/// side, `[col_rows, samples · p]`, times the weight in one gemm. One sample at a time, a
/// 1×1 plane made each gemm a matrix-vector product that read the whole weight
/// (MobileNetV2's last stages at 32×32: 960 × 160 weights per 1×1 conv) once per sample.
fn forward_blocked(g: &Geometry, x: &[f32], w: &[f32], epilogue: Epilogue<'_>, y: &mut [f32]) {
    let (cg, og, rows, p, plane) = (g.in_per_group(), g.out_per_group(), g.col_rows(), g.out_plane(), g.in_plane());
    // About 256 columns per gemm, and a block for every thread.
    let per = (256 / p).min(g.batch.div_ceil(rayon::current_num_threads())).max(1);
    y.par_chunks_mut(per * g.out_c * p).zip(x.par_chunks(per * g.in_c * plane)).for_each_init(
        || (cols_buffer(g), vec![0.0; rows * per * p], vec![0.0; og * per * p]),
        |(cols, block, out), (yb, xb)| {
            let ld = yb.len() / g.out_c;
            for grp in 0..g.groups {
                for (s, xn) in xb.chunks(g.in_c * plane).enumerate() {
                    let src = columns(g, &xn[grp * cg * plane..][..cg * plane], cols);
                    for r in 0..rows {
                        block[r * ld + s * p..][..p].copy_from_slice(&src[r * p..][..p]);
                    }
                }
                let wg = Mat::row_major(&w[grp * og * rows..(grp + 1) * og * rows], og, rows);
                matmul(out, wg, Mat::row_major(&block[..rows * ld], rows, ld), false);
                for (s, yn) in yb.chunks_mut(g.out_c * p).enumerate() {
                    for o in 0..og {
                        yn[(grp * og + o) * p..][..p].copy_from_slice(&out[o * ld + s * p..][..p]);
                    }
                }
            }
            yb.chunks_mut(g.out_c * p).for_each(|yn| epilogue.finish(yn, p));
        },
    );
}

/// `planes[o] += bias[o]` over consecutive planes of `p` values.
fn add_bias(planes: &mut [f32], bias: &[f32], p: usize) {
    planes.chunks_mut(p.max(1)).zip(bias).for_each(|(plane, b)| plane.iter_mut().for_each(|v| *v += b));
}

/// The gradient of the weight: `dW_g = Σ_n dy[n, g] · cols(x[n, g])ᵀ`. Each thread sums a
/// contiguous share of the batch; the shares are added in a fixed order.
///
/// Each share is summed transposed, `dW_gᵀ += cols · dy[n, g]ᵀ` (`[col_rows, out]`), and
/// transposed once at the end: gemm's AVX-512 path ran the untransposed product, whose
/// result has few rows and a long inner dimension, at a tenth of its speed (5 against 44
/// GMAC/s on one core for a 16-channel 3×3 conv at 32×32).
pub fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    if g.depthwise() {
        let mut dw = vec![0.0; g.weight_len()];
        check(g, x, &dw, dy);
        depthwise::weight_grad(g, x, dy, &mut dw);
        return dw;
    }
    let (cg, og, rows, p, plane) = (g.in_per_group(), g.out_per_group(), g.col_rows(), g.out_plane(), g.in_plane());
    let partials: Vec<Vec<f32>> = split(g.batch, rayon::current_num_threads())
        .into_par_iter()
        .map(|samples| {
            // Group `grp`'s transposed gradient is `dwt[grp * rows * og..][..rows * og]`.
            let mut dwt = vec![0.0; g.weight_len()];
            check(g, x, &dwt, dy);
            let mut cols = cols_buffer(g);
            for n in samples {
                for grp in 0..g.groups {
                    let xg = &x[(n * g.in_c + grp * cg) * plane..][..cg * plane];
                    let dyg = Mat::row_major(&dy[(n * g.out_c + grp * og) * p..][..og * p], og, p).t();
                    let dwg = &mut dwt[grp * og * rows..(grp + 1) * og * rows];
                    matmul(dwg, Mat::row_major(columns(g, xg, &mut cols), rows, p), dyg, true);
                }
            }
            dwt
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut dwt = parts.next().unwrap_or_else(|| vec![0.0; g.weight_len()]);
    for part in parts {
        dwt.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    let mut dw = vec![0.0; g.weight_len()];
    for (dwg, dwtg) in dw.chunks_mut(og * rows).zip(dwt.chunks(og * rows)) {
        for (o, row) in dwg.chunks_mut(rows).enumerate() {
            row.iter_mut().enumerate().for_each(|(r, v)| *v = dwtg[r * og + o]);
        }
    }
    dw
}

/// The gradient of the input: `dx[n, g] = col2im(W_gᵀ · dy[n, g])`.
pub fn input_grad(g: &Geometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dx = vec![0.0; g.batch * g.in_c * g.in_plane()];
    check(g, &dx, w, dy);
    if g.depthwise() {
        depthwise::input_grad(g, w, dy, &mut dx);
        return dx;
    }
    let (cg, og, rows, p, plane) = (g.in_per_group(), g.out_per_group(), g.col_rows(), g.out_plane(), g.in_plane());
    dx.par_chunks_mut(g.in_c * plane.max(1)).zip(dy.par_chunks(g.out_c * p.max(1))).for_each_init(
        || cols_buffer(g),
        |cols, (dxn, dyn_)| {
            for grp in 0..g.groups {
                let wg = Mat::row_major(&w[grp * og * rows..(grp + 1) * og * rows], og, rows).t();
                let dyg = Mat::row_major(&dyn_[grp * og * p..(grp + 1) * og * p], og, p);
                let dxg = &mut dxn[grp * cg * plane..(grp + 1) * cg * plane];
                if g.pointwise() {
                    matmul(dxg, wg, dyg, false);
                } else {
                    matmul(cols, wg, dyg, false);
                    col2im(g, cols, dxg);
                }
            }
        },
    );
    dx
}

/// The gradient of the bias: `dy` summed over the batch and the plane.
pub fn bias_grad(g: &Geometry, dy: &[f32]) -> Vec<f32> {
    let p = g.out_plane();
    let mut db = vec![0.0f32; g.out_c];
    for (i, plane) in dy.chunks(p.max(1)).enumerate() {
        db[i % g.out_c] += plane.iter().sum::<f32>();
    }
    db
}

/// Direct loops for [`Geometry::depthwise`] convs: output channel `o` reads input channel
/// `o / out_per_group` through its `kh × kw` taps. Each input plane is copied once into a
/// zero-padded buffer split into the stride's phases (`Padded`), where every tap reads one
/// contiguous run: the forward pass takes 16 channels at once (a lane each), the gradients
/// one plane at a time (each tap one vectorised run).
mod depthwise {
    use super::{Epilogue, Geometry};
    use multiversion::multiversion;
    use rayon::prelude::*;

    /// The sizes every depthwise loop reads.
    struct Sizes {
        /// Output and input plane sizes.
        p: usize,
        plane: usize,
        /// Taps per channel.
        k: usize,
        /// Output channels per input channel.
        og: usize,
        /// Output row width.
        ow: usize,
    }

    impl Sizes {
        fn of(g: &Geometry) -> Sizes {
            Sizes {
                p: g.out_plane(),
                plane: g.in_plane(),
                k: g.kernel[0] * g.kernel[1],
                og: g.out_c / g.groups,
                ow: g.out_hw[1],
            }
        }
    }

    /// Planes handed to a rayon task at once: a task of at least ~16k elements.
    fn planes_per_task(plane: usize) -> usize {
        (16_384 / plane.max(1)).max(1)
    }

    /// An input plane zero-padded and split into its `sy × sx` stride phases: phase `(a, b)`
    /// is the `ph × pw` plane `Q_ab[r][c] = P[r·sy + a][c·sx + b]` of the padded plane `P`
    /// (zero past `P`'s edge). Output `(oy, ox)` reads tap `(ki, kj)` at `P[oy·sy + ki·dy]
    /// [ox·sx + kj·dx]`, which is `Q_ab[oy + qi][ox + qj]` for `ki·dy = qi·sy + a` (and
    /// likewise along x). So computed in `Q`'s row width, each tap is one contiguous run of
    /// `len = (oh − 1)·pw + ow` values at a fixed offset, whatever the stride and the plane
    /// size (row by row, a 4×4 plane's taps were loop overhead; element by element, stride
    /// 2 was a gather). The `pw − ow` columns between output rows are computed and dropped.
    struct Padded {
        stride: [usize; 2],
        padding: [usize; 2],
        ph: usize,
        pw: usize,
        len: usize,
        /// Where each tap's run starts in the phases buffer.
        offsets: Vec<usize>,
    }

    impl Padded {
        fn new(g: &Geometry) -> Padded {
            let [sy, sx] = g.stride;
            let (ph, pw) = ((g.in_hw[0] + 2 * g.padding[0]).div_ceil(sy), (g.in_hw[1] + 2 * g.padding[1]).div_ceil(sx));
            let offsets = (0..g.kernel[0] * g.kernel[1])
                .map(|t| {
                    let (y, x) = ((t / g.kernel[1]) * g.dilation[0], (t % g.kernel[1]) * g.dilation[1]);
                    ((y % sy) * sx + x % sx) * ph * pw + (y / sy) * pw + x / sx
                })
                .collect();
            Padded { stride: g.stride, padding: g.padding, ph, pw, len: (g.out_hw[0] - 1) * pw + g.out_hw[1], offsets }
        }

        /// The phases buffer's length.
        fn size(&self) -> usize {
            self.stride[0] * self.stride[1] * self.ph * self.pw
        }

        /// Where input row `iy`'s values of x-phase `b` start in the phases buffer (the row
        /// of phase `((iy + py) mod sy, b)` that holds them).
        fn row_start(&self, iy: usize, b: usize) -> usize {
            let ([sy, sx], r) = (self.stride, iy + self.padding[0]);
            ((r % sy) * sx + b) * self.ph * self.pw + (r / sy) * self.pw
        }

        /// Where input pixel `(iy, ix)` lies in the phases.
        fn position(&self, iy: usize, ix: usize) -> usize {
            let c = ix + self.padding[1];
            self.row_start(iy, c % self.stride[1]) + c / self.stride[1]
        }

        /// The first input column `ix0` that lands in x-phase `b` (then every `sx`-th), and
        /// its column in the phase row.
        fn phase_columns(&self, b: usize, w: usize) -> (usize, usize) {
            let ([_, sx], [_, px]) = (self.stride, self.padding);
            let ix0 = (b + sx - px % sx) % sx;
            (ix0.min(w), (ix0 + px) / sx)
        }

        /// The phases of an input plane `h × w`: zeros around it.
        fn pad(&self, [h, w]: [usize; 2], plane: &[f32], q: &mut [f32]) {
            q.fill(0.0);
            let sx = self.stride[1];
            for (iy, row) in plane.chunks(w.max(1)).enumerate().take(h) {
                for b in 0..sx {
                    let (ix0, c0) = self.phase_columns(b, w);
                    let dst = &mut q[self.row_start(iy, b) + c0..];
                    if sx == 1 {
                        dst[..w].copy_from_slice(row);
                    } else {
                        row[ix0..].iter().step_by(sx).zip(dst).for_each(|(v, d)| *d = *v);
                    }
                }
            }
        }

        /// The input-plane gradient from the gradient of the phases (the inverse of `pad`).
        fn unpad(&self, [h, w]: [usize; 2], q: &[f32], plane: &mut [f32]) {
            let sx = self.stride[1];
            for (iy, row) in plane.chunks_mut(w.max(1)).enumerate().take(h) {
                for b in 0..sx {
                    let (ix0, c0) = self.phase_columns(b, w);
                    let src = &q[self.row_start(iy, b) + c0..];
                    if sx == 1 {
                        row.copy_from_slice(&src[..w]);
                    } else {
                        row[ix0..].iter_mut().step_by(sx).zip(src).for_each(|(v, s)| *v = *s);
                    }
                }
            }
        }
    }

    /// `dst[oy·pw + ox] = plane[oy·ow + ox]`, zeros in the columns between rows.
    fn widen(plane: &[f32], ow: usize, pw: usize, dst: &mut [f32]) {
        dst.fill(0.0);
        for (oy, row) in plane.chunks(ow.max(1)).enumerate() {
            dst[oy * pw..][..ow].copy_from_slice(row);
        }
    }

    // The three inner loops below are compiled once per instruction set and chosen at run
    // time (the binary's baseline is SSE2; AVX-512 quadruples the lanes). They multiply
    // and add separately (no fused multiply-add), in one fixed order, so every CPU gets
    // the same bits.

    /// `z[i][l] += Σ_t w[t][l] · q[offsets[t] + i][l]`: [`LANES`] channels at once, one per
    /// lane, the taps added in order.
    #[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
    fn taps_lanes(z: &mut [[f32; LANES]], q: &[[f32; LANES]], offsets: &[usize], w: &[[f32; LANES]]) {
        for (i, zi) in z.iter_mut().enumerate() {
            let mut acc = *zi;
            for (&off, wt) in offsets.iter().zip(w) {
                let src = &q[off + i];
                for l in 0..LANES {
                    acc[l] += wt[l] * src[l];
                }
            }
            *zi = acc;
        }
    }

    /// `dst[i] += a · x[i]`.
    #[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
    fn axpy(dst: &mut [f32], a: f32, x: &[f32]) {
        dst.iter_mut().zip(x).for_each(|(d, v)| *d += a * v);
    }

    /// `Σ a·b` in sixteen lanes, added in a fixed order.
    #[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        const L: usize = 16;
        let mut lanes = [0.0f32; L];
        let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
        let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in ca.zip(cb) {
            for l in 0..L {
                lanes[l] += x[l] * y[l];
            }
        }
        lanes.iter().sum::<f32>() + tail
    }

    /// Channels side by side in [`forward`].
    const LANES: usize = 16;

    /// [`LANES`] output channels of a sample at once, each in one lane of the phases
    /// (`q[position][lane]`) and of the sums, so that a tap is one vector multiply-add per
    /// output position. Plane by plane, small planes were mostly overhead (a 1×1 output
    /// plane is one value from nine taps; MobileNetV2 at 32×32 has thousands per sample),
    /// and the runs of larger ones ended in scalar tails: about +40% on MobileNetV2 inference.
    pub fn forward(g: &Geometry, x: &[f32], w: &[f32], epilogue: Epilogue<'_>, y: &mut [f32]) {
        let pd = Padded::new(g);
        let Sizes { p, plane, k, og, ow } = Sizes::of(g);
        let iw = g.in_hw[1];
        // Where each input value goes in the phases, and where each output value is in the sums.
        let sources: Vec<usize> = (0..plane).map(|i| pd.position(i / iw, i % iw)).collect();
        let results: Vec<usize> = (0..p).map(|i| i / ow * pd.pw + i % ow).collect();
        // The output channel in lane `l` of block `b`, if any (lanes past the last stay zero).
        let channel = |b: usize, l: usize| Some(b * LANES + l).filter(|&o| o < g.out_c);
        // Block `b`'s weights of tap `t` at `wl[b * k + t]`.
        let wl: Vec<[f32; LANES]> = (0..g.out_c.div_ceil(LANES) * k)
            .map(|bt| std::array::from_fn(|l| channel(bt / k, l).map_or(0.0, |o| w[o * k + bt % k])))
            .collect();
        y.par_chunks_mut(g.out_c * p.max(1)).enumerate().for_each_init(
            || (vec![[0.0; LANES]; pd.size()], vec![[0.0; LANES]; pd.len]),
            |(q, z), (n, yn)| {
                for (b, yb) in yn.chunks_mut(LANES * p.max(1)).enumerate() {
                    q.fill([0.0; LANES]);
                    let channels = (b * LANES..).take(yb.len() / p.max(1)).map(|o| o / og);
                    for (l, c) in channels.enumerate() {
                        let xp = &x[(n * g.in_c + c) * plane..][..plane];
                        xp.iter().zip(&sources).for_each(|(v, &at)| q[at][l] = *v);
                    }
                    z.fill(std::array::from_fn(|l| channel(b, l).zip(epilogue.bias).map_or(0.0, |(o, bias)| bias[o])));
                    taps_lanes(z, q, &pd.offsets, &wl[b * k..][..k]);
                    for (l, yp) in yb.chunks_mut(p.max(1)).enumerate() {
                        yp.iter_mut().zip(&results).for_each(|(v, &at)| *v = z[at][l]);
                        epilogue.clamp(yp);
                    }
                }
            },
        );
    }

    pub fn input_grad(g: &Geometry, w: &[f32], dy: &[f32], dx: &mut [f32]) {
        let pd = Padded::new(g);
        let Sizes { p, plane, k, og, ow } = Sizes::of(g);
        dx.par_chunks_mut(plane.max(1)).with_min_len(planes_per_task(plane)).enumerate().for_each_init(
            || (vec![0.0; pd.size()], vec![0.0; pd.len]),
            |(dq, z), (i, dxp)| {
                let (n, c) = (i / g.in_c, i % g.in_c);
                dq.fill(0.0);
                for o in c * og..(c + 1) * og {
                    widen(&dy[(n * g.out_c + o) * p..][..p], ow, pd.pw, z);
                    for (&off, &wt) in pd.offsets.iter().zip(&w[o * k..][..k]) {
                        axpy(&mut dq[off..off + pd.len], wt, z);
                    }
                }
                pd.unpad(g.in_hw, dq, dxp);
            },
        );
    }

    /// Each output channel's taps are summed over the batch by one task, in batch order.
    pub fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
        let pd = Padded::new(g);
        let Sizes { p, plane, k, og, ow } = Sizes::of(g);
        dw.par_chunks_mut(k.max(1)).enumerate().for_each_init(
            || (vec![0.0; pd.size()], vec![0.0; pd.len]),
            |(q, z), (o, dwo)| {
                for n in 0..g.batch {
                    pd.pad(g.in_hw, &x[(n * g.in_c + o / og) * plane..][..plane], q);
                    widen(&dy[(n * g.out_c + o) * p..][..p], ow, pd.pw, z);
                    for (d, &off) in dwo.iter_mut().zip(&pd.offsets) {
                        *d += dot(z, &q[off..off + pd.len]);
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, one multiply-add at a time.
    fn naive(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (cg, og) = (g.in_per_group(), g.out_per_group());
        let [h, wd] = g.in_hw;
        let [oh, ow] = g.out_hw;
        let mut y = vec![0.0; g.batch * g.out_c * oh * ow];
        for n in 0..g.batch {
            for o in 0..g.out_c {
                let grp = o / og;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0.0;
                        for c in 0..cg {
                            for ki in 0..g.kernel[0] {
                                for kj in 0..g.kernel[1] {
                                    let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                                    let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let xi = ((n * g.in_c + grp * cg + c) * h + iy as usize) * wd + ix as usize;
                                    let wi = ((o * cg + c) * g.kernel[0] + ki) * g.kernel[1] + kj;
                                    acc += x[xi] * w[wi];
                                }
                            }
                        }
                        y[((n * g.out_c + o) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 17) as f32 / 8.0 - 1.0)
            .collect()
    }

    fn geometries() -> Vec<Geometry> {
        let base = Geometry {
            batch: 3,
            in_c: 4,
            in_hw: [7, 6],
            out_c: 6,
            kernel: [3, 3],
            out_hw: [7, 6],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        };
        vec![
            base,
            Geometry { stride: [2, 2], out_hw: [4, 3], ..base },
            Geometry { kernel: [1, 1], padding: [0, 0], ..base },
            Geometry { kernel: [1, 1], padding: [0, 0], stride: [2, 2], out_hw: [4, 3], ..base },
            Geometry { groups: 2, ..base },
            Geometry { in_c: 6, groups: 6, ..base },
            // Depthwise: strided, a channel multiplier of 2, dilated, a wide kernel.
            Geometry { in_c: 6, out_c: 6, groups: 6, stride: [2, 2], out_hw: [4, 3], ..base },
            Geometry { in_c: 3, out_c: 6, groups: 3, ..base },
            Geometry { in_c: 6, out_c: 6, groups: 6, dilation: [2, 2], padding: [2, 2], ..base },
            Geometry { in_c: 4, out_c: 4, groups: 4, kernel: [5, 3], padding: [2, 0], out_hw: [7, 4], ..base },
            Geometry {
                in_c: 4,
                out_c: 4,
                groups: 4,
                kernel: [1, 1],
                padding: [0, 0],
                stride: [2, 2],
                out_hw: [4, 3],
                ..base
            },
            // Stride 1 with rows as wide as the input's (one copy per tap in im2col).
            Geometry { kernel: [3, 5], padding: [1, 2], ..base },
            Geometry { dilation: [2, 1], padding: [2, 1], ..base },
            Geometry { kernel: [5, 3], padding: [1, 1], out_hw: [5, 6], ..base },
            // Depthwise on planes smaller than the kernel (MobileNetV2's last stages at 32x32).
            Geometry { in_c: 4, out_c: 4, groups: 4, in_hw: [1, 1], padding: [1, 1], out_hw: [1, 1], ..base },
            Geometry { in_c: 4, out_c: 8, groups: 4, in_hw: [2, 2], padding: [2, 2], out_hw: [4, 4], ..base },
            Geometry { in_c: 4, out_c: 4, groups: 4, in_hw: [1, 2], stride: [2, 2], out_hw: [1, 1], ..base },
            Geometry { kernel: [5, 3], padding: [2, 0], out_hw: [7, 4], ..base },
            Geometry { dilation: [2, 2], padding: [2, 2], ..base },
            Geometry { in_hw: [2, 2], kernel: [3, 3], padding: [2, 2], out_hw: [4, 4], ..base },
            Geometry { in_hw: [1, 1], kernel: [5, 5], padding: [2, 2], out_hw: [1, 1], ..base },
            Geometry { in_hw: [1, 2], kernel: [3, 3], padding: [1, 1], stride: [2, 2], out_hw: [1, 1], ..base },
            // Output planes of 64 values or more, one sample per gemm (smaller ones, as
            // above, run blocks of samples side by side): plain, strided, grouped, 1×1.
            Geometry { in_hw: [9, 8], out_hw: [9, 8], ..base },
            Geometry { in_hw: [17, 16], stride: [2, 2], out_hw: [9, 8], ..base },
            Geometry { groups: 2, in_hw: [8, 8], out_hw: [8, 8], ..base },
            Geometry { kernel: [1, 1], padding: [0, 0], in_hw: [8, 9], out_hw: [8, 9], ..base },
            // Depthwise through the stride phases: planes long enough for the gradients'
            // vector runs, more channels than a block of lanes, strides 2 and 3 (also
            // uneven), stride with dilation.
            Geometry { in_c: 2, out_c: 2, groups: 2, in_hw: [13, 11], out_hw: [13, 11], ..base },
            Geometry { in_c: 18, out_c: 18, groups: 18, in_hw: [5, 4], out_hw: [5, 4], ..base },
            Geometry { in_c: 2, out_c: 4, groups: 2, in_hw: [17, 16], stride: [2, 2], out_hw: [9, 8], ..base },
            Geometry { in_c: 2, out_c: 2, groups: 2, in_hw: [16, 17], stride: [3, 2], out_hw: [6, 9], ..base },
            Geometry {
                in_c: 2,
                out_c: 2,
                groups: 2,
                in_hw: [15, 14],
                stride: [2, 3],
                dilation: [2, 2],
                padding: [2, 1],
                out_hw: [8, 4],
                ..base
            },
            Geometry { in_hw: [7, 7], kernel: [7, 7], padding: [3, 3], stride: [2, 2], out_hw: [4, 4], ..base },
        ]
    }

    /// Forward against the definition; gradients against the adjoint identity
    /// `⟨conv(x, w), dy⟩ = ⟨x, dx⟩ = ⟨w, dw⟩`, checked per element by unit vectors.
    #[test]
    fn forward_and_gradients_match_the_definition() {
        for g in geometries() {
            let x = values(g.batch * g.in_c * g.in_plane(), 1);
            let w = values(g.weight_len(), 2);
            let dy = values(g.batch * g.out_c * g.out_plane(), 3);
            let y = forward(&g, &x, &w, Epilogue::default());
            let expect = naive(&g, &x, &w);
            for (a, b) in y.iter().zip(&expect) {
                assert!((a - b).abs() < 1e-4, "{g:?}: forward {a} vs {b}");
            }
            let bias = values(g.out_c, 4);
            let with_bias = forward(&g, &x, &w, Epilogue { bias: Some(&bias), clamp: None });
            let clamped = forward(&g, &x, &w, Epilogue { bias: Some(&bias), clamp: Some((0.0, 0.5)) });
            for (i, (a, b)) in with_bias.iter().zip(&expect).enumerate() {
                let want = b + bias[i / g.out_plane() % g.out_c];
                assert!((a - want).abs() < 1e-4, "{g:?}: forward with bias {a} vs {want}");
                assert_eq!(clamped[i], a.clamp(0.0, 0.5), "{g:?}: clamped forward");
            }
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
            let dw = weight_grad(&g, &x, &dy);
            for i in 0..w.len() {
                let mut e = vec![0.0; w.len()];
                e[i] = 1.0;
                let want = dot(&naive(&g, &x, &e), &dy);
                assert!((dw[i] - want).abs() < 1e-3, "{g:?}: dw[{i}] {} vs {want}", dw[i]);
            }
            let dx = input_grad(&g, &w, &dy);
            for i in (0..x.len()).step_by(7) {
                let mut e = vec![0.0; x.len()];
                e[i] = 1.0;
                let want = dot(&naive(&g, &e, &w), &dy);
                assert!((dx[i] - want).abs() < 1e-3, "{g:?}: dx[{i}] {} vs {want}", dx[i]);
            }
            let db = bias_grad(&g, &dy);
            for (o, v) in db.iter().enumerate() {
                let want: f32 = (0..g.batch)
                    .map(|n| dy[(n * g.out_c + o) * g.out_plane()..][..g.out_plane()].iter().sum::<f32>())
                    .sum();
                assert!((v - want).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn valid_ranges_cover_exactly_the_inside() {
        for (off, s, pad, len, out) in
            [(0, 1, 1, 5, 5), (2, 1, 1, 5, 5), (0, 2, 1, 7, 4), (4, 2, 2, 3, 3), (5, 1, 0, 3, 2)]
        {
            let r = valid(off, s, pad, len, out);
            for o in 0..out {
                let i = (o * s + off) as isize - pad as isize;
                assert_eq!(r.contains(&o), i >= 0 && i < len as isize, "{off} {s} {pad} {len} {out} at {o}");
            }
        }
    }
}
