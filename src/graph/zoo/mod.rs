//! Built-in architectures with torchvision's parameter names, so a torchvision `state_dict`
//! loads without renaming. Class count and input channels are configurable.
//!
//! Node names follow torchvision's module paths; ops that torchvision applies functionally get
//! a descriptive name under their module (`layer4.1.add`), and the output of a block or
//! container carries the container's name (`layer4.1`, `features.8`), so the layers people pass
//! to pytorch-grad-cam or zennit-crp exist here under the same names. See each module's doc
//! and [`Graph::default_cam_layer`].

mod blocks;
pub mod densenet;
mod efficientnet;
mod mobilenet;
pub mod resnet;
mod small_cnn;
mod vgg;

use super::{Graph, GraphError};

/// Names of the built-in architectures.
pub const ARCHS: &[&str] = &[
    "small_cnn",
    "vgg11",
    "vgg16",
    "vgg16_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "densenet121",
    "mobilenet_v2",
];

/// Builds architecture `arch` with `num_classes` outputs and `in_channels` input channels.
pub fn build(arch: &str, num_classes: usize, in_channels: usize) -> Result<Graph, GraphError> {
    let efficientnet_variant = arch
        .strip_prefix("efficientnet_b")
        .and_then(|v| v.parse::<usize>().ok())
        .and_then(|v| efficientnet::VARIANTS.get(v));
    let graph = match arch {
        "small_cnn" => small_cnn::small_cnn(num_classes, in_channels),
        "vgg11" => vgg::vgg(vgg::VGG11, false, num_classes, in_channels),
        "vgg16" => vgg::vgg(vgg::VGG16, false, num_classes, in_channels),
        "vgg16_bn" => vgg::vgg(vgg::VGG16, true, num_classes, in_channels),
        "resnet18" => resnet::resnet(resnet::Block::Basic, [2, 2, 2, 2], num_classes, in_channels),
        "resnet34" => resnet::resnet(resnet::Block::Basic, [3, 4, 6, 3], num_classes, in_channels),
        "resnet50" => resnet::resnet(
            resnet::Block::Bottleneck,
            [3, 4, 6, 3],
            num_classes,
            in_channels,
        ),
        "densenet121" => densenet::densenet(densenet::DENSENET121, num_classes, in_channels),
        "mobilenet_v2" => mobilenet::mobilenet_v2(num_classes, in_channels),
        _ if efficientnet_variant.is_some() && ARCHS.contains(&arch) => {
            let variant = *efficientnet_variant.expect("checked");
            efficientnet::efficientnet(variant, num_classes, in_channels)
        }
        _ => {
            return Err(GraphError::UnknownArch {
                name: arch.to_string(),
                valid: ARCHS.join(", "),
            });
        }
    };
    graph.validate()?;
    Ok(graph)
}

/// The current name of a state-dict key that an older torchvision release wrote differently,
/// or `None` if the key is current. torchvision's own DenseNet checkpoints (the files its
/// `DenseNet121_Weights` download) still name dense-layer parameters `norm.1`, `conv.2`, …,
/// which torchvision renames to `norm1`, `conv2` while loading; so do we.
pub fn rename_legacy_key(key: &str) -> Option<String> {
    let at = key.find(".denselayer")?;
    let rest = &key[at + 1..];
    let mut parts: Vec<&str> = rest.splitn(4, '.').collect();
    // parts: ["denselayerN", "norm"|"relu"|"conv", "1"|"2", "weight"|…]
    if parts.len() == 4
        && matches!(parts[1], "norm" | "relu" | "conv")
        && matches!(parts[2], "1" | "2")
        && !parts[3].contains('.')
    {
        let joined = format!("{}{}", parts[1], parts[2]);
        parts.splice(1..3, [joined.as_str()]);
        Some(format!("{}.{}", &key[..at], parts.join(".")))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_densenet_keys_are_renamed_like_torchvision() {
        assert_eq!(
            rename_legacy_key("features.denseblock1.denselayer1.norm.1.running_mean").as_deref(),
            Some("features.denseblock1.denselayer1.norm1.running_mean")
        );
        assert_eq!(
            rename_legacy_key("features.denseblock4.denselayer16.conv.2.weight").as_deref(),
            Some("features.denseblock4.denselayer16.conv2.weight")
        );
        assert_eq!(
            rename_legacy_key("features.denseblock1.denselayer1.norm1.weight"),
            None
        );
        assert_eq!(rename_legacy_key("features.transition1.norm.weight"), None);
        assert_eq!(rename_legacy_key("layer1.0.conv1.weight"), None);
    }

    #[test]
    fn unknown_architectures_list_the_valid_ones() {
        for bad in ["efficientnet_b8", "efficientnet_b", "resnet"] {
            let err = build(bad, 10, 3).unwrap_err().to_string();
            assert!(
                err.contains(bad) && err.contains("efficientnet_b7"),
                "{err}"
            );
        }
    }
}
