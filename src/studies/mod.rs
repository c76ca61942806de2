//! Study pipelines: each runs explanation methods × models over a data set and writes
//! `metrics.csv`, `per_image.csv`, `summary.json`, `figures.json`, plots and per-image raw results
//! into one output folder (see `STUDIES_CONTRACT`/README "Studies"). Every pipeline is a library
//! function taking a plain options struct, so the CLI and `relevance demo` share it; a re-run
//! with the same options reuses the per-image results already written.

pub mod common;
pub mod faithfulness;
pub mod stability;

use std::path::PathBuf;

/// What a finished study returns: where it wrote and the findings to show first.
#[derive(Clone, Debug)]
pub struct StudyOutcome {
    /// The output folder.
    pub out: PathBuf,
    /// One-sentence findings (also in `summary.json`).
    pub headline: Vec<String>,
}

/// Errors of the study pipelines.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A data set problem.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A model could not be loaded.
    #[error(transparent)]
    Import(#[from] crate::graph::import::ImportError),
    /// A metric failed.
    #[error(transparent)]
    Metric(#[from] crate::metrics::MetricError),
    /// An explanation method failed.
    #[error(transparent)]
    Method(#[from] crate::methods::MethodError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// Options that cannot be used together or are out of range.
    #[error("{0}")]
    Invalid(String),
}

impl StudyError {
    /// A file error with its path.
    pub fn file(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        StudyError::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
