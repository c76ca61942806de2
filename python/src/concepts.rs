//! `Model.concepts`: Concept Relevance Propagation (Achtibat et al. 2023) through
//! [`relevance::explain::concepts::concepts_of`], the function `relevance concepts` runs per input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use relevance::Model;
use relevance::explain::concepts::{ConceptRequest, InputConcepts, concepts_of};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions, SkipMode, StartRelevance};

use crate::arrays::to_numpy;
use crate::errors::{MethodError, to_py};
use crate::model::PyModel;

/// LRP models bound on one model, by composite, skip mode and start (canonizing and binding
/// the rules once, as a prepared method).
#[derive(Default)]
pub struct LrpCache(Mutex<HashMap<String, Arc<LrpModel>>>);

impl LrpCache {
    /// The LRP model of `composite`, `skip` and `start` on `model`, bound once.
    fn get(
        &self,
        model: &Model,
        composite: &str,
        skip: &str,
        start: &str,
    ) -> PyResult<Arc<LrpModel>> {
        let key = format!("{composite}\u{0}{skip}\u{0}{start}");
        if let Some(lrp) = self.0.lock().expect("LRP cache").get(&key) {
            return Ok(Arc::clone(lrp));
        }
        let flag = |name: &str, e: String| MethodError::new_err(format!("--{name}: {e}"));
        let composite: Composite = composite.parse().map_err(|e| flag("composite", e))?;
        let options = LrpOptions {
            skip: skip
                .parse::<SkipMode>()
                .map_err(|e| flag("resnet-skip", e))?,
            start: start
                .parse::<StartRelevance>()
                .map_err(|e| flag("start", e))?,
            zbox: None,
        };
        let lrp = Arc::new(LrpModel::new(model, composite, &options).map_err(|e| to_py(e.into()))?);
        let mut cache = self.0.lock().expect("LRP cache");
        Ok(Arc::clone(cache.entry(key).or_insert(lrp)))
    }
}

/// The options of one `concepts` call, as `relevance concepts` takes them.
pub struct ConceptsCall<'a> {
    pub layer: &'a str,
    pub top: usize,
    pub concepts: Vec<Vec<usize>>,
    pub composite: &'a str,
    pub resnet_skip: &'a str,
    pub start: &'a str,
    pub target: Option<String>,
    pub batch: usize,
}

/// Runs CRP on every row of `x` (GIL released per row, Ctrl-C checked between rows) and
/// gathers the results as a dict of arrays.
pub fn concepts<'py>(
    py: Python<'py>,
    model: &PyModel,
    x: &relevance::T4,
    call: &ConceptsCall<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    let engine = model.model();
    let lrp = py.detach(|| {
        model
            .lrp_cache()
            .get(engine, call.composite, call.resnet_skip, call.start)
    })?;
    let layer = lrp.find(call.layer).map_err(|e| to_py(e.into()))?;
    let request = ConceptRequest {
        top: call.top,
        extra: call.concepts.clone(),
        target: call.target.clone(),
        batch: call.batch,
    };
    let n = x.dims()[0];
    let mut rows: Vec<InputConcepts> = Vec::with_capacity(n);
    for i in 0..n {
        py.check_signals()?;
        let row = x.clone().narrow(0, i, 1);
        rows.push(
            py.detach(|| concepts_of(engine, &lrp, layer, &row, &request))
                .map_err(to_py)?,
        );
    }
    gather(py, &rows)
}

/// The rows' results as `{"targets", "explained", "relevance", "top", "share", "sets",
/// "heatmaps"}`.
fn gather<'py>(py: Python<'py>, rows: &[InputConcepts]) -> PyResult<Bound<'py, PyDict>> {
    let n = rows.len();
    let channels = rows.first().map_or(0, |r| r.channel_relevance.len());
    let top = rows.first().map_or(0, |r| r.ranking.len());
    let sets = rows.first().map_or(0, |r| r.sets.len());
    let [h, w] = rows.first().map_or([0, 0], |r| r.size);
    let out = PyDict::new(py);
    out.set_item("targets", rows.iter().map(|r| r.target).collect::<Vec<_>>())?;
    out.set_item(
        "explained",
        rows.iter().map(|r| r.explained).collect::<Vec<_>>(),
    )?;
    let relevance: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.channel_relevance.clone())
        .collect();
    out.set_item("relevance", to_numpy(py, relevance, &[n, channels])?)?;
    let ranked: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.ranking.iter().map(|c| c.channel as i64))
        .collect();
    out.set_item("top", to_numpy(py, ranked, &[n, top])?)?;
    let share: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.ranking.iter().map(|c| c.relevance))
        .collect();
    out.set_item("share", to_numpy(py, share, &[n, top])?)?;
    out.set_item(
        "sets",
        rows.iter().map(|r| r.sets.clone()).collect::<Vec<_>>(),
    )?;
    let heatmaps: Vec<f32> = rows.iter().flat_map(|r| r.heatmaps.clone()).collect();
    out.set_item("heatmaps", to_numpy(py, heatmaps, &[n, sets, h, w])?)?;
    Ok(out)
}
