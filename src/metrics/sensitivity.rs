//! Max- and average-sensitivity (Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019, "On the
//! (in)fidelity and sensitivity of explanations", NeurIPS), estimated by Monte Carlo:
//!
//! `SENS_max = max_j ‖Φ(x + δ_j) − Φ(x)‖₂ / ‖Φ(x)‖₂`, `SENS_avg = mean_j (same)`
//!
//! with `δ_j` drawn uniformly from the L∞ ball of radius `r` (every input element independently
//! from `U(−r, r)`) and `Φ` the explanation of the same class. Yeh et al. define the
//! unnormalised `‖Φ(x+δ) − Φ(x)‖`; Quantus 0.6 (`MaxSensitivity`, `AvgSensitivity`) divides by
//! `‖Φ(x)‖` — [`SensitivityOptions::relative`] chooses (default: Quantus' relative form, which is
//! comparable across methods of different scale). Quantus' noise radius is absolute (`lower_bound
//! = 0.2` in input units); ours may be stated relative to the image's value range, and the result
//! reports the absolute radius used. Perturbed images are explained in batches.

use serde::Serialize;

use super::explain::MapFn;
use super::scorer::image_tensor;
use super::{ImageView, MapView, MetricError};
use crate::rng::Rng;

/// The noise radius `r`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Radius {
    /// `r` in input units (Quantus: 0.2).
    Absolute(f32),
    /// `r = f · (max x − min x)` over the image's values.
    RelativeToRange(f32),
}

/// Conventions of the sensitivity estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct SensitivityOptions {
    /// Number of noise draws (default 50; Quantus 200).
    pub samples: usize,
    /// Noise radius (default 5 % of the image's value range).
    pub radius: Radius,
    /// Divide by `‖Φ(x)‖₂` (Quantus; default true).
    pub relative: bool,
    /// Noisy images per explanation call (default 8).
    pub batch_size: usize,
    /// Seed of the noise.
    pub seed: u64,
}

impl Default for SensitivityOptions {
    fn default() -> Self {
        SensitivityOptions {
            samples: 50,
            radius: Radius::RelativeToRange(0.05),
            relative: true,
            batch_size: 8,
            seed: 0,
        }
    }
}

/// Max- and average-sensitivity of one explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sensitivity {
    /// Largest per-sample value.
    pub max: f64,
    /// Mean per-sample value.
    pub avg: f64,
    /// `‖Φ(x+δ_j) − Φ(x)‖₂ (/ ‖Φ(x)‖₂)` for each draw.
    pub per_sample: Vec<f64>,
    /// Absolute noise radius used.
    pub radius: f32,
    /// The radius as asked.
    pub radius_rule: Radius,
    /// Whether values are divided by `‖Φ(x)‖₂`.
    pub relative: bool,
}

/// Sensitivity of `map` (the explanation of `image` for `class`) under uniform noise.
pub fn sensitivity(
    explain: &dyn MapFn,
    image: &ImageView,
    map: &MapView,
    class: usize,
    opts: &SensitivityOptions,
) -> Result<Sensitivity, MetricError> {
    if opts.samples == 0 {
        return Err(MetricError::Invalid(
            "sensitivity needs at least one sample".into(),
        ));
    }
    let r = match opts.radius {
        Radius::Absolute(r) => r,
        Radius::RelativeToRange(f) => {
            let lo = image.data.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = image.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            f * (hi - lo)
        }
    };
    if !(r > 0.0 && r.is_finite()) {
        return Err(MetricError::Invalid(format!(
            "noise radius must be positive, got {r} ({:?})",
            opts.radius
        )));
    }
    let mut rng = Rng::derive(opts.seed, "sensitivity");
    let noise: Vec<Vec<f32>> = (0..opts.samples)
        .map(|_| {
            (0..image.data.len())
                .map(|_| rng.uniform_range(-r, r))
                .collect()
        })
        .collect();
    let mut out = sensitivity_with_noise(explain, image, map, class, &noise, opts)?;
    out.radius = r;
    Ok(out)
}

/// Sensitivity with given noise tensors `δ_j` (each shaped like the image); the radius fields
/// of the result report `opts.radius` as absolute only if it is absolute.
pub fn sensitivity_with_noise(
    explain: &dyn MapFn,
    image: &ImageView,
    map: &MapView,
    class: usize,
    noise: &[Vec<f32>],
    opts: &SensitivityOptions,
) -> Result<Sensitivity, MetricError> {
    image.check_map(map)?;
    if noise.is_empty() || noise.iter().any(|d| d.len() != image.data.len()) {
        return Err(MetricError::Shape(
            "every noise draw must have the image's shape, and one draw at least".into(),
        ));
    }
    let norm0 = map
        .data
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let plane = map.len();
    let batch = opts.batch_size.max(1);
    let mut per_sample = Vec::with_capacity(noise.len());
    for chunk in noise.chunks(batch) {
        let mut values = Vec::with_capacity(chunk.len() * image.data.len());
        for d in chunk {
            values.extend(image.data.iter().zip(d).map(|(x, e)| x + e));
        }
        let maps = explain.maps(
            image_tensor(&values, image.shape(), chunk.len()),
            &vec![class; chunk.len()],
        )?;
        if maps.len() != chunk.len() * plane {
            return Err(MetricError::Shape(format!(
                "the explainer returned {} values for {} maps of {plane} pixels",
                maps.len(),
                chunk.len()
            )));
        }
        for m in maps.chunks(plane) {
            let diff = m
                .iter()
                .zip(map.data)
                .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            per_sample.push(if opts.relative { diff / norm0 } else { diff });
        }
    }
    let max = per_sample.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = per_sample.iter().sum::<f64>() / per_sample.len() as f64;
    Ok(Sensitivity {
        max,
        avg,
        per_sample,
        radius: match opts.radius {
            Radius::Absolute(r) => r,
            Radius::RelativeToRange(_) => f32::NAN,
        },
        radius_rule: opts.radius,
        relative: opts.relative,
    })
}
