//! The items raters judge: one per input × method of every `explain.json` below the run
//! folders, and one per image × model × method of every study map cache below them
//! ([`super::study_items`], which needs the study's data folder).
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
use super::study_items::{StudyPictures, add_study, is_study_cache};
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

/// An item with the files it is shown with (real paths inside the run folder or, for a
/// study's input image, the data folder).
#[derive(Clone, Debug)]
pub struct Item {
    /// Description and id.
    pub info: ItemInfo,
    /// Where its input and overlay pictures come from.
    pub pictures: Pictures,
    /// The raw map (`.npy`).
    pub map_npy: PathBuf,
    /// How the map is drawn (`signed`, `magnitude`, `unit`).
    pub style: String,
}

/// The input and overlay of an item: files `explain` wrote, or drawn on request from a
/// study's cached map and its input image.
#[derive(Clone, Debug)]
pub enum Pictures {
    /// `explain`'s files.
    Files {
        /// The input as the model saw it (`<stem>.input.png`), if written.
        input_png: Option<PathBuf>,
        /// The overlay.
        overlay_png: PathBuf,
    },
    /// A study's map, drawn over its input as `explain` draws it.
    Study(StudyPictures),
}

impl Item {
    /// Whether the item has an input picture to show.
    pub fn has_input(&self) -> bool {
        match &self.pictures {
            Pictures::Files { input_png, .. } => input_png.is_some(),
            Pictures::Study(_) => true,
        }
    }

    /// The input picture as PNG bytes (`None`: the item has none).
    pub fn input_png(&self) -> Option<Result<Vec<u8>, String>> {
        match &self.pictures {
            Pictures::Files { input_png, .. } => input_png
                .as_ref()
                .map(|path| std::fs::read(path).map_err(|e| e.to_string())),
            Pictures::Study(study) => Some(study.input_png()),
        }
    }

    /// The overlay as PNG bytes.
    pub fn overlay_png(&self) -> Result<Vec<u8>, String> {
        match &self.pictures {
            Pictures::Files { overlay_png, .. } => {
                std::fs::read(overlay_png).map_err(|e| e.to_string())
            }
            Pictures::Study(study) => study.overlay_png(
                &self.map_npy,
                crate::methods::MapStyle::from_name(&self.style),
            ),
        }
    }
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

    /// Adds `item` unless an item with its id is there already; refuses more than
    /// [`MAX_ITEMS`].
    pub(super) fn add(&mut self, run: &Path, item: Item) -> Result<(), ReviewError> {
        if self.items.len() >= MAX_ITEMS {
            return Err(ReviewError::file(
                run,
                format!("more than {MAX_ITEMS} items"),
            ));
        }
        if !self.by_id.contains_key(&item.info.id) {
            self.by_id.insert(item.info.id.clone(), self.items.len());
            self.items.push(item);
        }
        Ok(())
    }
}

/// Collects the items below each of `runs` (folders `explain`, a study or the demo wrote);
/// an explanation found twice is one item. A study's cached maps are offered only with
/// `data`, the data folder the study read; without it they are left out, and a run folder
/// with nothing else to offer is an error saying so.
pub fn discover(runs: &[PathBuf], data: Option<&Path>) -> Result<Catalogue, ReviewError> {
    let data = data
        .map(|d| {
            d.canonicalize()
                .map_err(|e| ReviewError::file(d, format!("cannot open the data folder: {e}")))
        })
        .transpose()?;
    let mut catalogue = Catalogue::default();
    let mut studies_left_out = Vec::new();
    for run in runs {
        add_run(&mut catalogue, run, data.as_deref(), &mut studies_left_out)?;
    }
    if catalogue.items.is_empty() {
        if let Some(cache) = studies_left_out.first() {
            return Err(ReviewError::file(
                cache,
                "a study's map cache: name the data folder the study read with --data DATA",
            ));
        }
        if let Some((run, study)) = runs.iter().find_map(|r| study_of(r).map(|s| (r, s))) {
            return Err(ReviewError::file(run, no_maps_to_review(study)));
        }
        let names: Vec<String> = runs.iter().map(|r| r.display().to_string()).collect();
        return Err(ReviewError::file(
            names.join(", "),
            "no explanations to review (no explain.json with map files, and no study map cache, below it)",
        ));
    }
    Ok(catalogue)
}

/// Why a folder `study` wrote has nothing to review, and what gives it something: `compare`
/// and `variability` always keep a map cache, so a folder of theirs without one predates the
/// record of its images (`source.json`) and needs the study run again, which reuses the
/// cache; `faithfulness` and `stability` keep maps only with `--save-maps`; the others keep none.
fn no_maps_to_review(study: &str) -> String {
    match study {
        "compare" | "variability" => format!(
            "a {study} study folder without a record of its images (its map cache was written \
             before studies kept source.json): run the same {study} command again, which reuses \
             the cache and records them"
        ),
        "faithfulness" | "stability" => format!(
            "a {study} study folder without maps to review: run it again with --save-maps, or \
             run `relevance explain` on its images"
        ),
        _ => format!(
            "a {study} study folder without maps to review ({study} keeps none): run `relevance \
             explain` on its images"
        ),
    }
}

/// The studies that write a `summary.json`.
const STUDIES: &[&str] = &[
    "compare",
    "variability",
    "faithfulness",
    "stability",
    "sanity",
    "quality",
];

/// The study that wrote `run`, from its `summary.json` (`None`: not a study folder, or a
/// summary naming no study this build knows — its text never reaches the message).
fn study_of(run: &Path) -> Option<&'static str> {
    let summary: crate::records::StudySummary = read_run_record(&run.join("summary.json")).ok()?;
    STUDIES.iter().copied().find(|s| *s == summary.study)
}

/// A record below a run folder: read only when it is a regular file there (a link is not
/// followed out of the folder the user named) of at most [`MAX_FILE_BYTES`] (a hostile record
/// cannot make the server hold an arbitrary amount of text).
pub(super) fn read_run_record<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<T, ReviewError> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| ReviewError::file(path, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(ReviewError::file(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReviewError::file(
            path,
            format!(
                "{} bytes, more than a record may hold ({MAX_FILE_BYTES})",
                meta.len()
            ),
        ));
    }
    read_record(path).map_err(|e| ReviewError::file(path, e.message))
}

fn add_run(
    catalogue: &mut Catalogue,
    run: &Path,
    data: Option<&Path>,
    studies_left_out: &mut Vec<PathBuf>,
) -> Result<(), ReviewError> {
    let root = run
        .canonicalize()
        .map_err(|e| ReviewError::file(run, format!("cannot open the run folder: {e}")))?;
    if !root.is_dir() {
        return Err(ReviewError::file(run, "not a folder"));
    }
    let mut records = Vec::new();
    find_records(&root, 0, &mut records);
    for path in records {
        if is_study_cache(&path) {
            match data {
                Some(data) => add_study(catalogue, &root, &path, data)?,
                None => studies_left_out.push(path),
            }
            continue;
        }
        let record: ExplainRecord = read_run_record(&path)?;
        for item in items_of(&root, &path, &record) {
            catalogue.add(run, item)?;
        }
    }
    Ok(())
}

/// `explain.json` files and study caches' `source.json` below `dir`, sorted, without
/// following links.
fn find_records(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    for (path, kind) in crate::io::sorted_entries(dir) {
        if kind.is_dir() && depth < MAX_DEPTH {
            find_records(&path, depth + 1, found);
        } else if kind.is_file()
            && (path.file_name().is_some_and(|n| n == "explain.json") || is_study_cache(&path))
        {
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
            let input = match input_png.as_deref() {
                Some(path) => std::fs::read(path).ok(),
                None => Some(output.input.as_bytes().to_vec()),
            };
            let (Some(input), Ok(map)) = (input, std::fs::read(&map_npy)) else {
                continue;
            };
            let id = item_id(&input, &map, &record.model, &method.name);
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
                pictures: Pictures::Files {
                    input_png: input_png.clone(),
                    overlay_png,
                },
                map_npy,
                style: method.style.clone(),
            });
        }
    }
    items
}

/// The real path of the file `name` recorded in `folder`'s `explain.json`, if `name` is one
/// plain file name and the file, links resolved, is a regular file inside `root`.
pub(super) fn inside(root: &Path, folder: &Path, name: &str) -> Option<PathBuf> {
    let mut parts = Path::new(name).components();
    let (Some(Component::Normal(_)), None) = (parts.next(), parts.next()) else {
        return None;
    };
    let real = folder.join(name).canonicalize().ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    (real.starts_with(root) && meta.is_file() && meta.len() <= MAX_FILE_BYTES).then_some(real)
}

/// SHA-256 over the input picture's PNG bytes (or, for an explain run without one, the
/// input's recorded name), the raw map's `.npy` bytes, the model and the method, each
/// length-prefixed; the first 128 bits in hex.
pub(super) fn item_id(input: &[u8], map: &[u8], model: &str, method: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"relevance-review-item-1");
    for part in [input, map, model.as_bytes(), method.as_bytes()] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` has the shape of an item id (so anything else is refused before a lookup).
pub fn is_item_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}
