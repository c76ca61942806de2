//! ROAD, RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci 2022, "A Consistent and
//! Efficient Evaluation Strategy for Attribution Methods", ICML): the pixels a map ranks most
//! (MoRF) or least (LeRF) relevant are removed — a percentage `p` of them, each percentage from
//! the unperturbed image — and replaced by the noisy linear imputation of
//! [`super::imputation`], which leaks no information about *which* pixels were removed through
//! their values (the class-information leakage that biases the constant baselines of pixel
//! flipping). The model then scores each imputed image.
//!
//! Reported per percentage: the followed class's score and whether the model still predicts
//! it; summarised as the mean score change `(1/P) Σ_p (f(x̃_p) − f(x))` (pytorch-grad-cam's
//! `ROADMostRelevantFirstAverage` / `ROADLeastRelevantFirstAverage`) and the share of
//! percentages at which the prediction is kept (Quantus' ROAD accuracy, per image). A faithful
//! map makes MoRF fall fast and LeRF stay high; pytorch-grad-cam's `ROADCombined` is
//! `(LeRF − MoRF)/2` of the mean changes.
//!
//! Conventions of the two references, and ours:
//! - Which pixels: [`RoadSelection::Rank`] removes the first `⌊H·W·p/100⌋` pixels of the ranking
//!   (Quantus; a stable sort, so ties keep pixel order where Quantus' `argsort` is unspecified);
//!   [`RoadSelection::Percentile`] removes the pixels at or above NumPy's linear-interpolated
//!   `(100 − p)`-th percentile of the map (MoRF) or of `1 − map` (LeRF), as pytorch-grad-cam
//!   does (its `percentile` argument is the share *kept*, `100 − p`).
//! - Quantus 0.6 ranks the map broadcast over channels and removes that many *elements*, which
//!   is only defined for one-channel images (a larger index would fail); we rank pixels, all
//!   channels together, which equals Quantus on one-channel images. Quantus has MoRF only.
//! - Noise: both add `noise · 𝒩(0, 1)` (default 0.01) from torch's or NumPy's global generator;
//!   ours comes from the seeded [`Rng`] (one stream per percentage), so runs repeat exactly but
//!   do not replay the references' draws (with `noise = 0` all three agree; see
//!   `tools/fixtures_road.py`).

use serde::Serialize;

use super::imputation::noisy_linear_imputation;
use super::order::{ascending, descending};
use super::perturbation::Order;
use super::scorer::{FollowedClass, ScoreKind, Scorer, argmax, image_tensor, resolve_target};
use super::{ImageView, MapView, MetricError};
use crate::rng::Rng;

/// How the removed pixels are chosen for a percentage `p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoadSelection {
    /// The first `⌊H·W·p/100⌋` of the stable ranking (Quantus).
    Rank,
    /// At or above the linear-interpolated `(100 − p)`-th percentile (pytorch-grad-cam).
    Percentile,
}

/// Conventions of ROAD.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoadOptions {
    /// Percentages of the pixels removed, each in `(0, 100)` (default 10, 20, …, 90 as
    /// pytorch-grad-cam's averages; Quantus' default is 1, 3, …, 99).
    pub percentages: Vec<f64>,
    /// MoRF or LeRF.
    pub order: Order,
    /// Which pixels a percentage removes.
    pub selection: RoadSelection,
    /// SD of the Gaussian noise added to imputed values (default 0.01, both references).
    pub noise: f32,
    /// Seed of the noise.
    pub seed: u64,
    /// Class followed (default the predicted class).
    pub target: FollowedClass,
}

impl Default for RoadOptions {
    fn default() -> Self {
        RoadOptions {
            percentages: (1..=9).map(|k| 10.0 * k as f64).collect(),
            order: Order::Morf,
            selection: RoadSelection::Rank,
            noise: 0.01,
            seed: 0,
            target: FollowedClass::Predicted,
        }
    }
}

/// A ROAD result for one image and order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoadResult {
    /// Percentages removed, as asked.
    pub percentages: Vec<f64>,
    /// The followed class's score after each removal.
    pub scores: Vec<f32>,
    /// The predicted class after each removal.
    pub predicted: Vec<usize>,
    /// The followed class's score on the unperturbed image.
    pub unperturbed: f32,
    /// The class followed.
    pub class: usize,
    /// `(1/P) Σ_p (f(x̃_p) − f(x))`.
    pub mean_change: f64,
    /// Share of percentages at which the model still predicts `class`.
    pub kept: f64,
    /// How it was computed.
    pub conventions: RoadConventions,
}

/// The conventions stated with a ROAD result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoadConventions {
    /// MoRF / LeRF.
    pub order: Order,
    /// Rank (Quantus) or percentile (pytorch-grad-cam) selection.
    pub selection: RoadSelection,
    /// Noise SD.
    pub noise: f32,
    /// Noise seed.
    pub seed: u64,
    /// Score kind of the scorer.
    pub score: ScoreKind,
    /// Imputation, described.
    pub imputation: &'static str,
}

/// NumPy's `percentile(values, q)` with linear interpolation, in f64.
pub fn percentile(values: &[f32], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let pos = (sorted.len() - 1) as f64 * q / 100.0;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The pixels removed at percentage `p` (in `(0, 100)`).
pub fn removed_pixels(map: &MapView, order: Order, selection: RoadSelection, p: f64) -> Vec<bool> {
    let n = map.len();
    let mut removed = vec![false; n];
    match selection {
        RoadSelection::Rank => {
            let ranking = match order {
                Order::Morf => descending(map.data),
                Order::Lerf => ascending(map.data),
            };
            let k = ((n as f64 * p) / 100.0).floor() as usize;
            for &i in &ranking[..k.min(n)] {
                removed[i] = true;
            }
        }
        RoadSelection::Percentile => {
            // pytorch-grad-cam keeps `values < percentile(values, 100 − p)`, with the values
            // `1 − map` (in f32) for LeRF.
            let values: Vec<f32> = match order {
                Order::Morf => map.data.to_vec(),
                Order::Lerf => map.data.iter().map(|&v| 1.0f32 - v).collect(),
            };
            let threshold = percentile(&values, 100.0 - p);
            for (r, &v) in removed.iter_mut().zip(&values) {
                *r = (v as f64) >= threshold;
            }
        }
    }
    removed
}

fn check(opts: &RoadOptions) -> Result<(), MetricError> {
    if opts.percentages.is_empty() {
        return Err(MetricError::Invalid(
            "ROAD needs at least one percentage".into(),
        ));
    }
    if let Some(p) = opts
        .percentages
        .iter()
        .find(|p| !(p.is_finite() && **p > 0.0 && **p < 100.0))
    {
        return Err(MetricError::Invalid(format!(
            "ROAD percentages must lie strictly between 0 and 100, got {p}"
        )));
    }
    Ok(())
}

/// ROAD of one map: removes each percentage of the pixels in the asked order, imputes them,
/// and scores the imputed images in batches.
pub fn road(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &RoadOptions,
) -> Result<RoadResult, MetricError> {
    image.check_map(map)?;
    check(opts)?;
    let (class, row) = resolve_target(scorer, image, opts.target)?;
    let unperturbed = row[class];
    let imputed = opts
        .percentages
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let removed = removed_pixels(map, opts.order, opts.selection, p);
            let mut rng = Rng::derive(opts.seed, &format!("road-{i}"));
            noisy_linear_imputation(image, &removed, opts.noise, &mut rng)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (scores, predicted) = score_all(scorer, image, &imputed, class)?;
    let count = scores.len() as f64;
    let mean_change = scores
        .iter()
        .map(|&s| s as f64 - unperturbed as f64)
        .sum::<f64>()
        / count;
    let kept = predicted.iter().filter(|&&k| k == class).count() as f64 / count;
    Ok(RoadResult {
        percentages: opts.percentages.clone(),
        scores,
        predicted,
        unperturbed,
        class,
        mean_change,
        kept,
        conventions: RoadConventions {
            order: opts.order,
            selection: opts.selection,
            noise: opts.noise,
            seed: opts.seed,
            score: scorer.kind(),
            imputation: "noisy linear (8 neighbours, 1/6 edge, 1/12 diagonal)",
        },
    })
}

/// The class score and the arg-max of every imputed image, in batches of the scorer's size.
fn score_all(
    scorer: &dyn Scorer,
    image: &ImageView,
    imputed: &[Vec<f32>],
    class: usize,
) -> Result<(Vec<f32>, Vec<usize>), MetricError> {
    let (mut scores, mut predicted) = (Vec::new(), Vec::new());
    for batch in imputed.chunks(scorer.batch_size().max(1)) {
        let values: Vec<f32> = batch.concat();
        let out = scorer.scores(image_tensor(&values, image.shape(), batch.len()))?;
        if out.len() != batch.len() || class >= out.classes {
            return Err(MetricError::Shape(format!(
                "the scorer returned {} rows of {} classes for {} images (class {class})",
                out.len(),
                out.classes,
                batch.len()
            )));
        }
        for i in 0..batch.len() {
            scores.push(out.get(i, class));
            predicted.push(argmax(out.row(i)));
        }
    }
    Ok((scores, predicted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 40) = 1 + 0.4·3 → position 1.2 → 2.2
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0], 40.0) - 2.2).abs() < 1e-12);
        assert_eq!(percentile(&[5.0], 30.0), 5.0);
    }

    #[test]
    fn rank_removes_the_floor_of_the_share() {
        let data: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let map = MapView::new(&data, [2, 5]).unwrap();
        let r = removed_pixels(&map, Order::Morf, RoadSelection::Rank, 35.0);
        assert_eq!(r.iter().filter(|&&b| b).count(), 3);
        assert!(r[9] && r[8] && r[7]);
        let r = removed_pixels(&map, Order::Lerf, RoadSelection::Rank, 35.0);
        assert!(r[0] && r[1] && r[2] && !r[3]);
    }
}
