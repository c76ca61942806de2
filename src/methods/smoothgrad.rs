//! SmoothGrad (Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017):
//! `M̂(x) = 1/n Σₖ ∇ logit_t(x + εₖ)`, `εₖ ~ N(0, σ²)`, with `σ = noise · (max x − min x)` per
//! image. The map is the mean **signed** gradient `[N, C, H, W]`; it is drawn like saliency
//! (`max_c |·|`).

use serde_json::json;

use super::pass::{GradientRules, row, stack_rows};
use super::{Explainer, MapKind, MapStyle, MethodError, MethodOptions};
use crate::graph::Model;
use crate::rng::Rng;
use crate::tensor::{T4, from_vec, to_vec};

/// SmoothGrad with `samples` draws of relative noise level `noise`, reproducible from `seed`.
pub struct SmoothGrad {
    /// Number of noisy copies per image.
    pub samples: usize,
    /// σ as a fraction of the image's value range.
    pub noise: f32,
    /// Seed of the noise.
    pub seed: u64,
    /// Rows per forward/backward pass.
    pub batch: usize,
    /// Plain gradients, or an LRP rule set's modified gradients (see [`GradientRules`]).
    pub rules: GradientRules,
}

impl SmoothGrad {
    /// From the shared options (`samples`, `noise`, `seed`, `batch`).
    pub fn new(opts: &MethodOptions) -> Result<Self, MethodError> {
        if opts.samples == 0 {
            return Err(MethodError::Invalid(
                "smoothgrad needs at least one sample".into(),
            ));
        }
        if !(opts.noise >= 0.0 && opts.noise.is_finite()) {
            return Err(MethodError::Invalid(format!(
                "smoothgrad noise must be a non-negative fraction, got {}",
                opts.noise
            )));
        }
        Ok(SmoothGrad {
            samples: opts.samples,
            noise: opts.noise,
            seed: opts.seed,
            batch: opts.batch,
            rules: GradientRules::Plain,
        })
    }

    /// The noise standard deviation for one image (host values).
    pub fn sigma(&self, image: &[f32]) -> f32 {
        let (lo, hi) = image
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        self.noise * (hi - lo).max(0.0)
    }
}

impl Explainer for SmoothGrad {
    fn name(&self) -> &str {
        "smoothgrad"
    }
    fn kind(&self) -> MapKind {
        MapKind::Input
    }
    fn style(&self) -> MapStyle {
        MapStyle::Magnitude
    }
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError> {
        let [n, c, h, w] = x.dims();
        if targets.len() != n {
            return Err(MethodError::Invalid(format!(
                "{} targets for a batch of {n} inputs",
                targets.len()
            )));
        }
        let images: Vec<Vec<f32>> = (0..n).map(|i| row(x, i)).collect();
        let sigmas: Vec<f32> = images.iter().map(|im| self.sigma(im)).collect();
        let mut rng = Rng::derive(self.seed, "smoothgrad");
        let mut sums = vec![0.0f32; n * c * h * w];
        let per = c * h * w;
        let rows_total = n * self.samples;
        // Noise is drawn chunk by chunk in row order, so the result does not depend on `batch`.
        let batch = super::fit::rows_per_pass(self.batch);
        for start in (0..rows_total).step_by(batch) {
            let len = batch.min(rows_total - start);
            let rows: Vec<Vec<f32>> = (start..start + len)
                .map(|r| {
                    let i = r / self.samples;
                    images[i]
                        .iter()
                        .map(|&v| v + sigmas[i] * rng.normal())
                        .collect()
                })
                .collect();
            let chunk = stack_rows(rows, [c, h, w]);
            let chunk_targets: Vec<usize> = (start..start + len)
                .map(|r| targets[r / self.samples])
                .collect();
            self.rules
                .in_chunks(model, &chunk, &chunk_targets, len, |_, g| {
                    let g = to_vec(&g);
                    for (k, r) in (start..start + len).enumerate() {
                        let i = r / self.samples;
                        for (acc, v) in sums[i * per..(i + 1) * per]
                            .iter_mut()
                            .zip(&g[k * per..(k + 1) * per])
                        {
                            *acc += v;
                        }
                    }
                    Ok(())
                })?;
        }
        let inv = 1.0 / self.samples as f32;
        Ok(from_vec(
            sums.into_iter().map(|v| v * inv).collect(),
            [n, c, h, w],
        ))
    }
    fn params(&self) -> serde_json::Value {
        json!({"samples": self.samples, "noise": self.noise, "seed": self.seed,
               "rules": self.rules.name(),
               "map": "mean signed gradient [C,H,W]; drawn as max_c |g|"})
    }
}
