//! The study pipelines end to end on small synthetic data.
//!
//! One test binary per layer, so a clean `cargo test` links the library a few times rather
//! than once per file; each module is one former test file.

#[path = "../studies_common/mod.rs"]
mod studies_common;
#[path = "../studies_support/mod.rs"]
mod studies_support;

mod studies_compare;
mod studies_faithfulness;
mod studies_quality;
mod studies_sanity;
mod studies_stability;
mod studies_stability_crp;
mod studies_stats;
mod studies_toolkit;
mod studies_variability;
