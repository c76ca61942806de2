//! Conservation (completeness): does the relevance sum to the explained score?
//!
//! `error = |Σ_i R_i − f(x)| / |f(x)|`
//!
//! over every value of the relevance (all channels), with `f(x)` the target's logit (LRP's
//! conservation property, Bach et al. 2015; Montavon et al. 2019). With a baseline `x̄` the
//! reference is `f(x) − f(x̄)` (the completeness axiom of Integrated Gradients, Sundararajan et
//! al. 2017, and Quantus 0.6's `Completeness`, whose baseline defaults to `"black"`, the image
//! minimum). Quantus returns only whether the two are exactly equal; we report the relative error.

use serde::Serialize;

use super::scorer::{FollowedClass, ScoreKind, Scorer, resolve_target, score_sequence};
use super::{ImageView, MetricError, Substrate};

/// `|relevance_sum − reference| / |reference|` (∞ when the reference is 0 and the sum is not).
pub fn conservation_error(relevance_sum: f64, reference: f64) -> f64 {
    let diff = (relevance_sum - reference).abs();
    if diff == 0.0 {
        0.0
    } else {
        diff / reference.abs()
    }
}

/// A conservation check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conservation {
    /// `Σ_i R_i`.
    pub relevance_sum: f64,
    /// `f(x)` or `f(x) − f(x̄)`.
    pub reference: f64,
    /// [`conservation_error`] of the two.
    pub error: f64,
    /// Score kind of the scorer (conservation is meant for logits).
    pub score: ScoreKind,
    /// Class followed.
    pub class: usize,
    /// Baseline, described, if any.
    pub baseline: Option<String>,
}

/// Checks the conservation of `relevance` (any layout, all values summed) on `image` for
/// `target`, against `f(x)` or, with a `baseline`, `f(x) − f(x̄)`.
pub fn conservation(
    scorer: &dyn Scorer,
    image: &ImageView,
    relevance: &[f32],
    target: FollowedClass,
    baseline: Option<&Substrate>,
) -> Result<Conservation, MetricError> {
    let (class, scores) = resolve_target(scorer, image, target)?;
    let mut reference = scores[class] as f64;
    if let Some(b) = baseline {
        let base = b.build(image)?;
        let fb = score_sequence(scorer, image.shape(), 1, class, |_, buf| {
            buf.copy_from_slice(&base)
        })?;
        reference -= fb[0] as f64;
    }
    let relevance_sum: f64 = relevance.iter().map(|&v| v as f64).sum();
    Ok(Conservation {
        relevance_sum,
        reference,
        error: conservation_error(relevance_sum, reference),
        score: scorer.kind(),
        class,
        baseline: baseline.map(Substrate::describe),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_error_by_hand() {
        assert_eq!(conservation_error(9.0, 10.0), 0.1);
        assert_eq!(conservation_error(-3.0, -2.0), 0.5);
        assert_eq!(conservation_error(0.0, 0.0), 0.0);
        assert!(conservation_error(1.0, 0.0).is_infinite());
    }
}
