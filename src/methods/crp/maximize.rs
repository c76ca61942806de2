//! Relevance and activation maximisation (zennit-crp's `FeatureVisualization` with
//! `max_target="sum"`, `abs_norm=True`): over a data set, for each channel of a layer, the `k`
//! samples with the largest channel score, where a sample's score for channel `c` is
//! `Σ_positions X_c / Σ_c' |Σ_positions X_c'|` with `X` the relevance (for the sample's target)
//! or the activation at the layer, and its reference neuron is the position where `X_c` is
//! largest. The conditional heatmap of that one neuron, started from its activation, shows the
//! input region the channel reads there ([`neuron_heatmaps`]).

use burn::prelude::*;

use super::conditional::{Mask, propagate_masked};
use crate::engine::Activations;
use crate::graph::NodeId;
use crate::methods::MethodError;
use crate::methods::lrp::LrpModel;
use crate::tensor::{T4, from_vec, to_vec};

/// One reference of a channel: a sample, its score and its most relevant / active position.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reference {
    /// Index of the sample in the data set.
    pub sample: usize,
    /// Normalised channel score; written with its bit pattern, so a score read back is the
    /// same `f32` (the merge of shards compares and writes it).
    #[serde(with = "exact_f32")]
    pub score: f32,
    /// Flat position `y·w + x` in the layer's map of the largest value.
    pub neuron: usize,
}

/// An `f32` as `{"value": v, "bits": b}`: the value for readers, its bit pattern `b`
/// (`f32::to_bits`) for an exact round trip — a decimal parsed through `f64` could round to a
/// neighbouring `f32`.
mod exact_f32 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Exact {
        value: f32,
        bits: u32,
    }

    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        Exact {
            value: *v,
            bits: v.to_bits(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(f32::from_bits(Exact::deserialize(d)?.bits))
    }
}

/// The best `k` references per channel, best first.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    /// References per channel.
    pub per_channel: Vec<Vec<Reference>>,
}

impl TopK {
    /// Lists kept elsewhere (best first, at most `k` long each).
    pub fn from_lists(k: usize, per_channel: Vec<Vec<Reference>>) -> Self {
        TopK { k, per_channel }
    }

    /// Empty lists for `channels` channels.
    pub fn new(channels: usize, k: usize) -> Self {
        TopK {
            k,
            per_channel: vec![Vec::new(); channels],
        }
    }

    /// Adds a candidate; keeps the list sorted and at most `k` long.
    pub fn offer(&mut self, channel: usize, r: Reference) {
        let list = &mut self.per_channel[channel];
        let at = list.partition_point(|o| o.score >= r.score);
        if at < self.k {
            list.insert(at, r);
            list.truncate(self.k);
        }
    }

    /// Scores every channel of every row of `x` (`[N, C, h, w]`, relevance or activation) and
    /// offers them; row `i` is sample `samples[i]`.
    pub fn observe(&mut self, x: &T4, samples: &[usize]) {
        let [n, c, h, w] = x.dims();
        let values = to_vec(x);
        for (i, &sample) in samples.iter().enumerate().take(n) {
            let mut sums = vec![0.0f32; c];
            let mut argmax = vec![0usize; c];
            for ch in 0..c {
                let plane = &values[(i * c + ch) * h * w..(i * c + ch + 1) * h * w];
                sums[ch] = plane.iter().sum();
                argmax[ch] = plane
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| {
                        if v > bv { (j, v) } else { (bi, bv) }
                    })
                    .0;
            }
            let total: f32 = sums.iter().map(|v| v.abs()).sum::<f32>() + 1e-10;
            for ch in 0..c {
                self.offer(
                    ch,
                    Reference {
                        sample,
                        score: sums[ch] / total,
                        neuron: argmax[ch],
                    },
                );
            }
        }
    }
}

/// One single-neuron heatmap to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeuronRequest {
    /// Channel of the layer.
    pub channel: usize,
    /// Flat position in the channel's map.
    pub neuron: usize,
}

/// Channel-summed input heatmaps `[K, H, W]` of single neurons of `layer` for one image: the
/// pass starts at the layer from its activation, masked to one neuron per row (zennit-crp's
/// `mask_rf` with `start_layer`), `batch` rows at a time.
pub fn neuron_heatmaps(
    lrp: &LrpModel,
    acts: &Activations,
    layer: NodeId,
    requests: &[NeuronRequest],
    batch: usize,
) -> Result<Tensor<3>, MethodError> {
    let activation = acts.get(layer)?.clone();
    let [_, c, h, w] = activation.dims();
    let input = lrp.canon.graph.input();
    let mut parts = Vec::new();
    for chunk in requests.chunks(batch.max(1)) {
        let mut mask = vec![0.0f32; chunk.len() * c * h * w];
        for (r, q) in chunk.iter().enumerate() {
            if q.channel >= c || q.neuron >= h * w {
                return Err(MethodError::Invalid(format!(
                    "neuron {} of channel {} is outside the layer's [{c}, {h}, {w}] map",
                    q.neuron, q.channel
                )));
            }
            mask[(r * c + q.channel) * h * w + q.neuron] = 1.0;
        }
        let masks = [Mask {
            node: layer,
            mask: from_vec(mask, [chunk.len(), c, h, w]),
        }];
        let rel =
            propagate_masked(lrp, acts, layer, activation.clone(), &masks, &[input])?.remove(0);
        let [k, _, hh, ww] = rel.dims();
        parts.push(rel.sum_dim(1).reshape([k, hh, ww]));
    }
    if parts.is_empty() {
        return Err(MethodError::Invalid("no neurons requested".into()));
    }
    Ok(Tensor::cat(parts, 0))
}
