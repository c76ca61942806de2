//! Small statistics the studies need: mean and sample SD (Welford), least-squares polynomial
//! fits with R², and k-means clustering with a deterministic k-means++ start.

use crate::rng::Rng;

/// Mean and sample standard deviation (`n − 1` in the denominator; 0 for one value) by Welford's
/// update, so `n` identical values give exactly that value and SD exactly 0. NaN mean for none.
pub fn mean_sd(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let mut acc = Welford::default();
    for v in values {
        acc.push(v);
    }
    (acc.mean(), acc.sd())
}

/// Running mean and sum of squared deviations (Welford 1962).
#[derive(Clone, Copy, Debug, Default)]
pub struct Welford {
    n: usize,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds a value.
    pub fn push(&mut self, v: f64) {
        self.n += 1;
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
    }
    /// The mean (NaN before any value).
    pub fn mean(&self) -> f64 {
        if self.n == 0 { f64::NAN } else { self.mean }
    }
    /// Sample SD `sqrt(Σ (v − mean)² / (n − 1))`; 0 for a single value.
    pub fn sd(&self) -> f64 {
        if self.n < 2 {
            if self.n == 1 { 0.0 } else { f64::NAN }
        } else {
            (self.m2.max(0.0) / (self.n - 1) as f64).sqrt()
        }
    }
}

/// A least-squares polynomial fit `y ≈ Σ_k coeffs[k]·xᵏ` with its coefficient of determination
/// `R² = 1 − SS_res / SS_tot` (NaN when the `y` are constant).
#[derive(Clone, Debug, PartialEq)]
pub struct PolyFit {
    /// Coefficients from the constant term up.
    pub coeffs: Vec<f64>,
    /// Coefficient of determination.
    pub r_squared: f64,
}

impl PolyFit {
    /// The fitted value at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        self.coeffs.iter().rev().fold(0.0, |acc, c| acc * x + c)
    }
}

/// Least-squares fit of a polynomial of `degree` to the finite points: the normal equations
/// `(VᵀV) c = Vᵀy` of the Vandermonde matrix in `x` centred and scaled to `[-1, 1]` (for
/// conditioning), solved by Gaussian elimination with partial pivoting, then mapped back to
/// coefficients in `x`. `None` with fewer than `degree + 1` distinct `x`.
pub fn polyfit(points: &[(f64, f64)], degree: usize) -> Option<PolyFit> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < degree + 1 {
        return None;
    }
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    let centre = (lo + hi) / 2.0;
    let half = ((hi - lo) / 2.0).max(f64::MIN_POSITIVE);
    let m = degree + 1;
    let mut a = vec![vec![0.0f64; m + 1]; m];
    for &(x, y) in &pts {
        let t = (x - centre) / half;
        let powers: Vec<f64> = (0..m).map(|k| t.powi(k as i32)).collect();
        for i in 0..m {
            for j in 0..m {
                a[i][j] += powers[i] * powers[j];
            }
            a[i][m] += powers[i] * y;
        }
    }
    let c_t = solve(a)?;
    // Expand Σ c_k ((x − centre)/half)^k into powers of x (binomial theorem).
    let mut coeffs = vec![0.0f64; m];
    for (k, &ck) in c_t.iter().enumerate() {
        for (j, coeff) in coeffs.iter_mut().enumerate().take(k + 1) {
            let binom = binomial(k, j) as f64;
            *coeff += ck * binom * (-centre).powi((k - j) as i32) / half.powi(k as i32);
        }
    }
    let fit = PolyFit {
        coeffs,
        r_squared: f64::NAN,
    };
    let mean_y = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    let ss_tot: f64 = pts.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = pts
        .iter()
        .map(|&(x, y)| {
            let t = (x - centre) / half;
            let pred: f64 = c_t.iter().rev().fold(0.0, |acc, c| acc * t + c);
            (y - pred).powi(2)
        })
        .sum();
    let r_squared = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        f64::NAN
    };
    Some(PolyFit { r_squared, ..fit })
}

fn binomial(n: usize, k: usize) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) as u64 / (i + 1) as u64)
}

/// Solves the augmented system `a = [A | b]`; `None` when singular.
#[allow(clippy::needless_range_loop)] // row operations read two rows of `a` at once
fn solve(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let m = a.len();
    for col in 0..m {
        let pivot = (col..m).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..m {
            if row != col {
                let f = a[row][col] / a[col][col];
                for k in col..=m {
                    a[row][k] -= f * a[col][k];
                }
            }
        }
    }
    Some((0..m).map(|i| a[i][m] / a[i][i]).collect())
}

/// Result of [`kmeans`].
#[derive(Clone, Debug, PartialEq)]
pub struct Clusters {
    /// Cluster of each point, numbered by first appearance (point 0 is in cluster 0).
    pub labels: Vec<usize>,
    /// Centroids, in the same numbering.
    pub centroids: Vec<Vec<f64>>,
    /// Sum of squared distances of the points to their centroids.
    pub inertia: f64,
}

/// Each feature (column) of `points` standardised to mean 0 and SD 1 (constant features become 0).
pub fn standardise(points: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let d = points.first().map_or(0, Vec::len);
    let stats: Vec<(f64, f64)> = (0..d)
        .map(|j| mean_sd(points.iter().map(|p| p[j])))
        .collect();
    points
        .iter()
        .map(|p| {
            p.iter()
                .zip(&stats)
                .map(|(v, (m, s))| if *s > 0.0 { (v - m) / s } else { 0.0 })
                .collect()
        })
        .collect()
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// k-means (Lloyd's algorithm) on `points` with `k` clusters (at most the number of distinct
/// points): `restarts` k-means++ starts (Arthur & Vassilvitskii 2007) drawn from `seed`, up to
/// 100 iterations each, keeping the lowest inertia. Deterministic for a given seed.
pub fn kmeans(points: &[Vec<f64>], k: usize, seed: u64, restarts: usize) -> Clusters {
    let n = points.len();
    if n == 0 || k == 0 {
        return Clusters {
            labels: vec![0; n],
            centroids: Vec::new(),
            inertia: 0.0,
        };
    }
    let mut distinct: Vec<&Vec<f64>> = Vec::new();
    for p in points {
        if !distinct.iter().any(|q| dist2(p, q) == 0.0) {
            distinct.push(p);
        }
    }
    let k = k.min(distinct.len());
    let mut rng = Rng::derive(seed, "kmeans");
    let mut best: Option<Clusters> = None;
    for _ in 0..restarts.max(1) {
        let start = kmeans_plus_plus(points, k, &mut rng);
        let run = lloyd(points, start);
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    renumber(best.expect("at least one restart"))
}

/// k-means++ starting centroids: the first drawn uniformly, each next with probability
/// proportional to the squared distance to the nearest one chosen.
fn kmeans_plus_plus(points: &[Vec<f64>], k: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    let mut centroids = vec![points[rng.below(points.len())].clone()];
    while centroids.len() < k {
        let d: Vec<f64> = points
            .iter()
            .map(|p| {
                centroids
                    .iter()
                    .map(|c| dist2(p, c))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let total: f64 = d.iter().sum();
        let mut r = rng.uniform() as f64 * total;
        let mut pick = d.iter().rposition(|&v| v > 0.0).unwrap_or(0);
        for (i, &v) in d.iter().enumerate() {
            if v > 0.0 && r < v {
                pick = i;
                break;
            }
            r -= v;
        }
        centroids.push(points[pick].clone());
    }
    centroids
}

/// Lloyd's iterations from `centroids` until the labels stop changing (at most 100).
fn lloyd(points: &[Vec<f64>], mut centroids: Vec<Vec<f64>>) -> Clusters {
    let k = centroids.len();
    let mut labels = vec![0usize; points.len()];
    for _ in 0..100 {
        let new: Vec<usize> = points
            .iter()
            .map(|p| {
                (0..k)
                    .min_by(|&a, &b| dist2(p, &centroids[a]).total_cmp(&dist2(p, &centroids[b])))
                    .unwrap_or(0)
            })
            .collect();
        let changed = new != labels;
        labels = new;
        for (c, centroid) in centroids.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = points
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| p)
                .collect();
            if members.is_empty() {
                continue;
            }
            for (j, v) in centroid.iter_mut().enumerate() {
                *v = members.iter().map(|p| p[j]).sum::<f64>() / members.len() as f64;
            }
        }
        if !changed {
            break;
        }
    }
    let inertia: f64 = points
        .iter()
        .zip(&labels)
        .map(|(p, &l)| dist2(p, &centroids[l]))
        .sum();
    Clusters {
        labels,
        centroids,
        inertia,
    }
}

/// Clusters renumbered by first appearance, so the numbering does not depend on the start.
fn renumber(best: Clusters) -> Clusters {
    let mut order: Vec<usize> = Vec::new();
    for &l in &best.labels {
        if !order.contains(&l) {
            order.push(l);
        }
    }
    let rank = |l: usize| order.iter().position(|&o| o == l).unwrap_or(l);
    Clusters {
        labels: best.labels.iter().map(|&l| rank(l)).collect(),
        centroids: order.iter().map(|&o| best.centroids[o].clone()).collect(),
        inertia: best.inertia,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass() {
        let v = [1.0, 2.0, 4.0, 7.0];
        let (m, s) = mean_sd(v);
        assert!((m - 3.5).abs() < 1e-12);
        // Σ (v − 3.5)² = 6.25 + 2.25 + 0.25 + 12.25 = 21 → var 7
        assert!((s - 7f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd([0.3; 5]), (0.3, 0.0));
    }

    #[test]
    fn linear_fit_by_hand() {
        let f = polyfit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)], 1).unwrap();
        assert!((f.coeffs[0] - 1.0).abs() < 1e-9 && (f.coeffs[1] - 2.0).abs() < 1e-9);
        assert!((f.r_squared - 1.0).abs() < 1e-12);
        assert!(polyfit(&[(1.0, 1.0), (1.0, 2.0)], 1).is_none());
    }
}
