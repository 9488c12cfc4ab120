//! Photographs end to end: an image folder of JPEGs and PNGs written here, packed into
//! WebDataset shards, read back through both readers with the Inception augmentation and
//! the centre view; the batches of both agree, a resumed epoch repeats the uninterrupted
//! one whatever the worker count, and bad input is refused with the file named.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{Rgb, RgbImage};
use slimc_runtime::data::{
    self, shards, Augment, Batch, DataError, DataSpec, Inception, Normalize, Plan, Region, Split,
};

use common::scratch;

fn slimc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slimc")).args(args).output().expect("slimc runs")
}

/// A photograph of class `class`: its colour on a gradient, `w × h`.
fn photo(class: u32, i: u32, w: u32, h: u32) -> RgbImage {
    let hue = [[220, 40, 40], [40, 200, 60], [50, 60, 230]][class as usize % 3];
    RgbImage::from_fn(w, h, |x, y| {
        let t = ((x * 7 + y * 3 + i * 11) % 40) as u8;
        Rgb(hue.map(|c: u8| c.saturating_sub(t)))
    })
}

/// An image folder of 3 classes: `per_class` training and 2 validation images each, of
/// several sizes and orientations, JPEGs with one PNG and one grey JPEG among them.
fn folder(dir: &Path, per_class: u32) {
    for (split, n) in [("train", per_class), ("val", 2)] {
        for class in 0..3u32 {
            let d = dir.join(split).join(format!("class{class}"));
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let (w, h) = [(80, 60), (60, 80), (96, 64)][(i % 3) as usize];
                let img = photo(class, i, w, h);
                match i {
                    1 => img.save(d.join(format!("img{i:03}.png"))).unwrap(),
                    2 => image::DynamicImage::ImageRgb8(img).to_luma8().save(d.join(format!("img{i:03}.jpg"))).unwrap(),
                    _ => img.save(d.join(format!("img{i:03}.JPEG"))).unwrap(),
                }
            }
        }
    }
}

fn all_batches(split: &Split, norm: &Normalize, plan: Plan, order: Vec<usize>) -> Vec<Batch> {
    data::batches(split, order, norm, plan).collect::<Result<Vec<_>, _>>().expect("batches")
}

fn train_plan(skip: usize) -> Plan {
    Plan { batch: 4, skip, drop_last: true, augment: Augment::Inception(Inception::default()), seed: 7, shard: (0, 1) }
}

fn same(a: &[Batch], b: &[Batch]) {
    assert_eq!(a.len(), b.len());
    for (k, (a, b)) in a.iter().zip(b).enumerate() {
        assert_eq!(a.y, b.y, "labels of batch {k}");
        assert_eq!(a.x, b.x, "pixels of batch {k}");
    }
}

#[test]
fn shards_read_as_the_folder_batch_for_batch() {
    let dir = scratch("photos-same");
    folder(&dir.join("tree"), 6);
    let packed = shards::pack(&dir.join("tree"), &dir.join("shards"), 5).unwrap();
    assert_eq!((packed.classes, packed.train, packed.val), (3, 18, 6));
    assert_eq!(packed.shards, 4 + 2, "18 training images in shards of 5, 6 validation ones");
    let a = data::load(&DataSpec::ImageFolder(dir.join("tree")), 32, 37).unwrap();
    let b = data::load(&DataSpec::WebDataset(dir.join("shards")), 32, 37).unwrap();
    assert_eq!((a.classes, b.classes, a.shape(), b.shape()), (3, 3, [3, 32, 32], [3, 32, 32]));
    let (sa, sb) = (Split::all(a.train.clone()), Split::all(b.train.clone()));
    let norm = Normalize::measure(&sa).unwrap();
    assert_eq!(norm, Normalize::measure(&sb).unwrap());
    assert_eq!(sa.fingerprint().unwrap(), sb.fingerprint().unwrap());
    let order = data::epoch_order(&sa, 3, 1);
    same(&all_batches(&sa, &norm, train_plan(0), order.clone()), &all_batches(&sb, &norm, train_plan(0), order));
    let (ta, tb) = (Split::all(a.test.clone()), Split::all(b.test.clone()));
    same(
        &all_batches(&ta, &norm, Plan::eval(4), ta.indices.clone()),
        &all_batches(&tb, &norm, Plan::eval(4), tb.indices.clone()),
    );
    // The classes keep their names through the shards' classes.txt.
    let names = std::fs::read_to_string(dir.join("shards").join(shards::CLASSES)).unwrap();
    assert_eq!(names, "class0\nclass1\nclass2\n");
}

#[test]
fn a_resumed_epoch_repeats_the_uninterrupted_one_whatever_the_workers() {
    let dir = scratch("photos-resume");
    folder(&dir.join("tree"), 6);
    let set = data::load(&DataSpec::ImageFolder(dir.join("tree")), 24, 28).unwrap();
    let split = Split::all(set.train.clone());
    let norm = Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] };
    let order = data::epoch_order(&split, 0, 2);
    data::set_workers(1);
    let whole = all_batches(&split, &norm, train_plan(0), order.clone());
    data::set_workers(3);
    let resumed = all_batches(&split, &norm, train_plan(2), order.clone());
    data::set_workers(0);
    assert_eq!(whole.len(), 4);
    same(&whole[2..], &resumed);
    // Another seed draws other crops: the augmentation is not the identity.
    let other = all_batches(&split, &norm, Plan { seed: 8, ..train_plan(0) }, order);
    assert_ne!(whole[0].x, other[0].x);
    // Each image is a crop of the image, not noise: its mean colour is its class's.
    for b in &whole {
        for (k, &y) in b.y.iter().enumerate() {
            let img = &b.x[k * 3 * 576..(k + 1) * 3 * 576];
            let mean = |c: usize| img[c * 576..(c + 1) * 576].iter().sum::<f32>() / 576.0;
            let strongest = (0..3).max_by(|&a, &c| mean(a).total_cmp(&mean(c))).unwrap();
            // The grey image (index 2 of each class) has no colour to check.
            if (mean(0) - mean(1)).abs() > 0.3 || (mean(1) - mean(2)).abs() > 0.3 {
                assert_eq!(strongest as u32, y, "batch image {k} of class {y}");
            }
        }
    }
}

#[test]
fn the_centre_view_and_a_region_read_the_right_pixels() {
    let dir = scratch("photos-view");
    let tree = dir.join("tree");
    folder(&tree, 3);
    // A 4×2 image whose left half is red and right half blue, in its own class.
    let d = tree.join("train").join("class0");
    let img = RgbImage::from_fn(40, 20, |x, _| if x < 20 { Rgb([250, 0, 0]) } else { Rgb([0, 0, 250]) });
    img.save(d.join("zz-halves.png")).unwrap();
    let set = data::load(&DataSpec::ImageFolder(tree), 8, 8).unwrap();
    // Class 0's files in name order: img000.JPEG, img001.png, img002.jpg, zz-halves.png.
    let i = 3;
    assert_eq!(set.train.label(i), 0);
    let mut out = vec![0u8; 3 * 64];
    // The centre view of a 40×20 image at resize 8: the middle 20×20 square, half red.
    set.train.read(i, &mut out).unwrap();
    assert_eq!(out[0], 250, "top-left is red");
    assert_eq!(out[2 * 64 + 7], 250, "top-right is blue");
    // A region of the left half only: all red.
    set.train.read_region(i, &|_, _| Region { x: 0, y: 0, width: 10, height: 10 }, &mut out).unwrap();
    assert!(out[..64].iter().all(|&v| v == 250) && out[128..].iter().all(|&v| v == 0));
}

#[test]
fn cmyk_and_grey_jpegs_decode_to_rgb() {
    // A 16×12 CMYK JPEG (Adobe, as Pillow writes it) of pure red.
    let bytes = std::fs::read("tests/fixtures/cmyk.jpg").unwrap();
    let (picture, _) = data::encoded::decode(&bytes, 8, &|w, h| Region::whole(w, h)).unwrap();
    let p = picture.get_pixel(8, 6);
    assert!(p[0] > 200 && p[1] < 40 && p[2] < 40, "CMYK red decodes to {p:?}");
}

/// The data set at `dir` fails to load, with `path` (relative to `dir`) in its message.
fn refused(spec: DataSpec, what: &str) -> String {
    let e = data::load(&spec, 16, 16).err().unwrap_or_else(|| panic!("{what}: loaded"));
    e.to_string()
}

#[test]
fn bad_folders_and_shards_are_refused_with_the_file_named() {
    let dir = scratch("photos-bad");
    let tree = dir.join("tree");
    folder(&tree, 3);
    shards::pack(&tree, &dir.join("shards"), 4).unwrap();

    // A corrupt JPEG among good ones, and one cut off: the batch fails, naming it.
    let bad = tree.join("train").join("class1").join("img000.JPEG");
    let good = std::fs::read(&bad).unwrap();
    for damaged in [&b"\xff\xd8\xff\xe0 definitely not the rest of a JPEG"[..], &good[..good.len() / 2]] {
        std::fs::write(&bad, damaged).unwrap();
        let set = data::load(&DataSpec::ImageFolder(tree.clone()), 16, 16).unwrap();
        let split = Split::all(set.train.clone());
        let norm = Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] };
        let err = data::batches(&split, split.indices.clone(), &norm, Plan::eval(32)).find_map(Result::err).unwrap();
        assert!(matches!(&err, DataError::Corrupt { path, .. } if *path == bad), "{err}");
    }
    std::fs::write(&bad, good).unwrap();

    // An empty training class, a validation class training lacks.
    let empty = tree.join("train").join("class3");
    std::fs::create_dir_all(&empty).unwrap();
    let msg = refused(DataSpec::ImageFolder(tree.clone()), "an empty class");
    assert!(msg.contains("class3") && msg.contains("no .jpg"), "{msg}");
    std::fs::remove_dir(&empty).unwrap();
    let stray = tree.join("val").join("class9");
    std::fs::create_dir_all(&stray).unwrap();
    let msg = refused(DataSpec::ImageFolder(tree.clone()), "a stray validation class");
    assert!(msg.contains("class9") && msg.contains("no training class"), "{msg}");
    std::fs::remove_dir(&stray).unwrap();

    // A truncated shard.
    let shard = dir.join("shards").join("train-000001.tar");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let msg = refused(DataSpec::WebDataset(dir.join("shards")), "a truncated shard");
    assert!(msg.contains("train-000001.tar") && msg.contains("truncated"), "{msg}");
    // A sample without its label.
    let mut tar = tar::Builder::new(std::fs::File::create(&shard).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    tar.append_data(&mut header, "class0/lonely.jpg", &b"abc"[..]).unwrap();
    tar.finish().unwrap();
    drop(tar);
    let msg = refused(DataSpec::WebDataset(dir.join("shards")), "a sample without .cls");
    assert!(msg.contains("lonely") && msg.contains(".cls"), "{msg}");
    // No shards at all.
    let msg = refused(DataSpec::WebDataset(dir.join("nothing")), "a missing directory");
    assert!(msg.contains("not found"), "{msg}");

    // Packing into an existing directory is refused, and it is left as it was.
    let out = dir.join("shards");
    let before: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(matches!(shards::pack(&tree, &out, 4), Err(DataError::Exists(_))));
    let after: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(before, after);
}

#[test]
fn a_resize_below_the_input_is_refused() {
    let dir = scratch("photos-resize");
    folder(&dir.join("tree"), 3);
    let e = data::load(&DataSpec::ImageFolder(dir.join("tree")), 32, 30).err().unwrap();
    assert!(matches!(e, DataError::ResizeBelowSize { resize: 30, size: 32 }), "{e}");
}

#[test]
fn pack_and_train_on_shards_from_the_command_line() {
    let dir = scratch("photos-cli");
    let tree = dir.join("tree");
    folder(&tree, 8);
    let out = dir.join("shards");
    let (tree_s, out_s) = (tree.to_str().unwrap(), out.to_str().unwrap());
    let o = slimc(&["pack", tree_s, out_s, "--per-shard", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("24 training and 6 validation images of 3 classes"));
    // Again: refused, exit 2, nothing overwritten.
    let o = slimc(&["pack", tree_s, out_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));

    // Two steps on the shards and on the folder: the same batches, so the same losses.
    let mut losses = Vec::new();
    for (name, spec) in [("shards", format!("webdataset:{out_s}")), ("folder", format!("imagefolder:{tree_s}"))] {
        let run = dir.join(name);
        let o = slimc(&[
            "train",
            "tests/fixtures/tiny.slim",
            "--data",
            &spec,
            "--set",
            "size=16",
            "--val-images",
            "6",
            "--batch",
            "6",
            "--epochs",
            "1",
            "--calibrate",
            "1",
            "--workers",
            if name == "shards" { "1" } else { "2" },
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint/meta.json")).unwrap()).unwrap();
        assert_eq!(meta["format"], 2, "meta.json format 2 stores the augmentation");
        let opts = &meta["state"]["options"];
        assert!(opts["augment"]["Inception"].is_object(), "{opts}");
        assert_eq!(opts["eval_resize"], 18, "16 / 0.875");
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let line: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
        losses.push(line["train_loss"].as_f64().unwrap());
    }
    assert_eq!(losses[0], losses[1], "shards and folder train on the same batches");
    // --workers may change on resume (the batches do not depend on it); --augment may not.
    let shards_run = dir.join("shards");
    let o = slimc(&["train", "--resume", shards_run.to_str().unwrap(), "--epochs", "2", "--workers", "3", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = slimc(&["train", "--resume", shards_run.to_str().unwrap(), "--augment", "none", "--set", "size=8"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--augment, --set cannot change"), "{err}");

    // A stored augmentation out of range (an edited meta.json) is refused by name.
    let meta_path = dir.join("shards/checkpoint/meta.json");
    let original = std::fs::read_to_string(&meta_path).unwrap();
    for (field, value) in [
        ("augment", r#"{"Inception":{"scale":[1.5,1.0],"ratio":[0.75,1.3333],"jitter":0.4,"lighting":0.1}}"#),
        ("eval_resize", "0"),
    ] {
        let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
        doc["state"]["options"][field] = serde_json::from_str(value).unwrap();
        std::fs::write(&meta_path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let o = slimc(&["train", "--resume", dir.join("shards").to_str().unwrap(), "--epochs", "3"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains(field), "{field}: {err}");
    }
    std::fs::write(&meta_path, original).unwrap();

    // Flags that do not suit the data are refused before anything runs.
    let o = slimc(&["train", "tests/fixtures/tiny.slim", "--eval-resize", "40", "--data", "mnist:/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--eval-resize applies to photographs"));
    let o = slimc(&["train", "tests/fixtures/tiny.slim", "--workers", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = slimc(&[
        "train",
        "tests/fixtures/tiny.slim",
        "--data",
        &format!("imagefolder:{tree_s}"),
        "--set",
        "size=16",
        "--crop-scale",
        "1.5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("crop scale"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_default_augmentation_suits_the_data() {
    // From the command line: digits train without augmentation unless it is asked for.
    let dir = scratch("augment-default");
    let out = dir.join("run");
    let o = slimc(&[
        "train",
        "tests/fixtures/tiny.slim",
        "--data",
        "mnist:tests/fixtures/data",
        "--max-steps",
        "1",
        "--batch",
        "8",
        "--val-images",
        "8",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint/meta.json")).unwrap()).unwrap();
    assert_eq!(meta["state"]["options"]["augment"], serde_json::json!({"Pad": {"pad": 0, "flip": false}}));

    let photos = DataSpec::ImageFolder(PathBuf::from("x"));
    assert!(matches!(photos.augment(224), Augment::Inception(i) if i.scale == (0.08, 1.0)));
    assert_eq!(DataSpec::eval_resize(224), 256);
    assert_eq!(DataSpec::Cifar10(PathBuf::from("x")).augment(32), Augment::Pad { pad: 4, flip: true });
    assert_eq!(DataSpec::Mnist(PathBuf::from("x")).augment(28), Augment::NONE);
    // Runs started before photographs had their own keep the padded crop.
    assert_eq!(photos.small_augment(224), Augment::Pad { pad: 28, flip: true });
}

/// A small JPEG of a class-0 photograph.
fn jpeg_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    photo(0, 1, 48, 40).write_with_encoder(enc).unwrap();
    bytes
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Damaged JPEGs (bytes overwritten, the end cut off) decode or fail; never a panic.
    #[test]
    fn damaged_jpegs_are_errors_never_panics(
        keep in 0.0f64..1.0,
        edits in proptest::collection::vec((0.0f64..1.0, proptest::prelude::any::<u8>()), 0..12),
        size in proptest::sample::select(vec![8usize, 16, 64]),
    ) {
        let mut bytes = jpeg_bytes();
        let n = bytes.len();
        for (at, v) in edits {
            bytes[((at * n as f64) as usize).min(n - 1)] = v;
        }
        bytes.truncate(((keep * n as f64) as usize).max(1));
        let _ = data::encoded::decode(&bytes, size, &|w, h| Inception::default().crop(3, w, h));
    }

    /// Damaged shards load or fail with an error; never a panic.
    #[test]
    fn damaged_shards_are_errors_never_panics(
        edits in proptest::collection::vec((0.0f64..1.0, proptest::prelude::any::<u8>()), 1..8),
        keep in 0.5f64..1.0,
    ) {
        let dir = shard_fixture();
        let case = scratch(&format!("shard-case-{}", std::thread::current().name().unwrap_or("t").replace(':', "-")));
        for name in ["train-000000.tar", "val-000000.tar", "classes.txt"] {
            std::fs::copy(dir.join(name), case.join(name)).unwrap();
        }
        let path = case.join("train-000000.tar");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        for (at, v) in edits {
            bytes[((at * n as f64) as usize).min(n - 1)] = v;
        }
        bytes.truncate((keep * n as f64) as usize);
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(set) = data::load(&DataSpec::WebDataset(case.clone()), 16, 16) {
            let split = Split::all(set.train.clone());
            let norm = Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] };
            for batch in data::batches(&split, split.indices.clone(), &norm, Plan::eval(8)) {
                if batch.is_err() {
                    break;
                }
            }
        }
    }
}

/// Shards of a small folder, packed once per test process.
fn shard_fixture() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("shard-fixture");
        folder(&dir.join("tree"), 2);
        shards::pack(&dir.join("tree"), &dir.join("shards"), 100).unwrap();
        dir.join("shards")
    })
    .clone()
}
