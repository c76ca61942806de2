//! Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks",
//! 2017): `IGᵢ(x) = (xᵢ − x'ᵢ) ∫₀¹ ∂ logit_t(x' + α(x − x')) / ∂xᵢ dα`, the integral replaced by a
//! quadrature `Σₖ wₖ ∇ logit_t(x' + αₖ(x − x'))`. The default quadrature is Captum's default,
//! Gauss–Legendre, so that numbers match Captum's `IntegratedGradients(n_steps=…)`; the Riemann
//! rules of Captum are available too. All `N × steps` interpolated inputs run as batches.
//!
//! Completeness: `Σᵢ IGᵢ ≈ logit_t(x) − logit_t(x')`, exactly in the limit of many steps.

use std::str::FromStr;

use serde_json::json;

use super::pass::{GradientRules, row, stack_rows};
use super::{Baseline, Explainer, MapKind, MethodError, MethodOptions};
use crate::graph::Model;
use crate::tensor::{T4, from_vec, to_vec};

/// Where on the path `[0, 1]` gradients are taken and how they are weighted (Captum's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quadrature {
    /// Gauss–Legendre nodes and weights mapped to `[0, 1]` (Captum's default `gausslegendre`).
    GaussLegendre,
    /// `αₖ = k/n`, `k = 1..n`, weights `1/n` (the paper's right Riemann sum).
    RiemannRight,
    /// `αₖ = k/n`, `k = 0..n−1`, weights `1/n`.
    RiemannLeft,
    /// `αₖ = (k + ½)/n`, weights `1/n`.
    RiemannMiddle,
    /// `αₖ = k/(n−1)`, `k = 0..n−1`, weights `1/(n−1)` halved at both ends.
    RiemannTrapezoid,
}

impl FromStr for Quadrature {
    type Err = MethodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "gausslegendre" | "gauss-legendre" => Quadrature::GaussLegendre,
            "riemann-right" | "riemann_right" => Quadrature::RiemannRight,
            "riemann-left" | "riemann_left" => Quadrature::RiemannLeft,
            "riemann-middle" | "riemann_middle" => Quadrature::RiemannMiddle,
            "riemann-trapezoid" | "riemann_trapezoid" => Quadrature::RiemannTrapezoid,
            _ => {
                return Err(MethodError::Invalid(format!(
                    "unknown integration rule '{s}'; use gauss-legendre, riemann-right, \
                     riemann-left, riemann-middle or riemann-trapezoid"
                )));
            }
        })
    }
}

impl Quadrature {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Quadrature::GaussLegendre => "gauss-legendre",
            Quadrature::RiemannRight => "riemann-right",
            Quadrature::RiemannLeft => "riemann-left",
            Quadrature::RiemannMiddle => "riemann-middle",
            Quadrature::RiemannTrapezoid => "riemann-trapezoid",
        }
    }

    /// `(αₖ, wₖ)` for `n` points on `[0, 1]`; the weights sum to 1.
    pub fn points(self, n: usize) -> Vec<(f64, f64)> {
        let nf = n as f64;
        match self {
            Quadrature::GaussLegendre => gauss_legendre(n)
                .into_iter()
                .map(|(x, w)| (0.5 * (1.0 + x), 0.5 * w))
                .collect(),
            Quadrature::RiemannRight => (1..=n).map(|k| (k as f64 / nf, 1.0 / nf)).collect(),
            Quadrature::RiemannLeft => (0..n).map(|k| (k as f64 / nf, 1.0 / nf)).collect(),
            Quadrature::RiemannMiddle => {
                (0..n).map(|k| ((k as f64 + 0.5) / nf, 1.0 / nf)).collect()
            }
            Quadrature::RiemannTrapezoid => {
                if n == 1 {
                    return vec![(1.0, 1.0)];
                }
                let step = 1.0 / (nf - 1.0);
                (0..n)
                    .map(|k| {
                        let w = if k == 0 || k == n - 1 {
                            0.5 * step
                        } else {
                            step
                        };
                        (k as f64 * step, w)
                    })
                    .collect()
            }
        }
    }
}

/// Gauss–Legendre nodes and weights on `[−1, 1]` (Newton's method on `P_n`, as in Numerical
/// Recipes' `gauleg`), in increasing order of the node.
pub fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_{n−1}(x) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0f64, 0.0f64);
            for k in 0..n {
                let kf = k as f64;
                let p2 = p1;
                p1 = p0;
                p0 = ((2.0 * kf + 1.0) * x * p1 - kf * p2) / (kf + 1.0);
            }
            derivative = n as f64 * (x * p0 - p1) / (x * x - 1.0);
            let dx = p0 / derivative;
            x -= dx;
            if dx.abs() < 1e-15 {
                break;
            }
        }
        out.push((x, 2.0 / ((1.0 - x * x) * derivative * derivative)));
    }
    out.reverse();
    out
}

/// Integrated Gradients with `steps` points of `quadrature` from `baseline`.
pub struct IntegratedGradients {
    /// Number of points on the path.
    pub steps: usize,
    /// Reference input.
    pub baseline: Baseline,
    /// Placement of the points.
    pub quadrature: Quadrature,
    /// Rows per forward/backward pass.
    pub batch: usize,
    /// Plain gradients, or an LRP rule set's modified gradients (see [`GradientRules`]).
    pub rules: GradientRules,
}

impl IntegratedGradients {
    /// From the shared options (`steps`, `baseline` — zeros by default —, `quadrature`, `batch`).
    pub fn new(opts: &MethodOptions) -> Result<Self, MethodError> {
        if opts.steps == 0 {
            return Err(MethodError::Invalid(
                "integrated-gradients needs at least one step".into(),
            ));
        }
        Ok(IntegratedGradients {
            steps: opts.steps,
            baseline: opts.baseline.clone().unwrap_or(Baseline::Zero),
            quadrature: opts.quadrature,
            batch: opts.batch,
            rules: GradientRules::Plain,
        })
    }
}

impl Explainer for IntegratedGradients {
    fn name(&self) -> &str {
        "integrated-gradients"
    }
    fn kind(&self) -> MapKind {
        MapKind::Input
    }
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError> {
        let [n, c, h, w] = x.dims();
        if targets.len() != n {
            return Err(MethodError::Invalid(format!(
                "{} targets for a batch of {n} inputs",
                targets.len()
            )));
        }
        let base_t = self.baseline.image(x, &model.card);
        let inputs: Vec<Vec<f32>> = (0..n).map(|i| row(x, i)).collect();
        let bases: Vec<Vec<f32>> = (0..n).map(|i| row(&base_t, i)).collect();
        let points = self.quadrature.points(self.steps);
        let m = points.len();
        let per = c * h * w;
        let mut weighted = vec![0.0f32; n * per];
        let total = n * m;
        let batch = super::fit::rows_per_pass(self.batch);
        for start in (0..total).step_by(batch) {
            let len = batch.min(total - start);
            let rows: Vec<Vec<f32>> = (start..start + len)
                .map(|r| {
                    let (i, alpha) = (r / m, points[r % m].0 as f32);
                    inputs[i]
                        .iter()
                        .zip(&bases[i])
                        .map(|(&xv, &bv)| bv + alpha * (xv - bv))
                        .collect()
                })
                .collect();
            let chunk = stack_rows(rows, [c, h, w]);
            let chunk_targets: Vec<usize> = (start..start + len).map(|r| targets[r / m]).collect();
            self.rules
                .in_chunks(model, &chunk, &chunk_targets, len, |_, g| {
                    let g = to_vec(&g);
                    for (k, r) in (start..start + len).enumerate() {
                        let (i, wk) = (r / m, points[r % m].1 as f32);
                        for (acc, v) in weighted[i * per..(i + 1) * per]
                            .iter_mut()
                            .zip(&g[k * per..(k + 1) * per])
                        {
                            *acc += wk * v;
                        }
                    }
                    Ok(())
                })?;
        }
        let attributions: Vec<f32> = (0..n)
            .flat_map(|i| {
                let (xi, bi, gi) = (&inputs[i], &bases[i], &weighted[i * per..(i + 1) * per]);
                (0..per).map(move |j| (xi[j] - bi[j]) * gi[j])
            })
            .collect();
        Ok(from_vec(attributions, [n, c, h, w]))
    }
    fn params(&self) -> serde_json::Value {
        json!({"steps": self.steps, "baseline": self.baseline.to_string(),
               "rules": self.rules.name(),
               "quadrature": self.quadrature.name()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        // n points integrate degree 2n−1 exactly: ∫₀¹ α⁷ dα = 1/8 with 4 points.
        let pts = Quadrature::GaussLegendre.points(4);
        let integral: f64 = pts.iter().map(|(a, w)| w * a.powi(7)).sum();
        assert!((integral - 0.125).abs() < 1e-14, "{integral}");
        // Known 3-point rule on [−1, 1]: ±√(3/5) with weight 5/9, 0 with 8/9.
        let gl = gauss_legendre(3);
        assert!((gl[0].0 + (0.6f64).sqrt()).abs() < 1e-14);
        assert!((gl[1].0).abs() < 1e-14 && (gl[1].1 - 8.0 / 9.0).abs() < 1e-14);
        for q in [
            Quadrature::RiemannRight,
            Quadrature::RiemannLeft,
            Quadrature::RiemannMiddle,
            Quadrature::RiemannTrapezoid,
            Quadrature::GaussLegendre,
        ] {
            let total: f64 = q.points(7).iter().map(|p| p.1).sum();
            assert!((total - 1.0).abs() < 1e-12, "{q:?}");
        }
        // The trapezoid rule is exact for linear integrands: ∫₀¹ α dα = ½.
        let t: f64 = Quadrature::RiemannTrapezoid
            .points(5)
            .iter()
            .map(|(a, w)| a * w)
            .sum();
        assert!((t - 0.5).abs() < 1e-14);
    }
}
