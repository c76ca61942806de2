//! # relevance
//!
//! Explain and audit CNN image classifiers: load a model (the built-in zoo, `.safetensors`,
//! `.pth`, ONNX), explain it with a method prepared once for the model, measure the explanations
//! and report them.
//!
//! ```no_run
//! use relevance::{LoadOptions, MethodOptions, MethodSpec, Model};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Model::load("resnet18.pth".as_ref(), &LoadOptions {
//!     arch: Some("resnet18".into()),
//!     ..LoadOptions::default()
//! })?;
//! let x = relevance::data::image::load_input("scan.png".as_ref(), &model.card)?;
//! // A method with its parameters, prepared once (LRP folds BatchNorm and binds its rules here).
//! let lrp = MethodSpec::parse("lrp:epsilon-plus-flat(skip=split)", &MethodOptions::default())?
//!     .prepare(&model)?;
//! let explanation = lrp.explain(&x, &[1])?;
//! println!("{:?} explained {}", explanation.maps.dims(), explanation.explained[0]);
//! # Ok(()) }
//! ```
//!
//! The top level re-exports what that needs. The layers (see `DESIGN.md`):
//!
//! - [`graph`]: the model IR, the built-in zoo, importers and model cards;
//! - [`engine`]: the forward pass with an activation cache and the rule-driven backward pass;
//! - [`methods`]: the method [`registry`](methods::registry), [`MethodSpec`] → [`Prepared`] →
//!   [`Explanation`], and the methods themselves (gradients, CAMs, guided, LRP, CRP);
//! - [`explain`]: the `relevance explain` pipeline;
//! - [`records`]: the typed, versioned run records every command writes and the report reads;
//! - [`data`]: images and tensors in, Pillow-exact resizing;
//! - [`device`]: the run's device, CPU or a GPU through wgpu (`--device`, cargo feature `gpu`);
//! - [`metrics`]: measures of explanations (faithfulness, localisation, robustness, …);
//! - [`studies`]: the study pipelines (faithfulness, stability, variability, comparison);
//! - [`report`]: colormaps, heatmap pictures, plots and the HTML report;
//! - [`train`]: optimisers, the training loop, checkpoints and ensembles;
//! - [`cli`]: the `relevance` command line.
//!
//! Runnable examples on the built-in zoo: `examples/explain.rs`, `examples/lrp_composite.rs`,
//! `examples/faithfulness.rs` (`cargo run --release --example explain`).

#![warn(missing_docs)]

pub mod alloc;
pub(crate) mod bench;
pub mod cli;
pub mod data;
pub mod device;
pub mod engine;
pub mod explain;
pub mod graph;
pub(crate) mod inspect;
pub(crate) mod io;
pub mod methods;
pub mod metrics;
pub mod records;
pub mod report;
pub mod review;
pub mod rng;
pub mod shard;
pub mod studies;
pub mod tensor;
pub mod train;

pub use graph::{Graph, LoadOptions, Model, ModelCard};
pub use methods::lrp::Composite;
pub use methods::registry::MethodInfo;
pub use methods::{Explanation, MapKind, MapStyle, MethodOptions, MethodSpec, Prepared, Target};
pub use tensor::T4;
