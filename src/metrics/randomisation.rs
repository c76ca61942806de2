//! Sanity checks by randomisation: an explanation that does not change when the model or the
//! explained class does cannot be explaining the model's decision.
//!
//! - **Model-parameter randomisation** (Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim 2018,
//!   "Sanity checks for saliency maps", NeurIPS): the parameters of the layers are re-drawn from
//!   their initialisers ([`graph::init`](crate::graph::init)), cascading from the output layer
//!   down (or each layer alone, "independent"), and the maps of the randomised model are compared
//!   with the original maps by Spearman rank correlation, SSIM and top-k IoU. A layer is a node
//!   owning parameters (convolution, linear, and BatchNorm unless excluded); BatchNorm re-drawn
//!   is the identity transform of a fresh network (γ = 1, β = 0, μ = 0, σ² = 1), as PyTorch's
//!   `reset_parameters`. Quantus 0.6's `MPRT` does the same over every module with
//!   `reset_parameters` (BatchNorm included) and compares `|maps|` (its `abs=True` default) by
//!   Spearman correlation.
//! - **Random logit** (Sixt, Granz & Landgraf 2020, "When explanations lie: why many modified BP
//!   attributions fail", ICML): the map for the target compared with the map for another class
//!   drawn at random; high similarity means the method ignores the class. Quantus 0.6's
//!   `RandomLogit` defaults to SSIM on the flattened maps (a 1-D SSIM); we report 2-D SSIM,
//!   Spearman and top-k IoU.

use serde::Serialize;

use super::explain::{MapFn, ModelMapFn};
use super::scorer::image_tensor;
use super::similarity::{SsimOptions, spearman, ssim, top_k_iou};
use super::{ImageView, MapView, MetricError};
use crate::graph::init::init_params;
use crate::graph::{Model, NodeId, Op, ParamStore};
use crate::rng::Rng;
use crate::tensor::T4;

/// Similarities of a randomised map to the original one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Similarities {
    /// Spearman rank correlation.
    pub spearman: f64,
    /// SSIM ([`SsimOptions`] of the options).
    pub ssim: f64,
    /// IoU of the top-k pixels.
    pub top_k_iou: f64,
}

/// How maps are compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// Compare `|maps|` (Adebayo et al. show both; Quantus' MPRT default is true).
    pub abs: bool,
    /// Fraction of pixels in the top-k IoU (default 0.1).
    pub top_fraction: f64,
    /// SSIM parameters (default Wang et al.'s, [`SsimOptions::default`]).
    pub ssim: SsimOptions,
}

impl Default for Comparison {
    fn default() -> Self {
        Comparison {
            abs: true,
            top_fraction: 0.1,
            ssim: SsimOptions::default(),
        }
    }
}

impl Comparison {
    /// Compares two `[H, W]` maps.
    pub fn compare(
        &self,
        a: &[f32],
        b: &[f32],
        shape: [usize; 2],
    ) -> Result<Similarities, MetricError> {
        let prep = |v: &[f32]| -> Vec<f32> {
            if self.abs {
                v.iter().map(|x| x.abs()).collect()
            } else {
                v.to_vec()
            }
        };
        let (a, b) = (prep(a), prep(b));
        let (va, vb) = (MapView::new(&a, shape)?, MapView::new(&b, shape)?);
        Ok(Similarities {
            spearman: spearman(&a, &b, None)?,
            // Both maps share a shape, so SSIM fails only for maps smaller than its window:
            // NaN there rather than failing the whole test.
            ssim: ssim(&va, &vb, None, &self.ssim).unwrap_or(f64::NAN),
            top_k_iou: top_k_iou(&a, &b, self.top_fraction, None)?,
        })
    }
}

/// In which order layers are randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cascade {
    /// From the output layer down, keeping earlier randomisations (Adebayo et al.'s cascading).
    TopDown,
    /// Each layer alone, the others original.
    Independent,
}

/// Options of the model-parameter randomisation test.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomisationOptions {
    /// Cascading or independent (default cascading).
    pub cascade: Cascade,
    /// Randomise BatchNorm layers too (default true, as Quantus).
    pub include_batchnorm: bool,
    /// Seed of the fresh parameters.
    pub seed: u64,
    /// How maps are compared.
    pub comparison: Comparison,
}

impl Default for RandomisationOptions {
    fn default() -> Self {
        RandomisationOptions {
            cascade: Cascade::TopDown,
            include_batchnorm: true,
            seed: 0,
            comparison: Comparison::default(),
        }
    }
}

/// The similarities after randomising one more layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerStep {
    /// Node name of the layer randomised at this step.
    pub layer: String,
    /// One entry per image.
    pub per_image: Vec<Similarities>,
}

/// Result of the model-parameter randomisation test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Randomisation {
    /// Steps in randomisation order.
    pub steps: Vec<LayerStep>,
    /// Cascade used.
    pub cascade: Cascade,
    /// Whether `|maps|` were compared.
    pub abs: bool,
}

/// The layers of `model` in top-down order: nodes owning parameters (no constants), BatchNorm
/// optional.
pub fn layers_top_down(model: &Model, include_batchnorm: bool) -> Vec<NodeId> {
    model
        .graph
        .nodes
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, n)| match n.op {
            Op::Conv2d(_) | Op::Linear(_) => true,
            Op::BatchNorm(_) => include_batchnorm,
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// The randomisation test with fresh parameters drawn by
/// [`init_params`](crate::graph::init::init_params) from `opts.seed`.
pub fn model_parameter_randomisation(
    model: &Model,
    batch: &T4,
    targets: &[usize],
    explain: &dyn ModelMapFn,
    opts: &RandomisationOptions,
) -> Result<Randomisation, MetricError> {
    let fresh = init_params(&model.graph, opts.seed)?;
    model_parameter_randomisation_with(model, batch, targets, explain, &fresh, opts)
}

/// The randomisation test with given fresh parameters (`fresh` holds a value for every key of
/// the randomised layers).
pub fn model_parameter_randomisation_with(
    model: &Model,
    batch: &T4,
    targets: &[usize],
    explain: &dyn ModelMapFn,
    fresh: &ParamStore,
    opts: &RandomisationOptions,
) -> Result<Randomisation, MetricError> {
    let [n, _, h, w] = batch.dims();
    if targets.len() != n {
        return Err(MetricError::Shape(format!(
            "{} targets for {n} images",
            targets.len()
        )));
    }
    let plane = h * w;
    let original = explain.maps(model, batch.clone(), targets)?;
    if original.len() != n * plane {
        return Err(MetricError::Shape(format!(
            "the explainer returned {} values for {n} maps of {h}×{w}",
            original.len()
        )));
    }
    let mut randomised = model.clone();
    let mut steps = Vec::new();
    for id in layers_top_down(model, opts.include_batchnorm) {
        if opts.cascade == Cascade::Independent {
            randomised.params = model.params.clone();
        }
        let node = &model.graph.nodes[id];
        for key in node.op.param_keys() {
            randomised.params.insert(key, fresh.get(key)?.clone());
        }
        let maps = explain.maps(&randomised, batch.clone(), targets)?;
        if maps.len() != n * plane {
            return Err(MetricError::Shape(format!(
                "the explainer returned {} values for {n} maps after randomising '{}'",
                maps.len(),
                node.name
            )));
        }
        let per_image = (0..n)
            .map(|i| {
                let r = i * plane..(i + 1) * plane;
                opts.comparison
                    .compare(&original[r.clone()], &maps[r], [h, w])
            })
            .collect::<Result<_, _>>()?;
        steps.push(LayerStep {
            layer: node.name.clone(),
            per_image,
        });
    }
    Ok(Randomisation {
        steps,
        cascade: opts.cascade,
        abs: opts.comparison.abs,
    })
}

/// Result of the random-logit test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RandomLogit {
    /// The explained class.
    pub class: usize,
    /// The other class drawn.
    pub other_class: usize,
    /// Similarity of the two maps.
    pub similarity: Similarities,
}

/// The random-logit test: `map` (the explanation of `image` for `class`) against the
/// explanation for a class drawn uniformly from the `num_classes − 1` others with `seed`.
pub fn random_logit(
    explain: &dyn MapFn,
    image: &ImageView,
    map: &MapView,
    class: usize,
    num_classes: usize,
    seed: u64,
    comparison: &Comparison,
) -> Result<RandomLogit, MetricError> {
    if num_classes < 2 || class >= num_classes {
        return Err(MetricError::Invalid(format!(
            "random logit needs a class below {num_classes} and at least 2 classes"
        )));
    }
    let mut rng = Rng::derive(seed, "random-logit");
    let pick = rng.below(num_classes - 1);
    let other = if pick >= class { pick + 1 } else { pick };
    random_logit_with_class(explain, image, map, class, other, comparison)
}

/// The random-logit test against a given other class.
pub fn random_logit_with_class(
    explain: &dyn MapFn,
    image: &ImageView,
    map: &MapView,
    class: usize,
    other_class: usize,
    comparison: &Comparison,
) -> Result<RandomLogit, MetricError> {
    image.check_map(map)?;
    let other = explain.maps(image_tensor(image.data, image.shape(), 1), &[other_class])?;
    if other.len() != map.len() {
        return Err(MetricError::Shape(format!(
            "the explainer returned {} values for a map of {} pixels",
            other.len(),
            map.len()
        )));
    }
    Ok(RandomLogit {
        class,
        other_class,
        similarity: comparison.compare(map.data, &other, [map.height, map.width])?,
    })
}
