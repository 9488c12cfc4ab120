//! A PyTorch `state_dict` under its own module names (torchvision's `layer1.0.conv1.weight`,
//! `features.3.block.1.0.weight`) matched to a `.slim` network's layers by structure, for
//! `slimc train/eval FILE.slim --init STATE_DICT`.
//!
//! A safetensors file keeps its tensors sorted by name, so the order the modules ran in is
//! gone and has to be recovered from the names. Two facts do it:
//!
//! - **What a tensor can be.** A module's tensors (`weight`, `bias`, a BN's
//!   `running_mean`/`running_var`) must have the shapes the layer takes at full width
//!   ([`Op::weights`]); a parameter of another name (ConvNeXt's `layer_scale`, a class
//!   token) is a module of its own with one `weight`. Size-1 axes do not count, so a 1×1
//!   conv takes a linear's `[out, in]` and a layer scale `[C, 1, 1]` is a `[C]` scale.
//! - **Which comes first.** Among modules of the same shapes, the `.slim` file's layers
//!   (in the order they run) take the file's modules in the order their names count:
//!   name by name along the dotted path, the numbers in a name first (`layer2` after
//!   `layer1`, `features.10` after `features.9`, `conv2` and `bn2` after `conv1` and `bn1`,
//!   DenseNet's `norm0` before `denseblock1`), then names without a number
//!   (`downsample`, `proj`, `fc`): a stem first, a classifier (`fc`, `classifier`, `head`,
//!   `heads`) last, the rest by name. This is how torchvision names its modules, and how
//!   most PyTorch code does: a shortcut's modules after the main path's.
//!
//! Every tensor of the file must find a layer and every layer its tensors, or the first
//! one that does not is the error, named. A `.slim` file whose same-shaped layers run in
//! another order than the names count (a shortcut declared before its main path) loads
//! wrong weights silently: import the ONNX graph instead (`slimc import`), which pairs by
//! the graph.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::export::named::{tensor_shapes, WeightsError};
use crate::export::HostTensor;
use crate::ir::{Network, Op};
use crate::runtime::BN_EPS;

/// The names a BN's tensors take after its module's name.
const STATS: [&str; 2] = ["running_mean", "running_var"];

/// `tensors` under `net`'s layer names: as they are when one of them already has such a name
/// (slimc's own files; [`crate::runtime::SlimNet::load_named`] checks them), otherwise
/// matched by structure as the module documentation says. The second value counts the
/// modules matched by structure (0: names kept).
pub fn by_structure(
    net: &Network,
    tensors: Vec<(String, HostTensor)>,
    path: &Path,
) -> Result<(Vec<(String, HostTensor)>, usize), WeightsError> {
    let layers = wanted(net);
    let own: BTreeSet<String> =
        layers.iter().flat_map(|(layer, want)| want.iter().map(move |(role, _)| format!("{layer}.{role}"))).collect();
    if tensors.is_empty() || tensors.iter().any(|(name, _)| own.contains(name)) {
        return Ok((tensors, 0));
    }

    // The file's modules, each class of equal shapes in the order their names count.
    let mut modules: BTreeMap<String, Vec<Part>> = BTreeMap::new();
    for (name, t) in tensors {
        let (module, role) = match name.rsplit_once('.') {
            Some((m, r)) if ["weight", "bias"].contains(&r) || STATS.contains(&r) => (m.to_string(), r.to_string()),
            _ => (name.clone(), "weight".to_string()),
        };
        modules.entry(module).or_default().push((role, name, t));
    }
    let mut classes: HashMap<Signature, Vec<(String, Vec<Part>)>> = HashMap::new();
    for (module, parts) in modules {
        let sig = signature(parts.iter().map(|(role, _, t)| (role.as_str(), t.shape.as_slice())));
        classes.entry(sig).or_default().push((module, parts));
    }
    for members in classes.values_mut() {
        members.sort_by(|a, b| counted(&a.0, &b.0));
        members.reverse(); // taken from the back
    }

    let count = layers.len();
    let mut out = Vec::new();
    for (layer, want) in &layers {
        let sig = signature(want.iter().map(|(role, shape)| (*role, shape.as_slice())));
        let Some((_, parts)) = classes.get_mut(&sig).and_then(Vec::pop) else {
            let (role, shape) = &want[0];
            // The first unused module with the same tensors, of other shapes: most often the
            // one meant (a stem for another number of input channels, a classifier for
            // another number of classes).
            let roles = |s: &Signature| s.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
            let nearest = classes
                .iter()
                .filter(|(s, _)| roles(s) == roles(&sig))
                .filter_map(|(_, members)| members.last())
                .min_by(|a, b| counted(&a.0, &b.0))
                .and_then(|(_, parts)| parts.iter().find(|(r, _, _)| r == role))
                .map_or(String::new(), |(_, name, t)| {
                    format!("; the file's first unused `{role}` of this kind is `{name}` {:?}", t.shape)
                });
            return Err(WeightsError::Unmatched {
                path: path.to_path_buf(),
                name: format!("{layer}.{role}"),
                shape: shape.clone(),
                network: net.name.clone(),
                nearest: nearest.into(),
            });
        };
        for (role, _, t) in parts {
            let shape = want.iter().find(|(r, _)| *r == role).map(|(_, s)| s.clone()).expect("same signature");
            out.push((format!("{layer}.{role}"), HostTensor { shape, data: t.data }));
        }
    }
    let left = classes.into_values().flatten().flat_map(|(_, parts)| parts).min_by(|a, b| a.1.cmp(&b.1));
    if let Some((_, name, t)) = left {
        return Err(WeightsError::Unplaced {
            path: path.to_path_buf(),
            name,
            shape: t.shape,
            network: net.name.clone(),
        });
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((out, count))
}

/// Keeps each BN's σ² + ε for weights trained with BN ε `eps` (torchvision's MobileNetV3:
/// 0.001) in slimc, whose ε is [`BN_EPS`]: every BN layer's `running_var` in `tensors` (under
/// `net`'s names) is shifted by the difference. A variance that would not stay positive is
/// [`WeightsError::Variance`].
pub fn shift_bn_eps(
    net: &Network,
    tensors: &mut [(String, HostTensor)],
    eps: f64,
    path: &Path,
) -> Result<(), WeightsError> {
    let vars: BTreeSet<String> = net
        .layers
        .iter()
        .filter(|(_, l)| l.op == Op::BatchNorm)
        .map(|(_, l)| format!("{}.running_var", l.name))
        .collect();
    let shift = (eps - BN_EPS) as f32;
    for (name, t) in tensors.iter_mut().filter(|(name, _)| vars.contains(name)) {
        t.data.iter_mut().for_each(|v| *v += shift);
        if t.data.iter().any(|&v| v.is_nan() || v + BN_EPS as f32 <= 0.0) {
            return Err(WeightsError::Variance { path: path.to_path_buf(), name: name.clone(), eps });
        }
    }
    Ok(())
}

/// Each learning layer's name and its tensors at full width, PyTorch's layout (what
/// [`crate::runtime::SlimNet::load_named`] reads), in the order the layers run.
fn wanted(net: &Network) -> Vec<(String, Tensors)> {
    let shapes = net.layer_shapes(&net.full_width());
    net.layers
        .iter()
        .map(|(id, l)| (l.name.clone(), tensor_shapes(&l.op, l.op.weights(shapes[id.index()]))))
        .filter(|(_, want)| !want.is_empty())
        .collect()
}

/// One tensor of the file's module: its role (`weight`, `bias`, `running_mean`,
/// `running_var`), its name in the file, the tensor.
type Part = (String, String, HostTensor);

/// A layer's tensors: roles and full-width shapes.
type Tensors = Vec<(&'static str, Vec<usize>)>;

/// A module's tensors as roles and shapes with size-1 axes dropped, sorted.
type Signature = Vec<(String, Vec<usize>)>;

fn signature<'a>(parts: impl Iterator<Item = (&'a str, &'a [usize])>) -> Signature {
    let mut sig: Signature =
        parts.map(|(role, shape)| (role.to_string(), shape.iter().copied().filter(|&d| d != 1).collect())).collect();
    sig.sort();
    sig
}

/// The order modules' names count (see the module documentation).
fn counted(a: &str, b: &str) -> Ordering {
    let key = |name: &str| -> Vec<(u8, Vec<u64>, String)> { name.split('.').map(component).collect() };
    key(a).cmp(&key(b))
}

/// One name of a dotted path: numbered names first, by their numbers; then a stem, the
/// rest, a classifier.
fn component(name: &str) -> (u8, Vec<u64>, String) {
    let numbers: Vec<u64> = name
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect();
    let rank = if !numbers.is_empty() {
        0
    } else if name == "stem" {
        1
    } else if ["fc", "classifier", "head", "heads"].contains(&name) {
        3
    } else {
        2
    };
    (rank, numbers, name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_count_by_their_numbers_then_stem_first_and_classifier_last() {
        let mut names = vec![
            "fc",
            "layer1.0.downsample.0",
            "layer1.0.conv2",
            "layer1.0.conv1",
            "layer10.0.conv1",
            "layer2.0.conv1",
            "conv1",
            "features.norm0",
            "features.denseblock1",
            "classifier",
            "stem",
            "trunk",
        ];
        names.sort_by(|a, b| counted(a, b));
        assert_eq!(
            names,
            [
                "conv1",
                "layer1.0.conv1",
                "layer1.0.conv2",
                "layer1.0.downsample.0",
                "layer2.0.conv1",
                "layer10.0.conv1",
                "stem",
                "features.norm0",
                "features.denseblock1",
                "trunk",
                "classifier",
                "fc",
            ]
        );
    }

    #[test]
    fn size_one_axes_do_not_count() {
        let conv = signature([("weight", &[8usize, 4, 1, 1][..]), ("bias", &[8][..])].into_iter());
        let linear = signature([("bias", &[8usize][..]), ("weight", &[8, 4][..])].into_iter());
        assert_eq!(conv, linear);
    }
}
