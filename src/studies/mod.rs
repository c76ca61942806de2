//! Study pipelines (issue 8): each study is a library function `run(&Options, progress)` that
//! writes `metrics.csv`, `per_image.csv`, `summary.json`, `figures.json`, figures and raw
//! per-image outputs into one folder, resumably. The CLI (`relevance <study>`) and the demo call
//! them.
//!
//! | study | module | question |
//! |---|---|---|
//! | ensemble variability | [`variability`] | how much do maps and predictions vary across seeds? |
//! | method comparison | [`compare`] | do methods agree, and do their maps sit on the object or on a confounder? |
//! | faithfulness | [`faithfulness`] | does removing what a map marks change the prediction (insertion, deletion)? |
//! | stability | [`stability`] | does the map follow the image under augmentations? |
//! | sanity checks | [`sanity`] | do the maps change when the model's parameters or the class are randomised? |
//!
//! [`fit`] and [`stats`] hold the statistics the tables report: means and fits, bootstrap
//! intervals, paired tests with Holm's correction, and confidence bands.

pub mod compare;
pub mod ensembles;
pub mod faithfulness;
pub mod fit;
pub mod maps;
pub mod paired;
pub mod quality;
pub mod sanity;
pub mod stability;
pub mod stats;
pub mod toolkit;
pub mod variability;

use std::path::PathBuf;

/// What a study returns: where it wrote, and the findings a reader should see first.
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
    /// Options that cannot work together.
    #[error("{0}")]
    Invalid(String),
    /// A data set problem.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A model that cannot be loaded.
    #[error(transparent)]
    Import(#[from] crate::graph::import::ImportError),
    /// An explanation method failed.
    #[error(transparent)]
    Method(#[from] crate::methods::MethodError),
    /// A metric failed.
    #[error(transparent)]
    Metric(#[from] crate::metrics::MetricError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

impl StudyError {
    /// An error about `path`.
    pub fn file(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        StudyError::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
