//! Metrics on cases small enough to compute by hand, and properties that must hold whatever the
//! model: linear models make pixel flipping, faithfulness correlation and conservation exact;
//! explainers that ignore the model or the class must fail the randomisation checks.

use crate::metrics_common;

use metrics_common::*;
use relevance::graph::init::init_params;
use relevance::graph::{Model, ModelCard};
use relevance::metrics::conservation::conservation;
use relevance::metrics::faithfulness::{FaithfulnessCorrelationOptions, faithfulness_correlation};
use relevance::metrics::perturbation::{
    Order, PixelFlippingOptions, RegionPerturbationOptions, pixel_flipping, region_perturbation,
};
use relevance::metrics::randomisation::{
    Cascade, Comparison, RandomisationOptions, layers_top_down, model_parameter_randomisation,
    model_parameter_randomisation_with, random_logit,
};
use relevance::metrics::sensitivity::{
    Radius, SensitivityOptions, sensitivity, sensitivity_with_noise,
};
use relevance::metrics::{FollowedClass, ImageView, MapView, MetricError, Scores, Substrate};
use relevance::tensor::{T4, from_vec, to_vec};

/// Class 0 scores `Σ_i w_i x_i + bias`, class 1 a constant 0.
fn linear_scorer(w: Vec<f32>, bias: f32) -> impl Fn(T4) -> Result<Scores, MetricError> {
    move |batch: T4| {
        let v = to_vec(&batch);
        let mut out = Vec::new();
        for img in v.chunks(w.len()) {
            let dot: f64 = img.iter().zip(&w).map(|(x, w)| *x as f64 * *w as f64).sum();
            out.push(dot as f32 + bias);
            out.push(0.0);
        }
        Scores::new(out, 2)
    }
}

#[test]
fn pixel_flipping_morf_and_lerf_by_hand() {
    let w = vec![0.4, 0.3, 0.2, 0.1];
    let scorer = linear_scorer(w.clone(), 0.0);
    let ones = vec![1.0f32; 4];
    let image = ImageView::new(&ones, [1, 2, 2]).unwrap();
    let map = MapView::new(&w, [2, 2]).unwrap();
    let mut o = PixelFlippingOptions {
        pixels_per_step: 1,
        order: Order::Morf,
        baseline: Substrate::Value(vec![0.0]),
        target: FollowedClass::Class(0),
    };
    let r = pixel_flipping(&scorer, &image, &map, &o).unwrap();
    let want = [1.0, 0.6, 0.3, 0.1, 0.0];
    for (g, w) in r.curve.scores.iter().zip(want) {
        assert!((g - w).abs() < 1e-6);
    }
    // AOPC = mean of drops (0, .4, .7, .9, 1) = 0.6
    assert!((r.aopc - 0.6).abs() < 1e-6);
    // Quantus' AUC: trapz over (.6, .3, .1, 0) = .45 + .2 + .05 = .7
    assert!((r.auc_quantus - 0.7).abs() < 1e-6);
    o.order = Order::Lerf;
    let r = pixel_flipping(&scorer, &image, &map, &o).unwrap();
    // drops (0, .1, .3, .6, 1) → 0.4
    assert!((r.aopc - 0.4).abs() < 1e-6);
}

#[test]
fn region_perturbation_by_hand() {
    // 4×4, patch 2 → four 2×2 patches; weight 1, 2, 3, 4 per patch (row-major grid).
    let mut w = vec![0.0f32; 16];
    for y in 0..4 {
        for x in 0..4 {
            w[y * 4 + x] = ((y / 2) * 2 + x / 2 + 1) as f32 / 40.0;
        }
    }
    let scorer = linear_scorer(w.clone(), 0.0);
    let ones = vec![1.0f32; 16];
    let image = ImageView::new(&ones, [1, 4, 4]).unwrap();
    let map = MapView::new(&w, [4, 4]).unwrap();
    let o = RegionPerturbationOptions {
        patch: 2,
        regions: 3,
        order: Order::Morf,
        baseline: Substrate::Value(vec![0.0]),
        target: FollowedClass::Class(0),
    };
    let r = region_perturbation(&scorer, &image, &map, &o).unwrap();
    // patches weigh 4·(1,2,3,4)/40 = .1 .2 .3 .4; MoRF removes .4, .3, .2
    let want = [1.0, 0.6, 0.3, 0.1];
    for (g, w) in r.curve.scores.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{:?}", r.curve.scores);
    }
    assert_eq!(r.curve.fractions, [0.0, 0.25, 0.5, 0.75]);
    assert!((r.aopc - (0.0 + 0.4 + 0.7 + 0.9) / 4.0).abs() < 1e-6);
}

#[test]
fn faithfulness_correlation_is_one_for_the_exact_attribution_of_a_linear_model() {
    // f(x) = Σ w x + b and R = w ⊙ x with baseline 0: every drop equals the subset's relevance.
    let n = 64;
    let w: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.4)
        .collect();
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 13) % 11) as f32 / 11.0 + 0.1)
        .collect();
    let r: Vec<f32> = w.iter().zip(&x).map(|(a, b)| a * b).collect();
    let scorer = linear_scorer(w, 0.3);
    let image = ImageView::new(&x, [1, 8, 8]).unwrap();
    let opts = FaithfulnessCorrelationOptions {
        runs: 30,
        subset_size: 10,
        baseline: Substrate::Zero,
        target: FollowedClass::Class(0),
        seed: 4,
    };
    let map = MapView::new(&r, [8, 8]).unwrap();
    let fc = faithfulness_correlation(&scorer, &image, &map, &opts).unwrap();
    assert!((fc.correlation - 1.0).abs() < 1e-6, "{}", fc.correlation);
    for (s, d) in fc.relevance_sums.iter().zip(&fc.score_drops) {
        assert!((s - d).abs() < 1e-5);
    }
    let neg: Vec<f32> = r.iter().map(|v| -v).collect();
    let map = MapView::new(&neg, [8, 8]).unwrap();
    let fc = faithfulness_correlation(&scorer, &image, &map, &opts).unwrap();
    assert!((fc.correlation + 1.0).abs() < 1e-6);
}

#[test]
fn sensitivity_of_the_identity_explainer_is_the_relative_noise_norm() {
    // Φ(x) = x: ‖Φ(x+δ) − Φ(x)‖ / ‖Φ(x)‖ = ‖δ‖ / ‖x‖.
    let identity = |batch: T4, _: &[usize]| Ok(to_vec(&batch));
    let x: Vec<f32> = (0..16).map(|i| i as f32 / 4.0).collect();
    let image = ImageView::new(&x, [1, 4, 4]).unwrap();
    let map = MapView::new(&x, [4, 4]).unwrap();
    let norm_x = x.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt();
    let noise = vec![vec![0.1f32; 16], vec![-0.2f32; 16], vec![0.05f32; 16]];
    let o = SensitivityOptions {
        radius: Radius::Absolute(0.2),
        batch_size: 2,
        ..SensitivityOptions::default()
    };
    let s = sensitivity_with_noise(&identity, &image, &map, 0, &noise, &o).unwrap();
    let per = [0.4 / norm_x, 0.8 / norm_x, 0.2 / norm_x];
    assert!((s.max - per[1]).abs() < 1e-6);
    assert!((s.avg - per.iter().sum::<f64>() / 3.0).abs() < 1e-6);
    let abs = SensitivityOptions {
        relative: false,
        ..o.clone()
    };
    let s = sensitivity_with_noise(&identity, &image, &map, 0, &noise, &abs).unwrap();
    assert!((s.max - 0.8).abs() < 1e-6);
    // Random noise in the L∞ ball of radius r = 5 % of the range (3.75): ‖δ‖ ≤ r·√16.
    let s = sensitivity(&identity, &image, &map, 0, &SensitivityOptions::default()).unwrap();
    assert!((s.radius - 0.05 * 3.75).abs() < 1e-6);
    assert_eq!(s.per_sample.len(), 50);
    assert!(s.max <= s.radius as f64 * 4.0 / norm_x + 1e-9 && s.avg > 0.0);
    assert!(s.max >= s.avg);
}

#[test]
fn conservation_of_input_times_weight_in_a_linear_model() {
    let w: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) / 10.0).collect();
    let x: Vec<f32> = (0..16).map(|i| (i % 5) as f32).collect();
    let r: Vec<f32> = w.iter().zip(&x).map(|(a, b)| a * b).collect();
    let image = ImageView::new(&x, [1, 4, 4]).unwrap();
    let f: f64 = r.iter().map(|&v| v as f64).sum();
    // no bias: Σ R = f(x) exactly
    let c = conservation(
        &linear_scorer(w.clone(), 0.0),
        &image,
        &r,
        FollowedClass::Class(0),
        None,
    )
    .unwrap();
    assert!(c.error < 1e-6, "{}", c.error);
    // bias b: the relevance misses b, error |b| / |f(x)|
    let c = conservation(
        &linear_scorer(w.clone(), 0.5),
        &image,
        &r,
        FollowedClass::Class(0),
        None,
    )
    .unwrap();
    assert!((c.error - 0.5 / (f + 0.5).abs()).abs() < 1e-6);
    // against f(x) − f(x̄) with x̄ = 1: R = w ⊙ (x − 1) is complete, bias or not
    let rb: Vec<f32> = w.iter().zip(&x).map(|(a, b)| a * (b - 1.0)).collect();
    let c = conservation(
        &linear_scorer(w, 0.5),
        &image,
        &rb,
        FollowedClass::Class(0),
        Some(&Substrate::Value(vec![1.0])),
    )
    .unwrap();
    assert!(c.error < 1e-5, "{}", c.error);
}

#[test]
fn randomisation_catches_an_explainer_that_ignores_the_model() {
    let model = tiny_model();
    let x: Vec<f32> = (0..512).map(|i| ((i * 29) % 31) as f32 / 31.0).collect();
    let batch = from_vec(x, [2, 1, 16, 16]);
    // "edge detector": the input itself, whatever the weights
    let blind = |_: &Model, b: T4, _: &[usize]| Ok(to_vec(&b));
    let r = model_parameter_randomisation(&model, &batch, &[0, 1], &blind, &Default::default())
        .unwrap();
    assert_eq!(r.steps.len(), 3);
    for step in &r.steps {
        for s in &step.per_image {
            assert!((s.spearman - 1.0).abs() < 1e-12);
            assert!((s.ssim - 1.0).abs() < 1e-12);
            assert_eq!(s.top_k_iou, 1.0);
        }
    }
    // and the random-logit test catches one that ignores the class
    let values = to_vec(&batch);
    let image = ImageView::new(&values[..256], [1, 16, 16]).unwrap();
    let map_values = image.data.to_vec();
    let map = MapView::new(&map_values, [16, 16]).unwrap();
    let classless = |b: T4, _: &[usize]| Ok(to_vec(&b));
    let rl = random_logit(&classless, &image, &map, 1, 3, 9, &Comparison::default()).unwrap();
    assert_ne!(rl.other_class, 1);
    assert!(rl.other_class < 3);
    assert!((rl.similarity.spearman - 1.0).abs() < 1e-12);
}

#[test]
fn cascade_ends_at_the_fully_fresh_model_and_starts_like_independent() {
    let model = tiny_model();
    let x: Vec<f32> = (0..512).map(|i| ((i * 29) % 31) as f32 / 31.0).collect();
    let batch = from_vec(x, [2, 1, 16, 16]);
    let targets = [0, 2];
    let explain = |m: &Model, b: T4, t: &[usize]| gradient_maps(m, b, t);
    let fresh = init_params(&model.graph, 5).unwrap();
    let mut opts = RandomisationOptions {
        seed: 5,
        ..RandomisationOptions::default()
    };
    let cascade =
        model_parameter_randomisation_with(&model, &batch, &targets, &explain, &fresh, &opts)
            .unwrap();
    // the default entry point draws the same fresh parameters from the seed
    let drawn = model_parameter_randomisation(&model, &batch, &targets, &explain, &opts).unwrap();
    assert_eq!(cascade, drawn);
    opts.cascade = Cascade::Independent;
    let independent =
        model_parameter_randomisation_with(&model, &batch, &targets, &explain, &fresh, &opts)
            .unwrap();
    assert_eq!(
        cascade.steps[0], independent.steps[0],
        "first step: only fc changed"
    );
    assert_ne!(cascade.steps[2], independent.steps[2]);
    // last cascade step = the model with every layer fresh
    let all_fresh = Model {
        params: fresh,
        ..model.clone()
    };
    let a = gradient_maps(&model, batch.clone(), &targets).unwrap();
    let b = gradient_maps(&all_fresh, batch.clone(), &targets).unwrap();
    for i in 0..2 {
        let want = opts
            .comparison
            .compare(
                &a[i * 256..(i + 1) * 256],
                &b[i * 256..(i + 1) * 256],
                [16, 16],
            )
            .unwrap();
        assert_eq!(cascade.steps[2].per_image[i], want);
    }
}

#[test]
fn batchnorm_layers_can_be_left_out() {
    let card = ModelCard {
        num_classes: 3,
        ..ModelCard::default()
    };
    let model = Model::init("small_cnn", card, 1).unwrap();
    let with = layers_top_down(&model, true);
    let without = layers_top_down(&model, false);
    // 4 conv + 4 BN + 1 linear
    assert_eq!(with.len(), 9);
    assert_eq!(without.len(), 5);
    assert_eq!(model.graph.nodes[with[0]].name, "classifier.1");
}

/// A toy method: relevance = 2·x for channel 0 and −x for the others (`[N, C, H, W]`).
struct Toy;

impl relevance::methods::Explainer for Toy {
    fn name(&self) -> &str {
        "toy"
    }
    fn kind(&self) -> relevance::methods::MapKind {
        relevance::methods::MapKind::Input
    }
    fn explain(
        &self,
        _: &Model,
        x: &T4,
        _: &[usize],
    ) -> Result<T4, relevance::methods::MethodError> {
        let [n, c, h, w] = x.dims();
        let v = to_vec(x);
        let plane = h * w;
        let out: Vec<f32> = v
            .iter()
            .enumerate()
            .map(|(i, &x)| if (i / plane) % c == 0 { 2.0 * x } else { -x })
            .collect();
        Ok(from_vec(out, [n, c, h, w]))
    }
}

#[test]
fn explainer_adapter_reduces_channels() {
    use relevance::metrics::{ChannelReduce, ExplainerMaps, MapFn};
    let model = tiny_model();
    // two 3-channel 1×2 images
    let x: Vec<f32> = (1..=12).map(|i| i as f32).collect();
    let batch = from_vec(x, [2, 3, 1, 2]);
    let maps = |reduce| {
        let adapter = ExplainerMaps {
            explainer: &Toy,
            model: &model,
            reduce,
        };
        MapFn::maps(&adapter, batch.clone(), &[0, 0]).unwrap()
    };
    // image 0: channels (1,2), (3,4), (5,6) → 2·(1,2) − (3,4) − (5,6) = (−6, −6)
    // image 1: channels (7,8), (9,10), (11,12) → 2·(7,8) − (9,10) − (11,12) = (−6, −6)
    assert_eq!(maps(ChannelReduce::Sum), [-6.0, -6.0, -6.0, -6.0]);
    // |·| sums: (2 + 3 + 5, 4 + 4 + 6) and (14 + 9 + 11, 16 + 10 + 12)
    assert_eq!(maps(ChannelReduce::SumAbs), [10.0, 14.0, 34.0, 38.0]);
    assert_eq!(maps(ChannelReduce::MaxAbs), [5.0, 6.0, 14.0, 16.0]);
}
