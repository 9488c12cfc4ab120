//! safetensors for a [`Subnet`]: every tensor under its PyTorch-style name
//! ([`Subnet::named_tensors`]: linear weights `[out, in]`, BN `weight`/`bias`/
//! `running_mean`/`running_var`), and the subnet's [`SubnetInfo`](super::SubnetInfo) plus
//! the fixed-width layer table in the header's metadata (`slimc.*` keys, JSON values).

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};

use super::{ExportError, HostTensor, Subnet};

pub fn to_bytes(subnet: &Subnet) -> Result<Vec<u8>, ExportError> {
    named_bytes(&subnet.named_tensors(), metadata(subnet))
}

/// A safetensors file of `tensors` (f32) with `metadata` in its header.
pub fn named_bytes(
    tensors: &[(String, HostTensor)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, ExportError> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> =
        tensors.iter().map(|(n, t)| (n.clone(), t.bytes(), t.shape.clone())).collect();
    let views = bytes
        .iter()
        .map(|(n, b, shape)| TensorView::new(Dtype::F32, shape.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(safetensors::serialize(views, Some(metadata))?)
}

fn metadata(subnet: &Subnet) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = subnet.metadata().into_iter().collect();
    let layers: Vec<serde_json::Value> = subnet
        .net
        .layers
        .iter()
        .map(|(id, l)| {
            let s = subnet.shapes[id.index()];
            serde_json::json!({"name": l.name, "op": l.op.kind(), "in": s.in_c, "out": s.out, "groups": s.groups})
        })
        .collect();
    m.insert("slimc.layers".into(), serde_json::Value::from(layers).to_string());
    m.insert("format".into(), "pt".into());
    m
}

/// Reads the f32 tensors of a safetensors file, sorted by name. A BN's
/// `num_batches_tracked` (an integer counter in a PyTorch `state_dict`) is skipped: it is
/// no weight, and slimc keeps no such count.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, HostTensor)>, ExportError> {
    let st = safetensors::SafeTensors::deserialize(bytes)?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let counter = matches!(view.dtype(), Dtype::I64 | Dtype::I32 | Dtype::U64 | Dtype::U32);
        if counter && name.ends_with("num_batches_tracked") {
            continue;
        }
        if view.dtype() != Dtype::F32 {
            return Err(ExportError::NotF32 { name, dtype: format!("{:?}", view.dtype()) });
        }
        let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.push((name, HostTensor { shape: view.shape().to_vec(), data }));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
