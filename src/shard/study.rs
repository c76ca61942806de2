//! The merge of a study: each shard's per-image results (the study's resume caches,
//! `per_image/…` and `cache/…`, and `maps/…` where written) gathered into `OUT`, so the study run unsharded
//! over `OUT` (by the CLI, through the study's own pipeline) reuses every one of them and only
//! computes its tables, statistics, figures and summary from the merged rows — the same code
//! that summarises an unsharded run. Afterwards the summary records the unsharded command and
//! the shards' work, and says so when the merge is partial.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::ShardSet;
use super::merge::Shards;
use crate::records::{StudySummary, read_record, write_record};

/// The folders of a study's per-image results, relative to its output folder.
pub const PER_IMAGE_FOLDERS: &[&str] = &["per_image", "maps", "cache"];

/// Places every shard's per-image results in `set` into `out`; returns the number of files.
pub fn gather(out: &Path, shards: &Shards, set: &ShardSet) -> Result<usize> {
    let mut copied = 0;
    for k in &set.members {
        let (dir, _) = &shards.found[k];
        for folder in PER_IMAGE_FOLDERS {
            copied += place_tree(&dir.join(folder), &out.join(folder))?;
        }
    }
    Ok(copied)
}

/// Places the regular files below `from` at the same places below `to` (atomically, as hard
/// links or copies); links are not followed, so nothing outside the shard folder is read, and
/// temporary files a killed run left behind are not results, so they stay out.
pub fn place_tree(from: &Path, to: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(0);
    };
    let mut copied = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", from.display()))?;
        let kind = entry.file_type()?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if kind.is_dir() {
            copied += place_tree(&src, &dst)?;
        } else if kind.is_file() && !crate::io::is_temp_name(&entry.file_name().to_string_lossy()) {
            crate::io::link_or_copy_atomic(&src, &dst)
                .with_context(|| format!("{} → {}: cannot copy", src.display(), dst.display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// After the study ran over the merged results in `out`: `summary.json` records the unsharded
/// command and the work the shards did (as one unsharded run records its own), and a partial
/// merge says which shards it covers in its first headline line.
pub fn finish_summary(out: &Path, shards: &Shards, set: &ShardSet) -> Result<()> {
    let path = out.join("summary.json");
    let mut summary: StudySummary = read_record(&path)?;
    summary.command = Some(shards.first().argv.clone());
    if !summary.work.is_null() {
        summary.work = shards_work(shards, set)?;
    }
    if set.members.len() < shards.count {
        summary.headline.insert(0, partial_note(shards, set));
    }
    write_record(&path, &summary)?;
    Ok(())
}

/// The work counts (`computed`, `reused`) of the shards in `set`, summed.
fn shards_work(shards: &Shards, set: &ShardSet) -> Result<serde_json::Value> {
    let (mut computed, mut reused) = (0u64, 0u64);
    for k in &set.members {
        let work = shards.found[k].1.work.as_ref();
        let count = |key: &str| work.and_then(|w| w.get(key)).and_then(|v| v.as_u64());
        match (count("computed"), count("reused")) {
            (Some(c), Some(r)) => {
                computed += c;
                reused += r;
            }
            _ => bail!(
                "{}: shard {k}/{} records no work counts",
                shards.found[k].0.join(super::MANIFEST).display(),
                shards.count
            ),
        }
    }
    Ok(serde_json::json!({"computed": computed, "reused": reused}))
}

/// The sentence a partial merge adds to the headline.
pub fn partial_note(shards: &Shards, set: &ShardSet) -> String {
    let covered: Vec<String> = set.members.iter().map(usize::to_string).collect();
    format!(
        "Partial merge: shards {} of {} ({}); the numbers cover only their images.",
        covered.join(", "),
        shards.count,
        shards.not_done()
    )
}
