//! Canonizers: graph rewrites that give a model the same function in a form LRP rules can
//! handle. The one every composite needs is folding inference-mode BatchNorm into the
//! convolution or linear layer right before it (zennit's `SequentialMergeBatchNorm`), so that the
//! layer's rule sees the whole affine map `y = γ·(Wx + b − μ)/√(σ² + ε) + β` as one layer
//! ([`fold_batchnorm`]). [`fold_affine_into_next_dense`] handles the other order, a per-feature
//! affine map (BatchNorm, or its ONNX export as `Mul` + `Add` by constants) between an activation
//! and a fully connected layer; [`canonize`] applies both.

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

/// Both canonizers: BatchNorm into the preceding layer, then remaining per-feature affine maps
/// into the following dense layer.
pub fn canonize(graph: &Graph, params: &ParamStore) -> Result<Canonized, EngineError> {
    let first = fold_batchnorm(graph, params)?;
    let second = fold_affine_into_next_dense(&first.graph, &first.params)?;
    let old_to_new = first
        .old_to_new
        .iter()
        .map(|&mid| second.old_to_new[mid])
        .collect();
    let mut aliases: HashMap<String, NodeId> = first
        .aliases
        .into_iter()
        .map(|(name, mid)| (name, second.old_to_new[mid]))
        .collect();
    aliases.extend(second.aliases);
    Ok(Canonized {
        graph: second.graph,
        params: second.params,
        aliases,
        old_to_new,
    })
}

/// The per-feature affine map `x·s + t` feeding a dense layer, as found in a graph.
struct Affine {
    /// The map's input.
    x: NodeId,
    /// Nodes that disappear when it is folded (the map and its constant operands).
    nodes: Vec<NodeId>,
    /// Scale per feature (or one for all).
    scale: Vec<f32>,
    /// Shift per feature (or one for all).
    shift: Vec<f32>,
    /// Parameter keys that are no longer needed.
    keys: Vec<String>,
}

/// Values of a constant node if it is `[1, F, 1, 1]`-broadcastable per feature (or a scalar).
fn feature_constant(graph: &Graph, params: &ParamStore, id: NodeId) -> Option<(Vec<f32>, String)> {
    let Op::Constant(key) = &graph.nodes[id].op else {
        return None;
    };
    let p = params.get(key).ok()?;
    let per_feature = p.shape.len() == 4 && p.shape[0] == 1 && p.shape[2] == 1 && p.shape[3] == 1;
    (per_feature || p.shape.iter().product::<usize>() == 1).then(|| (p.values(), key.clone()))
}

/// Recognises `Mul(x, s)` (either operand order) with a constant `s`.
fn scale_of(
    graph: &Graph,
    params: &ParamStore,
    id: NodeId,
) -> Option<(NodeId, Vec<f32>, NodeId, String)> {
    let node = &graph.nodes[id];
    if node.op != Op::Mul {
        return None;
    }
    let (a, b) = (node.inputs[0], node.inputs[1]);
    if let Some((s, key)) = feature_constant(graph, params, b) {
        return Some((a, s, b, key));
    }
    feature_constant(graph, params, a).map(|(s, key)| (b, s, a, key))
}

/// The affine map read by dense node `dense`, if its parts are read by nothing else.
fn affine_before(
    graph: &Graph,
    params: &ParamStore,
    consumers: &[Vec<NodeId>],
    dense: NodeId,
) -> Result<Option<Affine>, EngineError> {
    let only = |id: NodeId, reader: NodeId| consumers[id] == [reader];
    let a = graph.nodes[dense].inputs[0];
    if !only(a, dense) {
        return Ok(None);
    }
    let node = &graph.nodes[a];
    let found = match &node.op {
        Op::BatchNorm(bn) => {
            let (scale, shift) = crate::engine::forward::batchnorm_affine(bn, params)?;
            Some(Affine {
                x: node.inputs[0],
                nodes: vec![a],
                scale: crate::tensor::to_vec(&scale),
                shift: crate::tensor::to_vec(&shift),
                keys: node.op.param_keys().iter().map(|k| k.to_string()).collect(),
            })
        }
        Op::Mul => scale_of(graph, params, a).map(|(x, scale, c, key)| Affine {
            x,
            nodes: vec![a, c],
            scale,
            shift: vec![0.0],
            keys: vec![key],
        }),
        Op::Add => {
            let (p, q) = (node.inputs[0], node.inputs[1]);
            let (m, t) = match (
                feature_constant(graph, params, q),
                feature_constant(graph, params, p),
            ) {
                (Some(t), _) => (p, Some((t, q))),
                (None, Some(t)) => (q, Some((t, p))),
                _ => (p, None),
            };
            match (t, only(m, a)) {
                (Some(((shift, tkey), tid)), true) => {
                    scale_of(graph, params, m).map(|(x, scale, c, skey)| Affine {
                        x,
                        nodes: vec![a, m, c, tid],
                        scale,
                        shift,
                        keys: vec![skey, tkey],
                    })
                }
                _ => None,
            }
        }
        _ => None,
    };
    // The map's input must not itself be a constant, and constants must be read only here.
    Ok(found.filter(|f| {
        !matches!(graph.nodes[f.x].op, Op::Constant(_))
            && f.nodes.iter().skip(1).all(|&n| consumers[n].len() == 1)
    }))
}

/// Folds a per-feature affine map `y = x·s + t` that feeds a fully connected layer
/// `z = W y + b` into it: `W' = W·diag(s)`, `b' = b + W t`. The map is a BatchNorm left over by
/// [`fold_batchnorm`] (one that follows an activation) or its ONNX export, `Mul` and `Add` by
/// per-feature constants (Keras classifiers: Dense → ReLU → BatchNorm → Dense).
///
/// Not a zennit canonizer: zennit leaves such a BatchNorm to the gradient, which hands the
/// relevance of its output, shift included, back to its input — so units the ReLU switched off
/// (input 0, output `t`) still receive relevance. Folded, a switched-off unit contributes
/// nothing to `z`, so the dense layer's rule gives it none. Torchvision models have no such
/// maps, so zennit parity there is unaffected. Convolutions are left alone: zero padding makes
/// the shift of a map before a convolution position-dependent.
pub fn fold_affine_into_next_dense(
    graph: &Graph,
    params: &ParamStore,
) -> Result<Canonized, EngineError> {
    let consumers = graph.consumers();
    let mut params = params.clone();
    let mut specs = graph.param_specs.clone();
    let mut nodes = graph.nodes.clone();
    let mut replaced_by: Vec<Option<NodeId>> = vec![None; nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        let Op::Linear(l) = &node.op else { continue };
        let Some(affine) = affine_before(graph, &params, &consumers, id)? else {
            continue;
        };
        let w = params.get(&l.weight)?;
        let (out, features) = (w.shape[0], w.shape[1]);
        let fits = |v: &[f32]| v.len() == 1 || v.len() == features;
        if !fits(&affine.scale) || !fits(&affine.shift) {
            continue;
        }
        let at = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        let w_values = w.values();
        let w_shape = w.shape.clone();
        let mut bias = match &l.bias {
            Some(k) => params.values(k)?,
            None => vec![0.0; out],
        };
        let mut folded = w_values.clone();
        for o in 0..out {
            let mut shift_sum = 0.0f64;
            for i in 0..features {
                let wv = w_values[o * features + i];
                folded[o * features + i] = wv * at(&affine.scale, i);
                shift_sum += wv as f64 * at(&affine.shift, i) as f64;
            }
            bias[o] += shift_sum as f32;
        }
        let bias_key = l
            .bias
            .clone()
            .unwrap_or_else(|| format!("{}.bias", node.name));
        params.insert_values(l.weight.clone(), folded, w_shape)?;
        params.insert_values(bias_key.clone(), bias, vec![out])?;
        if !specs.iter().any(|s| s.key == bias_key) {
            specs.push(ParamSpec {
                key: bias_key.clone(),
                shape: vec![out],
                init: Init::Zeros,
                trainable: true,
            });
        }
        if let Op::Linear(l) = &mut nodes[id].op {
            l.bias = Some(bias_key);
        }
        for key in &affine.keys {
            params.remove(key);
            specs.retain(|s| &s.key != key);
        }
        for &n in &affine.nodes {
            replaced_by[n] = Some(affine.x);
        }
    }
    let (new_graph, old_to_new) = remove_nodes(graph, nodes, specs, &replaced_by);
    Ok(Canonized {
        graph: new_graph,
        params,
        aliases: HashMap::new(),
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
