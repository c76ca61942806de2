//! `explain.json`: the typed record of one `relevance explain` run, written and read through
//! serde so the report reads fields, not keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::methods::lrp::Conservation;

/// Version of the `explain.json` layout this build writes; folders without the field are from
/// before it existed and read as version 1.
pub const SCHEMA_VERSION: u32 = 1;

fn version_one() -> u32 {
    1
}

/// One `relevance explain` run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExplainRecord {
    /// Layout version ([`SCHEMA_VERSION`]).
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// The model file as given.
    pub model: String,
    /// Built-in architecture, if the card names one.
    #[serde(default)]
    pub arch: Option<String>,
    /// Class names by index.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The target rule as given (`pred`, an index, a name, `all`).
    #[serde(default)]
    pub target: String,
    /// The layer each layer-reading method used, by method label.
    #[serde(default)]
    pub layers: BTreeMap<String, String>,
    /// The methods, in column order.
    #[serde(default)]
    pub methods: Vec<MethodRecord>,
    /// One entry per explained row (input × target).
    #[serde(default)]
    pub outputs: Vec<OutputRecord>,
    /// The overview grid, if written.
    #[serde(default)]
    pub grid: Option<GridRecord>,
    /// The LRP conventions of the run's flags (a spec's parameters may override them per method).
    #[serde(default)]
    pub lrp: Option<LrpRecord>,
    /// `relevance` version that wrote it.
    #[serde(default)]
    pub version: String,
}

/// One method of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodRecord {
    /// Label: the spec as written; keys `OutputRecord::files`.
    pub name: String,
    /// Canonical method name (absent in records from before method specs).
    #[serde(default)]
    pub method: Option<String>,
    /// What the map file holds.
    #[serde(default)]
    pub map: String,
    /// How it is drawn: `signed`, `magnitude` or `unit`.
    #[serde(default)]
    pub style: String,
    /// The method's options.
    #[serde(default)]
    pub params: serde_json::Value,
}

/// One explained row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The input file as given.
    pub input: String,
    /// The image as the model saw it, inside the run folder.
    #[serde(default)]
    pub input_png: Option<String>,
    /// Output-name stem of the input.
    pub stem: String,
    /// The class explained.
    pub target: TargetRecord,
    /// Files per method label, and `<label>.conservation` for LRP methods.
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
}

/// Map files of one method, or the conservation of an LRP map.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileEntry {
    /// The `.npy` map and `.png` overlay.
    Map {
        /// Map file name.
        npy: String,
        /// Overlay file name.
        png: String,
    },
    /// Conservation of an LRP map.
    Conservation(Conservation),
}

/// The class a row explains.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRecord {
    /// Class index.
    pub index: usize,
    /// Class name.
    pub name: String,
    /// Its predicted probability.
    pub prob: f32,
}

/// The overview grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GridRecord {
    /// File name.
    pub file: String,
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// Whether every row is in it.
    pub complete: bool,
}

/// LRP conventions of the run's flags.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LrpRecord {
    /// Skip-connection treatment.
    pub resnet_skip: String,
    /// Starting relevance.
    pub relevance_start: String,
    /// How the conservation error is defined.
    pub conservation_error: String,
}

impl OutputRecord {
    /// The overlay of method `label`, if written.
    pub fn png(&self, label: &str) -> Option<&str> {
        match self.files.get(label)? {
            FileEntry::Map { png, .. } => Some(png),
            FileEntry::Conservation(_) => None,
        }
    }
}
