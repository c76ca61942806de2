//! EfficientNet B0–B7 (Tan & Le 2019) as in torchvision 0.29.
//!
//! `features.0` is a 3×3 stride-2 stem, `features.1`–`features.7` are stages of MBConv blocks
//! (1×1 expansion, depthwise k×k, squeeze-excitation, 1×1 projection, residual sum when the
//! shape allows), `features.8` a 1×1 convolution to 4× the last stage's width; then global
//! average pooling, dropout and one linear layer. Variants scale the widths (rounded to
//! multiples of 8) and the block counts (rounded up) of B0's table.
//!
//! Inference semantics: stochastic depth and dropout are identities, so stochastic depth has no
//! node; the classifier dropout is an [`Op::Dropout`](crate::graph::Op::Dropout) node.
//!
//! Node names: layers carry their torchvision module path (`features.2.1.block.1.0` is the
//! depthwise convolution of block 1 in stage 2). The squeeze-excitation product
//! `features map × gate` (inputs in that order) carries the SE module's name
//! (`features.2.1.block.2`); the block output (the residual sum, or an identity when there is
//! none) carries the block's name (`features.2.1`); and every child of `features` has an
//! identity node with its name (`features.8` is pytorch-grad-cam's usual target
//! `model.features[-1]`).

use super::blocks::{Act, Norm, conv_norm_act, make_divisible};
use crate::graph::builder::ConvGeom;
use crate::graph::{Graph, GraphBuilder, Init, NodeId};

/// The scaling of one EfficientNet variant.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Width multiplier of every channel count.
    pub width: f64,
    /// Depth multiplier of every stage's block count.
    pub depth: f64,
    /// Dropout probability before the classifier.
    pub dropout: f32,
    /// BatchNorm settings (B5–B7 use ε = 1e-3, momentum 0.01 in torchvision).
    pub norm: Norm,
}

const WIDE_NORM: Norm = Norm {
    eps: 1e-3,
    momentum: 0.01,
};

/// B0 … B7, in order, with torchvision's multipliers, dropouts and BatchNorm settings.
pub const VARIANTS: [Variant; 8] = [
    v(1.0, 1.0, 0.2, Norm::TORCH),
    v(1.0, 1.1, 0.2, Norm::TORCH),
    v(1.1, 1.2, 0.3, Norm::TORCH),
    v(1.2, 1.4, 0.3, Norm::TORCH),
    v(1.4, 1.8, 0.4, Norm::TORCH),
    v(1.6, 2.2, 0.4, WIDE_NORM),
    v(1.8, 2.6, 0.5, WIDE_NORM),
    v(2.0, 3.1, 0.5, WIDE_NORM),
];

const fn v(width: f64, depth: f64, dropout: f32, norm: Norm) -> Variant {
    Variant {
        width,
        depth,
        dropout,
        norm,
    }
}

/// One row of B0's table: `(expand ratio, kernel, stride, in channels, out channels, blocks)`.
type StageRow = (f64, usize, usize, usize, usize, usize);

/// Table 1 of the paper, as torchvision's `_efficientnet_conf` writes it.
const B0_STAGES: [StageRow; 7] = [
    (1.0, 3, 1, 32, 16, 1),
    (6.0, 3, 2, 16, 24, 2),
    (6.0, 5, 2, 24, 40, 2),
    (6.0, 3, 2, 40, 80, 3),
    (6.0, 5, 1, 80, 112, 3),
    (6.0, 5, 2, 112, 192, 4),
    (6.0, 3, 1, 192, 320, 1),
];

/// Geometry of one MBConv block.
struct MbConv {
    expand: f64,
    kernel: usize,
    stride: usize,
    cin: usize,
    cout: usize,
}

/// One MBConv block named `name` (torchvision's `MBConv`).
fn mbconv(b: &mut GraphBuilder, name: &str, x: NodeId, m: &MbConv, norm: Norm) -> NodeId {
    let expanded = make_divisible(m.cin as f64 * m.expand, 8);
    let mut h = x;
    let mut k = 0;
    if expanded != m.cin {
        let geom = ConvGeom::new(expanded, 1);
        h = conv_norm_act(b, &format!("{name}.block.{k}"), h, geom, norm, Act::Silu);
        k += 1;
    }
    let dw = ConvGeom::new(expanded, m.kernel)
        .stride(m.stride)
        .groups(expanded);
    h = conv_norm_act(b, &format!("{name}.block.{k}"), h, dw, norm, Act::Silu);
    k += 1;
    // Squeeze-excitation: squeeze to a quarter of the block's *input* width.
    let se = format!("{name}.block.{k}");
    let squeeze = (m.cin / 4).max(1);
    let mut gate = b.adaptive_avgpool(&format!("{se}.avgpool"), h, [1, 1]);
    gate = b.conv(
        &format!("{se}.fc1"),
        gate,
        ConvGeom::new(squeeze, 1).bias(true),
    );
    gate = b.silu(&format!("{se}.activation"), gate);
    gate = b.conv(
        &format!("{se}.fc2"),
        gate,
        ConvGeom::new(expanded, 1).bias(true),
    );
    gate = b.sigmoid(&format!("{se}.scale_activation"), gate);
    h = b.mul(&se, h, gate);
    k += 1;
    let project = ConvGeom::new(m.cout, 1);
    h = conv_norm_act(b, &format!("{name}.block.{k}"), h, project, norm, Act::None);
    if m.stride == 1 && m.cin == m.cout {
        b.add(name, h, x)
    } else {
        b.identity(name, h)
    }
}

/// Builds EfficientNet variant `variant`.
pub fn efficientnet(variant: Variant, num_classes: usize, in_channels: usize) -> Graph {
    let norm = variant.norm;
    let width = |c: usize| make_divisible(c as f64 * variant.width, 8);
    let mut b = GraphBuilder::new(in_channels);
    b.conv_init = Init::KaimingNormalFanOut;
    b.torch_default_bias = false;
    let stem = ConvGeom::new(width(B0_STAGES[0].3), 3).stride(2);
    let input = b.input();
    let mut x = conv_norm_act(&mut b, "features.0", input, stem, norm, Act::Silu);
    x = b.identity("features.0", x);
    for (s, &(expand, kernel, stride, cin, cout, blocks)) in B0_STAGES.iter().enumerate() {
        let blocks = (blocks as f64 * variant.depth).ceil() as usize;
        let (cin, cout) = (width(cin), width(cout));
        for j in 0..blocks {
            let m = MbConv {
                expand,
                kernel,
                stride: if j == 0 { stride } else { 1 },
                cin: if j == 0 { cin } else { cout },
                cout,
            };
            x = mbconv(&mut b, &format!("features.{}.{j}", s + 1), x, &m, norm);
        }
        x = b.identity(&format!("features.{}", s + 1), x);
    }
    let last = 4 * b.channels(x);
    let head = ConvGeom::new(last, 1);
    x = conv_norm_act(&mut b, "features.8", x, head, norm, Act::Silu);
    x = b.identity("features.8", x);
    x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    x = b.flatten("flatten", x, last);
    x = b.dropout("classifier.0", x, variant.dropout);
    b.linear_init = Init::Uniform {
        a: 1.0 / (num_classes as f32).sqrt(),
    };
    x = b.linear("classifier.1", x, last, num_classes, true);
    b.finish(x)
}
