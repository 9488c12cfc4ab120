//! Data sets of encoded images (JPEG, PNG), read and decoded when a batch needs them:
//! image folders (one file per image) and WebDataset shards (members of tar files). Each
//! image is decoded to RGB (grey and CMYK converted) and a region of it resized to the
//! network's input: the centre view (resize, centre crop) for evaluation, the region the
//! training augmentation draws otherwise.
//!
//! Decoders, measured on 500×375 JPEGs of quality 90 (README, "Data at ImageNet scale"):
//! zune-jpeg (the `image` crate's) decodes a full image in about the time libjpeg-turbo
//! does, and faster than jpeg-decoder; jpeg-decoder alone scales in the DCT, which pays
//! at ¼ and ⅛ scale. So a JPEG whose region is at least four times the input size on both
//! sides is decoded by jpeg-decoder at ¼ or ⅛ scale (as PIL's draft mode and DALI do), and
//! every other image by the `image` crate.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::transform::{self, Region};
use super::{DataError, Images};

/// Pixels the decoders may allocate for one image (a 16k × 10k photo): a header that
/// claims more is refused rather than allocated.
const MAX_PIXELS: u64 = 160_000_000;

/// Where an image's bytes are.
#[derive(Clone, Debug)]
pub enum Place {
    /// A file of its own.
    File(PathBuf),
    /// A member of shard `shard`: `len` bytes at `offset`, named `name` in the tar.
    Member { shard: usize, offset: u64, len: u64, name: String },
}

/// Images with their labels, in data-set order.
pub type Labelled = Vec<(Place, u32)>;
/// The tar files shards' members are read from, open.
pub type Shards = Vec<(PathBuf, File)>;

/// Encoded images with their labels, decoded to `[3, size, size]`.
pub struct Encoded {
    pub classes: Vec<String>,
    images: Labelled,
    /// The tar files members are read from.
    shards: Shards,
    size: usize,
    /// The shorter side of the centre view before its crop of `size`.
    resize: usize,
}

impl Encoded {
    pub fn new(classes: Vec<String>, images: Labelled, shards: Shards, size: usize, resize: usize) -> Encoded {
        Encoded { classes, images, shards, size, resize: resize.max(size) }
    }

    /// Where image `i` is, for messages: its file, or its shard and member.
    fn describe(&self, i: usize) -> PathBuf {
        match &self.images[i].0 {
            Place::File(p) => p.clone(),
            Place::Member { shard, name, .. } => self.shards[*shard].0.join(name),
        }
    }

    /// The encoded bytes of image `i`.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, DataError> {
        match &self.images[i].0 {
            Place::File(path) => std::fs::read(path).map_err(|error| DataError::Io { path: path.clone(), error }),
            Place::Member { shard, offset, len, name } => {
                let (path, file) = &self.shards[*shard];
                let mut buf = vec![0u8; *len as usize];
                file.read_exact_at(&mut buf, *offset).map_err(|e| DataError::Corrupt {
                    path: path.clone(),
                    reason: format!("member {name}: {e} (the shard is truncated or changed since it was read)"),
                })?;
                Ok(buf)
            }
        }
    }

    fn corrupt(&self, i: usize, reason: String) -> DataError {
        DataError::Corrupt { path: self.describe(i), reason }
    }
}

impl Images for Encoded {
    fn len(&self) -> usize {
        self.images.len()
    }
    fn shape(&self) -> [usize; 3] {
        [3, self.size, self.size]
    }
    fn label(&self, i: usize) -> u32 {
        self.images[i].1
    }
    fn read(&self, i: usize, out: &mut [u8]) -> Result<(), DataError> {
        let (size, resize) = (self.size, self.resize);
        self.read_region(i, &|w, h| Region::centre(w, h, size, resize), out)
    }
    fn read_region(&self, i: usize, pick: &dyn Fn(u32, u32) -> Region, out: &mut [u8]) -> Result<(), DataError> {
        let bytes = self.bytes(i)?;
        let (picture, region) = decode(&bytes, self.size, pick).map_err(|reason| self.corrupt(i, reason))?;
        transform::resample(&picture, region, self.size, out);
        Ok(())
    }
}

/// Decodes `bytes` to RGB, with the region `pick` chooses in the full-size image mapped
/// onto the picture decoded (smaller than full size when DCT scaling applies).
pub fn decode(bytes: &[u8], size: usize, pick: &dyn Fn(u32, u32) -> Region) -> Result<(RgbImage, Region), String> {
    if bytes.starts_with(&[0xff, 0xd8]) {
        // zune-jpeg fills the missing rows of a cut-off JPEG with grey and reports no
        // error; PIL refuses such a file, and so does slimc. A complete JPEG ends with
        // the end-of-image marker (some writers pad after it).
        let tail = &bytes[bytes.len().saturating_sub(4096)..];
        if !tail.windows(2).any(|w| w == [0xff, 0xd9]) {
            return Err("truncated JPEG (no end-of-image marker)".into());
        }
        if let Some(scaled) = decode_scaled(bytes, size, pick)? {
            return Ok(scaled);
        }
    }
    let picture = decode_full(bytes)?;
    if picture.width() == 0 || picture.height() == 0 {
        return Err("the image is empty".into());
    }
    let region = pick(picture.width(), picture.height());
    Ok((picture, region))
}

/// The `image` crate's decode of any format it reads, converted to RGB.
fn decode_full(bytes: &[u8]) -> Result<RgbImage, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("cannot decode the image: {e}"))?;
    Ok(img.to_rgb8())
}

/// A JPEG decoded at ¼ or ⅛ scale when its region stays at least `size` on both sides
/// there; `None` when it would not (or the colour type needs the full decoder's
/// conversion).
fn decode_scaled(
    bytes: &[u8],
    size: usize,
    pick: &dyn Fn(u32, u32) -> Region,
) -> Result<Option<(RgbImage, Region)>, String> {
    let mut dec = jpeg_decoder::Decoder::new(bytes);
    dec.set_max_decoding_buffer_size((MAX_PIXELS * 4) as usize);
    dec.read_info().map_err(|e| format!("cannot decode the JPEG: {e}"))?;
    let Some(info) = dec.info() else { return Ok(None) };
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!("the JPEG claims {w}×{h} pixels"));
    }
    let region = pick(w, h);
    let side = region.width.min(region.height) as usize;
    let Some(den) = [8usize, 4].into_iter().find(|d| side >= d * size.max(1)) else { return Ok(None) };
    if !matches!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8) {
        return Ok(None);
    }
    let den = den as u32;
    let (sw, sh) = dec
        .scale(w.div_ceil(den) as u16, h.div_ceil(den) as u16)
        .map_err(|e| format!("cannot decode the JPEG: {e}"))?;
    let pixels = dec.decode().map_err(|e| format!("cannot decode the JPEG: {e}"))?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => pixels,
    };
    let picture = RgbImage::from_raw(sw, sh, rgb).ok_or("the JPEG decoded to fewer pixels than its header says")?;
    Ok(Some((picture, region.scaled(sw, w, sw, sh))))
}

/// Whether `path` names an image the readers decode.
pub fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, grey: bool) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut bytes = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
        if grey {
            image::DynamicImage::ImageRgb8(img).to_luma8().write_with_encoder(enc).unwrap();
        } else {
            img.write_with_encoder(enc).unwrap();
        }
        bytes
    }

    #[test]
    fn large_regions_decode_at_a_dct_scale_and_agree_with_the_full_decode() {
        let bytes = jpeg(512, 384, false);
        let full = |w, h| Region::whole(w, h);
        // A 64-pixel input from a 384-pixel short side: ⅛ would leave 48, so ¼.
        let (pic, region) = decode(&bytes, 64, &full).unwrap();
        assert_eq!((pic.width(), pic.height()), (128, 96));
        assert_eq!(region, Region::whole(128, 96));
        // A 224-pixel input: decoded whole.
        let (pic, region) = decode(&bytes, 224, &full).unwrap();
        assert_eq!((pic.width(), pic.height(), region), (512, 384, Region::whole(512, 384)));
        // Both paths give about the same 32×32 input (the gradient of the test image).
        let (mut a, mut b) = (vec![0u8; 3 * 32 * 32], vec![0u8; 3 * 32 * 32]);
        let (p, r) = decode(&bytes, 32, &full).unwrap();
        assert!(p.width() < 512, "scaled");
        transform::resample(&p, r, 32, &mut a);
        let p = decode_full(&bytes).unwrap();
        transform::resample(&p, Region::whole(512, 384), 32, &mut b);
        let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(worst <= 12, "scaled and full decodes differ by {worst}");
    }

    #[test]
    fn grey_jpegs_become_rgb_and_garbage_is_an_error() {
        for size in [8, 64] {
            let (pic, _) = decode(&jpeg(64, 64, true), size, &|w, h| Region::whole(w, h)).unwrap();
            assert!(pic.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "size {size}");
        }
        let mut bytes = jpeg(64, 64, false);
        bytes.truncate(bytes.len() * 3 / 4);
        let e = decode(&bytes, 8, &|w, h| Region::whole(w, h)).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        bytes.truncate(40);
        assert!(decode(&bytes, 8, &|w, h| Region::whole(w, h)).is_err());
        assert!(decode(b"not an image", 8, &|w, h| Region::whole(w, h)).is_err());
    }
}
