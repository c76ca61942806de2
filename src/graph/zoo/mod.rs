//! Built-in architectures with torchvision's parameter names, so a torchvision `state_dict`
//! loads without renaming. Class count and input channels are configurable.

mod resnet;
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
];

/// Builds architecture `arch` with `num_classes` outputs and `in_channels` input channels.
pub fn build(arch: &str, num_classes: usize, in_channels: usize) -> Result<Graph, GraphError> {
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
