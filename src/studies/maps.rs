//! Predictions and explanation maps of one model on a study's images, batched and cached on
//! disk so an interrupted study resumes where it stopped.
//!
//! Cache layout under `dir` (one folder per model): `key.json` (what the cache holds: weights,
//! the study's selection of images, target, method options; a different key empties the
//! folder), `probs/<stem>.npy` (the class probabilities of each image), and per method
//! `<method>/<stem>.npy` (the method's
//! label made file-name safe; the `H × W` plane of the map as
//! [`super::toolkit::explain_planes`] gives it, reduced over channels by its style) and, for
//! gradient CAMs,
//! `<method>/<stem>.raw.npy` (the raw CAM: `max(Σ_c w_c A_c, 0)` upsampled to the input size
//! by the same bilinear resize, before pytorch-grad-cam's per-image min-max scaling).
//!
//! Every result is one file per image and the key names the whole selection, so the shards of
//! a sharded study (each computing its own images) write caches with one key, and the caches
//! gathered into one folder are what the unsharded run would have computed.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::StudyError;
use super::toolkit::TargetRule;
use super::toolkit::{
    PreparedMethod, StudyImage, StudyInputs, StudyMethod, StudyModel, create_dir, explain_planes,
    load_batch, model_label, predictions, prepare_all, prepare_cache, weights_stamp,
};
use crate::data::npy::{read_npy, write_npy};
use crate::methods::MethodOptions;
use crate::methods::pass::forward_all;
use crate::methods::spec::label_file_key;
use crate::records::{MapsSource, SCHEMA_VERSION, SourceImage, SourceMethod, write_record};

/// One method's maps of one model: `planes[i]` for image `i`.
#[derive(Clone, Debug)]
pub struct MethodMaps {
    /// `H·W` planes as the method returns them (CAMs in `[0, 1]`).
    pub planes: Vec<Vec<f32>>,
    /// Raw (un-normalised) CAMs for gradient CAMs, else `None`.
    pub raw: Option<Vec<Vec<f32>>>,
}

/// Predictions and maps of one model.
#[derive(Clone, Debug)]
pub struct ModelMaps {
    /// Class probabilities per image.
    pub probs: Vec<Vec<f32>>,
    /// The class each map explains, per image.
    pub targets: Vec<usize>,
    /// Per method (in the order asked).
    pub methods: Vec<MethodMaps>,
    /// `[H, W]` of the maps.
    pub size: [usize; 2],
    /// The model's head, which says whether an image has a class ([`super::toolkit::has_class`]).
    pub head: crate::graph::Head,
}

/// What [`model_maps`] computes: the same for every model of a study.
pub struct MapsRequest<'a> {
    /// The images to compute.
    pub images: &'a [StudyImage],
    /// The study's whole selection of images (a superset of `images` in a shard), which the
    /// cache key names.
    pub selection: &'a [StudyImage],
    /// The methods, labelled as typed.
    pub methods: &'a [(String, StudyMethod)],
    /// The options the methods were built with (part of the cache key).
    pub method_options: &'a MethodOptions,
    /// Which class every map explains.
    pub target: TargetRule,
    /// Images per forward pass.
    pub batch: usize,
    /// The data source the images came from (recorded for `relevance review`).
    pub data: &'a Path,
}

/// The file of one map in the cache: `<method label made safe>/<stem>[.raw].npy`.
fn npy_path(dir: &Path, method: &str, stem: &str, raw: bool) -> PathBuf {
    let suffix = if raw { ".raw.npy" } else { ".npy" };
    dir.join(label_file_key(method))
        .join(format!("{stem}{suffix}"))
}

fn read_plane(path: &Path, pixels: usize) -> Result<Vec<f32>, StudyError> {
    let (_, v) = read_npy(path)?;
    if v.len() != pixels {
        return Err(StudyError::file(
            path,
            format!("cached map has {} values, expected {pixels}", v.len()),
        ));
    }
    Ok(v)
}

/// What the cache in a model's folder holds: a retrained model at the same path (its size and
/// modification time), other images, another target or other method options make a new key.
fn cache_key(model: &StudyModel, req: &MapsRequest) -> Value {
    json!({
        "weights": model.model.source.display().to_string(),
        "weights_stamp": weights_stamp(&model.model),
        "images": req.selection.iter().map(|i| i.path.display().to_string()).collect::<Vec<_>>(),
        "target": req.target,
        "method_options": format!("{:?}", req.method_options),
    })
}

/// What `relevance review` needs besides the maps ([`MapsSource`]): every image of the whole
/// selection (so the shards of a study write the same record) with its SHA-256.
fn maps_source(model: &StudyModel, req: &MapsRequest) -> Result<MapsSource, StudyError> {
    source_record(model, req.selection, req.methods, req.target, req.data)
}

/// Writes `source.json` into `dir`, the folder of `model`'s maps (`<method folder>/<stem>.npy`)
/// and probabilities (`probs/<stem>.npy`), so `relevance review` can show them: the record
/// `compare` and `variability` write beside their map cache, and `faithfulness` and
/// `stability` beside the maps they save (`--save-maps`). `selection` is the study's whole
/// selection of images, read from `data`.
pub fn write_maps_source(
    dir: &Path,
    model: &StudyModel,
    selection: &[StudyImage],
    methods: &[(String, StudyMethod)],
    target: TargetRule,
    data: &Path,
) -> Result<(), StudyError> {
    create_dir(dir)?;
    let record = source_record(model, selection, methods, target, data)?;
    write_record(&dir.join(MapsSource::FILE), &record)
        .map_err(|e| StudyError::file(&e.path, e.message))
}

/// `<out>/maps/<model>/`, where `faithfulness` and `stability` save `model`'s maps
/// (`--save-maps`): a map folder per method, `probs/` and `source.json`.
pub fn saved_maps_dir(out: &Path, model: &StudyModel) -> PathBuf {
    out.join("maps").join(&model.label)
}

/// The `note` step of [`super::toolkit::StudyInputs::select_and_score`] for a study that saves
/// maps (`save`: `--save-maps`): [`write_maps_source`] for each of `models` into its
/// [`saved_maps_dir`], on the whole selection.
pub fn saved_maps_note<'a>(
    save: bool,
    inputs: &'a StudyInputs,
    models: &'a [StudyModel],
    target: TargetRule,
) -> impl FnMut(&[(String, StudyMethod)], &[StudyImage]) -> Result<(), StudyError> + 'a {
    move |methods, selection| {
        if !save {
            return Ok(());
        }
        for model in models {
            let dir = saved_maps_dir(&inputs.out, model);
            write_maps_source(&dir, model, selection, methods, target, &inputs.data)?;
        }
        Ok(())
    }
}

/// Writes one image's class probabilities as `probs/<stem>.npy` below `dir`, where
/// [`write_maps_source`]'s record says they are.
pub fn write_probs(dir: &Path, stem: &str, probs: &[f32]) -> Result<(), StudyError> {
    let path = probs_path(dir, stem);
    create_dir(path.parent().unwrap_or(dir))?;
    write_npy(&path, &[probs.len()], probs)?;
    Ok(())
}

/// The [`MapsSource`] of `model`'s maps of `selection` by `methods`.
fn source_record(
    model: &StudyModel,
    selection: &[StudyImage],
    methods: &[(String, StudyMethod)],
    target: TargetRule,
    data: &Path,
) -> Result<MapsSource, StudyError> {
    let root = if data.is_dir() {
        data
    } else {
        data.parent().unwrap_or(Path::new(""))
    };
    let images = selection
        .iter()
        .map(|img| source_image(root, img, &model.model.card))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MapsSource {
        schema_version: SCHEMA_VERSION,
        model: model.model.source.display().to_string(),
        label: model.label.clone(),
        card: serde_json::to_value(&model.model.card)
            .map_err(|e| StudyError::Invalid(format!("model card: {e}")))?,
        target: json!(target).as_str().unwrap_or_default().to_string(),
        data: data.display().to_string(),
        methods: methods
            .iter()
            .map(|(label, m)| SourceMethod {
                label: label.clone(),
                folder: label_file_key(label),
                style: m.style().name().to_string(),
            })
            .collect(),
        images,
    })
}

/// One image of [`source_record`]: its path below `root` and hash, when it has a file there,
/// and its label in `card`'s classes (`--target true` explains that class; the label itself
/// for a selection already relabelled by [`super::toolkit::label_for_model`]).
fn source_image(
    root: &Path,
    img: &StudyImage,
    card: &crate::graph::ModelCard,
) -> Result<SourceImage, StudyError> {
    let relative = match img.pixels {
        Some(_) => None,
        None => img.path.strip_prefix(root).ok().and_then(|rel| {
            let parts: Option<Vec<&str>> = rel
                .components()
                .map(|c| match c {
                    std::path::Component::Normal(p) => p.to_str(),
                    _ => None,
                })
                .collect();
            parts.map(|p| p.join("/"))
        }),
    };
    let sha256 = match &relative {
        Some(_) => {
            let bytes = std::fs::read(&img.path).map_err(|e| StudyError::file(&img.path, e))?;
            Some(crate::io::sha256_hex(&bytes))
        }
        None => None,
    };
    Ok(SourceImage {
        stem: img.stem.clone(),
        file: relative,
        sha256,
        label: model_label(img, card).unwrap_or(img.label),
    })
}

/// The file of one image's class probabilities in the cache.
fn probs_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join("probs").join(format!("{stem}.npy"))
}

/// The class each map explains, from an image's label and the model's probabilities.
fn target_of(target: TargetRule, img: &StudyImage, probs: &[f32]) -> usize {
    target.class_of(img.label, probs)
}

/// True when some image of `chunk` has no probabilities in the cache.
fn probs_missing(dir: &Path, chunk: &[StudyImage]) -> bool {
    chunk.iter().any(|i| !probs_path(dir, &i.stem).is_file())
}

/// Indices of the methods with a map of some image of `chunk` missing from the cache.
fn missing(dir: &Path, methods: &[(String, StudyMethod)], chunk: &[StudyImage]) -> Vec<usize> {
    let absent = |name: &str, stem: &str, raw: bool| !npy_path(dir, name, stem, raw).is_file();
    (0..methods.len())
        .filter(|&k| {
            let (name, m) = &methods[k];
            chunk.iter().any(|i| {
                absent(name, &i.stem, false) || (m.has_raw() && absent(name, &i.stem, true))
            })
        })
        .collect()
}

/// Runs the model on `chunk` and writes its class probabilities and the maps of methods `todo`
/// into the cache.
fn compute_chunk(
    model: &StudyModel,
    req: &MapsRequest,
    prepared: &[PreparedMethod],
    chunk: &[StudyImage],
    todo: &[usize],
    dir: &Path,
) -> Result<(), StudyError> {
    let x = load_batch(chunk, &model.model)?;
    let acts = forward_all(&model.model, &x)?;
    let probs: Vec<Vec<f32>> = predictions(&model.model, &acts, chunk.len())?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let targets: Vec<usize> = chunk
        .iter()
        .zip(&probs)
        .map(|(i, p)| target_of(req.target, i, p))
        .collect();
    for (img, p) in chunk.iter().zip(&probs) {
        write_npy(&probs_path(dir, &img.stem), &[p.len()], p)?;
    }
    let keys: Vec<String> = chunk.iter().map(|i| i.stem.clone()).collect();
    let [h, w] = model.model.card.input_size;
    for &k in todo {
        let name = &req.methods[k].0;
        let maps = explain_planes(&prepared[k], &x, &acts, &targets, &keys, true)?;
        for (r, img) in chunk.iter().enumerate() {
            write_npy(
                &npy_path(dir, name, &img.stem, false),
                &[h, w],
                &maps.planes[r],
            )?;
            if let Some(raw) = &maps.raw {
                write_npy(&npy_path(dir, name, &img.stem, true), &[h, w], &raw[r])?;
            }
        }
    }
    Ok(())
}

/// Reads the probabilities and maps of `chunk` back from the cache into `probs` and `out`.
fn read_chunk(
    dir: &Path,
    methods: &[(String, StudyMethod)],
    chunk: &[StudyImage],
    pixels: usize,
    probs: &mut Vec<Vec<f32>>,
    out: &mut [MethodMaps],
) -> Result<(), StudyError> {
    for img in chunk {
        probs.push(read_npy(&probs_path(dir, &img.stem))?.1);
    }
    for ((name, _), maps) in methods.iter().zip(out) {
        for img in chunk {
            maps.planes
                .push(read_plane(&npy_path(dir, name, &img.stem, false), pixels)?);
            if let Some(raw) = maps.raw.as_mut() {
                raw.push(read_plane(&npy_path(dir, name, &img.stem, true), pixels)?);
            }
        }
    }
    Ok(())
}

/// Predictions and maps of `model` for `req`, computed in batches or read from the cache in
/// `dir` where an earlier run wrote them. `tick` is called once per batch (for progress bars).
pub fn model_maps(
    model: &StudyModel,
    req: &MapsRequest,
    dir: &Path,
    tick: &dyn Fn(),
) -> Result<ModelMaps, StudyError> {
    prepare_cache(dir, &cache_key(model, req))?;
    write_record(&dir.join(MapsSource::FILE), &maps_source(model, req)?)
        .map_err(|e| StudyError::file(&e.path, e.message))?;
    create_dir(&dir.join("probs"))?;
    for (name, _) in req.methods {
        create_dir(&dir.join(label_file_key(name)))?;
    }
    let [h, w] = model.model.card.input_size;
    let mut probs: Vec<Vec<f32>> = Vec::with_capacity(req.images.len());
    let mut out: Vec<MethodMaps> = req
        .methods
        .iter()
        .map(|(_, m)| MethodMaps {
            planes: Vec::with_capacity(req.images.len()),
            raw: m.has_raw().then(Vec::new),
        })
        .collect();
    let prepared = prepare_all(req.methods, &model.model)?;
    for chunk in req.images.chunks(req.batch.max(1)) {
        let todo = missing(dir, req.methods, chunk);
        if probs_missing(dir, chunk) || !todo.is_empty() {
            compute_chunk(model, req, &prepared, chunk, &todo, dir)?;
        }
        read_chunk(dir, req.methods, chunk, h * w, &mut probs, &mut out)?;
        tick();
    }
    let targets = req
        .images
        .iter()
        .zip(&probs)
        .map(|(i, p)| target_of(req.target, i, p))
        .collect();
    Ok(ModelMaps {
        probs,
        targets,
        methods: out,
        size: [h, w],
        head: model.model.card.head(),
    })
}
