//! Metrics against hand computations and Quantus fixtures.
//!
//! One test binary per layer, so a clean `cargo test` links the library a few times rather
//! than once per file; each module is one former test file.

#[path = "../metrics_common/mod.rs"]
mod metrics_common;

mod metrics_bench;
mod metrics_hand;
mod metrics_insertion;
mod metrics_quantus;
mod metrics_road;
mod metrics_similarity;
