//! MobileNetV2 (Sandler et al. 2018) as in torchvision 0.29, width multiplier 1.
//!
//! `features.0` is a 3×3 stride-2 stem, `features.1`–`features.17` inverted residual blocks
//! (1×1 expansion, depthwise 3×3, linear 1×1 projection; residual sum when the shape allows),
//! `features.18` a 1×1 convolution to 1280 channels; then global average pooling, dropout and
//! one linear layer. ReLU6 is [`Op::Clip`](crate::graph::Op::Clip) `{ min: 0, max: 6 }`.
//!
//! Node names: layers carry their torchvision module path (`features.3.conv.1.0` is the
//! depthwise convolution of block 3); each block's output (the residual sum, or an identity
//! when there is none) carries the block's name, and the stem and head have identity nodes
//! named `features.0` and `features.18` (pytorch-grad-cam's usual target
//! `model.features[-1]`). The functional global pooling of torchvision's `forward` is
//! `avgpool`, the flattening `flatten`.

use super::blocks::{Act, Norm, conv_norm_act, make_divisible};
use crate::graph::builder::ConvGeom;
use crate::graph::{Graph, GraphBuilder, Init, NodeId};

/// `(expand ratio t, output channels c, blocks n, first stride s)` per stage.
const SETTING: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Width of the stem.
const STEM: usize = 32;
/// Width of the last convolution.
const LAST: usize = 1280;
/// Dropout before the classifier.
const DROPOUT: f32 = 0.2;

/// torchvision's `InvertedResidual` named `name`.
fn inverted_residual(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    out: usize,
    stride: usize,
    expand: usize,
) -> NodeId {
    let cin = b.channels(x);
    let hidden = cin * expand;
    let norm = Norm::TORCH;
    let mut h = x;
    let mut k = 0;
    if expand != 1 {
        let pw = ConvGeom::new(hidden, 1);
        h = conv_norm_act(b, &format!("{name}.conv.{k}"), h, pw, norm, Act::Relu6);
        k += 1;
    }
    let dw = ConvGeom::new(hidden, 3).stride(stride).groups(hidden);
    h = conv_norm_act(b, &format!("{name}.conv.{k}"), h, dw, norm, Act::Relu6);
    k += 1;
    // The linear projection is a bare conv + BN in torchvision (`conv.k`, `conv.k+1`).
    h = b.conv(&format!("{name}.conv.{k}"), h, ConvGeom::new(out, 1));
    h = b.bn(&format!("{name}.conv.{}", k + 1), h);
    if stride == 1 && cin == out {
        b.add(name, x, h)
    } else {
        b.identity(name, h)
    }
}

/// Builds MobileNetV2.
pub fn mobilenet_v2(num_classes: usize, in_channels: usize) -> Graph {
    let norm = Norm::TORCH;
    let mut b = GraphBuilder::new(in_channels);
    b.conv_init = Init::KaimingNormalFanOut;
    b.torch_default_bias = false;
    b.linear_init = Init::Normal { std: 0.01 };
    let input = b.input();
    let stem = ConvGeom::new(make_divisible(STEM as f64, 8), 3).stride(2);
    let mut x = conv_norm_act(&mut b, "features.0", input, stem, norm, Act::Relu6);
    x = b.identity("features.0", x);
    let mut idx = 1;
    for &(t, c, n, s) in &SETTING {
        let out = make_divisible(c as f64, 8);
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            x = inverted_residual(&mut b, &format!("features.{idx}"), x, out, stride, t);
            idx += 1;
        }
    }
    let head = ConvGeom::new(LAST, 1);
    x = conv_norm_act(
        &mut b,
        &format!("features.{idx}"),
        x,
        head,
        norm,
        Act::Relu6,
    );
    x = b.identity(&format!("features.{idx}"), x);
    x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    x = b.flatten("flatten", x, LAST);
    x = b.dropout("classifier.0", x, DROPOUT);
    x = b.linear("classifier.1", x, LAST, num_classes, true);
    b.finish(x)
}
