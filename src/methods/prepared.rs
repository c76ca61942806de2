//! A method bound to one model, ready to explain batch after batch: what zennit's
//! `Attributor(model, composite)` and pytorch-grad-cam's `BaseCAM(model, target_layers)` are.
//! Preparing does the per-model work once — LRP folds BatchNorm and derives its modified weights,
//! CAM methods resolve their layer — and checks the spec against the model, so a bad layer name
//! fails before the first image.

use std::sync::Arc;

use serde::Serialize;

use super::fit;
use super::lrp::{LrpModel, LrpOptions, StartRelevance};
use super::pass::{GradientRules, forward_all, logits};
use super::registry::{self, LayerUse};
use super::spec::MethodSpec;
use super::{Explainer, MapKind, MapStyle, MethodError, MethodOptions, cam};
use crate::engine::Activations;
use crate::graph::Model;
use crate::tensor::T4;

/// What a prepared method returns for a batch.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The maps, `[N, C, H, W]` ([`MapKind::Input`]) or `[N, 1, H, W]` ([`MapKind::Cam`]).
    pub maps: T4,
    /// What the maps live on.
    pub kind: MapKind,
    /// How they are read and drawn.
    pub style: MapStyle,
    /// The value that was explained, per row: the target's logit, or for LRP the starting
    /// relevance (logit, probability or 1).
    pub explained: Vec<f32>,
    /// The layer the method read (CAM family), by node name.
    pub layer: Option<String>,
    /// The method's parameters, as run records write them.
    pub params: PreparedParams,
}

/// How a prepared method computes its maps.
enum Engine {
    /// LRP: the canonized model with its rules bound.
    Lrp(Arc<LrpModel>),
    /// Every other method: its explainer, built with the resolved layer.
    Explainer(Box<dyn Explainer>),
}

/// A method prepared for one model (see the module docs). `Send + Sync`: threads can share one.
pub struct Prepared<'m> {
    model: &'m Model,
    spec: MethodSpec,
    layer: Option<String>,
    engine: Engine,
    /// The model's largest activation per row, for batches that fit a GPU.
    row_bytes: fit::RowBytes,
}

/// The method's parameters as recorded in run records.
#[derive(Clone, Debug, Serialize)]
pub struct PreparedParams {
    /// The spec as written.
    pub spec: String,
    /// Canonical method name.
    pub method: &'static str,
    /// The explainer's own record of its options.
    pub options: serde_json::Value,
}

impl MethodSpec {
    /// Prepares this method for `model` (see [`Prepared`]).
    pub fn prepare<'m>(&self, model: &'m Model) -> Result<Prepared<'m>, MethodError> {
        let layer = resolve_layer(self, model)?;
        let engine = if self.is_lrp() {
            let composite = self
                .options
                .composite
                .clone()
                .expect("LRP spec has a composite");
            Engine::Lrp(Arc::new(LrpModel::new(
                model,
                composite,
                &self.options.lrp,
            )?))
        } else {
            let mut options = self.options.clone();
            options.layer.clone_from(&layer);
            let rules = gradient_rules(&options, model)?;
            Engine::Explainer(registry::build(self.info, &options, rules)?)
        };
        Ok(Prepared {
            model,
            spec: self.clone(),
            layer,
            engine,
            row_bytes: fit::RowBytes::default(),
        })
    }
}

impl Prepared<'_> {
    /// What the user should know before reading the maps: today, that guided methods on a
    /// network with non-rectifier activations keep the plain gradient there (see
    /// [`super::guided`]).
    pub fn warnings(&self) -> Vec<String> {
        if self.spec.info.family != registry::Family::Guided {
            return Vec::new();
        }
        let unguided =
            super::guided::unguided_activations(&self.model.graph, self.spec.options.guided_silu);
        if unguided.is_empty() {
            return Vec::new();
        }
        let silu_hint = if unguided.iter().any(|a| a.starts_with("silu ")) {
            format!(
                "; {}(silu=guided) applies the guided rule to SiLU",
                self.spec.info.name
            )
        } else {
            String::new()
        };
        vec![format!(
            "{}: the guided rule applies to ReLUs only; the model's {} keep the plain gradient{silu_hint}",
            self.spec.label(),
            unguided.join(", ")
        )]
    }
}

/// The rule set of a gradient attributor: an LRP composite bound with a start of 1 at the
/// target, so its input relevance is the modified gradient of the logit (zennit's meaning).
fn gradient_rules(options: &MethodOptions, model: &Model) -> Result<GradientRules, MethodError> {
    let Some(composite) = options.rules.clone() else {
        return Ok(GradientRules::Plain);
    };
    let lrp = LrpOptions {
        start: StartRelevance::One,
        ..options.lrp.clone()
    };
    Ok(GradientRules::Lrp(Arc::new(LrpModel::new(
        model, composite, &lrp,
    )?)))
}

/// The layer a method reads on `model` (checked now, so a bad `layer` fails before any map):
/// found from the shapes of one forward pass of a blank input of the card's size.
fn resolve_layer(spec: &MethodSpec, model: &Model) -> Result<Option<String>, MethodError> {
    if spec.info.layer == LayerUse::None {
        return Ok(None);
    }
    let card = &model.card;
    let [h, w] = card.input_size;
    let blank = crate::tensor::from_vec(vec![0.0; card.channels * h * w], [1, card.channels, h, w]);
    let acts = forward_all(model, &blank)?;
    let asked = spec.options.layer.as_deref();
    let id = match spec.info.layer {
        LayerUse::PooledHead => cam::pooled_head_layer(model, &acts, asked)?,
        _ => Some(cam::resolve_layer(model, &acts, asked)?),
    };
    Ok(id.map(|id| model.graph.nodes[id].name.clone()))
}

impl<'m> Prepared<'m> {
    /// The spec it was prepared from.
    pub fn spec(&self) -> &MethodSpec {
        &self.spec
    }

    /// The model it explains.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The label of its outputs ([`MethodSpec::label`]).
    pub fn label(&self) -> String {
        self.spec.label()
    }

    /// What its maps live on.
    pub fn kind(&self) -> MapKind {
        self.spec.info.kind
    }

    /// How its maps are read.
    pub fn style(&self) -> MapStyle {
        self.spec.info.style
    }

    /// The layer it reads, by node name.
    pub fn layer(&self) -> Option<&str> {
        self.layer.as_deref()
    }

    /// The LRP model, for LRP methods (its rule assignment, conservation checks, CRP).
    pub fn lrp(&self) -> Option<&LrpModel> {
        match &self.engine {
            Engine::Lrp(lrp) => Some(lrp),
            Engine::Explainer(_) => None,
        }
    }

    /// Its parameters for run records.
    pub fn params(&self) -> PreparedParams {
        let options = match &self.engine {
            Engine::Explainer(e) => e.params(),
            Engine::Lrp(lrp) => serde_json::json!({
                "composite": lrp.composite.name(),
                "rules": {
                    "first": lrp.composite.first.as_ref().map(|f| f.rule.name()),
                    "conv": lrp.composite.conv.name(),
                    "dense": lrp.composite.dense.name(),
                },
                "skip": lrp.options.skip.to_string(),
                "start": lrp.options.start.to_string(),
            }),
        };
        PreparedParams {
            spec: self.label(),
            method: self.spec.info.name,
            options,
        }
    }

    /// Explains every row of `x` (`[N, C, H, W]`, preprocessed) for class `targets[i]`.
    pub fn explain(&self, x: &T4, targets: &[usize]) -> Result<Explanation, MethodError> {
        self.run(x, None, targets)
    }

    /// Like [`Prepared::explain`], reusing `acts`, a forward pass of the model on `x` the caller
    /// already ran (to read the predictions).
    pub fn explain_forward(
        &self,
        x: &T4,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<Explanation, MethodError> {
        self.run(x, Some(acts), targets)
    }

    /// The rows of `x` in sub-batches that fit the device ([`fit::in_batches_that_fit`]; one
    /// batch on the CPU), their maps and explained values concatenated in order.
    fn run(
        &self,
        x: &T4,
        acts: Option<&Activations>,
        targets: &[usize],
    ) -> Result<Explanation, MethodError> {
        let n = x.dims()[0];
        if targets.len() != n {
            return Err(MethodError::Invalid(format!(
                "{} targets for a batch of {n} inputs",
                targets.len()
            )));
        }
        let parts = fit::in_batches_that_fit(
            self.model,
            &self.row_bytes,
            x,
            self.rows_per_pass(),
            &self.label(),
            |rows, sub| {
                // The caller's forward pass serves only the batch it was run on.
                let acts = acts.filter(|_| rows.len() == n);
                self.run_rows(sub, acts, &targets[rows])
            },
        )?;
        let explained = parts.iter().flat_map(|(_, e)| e.iter().copied()).collect();
        let mut maps: Vec<T4> = parts.into_iter().map(|(maps, _)| maps).collect();
        let maps = if maps.len() == 1 {
            maps.remove(0)
        } else {
            T4::cat(maps, 0)
        };
        Ok(Explanation {
            maps,
            kind: self.kind(),
            style: self.style(),
            explained,
            layer: self.layer.clone(),
            params: self.params(),
        })
    }

    /// The rows per pass of the method's own loop over perturbed copies (`batch` of Integrated
    /// Gradients, SmoothGrad, occlusion, Score-CAM); 0 for a method that has none.
    fn rows_per_pass(&self) -> usize {
        if self.spec.info.params.contains(&"batch") {
            self.spec.options.batch
        } else {
            0
        }
    }

    /// The maps and explained values of rows `x`, with their forward pass `acts` where the
    /// caller has it.
    fn run_rows(
        &self,
        x: &T4,
        acts: Option<&Activations>,
        targets: &[usize],
    ) -> Result<(T4, Vec<f32>), MethodError> {
        match &self.engine {
            Engine::Lrp(lrp) => {
                let attribution = lrp.attribute(x, targets)?;
                Ok((attribution.input, attribution.explained))
            }
            Engine::Explainer(explainer) => {
                let own;
                let acts = match acts {
                    Some(acts) => acts,
                    None => {
                        own = forward_all(self.model, x)?;
                        &own
                    }
                };
                let maps = explainer.explain_forward(self.model, x, acts, targets)?;
                Ok((maps, target_logits(self.model, acts, targets)?))
            }
        }
    }
}

/// `logit_{targets[i]}` of each row of a forward pass.
fn target_logits(
    model: &Model,
    acts: &Activations,
    targets: &[usize],
) -> Result<Vec<f32>, MethodError> {
    let all = logits(model, acts)?;
    let rows = targets.len().max(1);
    let k = all.len() / rows;
    Ok(targets
        .iter()
        .enumerate()
        .map(|(i, &t)| all.get(i * k + t).copied().unwrap_or(f32::NAN))
        .collect())
}

/// Preparing is the expensive part, so a prepared method is shared between threads rather than
/// prepared per thread.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Prepared<'static>>();
};
