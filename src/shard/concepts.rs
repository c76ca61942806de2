//! The merge of `relevance concepts`: every shard's records in the unsharded run's order (each
//! shard's manifest gives its inputs' positions and folder names), each input's folder placed
//! in `OUT` byte for byte, the files the records name moved from the shard's folder to `OUT`,
//! and one `concepts.json`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::ShardSet;
use super::merge::Shards;
use crate::records::{ConceptsRecord, read_record, write_record};

/// Merges the concepts shards in `set` into `out`; returns the number of records.
pub fn merge(out: &Path, shards: &Shards, set: &ShardSet) -> Result<usize> {
    let mut rows: Vec<(usize, ConceptsRecord)> = Vec::new();
    for k in &set.members {
        let (dir, manifest) = &shards.found[k];
        let path = dir.join("concepts.json");
        let records: Vec<ConceptsRecord> = read_record(&path)?;
        if records.len() != manifest.items.len() {
            bail!(
                "{}: {} record(s) for the {} input(s) in {}",
                path.display(),
                records.len(),
                manifest.items.len(),
                super::MANIFEST
            );
        }
        for (item, mut record) in manifest.items.iter().zip(records) {
            let folder = plain_name(&item.name, &path)?;
            super::study::place_tree(&dir.join(folder), &out.join(folder))?;
            relocate(&mut record, &out.join(folder), &path)?;
            rows.push((item.position, record));
        }
    }
    rows.sort_by_key(|(position, _)| *position);
    let records: Vec<ConceptsRecord> = rows.into_iter().map(|(_, r)| r).collect();
    write_record(&out.join("concepts.json"), &records)?;
    Ok(records.len())
}

/// An input's folder name from a manifest: one plain path component, so nothing outside the
/// shard and run folders is read or written.
fn plain_name<'a>(name: &'a str, source: &Path) -> Result<&'a str> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("{}: '{name}' is not a plain folder name", source.display());
    }
    Ok(name)
}

/// Points the files a record names at `folder` (its input's folder in the run), where the
/// unsharded run writes them: the same file names, in the run's folder instead of the shard's.
fn relocate(record: &mut ConceptsRecord, folder: &Path, source: &Path) -> Result<()> {
    let moved = |p: &Path| -> Result<PathBuf> {
        match p.file_name() {
            Some(name) => Ok(folder.join(name)),
            None => bail!("{}: '{}' names no file", source.display(), p.display()),
        }
    };
    if let Some(png) = &record.input_png {
        record.input_png = Some(moved(png)?);
    }
    for heatmap in &mut record.heatmaps {
        heatmap.npy = moved(&heatmap.npy)?;
        heatmap.png = moved(&heatmap.png)?;
    }
    Ok(())
}
