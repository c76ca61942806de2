//! `shard.json`: what one shard of a sharded run did, so `relevance merge` can check that the
//! shards belong together and are finished before it builds the unsharded outputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::is_unversioned;

/// `OUT/shards/K-of-N/shard.json`, written when the shard starts (unfinished) and again when it
/// has written all its outputs (`finished` set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardManifest {
    /// Record layout ([`super::SCHEMA_VERSION`] when written now).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// The subcommand (`explain`, `faithfulness`, …).
    pub command: String,
    /// The command line without `--shard` (program name first): what one unsharded run of the
    /// same work would be; `relevance merge` re-runs it over the merged per-image results.
    pub argv: Vec<String>,
    /// Shard index `K` (1-based).
    pub index: usize,
    /// Shard count `N`.
    pub count: usize,
    /// The configuration the shards must share: every flag of the command (but `--shard`)
    /// with its value, positional inputs under `inputs`, and `version`.
    pub config: BTreeMap<String, String>,
    /// Model files with their SHA-256, in the order given.
    pub models: Vec<ModelFile>,
    /// The shard's samples: their position in the unsharded run's order and their name.
    pub items: Vec<ShardItem>,
    /// When the shard started (`YYYY-MM-DD HH:MM:SS UTC`).
    pub started: String,
    /// When it finished writing every output; absent while running or after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The study's work counts (`computed`, `reused`), where the command reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work: Option<serde_json::Value>,
}

/// A model file and its content hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    /// The path as given.
    pub path: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

/// One sample of a shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardItem {
    /// Position in the unsharded run's order (0-based).
    pub position: usize,
    /// The sample's output name (stem).
    pub name: String,
}

/// `OUT/slurm/jobs.json`: the jobs `relevance slurm submit` submitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlurmJobs {
    /// Record layout ([`super::SCHEMA_VERSION`] when written now).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// Job id of the array (task `K` runs shard `K/N`).
    pub array_job: String,
    /// Job id of the merge, which depends on the array (`afterok`).
    pub merge_job: String,
    /// `N`.
    pub shards: usize,
    /// The array's sbatch script.
    pub array_script: String,
    /// The merge's sbatch script.
    pub merge_script: String,
    /// When they were submitted.
    pub submitted: String,
}
