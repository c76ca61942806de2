//! The model IR: a list of nodes in topological order, each an [`Op`] with inputs, plus the
//! parameters it reads. Built by the [`zoo`] or by importers; run by `engine`.

pub mod builder;
pub mod card;
pub mod head;
pub mod import;
pub mod init;
pub mod model;
pub mod op;
pub mod params;
pub mod zoo;

pub use builder::GraphBuilder;
pub use card::{ModelCard, Normalization};
pub use head::Head;
pub use model::{LoadOptions, Model, ParameterCounts};
pub use op::{
    BatchNorm, Conv2d, CoordinateMode, LayerNorm, Linear, NearestRounding, Op, PadMode, Pool2d,
    Resize, ResizeMode, Unary,
};
pub use params::{Param, ParamStore};

use serde::{Deserialize, Serialize};

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// Errors about graphs and their parameters.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A parameter key the graph needs is not in the store.
    #[error("missing parameter '{0}'")]
    MissingParam(String),
    /// A node name that does not exist; lists the valid ones.
    #[error("no node named '{name}'; valid names: {valid}")]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// An architecture name the zoo does not know.
    #[error("unknown architecture '{name}'; built-in: {valid}")]
    UnknownArch {
        /// The name asked for.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// Anything structurally wrong.
    #[error("{0}")]
    Invalid(String),
}

/// How a parameter is initialised when a model is trained from scratch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Init {
    /// All zeros (biases, BN β and running mean).
    Zeros,
    /// All ones (BN γ and running variance).
    Ones,
    /// He normal with fan-out, `N(0, 2 / (C_out·kH·kW))` (torchvision's ResNet/VGG convs).
    KaimingNormalFanOut,
    /// He normal with fan-in, `N(0, 2 / (C_in·kH·kW))` (torchvision's DenseNet convs,
    /// `kaiming_normal_` with its defaults).
    KaimingNormalFanIn,
    /// PyTorch's default for conv/linear weights: `U(±1/√fan_in)` after kaiming-uniform with a=√5.
    TorchDefaultWeight,
    /// PyTorch's default for biases: `U(±1/√fan_in)` where `fan_in` is given.
    TorchDefaultBias {
        /// Fan-in of the layer owning the bias.
        fan_in: usize,
    },
    /// `N(0, std²)`.
    Normal {
        /// Standard deviation.
        std: f32,
    },
    /// `U(−a, a)`.
    Uniform {
        /// Half-width.
        a: f32,
    },
}

/// A parameter the graph expects: its key, shape and initialisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// State-dict key.
    pub key: String,
    /// Expected shape.
    pub shape: Vec<usize>,
    /// How to initialise it for training from scratch.
    pub init: Init,
    /// False for buffers (BN running statistics) that the optimiser never updates.
    pub trainable: bool,
}

/// One node: a name (torchvision's module path where there is one), an op and its inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique name, e.g. `features.28` or `layer4.1`.
    pub name: String,
    /// What the node computes.
    pub op: Op,
    /// Producers of the operands, all earlier in [`Graph::nodes`].
    pub inputs: Vec<NodeId>,
}

/// A model graph in topological order with one input (node 0) and one output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Graph {
    /// Nodes, each after all of its inputs.
    pub nodes: Vec<Node>,
    /// The node whose value is the model output.
    pub output: NodeId,
    /// Parameters the graph reads, with shapes and initialisers.
    pub param_specs: Vec<ParamSpec>,
}

impl Graph {
    /// The input node (always node 0).
    pub fn input(&self) -> NodeId {
        0
    }

    /// The node producing the logits: the output, or the input of a trailing softmax.
    pub fn logits(&self) -> NodeId {
        let out = &self.nodes[self.output];
        match out.op {
            Op::Softmax => out.inputs[0],
            _ => self.output,
        }
    }

    /// Node id by name.
    pub fn find(&self, name: &str) -> Result<NodeId, GraphError> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| GraphError::UnknownNode {
                name: name.to_string(),
                valid: self
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// For each node, the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (id, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                out[i].push(id);
            }
        }
        out
    }

    /// Checks topological order, a single input at node 0, operand counts and that every
    /// parameter key has a spec.
    pub fn validate(&self) -> Result<(), GraphError> {
        if self.nodes.first().map(|n| &n.op) != Some(&Op::Input) {
            return Err(GraphError::Invalid("node 0 must be the input".into()));
        }
        for (id, node) in self.nodes.iter().enumerate() {
            if id > 0 && node.op == Op::Input {
                return Err(GraphError::Invalid(format!(
                    "second input node '{}'",
                    node.name
                )));
            }
            if let Some(&bad) = node.inputs.iter().find(|&&i| i >= id) {
                return Err(GraphError::Invalid(format!(
                    "node '{}' reads node {bad}, which does not come before it",
                    node.name
                )));
            }
            let arity_ok = match node.op {
                Op::Input | Op::Constant(_) => node.inputs.is_empty(),
                Op::Add | Op::Mul | Op::Div => node.inputs.len() == 2,
                Op::Concat => !node.inputs.is_empty(),
                _ => node.inputs.len() == 1,
            };
            if !arity_ok {
                return Err(GraphError::Invalid(format!(
                    "node '{}' ({}) has {} inputs",
                    node.name,
                    node.op.kind(),
                    node.inputs.len()
                )));
            }
            for key in node.op.param_keys() {
                if !self.param_specs.iter().any(|s| s.key == key) {
                    return Err(GraphError::Invalid(format!(
                        "node '{}' reads undeclared parameter '{key}'",
                        node.name
                    )));
                }
            }
        }
        if self.output >= self.nodes.len() {
            return Err(GraphError::Invalid("output node out of range".into()));
        }
        Ok(())
    }

    /// The spec of a parameter key.
    pub fn spec(&self, key: &str) -> Option<&ParamSpec> {
        self.param_specs.iter().find(|s| s.key == key)
    }

    /// Checks that `params` holds every declared parameter with the declared shape. The error
    /// names the first mismatching key and both shapes.
    pub fn check_params(&self, params: &ParamStore) -> Result<(), GraphError> {
        for spec in &self.param_specs {
            let p = params.get(&spec.key)?;
            if p.shape != spec.shape {
                return Err(GraphError::Invalid(format!(
                    "parameter '{}' has shape {:?}, the architecture expects {:?}",
                    spec.key, p.shape, spec.shape
                )));
            }
        }
        Ok(())
    }

    /// The node class-activation maps read by default: the output of the last convolutional
    /// block, i.e. the last node that still has a spatial grid before the head pools or
    /// flattens it. Found structurally: walk back from the logits along first inputs to the
    /// head's `Flatten` (or `Reshape`), step over the pooling nodes before it; the node reached
    /// is the answer. Graphs without such a head fall back to the last convolution, then the
    /// output.
    ///
    /// For the zoo this gives:
    ///
    /// | architecture | node | torchvision / pytorch-grad-cam equivalent |
    /// |---|---|---|
    /// | `vgg11`, `vgg16`, `vgg16_bn` | last ReLU, `features.19` / `features.29` / `features.42` | the last conv block's ReLU (the original Grad-CAM choice); `features[-1]`, the max pool after it, halves the resolution and is 1×1 on inputs below 64 px |
    /// | `resnet18/34`, `resnet50` | `layer4.1`, `layer4.2` | `model.layer4[-1]` |
    /// | `efficientnet_b*` | `features.8` | `model.features[-1]` |
    /// | `densenet121` | `features.relu5` (ReLU after `features.norm5`) | `model.features[-1]` is `norm5` before the ReLU the classifier sees |
    /// | `mobilenet_v2` | `features.18` | `model.features[-1]` |
    /// | `small_cnn` | `features.14` (last ReLU) | — |
    pub fn default_cam_layer(&self) -> NodeId {
        let mut id = self.logits();
        // The head's flattening, reached backwards along first inputs.
        while !matches!(self.nodes[id].op, Op::Flatten | Op::Reshape(_)) {
            match self.nodes[id].inputs.first() {
                Some(&i) => id = i,
                None => {
                    return self
                        .nodes
                        .iter()
                        .rposition(|n| matches!(n.op, Op::Conv2d(_)))
                        .unwrap_or(self.output);
                }
            }
        }
        id = self.nodes[id].inputs[0];
        while matches!(
            self.nodes[id].op,
            Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::AdaptiveAvgPool2d { .. }
        ) {
            id = self.nodes[id].inputs[0];
        }
        id
    }

    /// Names of nodes whose output is spatial (convolution-like layers and the ops after them),
    /// in graph order; used to list valid layers for CAMs and concepts.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }
}
