//! The items of a study folder: one per image × model × method of a study's map cache
//! (`cache/<model>/`, written by `compare` and `variability`) or saved maps (`maps/<model>/`,
//! `faithfulness` and `stability` with `--save-maps`), shown over the study's input images,
//! which lie in the data folder the user names (`--data`).
//!
//! The cache's `source.json` ([`MapsSource`]) records the model card, the methods, the target
//! rule and every image by its path below the data folder and its SHA-256. An image is read
//! only through that list: each part of its path must be a plain name, its real path (links
//! resolved) must lie inside the data folder, and its bytes must hash to the recorded value —
//! so a data folder that is not the one the study read is refused, and no request names a
//! file. The input is brought to the model's frame as the study did ([`preprocess`] by the
//! card) and mapped back to pixels, and the cached map is drawn over it by the overlay
//! renderer of `relevance explain` ([`map_overlay`], its default opacity and colormaps), on
//! request.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::ReviewError;
use super::items::{
    Catalogue, Item, ItemInfo, MAX_FILE_BYTES, Pictures, inside, item_id, read_run_record,
};
use crate::data::image::{decode_image, preprocess};
use crate::data::npy::npy_from_bytes;
use crate::graph::ModelCard;
use crate::methods::MapStyle;
use crate::records::{MapsSource, SourceImage};
use crate::report::heatmap::{DEFAULT_ALPHA, input_image, map_overlay, png_bytes};
use crate::studies::toolkit::TargetRule;
use crate::tensor::to_vec;

/// The input image of a study item and how it is drawn.
#[derive(Clone, Debug)]
pub struct StudyPictures {
    /// The image's real path inside the data folder.
    image: PathBuf,
    /// Its SHA-256 as the study recorded it (checked again on every read).
    sha256: String,
    /// The model card the study brought it to the model's frame with.
    card: Arc<ModelCard>,
}

impl StudyPictures {
    /// The input as the model saw it, as PNG bytes.
    pub fn input_png(&self) -> Result<Vec<u8>, String> {
        png_bytes(&self.input_picture()?).map_err(|e| e.to_string())
    }

    /// The map in `map_npy` drawn over the input as `relevance explain` draws it.
    pub fn overlay_png(&self, map_npy: &Path, style: MapStyle) -> Result<Vec<u8>, String> {
        let base = self.input_picture()?;
        let map = read_plane(map_npy, &self.card)?;
        let picture = map_overlay(&base, &map, 1, style, None, DEFAULT_ALPHA);
        png_bytes(&picture).map_err(|e| e.to_string())
    }

    /// The image decoded, preprocessed by the card and mapped back to 8-bit pixels (the
    /// picture `explain` writes as `<stem>.input.png`).
    fn input_picture(&self) -> Result<image::RgbImage, String> {
        let bytes = read_bounded(&self.image)?;
        if crate::io::sha256_hex(&bytes) != self.sha256 {
            return Err("the image changed since the server started".into());
        }
        let x = preprocess(&decode_image(&bytes)?, &self.card);
        let [_, c, h, w] = x.dims();
        Ok(input_image(&to_vec(&x), c, h as u32, w as u32, &self.card))
    }
}

/// Whether `path` is the record of a study's maps: `…/cache/<model>/source.json` (the map
/// cache of `compare` and `variability`) or `…/maps/<model>/source.json` (the maps
/// `faithfulness` and `stability` save with `--save-maps`).
pub(super) fn is_study_cache(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == MapsSource::FILE)
        && path
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|n| n == "cache" || n == "maps")
}

/// Adds the items of the study cache recorded in `source_path` (below the run folder `root`),
/// with its input images from `data` (a canonical path: the data folder, or a CSV list
/// whose folder holds the images).
pub(super) fn add_study(
    catalogue: &mut Catalogue,
    root: &Path,
    source_path: &Path,
    data: &Path,
) -> Result<(), ReviewError> {
    let source: MapsSource = read_run_record(source_path)?;
    let card = model_card(&source).map_err(|e| ReviewError::file(source_path, e))?;
    let target = match source.target.as_str() {
        "true" => TargetRule::True,
        "predicted" => TargetRule::Predicted,
        other => {
            return Err(ReviewError::file(
                source_path,
                format!("unknown target rule '{other}'"),
            ));
        }
    };
    let cache = source_path.parent().unwrap_or(root);
    let label = folder_label(root, cache);
    let data_root = if data.is_file() {
        data.parent().unwrap_or(data)
    } else {
        data
    };
    for image in &source.images {
        let Some(file) = &image.file else {
            continue;
        };
        let real = data_image(data_root, file, image, &source)?;
        let pictures = StudyPictures {
            image: real.clone(),
            sha256: image.sha256.clone().unwrap_or_default(),
            card: card.clone(),
        };
        let input = pictures
            .input_png()
            .map_err(|e| ReviewError::file(&real, e))?;
        let Some(probs) = cached_probs(root, cache, &image.stem) else {
            continue;
        };
        let class = target.class_of(image.label, &probs);
        let Some(&prob) = probs.get(class) else {
            continue;
        };
        for method in &source.methods {
            let Some(map_npy) = plain_name(&method.folder)
                .then(|| {
                    inside(
                        root,
                        &cache.join(&method.folder),
                        &format!("{}.npy", image.stem),
                    )
                })
                .flatten()
            else {
                continue;
            };
            let Ok(map) = std::fs::read(&map_npy) else {
                continue;
            };
            let info = ItemInfo {
                id: item_id(&input, &map, &source.model, &method.label),
                model: source.model.clone(),
                arch: card.arch.clone(),
                method: method.label.clone(),
                class: card.class_name(class),
                class_index: class,
                prob: prob.is_finite().then_some(f64::from(prob)),
                input: file.clone(),
                source: label.clone(),
            };
            let item = Item {
                info,
                pictures: Pictures::Study(pictures.clone()),
                map_npy,
                style: method.style.clone(),
            };
            catalogue.add(root, item)?;
        }
    }
    Ok(())
}

/// The card recorded in `source`, checked as a card file is.
fn model_card(source: &MapsSource) -> Result<Arc<ModelCard>, String> {
    let card: ModelCard =
        serde_json::from_value(source.card.clone()).map_err(|e| format!("model card: {e}"))?;
    card.validate().map_err(|e| format!("model card: {e}"))?;
    Ok(Arc::new(card))
}

/// The run folder's name and the cache's path below it (`run/cache/model`).
fn folder_label(root: &Path, cache: &Path) -> String {
    Path::new(root.file_name().unwrap_or_default())
        .join(cache.strip_prefix(root).unwrap_or(Path::new("")))
        .to_string_lossy()
        .to_string()
}

/// Whether `name` is one plain file name (no separator, `..`, root or prefix).
fn plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    )
}

/// The real path of the image the study recorded as `file` below `data_root`: every part a
/// plain name, inside the data folder with links resolved, a regular file no larger than
/// [`MAX_FILE_BYTES`], with the recorded SHA-256. Anything else means the data folder is not
/// the one the study read.
fn data_image(
    data_root: &Path,
    file: &str,
    image: &SourceImage,
    source: &MapsSource,
) -> Result<PathBuf, ReviewError> {
    let hint = format!(
        "name the data folder the study read (it recorded {})",
        source.data
    );
    if file.is_empty() || !file.split('/').all(plain_name) {
        return Err(ReviewError::file(
            data_root,
            format!("the study names an image '{file}' that is not a path inside its data folder"),
        ));
    }
    let real = data_root
        .join(file)
        .canonicalize()
        .map_err(|_| ReviewError::file(data_root, format!("{file} is missing: {hint}")))?;
    if !real.starts_with(data_root) {
        return Err(ReviewError::file(
            data_root,
            format!("{file} leads outside the data folder (a link)"),
        ));
    }
    let bytes = read_bounded(&real).map_err(|e| ReviewError::file(&real, e))?;
    if image.sha256.as_deref() != Some(crate::io::sha256_hex(&bytes).as_str()) {
        return Err(ReviewError::file(
            data_root,
            format!("{file} is not the image the study read (its SHA-256 differs): {hint}"),
        ));
    }
    Ok(real)
}

/// The bytes of a regular file of at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// The class probabilities the study cached for `stem` (`None`: not computed yet).
fn cached_probs(root: &Path, cache: &Path, stem: &str) -> Option<Vec<f32>> {
    let path = inside(root, &cache.join("probs"), &format!("{stem}.npy"))?;
    let (_, values) = npy_from_bytes(&read_bounded(&path).ok()?).ok()?;
    Some(values)
}

/// A cached map: one plane of the card's input size.
fn read_plane(path: &Path, card: &ModelCard) -> Result<Vec<f32>, String> {
    let (shape, values) = npy_from_bytes(&read_bounded(path)?)?;
    let [h, w] = card.input_size;
    if shape != [h, w] || values.len() != h * w {
        return Err(format!(
            "cached map has shape {shape:?}, expected [{h}, {w}]"
        ));
    }
    Ok(values)
}
