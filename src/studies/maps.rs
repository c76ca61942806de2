//! Predictions and explanation maps of one model on a study's images, batched and cached on
//! disk so an interrupted study resumes where it stopped.
//!
//! Cache layout under `dir` (one folder per model): `key.json` (what the cache holds: weights,
//! images, target, layer; a different key empties the folder), `predictions.json` (class
//! probabilities of every image), and per method `<method>/<stem>.npy` (the `H × W` plane of the
//! map as the method returns it, reduced over channels by its style) and, for gradient CAMs,
//! `<method>/<stem>.raw.npy` (the raw CAM: `max(Σ_c w_c A_c, 0)` upsampled to the input size
//! by the same bilinear resize, before pytorch-grad-cam's per-image min-max scaling).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::StudyError;
use super::common::{
    StudyImage, StudyModel, argmax, load_batch, map_plane, prepare_cache, softmax, write_json,
};
use crate::data::npy::{read_npy, write_npy};
use crate::engine::{Activations, Rules};
use crate::methods::Explainer;
use crate::methods::cam::{CamWeighting, Planes, finish_cams, layer_gradients, resolve_layer};
use crate::methods::pass::{forward_all, logits};
use crate::tensor::{T4, to_vec};

/// Which class every map explains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetClass {
    /// The image's true class (the same target for every model, so maps are comparable).
    #[default]
    True,
    /// Each model's predicted class.
    Predicted,
}

impl std::str::FromStr for TargetClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "true" | "label" => Ok(TargetClass::True),
            "pred" | "predicted" => Ok(TargetClass::Predicted),
            _ => Err(format!("unknown target '{s}': use true or pred")),
        }
    }
}

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
}

/// The gradient-CAM weighting of a method name, if it is one.
fn gradient_cam(name: &str) -> Option<CamWeighting> {
    [
        CamWeighting::GradCam,
        CamWeighting::GradCamPlusPlus,
        CamWeighting::HiResCam,
        CamWeighting::XGradCam,
        CamWeighting::LayerCam,
    ]
    .into_iter()
    .find(|w| w.name() == name)
}

/// Whether [`model_maps`] records raw CAMs for the method called `name`.
pub fn has_raw(name: &str) -> bool {
    gradient_cam(name).is_some()
}

/// A gradient CAM of the batch, both as the method returns it (`[N·H·W]`, per image in
/// `[0, 1]`) and raw (`max(map, 0)` resized to `H × W`, no scaling).
fn gradient_cam_both(
    model: &crate::graph::Model,
    x: &T4,
    acts: &Activations,
    targets: &[usize],
    weighting: CamWeighting,
    layer: Option<&str>,
) -> Result<(Vec<f32>, Vec<f32>), StudyError> {
    let id = resolve_layer(model, acts, layer)?;
    let (a, g) = layer_gradients(model, acts, targets, id, &Rules::gradient())?;
    let (a, g) = (Planes::of(&a), Planes::of(&g));
    let [_, _, h, w] = a.dims;
    let [_, _, oh, ow] = x.dims();
    let maps = weighting.maps(&a, &g);
    let mut raw = Vec::with_capacity(maps.len() * oh * ow);
    for m in &maps {
        let relu: Vec<f32> = m.iter().map(|v| v.max(0.0)).collect();
        raw.extend(crate::methods::cam::resize::resize_cv2_linear(
            &relu, h, w, oh, ow,
        ));
    }
    Ok((to_vec(&finish_cams(maps, h, w, oh, ow)), raw))
}

fn npy_path(dir: &Path, method: &str, stem: &str, raw: bool) -> PathBuf {
    let suffix = if raw { ".raw.npy" } else { ".npy" };
    dir.join(method).join(format!("{stem}{suffix}"))
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

/// Predictions and maps of `model` on `images` for `methods`, computed in batches of `batch`
/// or read from the cache in `dir` where an earlier run wrote them. `tick` is called once per
/// batch (for progress bars).
#[allow(clippy::too_many_arguments)]
pub fn model_maps(
    model: &StudyModel,
    images: &[StudyImage],
    methods: &[Box<dyn Explainer>],
    target: TargetClass,
    layer: Option<&str>,
    batch: usize,
    dir: &Path,
    tick: &dyn Fn(),
) -> Result<ModelMaps, StudyError> {
    // The weights' size and modification time make a retrained model at the same path a new key.
    let stamp = std::fs::metadata(&model.path).ok().map(|m| {
        let t = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{} bytes, mtime {t} ns", m.len())
    });
    let key = json!({
        "weights": model.path.display().to_string(),
        "weights_stamp": stamp,
        "images": images.iter().map(|i| i.path.display().to_string()).collect::<Vec<_>>(),
        "target": target,
        "layer": layer,
    });
    prepare_cache(dir, &key)?;
    for m in methods {
        super::common::create_dir(&dir.join(m.name()))?;
    }
    let [h, w] = model.model.card.input_size;
    let c = model.model.card.channels;
    let pixels = h * w;
    let pred_path = dir.join("predictions.json");
    let cached_probs: Option<Vec<Vec<f32>>> = std::fs::read_to_string(&pred_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| serde_json::from_value(v["probs"].clone()).ok())
        .filter(|p: &Vec<Vec<f32>>| p.len() == images.len());
    let mut probs: Vec<Vec<f32>> = cached_probs.clone().unwrap_or_default();
    let mut out: Vec<MethodMaps> = methods
        .iter()
        .map(|m| MethodMaps {
            planes: Vec::with_capacity(images.len()),
            raw: has_raw(m.name()).then(Vec::new),
        })
        .collect();
    for chunk in images.chunks(batch.max(1)) {
        let missing = |m: &dyn Explainer| {
            chunk.iter().any(|i| {
                !npy_path(dir, m.name(), &i.stem, false).is_file()
                    || (has_raw(m.name()) && !npy_path(dir, m.name(), &i.stem, true).is_file())
            })
        };
        let todo: Vec<usize> = (0..methods.len())
            .filter(|&k| missing(methods[k].as_ref()))
            .collect();
        if cached_probs.is_none() || !todo.is_empty() {
            let x = load_batch(chunk, &model.model)?;
            let acts = forward_all(&model.model, &x)?;
            let all = logits(&model.model, &acts)?;
            let k = all.len() / chunk.len();
            let batch_probs: Vec<Vec<f32>> = all.chunks(k).map(softmax).collect();
            let targets: Vec<usize> = chunk
                .iter()
                .zip(&batch_probs)
                .map(|(i, p)| match target {
                    TargetClass::True => i.label,
                    TargetClass::Predicted => argmax(p),
                })
                .collect();
            for &mk in &todo {
                let m = &methods[mk];
                let (values, raw) = match gradient_cam(m.name()) {
                    Some(wt) => {
                        let (v, r) =
                            gradient_cam_both(&model.model, &x, &acts, &targets, wt, layer)?;
                        (v, Some(r))
                    }
                    None => (
                        to_vec(&m.explain_forward(&model.model, &x, &acts, &targets)?),
                        None,
                    ),
                };
                for (r, img) in chunk.iter().enumerate() {
                    let plane = map_plane(&values, r, m.kind(), m.style(), [c, h, w]);
                    write_npy(&npy_path(dir, m.name(), &img.stem, false), &[h, w], &plane)?;
                    if let Some(raw) = &raw {
                        let p = &raw[r * pixels..(r + 1) * pixels];
                        write_npy(&npy_path(dir, m.name(), &img.stem, true), &[h, w], p)?;
                    }
                }
            }
            if cached_probs.is_none() {
                probs.extend(batch_probs);
            }
        }
        for (k, m) in methods.iter().enumerate() {
            for img in chunk {
                out[k].planes.push(read_plane(
                    &npy_path(dir, m.name(), &img.stem, false),
                    pixels,
                )?);
                if let Some(raw) = out[k].raw.as_mut() {
                    raw.push(read_plane(
                        &npy_path(dir, m.name(), &img.stem, true),
                        pixels,
                    )?);
                }
            }
        }
        tick();
    }
    if cached_probs.is_none() {
        write_json(&pred_path, &json!({"probs": probs}))?;
    }
    let targets = images
        .iter()
        .zip(&probs)
        .map(|(i, p)| match target {
            TargetClass::True => i.label,
            TargetClass::Predicted => argmax(p),
        })
        .collect();
    Ok(ModelMaps {
        probs,
        targets,
        methods: out,
        size: [h, w],
    })
}
