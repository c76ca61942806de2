//! Composites: which rule each node of a (BatchNorm-folded) graph gets. A composite is data —
//! a rule for the first linear layer, one for the other convolutions and one for fully connected
//! layers, each with its parameters — so any ε, γ or α/β can be studied; the four composites of
//! zennit 1.0.0 (the same as 0.4.6's but for the Gamma rule) are presets ([`Composite::preset`])
//! with zennit's parameters.
//!
//! Common to all (zennit 1.0's `layer_map_base`): activations get Pass, average pooling (plain
//! and adaptive) gets Norm, residual sums get the [`SkipMode`]'s rule, and a BatchNorm that could
//! not be folded into the layer before it (one after a concatenation, as in DenseNet, or at the
//! start of a pre-activation block) gets Pass; anything else without a rule (max pooling,
//! flatten, dropout, concatenation) keeps the gradient.
//!
//! | preset | first linear layer | other convolutions | fully connected |
//! |---|---|---|---|
//! | `epsilon-plus` | — | z⁺ | ε = 10⁻⁶ |
//! | `epsilon-plus-flat` | Flat (first conv or dense layer) | z⁺ | ε = 10⁻⁶ |
//! | `epsilon-gamma-box` | z^B (first convolution) | generalized γ = 0.25 | ε = 10⁻⁶ |
//! | `epsilon-alpha2-beta1` | — | α = 2, β = 1 | ε = 10⁻⁶ |
//!
//! Parameters ([`Composite::set`]): `epsilon` (ε of the dense layers' ε rule), `gamma` (γ of a
//! γ rule), `gamma-form` (`generalized`, zennit 1.0's Gamma and the default, or `classic`,
//! zennit 0.4.6's; [`GammaForm`]), `alpha` and `beta` (of an αβ rule; β follows as α − 1 when only α is given, as
//! zennit's αβ needs α − β = 1), `low` and `high` (the z^B bounds, one value for all channels).
//!
//! "First" is the first matching node in topological order (zennit: in module registration
//! order, the same for torchvision's VGG and ResNet).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::elementwise::{LayerNormRule, Norm, Numerator, Pass, UniformSplit};
use super::rules::{LinearLrp, LinearRule};
use super::skip::{SkipMode, SkipRule, is_residual_sum};
use crate::engine::Gradient;
use crate::engine::{EngineError, Rule, Rules};
use crate::graph::{Graph, Op, ParamStore};

/// Which Gamma rule a composite's γ rules use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GammaForm {
    /// zennit 1.0.0's generalized Gamma ([`LinearRule::Gamma`]).
    Generalized,
    /// zennit 0.4.6's classic Gamma ([`LinearRule::GammaClassic`]).
    Classic,
}

impl FromStr for GammaForm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "generalized" => Ok(GammaForm::Generalized),
            "classic" => Ok(GammaForm::Classic),
            _ => Err(format!(
                "unknown gamma form '{s}'; valid: generalized, classic"
            )),
        }
    }
}

/// The rule of the first linear layer of a composite.
#[derive(Clone, Debug, PartialEq)]
pub struct FirstLayer {
    /// The rule. A [`LinearRule::ZBox`] with empty bounds takes the bounds given to
    /// [`Composite::rules`] (by default the card's pixel range).
    pub rule: LinearRule,
    /// Whether a fully connected layer can be "first" (zennit's `Linear` type) or only a
    /// convolution (`Convolution`).
    pub includes_dense: bool,
}

/// An LRP composite: the rules of linear layers, with their parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Composite {
    /// Preset name it was made from (`epsilon-plus-flat`); parameters do not change it.
    pub preset: &'static str,
    /// The first layer's rule, if it differs from the others.
    pub first: Option<FirstLayer>,
    /// The rule of every other convolution.
    pub conv: LinearRule,
    /// The rule of fully connected layers.
    pub dense: LinearRule,
}

/// zennit's ε of the dense layers in its composites.
const DENSE_EPSILON: f32 = 1e-6;
/// zennit's γ in `EpsilonGammaBox`.
const GAMMA: f32 = 0.25;

impl Composite {
    /// Names of the presets, in the order [`Composite::presets`] returns them.
    pub const PRESETS: [&'static str; 4] = [
        "epsilon-plus",
        "epsilon-plus-flat",
        "epsilon-gamma-box",
        "epsilon-alpha2-beta1",
    ];

    /// zennit's `EpsilonPlus`: z⁺ on convolutions, ε on dense layers.
    pub fn epsilon_plus() -> Self {
        Composite {
            preset: "epsilon-plus",
            first: None,
            conv: LinearRule::ZPlus,
            dense: LinearRule::Epsilon {
                epsilon: DENSE_EPSILON,
            },
        }
    }

    /// zennit's `EpsilonPlusFlat`: like `EpsilonPlus` with Flat on the first layer.
    pub fn epsilon_plus_flat() -> Self {
        Composite {
            preset: "epsilon-plus-flat",
            first: Some(FirstLayer {
                rule: LinearRule::Flat,
                includes_dense: true,
            }),
            ..Composite::epsilon_plus()
        }
    }

    /// zennit's `EpsilonGammaBox`: z^B on the first convolution, γ on the others, ε on dense
    /// layers.
    pub fn epsilon_gamma_box() -> Self {
        Composite {
            preset: "epsilon-gamma-box",
            first: Some(FirstLayer {
                rule: LinearRule::ZBox {
                    low: Vec::new(),
                    high: Vec::new(),
                },
                includes_dense: false,
            }),
            conv: LinearRule::Gamma { gamma: GAMMA },
            ..Composite::epsilon_plus()
        }
    }

    /// zennit's `EpsilonAlpha2Beta1`: α2β1 on convolutions, ε on dense layers.
    pub fn epsilon_alpha2_beta1() -> Self {
        Composite {
            preset: "epsilon-alpha2-beta1",
            conv: LinearRule::AlphaBeta {
                alpha: 2.0,
                beta: 1.0,
            },
            ..Composite::epsilon_plus()
        }
    }

    /// The four presets.
    pub fn presets() -> [Composite; 4] {
        [
            Composite::epsilon_plus(),
            Composite::epsilon_plus_flat(),
            Composite::epsilon_gamma_box(),
            Composite::epsilon_alpha2_beta1(),
        ]
    }

    /// The preset called `name` (`epsilon-plus-flat`, or with underscores).
    pub fn preset(name: &str) -> Option<Composite> {
        let name = name.replace('_', "-");
        Composite::presets().into_iter().find(|c| c.preset == name)
    }

    /// Preset name (`epsilon-plus-flat`).
    pub fn name(&self) -> &'static str {
        self.preset
    }

    /// Sets parameter `key` (see the module docs) to `value`; an error names the parameters
    /// this composite has.
    pub fn set(&mut self, key: &str, value: f32) -> Result<(), String> {
        if !value.is_finite() {
            return Err(format!("{key} must be a finite number, got {value}"));
        }
        let rules = self.rules_mut();
        let mut found = false;
        for rule in rules {
            found |= set_rule_param(rule, key, value);
        }
        if found {
            Ok(())
        } else {
            Err(format!(
                "composite {} has no parameter '{key}'; it has: {}",
                self.preset,
                self.parameters().join(", ")
            ))
        }
    }

    /// Switches every γ rule of this composite to `form`, keeping γ; an error when the
    /// composite has no γ rule.
    pub fn set_gamma_form(&mut self, form: GammaForm) -> Result<(), String> {
        let mut found = false;
        for rule in self.rules_mut() {
            let gamma = match rule {
                LinearRule::Gamma { gamma } | LinearRule::GammaClassic { gamma } => *gamma,
                _ => continue,
            };
            found = true;
            *rule = match form {
                GammaForm::Generalized => LinearRule::Gamma { gamma },
                GammaForm::Classic => LinearRule::GammaClassic { gamma },
            };
        }
        if found {
            Ok(())
        } else {
            Err(format!(
                "composite {} has no parameter 'gamma-form'; it has: {}",
                self.preset,
                self.parameters().join(", ")
            ))
        }
    }

    /// Parameter names this composite's rules take.
    pub fn parameters(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for rule in self.rules_ref() {
            for name in rule_params(rule) {
                if !names.contains(name) {
                    names.push(*name);
                }
            }
        }
        names
    }

    fn rules_ref(&self) -> Vec<&LinearRule> {
        let first = self.first.as_ref().map(|f| &f.rule);
        first.into_iter().chain([&self.conv, &self.dense]).collect()
    }

    fn rules_mut(&mut self) -> Vec<&mut LinearRule> {
        let first = self.first.as_mut().map(|f| &mut f.rule);
        first
            .into_iter()
            .chain([&mut self.conv, &mut self.dense])
            .collect()
    }

    /// The rule map of `graph` (BatchNorm already folded), with modified weights prepared per
    /// node, and a readable list of `(node, rule)` assignments.
    pub fn rules(
        &self,
        graph: &Graph,
        params: &ParamStore,
        skip: SkipMode,
        bounds: &ZBoxBounds,
    ) -> Result<(Rules, Vec<(String, String)>), EngineError> {
        let mut rules = Rules::gradient();
        let mut assigned = Vec::new();
        let mut first = self
            .first
            .clone()
            .map(|f| (with_bounds(f.rule, bounds), f.includes_dense));
        let grad: Arc<dyn Rule> = Arc::new(Gradient);
        let pass: Arc<dyn Rule> = Arc::new(Pass);
        let norm: Arc<dyn Rule> = Arc::new(Norm);
        let layer_norm: Arc<dyn Rule> = Arc::new(LayerNormRule);
        let uniform: Arc<dyn Rule> = Arc::new(UniformSplit);
        let numerator: Arc<dyn Rule> = Arc::new(Numerator);
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
                                self.conv.clone()
                            } else {
                                self.dense.clone()
                            }
                        }
                    };
                    let name = linear_rule.name();
                    let bound = LinearLrp::new(linear_rule, &node.op, params, id)
                        .map_err(|e| e.at_node(&node.name))?;
                    (Arc::new(bound), name)
                }
                Op::Relu
                | Op::Clip { .. }
                | Op::Silu
                | Op::Sigmoid
                | Op::Tanh
                | Op::Gelu
                | Op::LeakyRelu { .. }
                | Op::Elu { .. }
                | Op::PRelu { .. }
                | Op::Unary(_) => (pass.clone(), "pass".into()),
                Op::Mul if is_product_of_activations(graph, id) => {
                    (uniform.clone(), "uniform-split".into())
                }
                Op::Div => (numerator.clone(), "numerator".into()),
                Op::LayerNorm(_) => (layer_norm.clone(), "layernorm-epsilon".into()),
                Op::AvgPool2d(_)
                | Op::AdaptiveAvgPool2d { .. }
                | Op::ChannelMean
                | Op::Resize(_) => (norm.clone(), "norm".into()),
                // zennit 1.0 gives an unmerged BatchNorm Pass: relevance is not rescaled by an
                // affine map that no linear rule accounts for.
                Op::BatchNorm(_) => (pass.clone(), "pass".into()),
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
    /// A preset by name.
    fn from_str(s: &str) -> Result<Self, String> {
        Composite::preset(s).ok_or_else(|| {
            format!(
                "unknown composite '{s}'; valid: {}",
                Composite::PRESETS.join(", ")
            )
        })
    }
}

/// Whether node `id` is a product of two computed tensors neither of which is a gate (a
/// sigmoid or hard sigmoid, `Clip(0, 1)`: squeeze-excitation and hard swish keep the
/// gradient, as under zennit) — the products the uniform rule explains.
fn is_product_of_activations(graph: &Graph, id: usize) -> bool {
    let node = &graph.nodes[id];
    node.op == Op::Mul
        && node.inputs.iter().all(|&i| match &graph.nodes[i].op {
            Op::Constant(_) | Op::Sigmoid => false,
            Op::Clip { min, max } => !(*min == 0.0 && *max == 1.0),
            _ => true,
        })
}

/// The parameter names of `rule`.
fn rule_params(rule: &LinearRule) -> &'static [&'static str] {
    match rule {
        LinearRule::Epsilon { .. } => &["epsilon"],
        LinearRule::Gamma { .. } | LinearRule::GammaClassic { .. } => &["gamma", "gamma-form"],
        LinearRule::AlphaBeta { .. } => &["alpha", "beta"],
        LinearRule::ZBox { .. } => &["low", "high"],
        LinearRule::ZPlus | LinearRule::Flat | LinearRule::WSquare => &[],
    }
}

/// Sets `key` on `rule` if the rule has it; returns whether it did. Setting α alone keeps
/// α − β = 1 (β = α − 1), the constraint zennit's αβ rule is defined under.
fn set_rule_param(rule: &mut LinearRule, key: &str, value: f32) -> bool {
    match (rule, key) {
        (LinearRule::Epsilon { epsilon }, "epsilon") => *epsilon = value,
        (LinearRule::Gamma { gamma } | LinearRule::GammaClassic { gamma }, "gamma") => {
            *gamma = value
        }
        (LinearRule::AlphaBeta { alpha, beta }, "alpha") => {
            *alpha = value;
            *beta = value - 1.0;
        }
        (LinearRule::AlphaBeta { alpha, beta }, "beta") => {
            *beta = value;
            *alpha = value + 1.0;
        }
        (LinearRule::ZBox { low, .. }, "low") => *low = vec![value],
        (LinearRule::ZBox { high, .. }, "high") => *high = vec![value],
        _ => return false,
    }
    true
}

/// A z^B rule without its own bounds takes `bounds`; one given bound applies to every channel.
fn with_bounds(rule: LinearRule, bounds: &ZBoxBounds) -> LinearRule {
    match rule {
        LinearRule::ZBox { low, high } => LinearRule::ZBox {
            low: if low.is_empty() {
                bounds.low.clone()
            } else {
                broadcast(&low, bounds.low.len())
            },
            high: if high.is_empty() {
                bounds.high.clone()
            } else {
                broadcast(&high, bounds.high.len())
            },
        },
        other => other,
    }
}

/// One value per channel from one value for all.
fn broadcast(values: &[f32], channels: usize) -> Vec<f32> {
    if values.len() == 1 {
        vec![values[0]; channels.max(1)]
    } else {
        values.to_vec()
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
