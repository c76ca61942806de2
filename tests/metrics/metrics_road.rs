//! ROAD against pytorch-grad-cam 1.5.4 and Quantus 0.6.0 on the same model, images and maps
//! (`tools/fixtures_road.py` writes `tests/fixtures/metrics/road.json`), all with noise 0; the
//! noise itself is checked by its distribution.

use crate::metrics_common;

use metrics_common::*;
use relevance::metrics::imputation::noisy_linear_imputation;
use relevance::metrics::perturbation::Order;
use relevance::metrics::road::{RoadOptions, RoadSelection, removed_pixels, road};
use relevance::metrics::{FollowedClass, ImageView, MapView, ModelScorer, ScoreKind};
use relevance::rng::Rng;
use serde_json::Value;

const PLANE: usize = 256;

fn removed_of(fx: &Value) -> Vec<bool> {
    bools(&fx["removed"])
}

#[test]
fn noiseless_imputation_matches_both_references() {
    let fx = fixture("road.json");
    let case = &fx["imputation"];
    let shape: Vec<usize> = usizes(&case["shape"]);
    let data = f32s(&case["image"]);
    let image = ImageView::new(&data, [shape[0], shape[1], shape[2]]).unwrap();
    let ours = noisy_linear_imputation(&image, &removed_of(case), 0.0, &mut Rng::new(0)).unwrap();
    for reference in ["gradcam", "quantus"] {
        let want = f32s(&case[reference]);
        for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
            close(
                *a as f64,
                *b as f64,
                1e-5,
                &format!("{reference} value {i}"),
            );
        }
    }
}

#[test]
fn imputation_noise_is_gaussian_with_the_given_sd_and_leaves_kept_pixels() {
    let fx = fixture("road.json");
    let case = &fx["imputation"];
    let shape: Vec<usize> = usizes(&case["shape"]);
    let data = f32s(&case["image"]);
    let removed = removed_of(case);
    let image = ImageView::new(&data, [shape[0], shape[1], shape[2]]).unwrap();
    let exact = noisy_linear_imputation(&image, &removed, 0.0, &mut Rng::new(0)).unwrap();
    let sigma = 0.25f32;
    let mut diffs = Vec::new();
    for seed in 0..40 {
        let noisy = noisy_linear_imputation(&image, &removed, sigma, &mut Rng::new(seed)).unwrap();
        for (i, (a, b)) in noisy.iter().zip(&exact).enumerate() {
            if removed[i % removed.len()] {
                diffs.push((a - b) as f64);
            } else {
                assert_eq!(a, b, "kept value {i} changed");
            }
        }
    }
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    // n ≈ 40·3·37 ≈ 4400 draws: the mean's SE is σ/66, the SD's about σ/94.
    assert!(mean.abs() < 4.0 * sigma as f64 / n.sqrt(), "mean {mean}");
    assert!((sd / sigma as f64 - 1.0).abs() < 0.05, "sd {sd}");
    // Neighbouring imputed values get independent draws (lag-1 correlation near 0).
    let lag: f64 = diffs.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (n - 1.0) / sd.powi(2);
    assert!(lag.abs() < 0.06, "lag-1 correlation {lag}");
}

struct ModelCase {
    x: Vec<f32>,
    maps: Vec<f32>,
    y: Vec<usize>,
    fx: Value,
}

fn model_case() -> ModelCase {
    let fx = fixture("road.json");
    ModelCase {
        x: f32s(&fx["x"]),
        maps: f32s(&fx["maps"]),
        y: usizes(&fx["y"]),
        fx,
    }
}

fn slice<T>(v: &[T], b: usize) -> &[T] {
    &v[b * PLANE..(b + 1) * PLANE]
}

#[test]
fn percentile_selection_removes_what_pytorch_grad_cam_removes() {
    let c = model_case();
    let percentiles = f64s(&c.fx["percentiles"]);
    for (name, order) in [("morf", Order::Morf), ("lerf", Order::Lerf)] {
        for (pi, kept) in percentiles.iter().enumerate() {
            let want = c.fx[format!("gradcam_removed_{name}")][pi]
                .as_str()
                .unwrap();
            let want: Vec<bool> = want.bytes().map(|b| b == b'1').collect();
            for b in 0..c.y.len() {
                let map = MapView::new(slice(&c.maps, b), [16, 16]).unwrap();
                let ours = removed_pixels(&map, order, RoadSelection::Percentile, 100.0 - kept);
                assert_eq!(ours, slice(&want, b), "{name} kept {kept}% image {b}");
            }
        }
    }
}

#[test]
fn road_score_changes_match_pytorch_grad_cam() {
    let c = model_case();
    let model = tiny_model();
    let scorer = ModelScorer::new(&model, ScoreKind::Logit).unwrap();
    let percentiles = f64s(&c.fx["percentiles"]);
    for (name, order) in [("morf", Order::Morf), ("lerf", Order::Lerf)] {
        for b in 0..c.y.len() {
            let image = ImageView::new(slice(&c.x, b), [1, 16, 16]).unwrap();
            let map = MapView::new(slice(&c.maps, b), [16, 16]).unwrap();
            let opts = RoadOptions {
                percentages: percentiles.iter().map(|k| 100.0 - k).collect(),
                order,
                selection: RoadSelection::Percentile,
                noise: 0.0,
                seed: 0,
                target: FollowedClass::Class(c.y[b]),
            };
            let r = road(&scorer, &image, &map, &opts).unwrap();
            let mut mean = 0.0;
            for (pi, _) in percentiles.iter().enumerate() {
                let want = c.fx[format!("gradcam_{name}")][pi][b].as_f64().unwrap();
                let ours = (r.scores[pi] - r.unperturbed) as f64;
                close(ours, want, 1e-4, &format!("{name} p{pi} image {b}"));
                mean += want / percentiles.len() as f64;
            }
            // pytorch-grad-cam's ROAD…Average is the mean of these changes.
            close(
                r.mean_change,
                mean,
                1e-4,
                &format!("{name} average image {b}"),
            );
        }
    }
}

#[test]
fn road_accuracy_matches_quantus() {
    let c = model_case();
    let model = tiny_model();
    let scorer = ModelScorer::new(&model, ScoreKind::Softmax).unwrap();
    let percentages = f64s(&c.fx["quantus_percentages"]);
    let accuracy = f64s(&c.fx["quantus_accuracy"]);
    let predicted: Vec<Vec<usize>> = c.fx["quantus_predicted"]
        .as_array()
        .unwrap()
        .iter()
        .map(usizes)
        .collect();
    let mut correct = vec![0usize; percentages.len()];
    assert_eq!(predicted.len(), c.y.len());
    for (b, want) in predicted.iter().enumerate() {
        let image = ImageView::new(slice(&c.x, b), [1, 16, 16]).unwrap();
        let map = MapView::new(slice(&c.maps, b), [16, 16]).unwrap();
        let opts = RoadOptions {
            percentages: percentages.clone(),
            noise: 0.0,
            target: FollowedClass::Class(c.y[b]),
            ..RoadOptions::default()
        };
        let r = road(&scorer, &image, &map, &opts).unwrap();
        assert_eq!(&r.predicted, want, "image {b}");
        for (k, &p) in r.predicted.iter().enumerate() {
            correct[k] += usize::from(p == c.y[b]);
        }
    }
    for (k, want) in accuracy.iter().enumerate() {
        close(
            correct[k] as f64 / c.y.len() as f64,
            *want,
            1e-12,
            "accuracy",
        );
    }
    // The fixture must be able to fail: the accuracy falls as pixels are removed.
    assert!(accuracy[0] > accuracy[accuracy.len() - 1]);
}

#[test]
fn road_refuses_bad_percentages_and_noise() {
    let c = model_case();
    let model = tiny_model();
    let scorer = ModelScorer::new(&model, ScoreKind::Logit).unwrap();
    let image = ImageView::new(slice(&c.x, 0), [1, 16, 16]).unwrap();
    let map = MapView::new(slice(&c.maps, 0), [16, 16]).unwrap();
    for percentages in [
        vec![],
        vec![0.0],
        vec![100.0],
        vec![f64::NAN],
        vec![50.0, -1.0],
    ] {
        let opts = RoadOptions {
            percentages: percentages.clone(),
            ..RoadOptions::default()
        };
        assert!(
            road(&scorer, &image, &map, &opts).is_err(),
            "{percentages:?}"
        );
    }
    let opts = RoadOptions {
        noise: f32::INFINITY,
        ..RoadOptions::default()
    };
    assert!(road(&scorer, &image, &map, &opts).is_err());
}
