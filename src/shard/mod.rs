//! Sharded runs: one command cut into `N` deterministic shards (array tasks of a cluster
//! scheduler), each writing under `OUT/shards/K-of-N/` with a manifest ([`ShardManifest`]), and
//! `relevance merge OUT` building from them exactly what one unsharded run writes.
//!
//! - [`run`]: a shard's life — its folder, its configuration and model hashes, the manifest
//!   written unfinished at the start and finished at the end, skipping a finished shard;
//! - [`merge`]: reading the shards' manifests, refusing ones that do not belong together
//!   (naming the field), listing missing or unfinished shards, `--status`;
//! - [`explain`]: the merge of `relevance explain` (rows, files, grid and `explain.json`);
//! - [`atlas`]: the merge of `relevance atlas` (the shards' best references per channel);
//! - [`concepts`]: the merge of `relevance concepts` (records, input folders, `concepts.json`);
//! - [`predict`]: the merge of `relevance predict --out` (`predictions.jsonl` in input order);
//! - [`study`]: the merge of a study (its per-image result caches gathered, then the study's own
//!   summary phase over them, run by the CLI);
//! - [`train`]: the merge of `train --seeds` (each shard's `seed-*` folders and one
//!   `ensemble.json` of all members);
//! - [`slurm`]: the sbatch scripts of an array and its merge job, and their submission.
//!
//! The partition itself is [`crate::data::shard`], so the pipelines below can select their
//! samples with it.
//!
//! [`ShardManifest`]: crate::records::ShardManifest

pub mod atlas;
pub mod concepts;
pub mod explain;
pub mod merge;
pub mod predict;
pub mod run;
pub mod slurm;
pub mod study;
pub mod train;

pub use crate::data::shard::{Shard, ShardSet};

/// The folder holding a run's shards.
pub fn shards_dir(out: &std::path::Path) -> std::path::PathBuf {
    out.join("shards")
}

/// The folder of one shard's outputs: `OUT/shards/K-of-N`.
pub fn shard_dir(out: &std::path::Path, shard: Shard) -> std::path::PathBuf {
    shards_dir(out).join(shard.folder())
}

/// The manifest file of a shard folder.
pub const MANIFEST: &str = "shard.json";
