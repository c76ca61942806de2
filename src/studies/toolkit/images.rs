//! The images of a study: which split, which images a `--limit` keeps, and reading an image
//! (or its masks) into the model's frame.
//!
//! A study reads every data source `relevance train` reads: an ImageFolder folder (with or
//! without `train/`, `val/`, `test/`), a CSV list `path,label[,mask]`, or a folder of
//! MNIST-style IDX files. An IDX image has no file of its own: it is named
//! `<folder>/<part>-<index>` (`test-000123`: the 124th image of the `t10k` files, `train-…`
//! the training files), which is its stem in every per-image output, and its pixels are held
//! decoded in memory.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::super::StudyError;
use crate::data::augment::Planes;
use crate::data::folder::{DataSplits, ImageFolder, ReadOptions, Sample, SplitSource};
use crate::data::idx::{IdxSet, class_names, is_mnist_dir, read_mnist_dir};
use crate::data::image::{Image, load_image, load_input, preprocess};
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
    /// The decoded pixels of an image without a file of its own (IDX); `None`: read `path`.
    pub pixels: Option<Arc<Image>>,
    /// The data set is the one the study's first model was trained on (its
    /// `model.train.json` names it), so `label` is that model's class index too: the class
    /// is matched by index where its name is not among the model's classes.
    pub training_source: bool,
}

impl StudyImage {
    /// The image's pixels as stored (decoded from memory, or read from its file).
    pub fn image(&self) -> Result<Image, StudyError> {
        match &self.pixels {
            Some(img) => Ok(Image::clone(img)),
            None => Ok(load_image(&self.path)?),
        }
    }

    /// The preprocessed model input `[1, C, H, W]` by `card`.
    pub fn input(&self, card: &ModelCard) -> Result<T4, StudyError> {
        match &self.pixels {
            Some(img) => Ok(preprocess(img, card)),
            None => Ok(load_input(&self.path, card)?),
        }
    }
}

/// One image of the split before the limit: its sample and, for IDX, its pixels.
struct Candidate {
    sample: Sample,
    pixels: Option<Arc<Image>>,
}

impl From<Sample> for Candidate {
    fn from(sample: Sample) -> Self {
        Candidate {
            sample,
            pixels: None,
        }
    }
}

/// The class names, images and how they were chosen.
type SplitImages = (Vec<String>, Vec<Candidate>, String);

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
) -> Result<SplitImages, StudyError> {
    if data.is_dir() && is_mnist_dir(data) {
        return idx_samples(data, split);
    }
    let (classes, samples, how) = file_samples(data, split, recorded)?;
    Ok((
        classes,
        samples.into_iter().map(Candidate::from).collect(),
        how,
    ))
}

/// The images of an IDX folder. Its test split is the `t10k` files whatever the record says:
/// `train` holds them out as its test part and draws only the validation part from the
/// training files. Classes are named as `train` names them ([`class_names`]).
fn idx_samples(data: &Path, split: SplitChoice) -> Result<SplitImages, StudyError> {
    let (train, test) = read_mnist_dir(data)?;
    let count = train.labels.iter().max().map_or(0, |m| m + 1);
    if let Some(&label) = test.labels.iter().find(|&&l| l >= count) {
        return Err(StudyError::file(
            data,
            format!("a t10k label is {label}, but the training labels run 0..{count}"),
        ));
    }
    let part = |set: IdxSet, name: &str| -> Vec<Candidate> {
        let IdxSet { images, labels } = set;
        images
            .into_iter()
            .zip(labels)
            .enumerate()
            .map(|(i, (img, label))| Candidate {
                sample: Sample {
                    path: data.join(format!("{name}-{i:06}")),
                    label,
                    mask: None,
                    marker: None,
                },
                pixels: Some(Arc::new(img)),
            })
            .collect()
    };
    let classes = class_names(count);
    Ok(match split {
        SplitChoice::Test => (
            classes,
            part(test, "test"),
            "test split (the t10k IDX files)".into(),
        ),
        SplitChoice::All => {
            let mut all = part(train, "train");
            all.extend(part(test, "test"));
            (classes, all, all_images(split))
        }
    })
}

/// The images of an ImageFolder folder or a CSV list.
fn file_samples(
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
    interleave(samples, classes, limit, |s| s)
}

/// [`limit_interleaved`] over anything holding a sample.
fn interleave<T>(
    items: Vec<T>,
    classes: usize,
    limit: Option<usize>,
    sample: impl Fn(&T) -> &Sample,
) -> Vec<T> {
    let mut by_class: Vec<Vec<T>> = (0..classes).map(|_| Vec::new()).collect();
    for item in items {
        by_class[sample(&item).label].push(item);
    }
    for v in &mut by_class {
        v.sort_by(|a, b| sample(a).path.cmp(&sample(b).path));
        v.reverse();
    }
    let keep = limit.unwrap_or(usize::MAX).max(1);
    let mut ordered = Vec::new();
    // Round robin over the classes, each popping its next image (the lists are reversed).
    while ordered.len() < keep && by_class.iter().any(|v| !v.is_empty()) {
        for v in &mut by_class {
            if ordered.len() == keep {
                break;
            }
            if let Some(item) = v.pop() {
                ordered.push(item);
            }
        }
    }
    ordered
}

/// The images of `data` for a study: the split asked for (`recorded`: the split in the first
/// model's training record), ordered and cut by [`limit_interleaved`]. Labels are the data
/// set's class indices; stems are unique and file-name safe. `training_source`: `data` is the
/// first model's training data ([`StudyImage::training_source`]).
pub fn select_images(
    data: &Path,
    split: SplitChoice,
    limit: Option<usize>,
    recorded: Option<&SplitSource>,
    training_source: bool,
) -> Result<Selection, StudyError> {
    let (classes, samples, how) = split_samples(data, split, recorded)?;
    if samples.is_empty() {
        return Err(StudyError::file(data, format!("no images in the {how}")));
    }
    let mut rows_per_path: HashMap<&Path, usize> = HashMap::new();
    for c in &samples {
        *rows_per_path.entry(&c.sample.path).or_default() += 1;
    }
    // A multi-label list names an image once per true class: each row is a unit of its own,
    // named by the image and the class.
    let repeated: HashSet<PathBuf> = rows_per_path
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(p, _)| p.to_path_buf())
        .collect();
    let mut seen = HashSet::new();
    let images = interleave(samples, classes.len(), limit, |c| &c.sample)
        .into_iter()
        .map(|Candidate { sample: s, pixels }| {
            let file_stem = s.path.file_stem().unwrap_or_default().to_string_lossy();
            let stem = match repeated.contains(&s.path) {
                true => format!("{file_stem}-{}", classes[s.label]),
                false => file_stem.into_owned(),
            };
            StudyImage {
                stem: unique_name(safe_component(&stem), &mut seen),
                class: classes[s.label].clone(),
                label: s.label,
                path: s.path,
                mask: s.mask,
                marker: s.marker,
                pixels,
                training_source,
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

/// The class index of `image` for `card`: by class name when the card names it; otherwise the
/// data set's index when the card names no classes or the data set is the first model's
/// training data ([`StudyImage::training_source`]), and the model has that many classes.
pub fn model_label(image: &StudyImage, card: &ModelCard) -> Option<usize> {
    let by_index = card.classes.is_empty() || image.training_source;
    match card.class_index(&image.class) {
        Some(i) => Some(i),
        None if by_index && image.label < card.num_classes => Some(image.label),
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
        .map(|i| i.input(&model.card))
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

/// An image brought to the card's size and channels as planes in `[0, 1]` (the frame
/// augmentations act in).
pub fn load_planes(image: &StudyImage, card: &ModelCard) -> Result<Planes, StudyError> {
    Ok(Planes::from_image(&image.image()?.fit(card)))
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
