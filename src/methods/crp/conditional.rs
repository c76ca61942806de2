//! Conditional relevance: the LRP pass in stages, with the relevance at chosen layers masked to
//! chosen channels (or single neurons) on the way down (zennit-crp's `CondAttribution`).
//!
//! Each stage starts at a node with a relevance and propagates to the next masked node, where
//! the arriving relevance is multiplied by the mask; the last stage propagates to the collected
//! nodes. Starting each stage at the masked node (rather than one pass over the whole graph)
//! keeps relevance from bypassing a conditioned layer through parallel paths such as a ResNet
//! shortcut: zennit-crp's `exclude_parallel=True`, its default. Many conditions of one image run
//! as one batch: the masks carry one row per condition over the forward pass's single row.

use burn::prelude::*;

use crate::engine::Activations;
use crate::graph::NodeId;
use crate::methods::MethodError;
use crate::methods::lrp::LrpModel;
use crate::tensor::{T4, from_vec, to_vec};

/// A mask applied to the relevance at the output of `node`: `[rows, C, 1, 1]` (channels) or
/// `[rows, C, H, W]` (neurons); one row applies to every row.
pub struct Mask {
    /// The masked node.
    pub node: NodeId,
    /// The mask values.
    pub mask: T4,
}

/// Runs the staged pass: `seed` at the output of `start`, `masks` applied in order (each node
/// must come before the previous one in the graph), relevance collected at `collect` (nodes
/// below the last mask).
pub fn propagate_masked(
    lrp: &LrpModel,
    acts: &Activations,
    start: NodeId,
    seed: T4,
    masks: &[Mask],
    collect: &[NodeId],
) -> Result<Vec<T4>, MethodError> {
    let mut at = start;
    let mut relevance = seed;
    for m in masks {
        if m.node > at {
            return Err(MethodError::Invalid(format!(
                "condition on '{}' lies above '{}'; list conditions from the output down",
                lrp.canon.graph.nodes[m.node].name, lrp.canon.graph.nodes[at].name
            )));
        }
        if m.node != at {
            relevance = lrp.propagate(acts, at, relevance, &[m.node])?.remove(0);
        }
        relevance = relevance.mul(m.mask.clone());
        at = m.node;
    }
    lrp.propagate(acts, at, relevance, collect)
}

/// `[rows, C, 1, 1]` masks, row `r` one on the channels of `sets[r]`.
pub fn channel_masks(sets: &[Vec<usize>], channels: usize) -> Result<T4, MethodError> {
    let mut values = vec![0.0f32; sets.len() * channels];
    for (r, set) in sets.iter().enumerate() {
        for &c in set {
            if c >= channels {
                return Err(MethodError::Invalid(format!(
                    "channel {c} does not exist; the layer has {channels} channels"
                )));
            }
            values[r * channels + c] = 1.0;
        }
    }
    Ok(from_vec(values, [sets.len(), channels, 1, 1]))
}

/// Relevance of one image at one layer and its conditional input relevances.
pub struct ConditionalResult {
    /// Relevance at the layer for the target, unconditioned, `[1, C, h, w]`.
    pub layer_relevance: T4,
    /// Input relevance for each concept, `[K, C_in, H, W]`.
    pub input_relevance: T4,
    /// The explained output (starting relevance).
    pub explained: f32,
}

impl ConditionalResult {
    /// Channel-summed conditional heatmaps `[K, H, W]` (zennit-crp's `heatmap`).
    pub fn heatmaps(&self) -> Tensor<3> {
        let [k, _, h, w] = self.input_relevance.dims();
        self.input_relevance.clone().sum_dim(1).reshape([k, h, w])
    }
}

/// Conditional LRP of one image `x` (`[1, C, H, W]`) for class `target`, once per concept (a
/// channel set of `layer`), `batch` concepts per backward pass.
pub fn conditional_relevance(
    lrp: &LrpModel,
    x: &T4,
    target: usize,
    layer: NodeId,
    concepts: &[Vec<usize>],
    batch: usize,
) -> Result<ConditionalResult, MethodError> {
    if concepts.is_empty() {
        return Err(MethodError::Invalid("no concepts to condition on".into()));
    }
    if x.dims()[0] != 1 {
        return Err(MethodError::Invalid(
            "conditional relevance takes one image at a time".into(),
        ));
    }
    let acts = lrp.forward(x.clone())?;
    let (seed, explained) = lrp.start_relevance(&acts, &[target])?;
    let layer_relevance = lrp
        .propagate(&acts, lrp.logits_node(), seed, &[layer])?
        .remove(0);
    let channels = layer_relevance.dims()[1];
    let input = lrp.canon.graph.input();
    let mut parts = Vec::new();
    for chunk in concepts.chunks(batch.max(1)) {
        let masks = [Mask {
            node: layer,
            mask: channel_masks(chunk, channels)?,
        }];
        parts.push(
            propagate_masked(lrp, &acts, layer, layer_relevance.clone(), &masks, &[input])?
                .remove(0),
        );
    }
    let input_relevance = Tensor::cat(parts, 0);
    Ok(ConditionalResult {
        layer_relevance,
        input_relevance,
        explained: explained[0],
    })
}

/// Relevance per channel (summed over positions) of each row of a `[N, C, h, w]` layer
/// relevance; with `abs_norm`, divided by the row's `Σ_c |R_c| + 10⁻¹⁰` (zennit-crp's
/// `ChannelConcept.attribute`).
pub fn channel_relevance(relevance: &T4, abs_norm: bool) -> Vec<Vec<f32>> {
    let [n, c, h, w] = relevance.dims();
    let values = to_vec(relevance);
    (0..n)
        .map(|i| {
            let sums: Vec<f32> = (0..c)
                .map(|ch| {
                    let start = (i * c + ch) * h * w;
                    values[start..start + h * w].iter().sum()
                })
                .collect();
            if abs_norm {
                let total: f32 = sums.iter().map(|v| v.abs()).sum::<f32>() + 1e-10;
                sums.iter().map(|v| v / total).collect()
            } else {
                sums
            }
        })
        .collect()
}

/// One entry of a concept ranking.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RankedConcept {
    /// Channel index.
    pub channel: usize,
    /// Its share `R_c / Σ|R|` of the layer's relevance.
    pub relevance: f32,
    /// Its relevance `R_c` (sum over positions).
    pub raw: f32,
}

/// Channels of a layer ordered by their relevance for the prediction (largest first), top `k`.
pub fn rank_channels(layer_relevance: &T4, k: usize) -> Vec<RankedConcept> {
    let raw = channel_relevance(layer_relevance, false).remove(0);
    let total: f32 = raw.iter().map(|v| v.abs()).sum::<f32>() + 1e-10;
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| raw[b].total_cmp(&raw[a]));
    order
        .into_iter()
        .take(k)
        .map(|c| RankedConcept {
            channel: c,
            relevance: raw[c] / total,
            raw: raw[c],
        })
        .collect()
}
