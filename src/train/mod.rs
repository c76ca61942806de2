//! Training CNNs on labelled images: PyTorch-equivalent optimisers, the training loop on burn's
//! autodiff, checkpoints that resume exactly, classification metrics, fine-tuning with a frozen
//! backbone and ensembles of seeds.

pub mod checkpoint;
pub mod ensemble;
pub mod eval;
pub mod head;
pub mod optim;
pub mod trainer;

pub use ensemble::{EnsembleRecord, open_data, parse_seeds, train_ensemble};
pub use optim::{Optimizer, OptimizerKind, Schedule};
pub use trainer::{TrainConfig, TrainData, TrainOutcome, Verbosity, train_model};

use std::path::{Path, PathBuf};

use crate::data::DataError;
use crate::engine::EngineError;
use crate::graph::GraphError;
use crate::graph::import::ImportError;

/// Errors while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A forward/backward failure.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A graph or parameter problem.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Unreadable starting weights.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A file that cannot be written or read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The run stopped on request after this many finished epochs (see `RunOptions`).
    #[error("stopped after epoch {0} as requested")]
    Interrupted(usize),
    /// Any other invalid request.
    #[error("{0}")]
    Invalid(String),
}

impl TrainError {
    /// A file error.
    pub fn file(path: &Path, reason: impl Into<String>) -> Self {
        TrainError::File {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
