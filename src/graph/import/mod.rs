//! Bringing weights and graphs in: state dicts (`.safetensors`, PyTorch `.pth`) for the zoo's
//! architectures, and ONNX files as whole graphs.

pub mod onnx;
pub mod pickle;
pub mod pth;
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
    /// A pickle that references something other than tensors and dicts (it could run code).
    #[error("refusing to load {path}: the pickle references {global}, which is not a tensor")]
    Refused {
        /// The file.
        path: PathBuf,
        /// The referenced `module.name`.
        global: String,
    },
    /// The weights do not fit the architecture. (The field is not called `source`, so error
    /// chains — anyhow's `{:#}` — do not print the problem twice.)
    #[error("{path}: {problem}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The mismatch.
        problem: GraphError,
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

/// What kind of model file a path is, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.safetensors` state dict.
    Safetensors,
    /// `torch.save` state dict: `.pth`, `.pt`, `.bin` (Hugging Face's `pytorch_model.bin`), `.ckpt`.
    Torch,
    /// A whole ONNX graph.
    Onnx,
}

impl Format {
    /// The format of `path` from its extension (case-insensitive).
    pub fn of(path: &Path) -> Result<Format, ImportError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "safetensors" => Ok(Format::Safetensors),
            "pth" | "pt" | "bin" | "ckpt" => Ok(Format::Torch),
            "onnx" => Ok(Format::Onnx),
            other => Err(ImportError::file(
                path,
                format!(
                    "unsupported weights format '.{other}' (expected .safetensors, .pth, .pt, .bin or .onnx)"
                ),
            )),
        }
    }
}

/// Reads a state dict from a `.safetensors` or `torch.save` file.
pub fn read_state_dict(path: &Path) -> Result<Vec<NamedTensor>, ImportError> {
    match Format::of(path)? {
        Format::Safetensors => safetensors::read(path),
        Format::Torch => pth::read(path),
        Format::Onnx => Err(ImportError::file(
            path,
            "an ONNX file is a whole model, not a state dict",
        )),
    }
}
