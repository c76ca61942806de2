//! `explain.json`: what `relevance explain` wrote — the model, the methods with their
//! parameters, and per input the class explained and the files of each map.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::is_unversioned;
use crate::methods::MapStyle;

/// `explain.json`. Missing fields read as empty, as the report always tolerated: records
/// written by hand or by older builds still show what they hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainRecord {
    /// Record layout ([`super::SCHEMA_VERSION`] when written now; 0: written before the field).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// The weights file as given on the command line.
    pub model: String,
    /// Architecture of the model card.
    pub arch: Option<String>,
    /// Class names in index order.
    pub classes: Vec<String>,
    /// `--target` as given (`pred`, a class index or name, …).
    pub target: String,
    /// The layer each CAM-based method used, by method name.
    pub layers: BTreeMap<String, String>,
    /// The methods, in column order.
    pub methods: Vec<MethodRecord>,
    /// One entry per explained input.
    pub outputs: Vec<OutputRecord>,
    /// The overview grid, `null` when no row was drawn.
    pub grid: Option<GridRecord>,
    /// LRP settings shared by every `lrp-*` method.
    pub lrp: LrpRecord,
    /// `relevance` version that wrote it.
    pub version: String,
}

/// One method of an explain run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MethodRecord {
    /// Method name (`saliency`, `grad-cam`, `lrp-epsilon-plus-flat`, …).
    pub name: String,
    /// Canonical method name from the registry (`lrp:epsilon-plus-flat` for the spec
    /// `lrp-epsilon-plus-flat`); absent in records from before method specs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Shape and range of its raw map, in words.
    pub map: String,
    /// How its maps are drawn: `signed`, `magnitude` or `unit` (see [`MethodRecord::style`]).
    pub style: String,
    /// The method's own parameters (each method names its own; see `Explainer::params`).
    pub params: Value,
}

impl MethodRecord {
    /// The drawing style; signed when unknown (the colour bar of signed maps is the most
    /// cautious reading: it shows evidence for and against).
    pub fn style(&self) -> MapStyle {
        MapStyle::from_name(&self.style)
    }
}

/// One explained input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputRecord {
    /// The input file as given.
    pub input: String,
    /// The input as the model saw it, written beside the maps (file name in the output folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_png: Option<String>,
    /// Stem of every file of this input.
    pub stem: String,
    /// The class explained.
    pub target: TargetRecord,
    /// By method name: its map files; by `<method>.conservation`: an LRP map's conservation.
    pub files: BTreeMap<String, OutputFile>,
}

impl OutputRecord {
    /// The overlay PNG of `method`'s map, if recorded.
    pub fn map_png(&self, method: &str) -> Option<&str> {
        match self.files.get(method)? {
            OutputFile::Map(files) => Some(&files.png),
            _ => None,
        }
    }
}

/// The class an output explains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetRecord {
    /// Class index.
    pub index: usize,
    /// Class name.
    pub name: String,
    /// Its predicted probability (`null` in the file when not finite).
    #[serde(deserialize_with = "null_as_nan")]
    pub prob: f64,
}

/// A missing probability is unknown (NaN), not 0.
impl Default for TargetRecord {
    fn default() -> Self {
        TargetRecord {
            index: 0,
            name: String::new(),
            prob: f64::NAN,
        }
    }
}

/// An entry of [`OutputRecord::files`]: the two files of a map, a conservation check, or
/// something this build does not know (kept as it is, so a newer entry does not make the
/// whole record unreadable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OutputFile {
    /// A map's files.
    Map(MapFiles),
    /// An LRP map's conservation.
    Conservation(ConservationRecord),
    /// Anything else.
    Other(Value),
}

/// The raw map and its overlay, as file names in the output folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapFiles {
    /// Raw map (`.npy`).
    pub npy: String,
    /// Overlay (`.png`).
    pub png: String,
}

/// Conservation of one LRP map (`null` in the file where a value is not finite).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConservationRecord {
    /// The starting relevance (target logit, probability or 1).
    #[serde(deserialize_with = "null_as_nan")]
    pub explained: f64,
    /// Sum of the map.
    #[serde(deserialize_with = "null_as_nan")]
    pub total: f64,
    /// `|total − explained| / |explained|`.
    #[serde(deserialize_with = "null_as_nan")]
    pub error: f64,
}

/// The overview grid `explain` draws.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GridRecord {
    /// PNG file name in the output folder.
    pub file: String,
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels (`input`, then the methods).
    pub columns: Vec<String>,
    /// Whether every explained input has a row.
    pub complete: bool,
}

/// LRP settings of an explain run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LrpRecord {
    /// Residual-sum rule (`--resnet-skip`).
    pub resnet_skip: String,
    /// Starting relevance (`logit`, `probability`, `one`).
    pub relevance_start: String,
    /// How the conservation error is defined, in words.
    pub conservation_error: String,
}

/// JSON has no NaN: serde_json writes a non-finite number as `null`, so `null` reads back as NaN.
fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
