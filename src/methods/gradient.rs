//! The plain input gradient and what is read from it: saliency (Simonyan, Vedaldi & Zisserman,
//! "Deep Inside Convolutional Networks", 2014) and Input×Gradient (Shrikumar et al. 2016).

use serde_json::json;

use super::pass::{forward_all, input_signal};
use super::{Explainer, MapKind, MapStyle, MethodError};
use crate::engine::{Activations, Rules};
use crate::graph::Model;
use crate::tensor::T4;

/// `∂ logit_t / ∂x` for every image, `[N, C, H, W]`, from one backward pass over `acts`.
pub fn input_gradient(
    model: &Model,
    acts: &Activations,
    targets: &[usize],
) -> Result<T4, MethodError> {
    input_signal(model, acts, targets, &Rules::gradient())
}

/// Simonyan et al.'s saliency map `M_ij = max_c |∂ logit_t / ∂x_cij|`, `[N, 1, H, W]`.
pub fn saliency_map(gradient: &T4) -> T4 {
    gradient.clone().abs().max_dim(1)
}

/// Saliency. The map it returns (and the `.npy` written by `relevance explain`) is the **signed
/// gradient** `[N, C, H, W]`, so nothing is lost; it is drawn as Simonyan et al.'s saliency,
/// `max_c |g|` ([`saliency_map`], [`MapStyle::Magnitude`]).
pub struct Saliency;

impl Explainer for Saliency {
    fn name(&self) -> &str {
        "saliency"
    }
    fn kind(&self) -> MapKind {
        MapKind::Input
    }
    fn style(&self) -> MapStyle {
        MapStyle::Magnitude
    }
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError> {
        self.explain_forward(model, x, &forward_all(model, x)?, targets)
    }
    fn explain_forward(
        &self,
        model: &Model,
        _x: &T4,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<T4, MethodError> {
        input_gradient(model, acts, targets)
    }
    fn params(&self) -> serde_json::Value {
        json!({"map": "signed gradient [C,H,W]; drawn as max_c |g|"})
    }
}

/// Input×Gradient: `x ⊙ ∂ logit_t / ∂x`, signed, `[N, C, H, W]`.
pub struct InputXGradient;

impl Explainer for InputXGradient {
    fn name(&self) -> &str {
        "input-x-gradient"
    }
    fn kind(&self) -> MapKind {
        MapKind::Input
    }
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError> {
        self.explain_forward(model, x, &forward_all(model, x)?, targets)
    }
    fn explain_forward(
        &self,
        model: &Model,
        x: &T4,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<T4, MethodError> {
        Ok(input_gradient(model, acts, targets)?.mul(x.clone()))
    }
}
