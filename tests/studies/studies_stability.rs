//! `relevance stability` end to end: on a model whose Input×Gradient map at a pixel depends on
//! that pixel alone and whose logits ignore pixel order, flips and 90° turns map back exactly
//! (Pearson, Spearman, SSIM and IoU 1, no prediction flips); the identity is 1 on a trained
//! model too, while a flip is not; a re-run reuses every result.

use crate::studies_support;

use std::collections::HashMap;

use relevance::data::npy::read_npy;
use relevance::studies::stability::{NamedAug, StabilityOptions, run_with_models};
use relevance::studies::stats::{holm, paired_t, wilcoxon_signed_rank};
use relevance::studies::toolkit::load_models;
use studies_support::*;

fn augs(list: &[&str]) -> Vec<NamedAug> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn geometric_augmentations_map_back_exactly_on_a_pointwise_model() {
    let dir = temp_dir("stab-pointwise");
    let data = synth_data(&dir, 20);
    let mut opts = StabilityOptions::new(vec![], data, dir.join("out"));
    opts.inputs.methods = vec!["input-x-gradient".into()];
    opts.augmentations = augs(&["identity", "hflip", "vflip", "rotate:90"]);
    opts.save_maps = true;
    let model = pointwise_model();
    let out = run_with_models(&opts, std::slice::from_ref(&model), false)
        .unwrap()
        .out;
    let (header, rows) = read_csv(&out.join("per_image.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 3 * 4);
    for r in &rows {
        let v = |name: &str| r[col(name)].parse::<f64>().unwrap();
        for m in ["pearson", "spearman", "ssim", "top_k_iou"] {
            assert!(
                (v(m) - 1.0).abs() < 1e-5,
                "{} {}: {m} = {}",
                r[2],
                r[4],
                v(m)
            );
        }
        assert_eq!(r[col("prediction_flipped")], "0");
        assert_eq!(v("valid_fraction"), 1.0);
    }
    // The flipped image's map, mapped back, is the original map value for value.
    let maps = out.join("maps/pointwise/input-x-gradient");
    let stem = rows[0][2].clone();
    let (_, original) = read_npy(&maps.join(format!("{stem}.npy"))).unwrap();
    let (_, back) = read_npy(&maps.join(format!("{stem}.hflip.npy"))).unwrap();
    let diff = original
        .iter()
        .zip(&back)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = original.iter().map(|a| a.abs()).fold(0.0f32, f32::max);
    assert!(
        scale > 0.0 && diff <= 1e-6 * scale,
        "max difference {diff} of {scale}"
    );
    // Not trivially equal: the map is not mirror-symmetric itself, so mapping back mattered.
    let w = SIZE;
    let mirrored: Vec<f32> = (0..original.len())
        .map(|i| original[(i / w) * w + (w - 1 - i % w)])
        .collect();
    let asym = original
        .iter()
        .zip(&mirrored)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(asym > 1e-3 * scale, "the map is mirror-symmetric ({asym})");
}

#[test]
fn identity_is_stable_and_a_flip_is_not_on_a_trained_model_and_reruns_reuse() {
    let dir = temp_dir("stab-trained");
    let data = synth_data(&dir, 20);
    let ens = tiny_ensemble(&dir, &data);
    let models = load_models(&[ens.join("seed-0")]).unwrap();
    assert_eq!(models[0].label, "seed-0");
    let labels = |paths: &[std::path::PathBuf]| -> Vec<String> {
        load_models(paths)
            .unwrap()
            .into_iter()
            .map(|m| m.label)
            .collect()
    };
    assert_eq!(labels(std::slice::from_ref(&ens)), ["seed-0", "seed-1"]);
    // Clashing labels take the parent folder's name, then a counter.
    assert_eq!(
        labels(&[ens.join("seed-0"), ens.join("seed-0")]),
        ["ens-seed-0", "ens-seed-0-2"]
    );
    let mut opts = StabilityOptions::new(vec![], data, dir.join("out"));
    opts.inputs.methods = vec!["saliency".into(), "grad-cam".into()];
    opts.augmentations = augs(&["identity", "hflip", "brightness:1.3", "noise:0.1"]);
    let out = run_with_models(&opts, &models, false).unwrap().out;
    let (header, rows) = read_csv(&out.join("per_image.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut flip_pearson = Vec::new();
    for r in &rows {
        let v = |name: &str| r[col(name)].parse::<f64>().unwrap_or(f64::NAN);
        match r[4].as_str() {
            "identity" => {
                assert!((v("pearson") - 1.0).abs() < 1e-6, "{r:?}");
                assert_eq!(v("top_k_iou"), 1.0, "{r:?}");
                assert_eq!(r[col("prediction_flipped")], "0");
            }
            "hflip" if r[1] == "saliency" => flip_pearson.push(v("pearson")),
            _ => {}
        }
    }
    // A small CNN is not mirror-symmetric, so its saliency maps do not simply move with a flip.
    assert!(flip_pearson.iter().all(|&p| p < 0.999), "{flip_pearson:?}");
    let (mh, mrows) = read_csv(&out.join("metrics.csv"));
    assert_eq!(mrows.len(), 2 * 4);
    // method_tests.csv: saliency against grad-cam per measure, paired by image × augmentation;
    // the Pearson row's difference is the mean of the per-image differences.
    let (th, trows) = read_csv(&out.join("method_tests.csv"));
    let tcol = |name: &str| th.iter().position(|h| h == name).unwrap();
    let measures: Vec<&str> = trows.iter().map(|r| r[tcol("measure")].as_str()).collect();
    assert_eq!(measures, ["pearson", "spearman", "ssim", "iou"]);
    let of = |method: &str| -> Vec<(String, f64)> {
        rows.iter()
            .filter(|r| r[col("method")] == method)
            .map(|r| {
                let key = format!("{}/{}", r[col("image")], r[col("augmentation")]);
                (key, r[col("pearson")].parse().unwrap())
            })
            .collect()
    };
    let (sal, cam) = (of("saliency"), of("grad-cam"));
    let diffs: Vec<f64> = sal
        .iter()
        .map(|(k, v)| v - cam.iter().find(|(j, _)| j == k).unwrap().1)
        .collect();
    let pearson = &trows[0];
    assert_eq!(
        (
            pearson[tcol("method_a")].as_str(),
            pearson[tcol("method_b")].as_str()
        ),
        ("saliency", "grad-cam")
    );
    assert_eq!(pearson[tcol("n")], diffs.len().to_string());
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let got: f64 = pearson[tcol("difference")].parse().unwrap();
    assert!((got - mean).abs() < 1e-5, "{got} vs {mean}");
    let flips = mh.iter().position(|h| h == "prediction_flips").unwrap();
    let n_flips: usize = rows
        .iter()
        .filter(|r| {
            r[1] == "saliency" && r[4] == "noise:0.1" && r[col("prediction_flipped")] == "1"
        })
        .count();
    let noise_row = mrows
        .iter()
        .find(|r| r[1] == "saliency" && r[2] == "noise:0.1")
        .unwrap();
    assert_eq!(noise_row[flips], n_flips.to_string());
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["study"], "stability");
    assert_eq!(summary["table"]["rows"].as_array().unwrap().len(), 2 * 4);
    assert_eq!(summary["work"]["computed"], 6);
    for f in json(&out.join("figures.json")).as_array().unwrap() {
        assert!(out.join(f["file"].as_str().unwrap()).is_file());
        if let Some(svg) = f["svg"].as_str() {
            assert!(out.join(svg).is_file());
        }
    }
    let before = mtimes(&out.join("per_image"));
    let csv_before = std::fs::read_to_string(out.join("per_image.csv")).unwrap();
    run_with_models(&opts, &models, false).unwrap();
    assert_eq!(mtimes(&out.join("per_image")), before);
    assert_eq!(
        std::fs::read_to_string(out.join("per_image.csv")).unwrap(),
        csv_before
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["work"]["computed"], 0);
    assert_eq!(summary["work"]["reused"], 6);
    // New weights (here: the same bytes written again) make the stored results stale.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let weights = ens.join("seed-0/model.safetensors");
    std::fs::write(&weights, std::fs::read(&weights).unwrap()).unwrap();
    run_with_models(&opts, &models, false).unwrap();
    assert_eq!(json(&out.join("summary.json"))["work"]["computed"], 6);

    // Two models: model_tests.csv compares them per method and measure on the same image ×
    // augmentation; recomputed here from per_image.csv with the scipy-checked tests.
    let both = load_models(std::slice::from_ref(&ens)).unwrap();
    let mut two = StabilityOptions::new(vec![], opts.inputs.data.clone(), dir.join("out2"));
    two.inputs.methods = vec!["saliency".into()];
    two.augmentations = augs(&["hflip", "noise:0.1"]);
    let out = run_with_models(&two, &both, false).unwrap().out;
    let (header, rows) = read_csv(&out.join("per_image.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (th, trows) = read_csv(&out.join("model_tests.csv"));
    let tcol = |name: &str| th.iter().position(|h| h == name).unwrap();
    assert_eq!(
        trows.len(),
        4,
        "one pair of models × one method × four measures"
    );
    for (t, measure) in trows
        .iter()
        .zip(["pearson", "spearman", "ssim", "top_k_iou"])
    {
        let of = |model: &str| -> HashMap<String, f64> {
            rows.iter()
                .filter(|r| r[col("model")] == model)
                .map(|r| {
                    let key = format!("{}/{}", r[col("image")], r[col("augmentation")]);
                    (key, r[col(measure)].parse().unwrap_or(f64::NAN))
                })
                .collect()
        };
        let (a, b) = (of("seed-0"), of("seed-1"));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (k, va) in &a {
            if let Some(vb) = b.get(k).filter(|v| v.is_finite() && va.is_finite()) {
                x.push(*va);
                y.push(*vb);
            }
        }
        assert_eq!(
            (
                t[tcol("method")].as_str(),
                t[tcol("model_a")].as_str(),
                t[tcol("model_b")].as_str()
            ),
            ("saliency", "seed-0", "seed-1")
        );
        assert_eq!(t[tcol("n")], x.len().to_string());
        let w = wilcoxon_signed_rank(&x, &y).p_value;
        let pt = paired_t(&x, &y).p_value;
        let near = |got: &str, want: f64| {
            let g: f64 = got.parse().unwrap();
            assert!(
                (g - want).abs() <= 2e-3 * want.abs().max(1e-12),
                "{measure}: {got} vs {want}"
            );
        };
        near(&t[tcol("wilcoxon_p")], w);
        near(&t[tcol("paired_t_p")], pt);
        // Holm is within a measure: here one comparison per measure, so it keeps its p.
        let adjusted = holm(&[w])[0];
        near(&t[tcol("holm_p")], adjusted);
        assert_eq!(t[tcol("significant")] == "yes", adjusted < 0.05, "{t:?}");
    }
    let summary = json(&out.join("summary.json"));
    let tests = summary["tests"]["rows"].as_array().unwrap();
    assert_eq!(
        tests.len(),
        4,
        "one method: no method pairs, four model pairs"
    );
}

#[test]
fn augmentation_names_parse_with_defaults_and_bad_ones_are_refused() {
    let a: NamedAug = "rotate".parse().unwrap();
    assert_eq!(a.name, "rotate");
    assert_eq!(
        a.augs,
        vec![relevance::data::augment::Aug::Rotate { degrees: 10.0 }]
    );
    let b: NamedAug = "blur:2".parse().unwrap();
    assert_eq!(
        b.augs,
        vec![relevance::data::augment::Aug::Blur { sigma: 2.0 }]
    );
    assert!("identity".parse::<NamedAug>().unwrap().augs.is_empty());
    assert!("spin".parse::<NamedAug>().is_err());
    assert!("rotate:x".parse::<NamedAug>().is_err());
    // Noise differs per image but is reproducible.
    let n: NamedAug = "noise".parse().unwrap();
    assert_eq!(n.concrete(0, "a"), n.concrete(0, "a"));
    assert_ne!(n.concrete(0, "a"), n.concrete(0, "b"));
}
