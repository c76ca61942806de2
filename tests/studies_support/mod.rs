//! Shared by the study tests: a tiny synthetic data set on disk, a hand-built model whose maps
//! are known in closed form, and a small trained ensemble.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use relevance::data::augment::AugmentSpec;
use relevance::data::image::load_image;
use relevance::data::split::SplitFractions;
use relevance::data::synth::{SynthConfig, write_dataset};
use relevance::graph::builder::ConvGeom;
use relevance::graph::card::ResizeMode;
use relevance::graph::{GraphBuilder, Model, ModelCard, Normalization, ParamStore};
use relevance::studies::toolkit::StudyModel;
use relevance::train::{TrainConfig, Verbosity, open_data, train_ensemble};

/// Side of the synthetic images.
pub const SIZE: usize = 16;

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relevance-studies-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a 16×16 synthetic data set of `n` images (15 % test) under `dir/data`.
pub fn synth_data(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("data");
    write_dataset(
        &data,
        &SynthConfig {
            n,
            size: SIZE,
            ..SynthConfig::default()
        },
    )
    .unwrap();
    data
}

/// First-layer weights `W1[j][c]` (4 × 3, all positive so ReLU never cuts on inputs in [0, 1]).
pub const W1: [[f32; 3]; 4] = [
    [0.5, 0.2, 0.9],
    [0.1, 0.8, 0.3],
    [0.7, 0.4, 0.2],
    [0.3, 0.6, 0.6],
];
/// Head weights `W2[k][j]` (2 × 4) and bias.
pub const W2: [[f32; 4]; 2] = [[1.0, -0.5, 0.3, 0.8], [-0.7, 1.2, 0.4, -0.2]];
/// Head bias.
pub const B2: [f32; 2] = [0.1, -0.1];

fn card() -> ModelCard {
    ModelCard {
        classes: vec!["benign".into(), "malignant".into()],
        num_classes: 2,
        input_size: [SIZE, SIZE],
        channels: 3,
        normalization: Normalization::Unit,
        resize: ResizeMode::Stretch,
        ..ModelCard::default()
    }
}

/// `conv1×1 (3→4, W1) → ReLU → global average pool → fc (4→2, W2, B2)` on inputs `v/255`.
///
/// On non-negative inputs it is linear: `logit_k = B2_k + Σ_p Σ_c a_kc x_cp / HW` with
/// `a = W2·W1`, so Input×Gradient at pixel `p` is exactly pixel `p`'s additive contribution,
/// depends on that pixel alone, and the logits do not change when pixels are permuted.
pub fn pointwise_model() -> StudyModel {
    let mut b = GraphBuilder::new(3);
    let x = b.input();
    let x = b.conv("conv", x, ConvGeom::new(4, 1));
    let x = b.relu("relu", x);
    let x = b.adaptive_avgpool("pool", x, [1, 1]);
    let x = b.flatten("flatten", x, 4);
    let x = b.linear("fc", x, 4, 2, true);
    let graph = b.finish(x);
    graph.validate().unwrap();
    let mut params = ParamStore::new();
    params
        .insert_values(
            "conv.weight",
            W1.iter().flatten().copied().collect(),
            vec![4, 3, 1, 1],
        )
        .unwrap();
    params
        .insert_values(
            "fc.weight",
            W2.iter().flatten().copied().collect(),
            vec![2, 4],
        )
        .unwrap();
    params
        .insert_values("fc.bias", B2.to_vec(), vec![2])
        .unwrap();
    StudyModel {
        label: "pointwise".into(),
        model: Model {
            graph,
            params,
            card: card(),
            source: PathBuf::new(),
        },
        record: None,
    }
}

/// Per-pixel contributions `c_p = Σ_c a_kc x_cp / HW` of class `k` and the logits, in f64,
/// computed by hand from the image file.
pub fn contributions(image: &Path, k: usize) -> (Vec<f64>, [f64; 2]) {
    let img = load_image(image).unwrap().fit(&card());
    let n = SIZE * SIZE;
    let x = |c: usize, p: usize| img.pixels[p * 3 + c] as f64 / 255.0;
    let a = |k: usize, c: usize| {
        (0..4)
            .map(|j| W2[k][j] as f64 * W1[j][c] as f64)
            .sum::<f64>()
    };
    let contrib = |k: usize| -> Vec<f64> {
        (0..n)
            .map(|p| (0..3).map(|c| a(k, c) * x(c, p)).sum::<f64>() / n as f64)
            .collect()
    };
    let logits = [
        B2[0] as f64 + contrib(0).iter().sum::<f64>(),
        B2[1] as f64 + contrib(1).iter().sum::<f64>(),
    ];
    (contrib(k), logits)
}

/// Trains a 2-model small_cnn ensemble (a few steps) on `data` into `dir/ens`.
pub fn tiny_ensemble(dir: &Path, data: &Path) -> PathBuf {
    let out = dir.join("ens");
    let card = ModelCard {
        arch: Some("small_cnn".into()),
        ..card()
    };
    let train = open_data(
        data,
        &card,
        SplitFractions::default(),
        0,
        false,
        AugmentSpec::default(),
    )
    .unwrap();
    let cfg = TrainConfig {
        arch: "small_cnn".into(),
        epochs: 1,
        batch_size: 8,
        max_steps: Some(2),
        ..TrainConfig::default()
    };
    train_ensemble(&train, &cfg, &[0, 1], &out, false, None, Verbosity::Quiet).unwrap();
    out
}

/// Reads a CSV file into a header and rows of fields (no quoted commas expected in the
/// columns the tests read).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

/// Modification times of every file under `dir`, sorted by path.
pub fn mtimes(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let t = std::fs::metadata(&p).unwrap().modified().unwrap();
                out.push((p, t));
            }
        }
    }
    out.sort();
    out
}

/// Parses a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One side's per-image values of a `*_tests.csv` row: `value(row)` of every `per_image.csv`
/// row whose `side` column is `label` and `shared` column is `within`, keyed by `key(row)`.
fn side_values(
    rows: &[Vec<String>],
    col: &dyn Fn(&str) -> usize,
    (side, label): (&str, &str),
    (shared, within): (&str, &str),
    key: &dyn Fn(&[String]) -> String,
    value: &dyn Fn(&[String]) -> f64,
) -> std::collections::HashMap<String, f64> {
    rows.iter()
        .filter(|r| r[col(side)] == label && r[col(shared)] == within)
        .map(|r| (key(r), value(r)))
        .collect()
}

/// Recomputes every row of a paired-tests file (`method_tests.csv`, `model_tests.csv`, …) from
/// a per-image table with columns `model`, `method`, `image` and one per measure: the two
/// sides picked by the row's labels, paired by `image`, images with a non-finite value on
/// either side left out; the mean difference, the Wilcoxon and paired t p-values by the
/// scipy-checked functions, Holm over the measure's rows; the interval holds the difference.
/// Returns the number of rows checked.
pub fn check_paired_tests(per_image: &Path, tests: &Path) -> usize {
    use relevance::studies::stats::{holm, paired_t, wilcoxon_signed_rank};
    let (header, rows) = read_csv(per_image);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (th, trows) = read_csv(tests);
    let tcol = |name: &str| th.iter().position(|h| h == name).unwrap();
    let by_model = th.iter().any(|h| h == "model_a");
    let (side, shared) = if by_model {
        ("model", "method")
    } else {
        ("method", "model")
    };
    let mut p_by_measure: std::collections::BTreeMap<String, Vec<(usize, f64)>> =
        Default::default();
    for (i, t) in trows.iter().enumerate() {
        let measure = t[tcol("measure")].as_str();
        let within = t[tcol(shared)].as_str();
        let pick = |label: &str| {
            side_values(
                &rows,
                &col,
                (side, label),
                (shared, within),
                &|r| r[col("image")].clone(),
                &|r| r[col(measure)].parse().unwrap_or(f64::NAN),
            )
        };
        let a = pick(&t[tcol(&format!("{side}_a"))]);
        let b = pick(&t[tcol(&format!("{side}_b"))]);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut keys: Vec<&String> = a.keys().collect();
        keys.sort();
        for k in keys {
            let va = a[k];
            if let Some(&vb) = b.get(k).filter(|v| v.is_finite() && va.is_finite()) {
                x.push(va);
                y.push(vb);
            }
        }
        assert_eq!(t[tcol("n")], x.len().to_string(), "{t:?}");
        assert!(!x.is_empty(), "{t:?}: no pairs");
        let near = |got: &str, want: f64, tol: f64| {
            let g: f64 = got.parse().unwrap();
            assert!(
                (g - want).abs() <= tol * want.abs().max(1e-9),
                "{t:?}: {got} vs {want}"
            );
        };
        let d = x.iter().zip(&y).map(|(p, q)| p - q).sum::<f64>() / x.len() as f64;
        let got_d: f64 = t[tcol("difference")].parse().unwrap();
        assert!(
            (got_d - d).abs() <= 2e-6,
            "{t:?}: difference {got_d} vs {d}"
        );
        let (lo, hi): (f64, f64) = (
            t[tcol("ci_low")].parse().unwrap(),
            t[tcol("ci_high")].parse().unwrap(),
        );
        assert!(lo <= got_d + 1e-6 && got_d <= hi + 1e-6, "{t:?}");
        let w = wilcoxon_signed_rank(&x, &y).p_value;
        if w.is_finite() {
            near(&t[tcol("wilcoxon_p")], w, 2e-3);
        }
        let pt = paired_t(&x, &y).p_value;
        if pt.is_finite() {
            near(&t[tcol("paired_t_p")], pt, 2e-3);
        }
        p_by_measure
            .entry(measure.to_string())
            .or_default()
            .push((i, w));
    }
    for list in p_by_measure.values() {
        let adjusted = holm(&list.iter().map(|&(_, p)| p).collect::<Vec<_>>());
        for (&(i, _), want) in list.iter().zip(adjusted) {
            let t = &trows[i];
            if want.is_finite() {
                let got: f64 = t[tcol("holm_p")].parse().unwrap();
                assert!(
                    (got - want).abs() <= 2e-3 * want.max(1e-9),
                    "{t:?}: Holm {got} vs {want}"
                );
                assert_eq!(t[tcol("significant")] == "yes", want < 0.05, "{t:?}");
            }
        }
    }
    trows.len()
}

/// A full-precision `per_image` table for [`check_paired_tests`], from the studies' per-image
/// records `out/per_image/<model>/<method>/<stem>.json` (the CSV rounds to 6 decimals, too
/// coarse for the t-test on scores of order 1e-5): columns `model, method, image` and one per
/// measure, `value(record, measure)` (NaN written as an empty field).
pub fn per_image_from_records(
    out: &Path,
    measures: &[&str],
    value: &dyn Fn(&serde_json::Value, &str) -> f64,
) -> PathBuf {
    let mut csv = format!("model,method,image,{}\n", measures.join(","));
    let root = out.join("per_image");
    let mut records = mtimes(&root);
    records.sort();
    for (path, _) in records {
        let rel = path.strip_prefix(&root).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().to_string())
            .collect();
        let [model, method, file] = parts.as_slice() else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".json") else {
            continue;
        };
        let v = json(&path);
        let fields: Vec<String> = measures
            .iter()
            .map(|m| {
                let x = value(&v, m);
                if x.is_finite() {
                    format!("{x:?}")
                } else {
                    String::new()
                }
            })
            .collect();
        csv.push_str(&format!("{model},{method},{stem},{}\n", fields.join(",")));
    }
    let path = out.join("per_image_full_precision.csv");
    std::fs::write(&path, csv).unwrap();
    path
}
