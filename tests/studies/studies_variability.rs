//! `relevance variability` end to end on tiny synthetic data: identical models give SD maps of
//! exactly zero, different seeds do not; the statistics helpers against closed forms; outputs
//! parse; a re-run reads its cache instead of recomputing, and other options invalidate it.

use crate::studies_common;

use std::path::Path;

use relevance::data::npy::{read_npy, write_npy};
use relevance::methods::MapStyle;
use relevance::studies::fit::{kmeans, mean_sd, polyfit};
use relevance::studies::toolkit::TargetRule;
use relevance::studies::toolkit::{SplitChoice, StudyInputs};
use relevance::studies::variability::{VariabilityOptions, normalise_map, pixel_mean_sd, run};
use studies_common::*;

fn options(models: Vec<std::path::PathBuf>, data: &Path, out: &Path) -> VariabilityOptions {
    let mut inputs = StudyInputs::new(
        models,
        data.to_path_buf(),
        out.to_path_buf(),
        4,
        &["grad-cam", "saliency"],
    );
    inputs.split = SplitChoice::Test;
    inputs.limit = Some(6);
    VariabilityOptions {
        clusters: 2,
        examples: 2,
        ..VariabilityOptions::with_inputs(inputs)
    }
}

/// `(c0, c1, c2)` minimising `Σ (y − c0 − c1 x − c2 x²)²`: the normal equations `AᵀA c = Aᵀy`
/// solved by Cramer's rule.
fn least_squares_quadratic(pts: &[(f64, f64)]) -> Vec<f64> {
    let s = |k: i32| pts.iter().map(|(x, _)| x.powi(k)).sum::<f64>();
    let t = |k: i32| pts.iter().map(|(x, y)| y * x.powi(k)).sum::<f64>();
    let a = [[s(0), s(1), s(2)], [s(1), s(2), s(3)], [s(2), s(3), s(4)]];
    let b = [t(0), t(1), t(2)];
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    (0..3)
        .map(|j| {
            let mut m = a;
            for (i, row) in m.iter_mut().enumerate() {
                row[j] = b[i];
            }
            det(m) / d
        })
        .collect()
}

#[test]
fn identical_models_have_zero_sd_and_seeds_do_not() {
    let dir = temp_dir("var-identical");
    let data = synth_data(&dir);
    let m = model(7);
    let ens = ensemble(&dir.join("same"), &[(0, &m), (1, &m), (2, &m)]);
    let out = dir.join("out-same");
    let outcome = run(&options(vec![ens], &data, &out), false).unwrap();
    assert_eq!(outcome.out, out);
    let summary = check_common_outputs(&out, "variability");
    assert_eq!(
        summary["conventions"]["models"].as_array().unwrap().len(),
        3
    );
    let rows = read_csv(&out.join("per_image_ensemble.csv"));
    assert_eq!(rows.len(), 6 * 2, "6 images × 2 methods");
    for r in &rows {
        assert_eq!(r["map_sd"].parse::<f64>().unwrap(), 0.0, "{r:?}");
        assert_eq!(r["raw_map_sd"].parse::<f64>().unwrap(), 0.0, "{r:?}");
        assert_eq!(r["correct_sd"].parse::<f64>().unwrap(), 0.0);
        assert_eq!(r["target_prob_sd"].parse::<f64>().unwrap(), 0.0);
        let (shape, sd) = read_npy(
            &out.join("maps")
                .join(&r["method"])
                .join(format!("{}.sd.npy", r["image"])),
        )
        .unwrap();
        assert_eq!(shape, vec![SIZE, SIZE]);
        assert!(sd.iter().all(|&v| v == 0.0));
    }
    // 3 models × 6 images × 2 methods per-model rows; the per-model probabilities are equal.
    assert_eq!(read_csv(&out.join("per_image.csv")).len(), 36);
    assert_eq!(read_csv(&out.join("metrics.csv")).len(), 2);

    // Different seeds: the maps differ somewhere.
    let (a, b) = (model(1), model(2));
    let ens = ensemble(&dir.join("seeds"), &[(1, &a), (2, &b)]);
    let out = dir.join("out-seeds");
    run(&options(vec![ens], &data, &out), false).unwrap();
    let rows = read_csv(&out.join("per_image_ensemble.csv"));
    assert!(
        rows.iter()
            .all(|r| r["map_sd"].parse::<f64>().unwrap() > 0.0)
    );
    // Map SD against the mean target probability: the quadratic in metrics.csv is the
    // least-squares one, checked by solving the normal equations by hand on the per-image rows
    // (compared as fitted values, which the CSV's 6-digit rounding barely moves).
    let metrics = read_csv(&out.join("metrics.csv"));
    for m in &metrics {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r["method"] == m["method"])
            .map(|r| {
                (
                    r["target_prob_mean"].parse().unwrap(),
                    r["map_sd"].parse().unwrap(),
                )
            })
            .collect();
        let ours: Vec<f64> = (0..3)
            .map(|j| m[&format!("prob_quad_c{j}")].parse().unwrap())
            .collect();
        let by_hand = least_squares_quadratic(&pts);
        for &(x, _) in &pts {
            let eval = |c: &[f64]| c[0] + c[1] * x + c[2] * x * x;
            assert!((eval(&ours) - eval(&by_hand)).abs() < 1e-4, "{m:?}");
        }
        let p: f64 = m["prob_quad_c2_p"].parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{m:?}");
    }
    for method in ["grad-cam", "saliency"] {
        assert!(out.join(format!("sd-vs-target-prob-{method}.svg")).exists());
    }
    // Two models: per pixel the sample SD is |a − b| / √2 of the normalised maps.
    let stem = &rows[0]["image"];
    let cached = |label: &str| {
        read_npy(
            &out.join("cache")
                .join(label)
                .join("saliency")
                .join(format!("{stem}.npy")),
        )
        .unwrap()
        .1
    };
    let (na, nb) = (
        normalise_map(&cached("seed-1"), MapStyle::Magnitude),
        normalise_map(&cached("seed-2"), MapStyle::Magnitude),
    );
    let sd = read_npy(&out.join("maps/saliency").join(format!("{stem}.sd.npy")))
        .unwrap()
        .1;
    for ((x, y), s) in na.iter().zip(&nb).zip(&sd) {
        let expect = ((x - y).abs() as f64) / 2f64.sqrt();
        assert!((*s as f64 - expect).abs() < 1e-6, "{s} vs {expect}");
    }
    // Raw Grad-CAM: min-max scaling it must give the CAM as the method returns it (bilinear
    // resizing commutes with the positive affine scaling), unless the raw map is all zero.
    let mut checked = 0;
    for label in ["seed-1", "seed-2"] {
        for r in rows.iter().filter(|r| r["method"] == "grad-cam") {
            let dir = out.join("cache").join(label).join("grad-cam");
            let raw = read_npy(&dir.join(format!("{}.raw.npy", r["image"])))
                .unwrap()
                .1;
            let cam = read_npy(&dir.join(format!("{}.npy", r["image"])))
                .unwrap()
                .1;
            let (lo, hi) = raw
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            if hi - lo < 1e-6 {
                continue;
            }
            for (x, y) in raw.iter().zip(&cam) {
                assert!(((x - lo) / (hi - lo) - y).abs() < 1e-4, "{x} {y}");
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no raw Grad-CAM with positive values to check");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rerun_reads_the_cache_and_new_options_invalidate_it() {
    let dir = temp_dir("var-resume");
    let data = synth_data(&dir);
    let m = model(5);
    let ens = ensemble(&dir.join("same"), &[(0, &m), (1, &m)]);
    let out = dir.join("out");
    let opts = options(vec![ens], &data, &out);
    run(&opts, false).unwrap();
    let rows = read_csv(&out.join("per_image_ensemble.csv"));
    let stem = rows[0]["image"].clone();
    // Tamper with one cached map of seed-1: a re-run that reads the cache (instead of
    // recomputing) must now see the models disagree on that image only.
    let cached = out
        .join("cache/seed-1/grad-cam")
        .join(format!("{stem}.npy"));
    let untouched = out
        .join("cache/seed-0/grad-cam")
        .join(format!("{stem}.npy"));
    let before = std::fs::metadata(&untouched).unwrap().modified().unwrap();
    let tampered: Vec<f32> = (0..SIZE * SIZE).map(|i| (i % 7) as f32 / 6.0).collect();
    write_npy(&cached, &[SIZE, SIZE], &tampered).unwrap();
    run(&opts, false).unwrap();
    assert_eq!(
        std::fs::metadata(&untouched).unwrap().modified().unwrap(),
        before
    );
    let rows = read_csv(&out.join("per_image_ensemble.csv"));
    for r in &rows {
        let sd: f64 = r["map_sd"].parse().unwrap();
        if r["image"] == stem && r["method"] == "grad-cam" {
            assert!(sd > 0.0, "the cached (tampered) map was not used");
        } else {
            assert_eq!(sd, 0.0);
        }
    }
    // Other options (another target) → the cache is rebuilt and the tampering is gone.
    let opts = VariabilityOptions {
        target: TargetRule::Predicted,
        ..opts
    };
    run(&opts, false).unwrap();
    let rows = read_csv(&out.join("per_image_ensemble.csv"));
    assert!(
        rows.iter()
            .all(|r| r["map_sd"].parse::<f64>().unwrap() == 0.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_model_is_refused() {
    let dir = temp_dir("var-one");
    let data = synth_data(&dir);
    let w = save(&model(0), &dir.join("single"));
    let err = run(&options(vec![w], &data, &dir.join("out")), false).unwrap_err();
    assert!(err.to_string().contains("at least two models"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quadratic_and_linear_fits_recover_known_polynomials() {
    let pts: Vec<(f64, f64)> = (0..9)
        .map(|i| {
            let x = i as f64 / 8.0;
            (x, 0.2 - 1.5 * x + 3.0 * x * x)
        })
        .collect();
    let f = polyfit(&pts, 2).unwrap();
    for (c, e) in f.coeffs.iter().zip([0.2, -1.5, 3.0]) {
        assert!((c - e).abs() < 1e-9, "{:?}", f.coeffs);
    }
    assert!((f.r_squared - 1.0).abs() < 1e-12);
    // A noisy line: slope Sxy/Sxx, intercept ȳ − slope·x̄ and R² = Sxy²/(Sxx·Syy) by hand.
    let pts = [(0.0, 1.0), (1.0, 0.0), (2.0, 1.0), (3.0, 4.0)];
    let f = polyfit(&pts, 1).unwrap();
    let sxx: f64 = pts.iter().map(|p| (p.0 - 1.5).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - 1.5) * (p.1 - 1.5)).sum();
    let slope = sxy / sxx;
    assert!((f.coeffs[1] - slope).abs() < 1e-9 && (f.coeffs[0] - (1.5 - slope * 1.5)).abs() < 1e-9);
    let syy: f64 = pts.iter().map(|p| (p.1 - 1.5).powi(2)).sum();
    assert!((f.r_squared - sxy * sxy / (sxx * syy)).abs() < 1e-9);
}

#[test]
fn kmeans_recovers_well_separated_clusters() {
    let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
    let mut pts = Vec::new();
    let mut truth = Vec::new();
    for i in 0..30 {
        let c = (i * 7) % 3;
        let j = i as f64 * 0.37;
        pts.push(vec![
            centres[c].0 + j.sin() * 0.5,
            centres[c].1 + j.cos() * 0.5,
        ]);
        truth.push(c);
    }
    let cl = kmeans(&pts, 3, 0, 5);
    // Same partition: labels equal up to renaming.
    for a in 0..pts.len() {
        for b in 0..pts.len() {
            assert_eq!(truth[a] == truth[b], cl.labels[a] == cl.labels[b]);
        }
    }
    assert_eq!(cl.labels[0], 0, "numbered by first appearance");
    assert_eq!(kmeans(&pts, 3, 0, 5), cl, "deterministic");
}

#[test]
fn pixel_statistics_by_hand() {
    let a = [0.0f32, 1.0];
    let b = [2.0f32, 3.0];
    let (m, s) = pixel_mean_sd(&[&a, &b]);
    assert_eq!(m, vec![1.0, 2.0]);
    assert!((s[0] - 2f32.sqrt()).abs() < 1e-6 && (s[1] - 2f32.sqrt()).abs() < 1e-6);
    assert_eq!(
        normalise_map(&[-2.0, 1.0], MapStyle::Signed),
        vec![-1.0, 0.5]
    );
    assert_eq!(normalise_map(&[0.2, 0.4], MapStyle::Unit), vec![0.2, 0.4]);
    let (m, s) = mean_sd([0.1; 4]);
    assert_eq!((m, s), (0.1, 0.0));
}

#[test]
fn cli_runs_the_study() {
    let dir = temp_dir("var-cli");
    let data = synth_data(&dir);
    let (a, b) = (model(3), model(4));
    let ens = ensemble(&dir.join("ens"), &[(3, &a), (4, &b)]);
    let out = dir.join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args([
            "variability",
            "--no-progress",
            "--limit",
            "4",
            "--methods",
            "saliency",
            "--models",
        ])
        .arg(&ens)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let summary = check_common_outputs(&out, "variability");
    assert_eq!(summary["command"][1], "variability");
    assert!(String::from_utf8_lossy(&status.stdout).contains("saliency"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The logits of `image` under `model` (the model's graph and card, no head applied).
fn logits(model: &relevance::graph::Model, image: &Path) -> Vec<f32> {
    use relevance::metrics::{ModelScorer, ScoreKind, Scorer};
    let x = relevance::data::image::load_input(image, &model.card).unwrap();
    let scorer = ModelScorer::new(model, ScoreKind::Logit).unwrap();
    scorer.scores(x).unwrap().values
}

#[test]
fn multi_label_rows_are_units_and_a_sigmoid_head_gives_every_class_at_p_one_half() {
    let dir = temp_dir("var-multilabel");
    let data = synth_data(&dir);
    // A multi-label list: each test image under both classes (one row per image × class).
    let images: Vec<std::path::PathBuf> = ["benign", "malignant"]
        .iter()
        .flat_map(|c| {
            let mut v: Vec<_> = std::fs::read_dir(data.join("test").join(c))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    !p.to_string_lossy().contains(".mask.")
                        && !p.to_string_lossy().contains(".marker.")
                })
                .collect();
            v.sort();
            v.truncate(2);
            v
        })
        .collect();
    let mut csv = String::from("path,label\n");
    for p in &images {
        for class in ["benign", "malignant"] {
            csv.push_str(&format!("{},{class}\n", p.display()));
        }
    }
    let list = dir.join("multi.csv");
    std::fs::write(&list, csv).unwrap();
    let sigmoid = |seed: u64| {
        let mut m = model(seed);
        m.card.head = Some(relevance::graph::Head::Sigmoid);
        m
    };
    let members = [sigmoid(5), sigmoid(6)];
    let paths: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, m)| save(m, &dir.join(format!("m{i}"))))
        .collect();
    let out = dir.join("out");
    let mut opts = options(paths, &list, &out);
    opts.inputs.split = SplitChoice::All;
    opts.inputs.limit = None;
    opts.inputs.methods = vec!["saliency".into()];
    run(&opts, false).unwrap();
    let rows = read_csv(&out.join("per_image.csv"));
    // Every image × class is a row of its own, named by the image and the class.
    assert_eq!(rows.len(), images.len() * 2 * 2);
    for r in &rows {
        let (stem, class) = r["image"].rsplit_once('-').unwrap();
        assert_eq!(class, r["class"]);
        let image = images
            .iter()
            .find(|p| p.file_stem().unwrap().to_string_lossy() == stem)
            .unwrap();
        let member = &members[usize::from(r["model"].starts_with("m1"))];
        let z = logits(member, image);
        let k = usize::from(class == "malignant");
        assert_eq!(r["target"], k.to_string());
        // σ(z_k) = 1 / (1 + e^{−z_k}), and the image has class k exactly when z_k ≥ 0.
        let p = 1.0 / (1.0 + (-(z[k] as f64)).exp());
        let prob: f64 = r["target_prob"].parse().unwrap();
        assert!((prob - p).abs() < 1e-5, "{r:?}: σ(z) = {p}");
        assert_eq!(
            r["correct"],
            if z[k] >= 0.0 { "1" } else { "0" },
            "{r:?} z = {z:?}"
        );
    }
    // With one class per image (argmax) exactly one of an image's two rows would be correct;
    // under the sigmoid head some image here has both classes or neither.
    let mut correct_rows = std::collections::HashMap::<(String, String), u32>::new();
    for r in &rows {
        let stem = r["image"].rsplit_once('-').unwrap().0.to_string();
        *correct_rows.entry((stem, r["model"].clone())).or_default() +=
            r["correct"].parse::<u32>().unwrap();
    }
    assert!(correct_rows.values().any(|&n| n != 1), "{correct_rows:?}");

    // The one-row spelling `path,benign;malignant` is the same list: every table and the
    // summary's tables come out byte for byte the same.
    let mut joined = String::from("path,label\n");
    for p in &images {
        joined.push_str(&format!("{},benign;malignant\n", p.display()));
    }
    let joined_list = dir.join("joined.csv");
    std::fs::write(&joined_list, joined).unwrap();
    let out2 = dir.join("out2");
    let mut opts2 = opts.clone();
    opts2.inputs.data = joined_list;
    opts2.inputs.out = out2.clone();
    run(&opts2, false).unwrap();
    let mut compared = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_name().unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(out2.join(name)).unwrap(),
                "{name:?}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 2, "per_image.csv and metrics.csv at least");
    let read_json = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (s1, s2) = (
        read_json(out.join("summary.json")),
        read_json(out2.join("summary.json")),
    );
    assert_eq!(s1["table"], s2["table"]);
    assert_eq!(s1["headline"], s2["headline"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_ensembles_are_compared_pairwise_as_each_one_alone_measures_them() {
    // `--models ensA ensB`: ensemble_tests.csv compares the two ensembles per method on the same
    // images. Each ensemble run alone gives its per-image map SD, probability SD and accuracy
    // (per_image_ensemble.csv); the paired tests are recomputed from those.
    let dir = temp_dir("var-ensembles");
    let data = synth_data(&dir);
    let (m1, m2, m3, m4) = (model(11), model(12), model(13), model(14));
    let a = ensemble(&dir.join("ensA"), &[(0, &m1), (1, &m2)]);
    let b = ensemble(&dir.join("ensB"), &[(0, &m3), (1, &m4)]);
    let run_on = |models: Vec<std::path::PathBuf>, out: &str| {
        let out = dir.join(out);
        run(&options(models, &data, &out), false).unwrap();
        out
    };
    let both = run_on(vec![a.clone(), b.clone()], "both");
    let alone = [
        ("ensA", run_on(vec![a], "a")),
        ("ensB", run_on(vec![b], "b")),
    ];
    let mut csv = String::from("model,method,image,map_sd,probability_sd,accuracy\n");
    for (name, out) in &alone {
        assert!(
            !out.join("ensemble_tests.csv").exists(),
            "one ensemble: no tests"
        );
        for r in read_csv(&out.join("per_image_ensemble.csv")) {
            csv.push_str(&format!(
                "{name},{},{}/{},{},{},{}\n",
                r["method"],
                r["class"],
                r["image"],
                r["map_sd"],
                r["target_prob_sd"],
                r["correct_mean"]
            ));
        }
    }
    let per_image = dir.join("per_ensemble.csv");
    std::fs::write(&per_image, csv).unwrap();
    let checked =
        crate::studies_support::check_paired_tests(&per_image, &both.join("ensemble_tests.csv"));
    assert_eq!(checked, 3 * 2, "three measures × two methods × one pair");
    let rows = read_csv(&both.join("ensemble_tests.csv"));
    assert!(
        rows.iter()
            .all(|r| r["model_a"] == "ensA" && r["model_b"] == "ensB")
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(both.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["tests"]["rows"].as_array().unwrap().len(), 6);
    let finding = summary["headline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .find(|s| s.starts_with("Ensembles compared"))
        .expect("an ensemble finding");
    assert!(finding.contains("in map_sd"), "{finding}");
    let _ = std::fs::remove_dir_all(&dir);
}
