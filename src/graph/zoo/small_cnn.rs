//! A small CNN for quick studies (about 100k parameters, any input size): four blocks of
//! 3×3 conv → BatchNorm → ReLU, the first three followed by 2×2 max pooling, then global
//! average pooling, dropout and one linear layer. `tools/` holds the same network in PyTorch.

use crate::graph::builder::ConvGeom;
use crate::graph::{Graph, GraphBuilder, Pool2d};

/// Channel widths of the four conv blocks.
pub const WIDTHS: [usize; 4] = [16, 32, 64, 128];

/// Builds `small_cnn`; names follow an `nn.Sequential` called `features` and a `classifier`.
pub fn small_cnn(num_classes: usize, in_channels: usize) -> Graph {
    let mut b = GraphBuilder::new(in_channels);
    let mut x = b.input();
    let mut idx = 0;
    for (i, &w) in WIDTHS.iter().enumerate() {
        x = b.conv(
            &format!("features.{idx}"),
            x,
            ConvGeom::new(w, 3).bias(false),
        );
        x = b.bn(&format!("features.{}", idx + 1), x);
        x = b.relu(&format!("features.{}", idx + 2), x);
        idx += 3;
        if i < 3 {
            x = b.maxpool(&format!("features.{idx}"), x, Pool2d::square(2, 2, 0));
            idx += 1;
        }
    }
    let c = b.channels(x);
    x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    x = b.flatten("flatten", x, c);
    x = b.dropout("classifier.0", x, 0.2);
    x = b.linear("classifier.1", x, c, num_classes, true);
    b.finish(x)
}
