//! Data sets for `slimc train` / `eval`: Fashion-MNIST and MNIST (IDX files, gzip'd or
//! not), CIFAR-10/100 (binary batches), ImageFolder trees and WebDataset shards. Images
//! are u8 `[C, H, W]`; batches are normalised f32 with seeded augmentation (for small
//! images a random crop with zero padding and a flip, for photographs the Inception
//! recipe of [`transform`]), built by the loader's own workers while the previous batch
//! trains. Nothing is downloaded: a missing data set is an error that says how to get it.

mod cifar;
pub mod encoded;
mod folder;
mod idx;
mod loader;
pub mod shards;
pub mod transform;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

pub use loader::{batches, default_workers, epoch_order, set_workers, workers, Batch, Batches, Plan, PREFETCH};
pub use transform::{Inception, Region};

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// A `--data` value.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    FashionMnist(PathBuf),
    Mnist(PathBuf),
    Cifar10(PathBuf),
    Cifar100(PathBuf),
    ImageFolder(PathBuf),
    /// WebDataset shards ([`shards`]).
    WebDataset(PathBuf),
}

impl DataSpec {
    /// `fashion-mnist[:DIR]`, `mnist:DIR`, `cifar10:DIR`, `cifar100:DIR`, `imagefolder:DIR`,
    /// `webdataset:DIR`.
    pub fn parse(s: &str) -> Result<DataSpec, SpecError> {
        let (kind, dir) = match s.split_once(':') {
            Some((k, d)) if !d.is_empty() => (k, Some(PathBuf::from(d))),
            Some((k, _)) => return Err(SpecError::EmptyDir(k.into())),
            None => (s, None),
        };
        let need = |d: Option<PathBuf>| d.ok_or_else(|| SpecError::NeedsDir(kind.into()));
        Ok(match kind {
            "fashion-mnist" => DataSpec::FashionMnist(dir.unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR))),
            "mnist" => DataSpec::Mnist(need(dir)?),
            "cifar10" => DataSpec::Cifar10(need(dir)?),
            "cifar100" => DataSpec::Cifar100(need(dir)?),
            "imagefolder" => DataSpec::ImageFolder(need(dir)?),
            "webdataset" => DataSpec::WebDataset(need(dir)?),
            _ => return Err(SpecError::Unknown(kind.into())),
        })
    }

    pub fn dir(&self) -> &Path {
        match self {
            DataSpec::FashionMnist(d)
            | DataSpec::Mnist(d)
            | DataSpec::Cifar10(d)
            | DataSpec::Cifar100(d)
            | DataSpec::ImageFolder(d)
            | DataSpec::WebDataset(d) => d,
        }
    }

    /// Whether the set holds photographs of any size (decoded and cut to the network's
    /// input), rather than small images of one size.
    pub fn is_photographs(&self) -> bool {
        matches!(self, DataSpec::ImageFolder(_) | DataSpec::WebDataset(_))
    }

    /// The augmentation that suits the data: none for digits, a padded crop and a flip for
    /// small images, the Inception recipe for photographs.
    pub fn augment(&self, size: usize) -> Augment {
        match self {
            DataSpec::ImageFolder(_) | DataSpec::WebDataset(_) => Augment::Inception(Inception::default()),
            _ => self.small_augment(size),
        }
    }

    /// The augmentation of runs started before photographs had their own (and of small
    /// images now): none for digits, crop + flip otherwise.
    pub fn small_augment(&self, size: usize) -> Augment {
        match self {
            DataSpec::Mnist(_) => Augment::NONE,
            DataSpec::FashionMnist(_) => Augment::Pad { pad: 2, flip: true },
            DataSpec::Cifar10(_) | DataSpec::Cifar100(_) => Augment::Pad { pad: 4, flip: true },
            DataSpec::ImageFolder(_) | DataSpec::WebDataset(_) => Augment::Pad { pad: size / 8, flip: true },
        }
    }

    /// Evaluation's resize before the centre crop of `size` (photographs): ImageNet's
    /// 256 for 224, i.e. `size / 0.875`.
    pub fn eval_resize(size: usize) -> usize {
        (size as f64 / 0.875).round() as usize
    }
}

impl std::fmt::Display for DataSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            DataSpec::FashionMnist(_) => "fashion-mnist",
            DataSpec::Mnist(_) => "mnist",
            DataSpec::Cifar10(_) => "cifar10",
            DataSpec::Cifar100(_) => "cifar100",
            DataSpec::ImageFolder(_) => "imagefolder",
            DataSpec::WebDataset(_) => "webdataset",
        };
        write!(f, "{kind}:{}", self.dir().display())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory the data set needs is not there.
    #[error("{} not found; {hint}", path.display())]
    Missing { path: PathBuf, hint: String },
    /// A file is there but truncated or not in the expected format.
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    /// The validation hold-out takes every training image.
    #[error("holding out {val} validation images leaves none of the {train} training images")]
    NoTrainingImages { val: usize, train: usize },
    /// An output that would be overwritten.
    #[error("{} already exists; choose another output (nothing was written)", .0.display())]
    Exists(PathBuf),
    /// The evaluation resize is smaller than the crop it is cut to.
    #[error("the evaluation resize {resize} is smaller than the input size {size}")]
    ResizeBelowSize { resize: usize, size: usize },
}

/// A data-set name that is not one slimc reads.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("`{0}:` needs a directory after the colon")]
    EmptyDir(String),
    #[error("`{0}` needs a directory: `{0}:DIR`")]
    NeedsDir(String),
    #[error(
        "unknown data set `{0}`; use fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, imagefolder:DIR or webdataset:DIR"
    )]
    Unknown(String),
}

/// A source of labelled images, all of one shape.
pub trait Images: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `[C, H, W]`.
    fn shape(&self) -> [usize; 3];
    fn label(&self, i: usize) -> u32;
    /// Writes image `i` (u8, `C·H·W` values) into `out`: for photographs, the centre view.
    fn read(&self, i: usize, out: &mut [u8]) -> Result<(), DataError>;
    /// Writes the region `pick(width, height)` of image `i`, resized to the set's shape,
    /// into `out`; `width × height` is the image's size as stored (for photographs, before
    /// any resize). Sets of one size crop what `read` writes; those of encoded images
    /// decode only what the region needs.
    fn read_region(&self, i: usize, pick: &dyn Fn(u32, u32) -> Region, out: &mut [u8]) -> Result<(), DataError> {
        let [c, h, w] = self.shape();
        let mut raw = vec![0u8; c * h * w];
        self.read(i, &mut raw)?;
        let plane = h * w;
        let picture = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let at = y as usize * w + x as usize;
            image::Rgb(std::array::from_fn(|k| raw[k.min(c - 1) * plane + at]))
        });
        let mut rgb = vec![0u8; 3 * plane];
        transform::resample(&picture, pick(w as u32, h as u32), h, &mut rgb);
        out.copy_from_slice(&rgb[..c * plane]);
        Ok(())
    }
}

/// Images held in memory.
pub struct InMemory {
    pub shape: [usize; 3],
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
}

impl Images for InMemory {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn shape(&self) -> [usize; 3] {
        self.shape
    }
    fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }
    fn read(&self, i: usize, out: &mut [u8]) -> Result<(), DataError> {
        let n = self.shape.iter().product::<usize>();
        out.copy_from_slice(&self.pixels[i * n..(i + 1) * n]);
        Ok(())
    }
}

/// A loaded data set: its training and test images.
pub struct Dataset {
    pub spec: DataSpec,
    pub classes: usize,
    pub train: Arc<dyn Images>,
    pub test: Arc<dyn Images>,
}

impl Dataset {
    pub fn shape(&self) -> [usize; 3] {
        self.train.shape()
    }
}

/// Loads a data set. `size` is the side photographs are cut to, and `resize` the shorter
/// side they are resized to before the centre crop of evaluation (at least `size`).
pub fn load(spec: &DataSpec, size: usize, resize: usize) -> Result<Dataset, DataError> {
    if spec.is_photographs() && resize < size {
        return Err(DataError::ResizeBelowSize { resize, size });
    }
    let dir = spec.dir();
    if !dir.is_dir() {
        let hint = match spec {
            DataSpec::FashionMnist(d) if d == Path::new(FASHION_MNIST_DIR) => {
                "install it with `sudo apt-get install dataset-fashion-mnist` (or pass --data fashion-mnist:DIR)".into()
            }
            DataSpec::FashionMnist(_) | DataSpec::Mnist(_) => idx::LAYOUT.into(),
            DataSpec::Cifar10(_) => cifar::LAYOUT_10.into(),
            DataSpec::Cifar100(_) => cifar::LAYOUT_100.into(),
            DataSpec::ImageFolder(_) => folder::LAYOUT.into(),
            DataSpec::WebDataset(_) => shards::LAYOUT.into(),
        };
        return Err(DataError::Missing { path: dir.to_path_buf(), hint });
    }
    let (train, test, classes): (Arc<dyn Images>, Arc<dyn Images>, usize) = match spec {
        DataSpec::FashionMnist(d) | DataSpec::Mnist(d) => {
            (Arc::new(idx::load(d, "train")?), Arc::new(idx::load(d, "t10k")?), 10)
        }
        DataSpec::Cifar10(d) => {
            let (train, test) = cifar::load(d, false)?;
            (Arc::new(train), Arc::new(test), 10)
        }
        DataSpec::Cifar100(d) => {
            let (train, test) = cifar::load(d, true)?;
            (Arc::new(train), Arc::new(test), 100)
        }
        DataSpec::ImageFolder(d) => {
            let (train, test) = folder::load(d, size, resize)?;
            let classes = train.classes.len();
            (Arc::new(train), Arc::new(test), classes)
        }
        DataSpec::WebDataset(d) => {
            let (train, test) = shards::load(d, size, resize)?;
            let classes = train.classes.len();
            (Arc::new(train), Arc::new(test), classes)
        }
    };
    if train.is_empty() || test.is_empty() {
        return Err(DataError::Corrupt { path: dir.to_path_buf(), reason: "no images".into() });
    }
    Ok(Dataset { spec: spec.clone(), classes, train, test })
}

/// A subset of a source's images, by index.
#[derive(Clone)]
pub struct Split {
    pub images: Arc<dyn Images>,
    pub indices: Vec<usize>,
}

impl Split {
    /// A content fingerprint (64-bit FNV-1a): the shape, every label in order, and the
    /// pixels of up to 256 evenly spaced images. Two copies of one data set agree; a
    /// different set of the same size almost surely does not. Cheap even for an image
    /// folder (256 decodes).
    pub fn fingerprint(&self) -> Result<u64, DataError> {
        use crate::hash::{fnv1a as fnv, FNV_START};
        let shape = self.images.shape();
        let mut h = fnv(FNV_START, &shape.map(|d| d as u64).map(u64::to_le_bytes).concat());
        for &i in &self.indices {
            h = fnv(h, &self.images.label(i).to_le_bytes());
        }
        let n = self.indices.len();
        let mut pixels = vec![0u8; shape.iter().product()];
        for k in 0..n.min(256) {
            self.images.read(self.indices[k * n / n.min(256)], &mut pixels)?;
            h = fnv(h, &pixels);
        }
        Ok(h)
    }

    pub fn all(images: Arc<dyn Images>) -> Split {
        let indices = (0..images.len()).collect();
        Split { images, indices }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Divides the split into (train, validation): `val` images drawn by a seeded shuffle.
    pub fn hold_out(&self, val: usize, seed: u64) -> (Split, Split) {
        let mut order = self.indices.clone();
        order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x005e_ed0f_da7a));
        let mut rest = order.split_off(val.min(order.len()));
        rest.sort_unstable();
        order.sort_unstable();
        (Split { images: self.images.clone(), indices: rest }, Split { images: self.images.clone(), indices: order })
    }
}

/// How many training images are held out for validation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Holdout {
    /// A number of images.
    Images(usize),
    /// A fraction of the training set, in [0, 1).
    Fraction(f64),
}

impl Holdout {
    /// The number of images held out of `train`, which must leave some to train on.
    pub fn size(self, train: usize) -> Result<usize, DataError> {
        let val = match self {
            Holdout::Images(n) => n,
            Holdout::Fraction(f) => (f.clamp(0.0, 1.0) * train as f64).round() as usize,
        };
        if val >= train {
            return Err(DataError::NoTrainingImages { val, train });
        }
        Ok(val)
    }
}

/// How training images are augmented.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Augment {
    /// Random crop (zero padding of `pad` pixels, then a crop of the original size) and
    /// horizontal flip: small images of one size.
    Pad { pad: usize, flip: bool },
    /// The Inception recipe (random resized crop, colour jitter, lighting, flip):
    /// photographs.
    Inception(Inception),
}

impl Augment {
    pub const NONE: Augment = Augment::Pad { pad: 0, flip: false };

    /// Whether the settings are in range (the Inception recipe's distributions).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Augment::Pad { pad, .. } if *pad > 1 << 12 => Err(format!("the crop padding {pad} is too large")),
            Augment::Pad { .. } => Ok(()),
            Augment::Inception(i) => i.check(),
        }
    }
}

/// Per-channel mean and standard deviation of pixel values in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// Measured on up to 10 000 images of `split` (evenly spaced, so deterministic).
    pub fn measure(split: &Split) -> Result<Normalize, DataError> {
        let [c, h, w] = split.images.shape();
        let plane = h * w;
        let take = split.len().min(10_000);
        let step = (split.len() / take.max(1)).max(1);
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        let mut buf = vec![0u8; c * plane];
        let mut n = 0usize;
        for &i in split.indices.iter().step_by(step).take(take) {
            split.images.read(i, &mut buf)?;
            for ch in 0..c {
                for &v in &buf[ch * plane..(ch + 1) * plane] {
                    let v = f64::from(v) / 255.0;
                    sum[ch] += v;
                    sq[ch] += v * v;
                }
            }
            n += plane;
        }
        let n = n.max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std =
            sq.iter().zip(&mean).map(|(q, m)| ((q / n - f64::from(*m).powi(2)).max(1e-12).sqrt()) as f32).collect();
        Ok(Normalize { mean, std })
    }
}
