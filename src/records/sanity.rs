//! `sanity.json`: what the sanity-check study (`relevance sanity`) measured, per model × method:
//! similarity to the original map after each step of model-parameter randomisation (cascading
//! and independent, Adebayo et al. 2018) and against the map of a random other class (Sixt et
//! al. 2020), with bootstrap intervals, and which methods failed the check.

use serde::{Deserialize, Serialize};

use super::SCHEMA_VERSION;

/// `sanity.json` of a sanity-check study.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SanityRecord {
    /// Record layout ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Similarity below which a randomised map counts as changed: a method whose mean Spearman
    /// correlation stays at or above it after full cascading randomisation, or for a random
    /// other class, is flagged.
    pub threshold: f64,
    /// Whether `|maps|` were compared.
    pub abs: bool,
    /// Share of pixels of the top-k IoU.
    pub top_fraction: f64,
    /// Similarity curves: one per model × method × test.
    pub curves: Vec<SanityCurve>,
    /// The random-logit test per model × method.
    pub random_logit: Vec<SanityLogit>,
    /// The verdict per model × method.
    pub verdicts: Vec<SanityVerdict>,
}

impl SanityRecord {
    /// An empty record of this build's layout.
    pub fn new(threshold: f64, abs: bool, top_fraction: f64) -> Self {
        SanityRecord {
            schema_version: SCHEMA_VERSION,
            threshold,
            abs,
            top_fraction,
            ..SanityRecord::default()
        }
    }
}

/// A mean over images with its 95 % percentile-bootstrap interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanInterval {
    /// Mean.
    pub mean: f64,
    /// Lower end (`null` / NaN with fewer than two images).
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// Similarity after each randomisation step of one test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SanityCurve {
    /// Model label.
    pub model: String,
    /// Method label.
    pub method: String,
    /// `cascading` (top-down, keeping earlier layers randomised) or `independent`.
    pub test: String,
    /// One point per randomised layer, in randomisation order (output layer first).
    pub steps: Vec<SanityStep>,
}

/// Similarity of the maps after randomising `layer` (and, cascading, every layer above it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SanityStep {
    /// Node name of the layer.
    pub layer: String,
    /// Images compared.
    pub n: usize,
    /// Spearman rank correlation with the original map.
    pub spearman: MeanInterval,
    /// SSIM with the original map.
    pub ssim: MeanInterval,
    /// Top-k IoU with the original map.
    pub top_k_iou: MeanInterval,
}

/// The random-logit test of one model × method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SanityLogit {
    /// Model label.
    pub model: String,
    /// Method label.
    pub method: String,
    /// Images compared.
    pub n: usize,
    /// Spearman rank correlation of the target's map and a random other class's.
    pub spearman: MeanInterval,
    /// SSIM of the two maps.
    pub ssim: MeanInterval,
    /// Top-k IoU of the two maps.
    pub top_k_iou: MeanInterval,
}

/// Whether a method passed the checks on one model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SanityVerdict {
    /// Model label.
    pub model: String,
    /// Method label.
    pub method: String,
    /// Mean Spearman correlation after randomising every layer (cascading).
    pub after_cascade: f64,
    /// Mean Spearman correlation with a random other class's map.
    pub random_logit: f64,
    /// The map stays similar after full randomisation (`after_cascade ≥ threshold`).
    pub insensitive_to_model: bool,
    /// The map stays similar for another class (`random_logit ≥ threshold`).
    pub insensitive_to_class: bool,
}
