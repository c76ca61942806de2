//! The pieces every method shares: the logits node, the one-hot seed of the backward pass (one
//! row per image, so a batch of images and targets is one pass), gradients at chosen nodes, and
//! batched evaluation of many perturbed inputs.

use std::borrow::Cow;

use burn::prelude::*;

use super::MethodError;
use crate::engine::{Activations, Keep, RuleMap, backward, forward, forward::run};
use crate::graph::{Graph, Model, NodeId};
use crate::tensor::{T4, from_vec, to_vec};

/// The graph with its output moved to the logits (a trailing softmax dropped), borrowed when
/// nothing changes.
pub fn logits_graph(model: &Model) -> Cow<'_, Graph> {
    let logits = model.graph.logits();
    if logits == model.graph.output {
        Cow::Borrowed(&model.graph)
    } else {
        let mut g = model.graph.clone();
        g.output = logits;
        Cow::Owned(g)
    }
}

/// Number of classes: the channel count of the logits in a forward pass.
pub fn class_count(model: &Model, acts: &Activations) -> Result<usize, MethodError> {
    Ok(acts.get(model.graph.logits())?.dims()[1])
}

/// The forward pass every backward pass starts from (every activation kept).
pub fn forward_all(model: &Model, x: &T4) -> Result<Activations, MethodError> {
    Ok(forward(&model.graph, &model.params, x.clone())?)
}

/// Logits `[N, K]` of a forward pass, on the host, row-major.
pub fn logits(model: &Model, acts: &Activations) -> Result<Vec<f32>, MethodError> {
    Ok(to_vec(acts.get(model.graph.logits())?))
}

/// Checks one target per image, each a valid class.
pub fn check_targets(targets: &[usize], rows: usize, classes: usize) -> Result<(), MethodError> {
    if targets.len() != rows {
        return Err(MethodError::Invalid(format!(
            "{} targets for a batch of {rows} inputs",
            targets.len()
        )));
    }
    if let Some(&bad) = targets.iter().find(|&&t| t >= classes) {
        return Err(MethodError::Invalid(format!(
            "target class {bad} does not exist; the model has {classes} classes"
        )));
    }
    Ok(())
}

/// The backward seed: `[N, K, 1, 1]` with a one in row `i` at class `targets[i]`, i.e. the
/// gradient of `Σᵢ logit_{targets[i]}(xᵢ)`, which separates per row because rows do not interact.
pub fn one_hot(targets: &[usize], classes: usize) -> T4 {
    let mut v = vec![0.0f32; targets.len() * classes];
    for (i, &t) in targets.iter().enumerate() {
        v[i * classes + t] = 1.0;
    }
    from_vec(v, [targets.len(), classes, 1, 1])
}

/// Signals arriving at `nodes` when the one-hot seed of `targets` is propagated back from the
/// logits through `rules`. Only the nodes between the logits and `nodes` are visited.
pub fn signals_at(
    model: &Model,
    acts: &Activations,
    targets: &[usize],
    rules: &dyn RuleMap,
    nodes: &[NodeId],
) -> Result<Vec<T4>, MethodError> {
    let from = model.graph.logits();
    let classes = acts.get(from)?.dims()[1];
    let rows = acts.get(from)?.dims()[0];
    check_targets(targets, rows, classes)?;
    let seed = one_hot(targets, classes);
    Ok(backward(
        &model.graph,
        &model.params,
        acts,
        from,
        seed,
        rules,
        nodes,
    )?)
}

/// The signal at the input for `rules` (the gradient for [`crate::engine::Rules::gradient`]).
pub fn input_signal(
    model: &Model,
    acts: &Activations,
    targets: &[usize],
    rules: &dyn RuleMap,
) -> Result<T4, MethodError> {
    let mut s = signals_at(model, acts, targets, rules, &[model.graph.input()])?;
    Ok(s.remove(0))
}

/// Target logits `logit_{targets[i]}(rows[i])` of many inputs, evaluated `batch` rows at a time
/// with only the output kept.
pub fn target_logits(
    model: &Model,
    rows: &T4,
    targets: &[usize],
    batch: usize,
) -> Result<Vec<f32>, MethodError> {
    let graph = logits_graph(model);
    let n = rows.dims()[0];
    if targets.len() != n {
        return Err(MethodError::Invalid(format!(
            "{} targets for {n} rows",
            targets.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    let batch = super::fit::rows_per_pass(batch);
    for start in (0..n).step_by(batch) {
        let len = batch.min(n - start);
        let chunk = rows.clone().narrow(0, start, len);
        let mut acts = run(&graph, &model.params, chunk, Keep::Output, None)?;
        let y = acts.values[graph.output].take().expect("output kept");
        let k = y.dims()[1];
        let values = to_vec(&y);
        for (r, &t) in targets[start..start + len].iter().enumerate() {
            if t >= k {
                return Err(MethodError::Invalid(format!(
                    "target class {t} does not exist; the model has {k} classes"
                )));
            }
            out.push(values[r * k + t]);
        }
    }
    Ok(out)
}

/// Gradients of the target logits at the input for many rows, `batch` rows per forward and
/// backward pass, handed to `sink(first_row, gradients)` chunk by chunk so that memory stays
/// bounded however many rows there are.
pub fn gradients_in_chunks(
    model: &Model,
    rows: &T4,
    targets: &[usize],
    rules: &dyn RuleMap,
    batch: usize,
    mut sink: impl FnMut(usize, T4) -> Result<(), MethodError>,
) -> Result<(), MethodError> {
    let n = rows.dims()[0];
    let batch = super::fit::rows_per_pass(batch);
    for start in (0..n).step_by(batch) {
        let len = batch.min(n - start);
        let chunk = rows.clone().narrow(0, start, len);
        let acts = forward_all(model, &chunk)?;
        let g = input_signal(model, &acts, &targets[start..start + len], rules)?;
        sink(start, g)?;
    }
    Ok(())
}

/// Where the input gradients of a gradient attributor (SmoothGrad, Integrated Gradients) come
/// from: the model's plain gradient, or an LRP rule set. The latter is what zennit's attributors
/// do when given a composite: they average or integrate the *modified* gradient, the input
/// relevance of a pass started from 1 at the target (bind the [`super::lrp::LrpModel`] with
/// [`super::lrp::StartRelevance::One`] for that meaning).
#[derive(Clone, Default)]
pub enum GradientRules {
    /// `∂ logit_t / ∂x`.
    #[default]
    Plain,
    /// The input relevance of the bound composite.
    Lrp(std::sync::Arc<super::lrp::LrpModel>),
}

impl GradientRules {
    /// Name for run records: `gradient` or the composite's preset name.
    pub fn name(&self) -> String {
        match self {
            GradientRules::Plain => "gradient".into(),
            GradientRules::Lrp(lrp) => lrp.composite.name().into(),
        }
    }

    /// Like [`gradients_in_chunks`] with the plain gradient, or with this rule set.
    pub fn in_chunks(
        &self,
        model: &Model,
        rows: &T4,
        targets: &[usize],
        batch: usize,
        mut sink: impl FnMut(usize, T4) -> Result<(), MethodError>,
    ) -> Result<(), MethodError> {
        let GradientRules::Lrp(lrp) = self else {
            return gradients_in_chunks(
                model,
                rows,
                targets,
                &crate::engine::Rules::gradient(),
                batch,
                sink,
            );
        };
        let n = rows.dims()[0];
        let batch = super::fit::rows_per_pass(batch);
        for start in (0..n).step_by(batch) {
            let len = batch.min(n - start);
            let chunk = rows.clone().narrow(0, start, len);
            sink(
                start,
                lrp.attribute(&chunk, &targets[start..start + len])?.input,
            )?;
        }
        Ok(())
    }
}

/// Repeats each image of `x` `times` times in a row (`[x₀, x₀, …, x₁, x₁, …]`).
pub fn repeat_rows(x: &T4, times: usize) -> T4 {
    let [n, c, h, w] = x.dims();
    x.clone()
        .reshape([n, 1, c * h * w])
        .expand([n, times, c * h * w])
        .reshape([n * times, c, h, w])
}

/// The sum of each group of `group` consecutive rows, `[n·group, C, H, W] → [n, C, H, W]`.
pub fn sum_row_groups(x: T4, group: usize) -> T4 {
    let [m, c, h, w] = x.dims();
    x.reshape([m / group, group, c * h * w])
        .sum_dim(1)
        .reshape([m / group, c, h, w])
}

/// `[N, C, H, W]` with every row scaled by its own factor.
pub fn scale_rows(x: T4, factors: &[f32]) -> T4 {
    let n = factors.len();
    x.mul(from_vec(factors.to_vec(), [n, 1, 1, 1]))
}

/// Reads row `i` of a batch as host values.
pub fn row(x: &T4, i: usize) -> Vec<f32> {
    to_vec(&x.clone().narrow(0, i, 1))
}

/// Builds a batch from host rows of equal shape `[C, H, W]`.
pub fn stack_rows(rows: Vec<Vec<f32>>, chw: [usize; 3]) -> T4 {
    let n = rows.len();
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    Tensor::from_data(
        burn::tensor::TensorData::new(flat, [n, chw[0], chw[1], chw[2]]),
        &crate::tensor::device(),
    )
}
