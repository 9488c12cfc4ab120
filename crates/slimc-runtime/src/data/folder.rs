//! ImageFolder trees (the ImageNet layout): `DIR/train/<class>/*.{jpg,jpeg,png}` and
//! `DIR/val/<class>/...`, classes in sorted order. Images are decoded when a batch needs
//! them (the set need not fit in memory): RGB, the shorter side resized to `size`, then a
//! centre crop of `size × size`.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::{DataError, Images};

pub const LAYOUT: &str =
    "expected DIR/train/<class>/<image>.{jpg,jpeg,png} and DIR/val/<class>/... (one folder per class)";

pub struct Folder {
    pub classes: Vec<String>,
    files: Vec<(PathBuf, u32)>,
    size: usize,
}

pub fn load(dir: &Path, size: usize) -> Result<(Folder, Folder), DataError> {
    let train_dir = dir.join("train");
    let classes = class_names(&train_dir)?;
    let train = scan(&train_dir, &classes, size)?;
    let val_dir = dir.join("val");
    let val = scan(&val_dir, &classes, size)?;
    Ok((train, val))
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

fn scan(dir: &Path, classes: &[String], size: usize) -> Result<Folder, DataError> {
    if !dir.is_dir() {
        return Err(DataError::Missing { path: dir.into(), hint: LAYOUT.into() });
    }
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let Ok(entries) = std::fs::read_dir(&class_dir) else { continue };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
                matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
            })
            .collect();
        paths.sort();
        files.extend(paths.into_iter().map(|p| (p, label as u32)));
    }
    if files.is_empty() {
        return Err(DataError::Corrupt {
            path: dir.into(),
            reason: "no .jpg/.jpeg/.png images in the class folders".into(),
        });
    }
    Ok(Folder { classes: classes.to_vec(), files, size })
}

impl Images for Folder {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn shape(&self) -> [usize; 3] {
        [3, self.size, self.size]
    }
    fn label(&self, i: usize) -> u32 {
        self.files[i].1
    }
    fn read(&self, i: usize, out: &mut [u8]) -> Result<(), DataError> {
        let path = &self.files[i].0;
        let img = image::open(path).map_err(|e| DataError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        let (w, h) = (img.width().max(1), img.height().max(1));
        let s = self.size as u32;
        let (nw, nh) = if w < h { (s, (h * s).div_ceil(w)) } else { ((w * s).div_ceil(h), s) };
        let img = img.resize_exact(nw, nh, FilterType::Triangle).to_rgb8();
        let (x0, y0) = ((nw - s) / 2, (nh - s) / 2);
        let plane = self.size * self.size;
        for y in 0..s {
            for x in 0..s {
                let p = img.get_pixel(x0 + x, y0 + y);
                let at = (y * s + x) as usize;
                for c in 0..3 {
                    out[c * plane + at] = p[c];
                }
            }
        }
        Ok(())
    }
}
