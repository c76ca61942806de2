//! `run.json`: the demo's record of its steps, as stand-alone commands with their times.

use serde::{Deserialize, Serialize};

use super::is_unversioned;

/// `run.json` of `relevance demo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    /// Record layout ([`super::SCHEMA_VERSION`] when written now; 0: written before the field).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// What wrote it (`relevance demo`).
    pub tool: String,
    /// `relevance` version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `quick` or `full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Start time (`YYYY-MM-DD HH:MM:SS UTC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Operating system, architecture and logical CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The steps so far, in order.
    pub steps: Vec<RunStep>,
    /// End time, once the run finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Total seconds, once the run finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// One step of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunStep {
    /// What the step does.
    pub name: String,
    /// The equivalent stand-alone command line.
    pub command: String,
    /// Seconds it took (0 when skipped).
    pub seconds: f64,
    /// Whether its output already existed, so it did not run.
    pub skipped: bool,
}
