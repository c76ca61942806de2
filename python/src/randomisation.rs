//! `relevance.metrics.model_parameter_randomisation`: the sanity check of Adebayo et al. (2018)
//! on a batch, with the maps made as the `relevance sanity` study makes them
//! ([`relevance::studies::sanity::scores::planes_on`]).

use std::collections::HashMap;

use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use relevance::Model;
use relevance::graph::ParamStore;
use relevance::metrics::randomisation::{
    Cascade, Comparison, RandomisationOptions, Similarities, model_parameter_randomisation as mprt,
    model_parameter_randomisation_with as mprt_with,
};
use relevance::studies::sanity::scores::planes_on;
use relevance::studies::toolkit::{StudyMethod, study_methods};
use relevance::tensor::T4;

use crate::arrays::batch;
use crate::errors::{MethodError, input, to_py};
use crate::model::PyModel;

/// The comparison options of one call.
pub struct Settings {
    pub cascade: String,
    pub include_batchnorm: bool,
    pub seed: u64,
    pub signed: bool,
    pub top_fraction: f64,
}

/// Model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"):
/// the layers' parameters are replaced by fresh ones from the output layer down — cumulatively
/// (`cascade="top-down"`) or one layer at a time (`"independent"`) — and after each layer the
/// maps of `method` are compared with the original model's by Spearman rank correlation, SSIM
/// and the IoU of the top `top_fraction` pixels (of `|maps|` unless `signed`). Fresh
/// parameters are drawn from `seed` as the model's initialiser draws them, or taken from
/// `fresh` (parameter name → array). `options` are `relevance explain`'s method flags.
#[pyfunction]
#[pyo3(signature = (model, x, method, target = None, cascade = "top-down",
    include_batchnorm = true, seed = 0, signed = false, top_fraction = 0.1, fresh = None,
    **options))]
#[allow(clippy::too_many_arguments)]
pub fn model_parameter_randomisation<'py>(
    py: Python<'py>,
    model: &PyModel,
    x: &Bound<'py, PyAny>,
    method: &str,
    target: Option<&Bound<'py, PyAny>>,
    cascade: &str,
    include_batchnorm: bool,
    seed: u64,
    signed: bool,
    top_fraction: f64,
    fresh: Option<HashMap<String, PyReadonlyArrayDyn<'py, f32>>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let engine = model.model();
    let x = batch(py, x, &engine.card)?;
    let n = x.dims()[0];
    let targets = match target {
        None => model.predicted(py, &x)?,
        Some(t) => match t.extract::<usize>() {
            Ok(one) => vec![one; n],
            Err(_) => t
                .extract::<Vec<usize>>()
                .map_err(|_| input("target must be None, a class index or one index per image"))?,
        },
    };
    let flags = crate::model::flags_of(options)?;
    let method_options = relevance::cli::method_options_from_flags(&flags)
        .map_err(|e| MethodError::new_err(format!("{e:#}")))?;
    let (_, method) = study_methods(&[method.to_string()], &method_options)
        .map_err(|e| to_py(e.into()))?
        .into_iter()
        .next()
        .ok_or_else(|| MethodError::new_err("no method given"))?;
    let settings = Settings {
        cascade: cascade.to_string(),
        include_batchnorm,
        seed,
        signed,
        top_fraction,
    };
    let opts = randomisation_options(&settings)?;
    let fresh = fresh.map(|f| param_store(&f)).transpose()?;
    let keys: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let result = py
        .detach(|| run(engine, &x, &targets, &method, &keys, fresh.as_ref(), &opts))
        .map_err(|e| to_py(e.into()))?;
    let out = PyDict::new(py);
    out.set_item("classes", targets)?;
    out.set_item(
        "layers",
        result
            .steps
            .iter()
            .map(|s| s.layer.clone())
            .collect::<Vec<_>>(),
    )?;
    let table = |pick: fn(&Similarities) -> f64| -> Vec<Vec<f64>> {
        result
            .steps
            .iter()
            .map(|step| step.per_image.iter().map(pick).collect())
            .collect()
    };
    out.set_item("spearman", table(|s| s.spearman))?;
    out.set_item("ssim", table(|s| s.ssim))?;
    out.set_item("top_k_iou", table(|s| s.top_k_iou))?;
    Ok(out)
}

fn run(
    model: &Model,
    x: &T4,
    targets: &[usize],
    method: &StudyMethod,
    keys: &[String],
    fresh: Option<&ParamStore>,
    opts: &RandomisationOptions,
) -> Result<relevance::metrics::randomisation::Randomisation, relevance::metrics::MetricError> {
    let explain = |m: &Model, batch: T4, t: &[usize]| planes_on(method, m, &batch, t, keys);
    match fresh {
        Some(fresh) => mprt_with(model, x, targets, &explain, fresh, opts),
        None => mprt(model, x, targets, &explain, opts),
    }
}

fn randomisation_options(s: &Settings) -> PyResult<RandomisationOptions> {
    let cascade = match s.cascade.as_str() {
        "top-down" => Cascade::TopDown,
        "independent" => Cascade::Independent,
        other => {
            return Err(input(format!(
                "unknown cascade '{other}'; use top-down or independent"
            )));
        }
    };
    if !(s.top_fraction > 0.0 && s.top_fraction <= 1.0) {
        return Err(input(format!(
            "top_fraction must be in (0, 1], got {}",
            s.top_fraction
        )));
    }
    Ok(RandomisationOptions {
        cascade,
        include_batchnorm: s.include_batchnorm,
        seed: s.seed,
        comparison: Comparison {
            abs: !s.signed,
            top_fraction: s.top_fraction,
            ..Comparison::default()
        },
    })
}

/// Given fresh parameters as a [`ParamStore`].
fn param_store(fresh: &HashMap<String, PyReadonlyArrayDyn<'_, f32>>) -> PyResult<ParamStore> {
    let mut store = ParamStore::new();
    for (key, array) in fresh {
        let values: Vec<f32> = array.as_array().iter().copied().collect();
        store
            .insert_values(key.clone(), values, array.shape().to_vec())
            .map_err(|e| input(format!("fresh['{key}']: {e}")))?;
    }
    Ok(store)
}
