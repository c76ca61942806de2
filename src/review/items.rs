//! The items raters judge: one per input × method of every `explain.json` below the run
//! folders.
//!
//! An item is known by its id, a content hash (SHA-256 of the input picture, the raw map, the
//! model and the method), so the same explanation keeps its answers when the folder moves, and
//! requests name items by id only. The files of an item are resolved once, here: each is a
//! plain file name recorded in `explain.json`, looked up beside it, and kept only if its real
//! path (links resolved) lies inside the run folder.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ReviewError;
use crate::records::{ExplainRecord, OutputFile, read_record};

/// How deep below the run folder `explain.json` files are looked for.
const MAX_DEPTH: usize = 6;
/// Most items one server offers.
pub const MAX_ITEMS: usize = 100_000;
/// Largest file hashed or served, in bytes.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// What the database keeps of an item (all a summary needs, without the run folder).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemInfo {
    /// Content hash (32 hex digits).
    pub id: String,
    /// Weights file as the explain run recorded it.
    pub model: String,
    /// Architecture, when recorded.
    pub arch: Option<String>,
    /// Method name.
    pub method: String,
    /// Class explained.
    pub class: String,
    /// Its index.
    pub class_index: usize,
    /// Its predicted probability (`None` when not finite).
    pub prob: Option<f64>,
    /// Input file as recorded.
    pub input: String,
    /// The `explain.json`'s folder: the run folder's name and the path below it.
    pub source: String,
}

/// An item with the files it is shown with (real paths inside the run folder).
#[derive(Clone, Debug)]
pub struct Item {
    /// Description and id.
    pub info: ItemInfo,
    /// The input as the model saw it (`<stem>.input.png`), if written.
    pub input_png: Option<PathBuf>,
    /// The overlay.
    pub overlay_png: PathBuf,
    /// The raw map (`.npy`).
    pub map_npy: PathBuf,
    /// How the map is drawn (`signed`, `magnitude`, `unit`).
    pub style: String,
}

/// The items of a run folder, in a fixed order (folder, input, method), with an index by id.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// Items in folder order.
    pub items: Vec<Item>,
    by_id: HashMap<String, usize>,
}

impl Catalogue {
    /// The item with id `id`.
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.by_id.get(id).map(|&i| &self.items[i])
    }
}

/// Collects the items below each of `runs` (folders `explain` or the demo wrote); an
/// explanation found twice is one item.
pub fn discover(runs: &[PathBuf]) -> Result<Catalogue, ReviewError> {
    let mut catalogue = Catalogue::default();
    for run in runs {
        add_run(&mut catalogue, run)?;
    }
    if catalogue.items.is_empty() {
        let names: Vec<String> = runs.iter().map(|r| r.display().to_string()).collect();
        return Err(ReviewError::file(
            names.join(", "),
            "no explanations to review (no explain.json with map files below it)",
        ));
    }
    Ok(catalogue)
}

fn add_run(catalogue: &mut Catalogue, run: &Path) -> Result<(), ReviewError> {
    let root = run
        .canonicalize()
        .map_err(|e| ReviewError::file(run, format!("cannot open the run folder: {e}")))?;
    if !root.is_dir() {
        return Err(ReviewError::file(run, "not a folder"));
    }
    let mut records = Vec::new();
    find_records(&root, 0, &mut records);
    for path in records {
        let record: ExplainRecord =
            read_record(&path).map_err(|e| ReviewError::file(&path, e.message))?;
        for item in items_of(&root, &path, &record) {
            if catalogue.items.len() >= MAX_ITEMS {
                return Err(ReviewError::file(
                    run,
                    format!("more than {MAX_ITEMS} items"),
                ));
            }
            if !catalogue.by_id.contains_key(&item.info.id) {
                catalogue
                    .by_id
                    .insert(item.info.id.clone(), catalogue.items.len());
                catalogue.items.push(item);
            }
        }
    }
    Ok(())
}

/// `explain.json` files below `dir`, sorted, without following links.
fn find_records(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    for (path, kind) in crate::io::sorted_entries(dir) {
        if kind.is_dir() && depth < MAX_DEPTH {
            find_records(&path, depth + 1, found);
        } else if kind.is_file() && path.file_name().is_some_and(|n| n == "explain.json") {
            found.push(path);
        }
    }
}

/// The items of one explain record: every input × method whose files exist inside `root`.
fn items_of(root: &Path, record_path: &Path, record: &ExplainRecord) -> Vec<Item> {
    let folder = record_path.parent().unwrap_or(root);
    let root_name = root.file_name().unwrap_or_default();
    let source = Path::new(root_name)
        .join(folder.strip_prefix(root).unwrap_or(Path::new("")))
        .to_string_lossy()
        .to_string();
    let mut items = Vec::new();
    for output in &record.outputs {
        let input_png = output
            .input_png
            .as_deref()
            .and_then(|name| inside(root, folder, name));
        for method in &record.methods {
            let Some(OutputFile::Map(files)) = output.files.get(&method.name) else {
                continue;
            };
            let (Some(overlay_png), Some(map_npy)) = (
                inside(root, folder, &files.png),
                inside(root, folder, &files.npy),
            ) else {
                continue;
            };
            let Some(id) = item_id(
                input_png.as_deref(),
                &output.input,
                &map_npy,
                record,
                &method.name,
            ) else {
                continue;
            };
            let prob = output.target.prob;
            items.push(Item {
                info: ItemInfo {
                    id,
                    model: record.model.clone(),
                    arch: record.arch.clone(),
                    method: method.name.clone(),
                    class: output.target.name.clone(),
                    class_index: output.target.index,
                    prob: prob.is_finite().then_some(prob),
                    input: output.input.clone(),
                    source: source.clone(),
                },
                input_png: input_png.clone(),
                overlay_png,
                map_npy,
                style: method.style.clone(),
            });
        }
    }
    items
}

/// The real path of the file `name` recorded in `folder`'s `explain.json`, if `name` is one
/// plain file name and the file, links resolved, is a regular file inside `root`.
fn inside(root: &Path, folder: &Path, name: &str) -> Option<PathBuf> {
    let mut parts = Path::new(name).components();
    let (Some(Component::Normal(_)), None) = (parts.next(), parts.next()) else {
        return None;
    };
    let real = folder.join(name).canonicalize().ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    (real.starts_with(root) && meta.is_file() && meta.len() <= MAX_FILE_BYTES).then_some(real)
}

/// SHA-256 over the input picture (or, without one, the input's recorded name), the raw map,
/// the model and the method, each length-prefixed; the first 128 bits in hex.
fn item_id(
    input_png: Option<&Path>,
    input_name: &str,
    map_npy: &Path,
    record: &ExplainRecord,
    method: &str,
) -> Option<String> {
    let input = match input_png {
        Some(path) => std::fs::read(path).ok()?,
        None => input_name.as_bytes().to_vec(),
    };
    let map = std::fs::read(map_npy).ok()?;
    let mut hash = Sha256::new();
    hash.update(b"relevance-review-item-1");
    for part in [&input[..], &map, record.model.as_bytes(), method.as_bytes()] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    Some(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `id` has the shape of an item id (so anything else is refused before a lookup).
pub fn is_item_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}
