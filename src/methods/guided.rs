//! Methods that change only the ReLU rule of the backward pass, and their product with Grad-CAM:
//!
//! - Guided Backprop (Springenberg et al., "Striving for Simplicity", 2015): a ReLU passes the
//!   signal only where both its input and the signal are positive, `g_in = max(g, 0)·[x > 0]`
//!   (pytorch-grad-cam's `GuidedBackpropReLU`).
//! - Deconvnet (Zeiler & Fergus 2014): a ReLU passes the positive part of the signal whatever its
//!   input was, `g_in = max(g, 0)`.
//! - Guided Grad-CAM (Selvaraju et al. 2017): guided backprop times the Grad-CAM map upsampled to
//!   the input, per channel, as pytorch-grad-cam's example computes it (before `deprocess_image`).
//!
//! The rules apply to every `Relu` node and to clips at zero (`ReLU6`, with the upper kink kept
//! as in the gradient); all other nodes keep the exact gradient (max pooling keeps its switches).
//! On a network whose activations are not rectifiers (SiLU in EfficientNet, GELU in ConvNeXt)
//! that makes guided backprop the plain gradient there, which is what pytorch-grad-cam computes
//! and why it seems to "fail" on such networks; [`Prepared::warnings`](super::Prepared::warnings)
//! says so. `guided-backprop(silu=guided)` is our extension: SiLU passes
//! `max(g, 0)·max(SiLU'(x), 0)`, the guided rule applied to SiLU's positive-gradient part, with
//! `SiLU'(x) = σ(x)·(1 + x·(1 − σ(x)))`.

use std::sync::Arc;

use burn::tensor::activation::relu;
use serde_json::json;

use super::cam::{CamWeighting, GradientCam};
use super::pass::{forward_all, input_signal};
use super::{Explainer, MapKind, MethodError};
use crate::engine::{Activations, EngineError, Rule, RuleCtx, Rules};
use crate::graph::{Graph, Model, Op};
use crate::tensor::T4;

/// Guided backprop's ReLU rule: `max(g, 0)·[x > 0]` (and `·[x < max]` for clips).
pub struct GuidedRelu;

impl Rule for GuidedRelu {
    fn backward(&self, ctx: &RuleCtx, g: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let x = ctx.input(0)?.clone();
        let mut pass = x.clone().greater_elem(0.0).float();
        if let Op::Clip { max, .. } = ctx.op() {
            pass = pass.mul(x.lower_elem(*max).float());
        }
        Ok(vec![Some(relu(g).mul(pass))])
    }
}

/// What guided backprop does at SiLU nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SiluRule {
    /// The exact gradient (pytorch-grad-cam's guided backprop).
    #[default]
    Gradient,
    /// [`GuidedSilu`]: `max(g, 0)·max(SiLU'(x), 0)` (our extension).
    Guided,
}

impl std::str::FromStr for SiluRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gradient" => Ok(SiluRule::Gradient),
            "guided" => Ok(SiluRule::Guided),
            _ => Err(format!("unknown SiLU rule '{s}'; valid: gradient, guided")),
        }
    }
}

/// The guided rule on SiLU: `max(g, 0)·max(SiLU'(x), 0)` with `SiLU'(x) = σ(x)·(1 + x·(1 − σ(x)))`.
pub struct GuidedSilu;

impl Rule for GuidedSilu {
    fn backward(&self, ctx: &RuleCtx, g: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let x = ctx.input(0)?.clone();
        let s = burn::tensor::activation::sigmoid(x.clone());
        let one_minus_s = s.clone().neg().add_scalar(1.0);
        let slope = s.mul(x.mul(one_minus_s).add_scalar(1.0));
        Ok(vec![Some(relu(g).mul(relu(slope)))])
    }
}

/// Activations other than rectifiers, which the guided rules leave at their gradient unless a
/// variant covers them, as `kind ×count`.
pub fn unguided_activations(graph: &Graph, silu: SiluRule) -> Vec<String> {
    const SMOOTH: &[&str] = &[
        "silu",
        "gelu",
        "tanh",
        "elu",
        "selu",
        "leaky_relu",
        "prelu",
        "hardswish",
    ];
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for node in &graph.nodes {
        let kind = node.op.kind();
        if !SMOOTH.contains(&kind) || (kind == "silu" && silu == SiluRule::Guided) {
            continue;
        }
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect()
}

/// Deconvnet's ReLU rule: `max(g, 0)`, ignoring the forward input.
pub struct DeconvRelu;

impl Rule for DeconvRelu {
    fn backward(&self, _ctx: &RuleCtx, g: T4) -> Result<Vec<Option<T4>>, EngineError> {
        Ok(vec![Some(relu(g))])
    }
}

/// True for the nodes whose rule the guided methods replace: ReLUs and clips at zero.
pub fn is_rectifier(op: &Op) -> bool {
    match op {
        Op::Relu => true,
        Op::Clip { min, .. } => *min == 0.0,
        _ => false,
    }
}

/// The gradient rules with `rule` on every rectifier of `graph`.
pub fn rectifier_rules(graph: &Graph, rule: Arc<dyn Rule>) -> Rules {
    let mut rules = Rules::gradient();
    rules.set_where(graph, rule, |_, node| is_rectifier(&node.op));
    rules
}

/// Guided backprop's map `[N, C, H, W]` over a forward pass, with `silu` at SiLU nodes.
pub fn guided_backprop(
    model: &Model,
    acts: &Activations,
    targets: &[usize],
    silu: SiluRule,
) -> Result<T4, MethodError> {
    let mut rules = rectifier_rules(&model.graph, Arc::new(GuidedRelu));
    if silu == SiluRule::Guided {
        rules.set_where(&model.graph, Arc::new(GuidedSilu), |_, node| {
            matches!(node.op, Op::Silu)
        });
    }
    input_signal(model, acts, targets, &rules)
}

/// Guided Backpropagation.
pub struct GuidedBackprop {
    /// The rule at SiLU nodes.
    pub silu: SiluRule,
}

impl Explainer for GuidedBackprop {
    fn name(&self) -> &str {
        "guided-backprop"
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
        _x: &T4,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<T4, MethodError> {
        guided_backprop(model, acts, targets, self.silu)
    }
    fn params(&self) -> serde_json::Value {
        json!({"silu": self.silu})
    }
}

/// Deconvnet.
pub struct Deconvnet;

impl Explainer for Deconvnet {
    fn name(&self) -> &str {
        "deconvnet"
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
        _x: &T4,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<T4, MethodError> {
        input_signal(
            model,
            acts,
            targets,
            &rectifier_rules(&model.graph, Arc::new(DeconvRelu)),
        )
    }
}

/// Guided Grad-CAM: guided backprop `[N, C, H, W]` times the Grad-CAM map `[N, 1, H, W]`.
pub struct GuidedGradCam {
    grad_cam: GradientCam,
    silu: SiluRule,
}

impl GuidedGradCam {
    /// With Grad-CAM at `layer` (default: the last spatial layer, see [`super::cam`]) and
    /// `silu` at SiLU nodes of the guided part.
    pub fn new(layer: Option<String>, silu: SiluRule) -> Self {
        GuidedGradCam {
            grad_cam: GradientCam::new(CamWeighting::GradCam, layer),
            silu,
        }
    }
}

impl Explainer for GuidedGradCam {
    fn name(&self) -> &str {
        "guided-grad-cam"
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
        let cam = self.grad_cam.explain_forward(model, x, acts, targets)?;
        Ok(guided_backprop(model, acts, targets, self.silu)?.mul(cam))
    }
    fn params(&self) -> serde_json::Value {
        json!({"layer": self.grad_cam.layer, "silu": self.silu})
    }
}
