//! Composites: which rule each node of a (BatchNorm-folded) graph gets, as zennit 0.4.6's
//! composites assign them.
//!
//! Common to all four (zennit's `LAYER_MAP_BASE`): activations get Pass, average pooling (plain
//! and adaptive) gets Norm, residual sums get the [`SkipMode`]'s rule; anything else without a
//! rule (max pooling, flatten, dropout, unfolded BatchNorm) keeps the gradient.
//!
//! | composite | first linear layer | other convolutions | fully connected |
//! |---|---|---|---|
//! | `epsilon-plus` | — | z⁺ | ε = 10⁻⁶ |
//! | `epsilon-plus-flat` | Flat (first conv or dense layer) | z⁺ | ε = 10⁻⁶ |
//! | `epsilon-gamma-box` | z^B (first convolution) | γ = 0.25 | ε = 10⁻⁶ |
//! | `epsilon-alpha2-beta1` | — | α = 2, β = 1 | ε = 10⁻⁶ |
//!
//! "First" is the first matching node in topological order (zennit: in module registration
//! order, the same for torchvision's VGG and ResNet).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::elementwise::{Grad, Norm, Pass};
use super::rules::{LinearLrp, LinearRule};
use super::skip::{SkipMode, SkipRule, is_residual_sum};
use crate::engine::{EngineError, Rule, Rules};
use crate::graph::{Graph, Op, ParamStore};

/// One of zennit's LRP composites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Composite {
    /// `EpsilonPlus`: z⁺ on convolutions, ε on dense layers.
    EpsilonPlus,
    /// `EpsilonPlusFlat`: like `EpsilonPlus` with Flat on the first layer.
    EpsilonPlusFlat,
    /// `EpsilonGammaBox`: z^B on the first convolution, γ on the others, ε on dense layers.
    EpsilonGammaBox,
    /// `EpsilonAlpha2Beta1`: α2β1 on convolutions, ε on dense layers.
    EpsilonAlpha2Beta1,
}

impl Composite {
    /// All composites.
    pub const ALL: [Composite; 4] = [
        Composite::EpsilonPlus,
        Composite::EpsilonPlusFlat,
        Composite::EpsilonGammaBox,
        Composite::EpsilonAlpha2Beta1,
    ];

    /// Kebab-case name (`epsilon-plus-flat`).
    pub fn name(self) -> &'static str {
        match self {
            Composite::EpsilonPlus => "epsilon-plus",
            Composite::EpsilonPlusFlat => "epsilon-plus-flat",
            Composite::EpsilonGammaBox => "epsilon-gamma-box",
            Composite::EpsilonAlpha2Beta1 => "epsilon-alpha2-beta1",
        }
    }

    /// The rule of the first layer, and whether dense layers count as "first" candidates
    /// (zennit's `Linear` type) or only convolutions (`Convolution`).
    fn first_layer(self, bounds: &ZBoxBounds) -> Option<(LinearRule, bool)> {
        match self {
            Composite::EpsilonPlusFlat => Some((LinearRule::Flat, true)),
            Composite::EpsilonGammaBox => Some((
                LinearRule::ZBox {
                    low: bounds.low.clone(),
                    high: bounds.high.clone(),
                },
                false,
            )),
            Composite::EpsilonPlus | Composite::EpsilonAlpha2Beta1 => None,
        }
    }

    /// The rule of every other convolution.
    fn conv_rule(self) -> LinearRule {
        match self {
            Composite::EpsilonPlus | Composite::EpsilonPlusFlat => LinearRule::ZPlus,
            Composite::EpsilonGammaBox => LinearRule::Gamma { gamma: 0.25 },
            Composite::EpsilonAlpha2Beta1 => LinearRule::AlphaBeta {
                alpha: 2.0,
                beta: 1.0,
            },
        }
    }

    /// The rule of fully connected layers.
    fn dense_rule(self) -> LinearRule {
        LinearRule::Epsilon { epsilon: 1e-6 }
    }

    /// The rule map of `graph` (BatchNorm already folded), with modified weights prepared per
    /// node, and a readable list of `(node, rule)` assignments.
    pub fn rules(
        self,
        graph: &Graph,
        params: &ParamStore,
        skip: SkipMode,
        bounds: &ZBoxBounds,
    ) -> Result<(Rules, Vec<(String, String)>), EngineError> {
        let mut rules = Rules::gradient();
        let mut assigned = Vec::new();
        let mut first = self.first_layer(bounds);
        let grad: Arc<dyn Rule> = Arc::new(Grad);
        let pass: Arc<dyn Rule> = Arc::new(Pass);
        let norm: Arc<dyn Rule> = Arc::new(Norm);
        let skip_rule: Arc<dyn Rule> = Arc::new(SkipRule { mode: skip });
        for (id, node) in graph.nodes.iter().enumerate() {
            let (rule, name): (Arc<dyn Rule>, String) = match &node.op {
                Op::Conv2d(_) | Op::Linear(_) => {
                    let is_conv = matches!(node.op, Op::Conv2d(_));
                    let linear_rule = match first.take() {
                        Some((rule, dense_counts)) if is_conv || dense_counts => rule,
                        other => {
                            first = other;
                            if is_conv {
                                self.conv_rule()
                            } else {
                                self.dense_rule()
                            }
                        }
                    };
                    let name = linear_rule.name();
                    let bound = LinearLrp::new(linear_rule, &node.op, params, id)
                        .map_err(|e| e.at_node(&node.name))?;
                    (Arc::new(bound), name)
                }
                Op::Relu | Op::Clip { .. } | Op::Silu | Op::Sigmoid | Op::Tanh => {
                    (pass.clone(), "pass".into())
                }
                Op::AvgPool2d(_) | Op::AdaptiveAvgPool2d { .. } => (norm.clone(), "norm".into()),
                Op::Add if is_residual_sum(graph, id) => {
                    (skip_rule.clone(), format!("skip-{skip}"))
                }
                _ => (grad.clone(), "gradient".into()),
            };
            rules.set(id, rule);
            assigned.push((node.name.clone(), name));
        }
        Ok((rules, assigned))
    }
}

impl fmt::Display for Composite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Composite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Composite::ALL
            .into_iter()
            .find(|c| c.name() == s || c.name().replace('-', "_") == s)
            .ok_or_else(|| {
                format!(
                    "unknown composite '{s}'; valid: {}",
                    Composite::ALL.map(|c| c.name()).join(", ")
                )
            })
    }
}

/// Per-channel bounds of the input for the z^B rule (one value applies to all channels).
#[derive(Clone, Debug, PartialEq)]
pub struct ZBoxBounds {
    /// Lowest input value per channel.
    pub low: Vec<f32>,
    /// Highest input value per channel.
    pub high: Vec<f32>,
}

impl ZBoxBounds {
    /// The bounds of pixels `0..=255` after the model card's normalisation (input =
    /// pixel·scale + shift per channel).
    pub fn from_card(card: &crate::graph::ModelCard) -> Self {
        let affine = card.normalization.affine(card.channels);
        ZBoxBounds {
            low: affine.iter().map(|&(_, shift)| shift).collect(),
            high: affine
                .iter()
                .map(|&(scale, shift)| 255.0 * scale + shift)
                .collect(),
        }
    }
}
