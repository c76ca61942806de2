//! The operations a graph node can perform.
//!
//! Every op maps rank-4 tensors to a rank-4 tensor. Feature vectors are `[N, F, 1, 1]`, so
//! `Linear` and `Softmax` act on dimension 1. Parameters are referred to by their state-dict key
//! (torchvision's names for the zoo, initializer names for ONNX imports) and live in a
//! [`ParamStore`](super::ParamStore).

use serde::{Deserialize, Serialize};

/// 2-D convolution `y = W ⋆ x + b` with torch semantics (cross-correlation, zero padding).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Key of the weight `[C_out, C_in / groups, kH, kW]`.
    pub weight: String,
    /// Key of the bias `[C_out]`, if any.
    pub bias: Option<String>,
    /// `[sH, sW]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`; torch's symmetric padding `p` is `[p, p, p, p]`.
    pub padding: [usize; 4],
    /// `[dH, dW]`.
    pub dilation: [usize; 2],
    /// Number of groups; `groups == C_in == C_out` is a depthwise convolution.
    pub groups: usize,
}

/// Fully connected layer `y = x Wᵀ + b` on `[N, F, 1, 1]` inputs (torch's `nn.Linear` layout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Key of the weight `[out, in]`.
    pub weight: String,
    /// Key of the bias `[out]`, if any.
    pub bias: Option<String>,
}

/// Batch normalisation in inference form: `y = (x − μ) / √(σ² + ε) · γ + β` per channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    /// γ, key `<name>.weight`.
    pub weight: String,
    /// β, key `<name>.bias`.
    pub bias: String,
    /// μ, key `<name>.running_mean`.
    pub running_mean: String,
    /// σ², key `<name>.running_var`.
    pub running_var: String,
    /// ε added to the variance.
    pub eps: f32,
    /// Momentum of the running statistics during training (torch's default 0.1).
    pub momentum: f32,
}

/// Max or average pooling window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool2d {
    /// `[kH, kW]`.
    pub kernel: [usize; 2],
    /// `[sH, sW]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// `[dH, dW]` (max pooling only).
    pub dilation: [usize; 2],
    /// Output size rounded up instead of down.
    pub ceil_mode: bool,
    /// Average pooling: count padded zeros in the denominator.
    pub count_include_pad: bool,
}

impl Pool2d {
    /// A `k×k` window with stride `s`, symmetric padding `p`, no dilation, floor mode.
    pub fn square(k: usize, s: usize, p: usize) -> Self {
        Pool2d {
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p, p, p],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

/// Layer normalisation over the channel dimension at every position (ONNX
/// `LayerNormalization` over the last axis of a channel-last tensor, ConvNeXt's `LayerNorm2d`):
/// `y = (x − μ) / √(σ² + ε) · γ + β` with μ, σ² the mean and biased variance over `C`
/// (Ba et al. 2016).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerNorm {
    /// γ `[C]`, if any.
    pub weight: Option<String>,
    /// β `[C]`, if any.
    pub bias: Option<String>,
    /// ε added to the variance.
    pub eps: f32,
}

/// How [`Op::Pad`] fills the border (ONNX `Pad` modes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum PadMode {
    /// A constant value.
    Constant(f32),
    /// The mirror image without repeating the edge (`x[1], x[0] | x[0], x[1], …`).
    Reflect,
    /// The edge value repeated.
    Edge,
}

/// How [`Resize`] picks or mixes source pixels (ONNX `Resize` / `Upsample` `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResizeMode {
    /// The source pixel nearest to the mapped coordinate, rounded as [`NearestRounding`] says.
    Nearest(NearestRounding),
    /// Linear interpolation between the two neighbouring source pixels along each axis
    /// (bilinear in 2-D), the mapped coordinate clamped to the input.
    Linear,
}

/// ONNX `nearest_mode`: how a fractional source coordinate becomes a pixel index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearestRounding {
    /// Round half down (ONNX's default).
    RoundPreferFloor,
    /// Round half up.
    RoundPreferCeil,
    /// Always down (torch's `nearest`).
    Floor,
    /// Always up.
    Ceil,
}

/// ONNX `coordinate_transformation_mode`: the source coordinate `x` of output pixel `i` along
/// an axis of input length `L`, output length `l` and scale `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordinateMode {
    /// `x = (i + ½)/s − ½` (torch's `align_corners=False`).
    HalfPixel,
    /// As `HalfPixel`, but `x = 0` when `l = 1` (what torch's exporter writes for bilinear).
    PytorchHalfPixel,
    /// `x = i·(L − 1)/(l − 1)` (0 when `l = 1`; torch's `align_corners=True`).
    AlignCorners,
    /// `x = i/s` (torch's `nearest`, ONNX `Upsample`).
    Asymmetric,
}

/// Spatial resampling `y = A_H · x · A_Wᵀ` per channel (ONNX `Resize` / `Upsample`), where
/// each `A` is the `[out, in]` matrix of one axis: a one-hot row per output pixel for
/// nearest, two weights `1 − t, t` for linear ([`crate::engine::imported::resize_matrix`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    /// Nearest or linear.
    pub mode: ResizeMode,
    /// How output pixels map to source coordinates.
    pub coordinates: CoordinateMode,
    /// Output `[H, W]`.
    pub size: [usize; 2],
    /// Scale `[s_H, s_W]` the coordinate transformation divides by (the given `scales`, or
    /// output / input length when the model gave `sizes`).
    pub scale: [f32; 2],
}

/// An element-wise function of one activation (ONNX `Neg`, `Abs`, `Sqrt`, `Pow` with a
/// constant exponent, `Reciprocal`, `Exp`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Unary {
    /// `−x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `√x`.
    Sqrt,
    /// `xᵖ` for a constant `p`.
    Pow(f32),
    /// `1/x`.
    Reciprocal,
    /// `eˣ`.
    Exp,
}

impl Unary {
    /// The node kind of this function.
    pub fn name(&self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Sqrt => "sqrt",
            Unary::Pow(_) => "pow",
            Unary::Reciprocal => "reciprocal",
            Unary::Exp => "exp",
        }
    }
}

/// One node's computation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The graph's image input `[N, C, H, W]`.
    Input,
    /// A constant tensor from the parameter store (ONNX initialisers used as operands), rank-4.
    Constant(String),
    /// See [`Conv2d`].
    Conv2d(Conv2d),
    /// See [`Linear`].
    Linear(Linear),
    /// See [`BatchNorm`].
    BatchNorm(BatchNorm),
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)`; ReLU6 is `Clip { min: 0, max: 6 }`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `x · σ(x)` (swish).
    Silu,
    /// `σ(x) = 1 / (1 + e^{−x})`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// Max pooling; the forward pass records the arg-max indices for the backward pass.
    MaxPool2d(Pool2d),
    /// Average pooling.
    AvgPool2d(Pool2d),
    /// Adaptive average pooling to a fixed output size (`[1, 1]` is global average pooling).
    AdaptiveAvgPool2d {
        /// `[oH, oW]`.
        output: [usize; 2],
    },
    /// `[N, C, H, W] → [N, C·H·W, 1, 1]` in row-major (C, H, W) order.
    Flatten,
    /// Reorders the four dimensions; output dim `i` is input dim `perm[i]`.
    Permute([usize; 4]),
    /// Reshapes the non-batch dimensions to `[C, H, W]`.
    Reshape([usize; 3]),
    /// Element-wise sum of two inputs with broadcasting.
    Add,
    /// Element-wise product of two inputs with broadcasting (squeeze-excitation gates).
    Mul,
    /// Element-wise quotient `a / b` of two computed inputs with broadcasting.
    Div,
    /// See [`Unary`].
    Unary(Unary),
    /// Broadcasts the input's axes of length 1 to `[C, H, W]` (ONNX `Expand`).
    Expand([usize; 3]),
    /// Concatenation along the channel dimension.
    Concat,
    /// Passes its input through.
    Identity,
    /// Dropout with drop probability `p`: identity at inference, random masking (scaled by
    /// 1/(1−p)) in training.
    Dropout {
        /// Probability of zeroing an element.
        p: f32,
    },
    /// Softmax over dimension 1 (an output head that methods strip to reach the logits).
    Softmax,
    /// See [`LayerNorm`].
    LayerNorm(LayerNorm),
    /// `x · Φ(x) = x · ½(1 + erf(x/√2))`, the exact GELU (Hendrycks & Gimpel 2016).
    Gelu,
    /// `x` for `x > 0`, `α·x` otherwise (ONNX `LeakyRelu`).
    LeakyRelu {
        /// Slope below zero.
        alpha: f32,
    },
    /// `scale·x` for `x > 0`, `scale·α·(eˣ − 1)` otherwise: ELU (Clevert et al. 2016) with
    /// `scale = 1`, SELU (Klambauer et al. 2017) with its constants.
    Elu {
        /// α.
        alpha: f32,
        /// Overall scale (1 for ELU).
        scale: f32,
    },
    /// `x` for `x > 0`, `a_c·x` otherwise with a learned slope per channel (He et al. 2015).
    PRelu {
        /// Key of the slopes `[C]` (or `[1]` for one shared slope).
        slope: String,
    },
    /// ShuffleNet's channel shuffle (Zhang et al. 2018): channels viewed as `[groups, C/groups]`
    /// and transposed, so output channel `i·groups + j` is input channel `j·(C/groups) + i`.
    ChannelShuffle {
        /// Number of groups.
        groups: usize,
    },
    /// The mean over the channels, `[N, C, H, W] → [N, 1, H, W]` (ONNX `ReduceMean` over the
    /// channel axis).
    ChannelMean,
    /// Channels `start .. start + len` of the input (ONNX `Split` / `Slice` on channels).
    ChannelSlice {
        /// First channel kept.
        start: usize,
        /// Number of channels kept.
        len: usize,
    },
    /// Spatial padding `[top, left, bottom, right]` filled as `mode` says (ONNX `Pad`).
    Pad {
        /// `[top, left, bottom, right]`.
        pads: [usize; 4],
        /// See [`PadMode`].
        mode: PadMode,
    },
    /// See [`Resize`].
    Resize(Resize),
}

impl Op {
    /// Short lower-case name of the op kind, used in messages and rule maps.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Constant(_) => "constant",
            Op::Conv2d(_) => "conv2d",
            Op::Linear(_) => "linear",
            Op::BatchNorm(_) => "batchnorm",
            Op::Relu => "relu",
            Op::Clip { .. } => "clip",
            Op::Silu => "silu",
            Op::Sigmoid => "sigmoid",
            Op::Tanh => "tanh",
            Op::MaxPool2d(_) => "maxpool2d",
            Op::AvgPool2d(_) => "avgpool2d",
            Op::AdaptiveAvgPool2d { .. } => "adaptive_avgpool2d",
            Op::Flatten => "flatten",
            Op::Permute(_) => "permute",
            Op::Reshape(_) => "reshape",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Unary(u) => u.name(),
            Op::Expand(_) => "expand",
            Op::Concat => "concat",
            Op::Identity => "identity",
            Op::Dropout { .. } => "dropout",
            Op::Softmax => "softmax",
            Op::LayerNorm(_) => "layernorm",
            Op::Gelu => "gelu",
            Op::LeakyRelu { .. } => "leaky_relu",
            Op::Elu { .. } => "elu",
            Op::PRelu { .. } => "prelu",
            Op::ChannelShuffle { .. } => "channel_shuffle",
            Op::ChannelSlice { .. } => "channel_slice",
            Op::ChannelMean => "channel_mean",
            Op::Pad { .. } => "pad",
            Op::Resize(_) => "resize",
        }
    }

    /// Parameter keys this op reads.
    pub fn param_keys(&self) -> Vec<&str> {
        match self {
            Op::Constant(k) | Op::PRelu { slope: k } => vec![k.as_str()],
            Op::Conv2d(c) => std::iter::once(c.weight.as_str())
                .chain(c.bias.as_deref())
                .collect(),
            Op::Linear(l) => std::iter::once(l.weight.as_str())
                .chain(l.bias.as_deref())
                .collect(),
            Op::BatchNorm(b) => vec![&b.weight, &b.bias, &b.running_mean, &b.running_var],
            Op::LayerNorm(l) => l.weight.iter().chain(&l.bias).map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// True for ops with learned linear weights (convolutions and fully connected layers).
    pub fn is_linear_layer(&self) -> bool {
        matches!(self, Op::Conv2d(_) | Op::Linear(_))
    }
}
