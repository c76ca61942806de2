//! `relevance quality` against the metric functions called directly: on the pointwise model,
//! whose Input×Gradient map is known in closed form, every per-image number of the study equals
//! the metric computed on the hand-computed map; intervals contain their means; random maps
//! are as checkered as white noise (ratio ≈ 1) while the noise reference's formula matches a
//! Monte Carlo estimate of white noise's score.

use crate::studies_support;

use relevance::data::image::load_input;
use relevance::methods::{MethodOptions, by_name};
use relevance::metrics::complexity::{complexity, sparseness};
use relevance::metrics::explain::{ChannelReduce, ExplainerMaps};
use relevance::metrics::faithfulness::{FaithfulnessCorrelationOptions, faithfulness_correlation};
use relevance::metrics::perturbation::{
    Order, PixelFlippingOptions, RegionPerturbationOptions, pixel_flipping, region_perturbation,
};
use relevance::metrics::scorer::{FollowedClass, ModelScorer, ScoreKind};
use relevance::metrics::sensitivity::{Radius, SensitivityOptions, sensitivity};
use relevance::metrics::{ImageView, MapView, Substrate, checkerboard_score};
use relevance::rng::Rng;
use relevance::studies::quality::scores::checkerboard_noise_reference;
use relevance::studies::quality::{QualityOptions, run_with_models};
use relevance::studies::toolkit::{SplitChoice, select_images};
use relevance::tensor::to_vec;
use studies_support::*;

fn small_options(dir: &std::path::Path, data: std::path::PathBuf) -> QualityOptions {
    let mut opts = QualityOptions::new(vec![], data, dir.join("out"));
    opts.region_patch = 4;
    opts.regions = 10;
    opts.faithfulness_runs = 12;
    opts.sensitivity_samples = 4;
    opts
}

/// `(header, rows)` of a CSV file.
fn csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    read_csv(path)
}

#[test]
fn every_number_equals_the_metric_functions_on_the_closed_form_map() {
    let dir = temp_dir("quality-direct");
    let data = synth_data(&dir, 20);
    let mut opts = small_options(&dir, data.clone());
    opts.inputs.methods = vec!["input-x-gradient".into()];
    let model = pointwise_model();
    let out = run_with_models(&opts, std::slice::from_ref(&model), false)
        .unwrap()
        .out;
    let (header, rows) = csv(&out.join("per_image.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let images = select_images(&data, SplitChoice::Test, None, None, false)
        .unwrap()
        .images;
    assert_eq!(rows.len(), images.len());
    assert!(rows.len() >= 2);
    let card = &model.model.card;
    let scorer = ModelScorer::new(&model.model, ScoreKind::Logit).unwrap();
    let explainer = by_name("input-x-gradient", &MethodOptions::default()).unwrap();
    let maps = ExplainerMaps {
        explainer: explainer.as_ref(),
        model: &model.model,
        reduce: ChannelReduce::Sum,
    };
    for img in &images {
        // The per-image record holds the study's numbers at full precision (the CSV rounds).
        let stored = json(&out.join(format!(
            "per_image/pointwise/input-x-gradient/{}.json",
            img.stem
        )));
        let got = |name: &str| stored["metrics"][name].as_f64().unwrap();
        let class = stored["class"].as_u64().unwrap() as usize;
        let row = rows.iter().find(|r| r[col("image")] == img.stem).unwrap();
        assert_eq!(row[col("class")], class.to_string());
        // The map by hand: pixel p's additive contribution to the logit of `class`.
        let (contrib, logits) = contributions(&img.path, class);
        assert_eq!(class, if logits[1] > logits[0] { 1 } else { 0 });
        let map: Vec<f32> = contrib.iter().map(|&v| v as f32).collect();
        let x = to_vec(&load_input(&img.path, card).unwrap());
        let image = ImageView::new(&x, [3, SIZE, SIZE]).unwrap();
        let view = MapView::new(&map, [SIZE, SIZE]).unwrap();
        let seed = Rng::derive(opts.seed, &img.stem).next_u64();
        let target = FollowedClass::Class(class);
        let board = checkerboard_score(&map, SIZE, SIZE);
        let flip = pixel_flipping(
            &scorer,
            &image,
            &view,
            &PixelFlippingOptions {
                pixels_per_step: 0,
                order: Order::Morf,
                baseline: Substrate::ImageMin,
                target,
            },
        )
        .unwrap();
        let region = region_perturbation(
            &scorer,
            &image,
            &view,
            &RegionPerturbationOptions {
                patch: 4,
                regions: 10,
                order: Order::Morf,
                baseline: Substrate::ImageMin,
                target,
            },
        )
        .unwrap();
        // 16×16 = 256 pixels, fewer than 4·224: a quarter of the pixels per subset.
        let faith = faithfulness_correlation(
            &scorer,
            &image,
            &view,
            &FaithfulnessCorrelationOptions {
                runs: 12,
                subset_size: 64,
                baseline: Substrate::ImageMin,
                target,
                seed,
            },
        )
        .unwrap();
        let sens = sensitivity(
            &maps,
            &image,
            &view,
            class,
            &SensitivityOptions {
                samples: 4,
                radius: Radius::RelativeToRange(0.05),
                relative: true,
                batch_size: 8,
                seed,
            },
        )
        .unwrap();
        let expected = [
            ("checkerboard", board),
            (
                "checkerboard_ratio",
                board / checkerboard_noise_reference(&map, SIZE, SIZE),
            ),
            ("sparseness", sparseness(&map, 1e-7)),
            ("complexity", complexity(&map, 1e-12)),
            ("pixel_flipping_aopc", flip.aopc),
            ("region_perturbation_aopc", region.aopc),
            ("faithfulness_correlation", faith.correlation),
            ("max_sensitivity", sens.max),
            ("avg_sensitivity", sens.avg),
        ];
        for (name, want) in expected {
            assert!(want.is_finite(), "{name} is not finite");
            let tol = 1e-4 * want.abs().max(1e-3);
            assert!(
                (got(name) - want).abs() <= tol,
                "{}: {name} = {} by the study, {want} directly",
                img.stem,
                got(name)
            );
        }
    }
    // The aggregate is the mean over images, inside its bootstrap interval.
    let record: serde_json::Value = json(&out.join("quality.json"));
    let entry = &record["entries"][0];
    for (k, pair) in entry["metrics"].as_array().unwrap().iter().enumerate() {
        let name = pair[0].as_str().unwrap();
        let m = &pair[1];
        let mean: f64 = images
            .iter()
            .map(|img| {
                let stored = json(&out.join(format!(
                    "per_image/pointwise/input-x-gradient/{}.json",
                    img.stem
                )));
                stored["metrics"][name].as_f64().unwrap()
            })
            .sum::<f64>()
            / images.len() as f64;
        assert!(
            (m["mean"].as_f64().unwrap() - mean).abs() < 1e-12 * mean.abs().max(1.0),
            "{k} {name}"
        );
        let (lo, hi) = (m["low"].as_f64().unwrap(), m["high"].as_f64().unwrap());
        assert!(
            lo <= mean + 1e-12 && mean <= hi + 1e-12,
            "{name}: {lo} {mean} {hi}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_maps_are_as_checkered_as_white_noise_and_the_reference_matches_monte_carlo() {
    // The reference against an independent estimate: the mean score of 4000 white-noise maps
    // (mean 0.7, SD 0.3) of an even × odd size, where only the DFT row at ±π counts.
    let (h, w) = (8, 7);
    let mut rng = Rng::derive(3, "noise");
    let mut total = 0.0;
    let mut reference = 0.0;
    let draws = 4000;
    for _ in 0..draws {
        let map: Vec<f32> = (0..h * w)
            .map(|_| 0.7 + 0.3 * (rng.uniform() - 0.5) * 12f32.sqrt())
            .collect();
        total += checkerboard_score(&map, h, w);
        reference += checkerboard_noise_reference(&map, h, w);
    }
    let expected = w as f64 * 0.09 / ((h * w) as f64 * (0.09 + 0.49));
    assert!((reference / draws as f64 - expected).abs() < 0.05 * expected);
    assert!(
        (total / draws as f64 - expected).abs() < 0.05 * expected,
        "{} vs {expected}",
        total / draws as f64
    );
    // Zero-mean noise of even sides: (H + W − 1)/(H·W).
    let alt: Vec<f32> = (0..16)
        .map(|i| if i % 3 == 0 { 1.0 } else { -0.5 })
        .collect();
    let m = alt.iter().map(|&v| v as f64).sum::<f64>() / 16.0;
    let v = alt.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / 16.0;
    let r = checkerboard_noise_reference(&alt, 4, 4);
    assert!((r - 7.0 * v / (16.0 * (v + m * m))).abs() < 1e-12);

    // The study: the random control on 40 images scores about the reference (ratio ≈ 1), while
    // the smooth Input×Gradient map of the pointwise model does not.
    let dir = temp_dir("quality-random");
    let data = synth_data(&dir, 40);
    let mut opts = small_options(&dir, data);
    opts.inputs.split = SplitChoice::All;
    opts.inputs.methods = vec!["random".into(), "input-x-gradient".into()];
    let model = pointwise_model();
    run_with_models(&opts, std::slice::from_ref(&model), false).unwrap();
    let record = json(&dir.join("out/quality.json"));
    let ratio = |method: &str| -> (f64, f64, f64) {
        let e = record["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["method"] == method)
            .unwrap();
        let m = e["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0] == "checkerboard_ratio")
            .unwrap();
        let f = |k: &str| m[1][k].as_f64().unwrap();
        (f("mean"), f("low"), f("high"))
    };
    let (mean, low, high) = ratio("random");
    assert!((mean - 1.0).abs() < 0.15, "random: {mean} [{low}, {high}]");
    assert!(low <= mean && mean <= high);
    let (smooth, _, _) = ratio("input-x-gradient");
    assert!(smooth < 0.5, "input-x-gradient: {smooth}");
    // The random control's map depends on the image's key only, not on its values: the noisy
    // copies get the same map, so its sensitivity is exactly 0.
    let (header, rows) = csv(&dir.join("out/per_image.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for r in rows.iter().filter(|r| r[col("method")] == "random") {
        assert_eq!(r[col("max_sensitivity")].parse::<f64>().unwrap(), 0.0);
    }
    let summary = json(&dir.join("out/summary.json"));
    assert_eq!(summary["study"], "quality");
    assert!(
        summary["conventions"]["checkerboard"]
            .as_str()
            .unwrap()
            .contains("white noise")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn paired_tests_of_methods_and_models_recompute_from_the_per_image_scores() {
    // Two trained models × two methods: method_tests.csv compares the methods under each
    // model, model_tests.csv the models under each method, on every metric of the table,
    // pairing by image; every row is recomputed here from per_image.csv.
    use relevance::studies::toolkit::load_models;
    let dir = temp_dir("quality-paired");
    let data = synth_data(&dir, 30);
    let ens = tiny_ensemble(&dir, &data);
    let models = load_models(std::slice::from_ref(&ens)).unwrap();
    let mut opts = small_options(&dir, data);
    opts.inputs.methods = vec!["saliency".into(), "grad-cam".into()];
    let out = run_with_models(&opts, &models, false).unwrap().out;
    // The table's metrics: all but the raw checkerboard score and its reference.
    let names = [
        "checkerboard_ratio",
        "sparseness",
        "complexity",
        "pixel_flipping_aopc",
        "region_perturbation_aopc",
        "faithfulness_correlation",
        "max_sensitivity",
        "avg_sensitivity",
    ];
    let measures = names.len();
    let per_image = per_image_from_records(&out, &names, &|v, m| {
        v["metrics"][m].as_f64().unwrap_or(f64::NAN)
    });
    let methods = check_paired_tests(&per_image, &out.join("method_tests.csv"));
    assert_eq!(
        methods,
        measures * 2,
        "one method pair under each of two models"
    );
    let by_model = check_paired_tests(&per_image, &out.join("model_tests.csv"));
    assert_eq!(
        by_model,
        measures * 2,
        "one model pair under each of two methods"
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(
        summary["tests"]["rows"].as_array().unwrap().len(),
        methods + by_model
    );
    assert_eq!(summary["tests"]["columns"][8], "significant");
    // The model finding names a direction only when its row is significant.
    let headline: Vec<&str> = summary["headline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let finding = headline
        .iter()
        .find(|s| s.contains("seed-0") && s.contains("seed-1"))
        .expect("a model finding");
    // It is about the first metric's pair with the smallest finite Holm p.
    let (th, trows) = read_csv(&out.join("model_tests.csv"));
    let tcol = |name: &str| th.iter().position(|h| h == name).unwrap();
    let holm_p = |r: &Vec<String>| r[tcol("holm_p")].parse::<f64>().unwrap_or(f64::NAN);
    let first = &trows[0][tcol("measure")];
    let row = trows
        .iter()
        .filter(|r| &r[tcol("measure")] == first && holm_p(r).is_finite())
        .min_by(|a, b| holm_p(a).total_cmp(&holm_p(b)))
        .unwrap();
    assert!(
        finding.starts_with(&format!("{}:", row[tcol("method")])),
        "{finding}"
    );
    assert!(finding.contains(&format!("in {first}")), "{finding}");
    if row[tcol("significant")] == "yes" {
        assert!(finding.contains("scores higher than"), "{finding}");
    } else {
        assert!(finding.contains("do not differ significantly"), "{finding}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
