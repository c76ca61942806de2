//! A checkerboard score for relevance maps: how much of a map's energy sits at the stride-2
//! frequencies, the pattern strided convolutions and their transposes imprint on LRP maps of
//! ResNets.
//!
//! For a channel-summed map `M` of size `H × W` with 2-D DFT `F(k, l)`, the score is
//!
//! `S = E_π / Σ_{k,l} |F(k, l)|²`, with `E_π = Σ_{(k,l) : k = H/2 or l = W/2} |F(k, l)|²`,
//!
//! the energy in the DFT row at vertical frequency ±π (`k = H/2`) and the column at horizontal
//! frequency ±π (`l = W/2`), their crossing counted once, over the total spectral energy (the
//! mean included). An axis of odd length has no ±π frequency and contributes nothing.
//! No FFT is needed: by Parseval along the other axis,
//! `Σ_l |F(H/2, l)|² = W Σ_x (Σ_y (−1)^y M(y, x))²`, likewise for the column,
//! `|F(H/2, W/2)|² = (Σ_{y,x} (−1)^{y+x} M(y, x))²`, and `Σ |F|² = H W Σ M²`.
//!
//! Reference values: a smooth map scores ≈ 0, white noise ≈ (H + W − 1)/(H W), a map that is
//! non-zero only on the even rows and even columns (a stride-2 lattice) 3/4, the alternating
//! pattern `(−1)^{y+x}` 1. A zero map scores 0.

use crate::tensor::{T4, to_vec};

/// The checkerboard score of one `h × w` map (row-major).
pub fn checkerboard_score(map: &[f32], h: usize, w: usize) -> f64 {
    assert_eq!(
        map.len(),
        h * w,
        "map has {} values, not {h}×{w}",
        map.len()
    );
    let sign = |i: usize| if i.is_multiple_of(2) { 1.0 } else { -1.0 };
    let mut col_alt = vec![0.0f64; w]; // Σ_y (−1)^y M(y, x)
    let mut row_alt = vec![0.0f64; h]; // Σ_x (−1)^x M(y, x)
    let mut total = 0.0f64;
    for y in 0..h {
        for x in 0..w {
            let v = map[y * w + x] as f64;
            col_alt[x] += sign(y) * v;
            row_alt[y] += sign(x) * v;
            total += v * v;
        }
    }
    let energy = (h * w) as f64 * total;
    if energy == 0.0 {
        return 0.0;
    }
    let mut e_pi = 0.0;
    if h.is_multiple_of(2) {
        e_pi += w as f64 * col_alt.iter().map(|a| a * a).sum::<f64>();
    }
    if w.is_multiple_of(2) {
        e_pi += h as f64 * row_alt.iter().map(|a| a * a).sum::<f64>();
    }
    if h.is_multiple_of(2) && w.is_multiple_of(2) {
        let corner: f64 = (0..w).map(|x| sign(x) * col_alt[x]).sum();
        e_pi -= corner * corner;
    }
    e_pi / energy
}

/// The checkerboard score of each image of a `[N, C, H, W]` relevance (summed over channels).
pub fn checkerboard_scores(relevance: &T4) -> Vec<f64> {
    let [n, _, h, w] = relevance.dims();
    let summed = to_vec(&relevance.clone().sum_dim(1));
    summed
        .chunks(h * w)
        .take(n)
        .map(|m| checkerboard_score(m, h, w))
        .collect()
}
