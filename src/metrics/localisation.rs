//! Does the relevance fall on the object? Scores against a ground-truth mask (`true` = object).
//!
//! - **Pointing game** (Zhang, Bargal, Lin, Brandt, Shen & Sclaroff 2018, "Top-down neural
//!   attention by excitation backprop", IJCV): a hit when the map's maximum lies on the object,
//!   with a tolerance of `t` pixels (Zhang et al. use 15): a hit when some object pixel lies
//!   within Euclidean distance `t` of the maximum. If several pixels share the maximum, any of
//!   them may hit (as Quantus 0.6's `PointingGame`, which has no tolerance: `t = 0`).
//! - **Relevance mass accuracy** (Arras, Osman & Samek 2022, "CLEVR-XAI: a benchmark dataset for
//!   the ground truth evaluation of neural network explanations", Information Fusion):
//!   `R_within / R_total`, the share of relevance on the object.
//! - **Relevance rank accuracy** (same paper): with `K` the object's pixel count, the fraction of
//!   the `K` most relevant pixels that lie on the object (ties broken by pixel index).
//!
//! All return `None` for an empty mask (Quantus returns NaN).

use serde::Serialize;

use super::order::descending;
use super::{MapView, MetricError, check_mask};

/// Outcome of the pointing game.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PointingGame {
    /// Whether the maximum is on (or within tolerance of) the object.
    pub hit: bool,
    /// `(row, col)` of the first maximal pixel in row-major order.
    pub location: (usize, usize),
    /// Number of pixels sharing the maximum.
    pub maxima: usize,
}

/// The pointing game with tolerance `tolerance` pixels (0: the maximum must be on the object).
pub fn pointing_game(
    map: &MapView,
    mask: &[bool],
    tolerance: f64,
) -> Result<Option<PointingGame>, MetricError> {
    check_mask(mask, map.len(), "mask")?;
    if !mask.iter().any(|&m| m) {
        return Ok(None);
    }
    let max = map.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let maxima: Vec<usize> = (0..map.len()).filter(|&i| map.data[i] == max).collect();
    let t = tolerance.max(0.0);
    let reach = t.floor() as isize;
    let (h, w) = (map.height as isize, map.width as isize);
    let near_object = |i: usize| {
        let (r, c) = ((i / map.width) as isize, (i % map.width) as isize);
        (-reach..=reach).any(|dy| {
            (-reach..=reach).any(|dx| {
                let (y, x) = (r + dy, c + dx);
                (0..h).contains(&y)
                    && (0..w).contains(&x)
                    && ((dy * dy + dx * dx) as f64) <= t * t
                    && mask[(y * w + x) as usize]
            })
        })
    };
    Ok(Some(PointingGame {
        hit: maxima.iter().any(|&i| near_object(i)),
        location: (maxima[0] / map.width, maxima[0] % map.width),
        maxima: maxima.len(),
    }))
}

/// Relevance mass accuracy `Σ_{i∈mask} R_i / Σ_i R_i`. With `positive_only` the relevance is
/// `max(R, 0)` (mass is positive evidence); without, the raw values as Quantus 0.6's
/// `RelevanceMassAccuracy` (whose `abs=False` default keeps signs). NaN when the total is 0.
pub fn relevance_mass_accuracy(
    map: &[f32],
    mask: &[bool],
    positive_only: bool,
) -> Result<Option<f64>, MetricError> {
    check_mask(mask, map.len(), "mask")?;
    if !mask.iter().any(|&m| m) {
        return Ok(None);
    }
    let r = |v: f32| {
        let v = v as f64;
        if positive_only { v.max(0.0) } else { v }
    };
    let total: f64 = map.iter().map(|&v| r(v)).sum();
    let within: f64 = map
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(&v, _)| r(v))
        .sum();
    Ok(Some(if total == 0.0 {
        f64::NAN
    } else {
        within / total
    }))
}

/// Relevance rank accuracy `|top-K(R) ∩ mask| / K` with `K = |mask|`.
pub fn relevance_rank_accuracy(map: &[f32], mask: &[bool]) -> Result<Option<f64>, MetricError> {
    check_mask(mask, map.len(), "mask")?;
    let k = mask.iter().filter(|&&m| m).count();
    if k == 0 {
        return Ok(None);
    }
    let hits = descending(map)[..k].iter().filter(|&&i| mask[i]).count();
    Ok(Some(hits as f64 / k as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointing_game_with_and_without_tolerance() {
        // 5×5, maximum at (0, 0), object at (0, 3)
        let mut v = [0.0f32; 25];
        v[0] = 1.0;
        let mut mask = [false; 25];
        mask[3] = true;
        let map = MapView::new(&v, [5, 5]).unwrap();
        let miss = pointing_game(&map, &mask, 0.0).unwrap().unwrap();
        assert!(!miss.hit && miss.location == (0, 0));
        assert!(!pointing_game(&map, &mask, 2.9).unwrap().unwrap().hit);
        assert!(pointing_game(&map, &mask, 3.0).unwrap().unwrap().hit);
        mask[3] = false;
        assert!(pointing_game(&map, &mask, 0.0).unwrap().is_none());
    }

    #[test]
    fn mass_and_rank_by_hand() {
        let map = [4.0, -2.0, 1.0, 3.0];
        let mask = [true, true, false, false];
        // positive: (4 + 0) / (4 + 1 + 3) = 0.5; raw: (4 − 2) / 6
        assert_eq!(
            relevance_mass_accuracy(&map, &mask, true).unwrap(),
            Some(0.5)
        );
        assert_eq!(
            relevance_mass_accuracy(&map, &mask, false).unwrap(),
            Some(2.0 / 6.0)
        );
        // K = 2: top-2 = {0, 3} → 1 of 2 on the object
        assert_eq!(relevance_rank_accuracy(&map, &mask).unwrap(), Some(0.5));
    }
}
