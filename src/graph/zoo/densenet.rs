//! DenseNet-BC (Huang et al. 2017) as in torchvision 0.29; `densenet121` is growth rate 32,
//! blocks of 6, 12, 24 and 16 layers, 64 initial features, bottleneck width 4 × growth.
//!
//! Each dense layer reads the concatenation of its block's input and every earlier layer's
//! output and applies BN-ReLU-Conv1×1-BN-ReLU-Conv3×3; transitions halve the channels
//! (BN-ReLU-Conv1×1) and the resolution (2×2 average pooling); `features.norm5` is followed by
//! a functional ReLU, global average pooling and the linear classifier.
//!
//! Node names: layers carry their torchvision module path
//! (`features.denseblock2.denselayer3.conv1`); the concatenation a layer reads is
//! `<layer>.cat` (absent for a block's first layer, which reads the block input); the
//! concatenation a block returns carries the block's name (`features.denseblock2`); each
//! transition's output has an identity node with the transition's name. The ReLU after
//! `features.norm5` (functional in torchvision's `forward`) is `features.relu5`, the default
//! class-activation layer.

use crate::graph::builder::ConvGeom;
use crate::graph::{Graph, GraphBuilder, Init, NodeId, Pool2d};

/// Hyper-parameters of a DenseNet-BC.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Channels each dense layer adds (`k`).
    pub growth: usize,
    /// Dense layers per block.
    pub blocks: [usize; 4],
    /// Channels of the stem convolution.
    pub init_features: usize,
    /// Bottleneck width as a multiple of `growth`.
    pub bn_size: usize,
}

/// DenseNet-121.
pub const DENSENET121: Config = Config {
    growth: 32,
    blocks: [6, 12, 24, 16],
    init_features: 64,
    bn_size: 4,
};

/// One dense block named `name` on input `x`; returns the concatenation of everything.
fn dense_block(b: &mut GraphBuilder, name: &str, x: NodeId, layers: usize, cfg: &Config) -> NodeId {
    let mut features = vec![x];
    for l in 1..=layers {
        let layer = format!("{name}.denselayer{l}");
        let input = if features.len() == 1 {
            x
        } else {
            b.concat(&format!("{layer}.cat"), &features)
        };
        let mut h = b.bn(&format!("{layer}.norm1"), input);
        h = b.relu(&format!("{layer}.relu1"), h);
        h = b.conv(
            &format!("{layer}.conv1"),
            h,
            ConvGeom::new(cfg.bn_size * cfg.growth, 1),
        );
        h = b.bn(&format!("{layer}.norm2"), h);
        h = b.relu(&format!("{layer}.relu2"), h);
        h = b.conv(&format!("{layer}.conv2"), h, ConvGeom::new(cfg.growth, 3));
        features.push(h);
    }
    b.concat(name, &features)
}

/// Builds a DenseNet-BC.
pub fn densenet(cfg: Config, num_classes: usize, in_channels: usize) -> Graph {
    let mut b = GraphBuilder::new(in_channels);
    b.conv_init = Init::KaimingNormalFanIn;
    b.torch_default_bias = false;
    let mut x = b.input();
    x = b.conv(
        "features.conv0",
        x,
        ConvGeom::new(cfg.init_features, 7).stride(2).padding(3),
    );
    x = b.bn("features.norm0", x);
    x = b.relu("features.relu0", x);
    x = b.maxpool("features.pool0", x, Pool2d::square(3, 2, 1));
    for (i, &layers) in cfg.blocks.iter().enumerate() {
        x = dense_block(
            &mut b,
            &format!("features.denseblock{}", i + 1),
            x,
            layers,
            &cfg,
        );
        if i + 1 < cfg.blocks.len() {
            let t = format!("features.transition{}", i + 1);
            let half = b.channels(x) / 2;
            x = b.bn(&format!("{t}.norm"), x);
            x = b.relu(&format!("{t}.relu"), x);
            x = b.conv(&format!("{t}.conv"), x, ConvGeom::new(half, 1));
            x = b.avgpool(&format!("{t}.pool"), x, Pool2d::square(2, 2, 0));
            x = b.identity(&t, x);
        }
    }
    x = b.bn("features.norm5", x);
    x = b.relu("features.relu5", x);
    let c = b.channels(x);
    x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    x = b.flatten("flatten", x, c);
    b.linear_init = Init::TorchDefaultWeight;
    x = b.linear("classifier", x, c, num_classes, true);
    b.finish(x)
}
