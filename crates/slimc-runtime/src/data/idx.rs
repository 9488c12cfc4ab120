//! IDX files (MNIST, Fashion-MNIST): `{train,t10k}-{images-idx3,labels-idx1}-ubyte`, each
//! optionally gzip'd. Big-endian header: magic (0x0803 images, 0x0801 labels), then the
//! dimensions, then u8 data.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{DataError, InMemory};

pub const LAYOUT: &str = "expected a directory holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], \
     t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]";

/// Reads `{prefix}-images-idx3-ubyte` and `{prefix}-labels-idx1-ubyte` from `dir`.
pub fn load(dir: &Path, prefix: &str) -> Result<InMemory, DataError> {
    let (images_path, images) = read(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (labels_path, labels) = read(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let corrupt = |path: &PathBuf, reason: String| DataError::Corrupt { path: path.clone(), reason };
    let dims = header(&images, 0x0803, 3).map_err(|r| corrupt(&images_path, r))?;
    let [n, h, w] = [dims[0], dims[1], dims[2]];
    let label_dims = header(&labels, 0x0801, 1).map_err(|r| corrupt(&labels_path, r))?;
    let pixels = &images[16..];
    if h == 0 || w == 0 || pixels.len() != n * h * w {
        return Err(corrupt(&images_path, format!("{} bytes of pixels for {n} images of {h}×{w}", pixels.len())));
    }
    let labels = &labels[8..];
    if label_dims[0] != n || labels.len() != n {
        return Err(corrupt(&labels_path, format!("{} labels for {n} images", labels.len())));
    }
    if let Some(bad) = labels.iter().position(|&l| l >= 10) {
        return Err(corrupt(&labels_path, format!("label {} of image {bad} is not a class 0..9", labels[bad])));
    }
    Ok(InMemory { shape: [1, h, w], pixels: pixels.to_vec(), labels: labels.iter().map(|&l| u32::from(l)).collect() })
}

/// The file `name` or `name.gz` in `dir`, decompressed.
fn read(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), DataError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |error| DataError::Io { path, error }
    };
    if gz.is_file() {
        let file = std::fs::File::open(&gz).map_err(io(&gz))?;
        let mut bytes = Vec::new();
        GzDecoder::new(file)
            .read_to_end(&mut bytes)
            .map_err(|e| DataError::Corrupt { path: gz.clone(), reason: format!("not a complete gzip file ({e})") })?;
        Ok((gz, bytes))
    } else if plain.is_file() {
        let bytes = std::fs::read(&plain).map_err(io(&plain))?;
        Ok((plain, bytes))
    } else {
        Err(DataError::Missing { path: gz, hint: LAYOUT.into() })
    }
}

/// The dimensions of an IDX header with the given magic and rank.
fn header(bytes: &[u8], magic: u32, rank: usize) -> Result<Vec<usize>, String> {
    let word = |i: usize| bytes.get(i * 4..i * 4 + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    match word(0) {
        Some(m) if m == magic => {}
        Some(m) => return Err(format!("not an IDX file of this kind (magic {m:#010x}, expected {magic:#010x})")),
        None => return Err("truncated header".into()),
    }
    (1..=rank).map(|i| word(i).map(|d| d as usize).ok_or_else(|| "truncated header".to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked() {
        let mut ok = 0x0803u32.to_be_bytes().to_vec();
        for d in [2u32, 3, 4] {
            ok.extend(d.to_be_bytes());
        }
        assert_eq!(header(&ok, 0x0803, 3).unwrap(), vec![2, 3, 4]);
        assert!(header(&ok, 0x0801, 1).unwrap_err().contains("magic"));
        assert!(header(&ok[..10], 0x0803, 3).unwrap_err().contains("truncated"));
    }
}
