//! The scores phase of the quality study: per chunk of images, each method's map and every
//! metric of [`Metric::ALL`] computed by the functions of [`crate::metrics`]; each image's
//! result is one `per_image/<model>/<method>/<stem>.json` (the resume unit).

use std::path::Path;

use serde_json::{Value, json};

use super::QualityOptions;
use crate::methods::pass::forward_all;
use crate::metrics::complexity::{complexity, sparseness};
use crate::metrics::faithfulness::{FaithfulnessCorrelationOptions, faithfulness_correlation};
use crate::metrics::perturbation::{
    Order, PixelFlippingOptions, RegionPerturbationOptions, pixel_flipping, region_perturbation,
};
use crate::metrics::scorer::{FollowedClass, ModelScorer, ScoreKind};
use crate::metrics::sensitivity::{Radius, SensitivityOptions, sensitivity};
use crate::metrics::{ImageView, MapView, MetricError, Substrate, checkerboard_score};
use crate::studies::StudyError;
use crate::studies::toolkit::{
    PreparedMethod, StudyImage, StudyModel, explain_planes, jnum, load_batch, write_json,
};
use crate::tensor::{T4, to_vec};

/// The metrics of the study, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Checkerboard score of the map.
    Checkerboard,
    /// Checkerboard score of white noise with the map's size, mean and variance.
    CheckerboardNoise,
    /// Checkerboard score over its noise reference.
    CheckerboardRatio,
    /// Gini index of `|map|`.
    Sparseness,
    /// Entropy of `|map| / Σ|map|`.
    Complexity,
    /// Pixel-flipping AOPC (MoRF).
    PixelFlipping,
    /// Region-perturbation AOPC (MoRF).
    RegionPerturbation,
    /// Faithfulness correlation.
    FaithfulnessCorrelation,
    /// Max-sensitivity.
    MaxSensitivity,
    /// Avg-sensitivity.
    AvgSensitivity,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 10] = [
        Metric::Checkerboard,
        Metric::CheckerboardNoise,
        Metric::CheckerboardRatio,
        Metric::Sparseness,
        Metric::Complexity,
        Metric::PixelFlipping,
        Metric::RegionPerturbation,
        Metric::FaithfulnessCorrelation,
        Metric::MaxSensitivity,
        Metric::AvgSensitivity,
    ];

    /// Column name in `per_image.csv`, `metrics.csv` and `quality.json`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Checkerboard => "checkerboard",
            Metric::CheckerboardNoise => "checkerboard_noise",
            Metric::CheckerboardRatio => "checkerboard_ratio",
            Metric::Sparseness => "sparseness",
            Metric::Complexity => "complexity",
            Metric::PixelFlipping => "pixel_flipping_aopc",
            Metric::RegionPerturbation => "region_perturbation_aopc",
            Metric::FaithfulnessCorrelation => "faithfulness_correlation",
            Metric::MaxSensitivity => "max_sensitivity",
            Metric::AvgSensitivity => "avg_sensitivity",
        }
    }

    /// Column heading in the report, with the direction that is better.
    pub fn heading(self) -> &'static str {
        match self {
            Metric::Checkerboard => "checkerboard ↓",
            Metric::CheckerboardNoise => "noise reference",
            Metric::CheckerboardRatio => "checkerboard / noise ↓",
            Metric::Sparseness => "sparseness (Gini) ↑",
            Metric::Complexity => "complexity ↓",
            Metric::PixelFlipping => "pixel-flipping AOPC ↑",
            Metric::RegionPerturbation => "region-perturbation AOPC ↑",
            Metric::FaithfulnessCorrelation => "faithfulness correlation ↑",
            Metric::MaxSensitivity => "max-sensitivity ↓",
            Metric::AvgSensitivity => "avg-sensitivity ↓",
        }
    }
}

/// One image × method × model result.
#[derive(Clone, Debug)]
pub struct Row {
    /// Model label.
    pub model: String,
    /// Method label.
    pub method: String,
    /// Image stem.
    pub image: String,
    /// The data set's class name.
    pub label: String,
    /// The class explained and followed by the metrics.
    pub class: usize,
    /// One value per [`Metric::ALL`] (NaN where undefined, e.g. an all-zero map).
    pub values: [f64; 10],
}

/// Expected checkerboard score of white noise with the map's size, mean `μ` and variance `σ²`:
/// `e·σ² / (H·W·(σ² + μ²))`, with `e = [H even]·W + [W even]·H − [both even]` the number of
/// DFT coefficients at frequency ±π (see [`checkerboard_score`]). For `μ = 0` it is the
/// `(H + W − 1)/(H·W)` of zero-mean white noise; a map with no spatial structure at the stride-2
/// frequencies scores about this, so `score / reference` near 1 means "as checkered as noise".
pub fn checkerboard_noise_reference(map: &[f32], h: usize, w: usize) -> f64 {
    let n = map.len() as f64;
    let mean = map.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = map.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let (he, we) = (h.is_multiple_of(2), w.is_multiple_of(2));
    let e = (he as usize * w + we as usize * h) as f64 - (he && we) as usize as f64;
    if var + mean * mean == 0.0 {
        return f64::NAN;
    }
    e * var / ((h * w) as f64 * (var + mean * mean))
}

/// The metrics of one image's map: everything except the explained class is fixed by `opts`.
pub fn image_metrics(
    opts: &QualityOptions,
    scorer: &ModelScorer,
    explain: &dyn crate::metrics::MapFn,
    image: &ImageView,
    map: &MapView,
    class: usize,
    key: &str,
) -> Result<[f64; 10], MetricError> {
    let (h, w) = (map.height, map.width);
    let board = checkerboard_score(map.data, h, w);
    let noise = checkerboard_noise_reference(map.data, h, w);
    let target = FollowedClass::Class(class);
    let baseline = Substrate::ImageMin;
    let flip = pixel_flipping(
        scorer,
        image,
        map,
        &PixelFlippingOptions {
            pixels_per_step: opts.pixels_per_step,
            order: Order::Morf,
            baseline: baseline.clone(),
            target,
        },
    )?;
    let region = region_perturbation(
        scorer,
        image,
        map,
        &RegionPerturbationOptions {
            patch: opts.region_patch,
            regions: opts.regions,
            order: Order::Morf,
            baseline: baseline.clone(),
            target,
        },
    )?;
    let seed = crate::rng::Rng::derive(opts.seed, key).next_u64();
    let faith = faithfulness_correlation(
        scorer,
        image,
        map,
        &FaithfulnessCorrelationOptions {
            runs: opts.faithfulness_runs,
            subset_size: subset_size(opts, map.len()),
            baseline,
            target,
            seed,
        },
    )?;
    let sens = sensitivity(
        explain,
        image,
        map,
        class,
        &SensitivityOptions {
            samples: opts.sensitivity_samples,
            radius: Radius::RelativeToRange(opts.sensitivity_radius),
            relative: true,
            batch_size: 8,
            seed,
        },
    )?;
    Ok([
        board,
        noise,
        board / noise,
        sparseness(map.data, 1e-7),
        complexity(map.data, 1e-12),
        flip.aopc,
        region.aopc,
        faith.correlation,
        sens.max,
        sens.avg,
    ])
}

/// Pixels per faithfulness-correlation subset: the option, else Quantus' 224 — or a quarter of
/// the pixels on maps of fewer than 4·224 pixels, where 224 would cover most of the image.
pub fn subset_size(opts: &QualityOptions, pixels: usize) -> usize {
    opts.subset_size.unwrap_or(if pixels >= 4 * 224 {
        224
    } else {
        (pixels / 4).max(1)
    })
}

/// Scores a chunk of images for one model × method and writes each image's JSON.
pub fn evaluate_chunk(
    opts: &QualityOptions,
    m: &StudyModel,
    name: &str,
    method: &PreparedMethod,
    chunk: &[&StudyImage],
    dir: &Path,
    key: &str,
) -> Result<Vec<Row>, StudyError> {
    let owned: Vec<StudyImage> = chunk.iter().map(|i| (*i).clone()).collect();
    let batch = load_batch(&owned, &m.model)?;
    let [_, c, h, w] = batch.dims();
    let targets = opts.target.classes_for_batch(m, chunk, &batch)?;
    let keys: Vec<String> = chunk.iter().map(|i| i.stem.clone()).collect();
    let acts = forward_all(&m.model, &batch)?;
    let planes = explain_planes(method, &batch, &acts, &targets, &keys, false)?.planes;
    let values = to_vec(&batch);
    let scorer =
        ModelScorer::new(&m.model, ScoreKind::Logit)?.with_batch_size(opts.inputs.batch.max(1));
    let mut rows = Vec::with_capacity(chunk.len());
    for (i, img) in chunk.iter().enumerate() {
        let per = c * h * w;
        let image = ImageView::new(&values[i * per..(i + 1) * per], [c, h, w])?;
        let map = MapView::new(&planes[i], [h, w])?;
        // The random control is seeded by the image's key, so its noisy copies get the same map.
        let one = std::slice::from_ref(&keys[i]);
        let explain = |x: T4, t: &[usize]| -> Result<Vec<f32>, MetricError> {
            let as_metric = |e: StudyError| MetricError::Invalid(e.to_string());
            let acts = forward_all(&m.model, &x)?;
            let rows = x.dims()[0];
            let keys: Vec<String> = (0..rows).map(|_| one[0].clone()).collect();
            let maps = explain_planes(method, &x, &acts, t, &keys, false).map_err(as_metric)?;
            Ok(maps.planes.concat())
        };
        let row = Row {
            model: m.label.clone(),
            method: name.into(),
            image: img.stem.clone(),
            label: img.class.clone(),
            class: targets[i],
            values: image_metrics(opts, &scorer, &explain, &image, &map, targets[i], &img.stem)?,
        };
        write_json(
            &dir.join(format!("{}.json", img.stem)),
            &row_json(&row, key),
        )?;
        rows.push(row);
    }
    Ok(rows)
}

fn row_json(row: &Row, key: &str) -> Value {
    let metrics: serde_json::Map<String, Value> = Metric::ALL
        .iter()
        .zip(&row.values)
        .map(|(m, &v)| (m.name().to_string(), jnum(v)))
        .collect();
    json!({
        "key": key,
        "image": row.image,
        "label": row.label,
        "class": row.class,
        "metrics": metrics,
    })
}

/// A row an earlier run stored with the same key.
pub fn row_from_json(v: &Value, key: &str, model: &str, method: &str) -> Option<Row> {
    if v.get("key")?.as_str()? != key {
        return None;
    }
    let metrics = v.get("metrics")?;
    let mut values = [f64::NAN; 10];
    for (slot, m) in values.iter_mut().zip(Metric::ALL) {
        // NaN (an undefined metric) is written as null.
        *slot = metrics.get(m.name())?.as_f64().unwrap_or(f64::NAN);
    }
    Some(Row {
        model: model.into(),
        method: method.into(),
        image: v.get("image")?.as_str()?.into(),
        label: v.get("label")?.as_str()?.into(),
        class: v.get("class")?.as_u64()? as usize,
        values,
    })
}
