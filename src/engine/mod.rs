//! Forward pass with an activation cache and one backward traversal that asks a [`Rule`] at
//! every node how to pass a signal from the node's output to its inputs. The exact derivative
//! ([`Gradient`]) is the default rule; explanation methods swap rules per node.

pub mod backward;
pub mod canonize;
pub mod forward;
pub mod gradient;
pub mod imported;
pub mod kernels;

pub use backward::{Backward, Rule, RuleCtx, RuleMap, Rules, backward};
pub use forward::{Activations, Aux, Keep, TrainState, forward, predict};
pub use gradient::Gradient;

use crate::graph::GraphError;

/// Errors raised while running a graph.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A graph or parameter problem.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Tensor shapes that do not fit the op.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An op/rule combination that is not implemented.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Any other invalid request.
    #[error("{0}")]
    Invalid(String),
    /// An error located at a node.
    #[error("at node '{node}': {source}")]
    AtNode {
        /// Node name.
        node: String,
        /// What went wrong there.
        source: Box<EngineError>,
    },
}

impl EngineError {
    /// Wraps the error with the node where it happened (once).
    pub fn at_node(self, node: &str) -> Self {
        match self {
            e @ EngineError::AtNode { .. } => e,
            e => EngineError::AtNode {
                node: node.to_string(),
                source: Box::new(e),
            },
        }
    }
}
