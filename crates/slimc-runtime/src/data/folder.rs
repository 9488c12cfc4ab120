//! ImageFolder trees (the ImageNet layout): `DIR/train/<class>/*.{jpg,jpeg,png}` and
//! `DIR/val/<class>/...`, classes in sorted order of the training folders' names. Images
//! are decoded when a batch needs them (the set need not fit in memory; see
//! [`super::encoded`]).

use std::path::{Path, PathBuf};

use super::encoded::{is_image, Encoded, Labelled, Place};
use super::DataError;

pub const LAYOUT: &str =
    "expected DIR/train/<class>/<image>.{jpg,jpeg,png} and DIR/val/<class>/... (one folder per class)";

/// The training and validation images of the tree at `dir`, decoded to `size` (the centre
/// view: shorter side `resize`, centre crop).
pub fn load(dir: &Path, size: usize, resize: usize) -> Result<(Encoded, Encoded), DataError> {
    let (classes, train, val) = scan(dir)?;
    Ok((
        Encoded::new(classes.clone(), train, Vec::new(), size, resize),
        Encoded::new(classes, val, Vec::new(), size, resize),
    ))
}

/// The class names and the (file, label) of every training and validation image, in
/// order: by class, then by file name. Every training class folder must hold images, and
/// every validation class must be one of training's (its images would have no label).
pub fn scan(dir: &Path) -> Result<(Vec<String>, Labelled, Labelled), DataError> {
    let train_dir = dir.join("train");
    let classes = class_names(&train_dir)?;
    let train = images(&train_dir, &classes)?;
    let mut counts = vec![0usize; classes.len()];
    train.iter().for_each(|(_, label)| counts[*label as usize] += 1);
    if let Some(label) = counts.iter().position(|&n| n == 0) {
        return Err(DataError::Corrupt {
            path: train_dir.join(&classes[label]),
            reason: "the class folder holds no .jpg/.jpeg/.png images (every training class needs some)".into(),
        });
    }
    let val_dir = dir.join("val");
    if !val_dir.is_dir() {
        return Err(DataError::Missing { path: val_dir, hint: LAYOUT.into() });
    }
    if let Some(stray) = class_names(&val_dir)?.into_iter().find(|c| !classes.contains(c)) {
        return Err(DataError::Corrupt {
            path: val_dir.join(&stray),
            reason: format!("no training class `{stray}` (DIR/train/{stray}) to label these images with"),
        });
    }
    let val = images(&val_dir, &classes)?;
    Ok((classes, train, val))
}

fn class_names(dir: &Path) -> Result<Vec<String>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|_| DataError::Missing { path: dir.into(), hint: LAYOUT.into() })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(DataError::Corrupt { path: dir.into(), reason: "no class folders".into() });
    }
    Ok(names)
}

fn images(dir: &Path, classes: &[String]) -> Result<Labelled, DataError> {
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let Ok(entries) = std::fs::read_dir(&class_dir) else { continue };
        let mut paths: Vec<PathBuf> =
            entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file() && is_image(p)).collect();
        paths.sort();
        files.extend(paths.into_iter().map(|p| (Place::File(p), label as u32)));
    }
    if files.is_empty() {
        return Err(DataError::Corrupt {
            path: dir.into(),
            reason: "no .jpg/.jpeg/.png images in the class folders".into(),
        });
    }
    Ok(files)
}
