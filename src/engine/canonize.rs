//! Canonizers: graph rewrites that give a model the same function in a form LRP rules can
//! handle. The one every composite needs is folding inference-mode BatchNorm into the
//! convolution or linear layer right before it (zennit's `SequentialMergeBatchNorm`), so that the
//! layer's rule sees the whole affine map `y = γ·(Wx + b − μ)/√(σ² + ε) + β` as one layer.

use std::collections::HashMap;

use super::EngineError;
use crate::graph::{Graph, GraphError, Init, Node, NodeId, Op, ParamSpec, ParamStore};

/// A graph rewritten by a canonizer, with its own parameters.
#[derive(Clone, Debug)]
pub struct Canonized {
    /// The rewritten graph.
    pub graph: Graph,
    /// Its parameters (folded weights replace the originals under the layer's keys).
    pub params: ParamStore,
    /// Names of removed nodes and the node of the new graph that now produces their value
    /// (a folded BatchNorm's name points at the layer it was folded into).
    pub aliases: HashMap<String, NodeId>,
    /// For every node of the original graph, the node of the new graph producing its value.
    pub old_to_new: Vec<NodeId>,
}

impl Canonized {
    /// Node id by name, following aliases of removed nodes.
    pub fn find(&self, name: &str) -> Result<NodeId, GraphError> {
        match self.aliases.get(name) {
            Some(&id) => Ok(id),
            None => self.graph.find(name),
        }
    }
}

/// Folds every BatchNorm whose input is a convolution or linear layer read by nothing else into
/// that layer:
///
/// `W' = W · s`, `b' = (b − μ) · s + β` with `s = γ / √(σ² + ε)` per output channel
///
/// (`b = 0` when the layer has no bias; the folded bias is then stored under `<layer>.bias`).
/// This is zennit's `MergeBatchNorm` formula. Unlike zennit, which leaves the BatchNorm in place
/// with identity statistics (so it still divides by `√(1 + ε)`), the BatchNorm node is removed:
/// the rewritten graph computes exactly the original function.
pub fn fold_batchnorm(graph: &Graph, params: &ParamStore) -> Result<Canonized, EngineError> {
    let consumers = graph.consumers();
    let mut params = params.clone();
    let mut specs: Vec<ParamSpec> = graph.param_specs.clone();
    let mut nodes: Vec<Node> = graph.nodes.clone();
    // Which original nodes disappear and which node then stands for them.
    let mut folded_into: Vec<Option<NodeId>> = vec![None; nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        let Op::BatchNorm(bn) = &node.op else {
            continue;
        };
        let layer = node.inputs[0];
        if !graph.nodes[layer].op.is_linear_layer() || consumers[layer].len() != 1 {
            continue;
        }
        let gamma = params.values(&bn.weight)?;
        let beta = params.values(&bn.bias)?;
        let mean = params.values(&bn.running_mean)?;
        let var = params.values(&bn.running_var)?;
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + bn.eps).sqrt())
            .collect();
        let layer_name = graph.nodes[layer].name.clone();
        let (weight_key, bias_key) = match &mut nodes[layer].op {
            Op::Conv2d(c) => {
                let key = c
                    .bias
                    .get_or_insert_with(|| format!("{layer_name}.bias"))
                    .clone();
                (c.weight.clone(), key)
            }
            Op::Linear(l) => {
                let key = l
                    .bias
                    .get_or_insert_with(|| format!("{layer_name}.bias"))
                    .clone();
                (l.weight.clone(), key)
            }
            _ => unreachable!("checked to be a linear layer"),
        };
        let w = params.get(&weight_key)?;
        let out = w.shape[0];
        if out != scale.len() {
            return Err(EngineError::Shape(format!(
                "BatchNorm '{}' has {} channels but '{layer_name}' has {out} outputs",
                node.name,
                scale.len()
            )));
        }
        let per_out = w.data.dims()[0] / out;
        let w_shape = w.shape.clone();
        let folded_w: Vec<f32> = w
            .values()
            .chunks(per_out)
            .zip(&scale)
            .flat_map(|(row, s)| row.iter().map(move |v| v * s))
            .collect();
        let old_bias = if params.contains(&bias_key) {
            params.values(&bias_key)?
        } else {
            vec![0.0; out]
        };
        let folded_b: Vec<f32> = (0..out)
            .map(|o| (old_bias[o] - mean[o]) * scale[o] + beta[o])
            .collect();
        params.insert_values(weight_key, folded_w, w_shape)?;
        params.insert_values(bias_key.clone(), folded_b, vec![out])?;
        if !specs.iter().any(|s| s.key == bias_key) {
            specs.push(ParamSpec {
                key: bias_key,
                shape: vec![out],
                init: Init::Zeros,
                trainable: true,
            });
        }
        for key in node.op.param_keys() {
            params.remove(key);
            specs.retain(|s| s.key != key);
        }
        folded_into[id] = Some(layer);
    }
    let (new_graph, old_to_new) = remove_nodes(graph, nodes, specs, &folded_into);
    let aliases = folded_into
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_some())
        .map(|(id, _)| (graph.nodes[id].name.clone(), old_to_new[id]))
        .collect();
    Ok(Canonized {
        graph: new_graph,
        params,
        aliases,
        old_to_new,
    })
}

/// Rebuilds `nodes` without the nodes marked in `replaced_by` (each replaced by an earlier node
/// that now produces its value); returns the new graph and the old → new id map.
fn remove_nodes(
    original: &Graph,
    nodes: Vec<Node>,
    specs: Vec<ParamSpec>,
    replaced_by: &[Option<NodeId>],
) -> (Graph, Vec<NodeId>) {
    let mut old_to_new = vec![0; nodes.len()];
    let mut kept = Vec::with_capacity(nodes.len());
    for (id, mut node) in nodes.into_iter().enumerate() {
        if let Some(target) = replaced_by[id] {
            old_to_new[id] = old_to_new[target];
            continue;
        }
        for input in &mut node.inputs {
            *input = old_to_new[*input];
        }
        old_to_new[id] = kept.len();
        kept.push(node);
    }
    let graph = Graph {
        nodes: kept,
        output: old_to_new[original.output],
        param_specs: specs,
    };
    (graph, old_to_new)
}
