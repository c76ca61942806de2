//! `quality.json`: what the quality study (`relevance quality`) measured per model × method —
//! the mean over images of each map-quality metric with its bootstrap 95 % interval.

use serde::{Deserialize, Serialize};

use super::{MeanInterval, SCHEMA_VERSION};

/// `quality.json` of a quality study.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QualityRecord {
    /// Record layout ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// One entry per model × method.
    pub entries: Vec<QualityEntry>,
}

impl QualityRecord {
    /// An empty record of this build's layout.
    pub fn new() -> Self {
        QualityRecord {
            schema_version: SCHEMA_VERSION,
            entries: Vec::new(),
        }
    }
}

/// The metrics of one model × method: `metrics[k]` is the mean of metric `names[k]` (the
/// names are the `per_image.csv` columns, e.g. `checkerboard_ratio`, `sparseness`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityEntry {
    /// Model label.
    pub model: String,
    /// Method label.
    pub method: String,
    /// Images scored.
    pub n: usize,
    /// `(metric name, mean with its 95 % percentile-bootstrap interval)`, in table order.
    pub metrics: Vec<(String, MeanInterval)>,
}
