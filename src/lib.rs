//! # relevance
//!
//! Explain and audit CNN image classifiers. Every explanation method is a backward pass with
//! per-node rules over one model graph (see `DESIGN.md`): the layers are
//!
//! - [`graph`]: the model IR, the built-in zoo, importers and model cards;
//! - [`engine`]: the forward pass with an activation cache and the rule-driven backward pass;
//! - [`data`]: images and tensors in, Pillow-exact resizing;
//! - [`metrics`]: measures of explanations (faithfulness, localisation, robustness, …);
//! - [`report`]: colormaps, heatmap pictures, plots and the HTML report;
//! - [`train`]: optimisers, the training loop, checkpoints and ensembles;
//! - [`studies`]: the study pipelines (ensemble variability, method comparison, …);
//! - [`bench`]: per-image speed and memory of the engine's workloads;
//! - [`methods`]: explanation methods (gradients, CAMs, guided backprop, …) by name;
//! - [`inspect`]: what a model reads and outputs, its CAM layers and LRP rules, before explaining;
//! - [`studies`]: study pipelines (faithfulness, stability, …) writing tables, plots and summaries;
//! - [`records`]: the typed, versioned run records every command writes and the report reads;
//! - [`cli`]: the `relevance` command line.

#![warn(missing_docs)]

pub mod alloc;
pub mod bench;
pub mod cli;
pub mod data;
pub mod engine;
pub mod graph;
pub mod inspect;
pub mod io;
pub mod methods;
pub mod metrics;
pub mod records;
pub mod report;
pub mod rng;
pub mod studies;
pub mod tensor;
pub mod train;

pub use graph::{Graph, Model, ModelCard};
pub use tensor::T4;
