//! Pixel flipping (Bach et al. 2015, "On pixel-wise explanations for non-linear classifier
//! decisions by layer-wise relevance propagation", PLoS ONE) and region perturbation (Samek et
//! al. 2017, "Evaluating the visualization of what a deep neural network has learned", IEEE
//! TNNLS), with the area over the perturbation curve
//!
//! `AOPC = 1/(L+1) · Σ_{k=0}^{L} (f(x⁰) − f(xᵏ))`
//!
//! where `xᵏ` is the image after `k` steps and `f` the target's score. **MoRF** perturbs the most
//! relevant pixels / patches first (a faithful map makes the score fall fast: high AOPC), **LeRF**
//! the least relevant first (low AOPC wanted). Perturbations accumulate; all channels of a pixel
//! change together; every step of one image is scored in batches.
//!
//! Quantus 0.6 (`PixelFlipping`, `RegionPerturbation`) omits the unperturbed point: its pixel
//! flipping curve is our `scores[1..]` and its region perturbation curve our
//! `scores[0] − scores[1..]`; it perturbs individual input elements (channels separately when the
//! map is broadcast over channels), which equals ours on one-channel images. Its regions are the
//! cells of a non-overlapping grid of `patch × patch` patches, centred on the image (the image
//! is padded by `⌊pad/2⌋` before and `⌈pad/2⌉` after to a multiple of the patch size; border
//! patches are partial); Samek et al. centred overlapping 9×9 regions on the most relevant
//! pixels. We use Quantus' grid.

use serde::Serialize;

use super::curve::{Curve, trapezoid_unit};
use super::order::{Schedule, ascending, descending};
use super::scorer::{FollowedClass, ScoreKind, Scorer, resolve_target, score_sequence};
use super::{ImageView, MapView, MetricError, Substrate};

/// Which end of the ranking goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Most relevant first.
    Morf,
    /// Least relevant first.
    Lerf,
}

/// Conventions of pixel flipping.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelFlippingOptions {
    /// Pixels flipped per step (Quantus' `features_in_step`; default 1% of the pixels, rounded up, when 0).
    pub pixels_per_step: usize,
    /// MoRF or LeRF (default MoRF).
    pub order: Order,
    /// Replacement values (default the image minimum, Quantus' `"black"`).
    pub baseline: Substrate,
    /// Class followed (default the predicted class).
    pub target: FollowedClass,
}

impl Default for PixelFlippingOptions {
    fn default() -> Self {
        PixelFlippingOptions {
            pixels_per_step: 0,
            order: Order::Morf,
            baseline: Substrate::ImageMin,
            target: FollowedClass::Predicted,
        }
    }
}

/// Conventions of region perturbation.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionPerturbationOptions {
    /// Patch side in pixels (Quantus default 8).
    pub patch: usize,
    /// Number of patches perturbed, `L` (Quantus default 100; fewer if the grid is smaller).
    pub regions: usize,
    /// MoRF or LeRF (default MoRF).
    pub order: Order,
    /// Replacement values (default the image minimum, Quantus' `"black"`).
    pub baseline: Substrate,
    /// Class followed (default the predicted class).
    pub target: FollowedClass,
}

impl Default for RegionPerturbationOptions {
    fn default() -> Self {
        RegionPerturbationOptions {
            patch: 8,
            regions: 100,
            order: Order::Morf,
            baseline: Substrate::ImageMin,
            target: FollowedClass::Predicted,
        }
    }
}

/// The conventions stated with a perturbation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerturbationConventions {
    /// `pixel-flipping` or `region-perturbation`.
    pub method: &'static str,
    /// MoRF / LeRF.
    pub order: Order,
    /// Pixels per step (pixel flipping) or patch side (region perturbation).
    pub unit: usize,
    /// Baseline, described.
    pub baseline: String,
    /// Score kind of the scorer.
    pub score: ScoreKind,
    /// Class rule as asked.
    pub target: FollowedClass,
    /// Class followed.
    pub class: usize,
}

/// A perturbation curve with its AOPC.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerturbationResult {
    /// Scores `f(xᵏ)`, `k = 0..=L` (point 0 unperturbed), against the fraction of pixels changed;
    /// its `auc` is over the fraction axis.
    pub curve: Curve,
    /// `1/(L+1) Σ_k (f(x⁰) − f(xᵏ))`.
    pub aopc: f64,
    /// Quantus' pixel-flipping AUC: `numpy.trapz(scores[1..], dx=1)`.
    pub auc_quantus: f64,
    /// How it was computed.
    pub conventions: PerturbationConventions,
}

/// Scores of the cumulative perturbation `schedule` (point 0 unperturbed).
fn run(
    scorer: &dyn Scorer,
    image: &ImageView,
    schedule: &Schedule,
    baseline: &[f32],
    class: usize,
) -> Result<Vec<f32>, MetricError> {
    let plane = image.pixels();
    let mut current = image.data.to_vec();
    score_sequence(
        scorer,
        image.shape(),
        schedule.steps() + 1,
        class,
        |i, buffer| {
            if i > 0 {
                for &p in schedule.step(i - 1) {
                    for c in 0..image.channels {
                        current[c * plane + p] = baseline[c * plane + p];
                    }
                }
            }
            buffer.copy_from_slice(&current);
        },
    )
}

fn finish(
    scores: Vec<f32>,
    fractions: Vec<f64>,
    conventions: PerturbationConventions,
) -> PerturbationResult {
    let f0 = scores[0] as f64;
    let aopc = scores.iter().map(|&s| f0 - s as f64).sum::<f64>() / scores.len() as f64;
    let auc_quantus = trapezoid_unit(&scores[1..]);
    PerturbationResult {
        curve: Curve::new(fractions, scores),
        aopc,
        auc_quantus,
        conventions,
    }
}

/// Pixel flipping: flips `pixels_per_step` pixels per step, in MoRF or LeRF order of `map`
/// (stable sort), until every pixel is flipped.
pub fn pixel_flipping(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &PixelFlippingOptions,
) -> Result<PerturbationResult, MetricError> {
    image.check_map(map)?;
    let n = map.len();
    let k = if opts.pixels_per_step == 0 {
        n.div_ceil(100)
    } else {
        opts.pixels_per_step
    };
    let order = match opts.order {
        Order::Morf => descending(map.data),
        Order::Lerf => ascending(map.data),
    };
    let ends = (1..=n.div_ceil(k)).map(|s| (s * k).min(n)).collect();
    let schedule = Schedule { order, ends };
    let (class, _) = resolve_target(scorer, image, opts.target)?;
    let baseline = opts.baseline.build(image)?;
    let scores = run(scorer, image, &schedule, &baseline, class)?;
    Ok(finish(
        scores,
        schedule.fractions(),
        PerturbationConventions {
            method: "pixel-flipping",
            order: opts.order,
            unit: k,
            baseline: opts.baseline.describe(),
            score: scorer.kind(),
            target: opts.target,
            class,
        },
    ))
}

/// The patches of Quantus' centred grid: each a list of pixel indices (row-major within the
/// patch), patches in row-major grid order.
pub fn grid_patches(height: usize, width: usize, patch: usize) -> Vec<Vec<usize>> {
    let before = |dim: usize| {
        let rem = dim % patch;
        if rem == 0 { 0 } else { (patch - rem) / 2 }
    };
    let (top, left) = (before(height), before(width));
    let rows = (height + top).div_ceil(patch);
    let cols = (width + left).div_ceil(patch);
    let mut out = Vec::with_capacity(rows * cols);
    for gr in 0..rows {
        for gc in 0..cols {
            let mut cells = Vec::with_capacity(patch * patch);
            for dy in 0..patch {
                for dx in 0..patch {
                    let y = (gr * patch + dy) as isize - top as isize;
                    let x = (gc * patch + dx) as isize - left as isize;
                    if (0..height as isize).contains(&y) && (0..width as isize).contains(&x) {
                        cells.push(y as usize * width + x as usize);
                    }
                }
            }
            out.push(cells);
        }
    }
    out
}

/// Region perturbation: ranks the grid's patches by their summed relevance (MoRF: descending,
/// LeRF: ascending, stable) and replaces the first `regions` of them one after another.
pub fn region_perturbation(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &RegionPerturbationOptions,
) -> Result<PerturbationResult, MetricError> {
    image.check_map(map)?;
    if opts.patch == 0 || opts.regions == 0 {
        return Err(MetricError::Invalid(
            "region perturbation needs a patch size and a region count above 0".into(),
        ));
    }
    let patches = grid_patches(map.height, map.width, opts.patch);
    let sums: Vec<f32> = patches
        .iter()
        .map(|p| p.iter().map(|&i| map.data[i] as f64).sum::<f64>() as f32)
        .collect();
    let ranked = match opts.order {
        Order::Morf => descending(&sums),
        Order::Lerf => ascending(&sums),
    };
    let mut order = Vec::new();
    let mut ends = Vec::new();
    for &p in ranked.iter().take(opts.regions) {
        order.extend_from_slice(&patches[p]);
        ends.push(order.len());
    }
    // Fractions count against all pixels, so a partial run ends below 1.
    let n = map.len() as f64;
    let fractions: Vec<f64> = std::iter::once(0.0)
        .chain(ends.iter().map(|&e| e as f64 / n))
        .collect();
    let schedule = Schedule { order, ends };
    let (class, _) = resolve_target(scorer, image, opts.target)?;
    let baseline = opts.baseline.build(image)?;
    let scores = run(scorer, image, &schedule, &baseline, class)?;
    Ok(finish(
        scores,
        fractions,
        PerturbationConventions {
            method: "region-perturbation",
            order: opts.order,
            unit: opts.patch,
            baseline: opts.baseline.describe(),
            score: scorer.kind(),
            target: opts.target,
            class,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_centred_like_quantus() {
        // 5 wide, patch 2: pad 1 → 0 before, 1 after; 3 columns of patches.
        let p = grid_patches(1, 5, 2);
        assert_eq!(p, vec![vec![0, 1], vec![2, 3], vec![4]]);
        // 4 wide, patch 3: pad 2 → 1 before, 1 after.
        let p = grid_patches(1, 4, 3);
        assert_eq!(p, vec![vec![0, 1], vec![2, 3]]);
        let all: usize = grid_patches(7, 9, 4).iter().map(Vec::len).sum();
        assert_eq!(all, 63);
    }
}
