//! Perturbation curves and the area under them.

use serde::Serialize;

/// Area under `y(x)` by the trapezoid rule: `Σ_k (x_{k+1} − x_k)(y_k + y_{k+1})/2`.
pub fn trapezoid(x: &[f64], y: &[f32]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] as f64 + y[1] as f64) / 2.0)
        .sum()
}

/// Trapezoid area with unit spacing (`numpy.trapz(y, dx=1)`, Quantus' `calculate_auc`).
pub fn trapezoid_unit(y: &[f32]) -> f64 {
    y.windows(2)
        .map(|y| (y[0] as f64 + y[1] as f64) / 2.0)
        .sum()
}

/// A score measured after each perturbation step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Curve {
    /// Fraction of pixels perturbed at each point, from 0 to 1.
    pub fractions: Vec<f64>,
    /// The target's score at each point.
    pub scores: Vec<f32>,
    /// Area under the curve over the fraction axis (trapezoid rule).
    pub auc: f64,
}

impl Curve {
    /// A curve with its area.
    pub fn new(fractions: Vec<f64>, scores: Vec<f32>) -> Self {
        let auc = trapezoid(&fractions, &scores);
        Curve {
            fractions,
            scores,
            auc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_is_exact_for_linear_functions() {
        let x = [0.0, 0.1, 0.5, 1.0];
        let y: Vec<f32> = x.iter().map(|&v| (2.0 * v + 1.0) as f32).collect();
        assert!((trapezoid(&x, &y) - 2.0).abs() < 1e-7);
        assert!((trapezoid_unit(&[1.0, 3.0, 2.0]) - 4.5).abs() < 1e-12);
    }
}
