//! The merge of `relevance predict`: each shard's `predictions.jsonl` lines (one per input, in
//! the order of the shard's manifest items) put back in the unsharded run's order, written as
//! one `predictions.jsonl`.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::ShardSet;
use super::merge::Shards;

/// The file of the prediction lines, in the run folder and in each shard's folder.
pub const PREDICTIONS: &str = "predictions.jsonl";

/// Merges the predict shards in `set` into `out`; returns the number of lines.
pub fn merge(out: &Path, shards: &Shards, set: &ShardSet) -> Result<usize> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for k in &set.members {
        let (dir, manifest) = &shards.found[k];
        let path = dir.join(PREDICTIONS);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let shard_lines: Vec<&str> = text.lines().collect();
        if shard_lines.len() != manifest.items.len() {
            bail!(
                "{}: {} line(s) for the {} input(s) in {}",
                path.display(),
                shard_lines.len(),
                manifest.items.len(),
                super::MANIFEST
            );
        }
        for (item, line) in manifest.items.iter().zip(shard_lines) {
            lines.push((item.position, format!("{line}\n")));
        }
    }
    lines.sort_by_key(|(position, _)| *position);
    let n = lines.len();
    let text: String = lines.into_iter().map(|(_, line)| line).collect();
    let path = out.join(PREDICTIONS);
    crate::io::write_text_atomic(&path, &text)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(n)
}
