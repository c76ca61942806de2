//! CAM (Zhou et al., "Learning Deep Features for Discriminative Localization", 2016): for a model
//! whose head is global average pooling followed by one linear layer, the map of class `t` is
//! `Σ_c W[t, c] · A_c` at the pooled layer, post-processed like the rest of the family.

use serde_json::json;

use super::{Planes, finish_cams, resolve_layer, weighted_sum};
use crate::engine::Activations;
use crate::graph::{Model, NodeId, Op};
use crate::methods::pass::{check_targets, forward_all};
use crate::methods::{Explainer, MapKind, MapStyle, MethodError};
use crate::tensor::{T4, to_vec};

/// Class activation mapping.
pub struct ClassCam {
    /// The pooled layer (`None`: the input of the global average pooling).
    pub layer: Option<String>,
}

impl ClassCam {
    /// CAM at `layer`.
    pub fn new(layer: Option<String>) -> Self {
        ClassCam { layer }
    }
}

/// The global-average-pooled layer and the key of the linear head's weight, if the logits are
/// `Linear(Flatten(GlobalAvgPool(layer)))` (identities and dropout allowed in between).
pub fn gap_linear_head(model: &Model, acts: &Activations) -> Option<(NodeId, String)> {
    let graph = &model.graph;
    let logits = &graph.nodes[graph.logits()];
    let Op::Linear(linear) = &logits.op else {
        return None;
    };
    let mut id = logits.inputs[0];
    loop {
        let node = &graph.nodes[id];
        match &node.op {
            Op::Flatten | Op::Identity | Op::Dropout { .. } | Op::Reshape(_) => {
                id = node.inputs[0];
            }
            Op::AdaptiveAvgPool2d { output: [1, 1] } => {
                return Some((node.inputs[0], linear.weight.clone()));
            }
            Op::AvgPool2d(_) => {
                // A fixed average pool is global only if it leaves a single position.
                let [_, _, h, w] = acts.get(id).ok()?.dims();
                return (h * w == 1).then(|| (node.inputs[0], linear.weight.clone()));
            }
            _ => return None,
        }
    }
}

impl Explainer for ClassCam {
    fn name(&self) -> &str {
        "cam"
    }
    fn kind(&self) -> MapKind {
        MapKind::Cam
    }
    fn style(&self) -> MapStyle {
        MapStyle::Unit
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
        let Some((pooled, weight_key)) = gap_linear_head(model, acts) else {
            return Err(MethodError::Invalid(
                "cam needs a model whose classifier is global average pooling followed by one \
                 linear layer (e.g. a ResNet); use grad-cam for other heads"
                    .into(),
            ));
        };
        let layer = resolve_layer(
            model,
            acts,
            self.layer
                .as_deref()
                .or(Some(model.graph.nodes[pooled].name.as_str())),
        )?;
        if layer != pooled {
            return Err(MethodError::Invalid(format!(
                "cam reads the class weights of the linear head, so its layer must be the one \
                 that is globally pooled, '{}', not '{}'",
                model.graph.nodes[pooled].name, model.graph.nodes[layer].name
            )));
        }
        let a = Planes::of(acts.get(layer)?);
        let [n, c, h, w] = a.dims;
        let weight = model.params.get(&weight_key)?;
        let classes = weight.shape[0];
        check_targets(targets, n, classes)?;
        let wv = to_vec(&weight.data);
        let weights: Vec<Vec<f32>> = targets
            .iter()
            .map(|&t| wv[t * c..(t + 1) * c].to_vec())
            .collect();
        let [_, _, oh, ow] = x.dims();
        Ok(finish_cams(weighted_sum(&a, &weights), h, w, oh, ow))
    }
    fn params(&self) -> serde_json::Value {
        json!({"layer": self.layer})
    }
}
