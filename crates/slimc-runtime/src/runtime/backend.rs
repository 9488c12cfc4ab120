//! The backends slimc runs on: any Burn backend, with the convolution routed through
//! [`SlimBackend`] so that flex can use the im2col + gemm kernels of `kernels.rs` for the
//! forward and both gradients, and `Autodiff<B>` records one node whose backward asks the
//! inner backend for all gradients at once. CUDA and wgpu keep Burn's own (CubeCL) conv
//! kernels: the trait's default methods, the "generic path" that `tests/wgpu.rs` checks.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensor, FloatTensorOps, ModuleOps};
use burn::tensor::{Bytes, DType, Shape, Tensor, TensorMetadata, TensorPrimitive};

use super::kernels::{self, Geometry};

/// Which gradients a backward pass needs.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    pub x: bool,
    pub weight: bool,
    pub bias: bool,
}

/// The gradients of a convolution, each present when wanted.
pub struct ConvGrads<B: Backend> {
    pub x: Option<FloatTensor<B>>,
    pub weight: Option<FloatTensor<B>>,
    pub bias: Option<FloatTensor<B>>,
}

/// A Burn backend with slimc's convolution entry points. The defaults are Burn's own ops.
pub trait SlimBackend: Backend {
    /// Whether the backend computes on the host's threads (rayon), so that chunks of an
    /// evaluation batch run faster side by side than the whole batch alone: each chunk's
    /// serial stretches leave the cores to the others' kernels. A GPU backend queues work
    /// for the device, where splitting a batch only adds launches.
    const HOST_THREADS: bool = false;

    fn slim_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, bias, options)
    }

    /// An evaluation-only conv whose output is clamped to `[lo, hi]` (a ReLU or ReLU6
    /// that reads nothing else): the conv, then the clamp. Host kernels clamp each
    /// sample's output while it is still in cache, instead of one more pass.
    fn slim_conv2d_clamped(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
        (lo, hi): (f32, f32),
    ) -> FloatTensor<Self> {
        Self::float_clamp(Self::slim_conv2d(x, weight, bias, options), lo.into(), hi.into())
    }

    fn slim_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        wanted: Wanted,
    ) -> ConvGrads<Self> {
        default_backward::<Self>(x, weight, bias, grad, options, wanted)
    }
}

/// A training backend: autodiff over a [`SlimBackend`], itself one.
pub trait SlimAutodiff: AutodiffBackend<InnerBackend: SlimBackend> + SlimBackend {}

impl<B: AutodiffBackend<InnerBackend: SlimBackend> + SlimBackend> SlimAutodiff for B {}

#[cfg(feature = "cuda")]
impl SlimBackend for burn::backend::Cuda {}

#[cfg(feature = "wgpu")]
impl SlimBackend for burn::backend::Wgpu {}

/// The geometry of a conv on flex tensors, or None where the kernels do not apply
/// (a dtype other than f32).
fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Geometry> {
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return None;
    }
    let [batch, in_c, h, w] = x.shape().dims();
    let [out_c, _, kh, kw] = weight.shape().dims();
    let out = |i: usize, len: usize, k: usize| {
        (len + 2 * options.padding[i]).checked_sub(options.dilation[i] * (k - 1) + 1).map(|v| v / options.stride[i] + 1)
    };
    Some(Geometry {
        batch,
        in_c,
        in_hw: [h, w],
        out_c,
        kernel: [kh, kw],
        out_hw: [out(0, h, kh)?, out(1, w, kw)?],
        stride: options.stride,
        padding: options.padding,
        dilation: options.dilation,
        groups: options.groups,
    })
}

fn flex(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), DType::F32)
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// A flex conv through `kernels::forward` (Burn's own conv for other dtypes), clamped where
/// asked.
fn flex_conv(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
    clamp: Option<(f32, f32)>,
) -> FlexTensor {
    let f32_bias = bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    let Some(g) = geometry(&x, &weight, &options).filter(|_| f32_bias) else {
        let y = Flex::conv2d(x, weight, bias, options);
        return match clamp {
            Some((lo, hi)) => Flex::float_clamp(y, lo.into(), hi.into()),
            None => y,
        };
    };
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let bias = bias.map(|b| b.to_contiguous());
    let epilogue = kernels::Epilogue { bias: bias.as_ref().map(f32s), clamp };
    flex(
        kernels::forward(&g, f32s(&x), f32s(&weight), epilogue),
        Shape::new([g.batch, g.out_c, g.out_hw[0], g.out_hw[1]]),
    )
}

impl SlimBackend for Flex {
    const HOST_THREADS: bool = true;
    fn slim_conv2d(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>, options: ConvOptions<2>) -> FlexTensor {
        flex_conv(x, weight, bias, options, None)
    }

    fn slim_conv2d_clamped(
        x: FlexTensor,
        weight: FlexTensor,
        bias: Option<FlexTensor>,
        options: ConvOptions<2>,
        clamp: (f32, f32),
    ) -> FlexTensor {
        flex_conv(x, weight, bias, options, Some(clamp))
    }

    fn slim_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        bias: Option<FlexTensor>,
        grad: FlexTensor,
        options: ConvOptions<2>,
        wanted: Wanted,
    ) -> ConvGrads<Flex> {
        let Some(g) = geometry(&x, &weight, &options) else {
            return default_backward::<Flex>(x, weight, bias, grad, options, wanted);
        };
        let (xh, wh, dy) = (x.to_contiguous(), weight.to_contiguous(), grad.to_contiguous());
        let bias = bias.filter(|_| wanted.bias).map(|b| flex(kernels::bias_grad(&g, f32s(&dy)), b.shape()));
        let weight_grad = wanted.weight.then(|| flex(kernels::weight_grad(&g, f32s(&xh), f32s(&dy)), weight.shape()));
        let x_grad = wanted.x.then(|| flex(kernels::input_grad(&g, f32s(&wh), f32s(&dy)), x.shape()));
        ConvGrads { x: x_grad, weight: weight_grad, bias }
    }
}

/// Burn's generic gradients (the trait's default, callable from an override).
fn default_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
    grad: FloatTensor<B>,
    options: ConvOptions<2>,
    wanted: Wanted,
) -> ConvGrads<B> {
    let bias = bias.filter(|_| wanted.bias).map(|b| B::conv2d_bias_backward(x.clone(), b, grad.clone()));
    let weight_grad =
        wanted.weight.then(|| B::conv2d_weight_backward(x.clone(), weight.clone(), grad.clone(), options.clone()));
    let x = wanted.x.then(|| {
        if short_kernel(&weight.shape(), &options) {
            x_grad_short_kernel::<B>(x.shape(), weight, grad, options)
        } else {
            B::conv2d_x_backward(x, weight, grad, options)
        }
    });
    ConvGrads { x, weight: weight_grad, bias }
}

/// Whether a kernel's dilated extent is shorter than its stride in some dimension (a 1x1
/// conv with stride 2: the downsampling shortcuts of ResNet-50 and RegNet).
fn short_kernel(weight: &Shape, options: &ConvOptions<2>) -> bool {
    let [_, _, kh, kw] = weight.dims();
    spanning(kh, 0, options) != kh || spanning(kw, 1, options) != kw
}

/// A kernel length in dimension `i` that spans the stride: `k` itself unless
/// `k · dilation < stride`, then the shortest length that does.
fn spanning(k: usize, i: usize, options: &ConvOptions<2>) -> usize {
    if k * options.dilation[i] < options.stride[i] {
        options.stride[i].div_ceil(options.dilation[i])
    } else {
        k
    }
}

/// The input gradient of a conv whose kernel is shorter than its stride.
///
/// Burn 0.21's CubeCL transposed convolution, through which CUDA and wgpu compute every
/// strided conv's input gradient, visits no input row when `kernel · dilation < stride`
/// and returns zeros there (tests/wgpu.rs found it: RegNetY's gradients below its first
/// 1x1 stride-2 shortcut were all wrong). The same gradient comes from the kernel padded
/// with zeros at its end until it spans the stride: every output reads the same inputs with
/// the same weights, and the taps added read only zeros. The transposed conv then covers at
/// least the input, and is cut to it.
fn x_grad_short_kernel<B: Backend>(
    x_shape: Shape,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    options: ConvOptions<2>,
) -> FloatTensor<B> {
    let weight = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(weight));
    let grad = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grad));
    let [out_c, per_group, kh, kw] = weight.dims();
    let [_, _, out_h, out_w] = grad.dims();
    let [n, in_c, h, w] = x_shape.dims();
    let (kh2, kw2) = (spanning(kh, 0, &options), spanning(kw, 1, &options));
    let padded = Tensor::<B, 4>::zeros([out_c, per_group, kh2, kw2], &weight.device())
        .slice_assign([0..out_c, 0..per_group, 0..kh, 0..kw], weight);
    // The transposed conv's extent without output padding, and the padding that reaches
    // the input's size where it falls short.
    let extent = |out: usize, k: usize, i: usize| {
        ((out - 1) * options.stride[i] + options.dilation[i] * (k - 1) + 1).saturating_sub(2 * options.padding[i])
    };
    let (eh, ew) = (extent(out_h, kh2, 0), extent(out_w, kw2, 1));
    let transpose = ConvTransposeOptions::new(
        options.stride,
        options.padding,
        [h.saturating_sub(eh), w.saturating_sub(ew)],
        options.dilation,
        options.groups,
    );
    let full = burn::tensor::module::conv_transpose2d(grad, padded, None, transpose);
    full.slice([0..n, 0..in_c, 0..h, 0..w]).into_primitive().tensor()
}

/// The autodiff node of a convolution without bias (parents: x, weight).
#[derive(Debug)]
struct Conv;
/// The autodiff node of a convolution with bias (parents: x, weight, bias).
#[derive(Debug)]
struct ConvBias;

type ConvState = (NodeId, NodeId, Option<NodeId>, ConvOptions<2>);

/// Runs the inner backend's backward and hands each gradient to its parent.
fn backward<B: SlimBackend, const N: usize>(ops: Ops<ConvState, N>, grads: &mut Gradients, cp: &mut Checkpointer) {
    let grad = grads.consume::<B>(&ops.node);
    let (x_id, w_id, b_id, options) = ops.state;
    let x = cp.retrieve_node_output::<FloatTensor<B>>(x_id);
    let weight = cp.retrieve_node_output::<FloatTensor<B>>(w_id);
    let bias = b_id.map(|id| cp.retrieve_node_output::<FloatTensor<B>>(id));
    let parent = |i: usize| ops.parents.get(i).and_then(|p| p.as_ref());
    let wanted = Wanted { x: parent(0).is_some(), weight: parent(1).is_some(), bias: parent(2).is_some() };
    let out = B::slim_conv2d_backward(x, weight, bias, grad, options, wanted);
    for (i, g) in [out.x, out.weight, out.bias].into_iter().enumerate() {
        if let (Some(node), Some(g)) = (parent(i), g) {
            grads.register::<B>(node.id, g);
        }
    }
}

impl<B: SlimBackend> Backward<B, 2> for Conv {
    type State = ConvState;
    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, cp: &mut Checkpointer) {
        backward::<B, 2>(ops, grads, cp);
    }
}

impl<B: SlimBackend> Backward<B, 3> for ConvBias {
    type State = ConvState;
    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, cp: &mut Checkpointer) {
        backward::<B, 3>(ops, grads, cp);
    }
}

/// Records a conv node (`op`: [`Conv`] or [`ConvBias`], whose parent count `N` matches
/// whether `bias` is given) and runs the inner backend's forward.
fn record<B, C, O, const N: usize>(
    op: O,
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<B, C>>
where
    B: SlimBackend,
    C: CheckpointStrategy,
    O: Backward<B, N, State = ConvState>,
{
    let parents: Vec<_> = [Some(&x), Some(&weight), bias.as_ref()].into_iter().flatten().collect();
    let nodes = std::array::from_fn(|i| parents[i].node.clone());
    match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = (
                prep.checkpoint(&x),
                prep.checkpoint(&weight),
                bias.as_ref().map(|b| prep.checkpoint(b)),
                options.clone(),
            );
            prep.finish(state, B::slim_conv2d(x.primitive, weight.primitive, bias.map(|b| b.primitive), options))
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(B::slim_conv2d(x.primitive, weight.primitive, bias.map(|b| b.primitive), options))
        }
    }
}

impl<B: SlimBackend, C: CheckpointStrategy> SlimBackend for Autodiff<B, C> {
    const HOST_THREADS: bool = B::HOST_THREADS;
    fn slim_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match bias {
            None => record::<B, C, Conv, 2>(Conv, x, weight, None, options),
            Some(b) => record::<B, C, ConvBias, 3>(ConvBias, x, weight, Some(b), options),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// The short-kernel input gradient equals Burn's own flex `conv2d_x_backward` (flex's
    /// transposed convolution is not the CubeCL one), over 1x1 kernels with strides 2 and 3,
    /// odd sizes, padding, groups, a 2x2 kernel with stride 4 and a dilated one.
    #[test]
    fn short_kernel_input_gradient_equals_flex() {
        let device = Default::default();
        // (in_c, out_c, kernel, stride, padding, dilation, groups, size)
        let cases = [
            (4, 6, [1, 1], [2, 2], [0, 0], [1, 1], 1, [4, 4]),
            (4, 6, [1, 1], [2, 2], [0, 0], [1, 1], 1, [5, 7]),
            (4, 4, [1, 1], [3, 2], [1, 0], [1, 1], 2, [8, 6]),
            (3, 5, [2, 2], [4, 4], [1, 1], [1, 1], 1, [9, 10]),
            (2, 2, [2, 1], [5, 3], [0, 0], [2, 1], 1, [11, 7]),
        ];
        for (in_c, out_c, k, stride, padding, dilation, groups, [h, w]) in cases {
            let options = ConvOptions::new(stride, padding, dilation, groups);
            assert!(short_kernel(&Shape::new([out_c, in_c / groups, k[0], k[1]]), &options));
            let x = Tensor::<Flex, 4>::random([2, in_c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let weight =
                Tensor::<Flex, 4>::random([out_c, in_c / groups, k[0], k[1]], Distribution::Normal(0.0, 1.0), &device);
            let y = burn::tensor::module::conv2d(x.clone(), weight.clone(), None, options.clone());
            let grad = Tensor::<Flex, 4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
            let prim = |t: &Tensor<Flex, 4>| t.clone().into_primitive().tensor();
            let want = Flex::conv2d_x_backward(prim(&x), prim(&weight), prim(&grad), options.clone());
            let got = x_grad_short_kernel::<Flex>(x.shape(), prim(&weight), prim(&grad), options);
            let (want, got) = (
                Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(want)),
                Tensor::from_primitive(TensorPrimitive::Float(got)),
            );
            assert_eq!(got.dims(), [2, in_c, h, w]);
            let diff: f32 = (want.clone() - got).abs().max().into_scalar();
            let scale: f32 = want.abs().max().into_scalar();
            assert!(scale > 0.0 && diff <= 1e-5 * scale, "k {k:?} stride {stride:?} size {h}x{w}: differs by {diff}");
        }
    }
}
