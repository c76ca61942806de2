//! A model prepared for LRP: BatchNorm folded, rules bound to nodes with their modified weights,
//! ready to explain any number of images. Also the building block of CRP, which runs the same
//! relevance pass in stages with channel masks.

use std::fmt;
use std::str::FromStr;

use super::composite::{Composite, ZBoxBounds};
use super::skip::SkipMode;
use crate::engine::backward::needed_values;
use crate::engine::canonize::{Canonized, canonize};
use crate::engine::forward::run_as;
use crate::engine::kernels::ConvPass;
use crate::engine::{Activations, Keep, Rules, backward};
use crate::graph::{Model, NodeId};
use crate::methods::MethodError;
use crate::tensor::{T4, from_vec, to_vec};

/// The relevance the backward pass starts from at the logits, on the target class only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartRelevance {
    /// The target's logit (zennit with `attr_output = one-hot × logits`; zennit-crp's default).
    #[default]
    Logit,
    /// The target's probability under the model's head — softmax for most models (as in the
    /// ResNet-LRP paper of Otsuki et al.), a sigmoid for multi-label and binary-logit heads.
    Probability,
    /// 1 (zennit's usual one-hot `attr_output`).
    One,
}

impl StartRelevance {
    /// Names accepted by [`StartRelevance::from_str`].
    pub const NAMES: &'static [&'static str] = &["logit", "probability", "one"];
}

impl fmt::Display for StartRelevance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartRelevance::Logit => "logit",
            StartRelevance::Probability => "probability",
            StartRelevance::One => "one",
        })
    }
}

impl FromStr for StartRelevance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "logit" => Ok(StartRelevance::Logit),
            "probability" | "prob" => Ok(StartRelevance::Probability),
            "one" => Ok(StartRelevance::One),
            _ => Err(format!(
                "unknown start relevance '{s}'; valid: {}",
                StartRelevance::NAMES.join(", ")
            )),
        }
    }
}

/// Choices shared by all LRP methods besides the composite.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LrpOptions {
    /// Treatment of residual sums.
    pub skip: SkipMode,
    /// Starting relevance at the target logit.
    pub start: StartRelevance,
    /// Input bounds of the z^B rule (`epsilon-gamma-box`); by default the range of pixels
    /// 0..=255 under the model card's normalisation.
    pub zbox: Option<ZBoxBounds>,
}

/// The result of one LRP pass over a batch.
pub struct Attribution {
    /// Relevance in input space, `[N, C, H, W]`.
    pub input: T4,
    /// The relevance each row started from (the explained output), one per image.
    pub explained: Vec<f32>,
    /// The logits, `[N, classes]` row-major.
    pub logits: Vec<f32>,
}

/// A model prepared for LRP with one composite.
pub struct LrpModel {
    /// The BatchNorm-folded graph and parameters, with aliases for the folded BatchNorm names.
    pub canon: Canonized,
    /// The composite whose rules are bound.
    pub composite: Composite,
    /// The options it was prepared with.
    pub options: LrpOptions,
    /// `(node, rule)` for every node, for records and debugging.
    pub assignment: Vec<(String, String)>,
    rules: Rules,
    logits: NodeId,
    /// How the logits become probabilities (`start=probability`).
    head: crate::graph::Head,
    /// The forward values [`LrpModel::attribute`]'s pass reads (see `needed_values`).
    needed: Vec<bool>,
}

impl LrpModel {
    /// Canonizes (BatchNorm folded into the preceding layers, affine maps before dense layers
    /// folded into them; see `engine::canonize`) and binds the composite's rules.
    pub fn new(
        model: &Model,
        composite: Composite,
        options: &LrpOptions,
    ) -> Result<Self, MethodError> {
        let canon = canonize(&model.graph, &model.params)?;
        let bounds = options
            .zbox
            .clone()
            .unwrap_or_else(|| ZBoxBounds::from_card(&model.card));
        let (rules, assignment) =
            composite.rules(&canon.graph, &canon.params, options.skip, &bounds)?;
        let logits = canon.graph.logits();
        let needed = needed_values(&canon.graph, &rules, &[logits, canon.graph.input()]);
        Ok(LrpModel {
            canon,
            composite,
            options: options.clone(),
            assignment,
            rules,
            logits,
            head: model.card.head(),
            needed,
        })
    }

    /// The bound rule map (for custom passes, e.g. timing or inspection).
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The node whose output is the logits.
    pub fn logits_node(&self) -> NodeId {
        self.logits
    }

    /// A node by name (names of folded BatchNorms give the layer they were folded into).
    pub fn find(&self, name: &str) -> Result<NodeId, MethodError> {
        Ok(self.canon.find(name)?)
    }

    /// Forward pass keeping every activation, as an explanation's forward pass
    /// ([`ConvPass::RuleForward`]: see [`LrpModel::attribute`]).
    pub fn forward(&self, x: T4) -> Result<Activations, MethodError> {
        let (graph, params) = (&self.canon.graph, &self.canon.params);
        Ok(run_as(
            ConvPass::RuleForward,
            graph,
            params,
            x,
            Keep::All,
            None,
        )?)
    }

    /// The starting relevance at the logits: for row `i`, the configured value of class
    /// `targets[i]` and zero elsewhere; also returns the values themselves.
    pub fn start_relevance(
        &self,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<(T4, Vec<f32>), MethodError> {
        let logits = acts.get(self.logits)?;
        let [n, k, h, w] = logits.dims();
        if h != 1 || w != 1 {
            return Err(MethodError::Invalid(format!(
                "the model output is [{n}, {k}, {h}, {w}], not a vector of class scores"
            )));
        }
        if targets.len() != n {
            return Err(MethodError::Invalid(format!(
                "{} targets for {n} images",
                targets.len()
            )));
        }
        if let Some(&bad) = targets.iter().find(|&&t| t >= k) {
            return Err(MethodError::Invalid(format!(
                "target class {bad} does not exist; the model has {k} classes"
            )));
        }
        let values = match self.options.start {
            StartRelevance::Logit => to_vec(logits),
            StartRelevance::Probability => self.head.probabilities_rows(&to_vec(logits), k),
            StartRelevance::One => vec![1.0; n * k],
        };
        let mut seed = vec![0.0f32; n * k];
        let mut explained = Vec::with_capacity(n);
        for (i, &t) in targets.iter().enumerate() {
            seed[i * k + t] = values[i * k + t];
            explained.push(values[i * k + t]);
        }
        Ok((
            from_vec(seed, [n, k, 1, 1]).to_device(&logits.device()),
            explained,
        ))
    }

    /// Propagates `seed` (relevance at the output of `from`, with as many rows as the forward
    /// pass or more when the forward pass has one row) down to the `collect` nodes.
    pub fn propagate(
        &self,
        acts: &Activations,
        from: NodeId,
        seed: T4,
        collect: &[NodeId],
    ) -> Result<Vec<T4>, MethodError> {
        Ok(backward(
            &self.canon.graph,
            &self.canon.params,
            acts,
            from,
            seed,
            &self.rules,
            collect,
        )?)
    }

    /// LRP of a batch: relevance in input space for class `targets[i]` of image `i`.
    /// Its forward pass keeps only the values the rules read (a convolution read only by a
    /// ReLU whose rule passes relevance through is not kept, nor written: see
    /// [`Keep::Only`]); same result as [`LrpModel::attribute_with`] on a full forward pass.
    pub fn attribute(&self, x: &T4, targets: &[usize]) -> Result<Attribution, MethodError> {
        let graph = &self.canon.graph;
        let keep = Keep::Only(&self.needed);
        let acts = run_as(
            ConvPass::RuleForward,
            graph,
            &self.canon.params,
            x.clone(),
            keep,
            None,
        )?;
        self.attribute_with(&acts, targets)
    }

    /// Like [`LrpModel::attribute`] on an existing forward pass.
    pub fn attribute_with(
        &self,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<Attribution, MethodError> {
        let (seed, explained) = self.start_relevance(acts, targets)?;
        let input = self
            .propagate(acts, self.logits, seed, &[self.canon.graph.input()])?
            .remove(0);
        Ok(Attribution {
            input,
            explained,
            logits: to_vec(acts.get(self.logits)?),
        })
    }
}

/// Sums `[N, C, H, W]` over everything but the batch: one total per row.
pub fn row_sums(t: &T4) -> Vec<f32> {
    let [n, c, h, w] = t.dims();
    to_vec(&t.clone().reshape([n, c * h * w]).sum_dim(1))
}
