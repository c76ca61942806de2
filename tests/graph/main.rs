//! The model graph: importers (ONNX, .pth, safetensors) and the built-in zoo against torchvision.
//!
//! One test binary per layer, so a clean `cargo test` links the library a few times rather
//! than once per file; each module is one former test file.

mod import_brain_mri;
mod import_efficientnet_lite0;
mod import_keras;
mod import_onnx;
mod import_onnx_modern;
mod import_onnx_ops;
mod import_pth;
mod onnx_fixtures;
mod parameter_counts;
mod zoo_parity;
