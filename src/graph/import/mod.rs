//! Bringing weights and graphs in: state dicts (`.safetensors`, PyTorch `.pth`) for the zoo's
//! architectures, and ONNX files as whole graphs.

pub mod safetensors;

use std::path::{Path, PathBuf};

use super::GraphError;

/// Errors while importing a model.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not what its extension promises, or is damaged.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights do not fit the architecture.
    #[error("{path}: {source}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The mismatch.
        source: GraphError,
    },
}

impl ImportError {
    /// A file error.
    pub fn file(path: &Path, reason: impl Into<String>) -> Self {
        ImportError::File {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// One named tensor of a state dict.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// State-dict key.
    pub key: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values as float32, row-major.
    pub values: Vec<f32>,
}

/// Reads a state dict from a `.safetensors` file (other formats come with their importers).
pub fn read_state_dict(path: &Path) -> Result<Vec<NamedTensor>, ImportError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "safetensors" => safetensors::read(path),
        other => Err(ImportError::file(
            path,
            format!(
                "unsupported weights format '.{other}' (expected .safetensors, .pth, .pt or .onnx)"
            ),
        )),
    }
}
