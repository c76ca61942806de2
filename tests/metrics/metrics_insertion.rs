//! Insertion / deletion (RISE) against closed forms: with scores linear in the inserted pixels
//! the curves are known point by point and the trapezoid AUC exactly.

use std::path::PathBuf;

use relevance::graph::{GraphBuilder, Model, ModelCard, Op, ParamStore};
use relevance::metrics::insertion::{InsertionOptions, deletion, insertion, insertion_deletion};
use relevance::metrics::order::{Step, Ties};
use relevance::metrics::{
    FollowedClass, ImageView, MapView, MetricError, ModelScorer, ScoreKind, Scores, Substrate,
};
use relevance::tensor::{T4, to_vec};

/// Class 0 scores `Σ_i w_i x_i` over the flattened image, class 1 a constant 0.5.
fn linear_scorer(w: Vec<f32>) -> impl Fn(T4) -> Result<Scores, MetricError> {
    move |batch: T4| {
        let v = to_vec(&batch);
        let len = w.len();
        let mut out = Vec::new();
        for img in v.chunks(len) {
            let dot: f64 = img.iter().zip(&w).map(|(x, w)| *x as f64 * *w as f64).sum();
            out.push(dot as f32);
            out.push(0.5);
        }
        Scores::new(out, 2)
    }
}

fn opts(step: Step, ties: Ties) -> InsertionOptions {
    InsertionOptions {
        step,
        ties,
        target: FollowedClass::Class(0),
        insertion_substrate: Substrate::Zero,
        deletion_substrate: Substrate::Zero,
    }
}

fn assert_curve(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: curve length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() < 1e-6,
            "{what}: point {k} is {g}, want {w}"
        );
    }
}

#[test]
fn constant_map_and_mean_score_give_auc_one_half_even_with_a_short_last_step() {
    // 3 channels of 8×8 ones; the score is the mean of all values, i.e. the inserted fraction.
    let n = 3 * 64;
    let scorer = linear_scorer(vec![1.0 / n as f32; n]);
    let image = vec![1.0f32; n];
    let image = ImageView::new(&image, [3, 8, 8]).unwrap();
    let map = vec![0.7f32; 64];
    let map = MapView::new(&map, [8, 8]).unwrap();
    // 5 pixels per step: 12 steps of 5 and a last step of 4.
    let r =
        insertion_deletion(&scorer, &image, &map, &opts(Step::Pixels(5), Ties::Stable)).unwrap();
    let fractions: Vec<f64> = (0..=13)
        .map(|k| (5.0 * k as f64).min(64.0) / 64.0)
        .collect();
    assert_eq!(r.insertion.curve.fractions, fractions);
    assert_curve(&r.insertion.curve.scores, &fractions, "insertion");
    let remaining: Vec<f64> = fractions.iter().map(|f| 1.0 - f).collect();
    assert_curve(&r.deletion.curve.scores, &remaining, "deletion");
    assert!((r.insertion.curve.auc - 0.5).abs() < 1e-6);
    assert!((r.deletion.curve.auc - 0.5).abs() < 1e-6);
    assert!(r.id_score.abs() < 1e-6);
    // RISE's equal-width formula would misweight the short last step.
    let y = &r.insertion.curve.scores;
    let steps = (y.len() - 1) as f64;
    let rise =
        (y.iter().map(|&v| v as f64).sum::<f64>() - y[0] as f64 / 2.0 - y[13] as f64 / 2.0) / steps;
    assert!((rise - 0.5).abs() > 1e-3, "RISE's formula gives {rise}");
    assert_eq!(r.insertion.conventions.steps, 13);
}

#[test]
fn quadratic_score_gives_the_trapezoid_value() {
    // score = (inserted fraction)²: points 0, ¼, ½, ¾, 1 → squares; trapezoid = ¼·(0/2 + 1/16 + ¼ + 9/16 + ½) = 11/32
    let scorer = |batch: T4| {
        let v = to_vec(&batch);
        let out: Vec<f32> = v
            .chunks(16)
            .flat_map(|img| {
                let m = img.iter().sum::<f32>() / 16.0;
                [m * m, 0.5]
            })
            .collect();
        Scores::new(out, 2)
    };
    let image = vec![1.0f32; 16];
    let image = ImageView::new(&image, [1, 4, 4]).unwrap();
    let map: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let map = MapView::new(&map, [4, 4]).unwrap();
    let r = insertion(
        &scorer,
        &image,
        &map,
        &opts(Step::Fraction(0.25), Ties::Stable),
    )
    .unwrap();
    assert!((r.curve.auc - 11.0 / 32.0).abs() < 1e-7, "{}", r.curve.auc);
}

#[test]
fn the_order_of_the_map_shapes_the_curves() {
    // Score Σ w x with w = (.4, .3, .2, .1); a map equal to w inserts the heaviest pixel first.
    let w = vec![0.4, 0.3, 0.2, 0.1];
    let scorer = linear_scorer(w.clone());
    let image = vec![1.0f32; 4];
    let image = ImageView::new(&image, [1, 2, 2]).unwrap();
    let good = MapView::new(&w, [2, 2]).unwrap();
    let o = opts(Step::Pixels(1), Ties::Stable);
    let r = insertion_deletion(&scorer, &image, &good, &o).unwrap();
    assert_curve(
        &r.insertion.curve.scores,
        &[0.0, 0.4, 0.7, 0.9, 1.0],
        "insertion",
    );
    assert_curve(
        &r.deletion.curve.scores,
        &[1.0, 0.6, 0.3, 0.1, 0.0],
        "deletion",
    );
    // ¼·(0 + .4 + .7 + .9 + ½) = .625 and ¼·(½ + .6 + .3 + .1 + 0) = .375
    assert!((r.insertion.curve.auc - 0.625).abs() < 1e-6);
    assert!((r.deletion.curve.auc - 0.375).abs() < 1e-6);
    assert!((r.id_score - 0.25).abs() < 1e-6);
    let reversed: Vec<f32> = w.iter().map(|v| -v).collect();
    let bad = MapView::new(&reversed, [2, 2]).unwrap();
    let r = insertion_deletion(&scorer, &image, &bad, &o).unwrap();
    assert!((r.id_score + 0.25).abs() < 1e-6);
}

#[test]
fn quantised_ties_are_inserted_together() {
    // 4 levels: {1, 3} top, {2, 4} next, {0, 5} last (level 2 empty) → 3 steps.
    let map = vec![0.0, 0.8, 0.3, 1.0, 0.26, 0.1];
    let w: Vec<f32> = (1..=6).map(|i| i as f32 / 21.0).collect();
    let scorer = linear_scorer(w);
    let image = vec![1.0f32; 6];
    let image = ImageView::new(&image, [1, 1, 6]).unwrap();
    let map = MapView::new(&map, [1, 6]).unwrap();
    let r = insertion(
        &scorer,
        &image,
        &map,
        &opts(Step::Pixels(1), Ties::Quantise { levels: 4 }),
    )
    .unwrap();
    assert_eq!(r.curve.fractions, [0.0, 2.0 / 6.0, 4.0 / 6.0, 1.0]);
    // pixels 1, 3 weigh 2 + 4; then 2, 4 weigh 3 + 5
    assert_curve(
        &r.curve.scores,
        &[0.0, 6.0 / 21.0, 14.0 / 21.0, 1.0],
        "insertion",
    );
}

/// Global average pooling → linear: logit 0 = mean of the image, logit 1 = 0.25.
fn mean_model(with_softmax: bool) -> Model {
    let mut b = GraphBuilder::new(2);
    let x = b.input();
    let x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    let x = b.flatten("flatten", x, 2);
    let mut x = b.linear("fc", x, 2, 2, true);
    if with_softmax {
        x = b.unary("softmax", Op::Softmax, x);
    }
    let graph = b.finish(x);
    let mut params = ParamStore::new();
    params
        .insert_values("fc.weight", vec![0.5, 0.5, 0.0, 0.0], vec![2, 2])
        .unwrap();
    params
        .insert_values("fc.bias", vec![0.0, 0.25], vec![2])
        .unwrap();
    graph.check_params(&params).unwrap();
    Model {
        graph,
        params,
        card: ModelCard {
            num_classes: 2,
            channels: 2,
            input_size: [4, 4],
            ..ModelCard::default()
        },
        source: PathBuf::new(),
    }
}

#[test]
fn model_scorer_logits_and_softmax_follow_the_closed_form() {
    let image = vec![1.0f32; 32];
    let image = ImageView::new(&image, [2, 4, 4]).unwrap();
    let map = vec![1.0f32; 16];
    let map = MapView::new(&map, [4, 4]).unwrap();
    let o = InsertionOptions {
        step: Step::Pixels(4),
        target: FollowedClass::Predicted,
        insertion_substrate: Substrate::Zero,
        ..InsertionOptions::default()
    };
    let fractions = [0.0, 0.25, 0.5, 0.75, 1.0];
    for softmax_head in [false, true] {
        let model = mean_model(softmax_head);
        let logit = ModelScorer::new(&model, ScoreKind::Logit).unwrap();
        let r = insertion(&logit, &image, &map, &o).unwrap();
        assert_eq!(r.conventions.class, 0, "predicted class of the ones image");
        assert_curve(&r.curve.scores, &fractions, "logit insertion");
        assert!((r.curve.auc - 0.5).abs() < 1e-6);
        let prob = ModelScorer::new(&model, ScoreKind::Softmax)
            .unwrap()
            .with_batch_size(2);
        let r = insertion(&prob, &image, &map, &o).unwrap();
        let p: Vec<f64> = fractions
            .iter()
            .map(|f| 1.0 / (1.0 + (0.25f64 - f).exp()))
            .collect();
        assert_curve(&r.curve.scores, &p, "softmax insertion");
        let auc = 0.25 * (p[0] / 2.0 + p[1] + p[2] + p[3] + p[4] / 2.0);
        assert!((r.curve.auc - auc).abs() < 1e-6);
        assert_eq!(r.conventions.score, ScoreKind::Softmax);
    }
}

#[test]
fn batch_size_does_not_change_the_curves() {
    let model = mean_model(false);
    let image: Vec<f32> = (0..32).map(|i| ((i * 7) % 5) as f32 / 5.0).collect();
    let image = ImageView::new(&image, [2, 4, 4]).unwrap();
    let map: Vec<f32> = (0..16).map(|i| ((i * 11) % 13) as f32).collect();
    let map = MapView::new(&map, [4, 4]).unwrap();
    let o = InsertionOptions {
        step: Step::Pixels(1),
        target: FollowedClass::Class(0),
        ..InsertionOptions::default()
    };
    let one = ModelScorer::new(&model, ScoreKind::Logit)
        .unwrap()
        .with_batch_size(1);
    let seven = ModelScorer::new(&model, ScoreKind::Logit)
        .unwrap()
        .with_batch_size(7);
    let a = insertion_deletion(&one, &image, &map, &o).unwrap();
    let b = insertion_deletion(&seven, &image, &map, &o).unwrap();
    assert_eq!(a.insertion.curve.scores.len(), 17);
    for (x, y) in a
        .insertion
        .curve
        .scores
        .iter()
        .zip(&b.insertion.curve.scores)
    {
        assert!((x - y).abs() < 1e-6);
    }
    // The deletion curve ends at the substrate and insertion's at the image.
    let full = a.insertion.curve.scores[16];
    assert!((a.deletion.curve.scores[0] - full).abs() < 1e-6);
    assert!(
        a.deletion.curve.scores[16].abs() < 1e-6,
        "zero substrate scores 0"
    );
    assert!(a.insertion.conventions.substrate.starts_with("blur"));
}

#[test]
fn deletion_with_blur_ends_at_the_blurred_image() {
    let scorer = linear_scorer(vec![1.0 / 64.0; 64]);
    let values: Vec<f32> = (0..64).map(|i| (i % 8) as f32).collect();
    let image = ImageView::new(&values, [1, 8, 8]).unwrap();
    let map: Vec<f32> = (0..64).map(|i| i as f32).collect();
    let map = MapView::new(&map, [8, 8]).unwrap();
    let o = InsertionOptions {
        deletion_substrate: Substrate::rise_blur(),
        target: FollowedClass::Class(0),
        step: Step::Pixels(16),
        ..InsertionOptions::default()
    };
    let r = deletion(&scorer, &image, &map, &o).unwrap();
    let blurred = Substrate::rise_blur().build(&image).unwrap();
    let mean = blurred.iter().sum::<f32>() / 64.0;
    assert!((r.curve.scores[4] - mean).abs() < 1e-5);
    assert!((r.curve.scores[0] - 3.5).abs() < 1e-6);
}

#[test]
fn mismatched_shapes_and_bad_parameters_are_clear_errors() {
    let scorer = linear_scorer(vec![1.0; 16]);
    let image = vec![1.0f32; 16];
    let image = ImageView::new(&image, [1, 4, 4]).unwrap();
    let map = vec![1.0f32; 8];
    let map = MapView::new(&map, [2, 4]).unwrap();
    let e = insertion(&scorer, &image, &map, &InsertionOptions::default()).unwrap_err();
    assert!(e.to_string().contains("map is [2, 4]"), "{e}");
    let map = vec![1.0f32; 16];
    let map = MapView::new(&map, [4, 4]).unwrap();
    let e = insertion(&scorer, &image, &map, &opts(Step::Pixels(0), Ties::Stable)).unwrap_err();
    assert!(e.to_string().contains("step"), "{e}");
    let mut o = opts(Step::Pixels(1), Ties::Stable);
    o.target = FollowedClass::Class(5);
    let e = insertion(&scorer, &image, &map, &o).unwrap_err();
    assert!(e.to_string().contains("target class 5"), "{e}");
    assert!(MapView::new(&[f32::NAN], [1, 1]).is_err());
}
