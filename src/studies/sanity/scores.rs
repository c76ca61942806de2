//! The scores phase of the sanity study: per chunk of images, the maps of the original model,
//! of every step of cascading and independent randomisation, and of a random other class,
//! compared with [`Comparison`]; each image's result is one `per_image/<model>/<method>/<stem>.json`
//! (the resume unit).

use std::path::Path;

use serde_json::{Value, json};

use super::SanityOptions;
use crate::graph::{Model, ParamStore};
use crate::methods::pass::forward_all;
use crate::metrics::MetricError;
use crate::metrics::randomisation::{
    Cascade, Comparison, RandomisationOptions, Similarities, model_parameter_randomisation_with,
    random_logit,
};
use crate::metrics::{ImageView, MapView};
use crate::studies::StudyError;
use crate::studies::toolkit::{
    StudyImage, StudyMethod, StudyModel, explain_planes, load_batch, write_json,
};
use crate::tensor::T4;

/// One image × method × model result.
#[derive(Clone, Debug)]
pub struct Row {
    /// Model label.
    pub model: String,
    /// Method label.
    pub method: String,
    /// Image stem.
    pub image: String,
    /// The class explained.
    pub class: usize,
    /// `(layer, similarity)` per cascading step, output layer first.
    pub cascading: Vec<(String, Similarities)>,
    /// `(layer, similarity)` per layer randomised alone.
    pub independent: Vec<(String, Similarities)>,
    /// The other class drawn and the similarity of its map.
    pub logit: (usize, Similarities),
}

/// The maps of `method` on `model` for `batch` (one `H·W` plane per image, as drawn), as a
/// metric sees them.
pub fn planes_on(
    method: &StudyMethod,
    model: &Model,
    batch: &T4,
    targets: &[usize],
    keys: &[String],
) -> Result<Vec<f32>, MetricError> {
    let as_metric = |e: StudyError| MetricError::Invalid(e.to_string());
    let prepared = method.prepare(model).map_err(as_metric)?;
    let acts = forward_all(model, batch)?;
    let maps = explain_planes(&prepared, batch, &acts, targets, keys, false).map_err(as_metric)?;
    Ok(maps.planes.concat())
}

/// Scores a chunk of images for one model × method and writes each image's JSON.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_chunk(
    opts: &SanityOptions,
    m: &StudyModel,
    name: &str,
    method: &StudyMethod,
    fresh: &ParamStore,
    chunk: &[&StudyImage],
    dir: &Path,
    key: &str,
) -> Result<Vec<Row>, StudyError> {
    let owned: Vec<StudyImage> = chunk.iter().map(|i| (*i).clone()).collect();
    let batch = load_batch(&owned, &m.model)?;
    let targets = opts.target.classes_for_batch(m, chunk, &batch)?;
    let keys: Vec<String> = chunk.iter().map(|i| i.stem.clone()).collect();
    let explain = |model: &Model, x: T4, t: &[usize]| planes_on(method, model, &x, t, &keys);
    let test = |cascade| -> Result<Vec<Vec<(String, Similarities)>>, StudyError> {
        let r = model_parameter_randomisation_with(
            &m.model,
            &batch,
            &targets,
            &explain,
            fresh,
            &RandomisationOptions {
                cascade,
                include_batchnorm: opts.include_batchnorm,
                seed: opts.seed,
                comparison: opts.comparison,
            },
        )?;
        Ok((0..chunk.len())
            .map(|i| {
                r.steps
                    .iter()
                    .map(|s| (s.layer.clone(), s.per_image[i]))
                    .collect()
            })
            .collect())
    };
    let cascading = test(Cascade::TopDown)?;
    let independent = test(Cascade::Independent)?;
    let logits = random_logits(opts, m, method, chunk, &batch, &targets)?;
    let mut rows = Vec::with_capacity(chunk.len());
    for (i, img) in chunk.iter().enumerate() {
        let row = Row {
            model: m.label.clone(),
            method: name.into(),
            image: img.stem.clone(),
            class: targets[i],
            cascading: cascading[i].clone(),
            independent: independent[i].clone(),
            logit: logits[i],
        };
        write_json(
            &dir.join(format!("{}.json", img.stem)),
            &row_json(&row, key),
        )?;
        rows.push(row);
    }
    Ok(rows)
}

/// The random-logit test of each image: its map against the map for another class drawn from
/// the seed and the image's stem.
fn random_logits(
    opts: &SanityOptions,
    m: &StudyModel,
    method: &StudyMethod,
    chunk: &[&StudyImage],
    batch: &T4,
    targets: &[usize],
) -> Result<Vec<(usize, Similarities)>, StudyError> {
    let [_, c, h, w] = batch.dims();
    let keys: Vec<String> = chunk.iter().map(|i| i.stem.clone()).collect();
    let maps = planes_on(method, &m.model, batch, targets, &keys)?;
    let values = crate::tensor::to_vec(batch);
    let classes = m.model.card.num_classes;
    let (per, plane) = (c * h * w, h * w);
    let mut out = Vec::with_capacity(chunk.len());
    for (i, key) in keys.iter().enumerate() {
        let one = std::slice::from_ref(key);
        let explain = |x: T4, t: &[usize]| planes_on(method, &m.model, &x, t, one);
        let image = ImageView::new(&values[i * per..(i + 1) * per], [c, h, w])?;
        let map = MapView::new(&maps[i * plane..(i + 1) * plane], [h, w])?;
        let seed = crate::rng::Rng::derive(opts.seed, key).next_u64();
        let r = random_logit(
            &explain,
            &image,
            &map,
            targets[i],
            classes,
            seed,
            &opts.comparison,
        )?;
        out.push((r.other_class, r.similarity));
    }
    Ok(out)
}

fn similarity_json(s: &Similarities) -> Value {
    json!({"spearman": s.spearman, "ssim": s.ssim, "top_k_iou": s.top_k_iou})
}

fn steps_json(steps: &[(String, Similarities)]) -> Value {
    steps
        .iter()
        .map(|(layer, s)| json!({"layer": layer, "similarity": similarity_json(s)}))
        .collect()
}

fn row_json(row: &Row, key: &str) -> Value {
    json!({
        "key": key,
        "image": row.image,
        "class": row.class,
        "cascading": steps_json(&row.cascading),
        "independent": steps_json(&row.independent),
        "random_logit": {"other_class": row.logit.0, "similarity": similarity_json(&row.logit.1)},
    })
}

fn similarity_from(v: &Value) -> Option<Similarities> {
    // NaN (an SSIM on a map smaller than its window) is written as null.
    let f = |k: &str| v.get(k).map(|x| x.as_f64().unwrap_or(f64::NAN));
    Some(Similarities {
        spearman: f("spearman")?,
        ssim: f("ssim")?,
        top_k_iou: f("top_k_iou")?,
    })
}

fn steps_from(v: &Value) -> Option<Vec<(String, Similarities)>> {
    v.as_array()?
        .iter()
        .map(|s| {
            Some((
                s.get("layer")?.as_str()?.to_string(),
                similarity_from(s.get("similarity")?)?,
            ))
        })
        .collect()
}

/// A row an earlier run stored with the same key.
pub fn row_from_json(v: &Value, key: &str, model: &str, method: &str) -> Option<Row> {
    if v.get("key")?.as_str()? != key {
        return None;
    }
    let logit = v.get("random_logit")?;
    Some(Row {
        model: model.into(),
        method: method.into(),
        image: v.get("image")?.as_str()?.into(),
        class: v.get("class")?.as_u64()? as usize,
        cascading: steps_from(v.get("cascading")?)?,
        independent: steps_from(v.get("independent")?)?,
        logit: (
            logit.get("other_class")?.as_u64()? as usize,
            similarity_from(logit.get("similarity")?)?,
        ),
    })
}

/// The comparison stated as text for the key and the conventions.
pub fn describe(c: &Comparison) -> String {
    format!(
        "abs={} top_fraction={} ssim={:?}",
        c.abs, c.top_fraction, c.ssim
    )
}
