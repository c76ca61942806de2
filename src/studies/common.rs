//! What the studies share: opening models (files, ensembles, seed folders) and the images of a
//! split, batching inputs and masks, per-image map planes, CSV / JSON / figure output, progress
//! bars and the resume keys.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::StudyError;
use crate::data::folder::{DataSplits, ImageFolder, ReadOptions, Sample, SplitSource};
use crate::data::image::{Image, load_image, load_input};
use crate::data::split::SplitFractions;
use crate::graph::{LoadOptions, Model};
use crate::io::{safe_component, unique_name};
use crate::methods::{MapKind, MapStyle};
use crate::records::{EnsembleRecord, StudySummary, Table, TrainRecord, read_record, write_record};
use crate::report::plots::Plot;
use crate::tensor::T4;

/// One model of a study with its label in the outputs.
pub struct StudyModel {
    /// `seed-<s>` for ensemble members, else the file stem (made unique).
    pub label: String,
    /// The loaded model.
    pub model: Model,
    /// The weights file.
    pub path: PathBuf,
    /// The split recorded in `model.train.json` beside the weights, if any.
    pub split: Option<SplitSource>,
}

/// Which images a study uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitChoice {
    /// The test split recorded in the first model's `model.train.json` (or the data set's
    /// `test/` folder); all images when there is neither.
    #[default]
    Test,
    /// Every image of the data set.
    All,
}

impl std::str::FromStr for SplitChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "test" => Ok(SplitChoice::Test),
            "all" => Ok(SplitChoice::All),
            _ => Err(format!("unknown split '{s}': use test or all")),
        }
    }
}

/// One image of a study.
#[derive(Clone, Debug)]
pub struct StudyImage {
    /// Unique, file-name-safe stem used for every per-image output.
    pub stem: String,
    /// The image file.
    pub path: PathBuf,
    /// The data set's class name.
    pub class: String,
    /// Class index in the models' class list (by name when the card names its classes).
    pub label: usize,
    /// Ground-truth object mask, if any.
    pub mask: Option<PathBuf>,
    /// Confounder-marker mask, if any.
    pub marker: Option<PathBuf>,
}

/// Expands `--models` arguments into `(label, weights)`: a training folder with `ensemble.json`
/// gives all its members (`seed-<s>`), a `seed-*` folder its `model.safetensors` (`seed-<s>`),
/// a file itself (its stem). Labels that would repeat (`seed-0` of two ensembles) are prefixed
/// with the name of the folder above (`shortcut-seed-0`, `clean-seed-0`); any still repeated
/// get `-2`, `-3`, ….
pub fn expand_models(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, StudyError> {
    let out = expand_models_raw(paths)?;
    let count = |l: &str| out.iter().filter(|(m, _)| m == l).count();
    let prefixed: Vec<(String, PathBuf)> = out
        .iter()
        .map(|(l, p)| {
            if count(l) < 2 {
                return (l.clone(), p.clone());
            }
            // weights → its folder (seed-<s> or the weights' folder) → the folder above it.
            let folder = if l.starts_with("seed-") {
                p.parent().and_then(Path::parent)
            } else {
                p.parent()
            };
            let name = folder
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().to_string());
            match name {
                Some(n) => (safe_component(&format!("{n}-{l}")), p.clone()),
                None => (l.clone(), p.clone()),
            }
        })
        .collect();
    let mut seen = HashSet::new();
    Ok(prefixed
        .into_iter()
        .map(|(l, p)| (unique_name(l, &mut seen), p))
        .collect())
}

fn expand_models_raw(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, StudyError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let ens = p.join("ensemble.json");
            if ens.is_file() {
                let rec: EnsembleRecord =
                    read_record(&ens).map_err(|e| StudyError::file(&ens, e.message))?;
                for m in rec.members {
                    // The record may hold paths relative to where training ran; the member's
                    // folder beside ensemble.json is authoritative.
                    let w = p.join(format!("seed-{}", m.seed)).join("model.safetensors");
                    let w = if w.is_file() { w } else { m.weights };
                    out.push((format!("seed-{}", m.seed), w));
                }
            } else if p.join("model.safetensors").is_file() {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                out.push((safe_component(&name), p.join("model.safetensors")));
            } else {
                return Err(StudyError::file(
                    p,
                    "neither ensemble.json nor model.safetensors in this folder",
                ));
            }
        } else {
            let stem = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            out.push((safe_component(&stem), p.clone()));
        }
    }
    if out.is_empty() {
        return Err(StudyError::Invalid("no model given (--models)".into()));
    }
    Ok(out)
}

/// The split recorded in `model.train.json` beside `weights`, if any.
fn recorded_split(weights: &Path) -> Option<SplitSource> {
    let rec: TrainRecord = read_record(&weights.with_file_name("model.train.json")).ok()?;
    Some(rec.data.split)
}

/// Loads every model of `--models`.
pub fn load_models(paths: &[PathBuf]) -> Result<Vec<StudyModel>, StudyError> {
    expand_models(paths)?
        .into_iter()
        .map(|(label, path)| {
            let model = Model::load(&path, &LoadOptions::default())?;
            Ok(StudyModel {
                label,
                split: recorded_split(&path),
                model,
                path,
            })
        })
        .collect()
}

/// The images of `data` for a study: the split asked for, interleaved across classes (first
/// image of each class, then the second of each, …, each class in path order) so that a
/// `limit` keeps the classes balanced; then the first `limit`. Labels are mapped to `model`'s
/// classes by name when its card names them.
pub fn select_images(
    data: &Path,
    split: SplitChoice,
    limit: Option<usize>,
    recorded: Option<&SplitSource>,
    model: &Model,
) -> Result<Vec<StudyImage>, StudyError> {
    let opts = ReadOptions { strict: false };
    let has_parts = data.join("train").is_dir();
    let (classes, samples): (Vec<String>, Vec<Sample>) = match (split, recorded) {
        (SplitChoice::Test, Some(source)) => {
            let (fractions, seed) = match source {
                SplitSource::Folders => (SplitFractions::default(), 0),
                SplitSource::Stratified { seed, fractions } => (*fractions, *seed),
            };
            let s = DataSplits::open(data, fractions, seed, opts)?;
            (s.classes, s.test)
        }
        (SplitChoice::Test, None) if has_parts && data.join("test").is_dir() => {
            let f = ImageFolder::open(&data.join("test"), opts)?;
            (f.classes, f.samples)
        }
        _ if has_parts => {
            let s = DataSplits::open(data, SplitFractions::default(), 0, opts)?;
            let mut all = s.train;
            all.extend(s.val);
            all.extend(s.test);
            (s.classes, all)
        }
        _ => {
            let f = ImageFolder::open(data, opts)?;
            (f.classes, f.samples)
        }
    };
    if samples.is_empty() {
        return Err(StudyError::file(data, "no images in the chosen split"));
    }
    let mut by_class: Vec<Vec<Sample>> = vec![Vec::new(); classes.len()];
    for s in samples {
        by_class[s.label].push(s);
    }
    for v in &mut by_class {
        v.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let longest = by_class.iter().map(Vec::len).max().unwrap_or(0);
    let mut ordered = Vec::new();
    for i in 0..longest {
        for v in &by_class {
            if let Some(s) = v.get(i) {
                ordered.push(s.clone());
            }
        }
    }
    ordered.truncate(limit.unwrap_or(usize::MAX).max(1));
    let mut seen = HashSet::new();
    ordered
        .into_iter()
        .map(|s| {
            let class = classes[s.label].clone();
            let label = if model.card.classes.is_empty() {
                s.label
            } else {
                model.card.class_index(&class).ok_or_else(|| {
                    StudyError::file(
                        &s.path,
                        format!(
                            "class '{class}' is not among the model's classes ({})",
                            model.card.classes.join(", ")
                        ),
                    )
                })?
            };
            if label >= model.card.num_classes {
                return Err(StudyError::file(
                    &s.path,
                    format!(
                        "label {label} but the model has {} classes",
                        model.card.num_classes
                    ),
                ));
            }
            let stem = s.path.file_stem().unwrap_or_default().to_string_lossy();
            Ok(StudyImage {
                stem: unique_name(safe_component(&stem), &mut seen),
                path: s.path,
                class,
                label,
                mask: s.mask,
                marker: s.marker,
            })
        })
        .collect()
}

/// The preprocessed inputs of `images` as one batch `[N, C, H, W]`.
pub fn load_batch(images: &[StudyImage], model: &Model) -> Result<T4, StudyError> {
    let xs = images
        .iter()
        .map(|i| load_input(&i.path, &model.card))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(T4::cat(xs, 0))
}

/// A binary mask file brought to the model's input size like the images are (resize / crop by
/// the card), `true` where the resized grey value is above 127.
pub fn load_mask(path: &Path, model: &Model) -> Result<Vec<bool>, StudyError> {
    let img: Image = load_image(path)?;
    let mut card = model.card.clone();
    card.channels = 1;
    let fitted = img.fit(&card);
    Ok(fitted.pixels.iter().map(|&v| v > 127).collect())
}

/// Softmax of one row.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Index of the largest value (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// The `H·W` plane of row `r` of a method's output `values` (`[N, C, H, W]` for input-space
/// maps, `[N, 1, H, W]` for CAMs), reduced over channels as the map is drawn
/// ([`crate::report::heatmap::plane`]: sum for signed maps, `max |·|` for magnitudes).
pub fn map_plane(
    values: &[f32],
    r: usize,
    kind: MapKind,
    style: MapStyle,
    [c, h, w]: [usize; 3],
) -> Vec<f32> {
    let channels = match kind {
        MapKind::Input => c,
        MapKind::Cam => 1,
    };
    let per = channels * h * w;
    crate::report::heatmap::plane(&values[r * per..(r + 1) * per], channels, style)
}

/// A progress bar on stderr (hidden when `show` is false).
pub fn progress_bar(len: usize, what: &str, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len}  ({elapsed}<{eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// A CSV field: quoted when it holds a comma, quote or newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number for CSV: empty for NaN / None.
pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        String::new()
    }
}

/// Writes a CSV file atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<(), StudyError> {
    let mut text = header.join(",");
    text.push('\n');
    for r in rows {
        let line: Vec<String> = r.iter().map(|f| csv_field(f)).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    write_text(path, &text)
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), StudyError> {
    crate::io::write_text_atomic(path, text).map_err(|e| StudyError::file(path, e))
}

/// Writes JSON (pretty) atomically.
pub fn write_json(path: &Path, value: &Value) -> Result<(), StudyError> {
    write_text(
        path,
        &serde_json::to_string_pretty(value).expect("JSON value"),
    )
}

/// Creates a folder (and parents).
pub fn create_dir(path: &Path) -> Result<(), StudyError> {
    std::fs::create_dir_all(path).map_err(|e| StudyError::file(path, format!("cannot create: {e}")))
}

/// One entry of `figures.json` (the record type, named here for the pipelines).
pub use crate::records::Figure;

/// Writes `plot` as `<name>.png` and `<name>.svg` into `out` and returns its figure entry.
pub fn save_plot(out: &Path, name: &str, plot: &Plot, caption: &str) -> Result<Figure, StudyError> {
    let png = out.join(format!("{name}.png"));
    let svg = out.join(format!("{name}.svg"));
    let bytes = plot.png().map_err(|e| StudyError::file(&png, e))?;
    crate::io::write_atomic(&png, &bytes).map_err(|e| StudyError::file(&png, e))?;
    write_text(&svg, &plot.svg().map_err(|e| StudyError::file(&svg, e))?)?;
    Ok(Figure::new(
        format!("{name}.png"),
        Some(format!("{name}.svg")),
        plot.title.clone(),
        caption.to_string(),
    ))
}

/// Writes a picture as PNG into `out` and returns its figure entry.
pub fn save_picture(
    out: &Path,
    file: &str,
    img: &image::RgbImage,
    title: &str,
    caption: &str,
) -> Result<Figure, StudyError> {
    let path = out.join(file);
    crate::report::heatmap::write_png(&path, img).map_err(|e| StudyError::file(&path, e))?;
    Ok(Figure::new(
        file.to_string(),
        None,
        title.to_string(),
        caption.to_string(),
    ))
}

/// `img` with a vertical colour bar of `cmap` (low at the bottom) on its right.
pub fn with_colour_bar(img: &image::RgbImage, cmap: crate::report::Colormap) -> image::RgbImage {
    let (w, h) = img.dimensions();
    let bar = (w / 10).max(4);
    let gap = 2;
    let lut = cmap.lut();
    image::RgbImage::from_fn(w + gap + bar, h, |x, y| {
        if x < w {
            *img.get_pixel(x, y)
        } else if x < w + gap {
            image::Rgb([255, 255, 255])
        } else {
            let t = 1.0 - y as f32 / (h.max(2) - 1) as f32;
            image::Rgb(lut[(t * 255.0).round() as usize])
        }
    })
}

/// Writes `summary.json`.
pub fn write_summary(
    out: &Path,
    study: &str,
    command: Option<&[String]>,
    conventions: Value,
    headline: &[String],
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> Result<(), StudyError> {
    let summary = StudySummary {
        study: study.to_string(),
        command: command.map(<[String]>::to_vec),
        version: env!("CARGO_PKG_VERSION").to_string(),
        conventions,
        headline: headline.to_vec(),
        table: Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        },
        work: Value::Null,
    };
    let path = out.join("summary.json");
    write_record(&path, &summary).map_err(|e| StudyError::file(&path, e.message))
}

/// Writes `figures.json`.
pub fn write_figures(out: &Path, figures: &[Figure]) -> Result<(), StudyError> {
    let path = out.join("figures.json");
    write_record(&path, &figures).map_err(|e| StudyError::file(&path, e.message))
}

/// A JSON number, `null` for NaN.
pub fn jnum(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Reads a resume key file; true when it exists and equals `key`.
pub fn key_matches(path: &Path, key: &Value) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|v| &v == key)
}

/// Prepares a cache folder for work described by `key`: when the folder's `key.json` differs,
/// the folder's files are removed (they belong to other options), then the key is written.
pub fn prepare_cache(dir: &Path, key: &Value) -> Result<(), StudyError> {
    let key_path = dir.join("key.json");
    if dir.is_dir() && !key_matches(&key_path, key) {
        std::fs::remove_dir_all(dir).map_err(|e| StudyError::file(dir, e))?;
    }
    create_dir(dir)?;
    if !key_path.is_file() {
        write_json(&key_path, key)?;
    }
    Ok(())
}
