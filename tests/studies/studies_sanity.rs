//! `relevance sanity` end to end, and the ROAD option of `relevance faithfulness`.
//!
//! On the pointwise model (`conv1×1 → ReLU → pool → fc`, two classes) Input×Gradient's maps are
//! known in closed form for any weights, so the study's random-logit similarity (the other
//! class is the only other one) and its similarity after full cascading randomisation (the
//! fresh weights drawn by the model's initialisers) are recomputed here by hand, with a
//! Spearman correlation written here; the `random` control ignores the model and the class and
//! must be flagged by both checks. The CLI runs on a trained ensemble, its report section is
//! built, and bad options are one `error:` line.

use std::path::{Path, PathBuf};

use crate::studies_support;

use relevance::data::image::load_image;
use relevance::graph::init::init_params;
use relevance::metrics::perturbation::Order;
use relevance::metrics::road::{RoadOptions, RoadSelection, road};
use relevance::metrics::{FollowedClass, ImageView, MapView, ModelScorer, ScoreKind};
use relevance::studies::faithfulness::{FaithfulnessOptions, RoadSettings};
use relevance::studies::sanity::{SanityOptions, randomisation_seed, run_with_models};
use relevance::studies::toolkit::SplitChoice;
use studies_support::*;

/// How far the study's Spearman correlations may lie from the hand computation: the engine
/// computes maps in f32, where pixels of equal value (the synthetic images' flat background)
/// can come out one rounding apart and no longer tie, which moves ρ by a few 1e-5 over 256
/// pixels; a wrong class, weight or layer order moves it by far more (0.05 and up here).
const TIE_TOLERANCE: f64 = 1e-3;

/// Ranks with ties averaged (1-based), then Pearson of the ranks.
fn spearman_by_hand(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            for &k in &idx[i..=j] {
                r[k] = (i + j) as f64 / 2.0 + 1.0;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The image as the pointwise model sees it: `x[c][p] = v/255`.
fn pixels(path: &Path, model: &relevance::graph::Model) -> Vec<[f64; 3]> {
    let img = load_image(path).unwrap().fit(&model.card);
    (0..SIZE * SIZE)
        .map(|p| std::array::from_fn(|c| img.pixels[p * 3 + c] as f64 / 255.0))
        .collect()
}

/// Input×Gradient of class `k` summed over channels for weights `w1` (4×3), `w2` (2×4):
/// `Σ_c x_cp Σ_j w2_kj 1[z_jp > 0] w1_jc / HW` with `z_jp = Σ_c w1_jc x_cp`.
fn input_x_gradient(x: &[[f64; 3]], w1: &[f32], w2: &[f32], k: usize) -> Vec<f64> {
    let hw = x.len() as f64;
    x.iter()
        .map(|px| {
            (0..4)
                .map(|j| {
                    let z: f64 = (0..3).map(|c| w1[j * 3 + c] as f64 * px[c]).sum();
                    if z > 0.0 {
                        w2[k * 4 + j] as f64 * z / hw
                    } else {
                        0.0
                    }
                })
                .sum()
        })
        .collect()
}

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

fn image_paths(data: &Path, stems: &[String]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for split in std::fs::read_dir(data).unwrap() {
        let split = split.unwrap().path();
        if !split.is_dir() {
            continue;
        }
        for class in std::fs::read_dir(&split).unwrap() {
            let class = class.unwrap().path();
            if !class.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&class).unwrap() {
                let f = f.unwrap().path();
                let stem = f.file_stem().unwrap().to_string_lossy().to_string();
                if let Some(s) = stems.iter().find(|s| s.ends_with(&stem)) {
                    out.push((s.clone(), f));
                }
            }
        }
    }
    out
}

#[test]
fn input_x_gradient_similarities_match_the_closed_form_and_the_random_control_is_flagged() {
    let dir = temp_dir("sanity-pointwise");
    let data = synth_data(&dir, 20);
    let mut opts = SanityOptions::new(vec![], data.clone(), dir.join("out"));
    opts.inputs.methods = vec!["input-x-gradient".into(), "random".into()];
    opts.inputs.split = SplitChoice::All;
    opts.inputs.limit = Some(6);
    opts.include_batchnorm = false;
    let model = pointwise_model();
    let outcome = run_with_models(&opts, std::slice::from_ref(&model), false).unwrap();
    let out = outcome.out;
    let record = json(&out.join("sanity.json"));
    assert_eq!(record["schema_version"], 1);
    // Drawn from a seed derived from --seed, never the seed that initialised training.
    let fresh = init_params(&model.model.graph, randomisation_seed(opts.seed)).unwrap();
    let value = |key: &str| fresh.values(key).unwrap();
    let (w1r, w2r) = (value("conv.weight"), value("fc.weight"));
    let w1: Vec<f32> = W1.iter().flatten().copied().collect();
    let w2: Vec<f32> = W2.iter().flatten().copied().collect();
    let dir_ixg = out.join("per_image/pointwise/input-x-gradient");
    let stems: Vec<String> = std::fs::read_dir(&dir_ixg)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            p.file_stem().unwrap().to_string_lossy().to_string()
        })
        .collect();
    assert_eq!(stems.len(), 6);
    let paths = image_paths(&data, &stems);
    assert_eq!(paths.len(), 6, "{stems:?}");
    for (stem, path) in &paths {
        let row = json(&dir_ixg.join(format!("{stem}.json")));
        let k = row["class"].as_u64().unwrap() as usize;
        let x = pixels(path, &model.model);
        let original = input_x_gradient(&x, &w1, &w2, k);
        // Random logit: with two classes the other class is the other one.
        assert_eq!(row["random_logit"]["other_class"], 1 - k);
        let other = input_x_gradient(&x, &w1, &w2, 1 - k);
        let want = spearman_by_hand(&abs(&original), &abs(&other));
        let got = row["random_logit"]["similarity"]["spearman"]
            .as_f64()
            .unwrap();
        assert!(
            (got - want).abs() < TIE_TOLERANCE,
            "{stem}: random logit {got} vs {want}"
        );
        // Cascading: fc first, then conv; after both the maps come from the fresh weights.
        let steps = row["cascading"].as_array().unwrap();
        let layers: Vec<&str> = steps.iter().map(|s| s["layer"].as_str().unwrap()).collect();
        assert_eq!(layers, ["fc", "conv"]);
        let randomised = input_x_gradient(&x, &w1r, &w2r, k);
        let want = spearman_by_hand(&abs(&original), &abs(&randomised));
        let got = steps[1]["similarity"]["spearman"].as_f64().unwrap();
        assert!(
            (got - want).abs() < TIE_TOLERANCE,
            "{stem}: full cascade {got} vs {want}"
        );
        // Independent, conv alone: original head, fresh first layer.
        let alone = input_x_gradient(&x, &w1r, &w2, k);
        let want = spearman_by_hand(&abs(&original), &abs(&alone));
        let got = row["independent"][1]["similarity"]["spearman"]
            .as_f64()
            .unwrap();
        assert!(
            (got - want).abs() < TIE_TOLERANCE,
            "{stem}: conv alone {got} vs {want}"
        );
    }
    let verdict = |method: &str| {
        record["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["method"] == method)
            .unwrap()
            .clone()
    };
    let random = verdict("random");
    assert_eq!(random["after_cascade"], 1.0);
    assert_eq!(random["insensitive_to_model"], true);
    assert_eq!(random["insensitive_to_class"], true);
    assert!(
        outcome.headline[0].contains("random"),
        "{:?}",
        outcome.headline
    );
    for f in [
        "cascading.svg",
        "independent.svg",
        "random_logit.svg",
        "randomised_maps.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // A re-run reuses every image.
    let again = run_with_models(&opts, std::slice::from_ref(&model), false).unwrap();
    let summary = json(&again.out.join("summary.json"));
    assert_eq!(summary["work"]["computed"], 0);
    assert_eq!(summary["work"]["reused"], 12);
}

#[test]
fn road_in_the_faithfulness_study_is_the_metric_on_the_closed_form_map() {
    let dir = temp_dir("road-study");
    let data = synth_data(&dir, 20);
    let mut opts = FaithfulnessOptions::new(vec![], data.clone(), dir.join("out"));
    opts.inputs.methods = vec!["input-x-gradient".into()];
    opts.conventions.score = ScoreKind::Logit;
    let settings = RoadSettings {
        percentages: vec![20.0, 50.0, 80.0],
        selection: RoadSelection::Rank,
        noise: 0.0,
        seed: 0,
    };
    opts.road = Some(settings.clone());
    let model = pointwise_model();
    let out = relevance::studies::faithfulness::run_with_models(
        &opts,
        std::slice::from_ref(&model),
        false,
    )
    .unwrap()
    .out;
    let (header, rows) = read_csv(&out.join("per_image.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let stems: Vec<String> = rows.iter().map(|r| r[col("image")].clone()).collect();
    let w1: Vec<f32> = W1.iter().flatten().copied().collect();
    let w2: Vec<f32> = W2.iter().flatten().copied().collect();
    let scorer = ModelScorer::new(&model.model, ScoreKind::Logit).unwrap();
    for (stem, path) in image_paths(&data, &stems) {
        let r = rows.iter().find(|r| r[col("image")] == stem).unwrap();
        let k: usize = r[col("target_class")].parse().unwrap();
        let x = pixels(&path, &model.model);
        let map: Vec<f32> = input_x_gradient(&x, &w1, &w2, k)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let input: Vec<f32> = (0..3)
            .flat_map(|c| x.iter().map(move |p| p[c] as f32))
            .collect();
        let image = ImageView::new(&input, [3, SIZE, SIZE]).unwrap();
        let map = MapView::new(&map, [SIZE, SIZE]).unwrap();
        for (name, order) in [
            ("road_morf_change", Order::Morf),
            ("road_lerf_change", Order::Lerf),
        ] {
            let want = road(
                &scorer,
                &image,
                &map,
                &RoadOptions {
                    percentages: settings.percentages.clone(),
                    order,
                    selection: settings.selection,
                    noise: 0.0,
                    seed: 0,
                    target: FollowedClass::Class(k),
                },
            )
            .unwrap()
            .mean_change;
            let got: f64 = r[col(name)].parse().unwrap();
            assert!((got - want).abs() < 1e-5, "{stem} {name}: {got} vs {want}");
        }
    }
    let (header, rows) = read_csv(&out.join("road.csv"));
    assert_eq!(rows.len(), 1);
    let v = |name: &str| rows[0][header.iter().position(|h| h == name).unwrap()].clone();
    assert_eq!(v("percentages"), "20 50 80");
    assert_eq!(v("selection"), "rank");
    // The combined score is (LeRF − MoRF)/2 of the means.
    let f = |name: &str| v(name).parse::<f64>().unwrap();
    assert!(
        (f("combined_mean") - (f("lerf_change_mean") - f("morf_change_mean")) / 2.0).abs() < 1e-5
    );
    assert!(out.join("road_curves.svg").is_file());
}

fn relevance_cmd(args: &[&str], extra: &[(&str, &Path)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_relevance"));
    cmd.args(args);
    for (flag, path) in extra {
        cmd.arg(flag).arg(path);
    }
    cmd.output().unwrap()
}

fn one_error_line(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
}

#[test]
fn sanity_and_road_run_through_the_cli_and_reach_the_report() {
    let dir = temp_dir("sanity-cli");
    let data = synth_data(&dir, 20);
    let ens = tiny_ensemble(&dir, &data);
    let run = dir.join("run");
    let sanity = run.join("sanity");
    let ok = relevance_cmd(
        &[
            "sanity",
            "--no-progress",
            "--methods",
            "saliency,grad-cam",
            "--limit",
            "2",
        ],
        &[
            ("--models", &ens.join("seed-0")),
            ("--data", &data),
            ("--out", &sanity),
        ],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let summary = json(&sanity.join("summary.json"));
    assert_eq!(summary["study"], "sanity");
    assert_eq!(summary["table"]["rows"].as_array().unwrap().len(), 2);
    let faith = run.join("faithfulness");
    let ok = relevance_cmd(
        &[
            "faithfulness",
            "--no-progress",
            "--methods",
            "saliency,random",
            "--limit",
            "2",
            "--road",
            "--road-percentages",
            "25,75",
            "--road-selection",
            "percentile",
        ],
        &[
            ("--models", &ens.join("seed-0")),
            ("--data", &data),
            ("--out", &faith),
        ],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let summary = json(&faith.join("summary.json"));
    assert_eq!(summary["conventions"]["road"]["selection"], "percentile");
    assert_eq!(summary["table"]["columns"].as_array().unwrap().len(), 7);
    let report = dir.join("report.html");
    let run_arg = run.to_str().unwrap();
    let ok = relevance_cmd(&["report", run_arg], &[("--out", &report)]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Sanity checks"));
    assert!(html.contains("ROAD"));
    // Bad options: one error line, exit status 1.
    let models: &[(&str, &Path)] = &[("--models", &ens.join("seed-0")), ("--data", &data)];
    for (args, what) in [
        (vec!["sanity", "--threshold", "3", "--out"], "threshold"),
        (vec!["sanity", "--top-k", "0", "--out"], "top-k"),
        (
            vec!["sanity", "--methods", "no-such-method", "--out"],
            "method",
        ),
        (
            vec![
                "faithfulness",
                "--road",
                "--road-percentages",
                "0,50",
                "--out",
            ],
            "percentages",
        ),
        (
            vec!["faithfulness", "--road", "--road-noise=-1", "--out"],
            "noise",
        ),
        (
            vec![
                "faithfulness",
                "--road",
                "--road-selection",
                "median",
                "--out",
            ],
            "selection",
        ),
    ] {
        let mut a = args.clone();
        let bad_out = dir.join("bad");
        let bad_out = bad_out.to_str().unwrap();
        a.push(bad_out);
        a.push("--no-progress");
        one_error_line(&relevance_cmd(&a, models), what);
    }
}
