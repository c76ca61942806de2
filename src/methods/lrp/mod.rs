//! Layer-wise Relevance Propagation (Bach et al. 2015) as zennit 0.4.6 computes it: rules per
//! layer ([`rules`], [`elementwise`]), composites that assign them ([`composite`]), BatchNorm
//! folded first (`engine::canonize`), and three treatments of ResNet skip connections
//! ([`skip`]), all as a rule map on the engine's one backward traversal.
//!
//! Methods: `lrp-epsilon-plus`, `lrp-epsilon-plus-flat`, `lrp-epsilon-gamma-box`,
//! `lrp-epsilon-alpha2-beta1` — `[N, C, H, W]` relevance in input space.

pub mod checkerboard;
pub mod composite;
pub mod conservation;
pub mod elementwise;
pub mod kernel;
pub mod model;
pub mod rules;
pub mod skip;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use checkerboard::{checkerboard_score, checkerboard_scores};
pub use composite::{Composite, FirstLayer, ZBoxBounds};
pub use conservation::{Conservation, check_conservation, conservation_of};
pub use model::{Attribution, LrpModel, LrpOptions, StartRelevance};
pub use rules::LinearRule;
pub use skip::SkipMode;

use super::{Explainer, MapKind, MethodError};
use crate::graph::Model;
use crate::tensor::{T4, to_vec};

/// An LRP explainer for one composite. Keeps the last prepared model (folded BatchNorm,
/// modified weights), so explaining batch after batch of the same model prepares it once.
pub struct Lrp {
    name: String,
    composite: Composite,
    options: LrpOptions,
    prepared: Mutex<Option<(ModelKey, Arc<LrpModel>)>>,
}

impl Lrp {
    /// LRP with `composite` and `options`.
    pub fn new(composite: Composite, options: LrpOptions) -> Self {
        Lrp {
            name: format!("lrp-{}", composite.name()),
            composite,
            options,
            prepared: Mutex::new(None),
        }
    }

    /// The prepared form of `model` (cached for the last model seen).
    pub fn prepare(&self, model: &Model) -> Result<Arc<LrpModel>, MethodError> {
        let key = ModelKey::of(model);
        let mut slot = self.prepared.lock().expect("prepared-model lock");
        if let Some((k, prepared)) = slot.as_ref()
            && *k == key
        {
            return Ok(prepared.clone());
        }
        let prepared = Arc::new(LrpModel::new(model, self.composite.clone(), &self.options)?);
        *slot = Some((key, prepared.clone()));
        Ok(prepared)
    }
}

impl Explainer for Lrp {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> MapKind {
        MapKind::Input
    }
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError> {
        Ok(self.prepare(model)?.attribute(x, targets)?.input)
    }
}

/// Identifies a model well enough to reuse its prepared form: where it lives, where it came
/// from, its size, and a few parameter values (which change when weights are replaced).
#[derive(Clone, Debug, PartialEq)]
struct ModelKey {
    address: usize,
    source: PathBuf,
    nodes: usize,
    scalars: usize,
    probe: Vec<u32>,
}

impl ModelKey {
    fn of(model: &Model) -> Self {
        let probe = model
            .params
            .iter()
            .step_by(7)
            .take(16)
            .flat_map(|(_, p)| {
                let n = p.data.dims()[0].min(4);
                to_vec(&p.data.clone().narrow(0, 0, n))
            })
            .map(f32::to_bits)
            .collect();
        ModelKey {
            address: model as *const Model as usize,
            source: model.source.clone(),
            nodes: model.graph.nodes.len(),
            scalars: model.params.scalar_count(),
            probe,
        }
    }
}
