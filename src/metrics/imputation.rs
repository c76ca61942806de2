//! Noisy linear imputation (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy
//! for Attribution Methods", ICML; the ROAD authors' `imputations.py`, shipped unchanged by
//! pytorch-grad-cam and adapted by Quantus 0.6).
//!
//! Every removed pixel becomes the weighted mean of its eight neighbours that lie inside the
//! image — weight 1/6 for the four edge neighbours, 1/12 for the four diagonal ones — where a
//! neighbour that is itself removed enters as an unknown. For the removed pixels `u` this is the
//! linear system
//!
//! `(Σ_{v ∈ N(u)} w_uv) · x_u − Σ_{v ∈ N(u), removed} w_uv · x_v = Σ_{v ∈ N(u), kept} w_uv · I_v`
//!
//! solved once per channel; then `noise · 𝒩(0, 1)` is added to every imputed value (each
//! channel its own draw). The reference builds the same system (diagonal `1 − Σ` of the weights
//! of neighbours outside the image, which is `Σ` of those inside) and solves it with SuperLU; the
//! matrix is symmetric (`w_uv = w_vu`) and, unless every pixel is removed, positive definite
//! (each connected group of removed pixels touches a kept one), so we solve it by conjugate
//! gradients with a diagonal preconditioner to a relative residual of 10⁻¹², far below f32.

use super::{ImageView, MetricError};
use crate::rng::Rng;

/// Neighbour offsets `(row, column)` and weights, in the reference's order.
pub const NEIGHBOUR_WEIGHTS: [((isize, isize), f64); 8] = [
    ((1, 1), 1.0 / 12.0),
    ((0, 1), 1.0 / 6.0),
    ((-1, 1), 1.0 / 12.0),
    ((1, -1), 1.0 / 12.0),
    ((0, -1), 1.0 / 6.0),
    ((-1, -1), 1.0 / 12.0),
    ((1, 0), 1.0 / 6.0),
    ((-1, 0), 1.0 / 6.0),
];

/// Relative residual at which the conjugate gradients stop.
const TOLERANCE: f64 = 1e-12;

/// The linear system of the removed pixels: for unknown `u`, its diagonal `Σ w` over the
/// neighbours inside the image and its removed neighbours (as unknown indices) with weights.
struct System {
    /// Pixel index of each unknown.
    pixels: Vec<usize>,
    diagonal: Vec<f64>,
    /// Removed neighbours of each unknown: `(unknown index, weight)`.
    links: Vec<Vec<(usize, f64)>>,
    /// Kept neighbours of each unknown: `(pixel index, weight)`.
    known: Vec<Vec<(usize, f64)>>,
}

impl System {
    fn new(removed: &[bool], height: usize, width: usize) -> Self {
        let pixels: Vec<usize> = (0..removed.len()).filter(|&p| removed[p]).collect();
        let mut unknown_of = vec![usize::MAX; removed.len()];
        for (u, &p) in pixels.iter().enumerate() {
            unknown_of[p] = u;
        }
        let mut diagonal = vec![0.0; pixels.len()];
        let mut links = vec![Vec::new(); pixels.len()];
        let mut known = vec![Vec::new(); pixels.len()];
        for (u, &p) in pixels.iter().enumerate() {
            let (r, c) = ((p / width) as isize, (p % width) as isize);
            for ((dr, dc), w) in NEIGHBOUR_WEIGHTS {
                let (nr, nc) = (r + dr, c + dc);
                if nr < 0 || nc < 0 || nr >= height as isize || nc >= width as isize {
                    continue;
                }
                diagonal[u] += w;
                let q = nr as usize * width + nc as usize;
                if removed[q] {
                    links[u].push((unknown_of[q], w));
                } else {
                    known[u].push((q, w));
                }
            }
        }
        System {
            pixels,
            diagonal,
            links,
            known,
        }
    }

    /// `y = A x` with `A = diag − W` over the unknowns.
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        for (u, out) in y.iter_mut().enumerate() {
            let off: f64 = self.links[u].iter().map(|&(v, w)| w * x[v]).sum();
            *out = self.diagonal[u] * x[u] - off;
        }
    }

    /// The right-hand side for one channel `plane`.
    fn rhs(&self, plane: &[f32]) -> Vec<f64> {
        self.known
            .iter()
            .map(|k| k.iter().map(|&(q, w)| w * plane[q] as f64).sum())
            .collect()
    }

    /// Solves `A x = b` by conjugate gradients preconditioned with `diag(A)`.
    fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = b.len();
        let norm_b = dot(b, b).sqrt();
        let mut x: Vec<f64> = b.iter().zip(&self.diagonal).map(|(b, d)| b / d).collect();
        if norm_b == 0.0 {
            return vec![0.0; n];
        }
        let mut ax = vec![0.0; n];
        self.apply(&x, &mut ax);
        let mut r: Vec<f64> = b.iter().zip(&ax).map(|(b, a)| b - a).collect();
        let mut z: Vec<f64> = r.iter().zip(&self.diagonal).map(|(r, d)| r / d).collect();
        let mut p = z.clone();
        let mut rz = dot(&r, &z);
        let mut ap = vec![0.0; n];
        // Exact arithmetic converges in n steps; the margin covers rounding.
        for _ in 0..(2 * n + 50) {
            if dot(&r, &r).sqrt() <= TOLERANCE * norm_b {
                break;
            }
            self.apply(&p, &mut ap);
            let alpha = rz / dot(&p, &ap);
            for i in 0..n {
                x[i] += alpha * p[i];
                r[i] -= alpha * ap[i];
            }
            for i in 0..n {
                z[i] = r[i] / self.diagonal[i];
            }
            let rz_next = dot(&r, &z);
            let beta = rz_next / rz;
            rz = rz_next;
            for i in 0..n {
                p[i] = z[i] + beta * p[i];
            }
        }
        x
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// The image with the `removed` pixels (one flag per pixel, all channels together) replaced by
/// the noisy linear imputation, `noise` the SD of the Gaussian noise added to each imputed value
/// (the reference's default is 0.01; 0 gives the exact solution). Refuses a mask that removes
/// every pixel (the system is then singular: nothing to impute from).
pub fn noisy_linear_imputation(
    image: &ImageView,
    removed: &[bool],
    noise: f32,
    rng: &mut Rng,
) -> Result<Vec<f32>, MetricError> {
    super::check_mask(removed, image.pixels(), "the removal mask")?;
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(MetricError::Invalid(format!(
            "imputation noise must be a finite SD ≥ 0, got {noise}"
        )));
    }
    let mut out = image.data.to_vec();
    if !removed.contains(&true) {
        return Ok(out);
    }
    if removed.iter().all(|&r| r) {
        return Err(MetricError::Invalid(
            "linear imputation needs at least one kept pixel; every pixel is removed".into(),
        ));
    }
    let system = System::new(removed, image.height, image.width);
    let plane = image.pixels();
    for c in 0..image.channels {
        let values = &image.data[c * plane..(c + 1) * plane];
        let solution = system.solve(&system.rhs(values));
        for (&p, v) in system.pixels.iter().zip(solution) {
            let jitter = if noise > 0.0 {
                noise * rng.normal()
            } else {
                0.0
            };
            out[c * plane + p] = v as f32 + jitter;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_hole_is_the_weighted_mean_of_its_neighbours() {
        // 3×3, centre removed: (4·1/6·edge + 4·1/12·diag) / 1.
        let data: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let image = ImageView::new(&data, [1, 3, 3]).unwrap();
        let mut removed = vec![false; 9];
        removed[4] = true;
        let out = noisy_linear_imputation(&image, &removed, 0.0, &mut Rng::new(0)).unwrap();
        let want = (1.0 + 3.0 + 5.0 + 7.0) / 6.0 + (0.0 + 2.0 + 6.0 + 8.0) / 12.0;
        assert!((out[4] as f64 - want).abs() < 1e-6, "{} vs {want}", out[4]);
        assert_eq!(&out[..4], &data[..4]);
    }

    #[test]
    fn a_corner_uses_only_the_neighbours_inside() {
        // Corner (0,0) of 2×2: neighbours (0,1) w 1/6, (1,0) w 1/6, (1,1) w 1/12; sum 5/12.
        let data = [0.0f32, 2.0, 4.0, 8.0];
        let image = ImageView::new(&data, [1, 2, 2]).unwrap();
        let out =
            noisy_linear_imputation(&image, &[true, false, false, false], 0.0, &mut Rng::new(0))
                .unwrap();
        let want = (2.0 / 6.0 + 4.0 / 6.0 + 8.0 / 12.0) / (5.0 / 12.0);
        assert!((out[0] as f64 - want).abs() < 1e-6);
    }

    #[test]
    fn removing_everything_is_refused() {
        let data = [1.0f32; 4];
        let image = ImageView::new(&data, [1, 2, 2]).unwrap();
        assert!(noisy_linear_imputation(&image, &[true; 4], 0.0, &mut Rng::new(0)).is_err());
    }
}
