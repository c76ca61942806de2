//! Attribution graphs (zennit-crp's `AttributionGraph`): a concept `(layer, channel)` decomposed
//! into the concepts of the layers that feed it. The relevance of the concept (for a target
//! class, or started from its activation) is propagated to the nearest concept layers below
//! (convolutions and dense layers, reached through anything else); there the `w₁` channels with
//! the largest normalised relevance (`R_c / Σ|R|`) become child nodes; each child is decomposed
//! in turn with `w₂` children, and so on.
//!
//! A child is conditioned on its whole chain of ancestors (zennit-crp conditions on the root and
//! the child, which is the same for chains of layers), and relevance is not allowed to bypass a
//! conditioned layer through a parallel path (zennit-crp's graph uses `exclude_parallel=False`
//! here; the two agree on networks without skip connections).

use std::collections::BTreeMap;

use serde::Serialize;

use super::conditional::{channel_masks, channel_relevance};
use crate::graph::{Graph, NodeId, Op};
use crate::methods::MethodError;
use crate::methods::lrp::LrpModel;
use crate::tensor::T4;

/// A concept in the graph.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ConceptNode {
    /// Layer name.
    pub layer: String,
    /// Channel.
    pub channel: usize,
}

/// A decomposition edge: `child` carries `relevance` (normalised over its layer) of `parent`.
#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    /// The decomposed concept.
    pub parent: ConceptNode,
    /// A lower-level concept.
    pub child: ConceptNode,
    /// `R_child / Σ_c |R_c|` at the child's layer, conditioned on the parent's chain.
    pub relevance: f32,
}

/// The attribution graph of one concept for one image.
#[derive(Clone, Debug, Serialize)]
pub struct AttributionGraph {
    /// The class explained, or `None` when started from the concept's activation.
    pub target: Option<usize>,
    /// All concepts in the graph, root first.
    pub nodes: Vec<ConceptNode>,
    /// Parent → child edges.
    pub edges: Vec<Edge>,
}

/// Whether a node is a concept layer (convolution or dense layer).
pub fn is_concept_layer(op: &Op) -> bool {
    op.is_linear_layer()
}

/// The nearest concept layers feeding `node`, reached through non-layer nodes.
pub fn input_layers(graph: &Graph, node: NodeId) -> Vec<NodeId> {
    let mut found = Vec::new();
    let mut stack: Vec<NodeId> = graph.nodes[node].inputs.clone();
    let mut seen = vec![false; graph.nodes.len()];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if is_concept_layer(&graph.nodes[n].op) {
            found.push(n);
        } else {
            stack.extend(graph.nodes[n].inputs.iter().copied());
        }
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
    found
}

/// Decomposes concept `channel` of `layer` for image `x` (`[1, C, H, W]`): for class `target`
/// (relevance from the logits), or from the concept's own activation when `None`. `widths[i]` is
/// the number of children per node at depth `i + 1`.
pub fn attribution_graph(
    lrp: &LrpModel,
    x: &T4,
    target: Option<usize>,
    layer: &str,
    channel: usize,
    widths: &[usize],
) -> Result<AttributionGraph, MethodError> {
    let root = lrp.find(layer)?;
    let graph = &lrp.canon.graph;
    let acts = lrp.forward(x.clone())?;
    let at_root = match target {
        Some(t) => {
            let (seed, _) = lrp.start_relevance(&acts, &[t])?;
            lrp.propagate(&acts, lrp.logits_node(), seed, &[root])?
                .remove(0)
        }
        None => acts.get(root)?.clone(),
    };
    let channels = at_root.dims()[1];
    let root_node = ConceptNode {
        layer: graph.nodes[root].name.clone(),
        channel,
    };
    let mut nodes = vec![root_node.clone()];
    let mut edges = Vec::new();
    // Frontier: (node, concept, relevance at the node's output already masked to the concept).
    let mut frontier: Vec<(NodeId, ConceptNode, T4)> = vec![(
        root,
        root_node,
        at_root.mul(channel_masks(&[vec![channel]], channels)?),
    )];
    for &width in widths {
        let mut next = Vec::new();
        // Concepts at the same layer share one batched pass.
        let mut groups: BTreeMap<NodeId, Vec<(ConceptNode, T4)>> = BTreeMap::new();
        for (n, concept, rel) in frontier {
            groups.entry(n).or_default().push((concept, rel));
        }
        for (n, items) in groups.into_iter().rev() {
            let below = input_layers(graph, n);
            if below.is_empty() {
                continue;
            }
            let seed = T4::cat(items.iter().map(|(_, r)| r.clone()).collect(), 0);
            let rel_below = lrp.propagate(&acts, n, seed, &below)?;
            for (layer_id, rel) in below.iter().zip(rel_below) {
                let scores = channel_relevance(&rel, true);
                let c_below = rel.dims()[1];
                for (row, (parent, _)) in items.iter().enumerate() {
                    let s = &scores[row];
                    let mut order: Vec<usize> = (0..s.len()).collect();
                    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
                    for &c in order.iter().take(width) {
                        let child = ConceptNode {
                            layer: graph.nodes[*layer_id].name.clone(),
                            channel: c,
                        };
                        edges.push(Edge {
                            parent: parent.clone(),
                            child: child.clone(),
                            relevance: s[c],
                        });
                        if !nodes.contains(&child) {
                            nodes.push(child.clone());
                        }
                        let masked = rel
                            .clone()
                            .narrow(0, row, 1)
                            .mul(channel_masks(&[vec![c]], c_below)?);
                        next.push((*layer_id, child, masked));
                    }
                }
            }
        }
        frontier = next;
    }
    Ok(AttributionGraph {
        target,
        nodes,
        edges,
    })
}
