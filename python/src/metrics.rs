//! `relevance.metrics`: the library's measures of explanations on NumPy maps, with their
//! conventions stated beside the numbers (as the studies write them).

use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use relevance::MapStyle;
use relevance::metrics::insertion::{InsertionOptions, insertion_deletion as id_curves};
use relevance::metrics::scorer::{FollowedClass, ModelScorer, ScoreKind};
use relevance::metrics::{ImageView, MapView};
use relevance::report::heatmap::plane;
use relevance::studies::faithfulness::{IdConventions, SubstrateSpec, parse_step, parse_ties};
use relevance::tensor::to_vec;

use crate::arrays::batch;
use crate::errors::{input, to_py};
use crate::model::PyModel;

/// The conventions: a preset (`default`, `rise`, `resnet-lrp`, `xplique`) with overrides given
/// as `relevance faithfulness` takes them.
fn conventions(
    preset: &str,
    step: Option<&str>,
    ties: Option<&str>,
    score: Option<&str>,
    insertion_substrate: Option<&str>,
    deletion_substrate: Option<&str>,
) -> Result<IdConventions, String> {
    let mut c = IdConventions::preset(preset)?;
    if let Some(s) = step {
        c.step = parse_step(s)?;
    }
    if let Some(t) = ties {
        c.ties = parse_ties(t)?;
    }
    if let Some(s) = score {
        c.score = match s {
            "softmax" => ScoreKind::Softmax,
            "logit" => ScoreKind::Logit,
            other => return Err(format!("unknown score '{other}'; use softmax or logit")),
        };
    }
    if let Some(s) = insertion_substrate {
        c.insertion_substrate = s.parse::<SubstrateSpec>()?;
    }
    if let Some(s) = deletion_substrate {
        c.deletion_substrate = s.parse::<SubstrateSpec>()?;
    }
    Ok(c)
}

/// Insertion and deletion (Petsiuk et al. 2018, RISE) of `maps` on `x`: pixels are ordered by
/// the map (reduced to one plane by `style` as the overlays are: signed = channel sum,
/// magnitude = max_c |v|, unit = as is), then inserted into the insertion substrate / replaced
/// by the deletion substrate a step at a time while the target class's score is read; each AUC
/// is the trapezoid over the fraction of pixels changed, and `id = insertion − deletion`.
/// `target`: `None` follows the predicted class, else a class index per image (or one for all).
/// Returns `{"insertion": [...], "deletion": [...], "id": [...], "classes": [...],
/// "insertion_curves": [(fractions, scores)], "deletion_curves": [...], "conventions": {...}}`.
#[pyfunction]
#[pyo3(signature = (model, x, maps, style = "signed", target = None, preset = "default", step = None,
    ties = None, score = None, insertion_substrate = None, deletion_substrate = None))]
#[allow(clippy::too_many_arguments)]
pub fn insertion_deletion<'py>(
    py: Python<'py>,
    model: &PyModel,
    x: &Bound<'py, PyAny>,
    maps: PyReadonlyArrayDyn<'py, f32>,
    style: &str,
    target: Option<&Bound<'py, PyAny>>,
    preset: &str,
    step: Option<&str>,
    ties: Option<&str>,
    score: Option<&str>,
    insertion_substrate: Option<&str>,
    deletion_substrate: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let model_ref = model.model();
    let card = &model_ref.card;
    let conv = conventions(
        preset,
        step,
        ties,
        score,
        insertion_substrate,
        deletion_substrate,
    )
    .map_err(input)?;
    let style = match style {
        "signed" | "magnitude" | "unit" => MapStyle::from_name(style),
        other => {
            return Err(input(format!(
                "unknown style '{other}'; use signed, magnitude or unit"
            )));
        }
    };
    let x = batch(py, x, card)?;
    let [n, c, h, w] = x.dims();
    let channels = match maps.shape() {
        [m, mh, mw] if (*m, *mh, *mw) == (n, h, w) => 1,
        [m, mc, mh, mw] if (*m, *mh, *mw) == (n, h, w) => *mc,
        other => {
            return Err(input(format!(
                "maps must be [N, H, W] or [N, C, H, W] with N = {n}, H × W = {h} × {w}, got {other:?}"
            )));
        }
    };
    let values: Vec<f32> = match maps.as_slice() {
        Ok(s) if maps.is_c_contiguous() => s.to_vec(),
        _ => maps.as_array().iter().copied().collect(),
    };
    let classes: Vec<usize> = match target {
        None => model.predicted(py, &x)?,
        Some(t) => match t.extract::<usize>() {
            Ok(one) => vec![one; n],
            Err(_) => t
                .extract::<Vec<usize>>()
                .map_err(|_| input("target must be None, a class index or one index per image"))?,
        },
    };
    if classes.len() != n {
        return Err(input(format!("{} targets for {n} images", classes.len())));
    }
    let pixels = to_vec(&x);
    let scorer = ModelScorer::new(model_ref, conv.score).map_err(|e| to_py(e.into()))?;
    let options = |class: usize| InsertionOptions {
        step: conv.step,
        ties: conv.ties,
        target: FollowedClass::Class(class),
        insertion_substrate: conv.insertion_substrate.resolve(card),
        deletion_substrate: conv.deletion_substrate.resolve(card),
    };
    let (per_image, per_map) = (c * h * w, channels * h * w);
    let mut results = Vec::with_capacity(n);
    for r in 0..n {
        py.check_signals()?;
        let image_values = &pixels[r * per_image..(r + 1) * per_image];
        let map_plane = plane(&values[r * per_map..(r + 1) * per_map], channels, style);
        let result = py
            .detach(|| {
                let image = ImageView::new(image_values, [c, h, w])?;
                let map = MapView::new(&map_plane, [h, w])?;
                id_curves(&scorer, &image, &map, &options(classes[r]))
            })
            .map_err(|e| to_py(e.into()))?;
        results.push(result);
    }
    let out = PyDict::new(py);
    out.set_item(
        "insertion",
        results
            .iter()
            .map(|r| r.insertion.curve.auc)
            .collect::<Vec<_>>(),
    )?;
    out.set_item(
        "deletion",
        results
            .iter()
            .map(|r| r.deletion.curve.auc)
            .collect::<Vec<_>>(),
    )?;
    out.set_item("id", results.iter().map(|r| r.id_score).collect::<Vec<_>>())?;
    out.set_item("classes", classes)?;
    let curves = |f: fn(
        &relevance::metrics::insertion::InsertionDeletion,
    ) -> &relevance::metrics::insertion::CurveResult| {
        results
            .iter()
            .map(|r| (f(r).curve.fractions.clone(), f(r).curve.scores.clone()))
            .collect::<Vec<_>>()
    };
    out.set_item("insertion_curves", curves(|r| &r.insertion))?;
    out.set_item("deletion_curves", curves(|r| &r.deletion))?;
    let stated = PyDict::new(py);
    for (k, v) in conv.columns() {
        stated.set_item(k, v)?;
    }
    out.set_item("conventions", stated)?;
    Ok(out)
}
