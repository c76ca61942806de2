//! `relevance.metrics.pixel_flipping` and `region_perturbation`: the perturbation curves of
//! `relevance::metrics::perturbation` on NumPy maps, with their conventions.

use numpy::PyReadonlyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use relevance::metrics::perturbation::{
    Order, PerturbationResult, PixelFlippingOptions, RegionPerturbationOptions,
    pixel_flipping as flip, region_perturbation as regions_of,
};
use relevance::metrics::scorer::{FollowedClass, ModelScorer, ScoreKind};
use relevance::metrics::{ImageView, MapView, Substrate};
use relevance::tensor::to_vec;

use crate::arrays::{batch, map_planes, map_style};
use crate::errors::{input, to_py};
use crate::model::PyModel;

/// How the maps are read and the score is named, shared by both curves.
pub struct Perturbation<'a> {
    /// The score's name (`softmax`, `logit`).
    pub score: &'a str,
    /// How maps become one plane per image.
    pub style: &'a str,
}

/// The replacement values by name: `min` (the image minimum, Quantus' `"black"`), `max`
/// (Quantus' `"white"`), `mean` (the image mean, Quantus' `"mean"`), `channel-mean`, `zero`
/// (0 in input space), `blur` (RISE's kernel 11, σ 5) or `blur:K:SIGMA`.
fn baseline(name: &str) -> PyResult<Substrate> {
    Ok(match name {
        "min" => Substrate::ImageMin,
        "max" => Substrate::ImageMax,
        "mean" => Substrate::ImageMean,
        "channel-mean" => Substrate::ChannelMean,
        "zero" => Substrate::Zero,
        "blur" => Substrate::rise_blur(),
        other => match other.strip_prefix("blur:").and_then(|r| r.split_once(':')) {
            Some((k, s)) => match (k.parse::<usize>(), s.parse::<f32>()) {
                (Ok(kernel), Ok(sigma)) if kernel % 2 == 1 && sigma > 0.0 => {
                    Substrate::Blur { kernel, sigma }
                }
                _ => {
                    return Err(input(format!(
                        "bad baseline '{other}': blur:K:SIGMA takes an odd K and σ > 0"
                    )));
                }
            },
            None => {
                return Err(input(format!(
                    "unknown baseline '{other}'; use min, max, mean, channel-mean, zero, blur or blur:K:SIGMA"
                )));
            }
        },
    })
}

fn order(name: &str) -> PyResult<Order> {
    match name {
        "morf" => Ok(Order::Morf),
        "lerf" => Ok(Order::Lerf),
        other => Err(input(format!("unknown order '{other}'; use morf or lerf"))),
    }
}

pub fn score_kind(name: &str) -> PyResult<ScoreKind> {
    match name {
        "softmax" => Ok(ScoreKind::Softmax),
        "logit" => Ok(ScoreKind::Logit),
        other => Err(input(format!(
            "unknown score '{other}'; use softmax or logit"
        ))),
    }
}

/// The class followed per image: `None` the predicted one, else one index for all or one per
/// image.
fn followed(target: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<Vec<FollowedClass>> {
    let Some(t) = target else {
        return Ok(vec![FollowedClass::Predicted; n]);
    };
    let classes = match t.extract::<usize>() {
        Ok(one) => vec![one; n],
        Err(_) => t
            .extract::<Vec<usize>>()
            .map_err(|_| input("target must be None, a class index or one index per image"))?,
    };
    if classes.len() != n {
        return Err(input(format!("{} targets for {n} images", classes.len())));
    }
    Ok(classes.into_iter().map(FollowedClass::Class).collect())
}

/// Which perturbation curve, with its options.
enum Curve {
    Pixels(PixelFlippingOptions),
    Regions(RegionPerturbationOptions),
}

impl Curve {
    /// The curve of one image, following `class`.
    fn run(
        &self,
        scorer: &ModelScorer,
        image: &ImageView,
        map: &MapView,
        class: FollowedClass,
    ) -> Result<PerturbationResult, relevance::metrics::MetricError> {
        match self {
            Curve::Pixels(o) => flip(
                scorer,
                image,
                map,
                &PixelFlippingOptions {
                    target: class,
                    ..o.clone()
                },
            ),
            Curve::Regions(o) => regions_of(
                scorer,
                image,
                map,
                &RegionPerturbationOptions {
                    target: class,
                    ..o.clone()
                },
            ),
        }
    }
}

/// Runs `curve` on every image (GIL released per image, Ctrl-C checked between images) and
/// gathers the results.
fn per_image<'py>(
    py: Python<'py>,
    model: &PyModel,
    x: &Bound<'py, PyAny>,
    maps: PyReadonlyArrayDyn<'py, f32>,
    target: Option<&Bound<'py, PyAny>>,
    how: &Perturbation<'_>,
    curve: &Curve,
) -> PyResult<Bound<'py, PyDict>> {
    let engine = model.model();
    let x = batch(py, x, &engine.card)?;
    let [n, c, h, w] = x.dims();
    let (planes, size) = map_planes(&maps, map_style(how.style)?)?;
    if planes.len() != n || size != [h, w] {
        return Err(input(format!(
            "maps must be [N, H, W] or [N, C, H, W] with N = {n}, H × W = {h} × {w}, got {} maps of {size:?}",
            planes.len()
        )));
    }
    let targets = followed(target, n)?;
    let scorer = ModelScorer::new(engine, score_kind(how.score)?).map_err(|e| to_py(e.into()))?;
    let pixels = to_vec(&x);
    let per = c * h * w;
    let mut results = Vec::with_capacity(n);
    for r in 0..n {
        py.check_signals()?;
        let values = &pixels[r * per..(r + 1) * per];
        let result = py
            .detach(|| {
                let image = ImageView::new(values, [c, h, w])?;
                let map = MapView::new(&planes[r], [h, w])?;
                curve.run(&scorer, &image, &map, targets[r])
            })
            .map_err(|e| to_py(e.into()))?;
        results.push(result);
    }
    gather(py, &results, how.score)
}

/// `{"aopc", "auc_quantus", "classes", "curves": [(fractions, scores)], "conventions"}`.
fn gather<'py>(
    py: Python<'py>,
    results: &[PerturbationResult],
    score: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("aopc", results.iter().map(|r| r.aopc).collect::<Vec<_>>())?;
    out.set_item(
        "auc_quantus",
        results.iter().map(|r| r.auc_quantus).collect::<Vec<_>>(),
    )?;
    out.set_item(
        "classes",
        results
            .iter()
            .map(|r| r.conventions.class)
            .collect::<Vec<_>>(),
    )?;
    out.set_item(
        "curves",
        results
            .iter()
            .map(|r| (r.curve.fractions.clone(), r.curve.scores.clone()))
            .collect::<Vec<_>>(),
    )?;
    if let Some(first) = results.first() {
        let c = &first.conventions;
        let stated = PyDict::new(py);
        stated.set_item("method", c.method)?;
        stated.set_item("order", format!("{:?}", c.order).to_lowercase())?;
        stated.set_item("unit", c.unit)?;
        stated.set_item("baseline", &c.baseline)?;
        stated.set_item("score", score)?;
        out.set_item("conventions", stated)?;
    }
    Ok(out)
}

/// Pixel flipping (Bach et al. 2015): the pixels of each image, in the map's order (`morf`:
/// most relevant first; `lerf`: least), `pixels_per_step` at a time (0: 1 % of the pixels,
/// rounded up), replaced by `baseline` with all their channels, cumulatively, the followed
/// class's score read after each step. `AOPC = 1/(L+1) Σ_k (f(x⁰) − f(xᵏ))`; `auc_quantus` is
/// Quantus 0.6's `PixelFlipping` AUC (`trapz(scores[1:], dx=1)`).
#[pyfunction]
#[pyo3(signature = (model, x, maps, pixels_per_step = 0, order = "morf", baseline = "min",
    target = None, score = "softmax", style = "signed"))]
#[allow(clippy::too_many_arguments)]
pub fn pixel_flipping<'py>(
    py: Python<'py>,
    model: &PyModel,
    x: &Bound<'py, PyAny>,
    maps: PyReadonlyArrayDyn<'py, f32>,
    pixels_per_step: usize,
    order: &str,
    baseline: &str,
    target: Option<&Bound<'py, PyAny>>,
    score: &str,
    style: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let curve = Curve::Pixels(PixelFlippingOptions {
        pixels_per_step,
        order: self::order(order)?,
        baseline: self::baseline(baseline)?,
        target: FollowedClass::Predicted,
    });
    let how = Perturbation { score, style };
    per_image(py, model, x, maps, target, &how, &curve)
}

/// Region perturbation (Samek et al. 2017) on Quantus 0.6's grid of `patch × patch` patches
/// (centred, border patches partial): the `regions` patches of highest (`morf`) or lowest
/// (`lerf`) summed relevance replaced by `baseline`, one patch a step, cumulatively; the AOPC
/// as for pixel flipping.
#[pyfunction]
#[pyo3(signature = (model, x, maps, patch = 8, regions = 100, order = "morf", baseline = "min",
    target = None, score = "softmax", style = "signed"))]
#[allow(clippy::too_many_arguments)]
pub fn region_perturbation<'py>(
    py: Python<'py>,
    model: &PyModel,
    x: &Bound<'py, PyAny>,
    maps: PyReadonlyArrayDyn<'py, f32>,
    patch: usize,
    regions: usize,
    order: &str,
    baseline: &str,
    target: Option<&Bound<'py, PyAny>>,
    score: &str,
    style: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let curve = Curve::Regions(RegionPerturbationOptions {
        patch,
        regions,
        order: self::order(order)?,
        baseline: self::baseline(baseline)?,
        target: FollowedClass::Predicted,
    });
    let how = Perturbation { score, style };
    per_image(py, model, x, maps, target, &how, &curve)
}
