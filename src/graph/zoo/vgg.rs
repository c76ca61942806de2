//! VGG (Simonyan & Zisserman 2015) as in torchvision: `features` (3×3 convs, optional BN, ReLU,
//! 2×2 max pooling), `avgpool` to 7×7, `classifier` (two 4096-wide hidden layers with dropout).

use crate::graph::builder::ConvGeom;
use crate::graph::{Graph, GraphBuilder, Init, Pool2d};

/// One entry of a VGG feature configuration: a conv width or a max pool.
#[derive(Clone, Copy)]
pub enum Layer {
    /// 3×3 convolution to this many channels.
    C(usize),
    /// 2×2 max pool, stride 2.
    M,
}
use Layer::{C, M};

/// Configuration "A".
pub const VGG11: &[Layer] = &[
    C(64),
    M,
    C(128),
    M,
    C(256),
    C(256),
    M,
    C(512),
    C(512),
    M,
    C(512),
    C(512),
    M,
];
/// Configuration "D".
pub const VGG16: &[Layer] = &[
    C(64),
    C(64),
    M,
    C(128),
    C(128),
    M,
    C(256),
    C(256),
    C(256),
    M,
    C(512),
    C(512),
    C(512),
    M,
    C(512),
    C(512),
    C(512),
    M,
];

/// Builds a VGG; module indices follow torchvision's `nn.Sequential` numbering.
pub fn vgg(cfg: &[Layer], batch_norm: bool, num_classes: usize, in_channels: usize) -> Graph {
    let mut b = GraphBuilder::new(in_channels);
    b.conv_init = Init::KaimingNormalFanOut;
    b.linear_init = Init::Normal { std: 0.01 };
    b.torch_default_bias = false;
    let mut x = b.input();
    let mut idx = 0;
    for layer in cfg {
        match *layer {
            C(width) => {
                x = b.conv(
                    &format!("features.{idx}"),
                    x,
                    ConvGeom::new(width, 3).bias(true),
                );
                idx += 1;
                if batch_norm {
                    x = b.bn(&format!("features.{idx}"), x);
                    idx += 1;
                }
                x = b.relu(&format!("features.{idx}"), x);
                idx += 1;
            }
            M => {
                x = b.maxpool(&format!("features.{idx}"), x, Pool2d::square(2, 2, 0));
                idx += 1;
            }
        }
    }
    let c = b.channels(x);
    x = b.adaptive_avgpool("avgpool", x, [7, 7]);
    x = b.flatten("flatten", x, c * 49);
    x = b.linear("classifier.0", x, c * 49, 4096, true);
    x = b.relu("classifier.1", x);
    x = b.dropout("classifier.2", x, 0.5);
    x = b.linear("classifier.3", x, 4096, 4096, true);
    x = b.relu("classifier.4", x);
    x = b.dropout("classifier.5", x, 0.5);
    x = b.linear("classifier.6", x, 4096, num_classes, true);
    b.finish(x)
}
