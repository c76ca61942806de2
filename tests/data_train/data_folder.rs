//! Labelled data sets on disk: ImageFolder class order and formats, CSV files, masks, skipped
//! files and clear errors, pre-split layouts, batches equal to single-image preprocessing, IDX
//! files (and real Fashion-MNIST when `RELEVANCE_FASHION_MNIST` points at it).

use std::io::Write;
use std::path::{Path, PathBuf};

use relevance::data::augment::AugmentSpec;
use relevance::data::batch::{BatchLoader, Source};
use relevance::data::folder::{DataSplits, ImageFolder, ReadOptions, SplitSource};
use relevance::data::idx::{read_idx_pair, read_mnist_dir};
use relevance::data::image::{Image, load_image, preprocess};
use relevance::data::split::SplitFractions;
use relevance::data::synth::encode_png;
use relevance::graph::ModelCard;
use relevance::tensor::to_vec;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relevance-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn image(w: usize, h: usize, channels: usize, seed: u8) -> Image {
    Image {
        width: w,
        height: h,
        channels,
        pixels: (0..w * h * channels)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect(),
    }
}

fn save(path: &Path, img: &Image) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let ext = path.extension().unwrap().to_str().unwrap();
    if ext == "png" {
        std::fs::write(path, encode_png(img).unwrap()).unwrap();
        return;
    }
    let colour = if img.channels == 3 {
        image::ColorType::Rgb8
    } else {
        image::ColorType::L8
    };
    image::save_buffer(
        path,
        &img.pixels,
        img.width as u32,
        img.height as u32,
        colour,
    )
    .unwrap();
}

/// A folder with classes `zebra/` and `apple/` (sorted: apple, zebra) in several formats.
fn mixed_folder(name: &str) -> PathBuf {
    let d = temp_dir(name);
    save(&d.join("zebra/a.png"), &image(20, 10, 1, 1));
    save(&d.join("zebra/b.jpg"), &image(31, 17, 3, 2));
    save(&d.join("zebra/sub/c.bmp"), &image(12, 12, 3, 3));
    save(&d.join("apple/d.tif"), &image(9, 14, 3, 4));
    save(&d.join("apple/e.png"), &image(15, 15, 3, 5));
    // An RGBA PNG.
    let rgba = image::RgbaImage::from_fn(8, 6, |x, y| {
        image::Rgba([x as u8 * 30, y as u8 * 40, 9, 128])
    });
    rgba.save(d.join("apple/f.png")).unwrap();
    // Ground truth beside e.png, with the matching size.
    save(&d.join("apple/e.mask.png"), &image(15, 15, 1, 0));
    d
}

#[test]
fn image_folder_sorts_classes_reads_all_formats_and_finds_masks() {
    let d = mixed_folder("mixed");
    let ds = ImageFolder::open(&d, ReadOptions::default()).unwrap();
    assert_eq!(ds.classes, vec!["apple", "zebra"]);
    let names: Vec<String> = ds
        .samples
        .iter()
        .map(|s| s.path.strip_prefix(&d).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        vec![
            "apple/d.tif",
            "apple/e.png",
            "apple/f.png",
            "zebra/a.png",
            "zebra/b.jpg",
            "zebra/sub/c.bmp"
        ]
    );
    assert_eq!(ds.labels(), vec![0, 0, 0, 1, 1, 1]);
    let masked: Vec<bool> = ds.samples.iter().map(|s| s.mask.is_some()).collect();
    assert_eq!(masked, vec![false, true, false, false, false, false]);
    assert!(ds.skipped.is_empty());
}

#[test]
fn unreadable_files_are_skipped_with_a_warning_or_fail_when_strict() {
    let d = mixed_folder("broken");
    std::fs::write(d.join("zebra/broken.png"), b"definitely not a png").unwrap();
    let ds = ImageFolder::open(&d, ReadOptions::default()).unwrap();
    assert_eq!(ds.samples.len(), 6);
    let w = ds.skipped_warning().unwrap();
    assert!(w.contains("broken.png") && w.contains("--strict"), "{w}");
    let err = ImageFolder::open(&d, ReadOptions { strict: true })
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.png"), "{err}");
}

#[test]
fn bad_layouts_give_clear_messages() {
    let d = mixed_folder("badmask");
    save(&d.join("zebra/a.mask.png"), &image(5, 5, 1, 0));
    let err = ImageFolder::open(&d, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.png") && err.contains("5×5") && err.contains("20×10"),
        "{err}"
    );

    let d = mixed_folder("emptyclass");
    std::fs::create_dir_all(d.join("nothing")).unwrap();
    let err = ImageFolder::open(&d, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nothing") && err.contains("no images"),
        "{err}"
    );

    let d = temp_dir("oneclass");
    save(&d.join("only/a.png"), &image(4, 4, 1, 0));
    save(&d.join("only/b.png"), &image(4, 4, 1, 1));
    let err = DataSplits::open(&d, SplitFractions::default(), 0, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("only one class"), "{err}");

    let d = temp_dir("flat");
    save(&d.join("a.png"), &image(4, 4, 1, 0));
    let err = ImageFolder::open(&d, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no class folders"), "{err}");

    let err = ImageFolder::open(Path::new("/no/such/data"), ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn csv_labels_paths_and_masks() {
    let d = mixed_folder("csv");
    let csv = d.join("list.csv");
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "path,label,mask").unwrap();
    writeln!(f, "zebra/a.png,10,").unwrap();
    writeln!(f, "zebra/b.jpg,2,").unwrap();
    writeln!(f, "apple/e.png,10,apple/e.mask.png").unwrap();
    drop(f);
    let ds = ImageFolder::open(&csv, ReadOptions::default()).unwrap();
    // Integer labels sort numerically, not as text.
    assert_eq!(ds.classes, vec!["2", "10"]);
    assert_eq!(ds.class_counts(), vec![1, 2]);
    let e = ds
        .samples
        .iter()
        .find(|s| s.path.ends_with("e.png"))
        .unwrap();
    assert_eq!(
        e.mask.as_deref(),
        Some(d.join("apple/e.mask.png").as_path())
    );

    std::fs::write(&csv, "zebra/a.png\n").unwrap();
    let err = ImageFolder::open(&csv, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 1") && err.contains("path,label"),
        "{err}"
    );
}

#[test]
fn a_multi_label_row_equals_one_row_per_label_and_train_refuses_both() {
    let d = mixed_folder("csv-multi");
    let joined = d.join("joined.csv");
    std::fs::write(
        &joined,
        "path,label\nzebra/a.png,cat;dog\nzebra/b.jpg,dog\n",
    )
    .unwrap();
    let repeated = d.join("repeated.csv");
    std::fs::write(
        &repeated,
        "path,label\nzebra/a.png,cat\nzebra/a.png,dog\nzebra/b.jpg,dog\n",
    )
    .unwrap();
    let a = ImageFolder::open(&joined, ReadOptions::default()).unwrap();
    let b = ImageFolder::open(&repeated, ReadOptions::default()).unwrap();
    assert_eq!(a.classes, ["cat", "dog"]);
    assert_eq!(a.classes, b.classes);
    assert_eq!(a.samples, b.samples);
    // a.png under both classes, b.png under dog: three image × class samples.
    let labels = |p: &str| -> Vec<usize> {
        let mut v: Vec<usize> = a
            .samples
            .iter()
            .filter(|s| s.path.ends_with(p))
            .map(|s| s.label)
            .collect();
        v.sort();
        v
    };
    assert_eq!((labels("a.png"), labels("b.jpg")), (vec![0, 1], vec![1]));

    // An empty label among several is a broken row, named by its line.
    let bad = d.join("bad.csv");
    std::fs::write(&bad, "zebra/a.png,cat;\n").unwrap();
    let err = ImageFolder::open(&bad, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 1") && err.contains("path,label;label"),
        "{err}"
    );

    // train fits one class per image: either spelling is refused with one line naming the row.
    let exe = env!("CARGO_BIN_EXE_relevance");
    for (list, line, what) in [
        (&joined, 2, "has labels 'cat;dog'"),
        (
            &repeated,
            3,
            "has label 'cat' on an earlier line and 'dog' here",
        ),
    ] {
        let o = std::process::Command::new(exe)
            .args(["train", "--arch", "small_cnn", "--data"])
            .arg(list)
            .arg("--out")
            .arg(d.join("never"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("error: {}: line {line}: ", list.display())),
            "{err}"
        );
        assert!(err.contains(what) && err.contains("multi-label"), "{err}");
        assert!(!d.join("never").exists());
    }
}

#[test]
fn split_folders_are_used_and_a_missing_val_is_split_off_train() {
    let d = temp_dir("presplit");
    for (part, n) in [("train", 10), ("test", 3)] {
        for class in ["neg", "pos"] {
            for i in 0..n {
                save(
                    &d.join(format!("{part}/{class}/{i}.png")),
                    &image(6, 6, 1, i as u8),
                );
            }
        }
    }
    let s = DataSplits::open(
        &d,
        SplitFractions {
            val: 0.2,
            test: 0.5,
        },
        1,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(s.classes, vec!["neg", "pos"]);
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (16, 4, 6));
    assert!(matches!(s.source, SplitSource::Stratified { seed: 1, .. }));
    assert!(s.test.iter().all(|x| x.path.starts_with(d.join("test"))));
    // A test class unknown to training is an error.
    save(&d.join("test/other/x.png"), &image(6, 6, 1, 0));
    let err = DataSplits::open(&d, SplitFractions::default(), 1, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("'other'"), "{err}");
}

#[test]
fn batches_equal_single_image_preprocessing() {
    let d = mixed_folder("batch");
    let ds = ImageFolder::open(&d, ReadOptions::default()).unwrap();
    let card = ModelCard {
        input_size: [8, 10],
        ..ModelCard::default()
    };
    let mut loader = BatchLoader::new(
        Source::Files(ds.samples.clone()),
        &card,
        AugmentSpec::default(),
    );
    let (x, labels) = loader.batch(&[4, 1, 2], None).unwrap();
    assert_eq!(x.dims(), [3, 3, 8, 10]);
    assert_eq!(labels, vec![1, 0, 0]);
    let values = to_vec(&x);
    let per = 3 * 8 * 10;
    for (k, &i) in [4usize, 1, 2].iter().enumerate() {
        let single = to_vec(&preprocess(
            &load_image(&ds.samples[i].path).unwrap(),
            &card,
        ));
        assert_eq!(&values[k * per..(k + 1) * per], &single[..], "sample {i}");
    }
    assert!(loader.preload().unwrap());
    let (x2, _) = loader.batch(&[4, 1, 2], None).unwrap();
    assert_eq!(to_vec(&x2), values);
}

fn write_idx(path: &Path, dims: &[u32], data: &[u8], gzip: bool) {
    let mut bytes = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        bytes = enc.finish().unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn idx_files_plain_and_gzipped() {
    let d = temp_dir("idx");
    let px: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    write_idx(&d.join("train-images-idx3-ubyte.gz"), &[3, 4, 5], &px, true);
    write_idx(&d.join("train-labels-idx1-ubyte"), &[3], &[2, 0, 1], false);
    write_idx(
        &d.join("t10k-images-idx3-ubyte"),
        &[1, 4, 5],
        &px[..20],
        false,
    );
    write_idx(&d.join("t10k-labels-idx1-ubyte.gz"), &[1], &[1], true);
    let (train, test) = read_mnist_dir(&d).unwrap();
    assert_eq!(train.labels, vec![2, 0, 1]);
    assert_eq!((train.images[1].width, train.images[1].height), (5, 4));
    assert_eq!(train.images[1].pixels, px[20..40].to_vec());
    assert_eq!(test.images.len(), 1);
    write_idx(&d.join("bad-labels"), &[2], &[0, 1], false);
    let err = read_idx_pair(&d.join("train-images-idx3-ubyte.gz"), &d.join("bad-labels"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 3 labels"), "{err}");
}

#[test]
fn real_fashion_mnist_has_its_published_shape() {
    let Ok(dir) = std::env::var("RELEVANCE_FASHION_MNIST") else {
        eprintln!(
            "skipped: set RELEVANCE_FASHION_MNIST to the Fashion-MNIST IDX folder \
             (apt-get install dataset-fashion-mnist → /usr/share/datasets/fashion-mnist)"
        );
        return;
    };
    let (train, test) = read_mnist_dir(Path::new(&dir)).unwrap();
    assert_eq!((train.images.len(), test.images.len()), (60000, 10000));
    assert!(
        train
            .images
            .iter()
            .all(|i| (i.width, i.height, i.channels) == (28, 28, 1))
    );
    // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    for (set, per) in [(&train, 6000), (&test, 1000)] {
        let mut counts = [0usize; 10];
        set.labels.iter().for_each(|&l| counts[l] += 1);
        assert_eq!(counts, [per; 10]);
    }
}
