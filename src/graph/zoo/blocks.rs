//! Building blocks shared by the mobile architectures (EfficientNet, MobileNetV2): torchvision's
//! `Conv2dNormActivation` and its channel-rounding rule.

use crate::graph::builder::ConvGeom;
use crate::graph::{GraphBuilder, NodeId};

/// BatchNorm settings of an architecture (torchvision varies ε and momentum per model).
#[derive(Clone, Copy, Debug)]
pub struct Norm {
    /// ε added to the variance.
    pub eps: f32,
    /// Momentum of the running statistics.
    pub momentum: f32,
}

impl Norm {
    /// `nn.BatchNorm2d`'s defaults, ε = 1e-5 and momentum 0.1.
    pub const TORCH: Norm = Norm {
        eps: 1e-5,
        momentum: 0.1,
    };
}

/// The activation closing a [`conv_norm_act`] block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// None (the linear projection of inverted residuals).
    None,
    /// SiLU, `x·σ(x)`.
    Silu,
    /// ReLU6, `min(max(x, 0), 6)`.
    Relu6,
}

/// torchvision's `Conv2dNormActivation` named `prefix`: a bias-free convolution `prefix.0`,
/// BatchNorm `prefix.1` and, unless `act` is [`Act::None`], the activation `prefix.2`.
/// Returns the last node.
pub fn conv_norm_act(
    b: &mut GraphBuilder,
    prefix: &str,
    x: NodeId,
    geom: ConvGeom,
    norm: Norm,
    act: Act,
) -> NodeId {
    let h = b.conv(&format!("{prefix}.0"), x, geom.bias(false));
    let h = b.bn_with(&format!("{prefix}.1"), h, norm.eps, norm.momentum);
    match act {
        Act::None => h,
        Act::Silu => b.silu(&format!("{prefix}.2"), h),
        Act::Relu6 => b.relu6(&format!("{prefix}.2"), h),
    }
}

/// torchvision's `_make_divisible` (from the TensorFlow MobileNet code): `v` rounded to the
/// nearest multiple of `divisor` (at least `divisor`), bumped up one step if rounding lost
/// more than 10 %.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = divisor.max(((v + d / 2.0) as usize) / divisor * divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn make_divisible_matches_torchvision_values() {
        // Values computed by torchvision.models._utils._make_divisible.
        assert_eq!(make_divisible(32.0 * 1.1, 8), 32);
        assert_eq!(make_divisible(16.0 * 1.4, 8), 24);
        assert_eq!(make_divisible(40.0 * 1.2, 8), 48);
        assert_eq!(make_divisible(1.0, 8), 8);
        assert_eq!(make_divisible(12.0, 8), 16);
        assert_eq!(make_divisible(11.0, 8), 16);
    }
}
