//! Statistics of the ratings: a proportion's Wilson interval and three chance-corrected
//! agreement coefficients for nominal answers. Each returns `None` where it is undefined (no
//! data, or agreement expected by chance is already perfect).

/// The 97.5 % quantile of the standard normal: a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of a proportion `k / n` (Wilson 1927; statsmodels'
/// `proportion_confint(method="wilson")`):
/// `(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`.
pub fn wilson(k: usize, n: usize, z: f64) -> Option<(f64, f64)> {
    if n == 0 || k > n {
        return None;
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Cohen's κ of two raters (Cohen 1960) over the items both rated, given as pairs of category
/// indices below `categories`: `(p_o − p_e) / (1 − p_e)` with `p_o` the share of agreements
/// and `p_e = Σ_c p_1(c)·p_2(c)` from each rater's own marginals.
pub fn cohen_kappa(pairs: &[(usize, usize)], categories: usize) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let mut first = vec![0.0; categories];
    let mut second = vec![0.0; categories];
    let mut agree = 0.0;
    for &(a, b) in pairs {
        first[a] += 1.0;
        second[b] += 1.0;
        if a == b {
            agree += 1.0;
        }
    }
    let observed = agree / n;
    let expected: f64 = first
        .iter()
        .zip(&second)
        .map(|(a, b)| a * b / (n * n))
        .sum();
    chance_corrected(observed, expected)
}

/// Fleiss' κ (Fleiss 1971) of items each rated by the same number `m ≥ 2` of raters, given as
/// per-item counts per category: `P_i = (Σ_j n_ij² − m) / (m(m−1))`, `P̄` their mean,
/// `P_e = Σ_j p_j²` with `p_j` the share of all ratings in category `j`;
/// `κ = (P̄ − P_e) / (1 − P_e)`. Items with another number of ratings make it `None`.
pub fn fleiss_kappa(counts: &[Vec<usize>]) -> Option<f64> {
    let m = counts.first()?.iter().sum::<usize>();
    if m < 2 || counts.iter().any(|row| row.iter().sum::<usize>() != m) {
        return None;
    }
    let categories = counts[0].len();
    let items = counts.len() as f64;
    let m = m as f64;
    let agreement: f64 = counts
        .iter()
        .map(|row| {
            let squares: f64 = row.iter().map(|&c| (c * c) as f64).sum();
            (squares - m) / (m * (m - 1.0))
        })
        .sum::<f64>()
        / items;
    let expected: f64 = (0..categories)
        .map(|j| {
            let share = counts.iter().map(|row| row[j] as f64).sum::<f64>() / (items * m);
            share * share
        })
        .sum();
    chance_corrected(agreement, expected)
}

/// Krippendorff's α for nominal data (Krippendorff 2011, "Computing Krippendorff's
/// Alpha-Reliability"), any number of raters, missing ratings allowed. `units` holds per item
/// the category indices it received; items with fewer than two are not pairable and left out.
/// With the coincidences `o_ck = Σ_u Σ_{i≠j} [v_i=c][v_j=k] / (m_u − 1)`, `n_c = Σ_k o_ck` and
/// `n = Σ_c n_c`: `α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k`.
pub fn krippendorff_alpha_nominal(units: &[Vec<usize>], categories: usize) -> Option<f64> {
    let mut coincidences = vec![vec![0.0; categories]; categories];
    for values in units.iter().filter(|v| v.len() >= 2) {
        let weight = 1.0 / (values.len() - 1) as f64;
        for (i, &a) in values.iter().enumerate() {
            for (j, &b) in values.iter().enumerate() {
                if i != j {
                    coincidences[a][b] += weight;
                }
            }
        }
    }
    let totals: Vec<f64> = coincidences.iter().map(|row| row.iter().sum()).collect();
    let n: f64 = totals.iter().sum();
    let mut observed = 0.0;
    let mut expected = 0.0;
    for c in 0..categories {
        for k in 0..categories {
            if c != k {
                observed += coincidences[c][k];
                expected += totals[c] * totals[k];
            }
        }
    }
    if n < 2.0 || expected == 0.0 {
        return None;
    }
    Some(1.0 - (n - 1.0) * observed / expected)
}

/// `(observed − expected) / (1 − expected)`, undefined when chance already agrees fully.
fn chance_corrected(observed: f64, expected: f64) -> Option<f64> {
    let room = 1.0 - expected;
    (room.abs() > 1e-12).then(|| (observed - expected) / room)
}
