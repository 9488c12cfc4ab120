//! What one IR layer learns, at full width: a variant per kind of [`Weights`] the op lays
//! out, so that a layer cannot hold a tensor its op does not have. Checkpoints store the
//! parameters in their own form ([`StoredLayer`], the record layout every run directory
//! has had), converted on save and load.

use std::marker::PhantomData;

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::ir::Weights;

/// One IR layer's parameters at full width, shaped by [`crate::ir::Op::weights`].
#[derive(Module, Debug)]
pub enum LayerParams<B: Backend> {
    /// The op learns nothing.
    None(PhantomData<B>),
    /// A conv's or a transposed conv's kernel and bias ([`Weights::Kernel`]).
    Kernel(Kernel<B>),
    /// A linear map and its bias ([`Weights::Matrix`]), or a learned table `[C, P]` without
    /// one ([`Weights::Table`]: a class token, a position embedding).
    Matrix(Matrix<B>),
    /// Batch or layer norm ([`Weights::Affine`]).
    Affine(Affine<B>),
    /// Layer scale ([`Weights::Scale`]).
    Scale(Scale<B>),
}

/// A conv weight `[out, in / groups, kh, kw]` (a transposed conv's `[in, out, kh, kw]`).
#[derive(Module, Debug)]
pub struct Kernel<B: Backend> {
    pub weight: Param<Tensor<B, 4>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
}

/// A linear weight `[in, out]` (Burn's layout: `y = x W + b`).
#[derive(Module, Debug)]
pub struct Matrix<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
}

/// Per-channel γ and β: one pair per BN switch for switchable BN, one pair for shared BN
/// and layer norm.
#[derive(Module, Debug)]
pub struct Affine<B: Backend> {
    pub gamma: Vec<Param<Tensor<B, 1>>>,
    pub beta: Vec<Param<Tensor<B, 1>>>,
}

impl<B: Backend> Affine<B> {
    /// The γ and β of BN switch `switch` (0 for shared BN and layer norm).
    pub fn at(&self, switch: usize) -> (Tensor<B, 1>, Tensor<B, 1>) {
        (self.gamma[switch].val(), self.beta[switch].val())
    }
}

/// A layer scale's per-channel γ.
#[derive(Module, Debug)]
pub struct Scale<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
}

impl<B: Backend> LayerParams<B> {
    /// The conv kernel, for a conv or transposed conv layer.
    pub fn kernel(&self) -> Option<&Kernel<B>> {
        match self {
            LayerParams::Kernel(k) => Some(k),
            _ => None,
        }
    }

    /// The linear map, for a linear layer.
    pub fn matrix(&self) -> Option<&Matrix<B>> {
        match self {
            LayerParams::Matrix(m) => Some(m),
            _ => None,
        }
    }

    /// γ and β, for a batch or layer norm.
    pub fn affine(&self) -> Option<&Affine<B>> {
        match self {
            LayerParams::Affine(a) => Some(a),
            _ => None,
        }
    }

    /// γ, for a layer scale.
    pub fn scale(&self) -> Option<&Scale<B>> {
        match self {
            LayerParams::Scale(s) => Some(s),
            _ => None,
        }
    }

    /// The kind of weights these are, as [`Weights`] names them (without shapes).
    pub fn kind(&self) -> &'static str {
        match self {
            LayerParams::None(_) => "none",
            LayerParams::Kernel(_) => "kernel",
            LayerParams::Matrix(_) => "matrix",
            LayerParams::Affine(_) => "affine",
            LayerParams::Scale(_) => "scale",
        }
    }

    /// Whether these parameters are the kind `weights` lays out.
    pub fn is(&self, weights: Weights) -> bool {
        matches!(
            (self, weights),
            (LayerParams::None(_), Weights::None)
                | (LayerParams::Kernel(_), Weights::Kernel { .. })
                | (LayerParams::Matrix(_), Weights::Matrix { .. } | Weights::Table { .. })
                | (LayerParams::Affine(_), Weights::Affine { .. })
                | (LayerParams::Scale(_), Weights::Scale { .. })
        )
    }

    /// The stored form (the same tensors, moved: parameter ids are kept, so an optimizer's
    /// state still refers to them).
    pub fn stored(self) -> StoredLayer<B> {
        let empty = StoredLayer { conv: None, linear: None, bias: None, gamma: Vec::new(), beta: Vec::new() };
        match self {
            LayerParams::None(_) => empty,
            LayerParams::Kernel(k) => StoredLayer { conv: Some(k.weight), bias: k.bias, ..empty },
            LayerParams::Matrix(m) => StoredLayer { linear: Some(m.weight), bias: m.bias, ..empty },
            LayerParams::Affine(a) => StoredLayer { gamma: a.gamma, beta: a.beta, ..empty },
            LayerParams::Scale(s) => StoredLayer { gamma: vec![s.gamma], ..empty },
        }
    }
}

/// A layer's parameters as a checkpoint's `model.mpk` stores them: every kind of tensor an
/// optional field, as every run directory so far has them. Only [`LayerParams`] is used
/// in memory; this is its on-disk form.
#[derive(Module, Debug)]
pub struct StoredLayer<B: Backend> {
    pub conv: Option<Param<Tensor<B, 4>>>,
    pub linear: Option<Param<Tensor<B, 2>>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    pub gamma: Vec<Param<Tensor<B, 1>>>,
    pub beta: Vec<Param<Tensor<B, 1>>>,
}

/// A network's stored parameters: the record of a checkpoint's `model.mpk`.
#[derive(Module, Debug)]
pub struct StoredNet<B: Backend> {
    pub layers: Vec<StoredLayer<B>>,
}

impl<B: Backend> StoredLayer<B> {
    /// The in-memory parameters these fields hold, or `None` when they are no kind of
    /// [`LayerParams`] (a conv weight beside a γ, a linear weight without a matrix…).
    pub fn typed(self) -> Option<LayerParams<B>> {
        let StoredLayer { conv, linear, bias, gamma, beta } = self;
        Some(match (conv, linear) {
            (Some(weight), None) if gamma.is_empty() && beta.is_empty() => LayerParams::Kernel(Kernel { weight, bias }),
            (None, Some(weight)) if gamma.is_empty() && beta.is_empty() => LayerParams::Matrix(Matrix { weight, bias }),
            (None, None) if bias.is_none() => match (gamma.len(), beta.len()) {
                (0, 0) => LayerParams::None(PhantomData),
                (1, 0) => LayerParams::Scale(Scale { gamma: gamma.into_iter().next()? }),
                (g, b) if g == b => LayerParams::Affine(Affine { gamma, beta }),
                _ => return None,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::tensor::Tensor;

    use super::*;
    use crate::runtime::device::Cpu;

    fn v(n: usize) -> Param<Tensor<Cpu, 1>> {
        Param::from_tensor(Tensor::zeros([n], &Default::default()))
    }

    fn stored() -> StoredLayer<Cpu> {
        StoredLayer { conv: None, linear: None, bias: None, gamma: Vec::new(), beta: Vec::new() }
    }

    #[test]
    fn stored_fields_convert_to_the_kind_they_hold_and_back_with_their_ids() {
        let kernel = Param::from_tensor(Tensor::<Cpu, 4>::zeros([4, 2, 3, 3], &Default::default()));
        let (kernel_id, bias) = (kernel.id, v(4));
        let bias_id = bias.id;
        let layer = StoredLayer { conv: Some(kernel), bias: Some(bias), ..stored() }.typed().unwrap();
        assert!(layer.is(Weights::Kernel { shape: [4, 2, 3, 3], bias: Some(4) }));
        let back = layer.stored();
        assert_eq!((back.conv.unwrap().id, back.bias.unwrap().id), (kernel_id, bias_id));

        let affine = StoredLayer { gamma: vec![v(3), v(3)], beta: vec![v(3), v(3)], ..stored() }.typed().unwrap();
        assert_eq!(affine.affine().unwrap().gamma.len(), 2, "one γ per BN switch");
        assert!(StoredLayer { gamma: vec![v(3)], ..stored() }.typed().unwrap().scale().is_some());
        assert!(matches!(stored().typed(), Some(LayerParams::None(_))));
        assert_eq!(affine.num_params(), 12);
    }

    #[test]
    fn stored_fields_of_no_kind_are_refused() {
        let matrix = || Some(Param::from_tensor(Tensor::<Cpu, 2>::zeros([2, 3], &Default::default())));
        let kernel = || Some(Param::from_tensor(Tensor::<Cpu, 4>::zeros([3, 2, 1, 1], &Default::default())));
        for mixed in [
            StoredLayer { conv: kernel(), linear: matrix(), ..stored() },
            StoredLayer { linear: matrix(), gamma: vec![v(3)], ..stored() },
            StoredLayer { bias: Some(v(3)), ..stored() },
            StoredLayer { gamma: vec![v(3), v(3)], beta: vec![v(3)], ..stored() },
            StoredLayer { beta: vec![v(3)], ..stored() },
        ] {
            assert!(mixed.typed().is_none());
        }
    }
}
