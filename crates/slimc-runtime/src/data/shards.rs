//! WebDataset shards: the packed format of PyTorch's large-scale pipelines, plain tar files
//! in which the members of one sample share a key (`KEY.jpg`, `KEY.cls`) and follow each
//! other. A directory holds `train-NNNNNN.tar` and `val-NNNNNN.tar` and, when slimc wrote
//! it, `classes.txt` (the class names, one per line, in label order). `.cls` holds the
//! label in decimal.
//!
//! Reading indexes every shard once (the tar headers only: one seek per member) and then
//! reads each image with one positioned read, so an epoch's shuffled order costs what an
//! image folder's does and the batches of both are identical; the data's bytes sit in a
//! few large files, which is what makes a network file system or a cold disk keep up.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::encoded::{Encoded, Labelled, Place, Shards};
use super::{folder, DataError};

pub const LAYOUT: &str = "expected DIR/train-000000.tar … and DIR/val-000000.tar … (WebDataset shards: each \
                          sample a KEY.jpg or KEY.png and a KEY.cls holding its label), as `slimc pack` writes them";

/// The class list `slimc pack` writes beside the shards.
pub const CLASSES: &str = "classes.txt";

/// The training and validation images of the shards in `dir`.
pub fn load(dir: &Path, size: usize, resize: usize) -> Result<(Encoded, Encoded), DataError> {
    let (train_shards, train) = index(dir, "train")?;
    let (val_shards, val) = index(dir, "val")?;
    let most = train.iter().chain(&val).map(|(_, l)| *l as usize + 1).max().unwrap_or(0);
    let list = dir.join(CLASSES);
    let classes = if list.is_file() {
        let text = std::fs::read_to_string(&list).map_err(|error| DataError::Io { path: list.clone(), error })?;
        let names: Vec<String> = text.lines().map(str::to_string).collect();
        if names.len() < most {
            return Err(DataError::Corrupt {
                path: list,
                reason: format!("names {} classes, but the shards hold label {}", names.len(), most - 1),
            });
        }
        names
    } else {
        (0..most).map(|l| l.to_string()).collect()
    };
    Ok((
        Encoded::new(classes.clone(), train, train_shards, size, resize),
        Encoded::new(classes, val, val_shards, size, resize),
    ))
}

/// The shards of one split (`PREFIX-*.tar`, in name order) and their samples.
fn index(dir: &Path, prefix: &str) -> Result<(Shards, Labelled), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|_| DataError::Missing { path: dir.into(), hint: LAYOUT.into() })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&format!("{prefix}-")) && name.ends_with(".tar")
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(DataError::Missing { path: dir.join(format!("{prefix}-000000.tar")), hint: LAYOUT.into() });
    }
    let mut shards = Vec::new();
    let mut samples = Vec::new();
    for path in paths {
        let file = File::open(&path).map_err(|error| DataError::Io { path: path.clone(), error })?;
        samples.extend(members(&path, &file, shards.len())?);
        shards.push((path, file));
    }
    if samples.is_empty() {
        return Err(DataError::Corrupt { path: dir.into(), reason: format!("the {prefix} shards hold no samples") });
    }
    Ok((shards, samples))
}

/// The samples of one shard: (image member, label) per key.
fn members(path: &Path, file: &File, shard: usize) -> Result<Labelled, DataError> {
    let corrupt = |reason: String| DataError::Corrupt { path: path.into(), reason };
    let length = file.metadata().map_err(|error| DataError::Io { path: path.into(), error })?.len();
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries_with_seek().map_err(|e| corrupt(format!("not a tar file: {e}")))?;
    // The sample being read: its key, image member and label.
    let mut samples = Vec::new();
    let mut current: Option<(String, Option<Place>, Option<u32>)> = None;
    let mut seen = HashSet::new();
    let mut finish = |sample: Option<(String, Option<Place>, Option<u32>)>| -> Result<(), DataError> {
        let Some((key, image, label)) = sample else { return Ok(()) };
        match (image, label) {
            (Some(image), Some(label)) => samples.push((image, label)),
            (None, _) => return Err(corrupt(format!("sample `{key}` has no .jpg, .jpeg or .png member"))),
            (_, None) => return Err(corrupt(format!("sample `{key}` has no .cls member (its label)"))),
        }
        Ok(())
    };
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(format!("damaged or truncated tar: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(|e| corrupt(format!("a member's name: {e}")))?.to_string_lossy().into_owned();
        let (offset, len) = (entry.raw_file_position(), entry.size());
        if offset + len > length {
            return Err(corrupt(format!(
                "truncated: member {name} ends at byte {} of a {length}-byte file",
                offset + len
            )));
        }
        // WebDataset's key: the name up to the first dot of its last component.
        let (dir, base) = name.rsplit_once('/').map_or(("", name.as_str()), |(d, b)| (d, b));
        let (stem, ext) = base.split_once('.').unwrap_or((base, ""));
        let key = if dir.is_empty() { stem.to_string() } else { format!("{dir}/{stem}") };
        if current.as_ref().is_none_or(|(k, ..)| *k != key) {
            finish(current.take())?;
            if !seen.insert(key.clone()) {
                return Err(corrupt(format!("the members of sample `{key}` are not adjacent")));
            }
            current = Some((key.clone(), None, None));
        }
        let Some((_, image, label)) = current.as_mut() else { continue };
        match ext.to_ascii_lowercase().as_str() {
            "cls" => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text)
                    .map_err(|e| corrupt(format!("member {name}: {e}")))?;
                let value = text.trim().parse::<u32>().map_err(|_| {
                    corrupt(format!("member {name}: a label is a non-negative integer, found `{}`", text.trim()))
                })?;
                *label = Some(value);
            }
            "jpg" | "jpeg" | "png" => *image = Some(Place::Member { shard, offset, len, name }),
            _ => {}
        }
    }
    finish(current.take())?;
    Ok(samples)
}

/// What [`pack`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed {
    pub classes: usize,
    pub train: usize,
    pub val: usize,
    pub shards: usize,
    pub bytes: u64,
}

/// Writes the image folder at `src` as WebDataset shards into the new directory `out`,
/// `per_shard` samples to a shard, in the folder's order (so both read as the same data
/// set, batch for batch). The images are copied, not re-encoded. The shards are written
/// into `OUT.partial` and renamed at the end: an interrupted pack leaves no `out`, and an
/// existing `out` is refused, never overwritten.
pub fn pack(src: &Path, out: &Path, per_shard: usize) -> Result<Packed, DataError> {
    if out.exists() {
        return Err(DataError::Exists(out.into()));
    }
    let (classes, train, val) = folder::scan(src)?;
    let partial = out.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|error| DataError::Io { path: partial.clone(), error })?;
    }
    std::fs::create_dir_all(&partial).map_err(|error| DataError::Io { path: partial.clone(), error })?;
    let written = (|| {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| DataError::Io { path, error }
        };
        let list = partial.join(CLASSES);
        std::fs::write(&list, classes.iter().map(|c| format!("{c}\n")).collect::<String>()).map_err(io(&list))?;
        let mut shards = 0;
        let mut bytes = 0;
        for (prefix, images) in [("train", &train), ("val", &val)] {
            let mut keys = HashSet::new();
            for (n, chunk) in images.chunks(per_shard.max(1)).enumerate() {
                let path = partial.join(format!("{prefix}-{n:06}.tar"));
                let file = File::create(&path).map_err(io(&path))?;
                let mut tar = tar::Builder::new(BufWriter::new(file));
                for (place, label) in chunk {
                    let Place::File(image) = place else { continue };
                    let data = std::fs::read(image).map_err(io(image))?;
                    let key = sample_key(image, &classes[*label as usize], &mut keys);
                    let ext = image.extension().and_then(|e| e.to_str()).unwrap_or("jpg").to_ascii_lowercase();
                    append(&mut tar, &format!("{key}.{ext}"), &data).map_err(io(&path))?;
                    append(&mut tar, &format!("{key}.cls"), label.to_string().as_bytes()).map_err(io(&path))?;
                }
                let mut writer = tar.into_inner().map_err(io(&path))?;
                writer.flush().map_err(io(&path))?;
                bytes += writer.get_ref().metadata().map_err(io(&path))?.len();
                shards += 1;
            }
        }
        Ok(Packed { classes: classes.len(), train: train.len(), val: val.len(), shards, bytes })
    })();
    match written {
        Ok(packed) => {
            std::fs::rename(&partial, out).map_err(|error| DataError::Io { path: out.into(), error })?;
            Ok(packed)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(e)
        }
    }
}

/// A sample's key: `CLASS/STEM` (dots in the stem become `_`, since a key ends at the
/// first dot), numbered when two files share a stem.
fn sample_key(image: &Path, class: &str, keys: &mut HashSet<String>) -> String {
    let stem = image.file_stem().map(|s| s.to_string_lossy().replace('.', "_")).unwrap_or_default();
    let class = class.replace('.', "_");
    let base = format!("{class}/{stem}");
    let mut key = base.clone();
    let mut n = 1;
    while !keys.insert(key.clone()) {
        key = format!("{base}_{n}");
        n += 1;
    }
    key
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_end_at_the_first_dot_and_stay_unique() {
        let mut keys = HashSet::new();
        assert_eq!(sample_key(Path::new("a/x.1.jpg"), "n01", &mut keys), "n01/x_1");
        assert_eq!(sample_key(Path::new("b/x.1.png"), "n01", &mut keys), "n01/x_1_1");
        assert!(crate::data::encoded::is_image(Path::new("a/B.JPEG")));
    }
}
