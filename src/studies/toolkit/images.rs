//! The images of a study: which split, which images a `--limit` keeps, and reading an image
//! (or its masks) into the model's frame.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::super::StudyError;
use crate::data::augment::Planes;
use crate::data::folder::{DataSplits, ImageFolder, ReadOptions, Sample, SplitSource};
use crate::data::image::{Image, load_image, load_input};
use crate::data::split::SplitFractions;
use crate::graph::{Model, ModelCard};
use crate::io::{safe_component, unique_name};
use crate::tensor::T4;

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
    /// Class index: the data set's, or the model's after [`label_for_model`].
    pub label: usize,
    /// Ground-truth object mask, if any.
    pub mask: Option<PathBuf>,
    /// Confounder-marker mask, if any.
    pub marker: Option<PathBuf>,
}

/// The images a study runs on and, in words, how they were chosen.
pub struct Selection {
    /// The images, in the order of [`limit_interleaved`].
    pub images: Vec<StudyImage>,
    /// `test split recorded in model.train.json`, `test/ folder`, `all images`, ….
    pub how: String,
}

/// The classes and samples of the split asked for, and how they were chosen.
fn split_samples(
    data: &Path,
    split: SplitChoice,
    recorded: Option<&SplitSource>,
) -> Result<(Vec<String>, Vec<Sample>, String), StudyError> {
    let opts = ReadOptions { strict: false };
    let has_parts = data.join("train").is_dir();
    Ok(match (split, recorded) {
        (SplitChoice::Test, Some(source)) => {
            let (fractions, seed) = match source {
                SplitSource::Folders => (SplitFractions::default(), 0),
                SplitSource::Stratified { seed, fractions } => (*fractions, *seed),
            };
            let s = DataSplits::open(data, fractions, seed, opts)?;
            let how = "test split recorded in model.train.json";
            (s.classes, s.test, how.into())
        }
        (SplitChoice::Test, None) if has_parts && data.join("test").is_dir() => {
            let f = ImageFolder::open(&data.join("test"), opts)?;
            (f.classes, f.samples, "test/ folder".into())
        }
        (_, _) if has_parts => {
            let s = DataSplits::open(data, SplitFractions::default(), 0, opts)?;
            let mut all = s.train;
            all.extend(s.val);
            all.extend(s.test);
            (s.classes, all, all_images(split))
        }
        _ => {
            let f = ImageFolder::open(data, opts)?;
            (f.classes, f.samples, all_images(split))
        }
    })
}

fn all_images(split: SplitChoice) -> String {
    match split {
        SplitChoice::All => "all images".into(),
        SplitChoice::Test => "all images (no training record or test/ folder)".into(),
    }
}

/// The `--limit` rule of every study: classes interleaved — the first image (in path order) of
/// each class, then the second of each, … — and the first `limit` of that order (at least one;
/// all without a limit). A limit therefore keeps the classes balanced instead of dropping whole
/// classes, which a cut of the path-sorted list would do (paths group by class folder).
pub fn limit_interleaved(
    samples: Vec<Sample>,
    classes: usize,
    limit: Option<usize>,
) -> Vec<Sample> {
    let mut by_class: Vec<Vec<Sample>> = vec![Vec::new(); classes];
    for s in samples {
        by_class[s.label].push(s);
    }
    for v in &mut by_class {
        v.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let longest = by_class.iter().map(Vec::len).max().unwrap_or(0);
    let mut ordered: Vec<Sample> = (0..longest)
        .flat_map(|i| by_class.iter().filter_map(move |v| v.get(i).cloned()))
        .collect();
    ordered.truncate(limit.unwrap_or(usize::MAX).max(1));
    ordered
}

/// The images of `data` for a study: the split asked for (`recorded`: the split in the first
/// model's training record), ordered and cut by [`limit_interleaved`]. Labels are the data
/// set's class indices; stems are unique and file-name safe.
pub fn select_images(
    data: &Path,
    split: SplitChoice,
    limit: Option<usize>,
    recorded: Option<&SplitSource>,
) -> Result<Selection, StudyError> {
    let (classes, samples, how) = split_samples(data, split, recorded)?;
    if samples.is_empty() {
        return Err(StudyError::file(data, format!("no images in the {how}")));
    }
    let mut seen = HashSet::new();
    let images = limit_interleaved(samples, classes.len(), limit)
        .into_iter()
        .map(|s| {
            let stem = s.path.file_stem().unwrap_or_default().to_string_lossy();
            StudyImage {
                stem: unique_name(safe_component(&stem), &mut seen),
                class: classes[s.label].clone(),
                label: s.label,
                path: s.path,
                mask: s.mask,
                marker: s.marker,
            }
        })
        .collect();
    Ok(Selection { images, how })
}

/// The images of `shards` (all when `None`): the partition of [`crate::data::shard`] over
/// the images' classes and paths, so every shard of a study sees the same selection and split.
/// A shard left without images (more shards than images) is an error naming both counts.
pub fn shard_images(
    images: Vec<StudyImage>,
    shards: Option<&crate::data::shard::ShardSet>,
) -> Result<Vec<StudyImage>, StudyError> {
    let Some(set) = shards else {
        return Ok(images);
    };
    let total = images.len();
    let kept = crate::data::shard::keep(images, set, |img| crate::data::shard::SampleId {
        class: img.class.clone(),
        name: img.path.display().to_string(),
    });
    if kept.is_empty() {
        return Err(StudyError::Invalid(format!(
            "this shard holds no images: {} shards of {total} image(s); use at most {total}",
            set.count
        )));
    }
    Ok(kept)
}

/// The class index of `image` for `card`: by class name when the card names its classes,
/// otherwise the data set's index (when the model has that many classes).
pub fn model_label(image: &StudyImage, card: &ModelCard) -> Option<usize> {
    match card.class_index(&image.class) {
        Some(i) => Some(i),
        None if card.classes.is_empty() && image.label < card.num_classes => Some(image.label),
        None => None,
    }
}

/// `images` with labels in `model`'s class list, for studies that explain every model with
/// the same target; an error names an image whose class the model does not have.
pub fn label_for_model(
    images: Vec<StudyImage>,
    model: &Model,
) -> Result<Vec<StudyImage>, StudyError> {
    let card = &model.card;
    images
        .into_iter()
        .map(|mut img| {
            img.label = model_label(&img, card).ok_or_else(|| {
                StudyError::file(
                    &img.path,
                    format!(
                        "class '{}' (label {}) is not among the model's {} classes ({})",
                        img.class,
                        img.label,
                        card.num_classes,
                        card.classes.join(", ")
                    ),
                )
            })?;
            Ok(img)
        })
        .collect()
}

/// The preprocessed inputs of `images` as one batch `[N, C, H, W]`; an error when a stop was
/// requested ([`super::stop`]), so every study can be interrupted between its chunks.
pub fn load_batch(images: &[StudyImage], model: &Model) -> Result<T4, StudyError> {
    super::stop::check_stop()?;
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
