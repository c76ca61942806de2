//! The merge of `relevance atlas`: every shard's candidates (`candidates.json`: its samples,
//! numbered in the whole data set, and each channel's best references among them) combined
//! into the global best `k` per channel ([`merge_candidates`], the tie-break of one unsharded
//! scan); the CLI then draws them as the unsharded run draws its own.

use anyhow::{Context, Result};

use super::ShardSet;
use super::merge::Shards;
use crate::methods::crp::atlas::{Candidates, merge_candidates};

/// The file of a shard's candidates in its folder.
pub const CANDIDATES: &str = "candidates.json";

/// The candidates of the shards in `set`, merged.
pub fn merged_candidates(shards: &Shards, set: &ShardSet) -> Result<Candidates> {
    let mut parts = Vec::with_capacity(set.members.len());
    for k in &set.members {
        let path = shards.found[k].0.join(CANDIDATES);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let part: Candidates = serde_json::from_str(&text)
            .with_context(|| format!("{}: not atlas candidates", path.display()))?;
        parts.push(part);
    }
    Ok(merge_candidates(parts)?)
}
