//! `relevance.metrics` on maps alone (no model): localisation against object masks,
//! similarity of two maps, sparseness and complexity — the functions of
//! `relevance::metrics` that the `compare`, `stability` and `sanity` studies run.

use numpy::PyReadonlyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use relevance::metrics::MapView;
use relevance::metrics::complexity::{complexity as complexity_of, sparseness as sparseness_of};
use relevance::metrics::localisation::{
    pointing_game as pointing, relevance_mass_accuracy as mass, relevance_rank_accuracy as rank,
};
use relevance::metrics::similarity::{SsimOptions, pearson, spearman, ssim, top_k_iou};

use crate::arrays::{map_planes, map_style, mask_planes};
use crate::errors::to_py;

fn metric_err(e: relevance::metrics::MetricError) -> PyErr {
    to_py(e.into())
}

/// The pointing game (Zhang et al. 2018) per image: whether the map's maximum lies on the
/// object (within `tolerance` pixels, Euclidean); `None` for an empty mask. Returns
/// `{"hit": [...], "location": [(row, col)], "maxima": [...]}` (the first maximal pixel in
/// row-major order and how many pixels share the maximum).
#[pyfunction]
#[pyo3(signature = (maps, masks, tolerance = 0.0, style = "signed"))]
pub fn pointing_game<'py>(
    py: Python<'py>,
    maps: PyReadonlyArrayDyn<'py, f32>,
    masks: PyReadonlyArrayDyn<'py, bool>,
    tolerance: f64,
    style: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let (planes, size) = map_planes(&maps, map_style(style)?)?;
    let masks = mask_planes(&masks, planes.len(), size)?;
    let (mut hit, mut location, mut maxima) = (Vec::new(), Vec::new(), Vec::new());
    for (plane, mask) in planes.iter().zip(&masks) {
        let map = MapView::new(plane, size).map_err(metric_err)?;
        let game = pointing(&map, mask, tolerance).map_err(metric_err)?;
        hit.push(game.map(|g| g.hit));
        location.push(game.map(|g| g.location));
        maxima.push(game.map(|g| g.maxima));
    }
    let out = PyDict::new(py);
    out.set_item("hit", hit)?;
    out.set_item("location", location)?;
    out.set_item("maxima", maxima)?;
    Ok(out)
}

/// Relevance mass accuracy (Arras et al. 2022) per image: `Σ_{i∈mask} R_i / Σ_i R_i`, with
/// `R = max(R, 0)` when `positive_only`, else signed as Quantus 0.6; NaN when the total is 0,
/// `None` for an empty mask.
#[pyfunction]
#[pyo3(signature = (maps, masks, positive_only = false, style = "signed"))]
pub fn relevance_mass_accuracy(
    maps: PyReadonlyArrayDyn<'_, f32>,
    masks: PyReadonlyArrayDyn<'_, bool>,
    positive_only: bool,
    style: &str,
) -> PyResult<Vec<Option<f64>>> {
    let (planes, size) = map_planes(&maps, map_style(style)?)?;
    let masks = mask_planes(&masks, planes.len(), size)?;
    planes
        .iter()
        .zip(&masks)
        .map(|(p, m)| mass(p, m, positive_only).map_err(metric_err))
        .collect()
}

/// Relevance rank accuracy (Arras et al. 2022) per image: of the `K = |mask|` highest-ranked
/// pixels, the fraction on the object; `None` for an empty mask.
#[pyfunction]
#[pyo3(signature = (maps, masks, style = "signed"))]
pub fn relevance_rank_accuracy(
    maps: PyReadonlyArrayDyn<'_, f32>,
    masks: PyReadonlyArrayDyn<'_, bool>,
    style: &str,
) -> PyResult<Vec<Option<f64>>> {
    let (planes, size) = map_planes(&maps, map_style(style)?)?;
    let masks = mask_planes(&masks, planes.len(), size)?;
    planes
        .iter()
        .zip(&masks)
        .map(|(p, m)| rank(p, m).map_err(metric_err))
        .collect()
}

/// Similarity of two maps per image, on the pixels where `valid` is true (all by default):
/// Pearson and Spearman correlation (average ranks for ties, as scipy), the IoU of the top
/// `top_fraction` pixels of each (ties by pixel index) and SSIM (Wang et al. 2004: Gaussian
/// window σ = 1.5, K₁ = 0.01, K₂ = 0.03, the joint range of both maps).
#[pyfunction]
#[pyo3(signature = (a, b, valid = None, top_fraction = 0.1, style = "signed"))]
pub fn similarity<'py>(
    py: Python<'py>,
    a: PyReadonlyArrayDyn<'py, f32>,
    b: PyReadonlyArrayDyn<'py, f32>,
    valid: Option<PyReadonlyArrayDyn<'py, bool>>,
    top_fraction: f64,
    style: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let style = map_style(style)?;
    let (pa, size) = map_planes(&a, style)?;
    let (pb, size_b) = map_planes(&b, style)?;
    if pa.len() != pb.len() || size != size_b {
        return Err(crate::errors::input(format!(
            "a and b must hold as many maps of one size: {} of {size:?} and {} of {size_b:?}",
            pa.len(),
            pb.len()
        )));
    }
    let valid = valid.map(|v| mask_planes(&v, pa.len(), size)).transpose()?;
    let options = SsimOptions::default();
    let (mut r, mut rho, mut iou, mut s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (x, y)) in pa.iter().zip(&pb).enumerate() {
        let v = valid.as_ref().map(|v| v[i].as_slice());
        r.push(pearson(x, y, v).map_err(metric_err)?);
        rho.push(spearman(x, y, v).map_err(metric_err)?);
        iou.push(top_k_iou(x, y, top_fraction, v).map_err(metric_err)?);
        let (mx, my) = (
            MapView::new(x, size).map_err(metric_err)?,
            MapView::new(y, size).map_err(metric_err)?,
        );
        s.push(ssim(&mx, &my, v, &options).map_err(metric_err)?);
    }
    let out = PyDict::new(py);
    out.set_item("pearson", r)?;
    out.set_item("spearman", rho)?;
    out.set_item("top_k_iou", iou)?;
    out.set_item("ssim", s)?;
    Ok(out)
}

/// Sparseness (Chalasani et al. 2020) per image: the Gini index of `|R| + epsilon` (Quantus
/// 0.6's `Sparseness`).
#[pyfunction]
#[pyo3(signature = (maps, epsilon = 1e-7, style = "signed"))]
pub fn sparseness(
    maps: PyReadonlyArrayDyn<'_, f32>,
    epsilon: f64,
    style: &str,
) -> PyResult<Vec<f64>> {
    let (planes, _) = map_planes(&maps, map_style(style)?)?;
    Ok(planes.iter().map(|p| sparseness_of(p, epsilon)).collect())
}

/// Complexity (Bhatt et al. 2020) per image: the entropy of the fractional contributions
/// `|R_i| / Σ|R|` (Quantus 0.6's `Complexity`, `epsilon` added against log 0).
#[pyfunction]
#[pyo3(signature = (maps, epsilon = 1e-12, style = "signed"))]
pub fn complexity(
    maps: PyReadonlyArrayDyn<'_, f32>,
    epsilon: f64,
    style: &str,
) -> PyResult<Vec<f64>> {
    let (planes, _) = map_planes(&maps, map_style(style)?)?;
    Ok(planes.iter().map(|p| complexity_of(p, epsilon)).collect())
}
