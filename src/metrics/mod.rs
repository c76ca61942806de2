//! Metrics that judge explanations: pure functions over plain data.
//!
//! A heatmap is a [`MapView`] (`&[f32]` in row-major `[H, W]` order), an image a [`ImageView`]
//! (`&[f32]` in `[C, H, W]` order, already in the model's input space), a mask a `&[bool]` of
//! `H·W` entries. Metrics that need the model see it only through a [`Scorer`] (a batch of images
//! → class scores) and, where they need explanations of perturbed inputs, through a [`MapFn`]; so
//! they do not depend on a model type. [`ModelScorer`] and [`ExplainerMaps`] adapt a
//! [`graph::Model`](crate::graph::Model) and a [`methods::Explainer`](crate::methods::Explainer).
//!
//! | family | module | metrics |
//! |---|---|---|
//! | faithfulness | [`insertion`] | insertion, deletion, their difference (RISE) |
//! | | [`perturbation`] | pixel flipping, region perturbation (MoRF / LeRF, AOPC) |
//! | | [`faithfulness`] | faithfulness correlation (Bhatt et al. 2020) |
//! | | [`road`] | ROAD, MoRF / LeRF with noisy linear imputation ([`imputation`]; Rong et al. 2022) |
//! | robustness | [`sensitivity`] | max- and average-sensitivity (Yeh et al. 2019) |
//! | complexity | [`complexity`] | sparseness (Gini), complexity (entropy) |
//! | localisation | [`localisation`] | pointing game, relevance mass / rank accuracy |
//! | | [`threshold`] | top-k, Otsu and fixed thresholds, IoU of thresholded maps |
//! | | [`centre`] | centre of mass |
//! | axiomatic | [`conservation`] | conservation error |
//! | randomisation | [`randomisation`] | model-parameter randomisation, random logit |
//! | map comparison | [`similarity`] | Pearson, Spearman, SSIM, top-k IoU on a valid-pixel mask |
//!
//! Each function's documentation gives the formula and the paper, and where Quantus 0.6 differs
//! in convention, the parameter that reproduces Quantus. The checkerboard score of LRP maps lives
//! with LRP in `methods::lrp` (see "Metrics" in docs/methods.md).

pub mod centre;
pub mod complexity;
pub mod conservation;
pub mod curve;
pub mod explain;
pub mod faithfulness;
pub mod imputation;
pub mod insertion;
pub mod localisation;
pub mod order;
pub mod perturbation;
pub mod randomisation;
pub mod road;
pub mod scorer;
pub mod sensitivity;
pub mod similarity;
pub mod substrate;
pub mod threshold;

/// The checkerboard score of LRP maps (share of spectral energy at the stride-2 frequencies),
/// defined beside the LRP rules whose artefact it measures.
pub use crate::methods::lrp::checkerboard::{checkerboard_score, checkerboard_scores};
pub use explain::{ChannelReduce, ExplainerMaps, MapFn, ModelMapFn};
pub use scorer::{FollowedClass, ModelScorer, ScoreKind, Scorer, Scores};
pub use substrate::Substrate;

use crate::engine::EngineError;
use crate::graph::GraphError;
use crate::methods::MethodError;

/// Errors of the metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// Inputs whose sizes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A parameter outside its valid range.
    #[error("invalid parameter: {0}")]
    Invalid(String),
    /// The model failed to run.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A graph or parameter problem.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// An explanation method failed.
    #[error(transparent)]
    Method(#[from] MethodError),
}

/// A heatmap: `height·width` values in row-major order.
#[derive(Clone, Copy, Debug)]
pub struct MapView<'a> {
    /// The values, row by row.
    pub data: &'a [f32],
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl<'a> MapView<'a> {
    /// A view of `data` as an `[H, W]` map; fails if the length is not `H·W` or the map is empty.
    /// Non-finite values (NaN, ±∞) are refused, since every ordering and sum would be undefined.
    pub fn new(data: &'a [f32], [height, width]: [usize; 2]) -> Result<Self, MetricError> {
        if data.len() != height * width || data.is_empty() {
            return Err(MetricError::Shape(format!(
                "a map of shape [{height}, {width}] needs {} values, got {}",
                height * width,
                data.len()
            )));
        }
        check_finite(data, "map")?;
        Ok(MapView {
            data,
            height,
            width,
        })
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Always false (a view is never empty).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Value at row `r`, column `c`.
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.width + c]
    }
}

/// An image in the model's input space: `channels·height·width` values in `[C, H, W]` order.
#[derive(Clone, Copy, Debug)]
pub struct ImageView<'a> {
    /// The values, channel by channel, each row by row.
    pub data: &'a [f32],
    /// Channels.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl<'a> ImageView<'a> {
    /// A view of `data` as a `[C, H, W]` image; fails if the length does not match.
    pub fn new(
        data: &'a [f32],
        [channels, height, width]: [usize; 3],
    ) -> Result<Self, MetricError> {
        if data.len() != channels * height * width || data.is_empty() {
            return Err(MetricError::Shape(format!(
                "an image of shape [{channels}, {height}, {width}] needs {} values, got {}",
                channels * height * width,
                data.len()
            )));
        }
        Ok(ImageView {
            data,
            channels,
            height,
            width,
        })
    }

    /// Pixels per channel (`H·W`).
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Checks that `map` has this image's height and width.
    pub fn check_map(&self, map: &MapView) -> Result<(), MetricError> {
        if map.height != self.height || map.width != self.width {
            return Err(MetricError::Shape(format!(
                "map is [{}, {}] but the image is [{}, {}]",
                map.height, map.width, self.height, self.width
            )));
        }
        Ok(())
    }
}

/// Checks that a mask has one entry per pixel of `map`.
pub(crate) fn check_mask(mask: &[bool], pixels: usize, what: &str) -> Result<(), MetricError> {
    if mask.len() != pixels {
        return Err(MetricError::Shape(format!(
            "{what} has {} entries, the map has {pixels} pixels",
            mask.len()
        )));
    }
    Ok(())
}

/// Fails if any value is NaN or infinite.
pub(crate) fn check_finite(values: &[f32], what: &str) -> Result<(), MetricError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(MetricError::Invalid(format!(
            "{what} has a non-finite value ({}) at index {i}",
            values[i]
        ))),
        None => Ok(()),
    }
}

/// Checks that two maps have the same number of values.
pub(crate) fn check_same_len(a: &[f32], b: &[f32]) -> Result<(), MetricError> {
    if a.len() != b.len() {
        return Err(MetricError::Shape(format!(
            "maps of {} and {} values cannot be compared",
            a.len(),
            b.len()
        )));
    }
    Ok(())
}
