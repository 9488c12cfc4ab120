//! CIFAR-10/100 binary batches. CIFAR-10: `data_batch_{1..5}.bin` and `test_batch.bin`,
//! records of 1 label byte + 3072 pixel bytes. CIFAR-100: `train.bin` and `test.bin`,
//! records of a coarse and a fine label byte + 3072 pixel bytes (the fine label is used).
//! The directory may be the archive's top level (`cifar-10-batches-bin/` inside).

use std::path::{Path, PathBuf};

use super::{DataError, InMemory};

pub const LAYOUT_10: &str =
    "expected the CIFAR-10 binary version: data_batch_1.bin … data_batch_5.bin and test_batch.bin \
     (from cifar-10-binary.tar.gz)";
pub const LAYOUT_100: &str =
    "expected the CIFAR-100 binary version: train.bin and test.bin (from cifar-100-binary.tar.gz)";

const PIXELS: usize = 3 * 32 * 32;

pub fn load(dir: &Path, hundred: bool) -> Result<(InMemory, InMemory), DataError> {
    let (inner, layout) = if hundred { ("cifar-100-binary", LAYOUT_100) } else { ("cifar-10-batches-bin", LAYOUT_10) };
    let dir = if dir.join(inner).is_dir() { dir.join(inner) } else { dir.to_path_buf() };
    let (train, test): (Vec<String>, Vec<String>) = if hundred {
        (vec!["train.bin".into()], vec!["test.bin".into()])
    } else {
        ((1..=5).map(|i| format!("data_batch_{i}.bin")).collect(), vec!["test_batch.bin".into()])
    };
    let read = |names: &[String]| -> Result<InMemory, DataError> {
        let mut set = InMemory { shape: [3, 32, 32], pixels: Vec::new(), labels: Vec::new() };
        for name in names {
            let path: PathBuf = dir.join(name);
            if !path.is_file() {
                return Err(DataError::Missing { path, hint: layout.into() });
            }
            let bytes = std::fs::read(&path).map_err(|error| DataError::Io { path: path.clone(), error })?;
            let skip = if hundred { 2 } else { 1 };
            let record = skip + PIXELS;
            if bytes.is_empty() || bytes.len() % record != 0 {
                return Err(DataError::Corrupt {
                    path,
                    reason: format!("{} bytes is not a whole number of {record}-byte records", bytes.len()),
                });
            }
            let classes = if hundred { 100 } else { 10 };
            for (i, r) in bytes.chunks(record).enumerate() {
                let label = r[skip - 1];
                if usize::from(label) >= classes {
                    return Err(DataError::Corrupt { path, reason: format!("record {i} has label {label}") });
                }
                set.labels.push(u32::from(label));
                set.pixels.extend_from_slice(&r[skip..]);
            }
        }
        Ok(set)
    };
    Ok((read(&train)?, read(&test)?))
}
