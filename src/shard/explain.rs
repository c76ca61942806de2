//! The merge of `relevance explain`: every shard's rows in the unsharded run's order (each
//! shard's manifest gives its inputs' positions), their files copied byte for byte, the grid
//! redrawn from the rows' pictures as the unsharded run draws it, and one `explain.json`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::ShardSet;
use super::merge::Shards;
use crate::records::{ExplainRecord, GridRecord, OutputFile, OutputRecord};
use crate::records::{read_record, write_record};
use crate::report::heatmap::{grid, write_png};

/// The overview grid holds at most this many rows, as `relevance explain` draws it.
const MAX_GRID_ROWS: usize = 32;

/// Merges the explain shards in `set` into `out`; returns the number of rows.
pub fn merge(out: &Path, shards: &Shards, set: &ShardSet) -> Result<usize> {
    let mut rows: Vec<(usize, usize, OutputRecord, &Path)> = Vec::new();
    let mut template: Option<ExplainRecord> = None;
    for k in &set.members {
        let (dir, manifest) = &shards.found[k];
        let record: ExplainRecord = read_record(&dir.join("explain.json"))?;
        let position: HashMap<&str, usize> = manifest
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.position))
            .collect();
        for (seq, output) in record.outputs.iter().enumerate() {
            let Some(&p) = position.get(output.stem.as_str()) else {
                bail!(
                    "{}: row '{}' is not among the shard's inputs in {}",
                    dir.join("explain.json").display(),
                    output.stem,
                    super::MANIFEST
                );
            };
            rows.push((p, seq, output.clone(), dir.as_path()));
        }
        template.get_or_insert(record);
    }
    let Some(mut record) = template else {
        bail!("no shard to merge");
    };
    rows.sort_by_key(|(p, seq, _, _)| (*p, *seq));
    for (_, _, output, dir) in &rows {
        copy_row_files(dir, out, output)?;
    }
    let outputs: Vec<OutputRecord> = rows.into_iter().map(|(_, _, o, _)| o).collect();
    record.grid = write_grid(out, &record, &outputs)?;
    let n = outputs.len();
    record.outputs = outputs;
    write_record(&out.join("explain.json"), &record)?;
    Ok(n)
}

/// The files a row names: its input picture and every method's map and overlay.
fn row_files(output: &OutputRecord) -> Vec<&str> {
    let mut files: Vec<&str> = output.input_png.iter().map(String::as_str).collect();
    for file in output.files.values() {
        if let OutputFile::Map(m) = file {
            files.extend([m.npy.as_str(), m.png.as_str()]);
        }
    }
    files
}

/// Places a row's files from the shard folder into `out` (atomically, as hard links or
/// copies). The names come from a record: only plain file names are accepted, so nothing is
/// read or written outside the two folders.
fn copy_row_files(shard: &Path, out: &Path, output: &OutputRecord) -> Result<()> {
    for name in row_files(output) {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            bail!(
                "{}: '{name}' is not a plain file name",
                shard.join("explain.json").display()
            );
        }
        let (from, to) = (shard.join(name), out.join(name));
        crate::io::link_or_copy_atomic(&from, &to)
            .with_context(|| format!("{} → {}: cannot copy", from.display(), to.display()))?;
    }
    Ok(())
}

/// Redraws `grid.png` from the first rows' pictures (input, then each method's overlay), as
/// the unsharded run draws it from the same pictures.
fn write_grid(
    out: &Path,
    record: &ExplainRecord,
    outputs: &[OutputRecord],
) -> Result<Option<GridRecord>> {
    if outputs.is_empty() {
        return Ok(None);
    }
    let mut tiles = Vec::new();
    let mut labels = Vec::new();
    for output in outputs.iter().take(MAX_GRID_ROWS) {
        let mut row = Vec::new();
        let mut names: Vec<&str> = output.input_png.iter().map(String::as_str).collect();
        for method in &record.methods {
            if let Some(OutputFile::Map(m)) = output.files.get(&method.name) {
                names.push(m.png.as_str());
            }
        }
        for name in names {
            let path = out.join(name);
            let picture = image::open(&path)
                .with_context(|| format!("{}: cannot read", path.display()))?
                .to_rgb8();
            row.push(picture);
        }
        tiles.push(row);
        labels.push(format!("{}: {}", output.stem, output.target.name));
    }
    let path = out.join("grid.png");
    write_png(&path, &grid(&tiles, 4)).with_context(|| path.display().to_string())?;
    let mut columns = vec!["input".to_string()];
    columns.extend(record.methods.iter().map(|m| m.name.clone()));
    Ok(Some(GridRecord {
        file: "grid.png".into(),
        rows: labels,
        columns,
        complete: outputs.len() <= MAX_GRID_ROWS,
    }))
}
