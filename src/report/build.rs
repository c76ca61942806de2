//! Builds the HTML report from a run folder: whatever of models, explanations, concepts, atlases
//! and studies the folder holds, found by the files each step writes (`ensemble.json`,
//! `model.train.json`, `explain.json`, `concepts.json`, `atlas.json`, study `summary.json` +
//! `figures.json`, the expert review's `review.json`, the data set's `dataset.json` and the run record `run.json`).
//!
//! Every file the report reads lies inside the run folder once `..` and symbolic links are
//! resolved (`RunFolder`), pictures are embedded only when they decode (re-encoded), and SVG is
//! sanitised when rendered: the report is sent to other people.
//!
//! The first section always states the findings a reader must see first: models whose test
//! accuracy falls far below their training accuracy (a shortcut or overfitting), the studies'
//! headlines, and a side-by-side of the maps of different models on the same test images.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Colormap;
use super::heatmap::{colourise, default_colormap, png_bytes};
use super::html::{Block, Figure, Picture, Report, Section, Tone};
use super::plots::{Chart, Plot};
use super::review::review_section;
use crate::methods::MapStyle;
use crate::records::{
    AtlasRecord, ConceptsRecord, DatasetRecord, EnsembleRecord, ExplainRecord, MethodRecord,
    OutputRecord, ReviewSummary, RunRecord, StudySummary, TrainRecord, read_record,
};
use crate::train::eval::ClassMetrics;

/// Errors while building a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run folder does not exist or holds nothing a report can show.
    #[error("{0}")]
    Empty(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A training-accuracy minus test-accuracy gap above this is called out as a likely shortcut.
pub const GAP_WARNING: f64 = 0.10;

/// Deepest folder level searched below the run folder.
const MAX_DEPTH: usize = 5;

/// Rows shown per explanation grid.
const MAX_GRID_ROWS: usize = 8;

/// Every run record found in a run folder, each with its file.
#[derive(Default, Debug)]
struct Found {
    run: Option<RunRecord>,
    datasets: Vec<(PathBuf, DatasetRecord)>,
    /// Ensemble folders are found by their `ensemble.json`; the report reads the members' own
    /// training records.
    ensembles: Vec<PathBuf>,
    trained: Vec<(PathBuf, TrainRecord)>,
    explains: Vec<(PathBuf, ExplainRecord)>,
    concepts: Vec<(PathBuf, Vec<ConceptsRecord>)>,
    atlases: Vec<(PathBuf, AtlasRecord)>,
    studies: Vec<(PathBuf, StudySummary)>,
    reviews: Vec<(PathBuf, ReviewSummary)>,
}

/// Largest picture file read for the report; larger ones are left out.
const MAX_PICTURE_BYTES: u64 = 128 << 20;

/// Largest side of a picture embedded in the report, in pixels.
const MAX_PICTURE_SIDE: u32 = 16384;

/// Most pixels of a picture embedded in the report.
const MAX_PICTURE_PIXELS: u64 = 64 << 20;

/// The first eight bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Where a path named by a run record leads.
enum Lookup {
    /// A regular file inside the run folder (its canonical path).
    Inside(PathBuf),
    /// Something that exists but lies outside the run folder once links are resolved.
    Outside,
    /// Nothing readable: absent, a folder, a broken link.
    Missing,
}

/// The run folder a report is built from, and the one rule every file the report reads obeys:
/// after resolving `..` and symbolic links it lies inside this folder and is a regular file. A
/// report is sent to other people, so a record naming `/etc/passwd`, `../other-run/fig.svg` or a
/// link out of the folder must not bring that file into it.
struct RunFolder {
    /// The folder as the user named it (labels are relative to it).
    path: PathBuf,
    /// The folder with links resolved, to test containment.
    canonical: PathBuf,
    /// One line per file a record named that was left out, for the report's note.
    omitted: RefCell<BTreeSet<String>>,
}

impl RunFolder {
    fn open(path: &Path) -> Result<RunFolder, ReportError> {
        let canonical = std::fs::canonicalize(path)
            .ok()
            .filter(|c| c.is_dir())
            .ok_or_else(|| {
                ReportError::Empty(format!(
                    "{}: not a folder (give the output folder of a run)",
                    path.display()
                ))
            })?;
        Ok(RunFolder {
            path: path.to_path_buf(),
            canonical,
            omitted: RefCell::default(),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Where `path` leads: a regular file inside the run folder, or not.
    fn lookup_file(&self, path: &Path) -> Lookup {
        match std::fs::canonicalize(path) {
            Err(_) => Lookup::Missing,
            Ok(c) if !c.starts_with(&self.canonical) => Lookup::Outside,
            Ok(c) if c.is_file() => Lookup::Inside(c),
            Ok(_) => Lookup::Missing,
        }
    }

    /// Whether a folder met in the scan still lies inside the run folder once resolved.
    fn contains_folder(&self, dir: &Path) -> bool {
        std::fs::canonicalize(dir).is_ok_and(|c| c.starts_with(&self.canonical))
    }

    /// A path recorded in the run record `record`, found inside the run folder. Runs are moved
    /// and commands run from other working directories, so besides the path as written it is
    /// tried relative to the record's folder, by file name in that folder and as
    /// `parent/name` below it; the first candidate inside the run folder wins.
    fn lookup(&self, record: &Path, recorded: &str) -> Lookup {
        let base = record.parent().unwrap_or(&self.path);
        let written = PathBuf::from(recorded);
        let mut candidates = vec![written.clone(), base.join(&written)];
        if let Some(name) = written.file_name() {
            candidates.push(base.join(name));
            if let Some(parent) = written.parent().and_then(Path::file_name) {
                candidates.push(base.join(parent).join(name));
            }
        }
        let mut outside = false;
        for candidate in candidates {
            match self.lookup_file(&candidate) {
                Lookup::Inside(found) => return Lookup::Inside(found),
                Lookup::Outside => outside = true,
                Lookup::Missing => {}
            }
        }
        if outside {
            Lookup::Outside
        } else {
            Lookup::Missing
        }
    }

    /// [`RunFolder::lookup`], noting a file left out because it lies outside the run folder.
    fn resolve(&self, record: &Path, recorded: &str) -> Option<PathBuf> {
        match self.lookup(record, recorded) {
            Lookup::Inside(found) => Some(found),
            Lookup::Outside => {
                self.note(record, recorded, "lies outside the run folder");
                None
            }
            Lookup::Missing => None,
        }
    }

    /// Notes that `recorded`, named by `record`, was left out of the report and why. Only the
    /// file name is shown: the note goes to the report's readers.
    fn note(&self, record: &Path, recorded: &str, why: &str) {
        let name = Path::new(recorded)
            .file_name()
            .map_or(recorded.into(), |n| n.to_string_lossy());
        let record = record.strip_prefix(&self.path).unwrap_or(record);
        self.omitted
            .borrow_mut()
            .insert(format!("{name} (named in {}): {why}", record.display()));
    }

    /// Notes a run record the report could not read (malformed, or from a newer release), with
    /// its path below the run folder and what is wrong.
    fn note_record(&self, record: &Path, why: &str) {
        let record = record.strip_prefix(&self.path).unwrap_or(record);
        self.omitted
            .borrow_mut()
            .insert(format!("{} (a run record): {why}", record.display()));
    }

    /// The record `T` in `path`, or `None` noted in the report. `generic` names such as
    /// `summary.json` are written by other tools too, so those are noted only when a newer
    /// release wrote them.
    fn record<T: DeserializeOwned>(&self, path: &Path, generic: bool) -> Option<T> {
        match read_record(path) {
            Ok(record) => Some(record),
            Err(e) => {
                if !generic || e.newer {
                    self.note_record(path, &e.message);
                }
                None
            }
        }
    }

    /// A picture file named by `record` that must be a PNG, re-encoded, with its size; noted
    /// when it is not what its name says.
    fn png(&self, record: &Path, recorded: &str) -> Option<(Picture, (u32, u32))> {
        let path = self.resolve(record, recorded)?;
        let img = decode_picture(&path, Some(image::ImageFormat::Png));
        let picture = img.as_ref().and_then(|img| {
            let bytes = reencode_png(img)?;
            Some((Picture::Png(bytes), (img.width(), img.height())))
        });
        if picture.is_none() {
            self.note(record, recorded, "not a PNG image within the size limits");
        }
        picture
    }

    /// An SVG file named by `record`, as text (sanitised when the report is rendered).
    fn svg(&self, record: &Path, recorded: &str) -> Option<Picture> {
        let path = self.resolve(record, recorded)?;
        let text = std::fs::metadata(&path)
            .is_ok_and(|m| m.len() <= MAX_PICTURE_BYTES)
            .then(|| std::fs::read_to_string(&path).ok())
            .flatten();
        if text.is_none() {
            self.note(record, recorded, "not a text file within the size limits");
        }
        text.map(Picture::Svg)
    }

    /// The section listing what was left out, if anything was.
    fn omitted_section(&self) -> Option<Section> {
        let omitted = self.omitted.borrow();
        if omitted.is_empty() {
            return None;
        }
        let mut s = Section::new("omitted", "Left out of this report");
        s.push(Block::Text(
            "The report holds only files inside the run folder (after resolving symbolic links), \
             only pictures that are what their name says and only run records this version can \
             read. These files named by the run's records, and these records, were left out:"
                .into(),
        ));
        s.push(Block::List(
            omitted
                .iter()
                .map(|line| format!("omitted: {line}"))
                .collect(),
        ));
        Some(s)
    }
}

/// Collects the run records below `dir`, at most [`MAX_DEPTH`] folders deep. Symbolic links are
/// never followed, neither to folders nor to files: everything inside the run folder is reached
/// by its real path anyway, so a link can only add a duplicate or lead out of the folder
/// (`rootfs -> /`, a link to another run).
fn scan(run: &RunFolder, dir: &Path, depth: usize, found: &mut Found) {
    for (path, kind) in crate::io::sorted_entries(dir) {
        if kind.is_dir() {
            if depth < MAX_DEPTH && run.contains_folder(&path) {
                scan(run, &path, depth + 1, found);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        collect(run, path, &name, depth, found);
    }
}

/// Reads the run record `path` (file name `name`, found `depth` folders below the run folder)
/// into its slot of `found`, if it is one.
fn collect(run: &RunFolder, path: PathBuf, name: &str, depth: usize, found: &mut Found) {
    fn push<T: DeserializeOwned>(run: &RunFolder, path: PathBuf, slot: &mut Vec<(PathBuf, T)>) {
        if let Some(record) = run.record(&path, false) {
            slot.push((path, record));
        }
    }
    match name {
        "dataset.json" => push(run, path, &mut found.datasets),
        "model.train.json" => push(run, path, &mut found.trained),
        "explain.json" => push(run, path, &mut found.explains),
        "concepts.json" => push(run, path, &mut found.concepts),
        "atlas.json" => push(run, path, &mut found.atlases),
        // Other tools may write a `review.json`: the expert review's names its database.
        "review.json" => {
            if let Some(summary) = run.record::<ReviewSummary>(&path, true)
                && !summary.db.is_empty()
            {
                found.reviews.push((path, summary));
            }
        }
        "ensemble.json" => {
            let record = run.record::<EnsembleRecord>(&path, false);
            found.ensembles.extend(record.map(|_| path));
        }
        // Other tools write `summary.json` too: a study's names its study.
        "summary.json" => {
            if let Some(summary) = run.record::<StudySummary>(&path, true)
                && !summary.study.is_empty()
            {
                found.studies.push((path, summary));
            }
        }
        "run.json" if depth == 0 => found.run = run.record(&path, false),
        _ => {}
    }
}

/// A picture file decoded within the size limits, as `format` (a PNG must carry the PNG
/// signature) or, for `None`, as whatever image format its content shows.
fn decode_picture(path: &Path, format: Option<image::ImageFormat>) -> Option<image::DynamicImage> {
    if std::fs::metadata(path).ok()?.len() > MAX_PICTURE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if format == Some(image::ImageFormat::Png) && !bytes.starts_with(PNG_SIGNATURE) {
        return None;
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes));
    match format {
        Some(format) => reader.set_format(format),
        None => reader = reader.with_guessed_format().ok()?,
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PICTURE_SIDE);
    limits.max_image_height = Some(MAX_PICTURE_SIDE);
    reader.limits(limits);
    let decoder = reader.into_decoder().ok()?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if u64::from(w) * u64::from(h) > MAX_PICTURE_PIXELS {
        return None;
    }
    image::DynamicImage::from_decoder(decoder).ok()
}

/// The pixels of `img` as a fresh PNG, so nothing of the file but its pixels reaches the report.
fn reencode_png(img: &image::DynamicImage) -> Option<Vec<u8>> {
    if !img.color().has_alpha() {
        return png_bytes(&img.to_rgb8()).ok();
    }
    let mut buf = std::io::Cursor::new(Vec::new());
    img.to_rgba8()
        .write_to(&mut buf, image::ImageFormat::Png)
        .ok()?;
    Some(buf.into_inner())
}

/// An input image as a PNG of `size` (the overlay's size), for grids.
fn input_picture(path: &Path, size: Option<(u32, u32)>) -> Option<Picture> {
    let img = decode_picture(path, None)?.to_rgb8();
    let img = match size {
        Some((w, h)) if (w, h) != img.dimensions() => {
            image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
        }
        _ => img,
    };
    png_bytes(&img).ok().map(Picture::Png)
}

/// The file shown in a row's input column, and the row's original input when it lies inside the
/// run folder (for the confounder tag beside it). Shown is the image as the model saw it
/// (`input_png`, written by `explain` and `concepts` into their output folder) when recorded,
/// else the original input; an input outside the run folder is noted and left out.
fn row_input(
    run: &RunFolder,
    record: &Path,
    input: &str,
    input_png: Option<&str>,
) -> (Option<PathBuf>, Option<PathBuf>) {
    let input = Some(input).filter(|i| !i.is_empty());
    let original = input.and_then(|f| match run.lookup(record, f) {
        Lookup::Inside(p) => Some(p),
        _ => None,
    });
    let seen = input_png.or(input).and_then(|f| run.resolve(record, f));
    (seen.or_else(|| original.clone()), original)
}

/// A horizontal colour bar of `cmap` as a PNG.
pub fn colour_bar(cmap: Colormap) -> Vec<u8> {
    let (w, h) = (256u32, 14u32);
    let values: Vec<f32> = (0..h)
        .flat_map(|_| (0..w).map(move |x| x as f32 / (w - 1) as f32))
        .collect();
    png_bytes(&colourise(&values, w, h, cmap)).unwrap_or_default()
}

/// The colour-bar figure for maps drawn in `style`, with how to read it.
fn colour_bar_figure(style: MapStyle) -> Figure {
    let caption = match style {
        MapStyle::Signed => {
            "Colour bar of signed maps (Input×Gradient, Integrated Gradients, LRP): blue = evidence \
             against the class, white = none, red = evidence for it; each map is scaled \
             symmetrically to its own largest absolute value."
        }
        MapStyle::Magnitude => {
            "Colour bar of sensitivity maps (saliency, SmoothGrad): left = the image's smallest \
             gradient magnitude, right = its largest (scaled per map)."
        }
        MapStyle::Unit => {
            "Colour bar of CAM-family maps: left = 0, right = 1 (each map min-max scaled, as \
             pytorch-grad-cam returns it): where the target layer saw the class."
        }
    };
    Figure {
        picture: Picture::Png(colour_bar(default_colormap(style))),
        caption: caption.to_string(),
        width: Some(256),
    }
}

/// A text field of a record, or `?` where the record left it out.
fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "?" } else { text }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1} %", 100.0 * v))
        .unwrap_or_else(|| "–".into())
}

/// A number of a training record's metrics on one part of the data.
#[derive(Clone, Copy)]
enum Measure {
    Accuracy,
    Balanced,
    RocAuc,
}

impl Measure {
    fn of(self, m: &ClassMetrics) -> Option<f64> {
        match self {
            Measure::Accuracy => Some(m.accuracy),
            Measure::Balanced => Some(m.balanced_accuracy),
            Measure::RocAuc => m.roc_auc_macro,
        }
    }
}

/// `measure` of `train` on `part` (`train`, `val`, `test`), if that part was evaluated.
fn metric(train: &TrainRecord, part: &str, measure: Measure) -> Option<f64> {
    measure.of(train.metrics.get(part)?)
}

/// " · tag" when a synthetic image carries a confounder tag (its `<stem>.marker.png` exists
/// inside the run folder).
fn tag_note(run: &RunFolder, input: Option<&Path>) -> &'static str {
    match input.map(|p| run.lookup_file(&p.with_extension("marker.png"))) {
        Some(Lookup::Inside(_)) => " · tag",
        _ => "",
    }
}

/// Folder label of a path below the run folder, e.g. `models/shortcut`.
fn label(run: &Path, path: &Path) -> String {
    let dir = path.parent().unwrap_or(path);
    let rel = dir.strip_prefix(run).unwrap_or(dir);
    let s = rel.display().to_string();
    if s.is_empty() { ".".into() } else { s }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// A trained model of a group: its folder name, its training record and its folder
/// (canonical, to match the models that explain runs name).
struct Member {
    name: String,
    record: TrainRecord,
    dir: Option<PathBuf>,
}

/// A group of trained models (an ensemble folder, or a single model's folder).
struct ModelGroup {
    name: String,
    members: Vec<Member>,
}

impl ModelGroup {
    fn mean_of(&self, part: &str, measure: Measure) -> Option<f64> {
        let v: Vec<f64> = self
            .members
            .iter()
            .filter_map(|m| metric(&m.record, part, measure))
            .collect();
        mean(&v)
    }

    /// Mean training minus mean test accuracy.
    fn gap(&self) -> Option<f64> {
        Some(self.mean_of("train", Measure::Accuracy)? - self.mean_of("test", Measure::Accuracy)?)
    }
}

fn model_groups(run: &Path, found: &Found) -> Vec<ModelGroup> {
    let mut groups: BTreeMap<PathBuf, ModelGroup> = BTreeMap::new();
    for path in &found.ensembles {
        let dir = path.parent().unwrap_or(run).to_path_buf();
        groups.insert(
            dir.clone(),
            ModelGroup {
                name: label(run, path),
                members: Vec::new(),
            },
        );
    }
    for (path, train) in &found.trained {
        let model_dir = path.parent().unwrap_or(run);
        let owner = model_dir
            .parent()
            .filter(|p| groups.contains_key(*p))
            .map(Path::to_path_buf)
            .unwrap_or_else(|| model_dir.to_path_buf());
        let name = model_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        groups
            .entry(owner.clone())
            .or_insert_with(|| ModelGroup {
                name: label(run, path),
                members: Vec::new(),
            })
            .members
            .push(Member {
                name,
                record: train.clone(),
                dir: std::fs::canonicalize(model_dir).ok(),
            });
    }
    groups
        .into_values()
        .filter(|g| !g.members.is_empty())
        .collect()
}

/// The data set a model group was trained on, if its `dataset.json` was found.
fn dataset_of<'a>(group: &ModelGroup, found: &'a Found) -> Option<&'a DatasetRecord> {
    let source = &group.members.first()?.record.data.source;
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    found
        .datasets
        .iter()
        .find(|(p, _)| {
            let dir = p.parent().unwrap_or(p);
            canon(dir).is_some() && canon(dir) == canon(source)
        })
        .map(|(_, d)| d)
}

fn confounder_text(dataset: Option<&DatasetRecord>) -> Option<String> {
    let p = dataset?.config.confounder?;
    Some(format!(
        "In its training and validation data a confounder tag co-occurs with one class with \
         probability {p}; in the test data the tag is independent of the label."
    ))
}

fn findings(run: &RunFolder, found: &Found, groups: &[ModelGroup]) -> Section {
    let mut s = Section::new("findings", "Key findings");
    let mut any = false;
    // Warnings first: the reader must meet a shortcut before anything reassuring.
    let mut order: Vec<&ModelGroup> = groups.iter().collect();
    order.sort_by(|a, b| {
        let gap = |g: &ModelGroup| {
            g.mean_of("train", Measure::Accuracy).unwrap_or(0.0)
                - g.mean_of("test", Measure::Accuracy).unwrap_or(0.0)
        };
        gap(b).total_cmp(&gap(a))
    });
    for g in order {
        let (Some(train), Some(test)) = (
            g.mean_of("train", Measure::Accuracy),
            g.mean_of("test", Measure::Accuracy),
        ) else {
            continue;
        };
        any = true;
        let n = g.members.len();
        let (who, verb) = if n > 1 {
            (format!("The {n} models in {}", g.name), "generalise")
        } else {
            (format!("The model in {}", g.name), "generalises")
        };
        let extra = confounder_text(dataset_of(g, found)).unwrap_or_default();
        if train - test > GAP_WARNING {
            s.push(Block::Callout {
                tone: Tone::Warning,
                title: format!(
                    "{}: {} on training data, only {} on test data",
                    g.name,
                    pct(Some(train)),
                    pct(Some(test))
                ),
                text: format!(
                    "{who} learned something that does not carry over to the test set — a \
                     shortcut or overfitting. {extra} Check the maps below: do they sit on the \
                     lesion or on something else?"
                ),
            });
        } else {
            s.push(Block::Callout {
                tone: Tone::Good,
                title: format!(
                    "{}: {} on training data, {} on test data",
                    g.name,
                    pct(Some(train)),
                    pct(Some(test))
                ),
                text: format!("{who} {verb} to the test set. {extra}"),
            });
        }
    }
    if let Some((block, styles)) = side_by_side(run, found, groups) {
        any = true;
        s.push(block);
        s.push(Block::Row(
            styles.into_iter().map(colour_bar_figure).collect(),
        ));
    }
    // One line per study here (its section has the rest), so the pictures stay on the first screen.
    for (path, summary) in &found.studies {
        let first = marker_digest(summary).or_else(|| summary.headline.first().cloned());
        if let Some(text) = first {
            any = true;
            s.push(Block::Callout {
                tone: Tone::Info,
                title: format!("{} ({})", summary.study, label(run.path(), path)),
                text,
            });
        }
    }
    if !any {
        s.push(Block::Text(
            "Nothing in this folder gives a finding yet (no trained models with test results and \
             no study summaries)."
                .into(),
        ));
    }
    s
}

/// One sentence from a comparison table with a `marker mass` column: per method, the share of
/// relevance each model puts on the confounder tag, beside the tag's share of the image.
fn marker_digest(summary: &StudySummary) -> Option<String> {
    let table = &summary.table;
    let (method, model, mass, area) = (
        table.column("method")?,
        table.column("model")?,
        table.column("marker mass")?,
        table.column("marker area")?,
    );
    let mut per_method: Vec<(String, Vec<String>)> = Vec::new();
    let mut tag_area = None;
    for row in &table.rows {
        let cell = |i: usize| row.get(i);
        let (Some(m), Some(who), Some(share)) = (
            cell(method).and_then(Value::as_str),
            cell(model).and_then(Value::as_str),
            cell(mass).and_then(Value::as_f64),
        ) else {
            continue;
        };
        tag_area = tag_area.or(cell(area).and_then(Value::as_f64));
        let entry = format!("{:.1} % ({who})", 100.0 * share);
        match per_method.iter_mut().find(|(name, _)| name == m) {
            Some((_, v)) => v.push(entry),
            None => per_method.push((m.to_string(), vec![entry])),
        }
    }
    if per_method.is_empty() {
        return None;
    }
    let parts: Vec<String> = per_method
        .iter()
        .map(|(m, v)| format!("{m}: {}", v.join(" vs ")))
        .collect();
    Some(format!(
        "Share of the positive relevance on the confounder tag in tagged test images (the tag \
         covers {} of the image) — {}.",
        tag_area.map_or("a small part".to_string(), |a| format!(
            "{:.1} %",
            100.0 * a
        )),
        parts.join("; ")
    ))
}

/// Train-minus-test accuracy of the model group an `explain.json` explained, if known.
fn explained_gap(explain: &ExplainRecord, groups: &[ModelGroup]) -> Option<f64> {
    let model = PathBuf::from(&explain.model);
    let dir = std::fs::canonicalize(model.parent()?).ok()?;
    groups
        .iter()
        .find(|g| g.members.iter().any(|m| m.dir.as_ref() == Some(&dir)))?
        .gap()
}

/// The named methods of an explain record, with how their maps are drawn.
fn methods_of(explain: &ExplainRecord) -> Vec<(String, MapStyle)> {
    explain
        .methods
        .iter()
        .filter(|m| !m.name.is_empty())
        .map(|m| (m.name.clone(), m.style()))
        .collect()
}

/// The same test images explained by different models with the same methods (LRP and Grad-CAM
/// when present), side by side; the model with the largest train-test gap first. Returns the
/// grid and the kinds of map shown (for their colour bars).
fn side_by_side(
    run: &RunFolder,
    found: &Found,
    groups: &[ModelGroup],
) -> Option<(Block, Vec<MapStyle>)> {
    if found.explains.len() < 2 {
        return None;
    }
    let mut explains: Vec<&(PathBuf, ExplainRecord)> = found.explains.iter().collect();
    explains.sort_by(|a, b| {
        let gap = |v: &ExplainRecord| explained_gap(v, groups).unwrap_or(f64::NEG_INFINITY);
        gap(&b.1).total_cmp(&gap(&a.1))
    });
    let common: Vec<(String, MapStyle)> = methods_of(&explains[0].1)
        .into_iter()
        .filter(|(m, _)| {
            explains
                .iter()
                .all(|(_, v)| methods_of(v).iter().any(|(n, _)| n == m))
        })
        .collect();
    let mut shown: Vec<(String, MapStyle)> = ["lrp-epsilon-plus-flat", "grad-cam"]
        .iter()
        .filter_map(|want| common.iter().find(|(m, _)| m == want).cloned())
        .collect();
    if shown.is_empty() {
        shown.extend(common.first().cloned());
    }
    if shown.is_empty() {
        return None;
    }
    let mut columns = vec!["input".to_string()];
    for (method, _) in &shown {
        let short = if method.starts_with("lrp-") {
            "LRP"
        } else {
            method.as_str()
        };
        for (p, _) in &explains {
            let folder = p
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            columns.push(format!("{short} · {folder}"));
        }
    }
    let (base_path, base) = explains[0];
    let mut rows = Vec::new();
    for out in base.outputs.iter().take(4) {
        let mut size = None;
        let mut maps = Vec::new();
        for (method, _) in &shown {
            for (path, v) in &explains {
                let hit = v.outputs.iter().find(|o| o.stem == out.stem);
                let map = hit
                    .and_then(|o| o.map_png(method))
                    .and_then(|f| run.png(path, f));
                size = size.or(map.as_ref().map(|(_, s)| *s));
                maps.push(map.map(|(picture, _)| picture));
            }
        }
        let (input, original) = output_input(run, base_path, out);
        let mut cells = vec![input.as_deref().and_then(|p| input_picture(p, size))];
        cells.extend(maps);
        rows.push((
            format!(
                "{}{} · {}",
                out.stem,
                tag_note(run, original.as_deref()),
                or_unknown(&out.target.name)
            ),
            cells,
        ));
    }
    if rows.is_empty() {
        return None;
    }
    let names: Vec<&str> = shown.iter().map(|(m, _)| m.as_str()).collect();
    let block = Block::Grid {
        columns,
        rows,
        caption: format!(
            "The same test images ({}: the image carries the confounder tag; then the class \
             explained), {} of the first model of each folder of explanations (column: method · \
             folder). Read across a row: where the \
             models look differs when one of them learned a shortcut — relevance on the tag \
             instead of the lesion.",
            "· tag",
            names.join(" and ")
        ),
        cell: 110,
    };
    Some((block, shown.into_iter().map(|(_, st)| st).collect()))
}

/// Per tag of an expert-review summary, the overlays of its example items that the summary
/// copied beside it (PNG only, inside the run folder).
fn tag_pictures(run: &RunFolder, record: &Path, summary: &ReviewSummary) -> Vec<Vec<Picture>> {
    summary
        .tags
        .iter()
        .map(|tag| {
            tag.pictures
                .iter()
                .filter_map(|name| run.png(record, name).map(|(picture, _)| picture))
                .collect()
        })
        .collect()
}

/// [`row_input`] of an explained input.
fn output_input(
    run: &RunFolder,
    record: &Path,
    out: &OutputRecord,
) -> (Option<PathBuf>, Option<PathBuf>) {
    row_input(run, record, &out.input, out.input_png.as_deref())
}

fn data_section(run: &Path, found: &Found) -> Option<Section> {
    if found.datasets.is_empty() {
        return None;
    }
    let mut s = Section::new("data", "Data");
    for (path, d) in &found.datasets {
        let cfg = &d.config;
        let per_part = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let facts = vec![
            ("folder".to_string(), label(run, path)),
            ("generator".into(), d.generator.clone()),
            ("label rule".into(), d.label_rule.clone()),
            ("classes".into(), d.classes.join(", ")),
            (
                "images".into(),
                format!("{} of {}×{} px", cfg.n, cfg.size, cfg.size),
            ),
            (
                "confounder".into(),
                match cfg.confounder {
                    Some(p) => format!(
                        "a tag drawn with one class with probability {p} in train/val; \
                         independent of the label in test"
                    ),
                    None => "none".into(),
                },
            ),
            ("sizes per part".into(), per_part(&d.sizes)),
            ("tagged per part".into(), per_part(&d.tagged)),
        ];
        s.push(Block::Facts(facts));
    }
    Some(s)
}

fn models_section(groups: &[ModelGroup]) -> Option<Section> {
    if groups.is_empty() {
        return None;
    }
    let mut s = Section::new("models", "Models");
    s.push(Block::Text(
        "Accuracy on each part of the data for every trained model. Balanced accuracy is the \
         mean per-class recall; ROC AUC is the one-vs-rest macro average on the test set."
            .into(),
    ));
    let auc = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into());
    for g in groups {
        let headers: Vec<String> = [
            "model",
            "arch",
            "epochs",
            "train",
            "val",
            "test",
            "test balanced",
            "test ROC AUC",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect();
        let mut rows = Vec::new();
        for m in &g.members {
            let t = &m.record;
            rows.push(vec![
                m.name.clone(),
                t.config.arch.clone(),
                t.kept_epoch.to_string(),
                pct(metric(t, "train", Measure::Accuracy)),
                pct(metric(t, "val", Measure::Accuracy)),
                pct(metric(t, "test", Measure::Accuracy)),
                pct(metric(t, "test", Measure::Balanced)),
                auc(metric(t, "test", Measure::RocAuc)),
            ]);
        }
        if g.members.len() > 1 {
            rows.push(vec![
                "mean".into(),
                String::new(),
                String::new(),
                pct(g.mean_of("train", Measure::Accuracy)),
                pct(g.mean_of("val", Measure::Accuracy)),
                pct(g.mean_of("test", Measure::Accuracy)),
                pct(g.mean_of("test", Measure::Balanced)),
                auc(g.mean_of("test", Measure::RocAuc)),
            ]);
        }
        s.push(Block::Table {
            caption: format!("{} ({} model(s))", g.name, g.members.len()),
            headers,
            rows,
        });
        if let Some(fig) = confusion_figure(g) {
            s.push(Block::Figure(fig));
        }
    }
    Some(s)
}

/// The test confusion matrix summed over the group's members (none when one lacks it).
fn confusion_figure(g: &ModelGroup) -> Option<Figure> {
    let mut total: Vec<Vec<f64>> = Vec::new();
    for m in &g.members {
        let rows: Vec<Vec<f64>> = m
            .record
            .metrics
            .get("test")?
            .confusion
            .iter()
            .map(|r| r.iter().map(|&c| c as f64).collect())
            .collect();
        if total.is_empty() {
            total = rows;
        } else if total.len() == rows.len() {
            for (a, b) in total.iter_mut().zip(&rows) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
    }
    if total.is_empty() {
        return None;
    }
    let classes: Vec<String> = Some(g.members[0].record.card.classes.clone())
        .filter(|c| c.len() == total.len())
        .unwrap_or_else(|| (0..total.len()).map(|i| i.to_string()).collect());
    let max = total.iter().flatten().copied().fold(0.0, f64::max).max(1.0);
    let mut plot = Plot::new(
        &format!("Test confusion matrix — {}", g.name),
        "predicted class",
        "true class",
        Chart::Matrix {
            rows: classes.clone(),
            columns: classes,
            values: total,
            max,
        },
    );
    plot.size = (420, 340);
    let svg = plot.svg().ok()?;
    Some(Figure {
        picture: Picture::Svg(svg),
        caption: format!(
            "Rows: true class, columns: predicted class; counts of test images{}. The diagonal \
             holds the correct predictions.",
            if g.members.len() > 1 {
                ", summed over the models of the ensemble"
            } else {
                ""
            }
        ),
        width: Some(420),
    })
}

fn explain_section(run: &RunFolder, found: &Found) -> Option<Section> {
    if found.explains.is_empty() {
        return None;
    }
    let mut s = Section::new("explanations", "Explanations");
    s.push(Block::Text(
        "Each row is one test image with the class explained and its predicted probability; each \
         column one method. Maps are drawn over the input; the colour bars below say how to read \
         each kind."
            .into(),
    ));
    // One colour bar per kind of drawing named, in the order first met.
    let mut styles: Vec<&MethodRecord> = Vec::new();
    for (path, v) in &found.explains {
        for m in &v.methods {
            if !m.style.is_empty() && !styles.iter().any(|seen| seen.style == m.style) {
                styles.push(m);
            }
        }
        s.push(explain_grid(run, path, v));
    }
    let bars: Vec<Figure> = styles
        .iter()
        .map(|m| colour_bar_figure(m.style()))
        .collect();
    if !bars.is_empty() {
        s.push(Block::Row(bars));
    }
    Some(s)
}

/// The grid of one explain record: a row per input (at most [`MAX_GRID_ROWS`]), a column per
/// method.
fn explain_grid(run: &RunFolder, path: &Path, v: &ExplainRecord) -> Block {
    let methods: Vec<&str> = v
        .methods
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    let mut columns = vec!["input".to_string()];
    columns.extend(methods.iter().map(|m| m.to_string()));
    let mut rows = Vec::new();
    for out in v.outputs.iter().take(MAX_GRID_ROWS) {
        let maps: Vec<Option<(Picture, (u32, u32))>> = methods
            .iter()
            .map(|m| out.map_png(m).and_then(|f| run.png(path, f)))
            .collect();
        let size = maps.iter().flatten().map(|(_, size)| *size).next();
        let (input, original) = output_input(run, path, out);
        let mut cells = vec![input.as_deref().and_then(|p| input_picture(p, size))];
        cells.extend(maps.into_iter().map(|m| m.map(|(picture, _)| picture)));
        rows.push((
            format!(
                "{}{}: {} (p\u{a0}=\u{a0}{:.2})",
                or_unknown(&out.stem),
                tag_note(run, original.as_deref()),
                or_unknown(&out.target.name),
                out.target.prob
            ),
            cells,
        ));
    }
    let layers = v
        .layers
        .iter()
        .map(|(k, l)| format!("{k}: {l}"))
        .collect::<Vec<_>>()
        .join("; ");
    let total = v.outputs.len();
    Block::Grid {
        columns,
        rows,
        caption: format!(
            "{} — model {}{}{}. Raw maps (.npy) and overlays (.png) are in that folder.",
            label(run.path(), path),
            or_unknown(&v.model),
            if layers.is_empty() {
                String::new()
            } else {
                format!("; CAM layers {layers}")
            },
            if total > MAX_GRID_ROWS {
                format!("; first {MAX_GRID_ROWS} of {total} rows")
            } else {
                String::new()
            }
        ),
        cell: 112,
    }
}

fn concepts_section(run: &RunFolder, found: &Found) -> Option<Section> {
    if found.concepts.is_empty() && found.atlases.is_empty() {
        return None;
    }
    let mut s = Section::new("concepts", "Concepts (CRP)");
    s.push(Block::Text(
        "Concept Relevance Propagation splits an LRP explanation by the channels (concepts) of one \
         layer: for each image, the channels that carried most of the relevance for the \
         prediction, and where in the image each of them found its evidence (conditional \
         heatmaps: red = evidence for the class)."
            .into(),
    ));
    for (path, lines) in &found.concepts {
        s.push(concepts_grid(run, path, lines));
    }
    for (path, atlas) in &found.atlases {
        for ch in atlas.channels.iter().take(6) {
            if let Some((picture, _)) = run.png(path, &ch.image) {
                s.push(Block::Figure(Figure {
                    picture,
                    caption: format!(
                        "Concept atlas, layer {}, channel {}: the data-set images where this \
                         channel is most relevant (top row) and most activated (bottom row), \
                         cropped to the region it responds to.",
                        or_unknown(&atlas.layer),
                        ch.channel
                    ),
                    width: None,
                }));
            }
        }
    }
    Some(s)
}

/// The grid of one `concepts.json`: a row per image (at most [`MAX_GRID_ROWS`]), a column per
/// concept rank.
fn concepts_grid(run: &RunFolder, path: &Path, lines: &[ConceptsRecord]) -> Block {
    let width = lines.iter().map(|l| l.heatmaps.len()).max().unwrap_or(0);
    let mut columns = vec!["input".to_string()];
    columns.extend((1..=width).map(|k| format!("concept #{k}")));
    let mut rows = Vec::new();
    let mut layer = "";
    for l in lines.iter().take(MAX_GRID_ROWS) {
        layer = or_unknown(&l.layer);
        let shares: BTreeMap<usize, f64> = l
            .concepts
            .iter()
            .map(|c| (c.channel, c.relevance))
            .collect();
        let heat: Vec<Option<(Picture, (u32, u32))>> = l
            .heatmaps
            .iter()
            .map(|h| h.png.to_str().and_then(|f| run.png(path, f)))
            .collect();
        let size = heat.iter().flatten().map(|(_, size)| *size).next();
        let input_png = l.input_png.as_deref().and_then(Path::to_str);
        let (input, _) = row_input(run, path, &l.input, input_png);
        let mut cells = vec![input.as_deref().and_then(|p| input_picture(p, size))];
        cells.extend(heat.into_iter().map(|h| h.map(|(picture, _)| picture)));
        let names: Vec<String> = l
            .heatmaps
            .iter()
            .map(|h| {
                h.channels
                    .iter()
                    .map(|ch| match shares.get(ch) {
                        Some(sh) => format!("ch {ch} ({:.0} %)", 100.0 * sh),
                        None => format!("ch {ch}"),
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        let stem = Path::new(&l.input)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        rows.push((
            format!("{stem}: {} — {}", or_unknown(&l.class), names.join(", ")),
            cells,
        ));
    }
    Block::Grid {
        columns,
        rows,
        caption: format!(
            "{} — top concepts of layer {layer}, each with its share of the layer's relevance \
             (in the row label) and its conditional heatmap.",
            label(run.path(), path)
        ),
        cell: 96,
    }
}

/// A cell of a study's table as the reader sees it: numbers rounded, `–` for not computed.
fn table_cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_f64()
            .map(|f| {
                if f.fract() == 0.0 && f.abs() < 1e9 {
                    format!("{f:.0}")
                } else {
                    format!("{f:.4}")
                }
            })
            .unwrap_or_default(),
        Value::Null => "–".into(),
        other => other.to_string(),
    }
}

fn study_section(run: &RunFolder, path: &Path, summary: &StudySummary, index: usize) -> Section {
    let study = summary.study.as_str();
    let title = match study {
        "faithfulness" => "Faithfulness: do the maps point at what the model uses?",
        "stability" => "Stability under augmentations",
        "variability" => "Variability across the ensemble",
        "compare" => "Comparison of methods and models",
        "sanity" => "Sanity checks: do the maps depend on the model and the class?",
        "quality" => "Quality metrics: checkerboard, sparseness, faithfulness, robustness",
        other => other,
    };
    let mut s = Section::new(&format!("study-{index}-{study}"), title);
    let lines = &summary.headline;
    if let Some(digest) = marker_digest(summary) {
        s.push(Block::Callout {
            tone: Tone::Info,
            title: "Relevance on the confounder tag".into(),
            text: digest,
        });
        s.push(Block::List(lines.clone()));
    } else if let Some((first, rest)) = lines.split_first() {
        s.push(Block::Callout {
            tone: Tone::Info,
            title: "Finding".into(),
            text: first.clone(),
        });
        if !rest.is_empty() {
            s.push(Block::List(rest.to_vec()));
        }
    }
    let table = &summary.table;
    if !table.columns.is_empty() {
        s.push(Block::Table {
            caption: format!(
                "Summary (all numbers: metrics.csv in {})",
                label(run.path(), path)
            ),
            headers: table.columns.clone(),
            rows: table
                .rows
                .iter()
                .map(|r| r.iter().map(table_cell).collect())
                .collect(),
        });
    }
    let tests = &summary.tests;
    if !tests.columns.is_empty() {
        s.push(Block::Table {
            caption: format!(
                "Paired tests on the same images (Holm-adjusted Wilcoxon; significant: p < 0.05; all pairs: *_tests.csv in {})",
                label(run.path(), path)
            ),
            headers: tests.columns.clone(),
            rows: tests
                .rows
                .iter()
                .map(|r| r.iter().map(table_cell).collect())
                .collect(),
        });
    }
    for figure in study_figures(run, path) {
        s.push(Block::Figure(figure));
    }
    if let Some(conv) = summary.conventions.as_object()
        && !conv.is_empty()
    {
        let mut rows = Vec::new();
        for (name, value) in conv {
            flatten_convention(name, value, &mut rows);
        }
        s.push(Block::Pairs {
            caption: "Conventions of this study (summary.json)".into(),
            rows,
        });
    }
    s
}

/// The figures of the study whose `summary.json` is `path`, from the `figures.json` beside it:
/// the SVG of a plot where there is one, else the PNG.
fn study_figures(run: &RunFolder, path: &Path) -> Vec<Figure> {
    let record = path.with_file_name("figures.json");
    let figures: Vec<crate::records::Figure> = match run.lookup_file(&record) {
        // Read by the name below the run folder, so a note names it as the reader knows it.
        Lookup::Inside(_) => run.record(&record, false).unwrap_or_default(),
        _ => Vec::new(),
    };
    figures
        .iter()
        .filter_map(|f| {
            let picture = f
                .svg
                .as_deref()
                .and_then(|n| run.svg(&record, n))
                .or_else(|| run.png(&record, &f.file).map(|(picture, _)| picture))?;
            Some(Figure {
                picture,
                caption: if f.title.is_empty() {
                    f.caption.clone()
                } else {
                    format!("{}. {}", f.title, f.caption)
                },
                width: f.width,
            })
        })
        .collect()
}

/// Appends `value` to `rows` as readable (name, value) pairs: nested objects become dotted
/// names, lists of plain values one comma-separated value, and a list of objects one name per
/// element — the element's own `name` where it has one (`augmentations.hflip.…`), else its
/// position from 1. No JSON punctuation reaches the reader.
fn flatten_convention(name: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (key, v) in fields {
                flatten_convention(&format!("{name}.{key}"), v, rows);
            }
        }
        Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
            for (i, item) in items.iter().enumerate() {
                let own_name = item["name"].as_str().map(str::to_string);
                let label = own_name.clone().unwrap_or_else(|| (i + 1).to_string());
                let element = format!("{name}.{label}");
                match item {
                    Value::Object(fields) if own_name.is_some() => {
                        let rest: serde_json::Map<String, Value> = fields
                            .iter()
                            .filter(|(k, _)| k.as_str() != "name")
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        flatten_convention(&element, &Value::Object(rest), rows);
                    }
                    other => flatten_convention(&element, other, rows),
                }
            }
        }
        Value::Array(items) => {
            let plain: Vec<String> = items.iter().map(plain_value).collect();
            rows.push((name.to_string(), plain.join(", ")));
        }
        other => rows.push((name.to_string(), plain_value(other))),
    }
}

/// A JSON scalar as a reader writes it: strings unquoted, numbers without the f32 round-off
/// that JSON carries (`1.2000000476837158` → `1.2`), null as a dash.
fn plain_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            Some(f) if f.abs() < 1e-3 => format!("{f:.3e}"),
            Some(f) => {
                let short = format!("{f:.6}");
                short
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
            }
            None => n.to_string(),
        },
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Null => "–".into(),
        Value::Object(_) | Value::Array(_) => "–".into(),
    }
}

fn reproduce_section(found: &Found) -> Section {
    let mut s = Section::new("reproduce", "How this was made");
    match &found.run {
        Some(run) => {
            s.push(Block::Facts(run_facts(run)));
            let commands: Vec<String> = run
                .steps
                .iter()
                .map(|st| {
                    format!(
                        "# {} ({:.1} s)\n{}",
                        if st.name.is_empty() { "step" } else { &st.name },
                        st.seconds,
                        st.command
                    )
                })
                .collect();
            if !commands.is_empty() {
                s.push(Block::Text(
                    "Each step of the run as the equivalent stand-alone command (same options, \
                     same outputs):"
                        .into(),
                ));
                s.push(Block::Code(commands.join("\n\n")));
            }
        }
        None => s.push(Block::Text(format!(
            "No run.json in this folder; built by relevance {}.",
            env!("CARGO_PKG_VERSION")
        ))),
    }
    s
}

/// The facts of a run record that it holds, in reading order.
fn run_facts(run: &RunRecord) -> Vec<(String, String)> {
    // Seconds as JSON writes them (`12.0`, not `12`), as the report always showed them.
    let seconds = run.seconds.map(|v| Value::from(v).to_string());
    [
        ("version", run.version.clone()),
        ("started", run.started.clone()),
        ("finished", run.finished.clone()),
        ("seconds", seconds),
        ("machine", run.machine.clone()),
        ("mode", run.mode.clone()),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_string(), value?)))
    .collect()
}

/// The report of everything found in the run folder `path`; it holds only files inside that
/// folder (see `RunFolder`).
pub fn build_report(path: &Path) -> Result<Report, ReportError> {
    let run = RunFolder::open(path)?;
    let mut found = Found::default();
    scan(&run, path, 0, &mut found);
    let groups = model_groups(path, &found);
    if groups.is_empty()
        && found.explains.is_empty()
        && found.studies.is_empty()
        && found.concepts.is_empty()
        && found.atlases.is_empty()
        && found.reviews.is_empty()
    {
        return Err(ReportError::Empty(format!(
            "{}: nothing to report (no model.train.json, explain.json, concepts.json, atlas.json, \
             study summary.json or review.json below it)",
            path.display()
        )));
    }
    let mut sections = vec![findings(&run, &found, &groups)];
    sections.extend(data_section(path, &found));
    sections.extend(models_section(&groups));
    sections.extend(explain_section(&run, &found));
    sections.extend(concepts_section(&run, &found));
    let order = [
        "faithfulness",
        "sanity",
        "quality",
        "stability",
        "variability",
        "compare",
    ];
    let mut studies: Vec<&(PathBuf, StudySummary)> = found.studies.iter().collect();
    studies.sort_by_key(|(p, summary)| {
        (
            order
                .iter()
                .position(|o| *o == summary.study)
                .unwrap_or(order.len()),
            p.clone(),
        )
    });
    for (i, (record, summary)) in studies.into_iter().enumerate() {
        sections.push(study_section(&run, record, summary, i));
    }
    for (i, (record, summary)) in found.reviews.iter().enumerate() {
        let pictures = tag_pictures(&run, record, summary);
        sections.push(review_section(&label(path, record), summary, pictures, i));
    }
    sections.extend(run.omitted_section());
    sections.push(reproduce_section(&found));
    let subtitle = format!(
        "{} — relevance {}",
        run.canonical.display(),
        env!("CARGO_PKG_VERSION")
    );
    Ok(Report {
        title: "relevance report".into(),
        subtitle,
        sections,
    })
}

/// Builds the report of `run` and writes it atomically to `out` (default `run/report.html`).
pub fn write_report(run: &Path, out: Option<&Path>) -> Result<PathBuf, ReportError> {
    let report = build_report(run)?;
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.join("report.html"));
    crate::io::write_text_atomic(&path, &report.to_html()).map_err(|e| file_error(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_flatten_to_plain_dotted_pairs() {
        let conv = serde_json::json!({
            "augmentations": [
                {"name": "rotate:10", "transforms": [{"kind": "rotate", "degrees": 10.0}]},
                {"name": "brightness:1.2", "transforms": [{"kind": "brightness", "factor": 1.2000000476837158}]}
            ],
            "clusters": {"k": 3, "standardised": true},
            "models": ["shortcut-seed-0", "clean-seed-0"],
            "step": {"fraction": 0.019999999552965164},
            "tolerance": 1e-6,
        });
        let mut rows = Vec::new();
        for (name, value) in conv.as_object().unwrap() {
            flatten_convention(name, value, &mut rows);
        }
        let value_of = |name: &str| {
            rows.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {name} in {rows:?}"))
        };
        assert_eq!(
            value_of("augmentations.rotate:10.transforms.1.degrees"),
            "10"
        );
        assert_eq!(
            value_of("augmentations.rotate:10.transforms.1.kind"),
            "rotate"
        );
        assert_eq!(
            value_of("augmentations.brightness:1.2.transforms.1.factor"),
            "1.2"
        );
        assert_eq!(value_of("clusters.k"), "3");
        assert_eq!(value_of("clusters.standardised"), "yes");
        assert_eq!(value_of("models"), "shortcut-seed-0, clean-seed-0");
        assert_eq!(value_of("step.fraction"), "0.02");
        assert_eq!(value_of("tolerance"), "1.000e-6");
        assert!(
            rows.iter()
                .all(|(n, v)| !format!("{n}{v}").contains(['{', '}', '"', '[']))
        );
    }
}
