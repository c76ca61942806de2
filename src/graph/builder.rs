//! A small builder that writes graphs the way torchvision's modules read: one call per layer,
//! named by the module path, declaring the parameters it owns.

use super::{BatchNorm, Conv2d, Graph, Init, Linear, Node, NodeId, Op, ParamSpec, Pool2d};

/// Builds a [`Graph`] node by node, tracking each node's channel count so layers need not be
/// told their input width.
pub struct GraphBuilder {
    nodes: Vec<Node>,
    channels: Vec<usize>,
    specs: Vec<ParamSpec>,
    /// Initialiser for convolution weights declared from now on.
    pub conv_init: Init,
    /// Initialiser for linear weights declared from now on.
    pub linear_init: Init,
    /// When true, conv/linear biases use PyTorch's default `U(±1/√fan_in)`; otherwise zeros.
    pub torch_default_bias: bool,
}

/// Geometry of a convolution layer.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    /// Output channels.
    pub out: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Symmetric padding.
    pub padding: usize,
    /// Groups (`groups == channels` for depthwise).
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl ConvGeom {
    /// `k×k` convolution to `out` channels, stride 1, "same" padding `k/2`, one group, no bias.
    pub fn new(out: usize, kernel: usize) -> Self {
        ConvGeom {
            out,
            kernel,
            stride: 1,
            padding: kernel / 2,
            groups: 1,
            bias: false,
        }
    }
    /// With stride `s`.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// With padding `p`.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    /// With `g` groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// With a bias.
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
}

impl GraphBuilder {
    /// A builder whose input has `in_channels` channels.
    pub fn new(in_channels: usize) -> Self {
        GraphBuilder {
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
            }],
            channels: vec![in_channels],
            specs: Vec::new(),
            conv_init: Init::TorchDefaultWeight,
            linear_init: Init::TorchDefaultWeight,
            torch_default_bias: true,
        }
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        0
    }

    /// Channel count of a node's output.
    pub fn channels(&self, id: NodeId) -> usize {
        self.channels[id]
    }

    /// Appends a node with a known output channel count.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<NodeId>,
        channels: usize,
    ) -> NodeId {
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs,
        });
        self.channels.push(channels);
        self.nodes.len() - 1
    }

    fn declare(&mut self, key: String, shape: Vec<usize>, init: Init, trainable: bool) -> String {
        self.specs.push(ParamSpec {
            key: key.clone(),
            shape,
            init,
            trainable,
        });
        key
    }

    fn bias_init(&self, fan_in: usize) -> Init {
        if self.torch_default_bias {
            Init::TorchDefaultBias { fan_in }
        } else {
            Init::Zeros
        }
    }

    /// Convolution named `name` with parameters `name.weight` (and `name.bias`).
    pub fn conv(&mut self, name: &str, x: NodeId, g: ConvGeom) -> NodeId {
        let cin = self.channels[x];
        let fan_in = cin / g.groups * g.kernel * g.kernel;
        let weight = self.declare(
            format!("{name}.weight"),
            vec![g.out, cin / g.groups, g.kernel, g.kernel],
            self.conv_init,
            true,
        );
        let bias = g.bias.then(|| {
            let init = self.bias_init(fan_in);
            self.declare(format!("{name}.bias"), vec![g.out], init, true)
        });
        let p = g.padding;
        let op = Op::Conv2d(Conv2d {
            weight,
            bias,
            stride: [g.stride, g.stride],
            padding: [p, p, p, p],
            dilation: [1, 1],
            groups: g.groups,
        });
        self.push(name, op, vec![x], g.out)
    }

    /// BatchNorm2d named `name` (torch defaults ε = 1e-5, momentum 0.1).
    pub fn bn(&mut self, name: &str, x: NodeId) -> NodeId {
        self.bn_with(name, x, 1e-5, 0.1)
    }

    /// BatchNorm2d with explicit ε and momentum.
    pub fn bn_with(&mut self, name: &str, x: NodeId, eps: f32, momentum: f32) -> NodeId {
        let c = self.channels[x];
        let op = Op::BatchNorm(BatchNorm {
            weight: self.declare(format!("{name}.weight"), vec![c], Init::Ones, true),
            bias: self.declare(format!("{name}.bias"), vec![c], Init::Zeros, true),
            running_mean: self.declare(format!("{name}.running_mean"), vec![c], Init::Zeros, false),
            running_var: self.declare(format!("{name}.running_var"), vec![c], Init::Ones, false),
            eps,
            momentum,
        });
        self.push(name, op, vec![x], c)
    }

    /// Fully connected layer `in_features → out`.
    pub fn linear(
        &mut self,
        name: &str,
        x: NodeId,
        in_features: usize,
        out: usize,
        bias: bool,
    ) -> NodeId {
        let weight = self.declare(
            format!("{name}.weight"),
            vec![out, in_features],
            self.linear_init,
            true,
        );
        let bias = bias.then(|| {
            let init = self.bias_init(in_features);
            self.declare(format!("{name}.bias"), vec![out], init, true)
        });
        self.push(name, Op::Linear(Linear { weight, bias }), vec![x], out)
    }

    /// A parameter-free op that keeps the channel count.
    pub fn unary(&mut self, name: &str, op: Op, x: NodeId) -> NodeId {
        let c = self.channels[x];
        self.push(name, op, vec![x], c)
    }

    /// ReLU.
    pub fn relu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.unary(name, Op::Relu, x)
    }

    /// ReLU6, `min(max(x, 0), 6)` (MobileNetV2).
    pub fn relu6(&mut self, name: &str, x: NodeId) -> NodeId {
        self.unary(name, Op::Clip { min: 0.0, max: 6.0 }, x)
    }

    /// SiLU (swish), `x·σ(x)` (EfficientNet).
    pub fn silu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.unary(name, Op::Silu, x)
    }

    /// Logistic sigmoid (squeeze-excitation gates).
    pub fn sigmoid(&mut self, name: &str, x: NodeId) -> NodeId {
        self.unary(name, Op::Sigmoid, x)
    }

    /// An identity node: gives a container module's output its own name (torchvision's
    /// `features.8` is the output of its last child `features.8.2`) at no cost.
    pub fn identity(&mut self, name: &str, x: NodeId) -> NodeId {
        self.unary(name, Op::Identity, x)
    }

    /// Average pooling.
    pub fn avgpool(&mut self, name: &str, x: NodeId, pool: Pool2d) -> NodeId {
        self.unary(name, Op::AvgPool2d(pool), x)
    }

    /// Max pooling.
    pub fn maxpool(&mut self, name: &str, x: NodeId, pool: Pool2d) -> NodeId {
        self.unary(name, Op::MaxPool2d(pool), x)
    }

    /// Adaptive average pooling to `output`.
    pub fn adaptive_avgpool(&mut self, name: &str, x: NodeId, output: [usize; 2]) -> NodeId {
        self.unary(name, Op::AdaptiveAvgPool2d { output }, x)
    }

    /// Flatten to `[N, features, 1, 1]`; `features` is the flattened width.
    pub fn flatten(&mut self, name: &str, x: NodeId, features: usize) -> NodeId {
        self.push(name, Op::Flatten, vec![x], features)
    }

    /// Dropout with probability `p` (identity at inference).
    pub fn dropout(&mut self, name: &str, x: NodeId, p: f32) -> NodeId {
        self.unary(name, Op::Dropout { p }, x)
    }

    /// Element-wise sum.
    pub fn add(&mut self, name: &str, a: NodeId, b: NodeId) -> NodeId {
        let c = self.channels[a].max(self.channels[b]);
        self.push(name, Op::Add, vec![a, b], c)
    }

    /// Element-wise product (broadcasting).
    pub fn mul(&mut self, name: &str, a: NodeId, b: NodeId) -> NodeId {
        let c = self.channels[a].max(self.channels[b]);
        self.push(name, Op::Mul, vec![a, b], c)
    }

    /// Channel concatenation.
    pub fn concat(&mut self, name: &str, xs: &[NodeId]) -> NodeId {
        let c = xs.iter().map(|&i| self.channels[i]).sum();
        self.push(name, Op::Concat, xs.to_vec(), c)
    }

    /// Finishes the graph with `output` as its result.
    pub fn finish(self, output: NodeId) -> Graph {
        Graph {
            nodes: self.nodes,
            output,
            param_specs: self.specs,
        }
    }
}
