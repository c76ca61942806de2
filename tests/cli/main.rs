//! Commands end to end through the built binary.
//!
//! One test binary per layer, so a clean `cargo test` links the library a few times rather
//! than once per file; each module is one former test file.

#[path = "../methods_common/mod.rs"]
mod methods_common;

mod crp_cli;
mod demo_report;
mod heads_cli;
mod inspect_cli;
mod methods_cli;
mod predict_cli;
mod quality_cli;
mod records_cli;
mod shard_cli;
mod study_sources_cli;

#[path = "../shard_common/mod.rs"]
mod shard_common;
