//! Faithfulness correlation (Bhatt, Weller & Moura 2020, "Evaluating and aggregating
//! feature-based model explanations", IJCAI):
//!
//! `μ_F = corr_{S ∈ random subsets of size |S|} ( Σ_{i∈S} R_i , f(x) − f(x_{[x_S = x̄_S]}) )`
//!
//! the Pearson correlation, over `runs` random pixel subsets `S`, between the relevance a subset
//! holds and the drop of the target's score when its pixels are set to a baseline `x̄`. Each run
//! perturbs the unperturbed image; all runs are scored in batches.
//!
//! Quantus 0.6 (`FaithfulnessCorrelation`, defaults `nr_runs=100`, `subset_size=224`, logits,
//! baseline `"black"` = image minimum) draws subsets of input *elements* (channels separately when
//! the map is broadcast over channels); ours are pixel subsets, identical on one-channel images.
//! Its subsets come from `numpy.random.choice`; [`faithfulness_correlation_with_subsets`] takes
//! subsets from the caller so that a fixture can replay them.

use serde::Serialize;

use super::scorer::{FollowedClass, ScoreKind, Scorer, resolve_target, score_sequence};
use super::similarity::pearson_f64;
use super::{ImageView, MapView, MetricError, Substrate};
use crate::rng::Rng;

/// Conventions of faithfulness correlation.
#[derive(Clone, Debug, PartialEq)]
pub struct FaithfulnessCorrelationOptions {
    /// Number of random subsets (default 100).
    pub runs: usize,
    /// Pixels per subset (default 224, Quantus' default).
    pub subset_size: usize,
    /// Replacement values (default the image minimum, Quantus' `"black"`).
    pub baseline: Substrate,
    /// Class followed (default the predicted class).
    pub target: FollowedClass,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for FaithfulnessCorrelationOptions {
    fn default() -> Self {
        FaithfulnessCorrelationOptions {
            runs: 100,
            subset_size: 224,
            baseline: Substrate::ImageMin,
            target: FollowedClass::Predicted,
            seed: 0,
        }
    }
}

/// Result of faithfulness correlation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaithfulnessCorrelation {
    /// Pearson correlation of relevance sums and score drops (NaN if either is constant).
    pub correlation: f64,
    /// `Σ_{i∈S} R_i` per run.
    pub relevance_sums: Vec<f64>,
    /// `f(x) − f(x_S←x̄)` per run.
    pub score_drops: Vec<f64>,
    /// Score kind of the scorer.
    pub score: ScoreKind,
    /// Class followed.
    pub class: usize,
    /// Baseline, described.
    pub baseline: String,
}

/// Draws `runs` subsets of `size` distinct pixels out of `n` (partial Fisher–Yates).
pub fn random_subsets(n: usize, size: usize, runs: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut pool: Vec<usize> = (0..n).collect();
    (0..runs)
        .map(|_| {
            for i in 0..size.min(n) {
                let j = i + rng.below(n - i);
                pool.swap(i, j);
            }
            pool[..size.min(n)].to_vec()
        })
        .collect()
}

/// Faithfulness correlation with subsets drawn from `opts.seed`.
pub fn faithfulness_correlation(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &FaithfulnessCorrelationOptions,
) -> Result<FaithfulnessCorrelation, MetricError> {
    if opts.subset_size == 0 || opts.subset_size >= map.len() || opts.runs < 2 {
        return Err(MetricError::Invalid(format!(
            "faithfulness correlation needs 0 < subset size < {} pixels and at least 2 runs",
            map.len()
        )));
    }
    let mut rng = Rng::derive(opts.seed, "faithfulness-correlation");
    let subsets = random_subsets(map.len(), opts.subset_size, opts.runs, &mut rng);
    faithfulness_correlation_with_subsets(scorer, image, map, &subsets, &opts.baseline, opts.target)
}

/// Faithfulness correlation over given pixel subsets.
pub fn faithfulness_correlation_with_subsets(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    subsets: &[Vec<usize>],
    baseline: &Substrate,
    target: FollowedClass,
) -> Result<FaithfulnessCorrelation, MetricError> {
    image.check_map(map)?;
    if let Some(bad) = subsets.iter().flatten().find(|&&i| i >= map.len()) {
        return Err(MetricError::Invalid(format!(
            "subset pixel {bad} is outside the map of {} pixels",
            map.len()
        )));
    }
    let (class, scores) = resolve_target(scorer, image, target)?;
    let f0 = scores[class] as f64;
    let base = baseline.build(image)?;
    let plane = image.pixels();
    let perturbed = score_sequence(scorer, image.shape(), subsets.len(), class, |i, buffer| {
        buffer.copy_from_slice(image.data);
        for &p in &subsets[i] {
            for c in 0..image.channels {
                buffer[c * plane + p] = base[c * plane + p];
            }
        }
    })?;
    let relevance_sums: Vec<f64> = subsets
        .iter()
        .map(|s| s.iter().map(|&p| map.data[p] as f64).sum())
        .collect();
    let score_drops: Vec<f64> = perturbed.iter().map(|&s| f0 - s as f64).collect();
    Ok(FaithfulnessCorrelation {
        correlation: pearson_f64(&relevance_sums, &score_drops),
        relevance_sums,
        score_drops,
        score: scorer.kind(),
        class,
        baseline: baseline.describe(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_distinct_and_in_range() {
        let mut rng = Rng::new(3);
        for s in random_subsets(50, 20, 10, &mut rng) {
            let mut t = s.clone();
            t.sort();
            t.dedup();
            assert_eq!(t.len(), 20);
            assert!(t.iter().all(|&i| i < 50));
        }
    }
}
