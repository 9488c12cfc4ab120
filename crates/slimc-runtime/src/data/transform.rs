//! Image transforms on decoded pictures: a region resized to the network's input (the
//! centre view of evaluation, the random resized crop of training) and Inception-style
//! training augmentation (Szegedy et al. 2015's crop, the colour jitter and AlexNet's PCA
//! lighting noise of the seeds' ImageNet recipe). Every random choice is drawn from a
//! generator seeded by the sample's key, so an image's augmentation is a pure function of
//! (seed, position in the epoch order) and a resumed run repeats it exactly.

use image::RgbImage;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// A rectangle of a picture, in its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The whole of a `width × height` picture.
    pub fn whole(width: u32, height: u32) -> Region {
        Region { x: 0, y: 0, width, height }
    }

    /// Evaluation's view (torchvision's `Resize(resize)` then `CenterCrop(size)`): the
    /// centred square that becomes the crop once the shorter side is `resize` pixels.
    pub fn centre(width: u32, height: u32, size: usize, resize: usize) -> Region {
        let short = f64::from(width.min(height));
        let side = ((short * size as f64 / resize.max(1) as f64).round() as u32).clamp(1, width.min(height).max(1));
        Region { x: (width - side.min(width)) / 2, y: (height - side.min(height)) / 2, width: side, height: side }
    }

    /// The same rectangle in a copy of the picture scaled by `num / den` (a DCT-scaled
    /// decode), kept inside the `width × height` of that copy.
    pub fn scaled(self, num: u32, den: u32, width: u32, height: u32) -> Region {
        let s = |v: u32| ((u64::from(v) * u64::from(num)) / u64::from(den)) as u32;
        let x = s(self.x).min(width.saturating_sub(1));
        let y = s(self.y).min(height.saturating_sub(1));
        let w = s(self.width).clamp(1, width - x);
        let h = s(self.height).clamp(1, height - y);
        Region { x, y, width: w, height: h }
    }
}

/// Inception-style training augmentation, as the seeds train on ImageNet: a random crop of
/// `scale` of the image's area and an aspect ratio in `ratio` (log-uniform), resized to
/// the input size; brightness, contrast and saturation each scaled by a factor drawn from
/// `[1 − jitter, 1 + jitter]`, in a random order; AlexNet's PCA lighting noise of standard
/// deviation `lighting`; a horizontal flip with probability ½.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inception {
    /// The crop's share of the image's area: (0.08, 1) for ResNets, (0.25, 1) for the
    /// mobile networks.
    pub scale: (f64, f64),
    /// The crop's aspect ratio (width / height).
    pub ratio: (f64, f64),
    pub jitter: f32,
    pub lighting: f32,
}

impl Default for Inception {
    fn default() -> Self {
        Inception { scale: (0.08, 1.0), ratio: (3.0 / 4.0, 4.0 / 3.0), jitter: 0.4, lighting: 0.1 }
    }
}

/// The eigenvalues of ImageNet's RGB covariance (pixels in [0, 1]), largest first, as
/// AlexNet's lighting noise and the seeds use them.
pub const EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
/// The matching eigenvectors, one per column: `EIGVEC[channel][component]`.
pub const EIGVEC: [[f32; 3]; 3] = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]];

/// Attempts at a crop inside the image before the centre fallback (torchvision's number).
const ATTEMPTS: usize = 10;

impl Inception {
    /// Whether the settings describe a distribution: scale in (0, 1] and ordered, ratio
    /// positive and ordered, jitter in [0, 1), lighting non-negative.
    pub fn check(&self) -> Result<(), String> {
        let (s0, s1) = self.scale;
        let (r0, r1) = self.ratio;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return Err(format!("the crop scale must satisfy 0 < min ≤ max ≤ 1, got {s0}..{s1}"));
        }
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err(format!("the crop aspect ratio must satisfy 0 < min ≤ max, got {r0}..{r1}"));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(format!("the colour jitter must be in [0, 1), got {}", self.jitter));
        }
        if !(self.lighting >= 0.0 && self.lighting.is_finite()) {
            return Err(format!("the lighting noise must be non-negative, got {}", self.lighting));
        }
        Ok(())
    }

    /// The crop of a `width × height` image for the sample keyed `key` (torchvision's
    /// `RandomResizedCrop.get_params`): up to ten draws of an area and a log-uniform
    /// aspect ratio, the first that fits placed uniformly; else the whole image cut to the
    /// nearest allowed ratio, centred.
    pub fn crop(&self, key: u64, width: u32, height: u32) -> Region {
        let mut rng = StdRng::seed_from_u64(key);
        let area = f64::from(width) * f64::from(height);
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..ATTEMPTS {
            let target = area * rng.random_range(self.scale.0..=self.scale.1);
            let aspect = rng.random_range(lr0..=lr1).exp();
            let w = (target * aspect).sqrt().round();
            let h = (target / aspect).sqrt().round();
            if w >= 1.0 && h >= 1.0 && w <= f64::from(width) && h <= f64::from(height) {
                let (w, h) = (w as u32, h as u32);
                let x = rng.random_range(0..=width - w);
                let y = rng.random_range(0..=height - h);
                return Region { x, y, width: w, height: h };
            }
        }
        let ratio = f64::from(width) / f64::from(height.max(1));
        let (w, h) = if ratio < self.ratio.0 {
            (width, ((f64::from(width) / self.ratio.0).round() as u32).clamp(1, height))
        } else if ratio > self.ratio.1 {
            (((f64::from(height) * self.ratio.1).round() as u32).clamp(1, width), height)
        } else {
            (width, height)
        };
        Region { x: (width - w) / 2, y: (height - h) / 2, width: w, height: h }
    }

    /// Colour jitter, lighting and flip of one cropped image (`[3, h, w]` in [0, 1]), the
    /// draws seeded by `key` (another stream than the crop's).
    pub fn colour(&self, key: u64, pixels: &mut [f32], [c, h, w]: [usize; 3]) {
        let mut rng = StdRng::seed_from_u64(key ^ 0xc01_0e5);
        if c == 3 {
            let mut order = [Jitter::Brightness, Jitter::Contrast, Jitter::Saturation];
            order.shuffle(&mut rng);
            let j = f64::from(self.jitter);
            for op in order {
                let f = rng.random_range(1.0 - j..=1.0 + j) as f32;
                op.apply(f, pixels, h * w);
            }
            if self.lighting > 0.0 {
                let normal = Normal::new(0.0f32, self.lighting).expect("a checked standard deviation");
                let alpha: [f32; 3] = std::array::from_fn(|_| normal.sample(&mut rng));
                lighting(pixels, h * w, alpha);
            }
        }
        if rng.random_bool(0.5) {
            flip(pixels, [c, h, w]);
        }
    }
}

/// One of the colour jitter's adjustments (torchvision's definitions, clamped to [0, 1]).
#[derive(Clone, Copy, Debug)]
enum Jitter {
    /// Scales every value.
    Brightness,
    /// Blends with the mean grey level of the whole image.
    Contrast,
    /// Blends each pixel with its own grey level.
    Saturation,
}

/// ITU-R 601 luma, the grey level torchvision's jitter blends with.
fn grey(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

impl Jitter {
    fn apply(self, f: f32, px: &mut [f32], plane: usize) {
        match self {
            Jitter::Brightness => px.iter_mut().for_each(|v| *v = (*v * f).clamp(0.0, 1.0)),
            Jitter::Contrast => {
                let (r, rest) = px.split_at(plane);
                let (g, b) = rest.split_at(plane);
                let mean = (0..plane).map(|i| f64::from(grey(r[i], g[i], b[i]))).sum::<f64>() / plane.max(1) as f64;
                let base = (1.0 - f) * mean as f32;
                px.iter_mut().for_each(|v| *v = (f * *v + base).clamp(0.0, 1.0));
            }
            Jitter::Saturation => {
                for i in 0..plane {
                    let y = grey(px[i], px[plane + i], px[2 * plane + i]);
                    for ch in 0..3 {
                        let v = &mut px[ch * plane + i];
                        *v = (f * *v + (1.0 - f) * y).clamp(0.0, 1.0);
                    }
                }
            }
        }
    }
}

/// AlexNet's lighting noise: adds `Σ_k EIGVEC[c][k] · alpha[k] · EIGVAL[k]` to channel `c`.
pub fn lighting(px: &mut [f32], plane: usize, alpha: [f32; 3]) {
    for (ch, chunk) in px.chunks_mut(plane).take(3).enumerate() {
        let shift: f32 = (0..3).map(|k| EIGVEC[ch][k] * alpha[k] * EIGVAL[k]).sum();
        chunk.iter_mut().for_each(|v| *v += shift);
    }
}

/// Mirrors every row of a `[c, h, w]` image.
pub fn flip(px: &mut [f32], [_, _, w]: [usize; 3]) {
    if w > 0 {
        px.chunks_mut(w).for_each(<[f32]>::reverse);
    }
}

/// `region` of `picture` resized to `size × size` (bilinear, antialiased when shrinking,
/// as PIL's and torchvision's), written channel-first into `out` (`3 · size²` values).
pub fn resample(picture: &RgbImage, region: Region, size: usize, out: &mut [u8]) {
    use fast_image_resize::{images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions};
    let Region { x, y, width, height } = region;
    let (pw, ph) = picture.dimensions();
    let plane = size * size;
    let s = size as u32;
    if pw == 0 || ph == 0 {
        out[..3 * plane].fill(0);
        return;
    }
    // The region is inside the picture (the crops are drawn so); clamp all the same.
    let (x, y) = (x.min(pw.saturating_sub(1)), y.min(ph.saturating_sub(1)));
    let (width, height) = (width.clamp(1, pw - x), height.clamp(1, ph - y));
    let src = ImageRef::new(pw, ph, picture.as_raw(), PixelType::U8x3);
    let mut dst = Image::new(s, s, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
        f64::from(x),
        f64::from(y),
        f64::from(width),
        f64::from(height),
    );
    let resized = src
        .ok()
        .and_then(|src| RESIZER.with_borrow_mut(|r| r.resize(&src, &mut dst, &opts)).ok().map(|()| dst.buffer()));
    match resized {
        Some(hwc) => {
            for (i, p) in hwc.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = p[c];
                }
            }
        }
        // Unreachable with a picture of its own pixel count; the nearest pixel otherwise.
        None => {
            for i in 0..plane {
                let (px, py) = ((i % size) as u32, (i / size) as u32);
                let sx = (x + px * width / s).min(pw - 1);
                let sy = (y + py * height / s).min(ph - 1);
                let p = picture.get_pixel(sx, sy);
                for c in 0..3 {
                    out[c * plane + i] = p[c];
                }
            }
        }
    }
}

thread_local! {
    /// Each worker's resizer (it keeps its buffers between images).
    static RESIZER: std::cell::RefCell<fast_image_resize::Resizer> = std::cell::RefCell::new(fast_image_resize::Resizer::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_lie_inside_with_the_area_and_aspect_drawn() {
        let aug = Inception::default();
        let (w, h) = (500u32, 375u32);
        let (mut ratios, mut areas) = (Vec::new(), Vec::new());
        let mut fallbacks = 0;
        for key in 0..4000u64 {
            let r = aug.crop(key, w, h);
            assert!(r.width >= 1 && r.height >= 1 && r.x + r.width <= w && r.y + r.height <= h, "{r:?}");
            let area = f64::from(r.width * r.height) / f64::from(w * h);
            let ratio = f64::from(r.width) / f64::from(r.height);
            if r == (Region { x: 0, y: 0, width: w, height: h }) {
                fallbacks += 1;
                continue;
            }
            // Rounding to whole pixels moves area and ratio by a little.
            assert!((0.08 * 0.97..=1.0).contains(&area), "area {area} of {r:?}");
            assert!((0.75 * 0.97..=4.0 / 3.0 * 1.03).contains(&ratio), "ratio {ratio} of {r:?}");
            ratios.push(ratio.ln());
            areas.push(area);
        }
        // Log-uniform ratios, symmetric about 1: about as many wide crops as tall ones.
        let wide = ratios.iter().filter(|&&l| l > 0.0).count() as f64 / ratios.len() as f64;
        assert!((0.4..0.6).contains(&wide), "share of wide crops {wide}");
        // Areas uniform on [0.08, 1]: a quarter of them under 0.31 (a few more, since the
        // largest draws often do not fit a 4:3 image at an extreme ratio and are redrawn).
        let small = areas.iter().filter(|&&a| a < 0.31).count() as f64 / areas.len() as f64;
        assert!((0.22..0.35).contains(&small), "share of crops under 0.31 of the area {small}");
        // Ten attempts almost always find a crop in a 4:3 image.
        assert!(fallbacks < 40, "{fallbacks} fallbacks");
    }

    #[test]
    fn the_fallback_is_the_centre_at_the_nearest_allowed_ratio() {
        // Scale (1, 1) with ratio (1, 1) fits only a square image: a 40×10 strip falls back.
        let aug = Inception { scale: (1.0, 1.0), ratio: (1.0, 1.0), ..Inception::default() };
        assert_eq!(aug.crop(7, 40, 10), Region { x: 15, y: 0, width: 10, height: 10 });
        assert_eq!(aug.crop(7, 10, 40), Region { x: 0, y: 15, width: 10, height: 10 });
        assert_eq!(aug.crop(7, 30, 30), Region { x: 0, y: 0, width: 30, height: 30 });
    }

    #[test]
    fn the_centre_view_is_resize_then_centre_crop() {
        // 500×375 at resize 256, crop 224: the crop is 224/256 of the short side, centred.
        assert_eq!(Region::centre(500, 375, 224, 256), Region { x: 86, y: 23, width: 328, height: 328 });
        assert_eq!(Region::centre(32, 32, 32, 32), Region::whole(32, 32));
    }

    #[test]
    fn lighting_adds_the_eigenvector_combination() {
        let mut px = vec![0.5f32; 3 * 4];
        lighting(&mut px, 4, [1.0, 0.0, 0.0]);
        for c in 0..3 {
            let want = 0.5 + EIGVEC[c][0] * EIGVAL[0];
            assert!(px[c * 4..(c + 1) * 4].iter().all(|&v| (v - want).abs() < 1e-7), "channel {c}");
        }
        // The components are orthonormal: the second moves the channels along its own axis.
        let dot: f32 = (0..3).map(|c| EIGVEC[c][0] * EIGVEC[c][1]).sum();
        assert!(dot.abs() < 1e-3);
    }

    #[test]
    fn jitter_definitions() {
        // Brightness scales, contrast blends with the mean grey, saturation with each
        // pixel's grey; all clamp to [0, 1].
        let mut px = vec![0.2, 0.8, 0.4, 0.4, 0.6, 0.2]; // two pixels, channel-first
        Jitter::Brightness.apply(2.0, &mut px, 2);
        assert_eq!(px, vec![0.4, 1.0, 0.8, 0.8, 1.0, 0.4]);
        let mut px = vec![0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
        Jitter::Contrast.apply(0.3, &mut px, 2);
        assert!(px.iter().all(|v| (v - 0.5).abs() < 1e-6), "a flat image keeps its level: {px:?}");
        let mut px = vec![1.0, 0.0, 0.0];
        Jitter::Saturation.apply(0.0, &mut px, 1);
        assert!(px.iter().all(|v| (v - 0.299).abs() < 1e-6), "saturation 0 is grey: {px:?}");
    }

    #[test]
    fn colour_is_seeded_and_flips_half_the_time() {
        let aug = Inception { jitter: 0.0, lighting: 0.0, ..Inception::default() };
        let base: Vec<f32> = (0..12).map(|v| v as f32 / 12.0).collect(); // 3 × 1 × 4
        let mut flips = 0;
        for key in 0..200 {
            let mut a = base.clone();
            aug.colour(key, &mut a, [3, 1, 4]);
            let mut b = base.clone();
            aug.colour(key, &mut b, [3, 1, 4]);
            assert_eq!(a, b, "the same key draws the same");
            if a != base {
                let mut m = base.clone();
                flip(&mut m, [3, 1, 4]);
                assert_eq!(a, m, "without jitter or lighting the only change is the flip");
                flips += 1;
            }
        }
        assert!((70..130).contains(&flips), "{flips} flips of 200");
    }

    #[test]
    fn resample_of_the_whole_at_its_size_is_the_picture() {
        let pic = RgbImage::from_fn(3, 3, |x, y| image::Rgb([(x * 10) as u8, (y * 10) as u8, 7]));
        let mut out = vec![0u8; 27];
        resample(&pic, Region::whole(3, 3), 3, &mut out);
        assert_eq!(&out[..9], &[0, 10, 20, 0, 10, 20, 0, 10, 20]);
        assert_eq!(&out[9..18], &[0, 0, 0, 10, 10, 10, 20, 20, 20]);
        assert!(out[18..].iter().all(|&v| v == 7));
        // A region is cut before resizing.
        let mut out = vec![0u8; 3];
        resample(&pic, Region { x: 2, y: 1, width: 1, height: 1 }, 1, &mut out);
        assert_eq!(out, vec![20, 10, 7]);
    }
}
