//! What the faithfulness and stability pipelines share: resolving `--models` into labelled
//! models, choosing the images of a split, reading an image into the model's frame, explaining
//! it, and writing the contract's files (`summary.json`, `figures.json`, plots, grids)
//! atomically. CSV writing and the split choice are [`super::common`]'s.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::StudyError;
pub use super::common::{SplitChoice, create_dir, csv_field, num, write_csv};
use crate::data::augment::Planes;
use crate::data::folder::{DataSplits, ImageFolder, ReadOptions};
use crate::data::image::load_image;
use crate::data::split::SplitFractions;
use crate::graph::{LoadOptions, Model, ModelCard};
use crate::report::plots::Plot;
// The study records live in `records` (one definition for writers and readers); the
// pipelines name them through this module.
use crate::records::{EnsembleRecord, TrainRecord};
pub use crate::records::{Figure, StudySummary as Summary, Table};

/// A model of a study with its label in the outputs.
pub struct StudyModel {
    /// `seed-<s>` for ensemble members, else the weights' file stem (made unique).
    pub label: String,
    /// The model.
    pub model: Model,
    /// Its `model.train.json`, when one lies beside the weights.
    pub record: Option<TrainRecord>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StudyError> {
    crate::records::read_record(path).map_err(|e| StudyError::file(path, e.message))
}

fn train_record_beside(weights: &Path) -> Option<TrainRecord> {
    let path = weights.parent()?.join("model.train.json");
    path.is_file()
        .then(|| read_json::<TrainRecord>(&path).ok())
        .flatten()
}

fn load_one(weights: &Path, label: String) -> Result<StudyModel, StudyError> {
    let model = Model::load(weights, &LoadOptions::default())?;
    Ok(StudyModel {
        label,
        record: train_record_beside(weights),
        model,
    })
}

/// Resolves `--models`: weights files (`.safetensors`/`.pth` with a card beside, `.onnx`),
/// training folders with `ensemble.json` (every member, labelled `seed-<s>`) or `seed-*`
/// folders (their `model.safetensors`). Labels that would repeat are qualified by the parent
/// folder's name (`shortcut-seed-0`, `clean-seed-0`), then made unique with `-2`, `-3`, ….
pub fn load_models(paths: &[PathBuf]) -> Result<Vec<StudyModel>, StudyError> {
    if paths.is_empty() {
        return Err(StudyError::Invalid("no models given (--models)".into()));
    }
    // (model, label, label qualified by the parent folder for when labels clash)
    let mut found: Vec<(StudyModel, String)> = Vec::new();
    let parent_of = |p: &Path| {
        p.parent()
            .and_then(|q| q.file_name())
            .map(|n| n.to_string_lossy().to_string())
    };
    for path in paths {
        if path.is_dir() {
            let ensemble = path.join("ensemble.json");
            if ensemble.is_file() {
                let rec: EnsembleRecord = read_json(&ensemble)?;
                let folder = path.file_name().map(|n| n.to_string_lossy().to_string());
                for m in rec.members {
                    let local = path
                        .join(format!("seed-{}", m.seed))
                        .join("model.safetensors");
                    let weights = if local.is_file() { local } else { m.weights };
                    let label = format!("seed-{}", m.seed);
                    let qualified = folder
                        .as_ref()
                        .map_or(label.clone(), |f| format!("{f}-{label}"));
                    found.push((load_one(&weights, label)?, qualified));
                }
                continue;
            }
            let weights = path.join("model.safetensors");
            if !weights.is_file() {
                return Err(StudyError::file(
                    path,
                    "neither ensemble.json nor model.safetensors in this folder",
                ));
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "model".into());
            let qualified = parent_of(path).map_or(name.clone(), |p| format!("{p}-{name}"));
            found.push((load_one(&weights, name)?, qualified));
        } else {
            let stem = path
                .file_stem()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "model".into());
            let qualified = parent_of(path).map_or(stem.clone(), |p| format!("{p}-{stem}"));
            found.push((load_one(path, stem)?, qualified));
        }
    }
    // Labels that clash (e.g. `shortcut/seed-0` and `clean/seed-0`) take their folder's name.
    let labels: Vec<String> = found.iter().map(|(m, _)| m.label.clone()).collect();
    let mut out: Vec<StudyModel> = found
        .into_iter()
        .map(|(mut m, qualified)| {
            if labels.iter().filter(|l| **l == m.label).count() > 1 {
                m.label = qualified;
            }
            m
        })
        .collect();
    make_unique(out.iter_mut().map(|m| &mut m.label));
    Ok(out)
}

/// Appends `-2`, `-3`, … to repeated names (and makes them file-name safe).
pub fn make_unique<'a>(names: impl Iterator<Item = &'a mut String>) {
    let mut seen = HashSet::new();
    for name in names {
        *name = crate::io::unique_name(crate::io::safe_component(name), &mut seen);
    }
}

/// One image of a study.
#[derive(Clone, Debug)]
pub struct StudyImage {
    /// The file.
    pub path: PathBuf,
    /// A unique, file-name-safe stem used for per-image outputs.
    pub stem: String,
    /// Its class index in the data set.
    pub label: usize,
    /// Its class name.
    pub class: String,
    /// Ground-truth mask, if any.
    pub mask: Option<PathBuf>,
}

/// The images a study runs on, sorted by path, at most `limit`, and how they were chosen.
pub fn select_images(
    data: &Path,
    split: SplitChoice,
    limit: Option<usize>,
    record: Option<&TrainRecord>,
) -> Result<(Vec<StudyImage>, String), StudyError> {
    let opts = ReadOptions::default();
    let (classes, mut samples, how) = match split {
        SplitChoice::All => {
            let all = ImageFolder::open(data, opts)?;
            (all.classes, all.samples, "all images".to_string())
        }
        SplitChoice::Test => {
            let recorded = record.map(|r| r.data.split.clone());
            let (fractions, seed) = match &recorded {
                Some(crate::data::folder::SplitSource::Stratified { seed, fractions }) => {
                    (*fractions, *seed)
                }
                _ => (SplitFractions::default(), 0),
            };
            if recorded.is_some() || data.join("test").is_dir() {
                let splits = DataSplits::open(data, fractions, seed, opts)?;
                let how = if recorded.is_some() {
                    "test split recorded in model.train.json".to_string()
                } else {
                    "test/ folder".to_string()
                };
                (splits.classes, splits.test, how)
            } else {
                let all = ImageFolder::open(data, opts)?;
                (
                    all.classes,
                    all.samples,
                    "all images (no training record or test/ folder)".to_string(),
                )
            }
        }
    };
    if samples.is_empty() {
        return Err(StudyError::file(data, format!("no images in the {how}")));
    }
    samples.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(n) = limit {
        samples.truncate(n.max(1));
    }
    let mut images: Vec<StudyImage> = samples
        .into_iter()
        .map(|s| StudyImage {
            stem: s
                .path
                .file_stem()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            class: classes[s.label].clone(),
            label: s.label,
            mask: s.mask,
            path: s.path,
        })
        .collect();
    make_unique(images.iter_mut().map(|i| &mut i.stem));
    Ok((images, how))
}

/// The class index of `image` for `card`: by class name when the card names its classes,
/// otherwise the data set's index.
pub fn model_label(image: &StudyImage, card: &ModelCard) -> Option<usize> {
    match card.class_index(&image.class) {
        Some(i) => Some(i),
        None if card.classes.is_empty() && image.label < card.num_classes => Some(image.label),
        None => None,
    }
}

/// An image file brought to the card's size and channels as planes in `[0, 1]` (the frame
/// augmentations act in).
pub fn load_planes(path: &Path, card: &ModelCard) -> Result<Planes, StudyError> {
    let img = load_image(path)?;
    Ok(Planes::from_image(&img.fit(card)))
}

/// Planes in `[0, 1]` as model input values (`v·255·scale + shift` per channel, the card's
/// normalisation).
pub fn planes_to_input(planes: &Planes, card: &ModelCard) -> Vec<f32> {
    let affine = card.normalization.affine(planes.channels);
    let n = planes.width * planes.height;
    planes
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (s, b) = affine[i / n];
            v * 255.0 * s + b
        })
        .collect()
}

/// Mean and sample standard deviation (`n − 1`; NaN for fewer than 2 values) of the finite
/// values.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let sd = if v.len() < 2 {
        f64::NAN
    } else {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    (mean, sd)
}

/// Median of the finite values (NaN if none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Writes pretty JSON atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StudyError> {
    let text = serde_json::to_string_pretty(value).expect("JSON value serialises");
    crate::io::write_text_atomic(path, &text).map_err(|e| StudyError::file(path, e))
}

/// Reads JSON written by an earlier run; `None` when missing or unreadable (it is recomputed).
pub fn read_previous(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Renders `plot` as `<stem>.png` and `<stem>.svg` in `out`.
pub fn write_plot(
    out: &Path,
    stem: &str,
    plot: &Plot,
    caption: &str,
) -> Result<Figure, StudyError> {
    let png = out.join(format!("{stem}.png"));
    let svg = out.join(format!("{stem}.svg"));
    let bytes = plot.png().map_err(|e| StudyError::file(&png, e))?;
    crate::io::write_atomic(&png, &bytes).map_err(|e| StudyError::file(&png, e))?;
    let text = plot.svg().map_err(|e| StudyError::file(&svg, e))?;
    crate::io::write_text_atomic(&svg, &text).map_err(|e| StudyError::file(&svg, e))?;
    Ok(Figure::new(
        format!("{stem}.png"),
        Some(format!("{stem}.svg")),
        plot.title.clone(),
        caption.into(),
    ))
}

/// A progress bar on stderr (hidden when `show` is false).
pub fn progress_bar(len: usize, message: String, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:32} [{bar:30}] {pos}/{len} images, {elapsed} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// A method of a study: an explanation method by name, or the `random` control (uniform noise
/// maps, seeded per image, the floor every method should beat).
pub enum StudyMethod {
    /// A method of [`crate::methods::by_name`].
    Explainer(Box<dyn crate::methods::Explainer>),
    /// Uniform random maps in `[0, 1)`, drawn from `seed` and the image's key.
    Random {
        /// Seed of the draws.
        seed: u64,
    },
}

/// Name of the random control method.
pub const RANDOM_METHOD: &str = "random";

/// The methods named in `names` (duplicates dropped); `random` is the control.
pub fn study_methods(
    names: &[String],
    opts: &crate::methods::MethodOptions,
) -> Result<Vec<(String, StudyMethod)>, StudyError> {
    let mut out: Vec<(String, StudyMethod)> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if out.iter().any(|(n, _)| n == name) {
            continue;
        }
        let method = if name == RANDOM_METHOD {
            StudyMethod::Random { seed: opts.seed }
        } else {
            StudyMethod::Explainer(crate::methods::by_name(name, opts)?)
        };
        out.push((name.to_string(), method));
    }
    if out.is_empty() {
        return Err(StudyError::Invalid("no methods given (--methods)".into()));
    }
    Ok(out)
}

/// One `[H, W]` plane per row of `x` (`[N, C, H, W]`) for `targets`, reduced by the method's
/// [`crate::methods::MapStyle`] as `relevance explain` draws it (signed: channel sum; magnitude:
/// `max_c |v|`; CAMs as they are). `keys[r]` seeds the random control per row.
pub fn explain_planes(
    method: &StudyMethod,
    model: &Model,
    x: &crate::tensor::T4,
    acts: &crate::engine::Activations,
    targets: &[usize],
    keys: &[String],
) -> Result<Vec<Vec<f32>>, StudyError> {
    let [n, c, h, w] = x.dims();
    match method {
        StudyMethod::Random { seed } => Ok(keys
            .iter()
            .map(|k| {
                let mut rng = crate::rng::Rng::derive(*seed, k);
                (0..h * w).map(|_| rng.uniform()).collect()
            })
            .collect()),
        StudyMethod::Explainer(m) => {
            let maps = crate::tensor::to_vec(&m.explain_forward(model, x, acts, targets)?);
            let channels = match m.kind() {
                crate::methods::MapKind::Input => c,
                crate::methods::MapKind::Cam => 1,
            };
            let per = channels * h * w;
            Ok((0..n)
                .map(|r| {
                    crate::report::heatmap::plane(
                        &maps[r * per..(r + 1) * per],
                        channels,
                        m.style(),
                    )
                })
                .collect())
        }
    }
}

/// Predicted class and class probabilities of every row of a forward pass.
pub fn predictions(
    model: &Model,
    acts: &crate::engine::Activations,
    rows: usize,
) -> Result<Vec<(usize, Vec<f32>)>, StudyError> {
    let logits = crate::methods::pass::logits(model, acts)?;
    let k = logits.len() / rows.max(1);
    Ok(logits
        .chunks(k)
        .map(|row| {
            let mut p = row.to_vec();
            crate::metrics::scorer::softmax_in_place(&mut p);
            (crate::metrics::scorer::argmax(row), p)
        })
        .collect())
}

impl StudyMethod {
    /// How its maps are drawn (the random control as a unit map).
    pub fn style(&self) -> crate::methods::MapStyle {
        match self {
            StudyMethod::Explainer(m) => m.style(),
            StudyMethod::Random { .. } => crate::methods::MapStyle::Unit,
        }
    }
}

/// A map laid over its image for a figure: normalised per map by its style (signed maps
/// symmetrically around zero at the 99.5th percentile of |v|), enlarged to at least 96 pixels a
/// side (nearest neighbour) so small inputs stay visible.
pub fn overlay_tile(
    base: &image::RgbImage,
    plane: &[f32],
    style: crate::methods::MapStyle,
) -> image::RgbImage {
    use crate::report::heatmap::{default_colormap, normalise, overlay};
    let norm = normalise(plane, style, crate::report::heatmap::Scale::default());
    enlarge(&overlay(base, &norm, style, default_colormap(style), 0.7))
}

/// Enlarges a picture by an integer factor to at least 96 pixels a side (nearest neighbour).
pub fn enlarge(img: &image::RgbImage) -> image::RgbImage {
    let (w, h) = img.dimensions();
    let k = 96u32.div_ceil(w.min(h).max(1)).max(1);
    image::imageops::resize(img, w * k, h * k, image::imageops::FilterType::Nearest)
}

/// Writes a grid of tiles as `<stem>.png` and returns its `figures.json` entry.
pub fn write_grid(
    out: &Path,
    stem: &str,
    rows: &[Vec<image::RgbImage>],
    title: &str,
    caption: &str,
) -> Result<Figure, StudyError> {
    let path = out.join(format!("{stem}.png"));
    let picture = crate::report::heatmap::grid(rows, 4);
    crate::report::heatmap::write_png(&path, &picture).map_err(|e| StudyError::file(&path, e))?;
    Ok(Figure::new(
        format!("{stem}.png"),
        None,
        title.into(),
        caption.into(),
    ))
}

/// What a study run covered, handed to its output writer.
pub struct RunFacts {
    /// Method names in order.
    pub methods: Vec<String>,
    /// Model labels in order.
    pub models: Vec<String>,
    /// How the images were chosen.
    pub split: String,
    /// Number of images.
    pub images: usize,
    /// Image × method × model units computed by this run.
    pub computed: usize,
    /// Units reused from an earlier run.
    pub reused: usize,
}

/// A stamp of the model's weights file (size and modification time), so results stored by an
/// earlier run are not reused after the weights changed; `memory` for models without a file.
pub fn weights_stamp(model: &Model) -> String {
    match std::fs::metadata(&model.source) {
        Ok(meta) => {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{}:{modified}", model.source.display(), meta.len())
        }
        Err(_) => "memory".into(),
    }
}
