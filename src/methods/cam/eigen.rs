//! Eigen-CAM (Muhammad & Yeasin, "Eigen-CAM", 2020) as pytorch-grad-cam's `get_2d_projection`:
//! the activations of one image as a matrix `M` (`h·w` positions × `C` channels), centred per
//! channel, projected on their first right singular vector: `p = M_c v₁`. Class-independent.
//!
//! **Sign.** A singular vector's sign is arbitrary; pytorch-grad-cam 1.5.7's `EigenCAM` keeps
//! whatever LAPACK returns, which no other implementation can reproduce. We apply the library's
//! own sign correction (`get_2d_projection_with_sign_correction`, Seg-Eigen-CAM Eq. 13): flip `p`
//! when `|min p| > |max p|`, so the strongest response is positive.

use serde_json::json;

use super::{Planes, finish_cams, resolve_layer};
use crate::engine::Activations;
use crate::graph::Model;
use crate::methods::pass::forward_all;
use crate::methods::{Explainer, MapKind, MapStyle, MethodError};
use crate::tensor::T4;

/// Eigen-CAM.
pub struct EigenCam {
    /// Target layer name (`None`: the default CAM layer).
    pub layer: Option<String>,
}

impl EigenCam {
    /// Eigen-CAM at `layer`.
    pub fn new(layer: Option<String>) -> Self {
        EigenCam { layer }
    }
}

/// Eigenvalues and eigenvectors (columns, row-major `m × m`) of a symmetric matrix by the cyclic
/// Jacobi method (Golub & Van Loan §8.5), in double precision.
fn symmetric_eigen(mut a: Vec<f64>, m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * m + j] * a[i * m + j])
            .sum();
        let total: f64 = a.iter().map(|x| x * x).sum();
        if off <= 1e-30 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = a[p * m + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (a[p * m + p], a[q * m + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Jᵀ A J on rows/columns p, q.
                for k in 0..m {
                    let (akp, akq) = (a[k * m + p], a[k * m + q]);
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for k in 0..m {
                    let (apk, aqk) = (a[p * m + k], a[q * m + k]);
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                for k in 0..m {
                    let (vkp, vkq) = (v[k * m + p], v[k * m + q]);
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..m).map(|i| a[i * m + i]).collect(), v)
}

/// The projection of one image's activations (`channels` planes of `positions` values, row-major
/// `[C, h·w]`) on their first principal direction, sign-corrected (see the module doc).
pub fn first_principal_projection(planes: &[f32], channels: usize, positions: usize) -> Vec<f32> {
    // Centred matrix M[p, c] = A[c, p] − mean_p A[c, ·] in double.
    let mut m = vec![0.0f64; positions * channels];
    for c in 0..channels {
        let plane = &planes[c * positions..(c + 1) * positions];
        let v = |x: f32| if x.is_nan() { 0.0 } else { x as f64 };
        let mean = plane.iter().map(|&x| v(x)).sum::<f64>() / positions as f64;
        for (p, &x) in plane.iter().enumerate() {
            m[p * channels + c] = v(x) - mean;
        }
    }
    // Work with the smaller Gram matrix: M Mᵀ (positions²) or Mᵀ M (channels²).
    let projection: Vec<f64> = if positions <= channels {
        let k = positions;
        let mut gram = vec![0.0f64; k * k];
        for i in 0..k {
            for j in i..k {
                let d: f64 = (0..channels)
                    .map(|c| m[i * channels + c] * m[j * channels + c])
                    .sum();
                gram[i * k + j] = d;
                gram[j * k + i] = d;
            }
        }
        let (values, vectors) = symmetric_eigen(gram, k);
        let top = argmax(&values);
        // M v₁ = σ₁ u₁ with σ₁ = √λ₁.
        let sigma = values[top].max(0.0).sqrt();
        (0..k).map(|i| sigma * vectors[i * k + top]).collect()
    } else {
        let k = channels;
        let mut gram = vec![0.0f64; k * k];
        for p in 0..positions {
            let row = &m[p * k..(p + 1) * k];
            for i in 0..k {
                for j in i..k {
                    gram[i * k + j] += row[i] * row[j];
                }
            }
        }
        for i in 0..k {
            for j in 0..i {
                gram[i * k + j] = gram[j * k + i];
            }
        }
        let (values, vectors) = symmetric_eigen(gram, k);
        let top = argmax(&values);
        (0..positions)
            .map(|p| (0..k).map(|c| m[p * k + c] * vectors[c * k + top]).sum())
            .collect()
    };
    let max = projection.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = projection.iter().copied().fold(f64::INFINITY, f64::min);
    let sign = if min.abs() > max.abs() { -1.0 } else { 1.0 };
    projection.into_iter().map(|x| (sign * x) as f32).collect()
}

fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

impl Explainer for EigenCam {
    fn name(&self) -> &str {
        "eigen-cam"
    }
    fn kind(&self) -> MapKind {
        MapKind::Cam
    }
    fn style(&self) -> MapStyle {
        MapStyle::Unit
    }
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError> {
        self.explain_forward(model, x, &forward_all(model, x)?, targets)
    }
    fn explain_forward(
        &self,
        model: &Model,
        x: &T4,
        acts: &Activations,
        _targets: &[usize],
    ) -> Result<T4, MethodError> {
        let layer = resolve_layer(model, acts, self.layer.as_deref())?;
        let a = Planes::of(acts.get(layer)?);
        let [n, c, h, w] = a.dims;
        let maps: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let planes = &a.values[i * c * h * w..(i + 1) * c * h * w];
                first_principal_projection(planes, c, h * w)
            })
            .collect();
        let [_, _, oh, ow] = x.dims();
        Ok(finish_cams(maps, h, w, oh, ow))
    }
    fn params(&self) -> serde_json::Value {
        json!({"layer": self.layer, "sign": "strongest response positive (Seg-Eigen-CAM Eq. 13)"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_known_spectrum() {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3 with eigenvectors (1, −1)/√2 and (1, 1)/√2.
        let (values, vectors) = symmetric_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        let top = argmax(&values);
        assert!((values[top] - 3.0).abs() < 1e-12);
        assert!((vectors[top].abs() - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((vectors[2 + top] - vectors[top]).abs() < 1e-12);
    }

    #[test]
    fn projection_of_a_rank_one_map_is_the_map_centred() {
        // A[c, p] = s_c · f_p: the first principal direction is s, the projection ∝ f − mean f.
        let f = [0.0f32, 1.0, 4.0, 2.0, 8.0, 3.0];
        let s = [1.0f32, 2.0, 0.5];
        let planes: Vec<f32> = s
            .iter()
            .flat_map(|&sc| f.iter().map(move |&fp| sc * fp))
            .collect();
        // Both Gram orientations: channels < positions, and positions ≤ channels. In both cases
        // the largest centred value is positive, so the sign correction keeps +f.
        for (c, p) in [(3, 6), (3, 3)] {
            let planes: Vec<f32> = (0..c)
                .flat_map(|ch| planes[ch * 6..ch * 6 + p].to_vec())
                .collect();
            let proj = first_principal_projection(&planes, c, p);
            let mean = f[..p].iter().sum::<f32>() / p as f32;
            let norm_s = s.iter().map(|v| v * v).sum::<f32>().sqrt();
            for (i, &v) in proj.iter().enumerate() {
                let expect = (f[i] - mean) * norm_s;
                assert!((v - expect).abs() < 1e-4, "{c}x{p}: {v} vs {expect}");
            }
        }
    }
}
