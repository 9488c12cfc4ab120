//! `cargo bench --bench decoders [JPEG]`: the JPEG decoders and resizers slimc chose among
//! for photographs (README, "Data at ImageNet scale"), on one thread, ms per image, the
//! median of `RUNS` (default 5) rounds of 100. Without a file, a 500×375 JPEG of quality 90
//! (a textured gradient with a disc, noisy like a photograph) is made here.
//!
//! Rows: zune-jpeg through the `image` crate (slimc's full-size decoder); jpeg-decoder's
//! header parse (slimc reads it to choose a scale), and its decode at full, ½, ¼ and ⅛ scale (slimc uses it at ¼ and ⅛); slimc's own decode for a 224 crop
//! and for a 64 crop (which picks ¼); the resize of a 300² region to 224² with the
//! `image` crate and with fast_image_resize (through `data::transform::resample`).

use std::time::Instant;

use image::{imageops, Rgb, RgbImage};
use slimc_runtime::data::encoded::decode;
use slimc_runtime::data::transform::resample;
use slimc_runtime::data::Region;

fn photo() -> Vec<u8> {
    let (w, h) = (500u32, 375u32);
    let mut state = 12345u64;
    let img = RgbImage::from_fn(w, h, |x, y| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let noise = (state >> 58) as i32;
        let inside = (x as i32 - 250).pow(2) + (y as i32 - 180).pow(2) < 90 * 90;
        let base = if inside { [200, 60, 40] } else { [(x / 2) as i32, (y / 2) as i32, 120] };
        Rgb(base.map(|v| (v + noise).clamp(0, 255) as u8))
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img).expect("encodes");
    bytes
}

/// The median over `runs` rounds of ms per call of `f`, 100 calls a round.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..100 {
                f();
            }
            start.elapsed().as_secs_f64() * 1e3 / 100.0
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn main() {
    let runs = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5usize).max(1);
    let file = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let bytes = match &file {
        Some(path) => std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}")),
        None => photo(),
    };
    let full = image::load_from_memory(&bytes).expect("a JPEG").to_rgb8();
    let (w, h) = full.dimensions();
    println!(
        "{} ({w}×{h}, {} bytes), median of {runs} rounds, ms per image",
        file.as_deref().unwrap_or("generated"),
        bytes.len()
    );
    let ms = time(runs, || drop(image::load_from_memory(&bytes).expect("decodes")));
    println!("{:<44} {ms:.3}", "zune-jpeg (image crate), full size");
    let ms = time(runs, || {
        let mut d = jpeg_decoder::Decoder::new(&bytes[..]);
        d.read_info().expect("a header");
    });
    println!("{:<44} {ms:.3}", "jpeg-decoder, the header alone");
    for den in [1u32, 2, 4, 8] {
        let ms = time(runs, || {
            let mut d = jpeg_decoder::Decoder::new(&bytes[..]);
            d.read_info().expect("a header");
            d.scale(w.div_ceil(den) as u16, h.div_ceil(den) as u16).expect("scales");
            drop(d.decode().expect("decodes"));
        });
        println!("{:<44} {ms:.3}", format!("jpeg-decoder at 1/{den}"));
    }
    for size in [224usize, 64] {
        let ms = time(runs, || drop(decode(&bytes, size, &|w, h| Region::whole(w, h)).expect("decodes")));
        println!("{:<44} {ms:.3}", format!("slimc's decode for a {size} crop of the whole"));
    }
    let region = Region { x: 10, y: 10, width: 300, height: 300 };
    let ms = time(runs, || {
        let view = imageops::crop_imm(&full, region.x, region.y, region.width, region.height);
        drop(imageops::resize(&*view, 224, 224, imageops::FilterType::Triangle));
    });
    println!("{:<44} {ms:.3}", "image crate resize, 300² → 224² (triangle)");
    let mut out = vec![0u8; 3 * 224 * 224];
    let ms = time(runs, || resample(&full, region, 224, &mut out));
    println!("{:<44} {ms:.3}", "fast_image_resize (resample), 300² → 224²");
}
