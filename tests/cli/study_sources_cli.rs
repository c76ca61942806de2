//! Every study reads the data sources `train` reads: an ensemble trained on a folder of IDX
//! files (Fashion-MNIST's layout and class names, `T-shirt/top` among them) is studied on that
//! folder with the split its `model.train.json` records, and on a CSV list naming PNG copies
//! of the same test images — the two sources give the same per-image results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use relevance::data::idx::FASHION_MNIST_CLASSES;

use crate::shard_common::{path, run_ok, temp_dir};

/// Side of the fixture's images.
const SIDE: usize = 12;
/// Test images per class (the `t10k` files).
const TEST_PER_CLASS: usize = 2;

/// An IDX file of unsigned bytes with dimensions `dims`.
fn write_idx(file: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(file, bytes).unwrap();
}

/// Image `i` of class `label`: a bright 4×4 square whose place depends on the class, over
/// low noise from a linear congruential stream seeded by `(label, i, salt)`.
fn image(label: usize, i: usize, salt: u64) -> Vec<u8> {
    let mut state =
        (label as u64 * 7919 + i as u64 * 104_729 + salt).wrapping_mul(6_364_136_223_846_793_005);
    let (row, col) = ((label / 4) * 4, (label % 4) * 3);
    (0..SIDE * SIDE)
        .map(|p| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let (r, c) = (p / SIDE, p % SIDE);
            let inside = (row..row + 4).contains(&r) && (col..col + 4).contains(&c);
            if inside { 200 } else { (state >> 59) as u8 * 4 }
        })
        .collect()
}

/// A Fashion-MNIST-style IDX folder under `dir/fm`: ten classes, `per_class` training images
/// and [`TEST_PER_CLASS`] test images each, interleaved by class. Returns the folder and the
/// test images with their labels, in file order.
fn idx_fixture(dir: &Path, per_class: usize) -> (PathBuf, Vec<(Vec<u8>, usize)>) {
    let fm = dir.join("fm");
    std::fs::create_dir_all(&fm).unwrap();
    let part = |n: usize, salt: u64| -> Vec<(Vec<u8>, usize)> {
        (0..n * 10)
            .map(|j| (image(j % 10, j / 10, salt), j % 10))
            .collect()
    };
    let train = part(per_class, 1);
    let test = part(TEST_PER_CLASS, 2);
    for (name, set) in [("train", &train), ("t10k", &test)] {
        let pixels: Vec<u8> = set.iter().flat_map(|(px, _)| px.clone()).collect();
        let labels: Vec<u8> = set.iter().map(|(_, l)| *l as u8).collect();
        let n = set.len() as u32;
        write_idx(
            &fm.join(format!("{name}-images-idx3-ubyte")),
            &[n, SIDE as u32, SIDE as u32],
            &pixels,
        );
        write_idx(&fm.join(format!("{name}-labels-idx1-ubyte")), &[n], &labels);
    }
    (fm, test)
}

/// The test images as PNG files `pngs/test-<index>.png` and a CSV list naming them with their
/// class names (which a folder could not hold: `T-shirt/top`).
fn csv_twin(dir: &Path, test: &[(Vec<u8>, usize)]) -> PathBuf {
    std::fs::create_dir_all(dir.join("pngs")).unwrap();
    let mut csv = String::from("path,label\n");
    for (i, (px, label)) in test.iter().enumerate() {
        let name = format!("pngs/test-{i:06}.png");
        image::GrayImage::from_raw(SIDE as u32, SIDE as u32, px.clone())
            .unwrap()
            .save(dir.join(&name))
            .unwrap();
        csv.push_str(&format!("{name},{}\n", FASHION_MNIST_CLASSES[*label]));
    }
    let list = dir.join("test.csv");
    std::fs::write(&list, csv).unwrap();
    list
}

/// Rows of a CSV file as column → value maps (no quoted commas in the columns read here).
fn rows(file: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn json(file: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// Trains a two-member small_cnn ensemble for one epoch on the IDX folder `fm` into `dir/ens`.
fn train_ensemble(dir: &Path, fm: &Path) -> PathBuf {
    let ens = dir.join("ens");
    run_ok(
        dir,
        &[
            "train",
            "--data",
            path(fm),
            "--arch",
            "small_cnn",
            "--epochs",
            "1",
            "--seeds",
            "0,1",
            "--input-size",
            "12",
            "--normalization",
            "unit",
            "--batch-size",
            "8",
            "--out",
            path(&ens),
            "--no-progress",
            "--quiet",
        ],
    );
    ens
}

/// `relevance <study> --models ens --data <data> --split <split> --out <out> extra…`.
fn study(dir: &Path, name: &str, ens: &Path, data: &Path, split: &str, out: &Path, extra: &[&str]) {
    let mut args = vec![
        name,
        "--models",
        path(ens),
        "--data",
        path(data),
        "--split",
        split,
        "--out",
        path(out),
        "--no-progress",
    ];
    args.extend(extra);
    run_ok(dir, &args);
}

#[test]
fn every_study_runs_on_an_idx_ensemble_with_the_recorded_test_split() {
    let dir = temp_dir("idx-studies");
    let (fm, test) = idx_fixture(&dir, 3);
    let ens = train_ensemble(&dir, &fm);
    let names: Vec<String> = (0..test.len()).map(|i| format!("test-{i:06}")).collect();
    let class_of = |stem: &str| {
        let i = names
            .iter()
            .position(|n| n == stem)
            .expect("an IDX test stem");
        FASHION_MNIST_CLASSES[test[i].1]
    };

    // variability over the whole t10k split: each member's accuracy is the test accuracy
    // `train` measured on the same files (ensemble.json).
    let var = dir.join("variability");
    study(
        &dir,
        "variability",
        &ens,
        &fm,
        "test",
        &var,
        &["--methods", "saliency", "--clusters", "2"],
    );
    let metrics = rows(&var.join("metrics.csv"));
    let record = json(&ens.join("ensemble.json"));
    let trained: f64 = record["test_accuracy_mean"].as_f64().unwrap();
    let studied: f64 = metrics[0]["accuracy_mean"].parse().unwrap();
    assert!(
        (trained - studied).abs() < 1e-9,
        "train {trained}, study {studied}"
    );
    let per_image = rows(&var.join("per_image_ensemble.csv"));
    assert_eq!(per_image.len(), test.len());
    for r in &per_image {
        assert_eq!(r["class"], class_of(&r["image"]), "{r:?}");
    }

    // The other four studies on a limit that keeps one image of each of four classes.
    let limit = ["--limit", "4", "--methods", "saliency,grad-cam"];
    for name in ["compare", "faithfulness", "stability", "sanity"] {
        let out = dir.join(name);
        let extra: Vec<&str> = match name {
            "stability" => [&limit[..], &["--augment", "hflip"]].concat(),
            _ => limit.to_vec(),
        };
        study(&dir, name, &ens, &fm, "test", &out, &extra);
        let summary = json(&out.join("summary.json"));
        assert_eq!(summary["study"], name, "{name}");
        let per_image = rows(&out.join("per_image.csv"));
        let stems: std::collections::BTreeSet<&str> =
            per_image.iter().map(|r| r["image"].as_str()).collect();
        // Classes interleaved: the first image of classes 0, 1, 2, 3 (files 0–3).
        assert_eq!(
            stems.into_iter().collect::<Vec<_>>(),
            names[..4].iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_csv_list_of_the_same_images_gives_the_same_per_image_results_as_the_idx_folder() {
    let dir = temp_dir("idx-csv");
    let (fm, test) = idx_fixture(&dir, 2);
    let ens = train_ensemble(&dir, &fm);
    let list = csv_twin(&dir, &test);
    let (from_idx, from_csv) = (dir.join("idx"), dir.join("csv"));
    let args = ["--methods", "saliency,grad-cam", "--clusters", "2"];
    study(&dir, "variability", &ens, &fm, "test", &from_idx, &args);
    // The list is not the training source, so `all` of it (the recorded split has no test
    // part of its own there).
    study(&dir, "variability", &ens, &list, "all", &from_csv, &args);
    let key = |r: &BTreeMap<String, String>| {
        (r["image"].clone(), r["method"].clone(), r["model"].clone())
    };
    let by_key = |out: &Path| -> BTreeMap<_, _> {
        rows(&out.join("per_image.csv"))
            .into_iter()
            .map(|r| (key(&r), r))
            .collect()
    };
    let (a, b) = (by_key(&from_idx), by_key(&from_csv));
    assert_eq!(a.len(), test.len() * 2 * 2);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, row) in &a {
        assert_eq!(row, &b[k], "{k:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
