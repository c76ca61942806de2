//! Parity with Quantus 0.6 on the same model, images, maps, masks and random draws
//! (`tools/fixtures_metrics.py` writes `tests/fixtures/metrics/quantus.json`).

use crate::metrics_common;

use metrics_common::*;
use relevance::graph::ParamStore;
use relevance::metrics::complexity::{complexity, sparseness};
use relevance::metrics::faithfulness::faithfulness_correlation_with_subsets;
use relevance::metrics::localisation::{
    pointing_game, relevance_mass_accuracy, relevance_rank_accuracy,
};
use relevance::metrics::perturbation::{
    Order, PixelFlippingOptions, RegionPerturbationOptions, pixel_flipping, region_perturbation,
};
use relevance::metrics::randomisation::{
    Cascade, Comparison, RandomisationOptions, model_parameter_randomisation_with,
    random_logit_with_class,
};
use relevance::metrics::sensitivity::{Radius, SensitivityOptions, sensitivity_with_noise};
use relevance::metrics::{FollowedClass, ImageView, MapView, ModelScorer, ScoreKind, Substrate};
use relevance::tensor::{from_vec, max_abs_diff};
use serde_json::Value;

const PLANE: usize = 256;
const SHAPE: [usize; 3] = [1, 16, 16];

struct Case {
    fx: Value,
    x: Vec<f32>,
    maps: Vec<f32>,
    masks: Vec<bool>,
    y: Vec<usize>,
}

fn case() -> Case {
    let fx = fixture("quantus.json");
    Case {
        x: f32s(&fx["x"]),
        maps: f32s(&fx["maps"]),
        masks: bools(&fx["masks"]),
        y: usizes(&fx["y"]),
        fx,
    }
}

fn slice<T>(v: &[T], b: usize) -> &[T] {
    &v[b * PLANE..(b + 1) * PLANE]
}

#[test]
fn model_twin_gives_the_same_logits_and_gradients() {
    let c = case();
    let model = tiny_model();
    let scorer = ModelScorer::new(&model, ScoreKind::Logit).unwrap();
    use relevance::metrics::Scorer;
    let logits = scorer
        .scores(from_vec(c.x.clone(), [2, 1, 16, 16]))
        .unwrap();
    let want = f32s(&c.fx["logits"]);
    assert!(
        max_abs_diff(&logits.values, &want) < 1e-5,
        "{logits:?} vs {want:?}"
    );
    let g = gradient_maps(&model, from_vec(c.x.clone(), [2, 1, 16, 16]), &c.y).unwrap();
    let want = f32s(&c.fx["gradient_maps"]);
    assert!(max_abs_diff(&g, &want) < 1e-5);
}

#[test]
fn pixel_flipping_matches_quantus() {
    let c = case();
    let model = tiny_model();
    let scorer = ModelScorer::new(&model, ScoreKind::Softmax).unwrap();
    let want = f32s(&c.fx["pixel_flipping"]);
    let steps = want.len() / 2;
    for b in 0..2 {
        let image = ImageView::new(slice(&c.x, b), SHAPE).unwrap();
        let map = MapView::new(slice(&c.maps, b), [16, 16]).unwrap();
        let opts = PixelFlippingOptions {
            pixels_per_step: 8,
            order: Order::Morf,
            baseline: Substrate::ImageMin,
            target: FollowedClass::Class(c.y[b]),
        };
        let r = pixel_flipping(&scorer, &image, &map, &opts).unwrap();
        let ours = &r.curve.scores[1..];
        let theirs = &want[b * steps..(b + 1) * steps];
        assert_eq!(ours.len(), steps);
        let err = max_abs_diff(ours, theirs);
        assert!(err < 1e-5, "image {b}: max abs diff {err}");
    }
}

#[test]
fn region_perturbation_matches_quantus_both_orders() {
    let c = case();
    let model = tiny_model();
    let scorer = ModelScorer::new(&model, ScoreKind::Softmax).unwrap();
    for (key, order) in [("region_morf", Order::Morf), ("region_lerf", Order::Lerf)] {
        let want = f32s(&c.fx[key]);
        let regions = want.len() / 2;
        for b in 0..2 {
            let image = ImageView::new(slice(&c.x, b), SHAPE).unwrap();
            let map = MapView::new(slice(&c.maps, b), [16, 16]).unwrap();
            let opts = RegionPerturbationOptions {
                patch: 5,
                regions,
                order,
                baseline: Substrate::ImageMin,
                target: FollowedClass::Class(c.y[b]),
            };
            let r = region_perturbation(&scorer, &image, &map, &opts).unwrap();
            let s = &r.curve.scores;
            let drops: Vec<f32> = s[1..].iter().map(|v| s[0] - v).collect();
            let err = max_abs_diff(&drops, &want[b * regions..(b + 1) * regions]);
            assert!(err < 1e-5, "{key} image {b}: max abs diff {err}");
            // AOPC by its definition over the same curve (point 0 contributes 0)
            let aopc = want[b * regions..(b + 1) * regions]
                .iter()
                .map(|&d| d as f64)
                .sum::<f64>()
                / (regions + 1) as f64;
            close(r.aopc, aopc, 1e-5, "AOPC");
        }
    }
}

#[test]
fn faithfulness_correlation_matches_quantus_on_replayed_subsets() {
    let c = case();
    let model = tiny_model();
    let scorer = ModelScorer::new(&model, ScoreKind::Logit).unwrap();
    let want = f64s(&c.fx["faithfulness_correlation"]);
    let runs = c.fx["faithfulness_subsets"].as_array().unwrap();
    for b in 0..2 {
        let subsets: Vec<Vec<usize>> = runs.iter().map(|r| usizes(&r[b])).collect();
        let image = ImageView::new(slice(&c.x, b), SHAPE).unwrap();
        let map = MapView::new(slice(&c.maps, b), [16, 16]).unwrap();
        let r = faithfulness_correlation_with_subsets(
            &scorer,
            &image,
            &map,
            &subsets,
            &Substrate::ImageMin,
            FollowedClass::Class(c.y[b]),
        )
        .unwrap();
        close(r.correlation, want[b], 1e-5, "faithfulness correlation");
    }
}

#[test]
fn max_and_avg_sensitivity_match_quantus_on_replayed_noise() {
    let c = case();
    let model = tiny_model();
    let explain = |batch, targets: &[usize]| gradient_maps(&model, batch, targets);
    let noise = c.fx["sensitivity_noise"].as_array().unwrap();
    let want_max = f64s(&c.fx["max_sensitivity"]);
    let want_avg = f64s(&c.fx["avg_sensitivity"]);
    for b in 0..2 {
        let image = ImageView::new(slice(&c.x, b), SHAPE).unwrap();
        let map_values = gradient_maps(
            &model,
            from_vec(slice(&c.x, b).to_vec(), [1, 1, 16, 16]),
            &[c.y[b]],
        )
        .unwrap();
        let map = MapView::new(&map_values, [16, 16]).unwrap();
        let draws: Vec<Vec<f32>> = noise.iter().map(|d| f32s(&d[b])).collect();
        let opts = SensitivityOptions {
            radius: Radius::Absolute(0.1),
            relative: true,
            batch_size: 4, // 10 draws in batches of 4, 4, 2
            ..SensitivityOptions::default()
        };
        let r = sensitivity_with_noise(&explain, &image, &map, c.y[b], &draws, &opts).unwrap();
        close(r.max, want_max[b], 1e-5, "max-sensitivity");
        close(r.avg, want_avg[b], 1e-5, "avg-sensitivity");
    }
}

#[test]
fn random_logit_matches_quantus_with_spearman() {
    let c = case();
    let model = tiny_model();
    let explain = |batch, targets: &[usize]| gradient_maps(&model, batch, targets);
    let want = f64s(&c.fx["random_logit"]);
    let others = usizes(&c.fx["random_logit_classes"]);
    let grads = f32s(&c.fx["gradient_maps"]);
    for b in 0..2 {
        let image = ImageView::new(slice(&c.x, b), SHAPE).unwrap();
        let map = MapView::new(slice(&grads, b), [16, 16]).unwrap();
        let cmp = Comparison {
            abs: false,
            ..Comparison::default()
        };
        let r = random_logit_with_class(&explain, &image, &map, c.y[b], others[b], &cmp).unwrap();
        close(
            r.similarity.spearman,
            want[b],
            1e-4,
            "random logit Spearman",
        );
    }
}

#[test]
fn model_parameter_randomisation_matches_quantus_with_its_fresh_layers() {
    let c = case();
    let model = tiny_model();
    let mut fresh = ParamStore::new();
    for (key, p) in c.fx["mprt_fresh"].as_object().unwrap() {
        fresh
            .insert_values(key.clone(), f32s(&p["values"]), usizes(&p["shape"]))
            .unwrap();
    }
    let explain = |m: &relevance::Model, batch, targets: &[usize]| gradient_maps(m, batch, targets);
    let opts = RandomisationOptions {
        cascade: Cascade::TopDown,
        include_batchnorm: true,
        seed: 0,
        comparison: Comparison {
            abs: true,
            ..Comparison::default()
        },
    };
    let batch = from_vec(c.x.clone(), [2, 1, 16, 16]);
    let r =
        model_parameter_randomisation_with(&model, &batch, &c.y, &explain, &fresh, &opts).unwrap();
    let layers: Vec<String> = c.fx["mprt_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        r.steps.iter().map(|s| s.layer.clone()).collect::<Vec<_>>(),
        layers
    );
    for step in &r.steps {
        let want = f64s(&c.fx["mprt"][&step.layer]);
        for (b, (ours, theirs)) in step.per_image.iter().zip(&want).enumerate() {
            close(
                ours.spearman,
                *theirs,
                1e-6,
                &format!("MPRT {} image {b}", step.layer),
            );
        }
    }
}

#[test]
fn sparseness_and_complexity_match_quantus() {
    let c = case();
    let sp = f64s(&c.fx["sparseness"]);
    let cx = f64s(&c.fx["complexity"]);
    for b in 0..2 {
        close(
            sparseness(slice(&c.maps, b), 1e-7),
            sp[b],
            1e-5,
            "sparseness",
        );
        close(
            complexity(slice(&c.maps, b), 1e-12),
            cx[b],
            1e-5,
            "complexity",
        );
    }
}

#[test]
fn localisation_scores_match_quantus() {
    let c = case();
    let pg = bools(&c.fx["pointing_game"]);
    let pg_hit = bools(&c.fx["pointing_game_hit"]);
    let hit_maps = f32s(&c.fx["maps_hit"]);
    let mass = f64s(&c.fx["relevance_mass_accuracy"]);
    let rank = f64s(&c.fx["relevance_rank_accuracy"]);
    for b in 0..2 {
        let mask = slice(&c.masks, b);
        let map = MapView::new(slice(&c.maps, b), [16, 16]).unwrap();
        assert_eq!(pointing_game(&map, mask, 0.0).unwrap().unwrap().hit, pg[b]);
        let map = MapView::new(slice(&hit_maps, b), [16, 16]).unwrap();
        assert_eq!(
            pointing_game(&map, mask, 0.0).unwrap().unwrap().hit,
            pg_hit[b]
        );
        let m = relevance_mass_accuracy(slice(&c.maps, b), mask, false)
            .unwrap()
            .unwrap();
        close(m, mass[b], 1e-5, "relevance mass accuracy");
        let r = relevance_rank_accuracy(slice(&c.maps, b), mask)
            .unwrap()
            .unwrap();
        close(r, rank[b], 1e-12, "relevance rank accuracy");
    }
    assert!(
        pg_hit.contains(&true) && pg.contains(&false),
        "fixture covers hits and misses"
    );
}
