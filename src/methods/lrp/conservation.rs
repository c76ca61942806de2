//! Conservation: LRP's promise that the relevance arriving at the input adds up to the relevance
//! the pass started from. Reported per image as
//! `error = |Σ input relevance − explained output| / |explained output|`.

use serde::Serialize;

use super::model::{Attribution, LrpModel};
use crate::methods::MethodError;
use crate::tensor::{T4, to_vec};

/// Conservation of one image's attribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Conservation {
    /// The starting relevance (target logit, probability or 1).
    pub explained: f64,
    /// Sum of the input relevance (accumulated in f64).
    pub total: f64,
    /// `|total − explained| / |explained|` (absolute error when `explained` is 0).
    pub error: f64,
}

/// Conservation of every row of an attribution.
pub fn conservation_of(attribution: &Attribution) -> Vec<Conservation> {
    row_totals(&attribution.input)
        .into_iter()
        .zip(&attribution.explained)
        .map(|(total, &explained)| Conservation::of(total, explained as f64))
        .collect()
}

impl Conservation {
    /// The conservation of a map whose relevance adds up to `total`, started from `explained`.
    pub fn of(total: f64, explained: f64) -> Self {
        let diff = (total - explained).abs();
        Conservation {
            explained,
            total,
            error: if explained == 0.0 {
                diff
            } else {
                diff / explained.abs()
            },
        }
    }
}

/// Runs LRP on `x` for `targets` and reports the conservation error of each image.
pub fn check_conservation(
    lrp: &LrpModel,
    x: &T4,
    targets: &[usize],
) -> Result<Vec<Conservation>, MethodError> {
    Ok(conservation_of(&lrp.attribute(x, targets)?))
}

/// Sum of each row of `[N, …]`, accumulated in f64.
pub fn row_totals(t: &T4) -> Vec<f64> {
    let n = t.dims()[0];
    let values = to_vec(t);
    let per = values.len() / n.max(1);
    values
        .chunks(per.max(1))
        .map(|row| row.iter().map(|&v| v as f64).sum())
        .collect()
}
