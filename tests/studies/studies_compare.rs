//! `relevance compare` end to end on tiny confounded synthetic data: the method × method IoU
//! matrix is symmetric with ones on the diagonal, a map equal to the mask scores perfectly,
//! relevance mass on the marker matches a hand computation from the cached map and the marker
//! file, outputs parse, and a re-run reads its cache.

use crate::studies_common;

use std::collections::HashMap;

use relevance::data::npy::read_npy;
use relevance::metrics::threshold::Threshold;
use relevance::studies::compare::{CompareOptions, mask_agreement, parse_threshold, run};
use relevance::studies::toolkit::{SplitChoice, StudyInputs, expand_models};
use studies_common::*;

#[test]
fn map_equal_to_mask_is_perfect() {
    let (h, w) = (6, 5);
    let mask: Vec<bool> = (0..h * w)
        .map(|i| (i / w) >= 2 && (i / w) < 4 && i % w < 3)
        .collect();
    let map: Vec<f32> = mask.iter().map(|&m| f32::from(u8::from(m))).collect();
    let a = mask_agreement(&map, [h, w], &mask, Threshold::Fixed(0.5), 0.0)
        .unwrap()
        .unwrap();
    assert!(a.hit);
    assert_eq!((a.mass, a.rank, a.iou), (1.0, 1.0, 1.0));
    // Top fraction equal to the mask's area selects exactly the mask as well.
    let f = 6.0 / 30.0;
    let a = mask_agreement(&map, [h, w], &mask, Threshold::TopFraction(f), 0.0)
        .unwrap()
        .unwrap();
    assert_eq!(a.iou, 1.0);
    // The complement: pointing game lost, no mass on the object.
    let inv: Vec<f32> = map.iter().map(|v| 1.0 - v).collect();
    let a = mask_agreement(&inv, [h, w], &mask, Threshold::Fixed(0.5), 0.0)
        .unwrap()
        .unwrap();
    assert!(!a.hit);
    assert_eq!((a.mass, a.iou), (0.0, 0.0));
    assert!(
        mask_agreement(&map, [h, w], &[false; 30], Threshold::Otsu, 0.0)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        parse_threshold("top:0.1").unwrap(),
        Threshold::TopFraction(0.1)
    );
    assert_eq!(
        parse_threshold("top-10%").unwrap(),
        Threshold::TopFraction(0.1)
    );
    assert_eq!(parse_threshold("otsu").unwrap(), Threshold::Otsu);
    assert_eq!(parse_threshold("fixed:0.5").unwrap(), Threshold::Fixed(0.5));
    assert!(parse_threshold("median").is_err());
}

fn f(r: &HashMap<String, String>, k: &str) -> f64 {
    r[k].parse().unwrap()
}

/// The image stems of `per_image.csv`.
fn per_image_stems(out: &std::path::Path) -> std::collections::BTreeSet<String> {
    read_csv(&out.join("per_image.csv"))
        .into_iter()
        .map(|r| r["image"].clone())
        .collect()
}

/// `model_tests.csv` recomputed from `per_image.csv`: for each measure, method and pair of
/// models, the scores of the same image (class + stem) paired, tested with the scipy-checked
/// Wilcoxon and paired t of `studies::stats`, and Holm over the measure's rows.
fn model_tests_match_the_per_image_scores(out: &std::path::Path, methods: &[&str]) {
    use relevance::studies::stats::{holm, paired_t, wilcoxon_signed_rank};
    let per_image = read_csv(&out.join("per_image.csv"));
    let tests = read_csv(&out.join("model_tests.csv"));
    let close = |got: &str, want: f64, rel: f64| {
        let g: f64 = got.parse().unwrap();
        assert!(
            (g - want).abs() <= rel * want.abs().max(1e-12) || (g.is_nan() && want.is_nan()),
            "{got} vs {want}"
        );
    };
    let mut measures_seen = 0;
    for measure in ["object_mass", "object_iou", "marker_mass"] {
        let rows: Vec<&HashMap<String, String>> =
            tests.iter().filter(|r| r["measure"] == measure).collect();
        let values_of = |method: &str, model: &str| -> HashMap<(String, String), f64> {
            per_image
                .iter()
                .filter(|r| r["method"] == method && r["model"] == model && !r[measure].is_empty())
                .map(|r| ((r["class"].clone(), r["image"].clone()), f(r, measure)))
                .collect()
        };
        if rows.is_empty() {
            assert!(
                per_image.iter().all(|r| r[measure].is_empty()),
                "{measure} has scores but no tests"
            );
            continue;
        }
        measures_seen += 1;
        assert_eq!(rows.len(), methods.len(), "one pair of models per method");
        let mut p_values = Vec::new();
        for r in &rows {
            assert_eq!(
                (r["model_a"].as_str(), r["model_b"].as_str()),
                ("a-model", "b-model")
            );
            let (a, b) = (
                values_of(&r["method"], "a-model"),
                values_of(&r["method"], "b-model"),
            );
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for (key, va) in &a {
                if let Some(vb) = b.get(key) {
                    x.push(*va);
                    y.push(*vb);
                }
            }
            assert_eq!(r["n"].parse::<usize>().unwrap(), x.len(), "{r:?}");
            if x.is_empty() {
                // No image has the score under both models (e.g. maps without positive mass).
                assert!(
                    r["difference"].is_empty() && r["wilcoxon_p"] == "NaN",
                    "{r:?}"
                );
                assert_eq!(r["significant"], "no");
                p_values.push(f64::NAN);
                continue;
            }
            let mean = x.iter().zip(&y).map(|(p, q)| p - q).sum::<f64>() / x.len() as f64;
            assert!((f(r, "difference") - mean).abs() < 1e-5, "{r:?} vs {mean}");
            let w = wilcoxon_signed_rank(&x, &y).p_value;
            close(&r["wilcoxon_p"], w, 2e-3);
            close(&r["paired_t_p"], paired_t(&x, &y).p_value, 1e-2);
            p_values.push(w);
        }
        for (r, p) in rows.iter().zip(holm(&p_values)) {
            if p.is_nan() {
                assert_eq!(r["holm_p"], "NaN");
                continue;
            }
            close(&r["holm_p"], p, 2e-3);
            assert_eq!(r["significant"] == "yes", p < 0.05, "{r:?}");
        }
    }
    assert!(
        measures_seen >= 2,
        "the synthetic data has objects and markers"
    );
}

#[test]
fn compare_end_to_end_with_markers_and_resume() {
    let dir = temp_dir("cmp-e2e");
    let data = synth_data(&dir);
    let a = save(&model(11), &dir.join("a"));
    let b = save(&model(12), &dir.join("b"));
    let out = dir.join("out");
    let methods = ["grad-cam", "saliency", "input-x-gradient"];
    let mut inputs = StudyInputs::new(vec![a, b], data.clone(), out.clone(), 4, &methods);
    inputs.split = SplitChoice::Test;
    inputs.limit = Some(8);
    let opts = CompareOptions {
        grid_images: 3,
        ..CompareOptions::with_inputs(inputs)
    };
    run(&opts, false).unwrap();
    let summary = check_common_outputs(&out, "compare");
    assert_eq!(summary["conventions"]["threshold"], "top-20%");
    // Labels: both files are called model.safetensors, so their folders tell them apart.
    let metrics = read_csv(&out.join("metrics.csv"));
    assert_eq!(metrics.len(), 2 * 3);
    let labels: Vec<&str> = metrics.iter().map(|r| r["model"].as_str()).collect();
    assert!(
        labels.contains(&"a-model") && labels.contains(&"b-model"),
        "{labels:?}"
    );

    // IoU matrix: symmetric, ones on the diagonal; CoM distances zero on the diagonal.
    let matrix = read_csv(&out.join("method_matrix.csv"));
    assert_eq!(matrix.len(), 3 * 9, "pooled + 2 models, 3×3 each");
    let cell = |scope: &str, x: &str, y: &str| {
        matrix
            .iter()
            .find(|r| r["model"] == scope && r["method_a"] == x && r["method_b"] == y)
            .unwrap()
            .clone()
    };
    for scope in ["all", "a-model", "b-model"] {
        for x in methods {
            assert_eq!(f(&cell(scope, x, x), "iou"), 1.0);
            // Undefined (empty) only where no map of the method has positive mass.
            let d = cell(scope, x, x)["com_distance"].clone();
            assert!(d.is_empty() || d.parse::<f64>().unwrap() == 0.0, "{d}");
            for y in methods {
                assert_eq!(cell(scope, x, y)["iou"], cell(scope, y, x)["iou"]);
                let v = f(&cell(scope, x, y), "iou");
                assert!((0.0..=1.0).contains(&v));
            }
        }
    }

    assert!(matrix.iter().any(|r| !r["com_distance"].is_empty()));

    // Same method across models: model × model per method and class (+ all), diagonal 1 / 0,
    // symmetric, and one cell recomputed by hand from the cached maps.
    let across = read_csv(&out.join("model_matrix.csv"));
    let classes: std::collections::BTreeSet<&str> =
        across.iter().map(|r| r["class"].as_str()).collect();
    assert!(classes.contains("all") && classes.len() >= 2, "{classes:?}");
    assert_eq!(across.len(), methods.len() * classes.len() * 4);
    let model_cell = |m: &str, class: &str, x: &str, y: &str| {
        across
            .iter()
            .find(|r| {
                r["method"] == m && r["class"] == class && r["model_a"] == x && r["model_b"] == y
            })
            .unwrap()
            .clone()
    };
    for m in methods {
        for class in &classes {
            for x in ["a-model", "b-model"] {
                assert_eq!(f(&model_cell(m, class, x, x), "iou"), 1.0);
            }
            let ab = model_cell(m, class, "a-model", "b-model");
            assert_eq!(ab["iou"], model_cell(m, class, "b-model", "a-model")["iou"]);
            assert_eq!(
                ab["com_distance"],
                model_cell(m, class, "b-model", "a-model")["com_distance"]
            );
        }
    }
    let top_fifth = |map: &[f32]| -> Vec<bool> {
        let mut order: Vec<usize> = (0..map.len()).collect();
        order.sort_by(|&i, &j| map[j].total_cmp(&map[i]));
        let k = (0.2 * map.len() as f64).round() as usize;
        let mut keep = vec![false; map.len()];
        for &i in &order[..k] {
            keep[i] = true;
        }
        keep
    };
    let stems = per_image_stems(&out);
    let mut by_hand = Vec::new();
    for stem in &stems {
        let load = |label: &str| {
            read_npy(
                &out.join("cache")
                    .join(label)
                    .join("saliency")
                    .join(format!("{stem}.npy")),
            )
            .unwrap()
            .1
        };
        let (a_bins, b_bins) = (top_fifth(&load("a-model")), top_fifth(&load("b-model")));
        let both = a_bins
            .iter()
            .zip(&b_bins)
            .filter(|(x, y)| **x && **y)
            .count();
        let either = a_bins
            .iter()
            .zip(&b_bins)
            .filter(|(x, y)| **x || **y)
            .count();
        by_hand.push(both as f64 / either as f64);
    }
    let expected = by_hand.iter().sum::<f64>() / by_hand.len() as f64;
    let got = f(&model_cell("saliency", "all", "a-model", "b-model"), "iou");
    assert!(
        (got - expected).abs() < 1e-6,
        "IoU across models: {got} vs by hand {expected}"
    );
    let figures: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for m in methods {
        assert!(
            figures
                .iter()
                .any(|f| f.starts_with("model-iou-matrix") && f.contains(m)),
            "no model IoU matrix for {m}: {figures:?}"
        );
    }

    model_tests_match_the_per_image_scores(&out, methods.as_slice());

    // Marker mass by hand from the cached map and the marker file (same size as the model input).
    let per_image = read_csv(&out.join("per_image.csv"));
    assert_eq!(per_image.len(), 8 * 3 * 2);
    let tagged: Vec<&HashMap<String, String>> = per_image
        .iter()
        .filter(|r| !r["marker_mass"].is_empty())
        .collect();
    assert!(
        !tagged.is_empty(),
        "the confounded test split has tagged images"
    );
    for r in tagged.iter().take(6) {
        let label = &r["model"];
        let (_, map) = read_npy(
            &out.join("cache")
                .join(label)
                .join(&r["method"])
                .join(format!("{}.npy", r["image"])),
        )
        .unwrap();
        let class = &r["class"];
        let marker = image::open(
            data.join("test")
                .join(class)
                .join(format!("{}.marker.png", r["image"])),
        )
        .unwrap()
        .to_luma8();
        let (mut on, mut total) = (0.0f64, 0.0f64);
        for (v, px) in map.iter().zip(marker.pixels()) {
            let v = v.max(0.0) as f64;
            total += v;
            if px.0[0] > 127 {
                on += v;
            }
        }
        assert!((f(r, "marker_mass") - on / total).abs() < 1e-5, "{r:?}");
        let area = marker.pixels().filter(|p| p.0[0] > 127).count() as f64 / (SIZE * SIZE) as f64;
        assert!((f(r, "marker_area") - area).abs() < 1e-6);
    }
    // Object mass is undefined (empty) for a map without positive relevance.
    for r in per_image.iter().filter(|r| !r["object_mass"].is_empty()) {
        let m = f(r, "object_mass");
        assert!((0.0..=1.0).contains(&m));
        assert_eq!(r["correct_map"] == "1", m >= 0.5);
    }

    // Re-run: nothing recomputed (cache files untouched), same per-image results.
    let cached = out
        .join("cache/a-model/saliency")
        .join(format!("{}.npy", per_image[0]["image"]));
    let before = std::fs::metadata(&cached).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    run(&opts, false).unwrap();
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(read_csv(&out.join("per_image.csv")), per_image);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_reports_bad_thresholds_and_runs() {
    let dir = temp_dir("cmp-cli");
    let data = synth_data(&dir);
    let w = save(&model(1), &dir.join("m"));
    let run_cli = |threshold: &str, out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_relevance"))
            .args([
                "compare",
                "--no-progress",
                "--limit",
                "3",
                "--methods",
                "saliency,grad-cam",
            ])
            .args(["--threshold", threshold, "--models"])
            .arg(&w)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let bad = run_cli("median", &dir.join("bad"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad threshold 'median'"));
    let ok = run_cli("otsu", &dir.join("out"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let summary = check_common_outputs(&dir.join("out"), "compare");
    assert_eq!(summary["conventions"]["threshold"], "otsu");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn model_labels_are_unique_and_readable() {
    let dir = temp_dir("cmp-labels");
    let m = model(0);
    let shortcut = ensemble(&dir.join("shortcut"), &[(0, &m), (1, &m)]);
    let clean = ensemble(&dir.join("clean"), &[(0, &m)]);
    let label = |paths: Vec<std::path::PathBuf>| -> Vec<String> {
        expand_models(&paths)
            .unwrap()
            .into_iter()
            .map(|(l, _)| l)
            .collect()
    };
    // A whole ensemble: its members by seed.
    assert_eq!(label(vec![shortcut.clone()]), ["seed-0", "seed-1"]);
    // seed-0 of two ensembles: prefixed by the ensemble folder.
    assert_eq!(
        label(vec![shortcut.join("seed-0"), clean.join("seed-0")]),
        ["shortcut-seed-0", "clean-seed-0"]
    );
    // The same file twice: made unique by a suffix.
    let w = shortcut.join("seed-1/model.safetensors");
    assert_eq!(
        label(vec![w.clone(), w]),
        ["seed-1-model", "seed-1-model-2"]
    );
    let err = expand_models(std::slice::from_ref(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("neither ensemble.json nor model.safetensors"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
