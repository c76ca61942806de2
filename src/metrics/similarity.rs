//! Scores comparing two maps of the same image (stability, randomisation, method agreement):
//! Pearson and Spearman correlation, SSIM and top-k IoU, each optionally restricted to a
//! valid-pixel mask (e.g. the pixels that stay inside the image under an augmentation).
//!
//! Reference implementations: `scipy.stats.pearsonr` / `spearmanr` (average ranks for ties) and
//! `skimage.metrics.structural_similarity`; Quantus' similarity functions call these.

use serde::Serialize;

use super::order::descending;
use super::{MapView, MetricError, check_mask, check_same_len};

/// Pearson correlation `Σ(a−ā)(b−b̄) / √(Σ(a−ā)² Σ(b−b̄)²)` in f64; NaN when either side is
/// constant or there are fewer than 2 values.
pub fn pearson_f64(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return f64::NAN;
    }
    let ma = a[..n].iter().sum::<f64>() / n as f64;
    let mb = b[..n].iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    (sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0)
}

/// 1-based ranks with ties given their average rank (`scipy.stats.rankdata(method="average")`).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && values[idx[end]] == values[idx[start]] {
            end += 1;
        }
        // positions start..end hold ranks start+1..=end; their mean is (start+1+end)/2
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's rank correlation: Pearson of [`average_ranks`].
pub fn spearman_f64(a: &[f64], b: &[f64]) -> f64 {
    pearson_f64(&average_ranks(a), &average_ranks(b))
}

/// The values of `a` and `b` at valid pixels (all pixels without a mask), as f64.
fn valid_pairs(
    a: &[f32],
    b: &[f32],
    valid: Option<&[bool]>,
) -> Result<(Vec<f64>, Vec<f64>), MetricError> {
    check_same_len(a, b)?;
    if let Some(m) = valid {
        check_mask(m, a.len(), "valid mask")?;
    }
    let keep = |i: usize| valid.is_none_or(|m| m[i]);
    let pick = |v: &[f32]| {
        v.iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, &x)| x as f64)
            .collect()
    };
    Ok((pick(a), pick(b)))
}

/// Pearson correlation of two maps over the valid pixels.
pub fn pearson(a: &[f32], b: &[f32], valid: Option<&[bool]>) -> Result<f64, MetricError> {
    let (x, y) = valid_pairs(a, b, valid)?;
    Ok(pearson_f64(&x, &y))
}

/// Spearman rank correlation of two maps over the valid pixels (ties: average ranks).
pub fn spearman(a: &[f32], b: &[f32], valid: Option<&[bool]>) -> Result<f64, MetricError> {
    let (x, y) = valid_pairs(a, b, valid)?;
    Ok(spearman_f64(&x, &y))
}

/// Intersection over union of the top `fraction` pixels of each map, among the valid pixels.
///
/// `k = clamp(round(fraction · n_valid), 1, n_valid)`; ties at the cut are broken by pixel index
/// (stable order), so both sets have exactly `k` pixels and `IoU = |A∩B| / (2k − |A∩B|)`.
pub fn top_k_iou(
    a: &[f32],
    b: &[f32],
    fraction: f64,
    valid: Option<&[bool]>,
) -> Result<f64, MetricError> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(MetricError::Invalid(format!(
            "top-k fraction must be in (0, 1], got {fraction}"
        )));
    }
    let (x, y) = valid_pairs(a, b, valid)?;
    if x.is_empty() {
        return Ok(f64::NAN);
    }
    let n = x.len();
    let k = ((fraction * n as f64).round() as usize).clamp(1, n);
    let top = |v: &[f64]| {
        let v32: Vec<f32> = v.iter().map(|&t| t as f32).collect();
        let mut set = vec![false; n];
        for &i in &descending(&v32)[..k] {
            set[i] = true;
        }
        set
    };
    let (ta, tb) = (top(&x), top(&y));
    let inter = ta.iter().zip(&tb).filter(|(p, q)| **p && **q).count();
    Ok(inter as f64 / (2 * k - inter) as f64)
}

/// The local window of SSIM.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SsimWindow {
    /// Gaussian weights of standard deviation `sigma`, truncated at radius `⌊3.5σ + ½⌋` (11 taps
    /// for σ = 1.5; skimage's `gaussian_weights=True`).
    Gaussian {
        /// Standard deviation in pixels.
        sigma: f64,
    },
    /// Equal weights over a `size × size` square (skimage's default, 7).
    Uniform {
        /// Odd side length.
        size: usize,
    },
}

/// How SSIM's dynamic range `R` (in `C₁ = (K₁R)²`, `C₂ = (K₂R)²`) is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataRange {
    /// `max − min` over the valid values of both maps (Quantus' choice).
    Joint,
    /// A fixed value.
    Fixed(f64),
}

/// SSIM parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SsimOptions {
    /// Local window.
    pub window: SsimWindow,
    /// Scale local (co)variances by `N/(N−1)` (sample covariance, skimage's default) instead of
    /// using the population (co)variance of Wang et al.
    pub sample_covariance: bool,
    /// Dynamic range.
    pub data_range: DataRange,
    /// `K₁` (0.01).
    pub k1: f64,
    /// `K₂` (0.03).
    pub k2: f64,
}

impl Default for SsimOptions {
    /// Wang et al. (2004): Gaussian window σ = 1.5 (11×11), population covariance, `K₁ = 0.01`,
    /// `K₂ = 0.03`; data range `max − min` of both maps. Equals
    /// `skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    /// use_sample_covariance=False, data_range=R)`.
    fn default() -> Self {
        SsimOptions {
            window: SsimWindow::Gaussian { sigma: 1.5 },
            sample_covariance: false,
            data_range: DataRange::Joint,
            k1: 0.01,
            k2: 0.03,
        }
    }
}

impl SsimOptions {
    /// skimage's defaults as Quantus calls them: 7×7 uniform window, sample covariance,
    /// data range `max − min` of both maps.
    pub fn skimage_default() -> Self {
        SsimOptions {
            window: SsimWindow::Uniform { size: 7 },
            sample_covariance: true,
            ..SsimOptions::default()
        }
    }

    fn weights(&self) -> Result<Vec<f64>, MetricError> {
        match self.window {
            SsimWindow::Gaussian { sigma } if sigma > 0.0 => {
                let r = (3.5 * sigma + 0.5) as i64;
                let w: Vec<f64> = (-r..=r)
                    .map(|t| (-0.5 * (t * t) as f64 / (sigma * sigma)).exp())
                    .collect();
                let s: f64 = w.iter().sum();
                Ok(w.into_iter().map(|v| v / s).collect())
            }
            SsimWindow::Uniform { size } if size % 2 == 1 => Ok(vec![1.0 / size as f64; size]),
            other => Err(MetricError::Invalid(format!("bad SSIM window {other:?}"))),
        }
    }
}

/// Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment:
/// from error visibility to structural similarity", IEEE TIP):
///
/// `SSIM(p) = (2μ_aμ_b + C₁)(2σ_ab + C₂) / ((μ_a² + μ_b² + C₁)(σ_a² + σ_b² + C₂))`
///
/// with windowed means and (co)variances around each pixel `p`, averaged over the pixels whose
/// whole window lies inside the map (skimage crops the window radius at the borders) and, with a
/// `valid` mask, inside the valid pixels too. NaN if no pixel qualifies.
pub fn ssim(
    a: &MapView,
    b: &MapView,
    valid: Option<&[bool]>,
    opts: &SsimOptions,
) -> Result<f64, MetricError> {
    if a.height != b.height || a.width != b.width {
        return Err(MetricError::Shape(format!(
            "SSIM of a [{}, {}] and a [{}, {}] map",
            a.height, a.width, b.height, b.width
        )));
    }
    if let Some(m) = valid {
        check_mask(m, a.len(), "valid mask")?;
    }
    let g = opts.weights()?;
    let r = g.len() / 2;
    let (h, w) = (a.height, a.width);
    if h < g.len() || w < g.len() {
        return Err(MetricError::Invalid(format!(
            "SSIM window of {} pixels exceeds the [{h}, {w}] map",
            g.len()
        )));
    }
    let is_valid = |i: usize| valid.is_none_or(|m| m[i]);
    let range = match opts.data_range {
        DataRange::Fixed(v) => v,
        DataRange::Joint => {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for i in (0..a.len()).filter(|&i| is_valid(i)) {
                for v in [a.data[i] as f64, b.data[i] as f64] {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            hi - lo
        }
    };
    let c1 = (opts.k1 * range).powi(2);
    let c2 = (opts.k2 * range).powi(2);
    let np = (g.len() * g.len()) as f64;
    let cov_norm = if opts.sample_covariance {
        np / (np - 1.0)
    } else {
        1.0
    };
    // A pixel counts when every pixel of its window is valid: erode the mask by the window.
    let window_valid = valid.map(|m| erode(m, h, w, r));
    let fields: [Box<dyn Fn(usize) -> f64>; 5] = [
        Box::new(|i| a.data[i] as f64),
        Box::new(|i| b.data[i] as f64),
        Box::new(|i| (a.data[i] as f64).powi(2)),
        Box::new(|i| (b.data[i] as f64).powi(2)),
        Box::new(|i| a.data[i] as f64 * b.data[i] as f64),
    ];
    let filtered: Vec<Vec<f64>> = fields
        .iter()
        .map(|f| filter_interior(f, h, w, &g))
        .collect();
    let (mut sum, mut count) = (0.0, 0usize);
    for y in r..h - r {
        for x in r..w - r {
            if window_valid.as_ref().is_some_and(|m| !m[y * w + x]) {
                continue;
            }
            let i = y * w + x;
            let (ux, uy) = (filtered[0][i], filtered[1][i]);
            let vx = cov_norm * (filtered[2][i] - ux * ux);
            let vy = cov_norm * (filtered[3][i] - uy * uy);
            let vxy = cov_norm * (filtered[4][i] - ux * uy);
            let s = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2))
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
            sum += s;
            count += 1;
        }
    }
    Ok(if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    })
}

/// Separable filtering with weights `g` of the field `f`, at pixels whose window is inside the
/// map (others left 0).
fn filter_interior(f: &dyn Fn(usize) -> f64, h: usize, w: usize, g: &[f64]) -> Vec<f64> {
    let r = g.len() / 2;
    let mut rows = vec![0.0; h * w];
    for y in 0..h {
        for x in r..w - r {
            rows[y * w + x] = g
                .iter()
                .enumerate()
                .map(|(k, gk)| gk * f(y * w + x + k - r))
                .sum();
        }
    }
    let mut out = vec![0.0; h * w];
    for y in r..h - r {
        for x in r..w - r {
            out[y * w + x] = g
                .iter()
                .enumerate()
                .map(|(k, gk)| gk * rows[(y + k - r) * w + x])
                .sum();
        }
    }
    out
}

/// True where the `(2r+1)²` square around a pixel is inside the map and all valid.
fn erode(mask: &[bool], h: usize, w: usize, r: usize) -> Vec<bool> {
    let mut out = vec![false; h * w];
    for y in r..h.saturating_sub(r) {
        for x in r..w.saturating_sub(r) {
            out[y * w + x] = (y - r..=y + r).all(|yy| (x - r..=x + r).all(|xx| mask[yy * w + xx]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlations_by_hand() {
        assert!((pearson_f64(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson_f64(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert!(pearson_f64(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        // x = [1,2,3,4], y = [1,3,2,4]: Σdxdy = 4, Σdx² = Σdy² = 5 → 0.8
        assert!((pearson_f64(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 5.0]),
            [2.5, 4.0, 2.5, 1.0]
        );
        // monotone but non-linear: Spearman 1
        assert!((spearman_f64(&[1.0, 2.0, 3.0], &[1.0, 10.0, 100.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn masks_select_pixels() {
        let a = [1.0, 2.0, 3.0, 100.0];
        let b = [1.0, 2.0, 3.0, -100.0];
        let m = [true, true, true, false];
        assert!((pearson(&a, &b, Some(&m)).unwrap() - 1.0).abs() < 1e-12);
        assert!(pearson(&a, &b, None).unwrap() < 0.0);
    }

    #[test]
    fn top_k_iou_by_hand() {
        let a = [0.9, 0.8, 0.1, 0.0];
        let b = [0.9, 0.0, 0.8, 0.1];
        // k = 2: {0, 1} vs {0, 2} → 1/3
        assert!((top_k_iou(&a, &b, 0.5, None).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(top_k_iou(&a, &a, 0.5, None).unwrap(), 1.0);
    }

    #[test]
    fn ssim_of_identical_maps_is_one_and_of_inverted_is_negative() {
        let v: Vec<f32> = (0..144).map(|i| ((i * 37) % 11) as f32).collect();
        let a = MapView::new(&v, [12, 12]).unwrap();
        assert!((ssim(&a, &a, None, &SsimOptions::default()).unwrap() - 1.0).abs() < 1e-12);
        // inverted around the same mean: luminance agrees, structure is anti-correlated
        let n: Vec<f32> = v.iter().map(|x| 10.0 - x).collect();
        let b = MapView::new(&n, [12, 12]).unwrap();
        assert!(ssim(&a, &b, None, &SsimOptions::skimage_default()).unwrap() < 0.0);
    }
}
