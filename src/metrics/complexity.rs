//! How concentrated a map is.
//!
//! - **Sparseness** (Chalasani, Chen, Chowdhury, Wu & Jha 2020, "Concise explanations of neural
//!   networks using adversarial training", ICML): the Gini index of `|R|` (Hurley & Rickard
//!   2009), `G = Σ_{k=1}^{n} (2k − n − 1) a_(k) / (n Σ_k a_(k))` with `a_(1) ≤ … ≤ a_(n)` the
//!   sorted `|R_i| + ε`. 0 for a uniform map, `1 − 1/n` for a single non-zero pixel; higher is
//!   sparser. Quantus 0.6 (`Sparseness`, `abs=True`) adds `ε = 1e-7` to every value.
//! - **Complexity** (Bhatt, Weller & Moura 2020, IJCAI): the Shannon entropy (natural log) of
//!   the fractional contributions `P_i = |R_i| / Σ_j |R_j|`, `H = −Σ_i P_i ln(P_i + ε)`; `ln n`
//!   for a uniform map, 0 for a single pixel; lower is simpler. Quantus 0.6 (`Complexity`,
//!   `abs=True`) uses `ε = 1e-12`; with `ε = 0` terms with `P_i = 0` count 0.
//!
//! Both are NaN for an all-zero map when `ε = 0`.

/// Gini index of `|map| + epsilon` (sparseness). `epsilon = 1e-7` reproduces Quantus.
pub fn sparseness(map: &[f32], epsilon: f64) -> f64 {
    let mut a: Vec<f64> = map.iter().map(|&v| (v as f64).abs() + epsilon).collect();
    a.sort_by(f64::total_cmp);
    let n = a.len() as f64;
    let total: f64 = a.iter().sum();
    if total == 0.0 {
        return f64::NAN;
    }
    let weighted: f64 = a
        .iter()
        .enumerate()
        .map(|(k, v)| (2.0 * (k + 1) as f64 - n - 1.0) * v)
        .sum();
    weighted / (n * total)
}

/// Entropy of `|map| / Σ|map|` (complexity). `epsilon = 1e-12` reproduces Quantus.
pub fn complexity(map: &[f32], epsilon: f64) -> f64 {
    let total: f64 = map.iter().map(|&v| (v as f64).abs()).sum();
    if total == 0.0 {
        return f64::NAN;
    }
    -map.iter()
        .map(|&v| {
            let p = (v as f64).abs() / total;
            if p == 0.0 && epsilon == 0.0 {
                0.0
            } else {
                p * (p + epsilon).ln()
            }
        })
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_by_hand() {
        assert!(sparseness(&[2.0; 10], 0.0).abs() < 1e-12);
        let mut one = vec![0.0; 10];
        one[3] = -5.0;
        assert!((sparseness(&one, 0.0) - 0.9).abs() < 1e-12);
        assert!((complexity(&[3.0; 8], 0.0) - (8.0f64).ln()).abs() < 1e-12);
        assert!(complexity(&one, 0.0).abs() < 1e-12);
        assert!(sparseness(&[0.0; 4], 0.0).is_nan());
    }

    #[test]
    fn two_level_map_by_hand() {
        // |a| sorted = [1, 1, 2]: Σ(2k−n−1)a = (−2)(1) + 0(1) + 2(2) = 2; n Σa = 12 → 1/6
        assert!((sparseness(&[2.0, -1.0, 1.0], 0.0) - 1.0 / 6.0).abs() < 1e-12);
        // P = [.5, .25, .25]: H = .5 ln 2 + 2 · .25 ln 4 = 1.5 ln 2
        assert!((complexity(&[2.0, -1.0, 1.0], 0.0) - 1.5 * (2.0f64).ln()).abs() < 1e-12);
    }
}
