//! ResNet (He et al. 2016) as in torchvision, v1.5 (stride in the 3×3 conv of bottlenecks).
//!
//! Node names: the block's final ReLU carries the block's name (`layer4.1`), matching the output
//! of torchvision's `model.layer4[1]` (pytorch-grad-cam's usual target layer); inner ReLUs are
//! `<block>.relu1`, `<block>.relu2`; the residual sum is `<block>.add`.

use crate::graph::builder::ConvGeom;
use crate::graph::{Graph, GraphBuilder, Init, NodeId, Pool2d};

/// Residual block type.
#[derive(Clone, Copy, PartialEq)]
pub enum Block {
    /// Two 3×3 convs (ResNet-18/34), expansion 1.
    Basic,
    /// 1×1, 3×3, 1×1 convs (ResNet-50 and deeper), expansion 4.
    Bottleneck,
}

impl Block {
    fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// One torchvision residual block named `name` (`layer1.0`): Basic (two 3×3 convs) or
/// Bottleneck (v1.5, the stride in the 3×3 conv), each conv followed by BatchNorm, a
/// `downsample` projection when the stride or width changes, the residual sum `{name}.add` and
/// the final ReLU `name`.
pub fn block(
    b: &mut GraphBuilder,
    kind: Block,
    name: &str,
    x: NodeId,
    width: usize,
    stride: usize,
) -> NodeId {
    let cin = b.channels(x);
    let out = width * kind.expansion();
    let mut h = x;
    match kind {
        Block::Basic => {
            h = b.conv(
                &format!("{name}.conv1"),
                h,
                ConvGeom::new(width, 3).stride(stride),
            );
            h = b.bn(&format!("{name}.bn1"), h);
            h = b.relu(&format!("{name}.relu1"), h);
            h = b.conv(&format!("{name}.conv2"), h, ConvGeom::new(width, 3));
            h = b.bn(&format!("{name}.bn2"), h);
        }
        Block::Bottleneck => {
            h = b.conv(&format!("{name}.conv1"), h, ConvGeom::new(width, 1));
            h = b.bn(&format!("{name}.bn1"), h);
            h = b.relu(&format!("{name}.relu1"), h);
            h = b.conv(
                &format!("{name}.conv2"),
                h,
                ConvGeom::new(width, 3).stride(stride),
            );
            h = b.bn(&format!("{name}.bn2"), h);
            h = b.relu(&format!("{name}.relu2"), h);
            h = b.conv(&format!("{name}.conv3"), h, ConvGeom::new(out, 1));
            h = b.bn(&format!("{name}.bn3"), h);
        }
    }
    let shortcut = if stride != 1 || cin != out {
        let s = b.conv(
            &format!("{name}.downsample.0"),
            x,
            ConvGeom::new(out, 1).stride(stride),
        );
        b.bn(&format!("{name}.downsample.1"), s)
    } else {
        x
    };
    let sum = b.add(&format!("{name}.add"), h, shortcut);
    b.relu(name, sum)
}

/// Builds a ResNet with `layers` blocks in each of the four stages.
pub fn resnet(kind: Block, layers: [usize; 4], num_classes: usize, in_channels: usize) -> Graph {
    let mut b = GraphBuilder::new(in_channels);
    b.conv_init = Init::KaimingNormalFanOut;
    let mut x = b.input();
    x = b.conv("conv1", x, ConvGeom::new(64, 7).stride(2).padding(3));
    x = b.bn("bn1", x);
    x = b.relu("relu", x);
    x = b.maxpool("maxpool", x, Pool2d::square(3, 2, 1));
    for (stage, &n) in layers.iter().enumerate() {
        let width = 64 << stage;
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            x = block(
                &mut b,
                kind,
                &format!("layer{}.{i}", stage + 1),
                x,
                width,
                stride,
            );
        }
    }
    let c = b.channels(x);
    x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    x = b.flatten("flatten", x, c);
    b.torch_default_bias = true;
    b.linear_init = Init::TorchDefaultWeight;
    x = b.linear("fc", x, c, num_classes, true);
    b.finish(x)
}
