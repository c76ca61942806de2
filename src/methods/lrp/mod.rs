//! Layer-wise Relevance Propagation (Bach et al. 2015) as zennit 1.0.0 computes it: rules per
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

pub use checkerboard::{checkerboard_score, checkerboard_scores};
pub use composite::{Composite, FirstLayer, GammaForm, ZBoxBounds};
pub use conservation::{Conservation, check_conservation, conservation_of};
pub use model::{Attribution, LrpModel, LrpOptions, StartRelevance};
pub use rules::LinearRule;
pub use skip::SkipMode;

use super::{Explainer, MapKind, MethodError};
use crate::graph::Model;
use crate::tensor::T4;

/// The low-level LRP explainer of [`crate::methods::by_name`]: it has no model to bind to, so
/// it prepares the model (folds BatchNorm, derives modified weights) on every call. Explaining
/// batch after batch, prepare a [`crate::methods::MethodSpec`] (or an [`LrpModel`]) once instead.
pub struct Lrp {
    name: String,
    composite: Composite,
    options: LrpOptions,
}

impl Lrp {
    /// LRP with `composite` and `options`.
    pub fn new(composite: Composite, options: LrpOptions) -> Self {
        Lrp {
            name: format!("lrp-{}", composite.name()),
            composite,
            options,
        }
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
        let prepared = LrpModel::new(model, self.composite.clone(), &self.options)?;
        Ok(prepared.attribute(x, targets)?.input)
    }
}
