//! A study's `summary.json` (what it found, its conventions and its report table) and
//! `figures.json` (the list of its plots and pictures).

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{SCHEMA_VERSION, is_unversioned};

/// `summary.json` of a study. The study pipelines build it as a struct literal, so the version
/// is not a field: it is written as `schema_version` by the `Serialize` impl and checked by
/// [`super::read_record`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StudySummary {
    /// Study name (`faithfulness`, `stability`, `variability`, `compare`); a `summary.json`
    /// without one is not a study's.
    pub study: String,
    /// The command line, when run from the CLI.
    pub command: Option<Vec<String>>,
    /// `relevance` version.
    pub version: String,
    /// Conventions the numbers depend on (each study names its own).
    pub conventions: Value,
    /// Findings to show first.
    pub headline: Vec<String>,
    /// The report table (a digest of `metrics.csv`).
    pub table: Table,
    /// Paired tests on the same images (a digest of `*_tests.csv`), with a significance
    /// column; empty (and not written) for a study without any.
    pub tests: Table,
    /// Work done by this run and reused from an earlier one (per image × method × model);
    /// `null` for studies that do not resume.
    pub work: Value,
}

impl Serialize for StudySummary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut record = s.serialize_struct("StudySummary", 9)?;
        record.serialize_field("schema_version", &SCHEMA_VERSION)?;
        record.serialize_field("study", &self.study)?;
        record.serialize_field("command", &self.command)?;
        record.serialize_field("version", &self.version)?;
        record.serialize_field("conventions", &self.conventions)?;
        record.serialize_field("headline", &self.headline)?;
        record.serialize_field("table", &self.table)?;
        if self.tests.columns.is_empty() {
            record.skip_field("tests")?;
        } else {
            record.serialize_field("tests", &self.tests)?;
        }
        if self.work.is_null() {
            record.skip_field("work")?;
        } else {
            record.serialize_field("work", &self.work)?;
        }
        record.end()
    }
}

/// The small table of `summary.json`: cells are text, numbers or `null` (not computed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Table {
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Index of the column named `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// One entry of `figures.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Figure {
    /// Record layout ([`SCHEMA_VERSION`] when written now; 0: written before the field).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// PNG file name (relative to the output folder).
    pub file: String,
    /// SVG file name, for plots (the report shows it in place of the PNG); `null` otherwise.
    pub svg: Option<String>,
    /// Title.
    pub title: String,
    /// What it shows and how to read it.
    pub caption: String,
    /// Width in the report, in pixels (the picture's own when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
}

impl Figure {
    /// A figure of this build's record layout.
    pub fn new(file: String, svg: Option<String>, title: String, caption: String) -> Figure {
        Figure {
            schema_version: SCHEMA_VERSION,
            file,
            svg,
            title,
            caption,
            width: None,
        }
    }
}

/// `source.json` in a study's map cache (`cache/<model>/`): what `relevance review serve
/// STUDY --data DATA` needs to show the cached maps without reading anything outside the two
/// folders — the model card (to bring an input to the model's frame as the study did), the
/// methods, the target rule and every image of the selection by its path inside the data
/// folder and its SHA-256, so a data folder that is not the one the study read is refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapsSource {
    /// Record layout ([`SCHEMA_VERSION`] when written now).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// The weights file as the study recorded it (its cache key's `weights`).
    pub model: String,
    /// The model's label in the study's tables.
    pub label: String,
    /// The model card (`ModelCard` as JSON).
    pub card: Value,
    /// `true` or `predicted` ([`crate::studies::toolkit::TargetRule`]).
    pub target: String,
    /// The data source as the study was given it.
    pub data: String,
    /// The methods: label as typed, cache folder name, map style.
    pub methods: Vec<SourceMethod>,
    /// The study's whole selection of images, in its order.
    pub images: Vec<SourceImage>,
}

impl MapsSource {
    /// Its file name in a model's cache folder.
    pub const FILE: &'static str = "source.json";
}

/// One method of a [`MapsSource`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceMethod {
    /// Label as typed (the tables' `method`).
    pub label: String,
    /// Folder of its maps in the cache.
    pub folder: String,
    /// `signed`, `magnitude` or `unit`.
    pub style: String,
}

/// One image of a [`MapsSource`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceImage {
    /// The stem of its cache files.
    pub stem: String,
    /// Its path below the data folder (`/`-separated); `None` for an image without a file
    /// of its own there (IDX, or a list naming a file outside the list's folder).
    pub file: Option<String>,
    /// SHA-256 of the file's bytes (hex).
    pub sha256: Option<String>,
    /// The class index the target rule starts from.
    pub label: usize,
}
