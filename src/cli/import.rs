//! `slimc import MODEL.onnx [-o NAME.slim] [--weights NAME.safetensors] [--name NAME]
//! [--keep-conv-bias] [--force]`: a PyTorch model's ONNX export as a `.slim` file and its
//! weights under the file's layer names (for `slimc train --init` and `slimc eval --init`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Args;

use slimc_lang::cost::human;
use slimc_lang::FileKind;
use slimc_runtime::export::safetensors;
use slimc_runtime::import::{import, ImportOptions};

use super::{fail, Failure};

#[derive(Args)]
pub struct ImportArgs {
    /// The ONNX model (either of PyTorch's exporters; external data beside it).
    model: PathBuf,
    /// The .slim file to write (default: the model's name with .slim, in this directory).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// The weights to write (default: the .slim file's path with .safetensors).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The network's name (default: the model file's, made an identifier).
    #[arg(long)]
    name: Option<String>,
    /// Take every conv bias as a bias: re-insert no BN after convs with a bias (for models
    /// whose convs really have one; by default such a conv had its BN folded in by the
    /// exporter, and gets it back).
    #[arg(long)]
    keep_conv_bias: bool,
    /// Replace the .slim and weights files if they exist.
    #[arg(long)]
    force: bool,
}

fn stem(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split('.').next().filter(|s| !s.is_empty()).unwrap_or("imported").to_string()
}

pub fn run(a: &ImportArgs) -> Result<(), Failure> {
    if let Some(name) = &a.name {
        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Failure::Usage(format!(
                "--name {name}: a network name is letters, digits and _, not starting with a digit"
            )));
        }
    }
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("{}.slim", stem(&a.model))));
    let weights = a.weights.clone().unwrap_or_else(|| out.with_extension("safetensors"));
    if out == weights {
        return Err(Failure::Usage(format!("-o and --weights are both {}", out.display())));
    }
    // Nothing is read or written until both outputs can be written.
    for p in [&out, &weights] {
        if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(Failure::Usage(format!(
                    "cannot write {}: {} is not a directory",
                    p.display(),
                    parent.display()
                )));
            }
        }
    }
    if !a.force {
        for p in [&out, &weights] {
            if p.exists() {
                return Err(Failure::Usage(format!("{} exists; not replacing it (--force replaces it)", p.display())));
            }
        }
    }
    let options = ImportOptions { name: a.name.clone(), keep_conv_bias: a.keep_conv_bias };
    let imported = import(&a.model, &options).map_err(|e| Failure::Usage(format!("{}: {e}", a.model.display())))?;
    let net = &imported.network;
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.insert("slimc.network".to_string(), net.name.clone());
    let bytes = safetensors::named_bytes(&imported.tensors, metadata).map_err(fail)?;
    slimc_lang::write_output(&weights, &bytes, FileKind::Weights).map_err(fail)?;
    slimc_lang::write_output(&out, imported.source.as_bytes(), FileKind::Source).map_err(fail)?;
    let (cost, _) = slimc_lang::cost::cost(net, &net.full_width());
    let layers = net.compute_layers().count();
    let blocks: std::collections::BTreeSet<&str> = net.blocks.iter().map(|b| b.kind.as_str()).collect();
    eprintln!(
        "wrote {}: network {}, {} search dimensions, {} layers in {} block kinds, {} MACs (the graph's), {} params at full width",
        out.display(),
        net.name,
        net.space.dims.len(),
        layers,
        blocks.len(),
        human(cost.macs),
        human(cost.params),
    );
    if imported.bn_inserted > 0 {
        eprintln!(
            "  {} BN layers re-inserted after convs whose BN the exporter folded (same function at full width; --keep-conv-bias keeps conv biases instead)",
            imported.bn_inserted
        );
    }
    for p in &imported.pinned {
        eprintln!("warning: {p}");
    }
    eprintln!("wrote {}: {} tensors under the layer names", weights.display(), imported.tensors.len());
    eprintln!(
        "next: slimc eval {} --init {} --data DATA (every width, BN calibrated per width), or slimc train {} --init {} --data DATA",
        out.display(),
        weights.display(),
        out.display(),
        weights.display()
    );
    Ok(())
}
