//! Binarising maps (top-k %, Otsu's threshold, a fixed threshold) and the IoU of binary masks.

use serde::Serialize;

use super::order::descending;
use super::{MetricError, check_mask};

/// How a map is binarised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Threshold {
    /// The `k = clamp(round(f · n), 1, n)` largest of the `n` (valid) pixels; ties at the cut
    /// broken by pixel index.
    TopFraction(f64),
    /// Pixels above Otsu's threshold ([`otsu_threshold`]).
    Otsu,
    /// Pixels with a value above `t` (strictly).
    Fixed(f32),
}

/// Otsu's threshold (Otsu 1979) as `skimage.filters.threshold_otsu` with 256 bins: a histogram
/// of 256 equal bins between the minimum and maximum (numpy's binning rules), the bin centre
/// maximising the between-class variance `w₁(t) w₂(t) (μ₁(t) − μ₂(t))²` (the first on ties).
/// A constant input returns its value.
pub fn otsu_threshold(values: &[f32]) -> f32 {
    const BINS: usize = 256;
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if values.is_empty() || lo == hi {
        return values.first().copied().unwrap_or(f32::NAN);
    }
    let step = (hi - lo) / BINS as f64;
    let edge = |i: usize| if i == BINS { hi } else { i as f64 * step + lo };
    let mut counts = [0.0f64; BINS];
    for &v in values {
        let v = v as f64;
        let mut i = (((v - lo) / (hi - lo)) * BINS as f64) as usize;
        if i == BINS {
            i -= 1;
        }
        if v < edge(i) {
            i -= 1;
        }
        if v >= edge(i + 1) && i != BINS - 1 {
            i += 1;
        }
        counts[i] += 1.0;
    }
    let centres: Vec<f64> = (0..BINS).map(|i| (edge(i) + edge(i + 1)) / 2.0).collect();
    // skimage trims empty bins at both ends first (histogram with source_range="image" never
    // leaves any: the extremes fall in the first and last bins).
    let mut best = (f64::NEG_INFINITY, 0usize);
    let total_w: f64 = counts.iter().sum();
    let total_m: f64 = counts.iter().zip(&centres).map(|(c, x)| c * x).sum();
    let (mut w1, mut m1) = (0.0, 0.0);
    for t in 0..BINS - 1 {
        w1 += counts[t];
        m1 += counts[t] * centres[t];
        let w2 = total_w - w1;
        let mean1 = m1 / w1;
        let mean2 = (total_m - m1) / w2;
        let var = w1 * w2 * (mean1 - mean2).powi(2);
        // NaN (an empty class) never wins, as with numpy's argmax over finite values.
        if var > best.0 {
            best = (var, t);
        }
    }
    centres[best.1] as f32
}

/// The binary mask of `map` under `method`, considering only valid pixels (others are false).
pub fn binarise(
    map: &[f32],
    method: Threshold,
    valid: Option<&[bool]>,
) -> Result<Vec<bool>, MetricError> {
    if let Some(m) = valid {
        check_mask(m, map.len(), "valid mask")?;
    }
    let is_valid = |i: usize| valid.is_none_or(|m| m[i]);
    let idx: Vec<usize> = (0..map.len()).filter(|&i| is_valid(i)).collect();
    let mut out = vec![false; map.len()];
    if idx.is_empty() {
        return Ok(out);
    }
    match method {
        Threshold::TopFraction(f) => {
            if !(f > 0.0 && f <= 1.0) {
                return Err(MetricError::Invalid(format!(
                    "top fraction must be in (0, 1], got {f}"
                )));
            }
            let vals: Vec<f32> = idx.iter().map(|&i| map[i]).collect();
            let k = ((f * idx.len() as f64).round() as usize).clamp(1, idx.len());
            for &j in &descending(&vals)[..k] {
                out[idx[j]] = true;
            }
        }
        Threshold::Otsu => {
            let vals: Vec<f32> = idx.iter().map(|&i| map[i]).collect();
            let t = otsu_threshold(&vals);
            for &i in &idx {
                out[i] = map[i] > t;
            }
        }
        Threshold::Fixed(t) => {
            for &i in &idx {
                out[i] = map[i] > t;
            }
        }
    }
    Ok(out)
}

/// `|A ∩ B| / |A ∪ B|`; NaN when both masks are empty.
pub fn iou(a: &[bool], b: &[bool]) -> Result<f64, MetricError> {
    check_mask(b, a.len(), "second mask")?;
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    Ok(if union == 0 {
        f64::NAN
    } else {
        inter as f64 / union as f64
    })
}

/// IoU of two maps binarised by the same method (e.g. a map against a map, or a map against a
/// ground-truth mask via [`iou`] directly), restricted to the valid pixels.
pub fn thresholded_iou(
    a: &[f32],
    b: &[f32],
    method: Threshold,
    valid: Option<&[bool]>,
) -> Result<f64, MetricError> {
    super::check_same_len(a, b)?;
    iou(&binarise(a, method, valid)?, &binarise(b, method, valid)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_clusters() {
        let v: Vec<f32> = [0.0, 0.1, 0.2, 0.9, 1.0, 0.95].to_vec();
        let t = otsu_threshold(&v);
        assert!(t > 0.2 && t < 0.9, "{t}");
        assert_eq!(otsu_threshold(&[3.0; 4]), 3.0);
    }

    #[test]
    fn iou_and_binarise_by_hand() {
        let m = [0.5, 0.9, 0.1, 0.7];
        assert_eq!(
            binarise(&m, Threshold::TopFraction(0.5), None).unwrap(),
            [false, true, false, true]
        );
        assert_eq!(
            binarise(&m, Threshold::Fixed(0.5), None).unwrap(),
            [false, true, false, true]
        );
        let valid = [true, false, true, true];
        assert_eq!(
            binarise(&m, Threshold::TopFraction(0.34), Some(&valid)).unwrap(),
            [false, false, false, true]
        );
        assert_eq!(
            iou(&[true, true, false], &[true, false, true]).unwrap(),
            1.0 / 3.0
        );
        assert!(iou(&[false; 2], &[false; 2]).unwrap().is_nan());
    }
}
