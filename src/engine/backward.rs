//! One backward traversal for every method: signals flow from a start node towards the input in
//! reverse topological order; at each node a [`Rule`] maps the signal at its output to signals
//! at its inputs; signals arriving at a node from several consumers are summed.
//!
//! Only nodes that lie between the start node and a collected node are visited, so a Grad-CAM
//! pass stops at its target layer and never touches the layers below it.

use std::sync::Arc;

use super::EngineError;
use super::forward::Activations;
use super::gradient::Gradient;
use crate::graph::{Graph, Node, NodeId, Op, ParamStore};
use crate::tensor::T4;

/// What a rule can see of the node it handles.
pub struct RuleCtx<'a> {
    /// The graph.
    pub graph: &'a Graph,
    /// Its parameters.
    pub params: &'a ParamStore,
    /// The cached forward pass.
    pub acts: &'a Activations,
    /// The node being handled.
    pub id: NodeId,
    /// Which inputs need a signal (others may be returned as `None` to save work).
    pub wanted: Vec<bool>,
}

impl RuleCtx<'_> {
    /// The node.
    pub fn node(&self) -> &Node {
        &self.graph.nodes[self.id]
    }
    /// Its op.
    pub fn op(&self) -> &Op {
        &self.graph.nodes[self.id].op
    }
    /// Forward value of input `i`.
    pub fn input(&self, i: usize) -> Result<&T4, EngineError> {
        self.acts.get(self.graph.nodes[self.id].inputs[i])
    }
    /// Forward value of the node's output.
    pub fn output(&self) -> Result<&T4, EngineError> {
        self.acts.get(self.id)
    }
}

/// How a signal crosses one node: given the signal at the node's output, the signal at each of
/// its inputs (`None` for inputs that get nothing).
pub trait Rule: Send + Sync {
    /// Maps the output signal to input signals.
    fn backward(&self, ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError>;

    /// Whether [`Rule::backward`] reads the forward value of the node's own output
    /// ([`RuleCtx::output`], its shape included). A forward pass run for a rule map may leave
    /// out the values none of its rules reads ([`needed_values`]); the default says yes.
    fn reads_output(&self) -> bool {
        true
    }

    /// Whether it reads the forward values of the node's inputs ([`RuleCtx::input`]); the
    /// default says yes.
    fn reads_inputs(&self) -> bool {
        true
    }
}

/// Which node outputs a backward pass with `rules` reads: each node's output where its rule
/// reads it, each node's inputs where its rule reads them, and the nodes in `also` (the pass's
/// start, the nodes it collects). The rest need not be kept by the forward pass
/// ([`super::forward::Keep::Only`]).
pub fn needed_values(graph: &Graph, rules: &dyn RuleMap, also: &[NodeId]) -> Vec<bool> {
    let mut needed = vec![false; graph.nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        let rule = rules.rule(graph, id);
        needed[id] |= rule.reads_output();
        if rule.reads_inputs() {
            node.inputs.iter().for_each(|&i| needed[i] = true);
        }
    }
    also.iter().for_each(|&i| needed[i] = true);
    needed
}

/// Chooses the rule for each node.
pub trait RuleMap: Sync {
    /// The rule for node `id`.
    fn rule(&self, graph: &Graph, id: NodeId) -> &dyn Rule;
}

/// A rule per node with the exact gradient as the default.
#[derive(Clone, Default)]
pub struct Rules {
    per_node: Vec<Option<Arc<dyn Rule>>>,
}

static GRADIENT: Gradient = Gradient;

impl Rules {
    /// Gradient everywhere.
    pub fn gradient() -> Self {
        Rules::default()
    }

    /// Sets the rule of one node.
    pub fn set(&mut self, id: NodeId, rule: Arc<dyn Rule>) {
        if self.per_node.len() <= id {
            self.per_node.resize(id + 1, None);
        }
        self.per_node[id] = Some(rule);
    }

    /// Sets `rule` on every node for which `pick` is true.
    pub fn set_where(
        &mut self,
        graph: &Graph,
        rule: Arc<dyn Rule>,
        pick: impl Fn(NodeId, &Node) -> bool,
    ) {
        for (id, node) in graph.nodes.iter().enumerate() {
            if pick(id, node) {
                self.set(id, rule.clone());
            }
        }
    }
}

impl RuleMap for Rules {
    fn rule(&self, _graph: &Graph, id: NodeId) -> &dyn Rule {
        match self.per_node.get(id) {
            Some(Some(r)) => r.as_ref(),
            _ => &GRADIENT,
        }
    }
}

/// A prepared backward pass over one forward pass.
pub struct Backward<'a> {
    /// The graph.
    pub graph: &'a Graph,
    /// Its parameters.
    pub params: &'a ParamStore,
    /// The cached forward pass.
    pub acts: &'a Activations,
}

impl Backward<'_> {
    /// Propagates `seed` (shaped like the output of `from`) back through `rules` and returns the
    /// signal that arrives at each node in `collect`, in order (zeros where nothing arrives).
    pub fn run(
        &self,
        from: NodeId,
        seed: T4,
        rules: &dyn RuleMap,
        collect: &[NodeId],
    ) -> Result<Vec<T4>, EngineError> {
        let graph = self.graph;
        let n = graph.nodes.len();
        // A node is worth a signal only if a collected node is among its ancestors (or itself).
        let mut leads_to_collect = vec![false; n];
        for (id, node) in graph.nodes.iter().enumerate() {
            leads_to_collect[id] =
                collect.contains(&id) || node.inputs.iter().any(|&i| leads_to_collect[i]);
        }
        let mut signals: Vec<Option<T4>> = vec![None; n];
        signals[from] = Some(seed);
        for id in (0..=from).rev() {
            let Some(signal) = signals[id].take() else {
                continue;
            };
            if collect.contains(&id) {
                signals[id] = Some(signal.clone());
            }
            let node = &graph.nodes[id];
            let wanted: Vec<bool> = node.inputs.iter().map(|&i| leads_to_collect[i]).collect();
            if !wanted.iter().any(|&w| w) {
                continue;
            }
            let ctx = RuleCtx {
                graph,
                params: self.params,
                acts: self.acts,
                id,
                wanted: wanted.clone(),
            };
            let outs = rules
                .rule(graph, id)
                .backward(&ctx, signal)
                .map_err(|e| e.at_node(&node.name))?;
            for ((&input, out), want) in node.inputs.iter().zip(outs).zip(wanted) {
                let Some(out) = out else { continue };
                if !want {
                    continue;
                }
                signals[input] = Some(match signals[input].take() {
                    Some(acc) => acc.add(out),
                    None => out,
                });
            }
        }
        collect
            .iter()
            .map(|&c| match signals[c].take() {
                Some(s) => Ok(s),
                None => Ok(self.acts.get(c)?.zeros_like()),
            })
            .collect()
    }
}

/// Convenience: one backward pass from `from` to the collected nodes.
pub fn backward(
    graph: &Graph,
    params: &ParamStore,
    acts: &Activations,
    from: NodeId,
    seed: T4,
    rules: &dyn RuleMap,
    collect: &[NodeId],
) -> Result<Vec<T4>, EngineError> {
    Backward {
        graph,
        params,
        acts,
    }
    .run(from, seed, rules, collect)
}
