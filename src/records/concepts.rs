//! `concepts.json` (one record per explained image, the same records `relevance concepts`
//! prints as JSON lines) and `atlas.json` (`relevance atlas`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::is_unversioned;

/// One image's concepts: the top channels of a layer and their conditional heatmaps.
/// `concepts.json` holds a list of these.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConceptsRecord {
    /// Record layout ([`super::SCHEMA_VERSION`] when written now; 0: written before the field).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// The input file as given.
    pub input: String,
    /// The input as the model saw it, inside the output folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_png: Option<PathBuf>,
    /// Name of the class explained.
    pub class: String,
    /// Index of the class explained.
    pub target: usize,
    /// The layer whose channels are the concepts.
    pub layer: String,
    /// LRP composite.
    pub composite: String,
    /// Residual-sum rule.
    pub resnet_skip: String,
    /// Starting relevance.
    pub start: String,
    /// The relevance the pass started from.
    pub explained: f64,
    /// The top channels, most relevant first.
    pub concepts: Vec<RankedConceptRecord>,
    /// One conditional heatmap per drawn channel set.
    pub heatmaps: Vec<ConceptHeatmap>,
    /// Attribution graphs (`--graph`), as `relevance::methods::crp` builds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphs: Option<Value>,
}

/// A channel of a concept ranking.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RankedConceptRecord {
    /// Channel index.
    pub channel: usize,
    /// Its share `R_c / Σ|R|` of the layer's relevance.
    pub relevance: f64,
    /// Its relevance `R_c`.
    pub raw: f64,
}

/// The conditional heatmap of a set of channels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConceptHeatmap {
    /// The channels conditioned on.
    pub channels: Vec<usize>,
    /// Raw map.
    pub npy: PathBuf,
    /// Picture.
    pub png: PathBuf,
    /// Sum of the map.
    pub relevance: f64,
}

/// `atlas.json`: per channel of a layer, the data-set images where it is most relevant and most
/// activated. Mirrors `methods::crp::atlas::Atlas`, which builds it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AtlasRecord {
    /// Record layout ([`super::SCHEMA_VERSION`] when written now; 0: written before the field).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// Layer name.
    pub layer: String,
    /// LRP composite.
    pub composite: String,
    /// Residual-sum rule.
    pub skip: String,
    /// Starting relevance.
    pub start: String,
    /// References per mode.
    pub top_k: usize,
    /// The images, indexed by the references.
    pub samples: Vec<AtlasSample>,
    /// One entry per drawn channel.
    pub channels: Vec<AtlasChannel>,
}

/// An image of the atlas's data set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AtlasSample {
    /// The image file.
    pub file: PathBuf,
    /// Class whose relevance was measured.
    pub target: usize,
    /// `label` (the image's folder names the class) or `predicted`.
    pub target_source: String,
}

/// The atlas of one channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AtlasChannel {
    /// Channel index.
    pub channel: usize,
    /// Most relevant references, best first.
    pub relevance: Vec<AtlasReference>,
    /// Most activating references, best first.
    pub activation: Vec<AtlasReference>,
    /// PNG file (relative to the output folder).
    pub image: String,
}

/// One drawn reference of a channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AtlasReference {
    /// Index into [`AtlasRecord::samples`].
    pub sample: usize,
    /// Normalised channel score.
    pub score: f32,
    /// `[y, x]` of the reference neuron in the layer's map.
    pub neuron: [usize; 2],
    /// Receptive-field crop in input pixels.
    pub crop: AtlasCrop,
}

/// A crop box in input pixels (first and last row and column).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtlasCrop {
    /// First row.
    pub y0: usize,
    /// Last row.
    pub y1: usize,
    /// First column.
    pub x0: usize,
    /// Last column.
    pub x1: usize,
}
