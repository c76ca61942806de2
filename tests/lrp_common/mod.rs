//! Shared helpers of the LRP/CRP tests: the tiny models of `tools/fixtures_lrp.py`, built with
//! the same parameter names so `reference_params` gives both sides the same weights, and fixture
//! loading.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use relevance::graph::builder::ConvGeom;
use relevance::graph::init::{random_reference_params, reference_params};
use relevance::graph::{Graph, GraphBuilder, Model, ModelCard, NodeId, Pool2d};
use relevance::tensor::{T4, from_vec};

/// A fixture file: tensors by key.
pub struct Fixture {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Fixture {
    /// LRP options as the fixtures were made with zennit: zennit's ResNet canonizer, the logit
    /// as start relevance, and the fixture's z-box bounds.
    pub fn zennit_options(&self) -> relevance::methods::lrp::LrpOptions {
        use relevance::methods::lrp::{LrpOptions, SkipMode, StartRelevance, ZBoxBounds};
        LrpOptions {
            skip: SkipMode::Zennit,
            start: StartRelevance::Logit,
            zbox: Some(ZBoxBounds {
                low: self.values("zbox_low").to_vec(),
                high: self.values("zbox_high").to_vec(),
            }),
        }
    }

    pub fn load(name: &str) -> Fixture {
        let path = fixture_path(name);
        let tensors = relevance::graph::import::safetensors::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .into_iter()
            .map(|t| (t.key, (t.shape, t.values)))
            .collect();
        Fixture { tensors }
    }
    pub fn values(&self, key: &str) -> &[f32] {
        &self
            .tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture has no '{key}'"))
            .1
    }
    pub fn shape(&self, key: &str) -> &[usize] {
        &self.tensors[key].0
    }
    pub fn t4(&self, key: &str) -> T4 {
        let s = self.shape(key);
        from_vec(self.values(key).to_vec(), [s[0], s[1], s[2], s[3]])
    }
    pub fn targets(&self) -> Vec<usize> {
        self.values("targets").iter().map(|&t| t as usize).collect()
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lrp")
        .join(format!("{name}.safetensors"))
}

/// A model from a graph with the reference weights.
pub fn model_of(graph: Graph, classes: usize) -> Model {
    graph.validate().unwrap();
    let params = reference_params(&graph).unwrap();
    Model {
        graph,
        params,
        card: ModelCard {
            num_classes: classes,
            ..ModelCard::default()
        },
        source: PathBuf::new(),
    }
}

/// A model from a graph with the hashed reference weights (`load_random_reference_weights`).
pub fn model_of_random(graph: Graph, classes: usize) -> Model {
    let mut model = model_of(graph, classes);
    model.params = random_reference_params(&model.graph).unwrap();
    model
}

/// A built-in architecture with the reference weights.
pub fn zoo_model(arch: &str, classes: usize) -> Model {
    let graph = relevance::graph::zoo::build(arch, classes, 3).unwrap();
    model_of(graph, classes)
}

/// `TinyVGG` of tools/fixtures_lrp.py.
pub fn tiny_vgg() -> Model {
    let mut b = GraphBuilder::new(3);
    let mut x = b.input();
    x = b.conv("features.0", x, ConvGeom::new(8, 3).bias(true));
    x = b.bn("features.1", x);
    x = b.relu("features.2", x);
    x = b.maxpool("features.3", x, Pool2d::square(2, 2, 0));
    x = b.conv("features.4", x, ConvGeom::new(16, 3).bias(true));
    x = b.bn("features.5", x);
    x = b.relu("features.6", x);
    x = b.maxpool("features.7", x, Pool2d::square(2, 2, 0));
    x = b.conv("features.8", x, ConvGeom::new(16, 3).bias(true));
    x = b.relu("features.9", x);
    x = b.adaptive_avgpool("avgpool", x, [2, 2]);
    x = b.flatten("flatten", x, 64);
    x = b.linear("classifier.0", x, 64, 32, true);
    x = b.relu("classifier.1", x);
    x = b.dropout("classifier.2", x, 0.5);
    x = b.linear("classifier.3", x, 32, 5, true);
    model_of(b.finish(x), 5)
}

/// torchvision's `BasicBlock` with our zoo's node names.
fn basic_block(b: &mut GraphBuilder, name: &str, x: NodeId, width: usize, stride: usize) -> NodeId {
    let cin = b.channels(x);
    let mut h = b.conv(
        &format!("{name}.conv1"),
        x,
        ConvGeom::new(width, 3).stride(stride),
    );
    h = b.bn(&format!("{name}.bn1"), h);
    h = b.relu(&format!("{name}.relu1"), h);
    h = b.conv(&format!("{name}.conv2"), h, ConvGeom::new(width, 3));
    h = b.bn(&format!("{name}.bn2"), h);
    let shortcut = if stride != 1 || cin != width {
        let s = b.conv(
            &format!("{name}.downsample.0"),
            x,
            ConvGeom::new(width, 1).stride(stride),
        );
        b.bn(&format!("{name}.downsample.1"), s)
    } else {
        x
    };
    let sum = b.add(&format!("{name}.add"), h, shortcut);
    b.relu(name, sum)
}

/// `TinyResNet` of tools/fixtures_lrp.py.
pub fn tiny_resnet() -> Model {
    let mut b = GraphBuilder::new(3);
    let mut x = b.input();
    x = b.conv("conv1", x, ConvGeom::new(8, 3));
    x = b.bn("bn1", x);
    x = b.relu("relu", x);
    x = basic_block(&mut b, "layer1.0", x, 8, 1);
    x = basic_block(&mut b, "layer2.0", x, 16, 2);
    x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    x = b.flatten("flatten", x, 16);
    x = b.linear("fc", x, 16, 5, true);
    model_of(b.finish(x), 5)
}

/// torchvision's `Bottleneck` (v1.5: stride in the 3×3 conv) with our zoo's node names.
fn bottleneck_block(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    width: usize,
    stride: usize,
) -> NodeId {
    relevance::graph::zoo::resnet::block(
        b,
        relevance::graph::zoo::resnet::Block::Bottleneck,
        name,
        x,
        width,
        stride,
    )
}

/// `TinyBottleneckResNet` of tools/fixtures_lrp_zennit1.py, with the hashed reference weights.
pub fn tiny_bottleneck() -> Model {
    let mut b = GraphBuilder::new(3);
    let mut x = b.input();
    x = b.conv("conv1", x, ConvGeom::new(8, 3));
    x = b.bn("bn1", x);
    x = b.relu("relu", x);
    x = bottleneck_block(&mut b, "layer1.0", x, 4, 1);
    x = bottleneck_block(&mut b, "layer2.0", x, 8, 2);
    x = bottleneck_block(&mut b, "layer2.1", x, 8, 1);
    x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    x = b.flatten("flatten", x, 32);
    x = b.linear("fc", x, 32, 5, true);
    model_of_random(b.finish(x), 5)
}

/// torchvision's `DenseNet(growth_rate=4, block_config=(2, 2, 2, 2), num_init_features=8,
/// bn_size=2, num_classes=5)` (`tiny_densenet` of tools/fixtures_lrp_zennit1.py), hashed weights.
pub fn tiny_densenet() -> Model {
    use relevance::graph::zoo::densenet::{Config, densenet};
    let config = Config {
        growth: 4,
        blocks: [2, 2, 2, 2],
        init_features: 8,
        bn_size: 2,
    };
    model_of_random(densenet(config, 5, 3), 5)
}

/// The fixture's model by name (`z1_` fixtures of zennit 1.0.0 use the same models).
pub fn fixture_model(name: &str) -> Model {
    match name.strip_prefix("z1_").unwrap_or(name) {
        "tiny_vgg" => tiny_vgg(),
        "tiny_resnet" => tiny_resnet(),
        "vgg11" => zoo_model("vgg11", 10),
        "resnet18" => zoo_model("resnet18", 10),
        "tiny_bottleneck" => tiny_bottleneck(),
        "tiny_densenet" => tiny_densenet(),
        _ => panic!("no fixture model {name}"),
    }
}

/// Largest absolute difference over the largest reference magnitude.
pub fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs() as f64))
        .max(1e-30);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()))
        / scale
}

/// ‖a − b‖₂ / ‖b‖₂.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-300)
}

/// The parity criterion of the LRP/CRP tests, with the numbers that decided it.
///
/// Passes when our float32 result is within `1e-4` of zennit's float32 result relative to the
/// largest reference magnitude. Where the relevance is ill-conditioned — near-zero denominators
/// of the Gamma rule and of the signed Norm rule at ResNet sums, or relevance that is a tiny
/// difference of large terms — float32 round-off alone moves zennit's own result away from the
/// float64 value by more than that; there the test passes when our distance to zennit's float64
/// result is at most 3× zennit's own float32 distance to it and the maps agree in direction
/// (cosine ≥ 0.99999).
pub fn parity(ours: &[f32], zennit32: &[f32], zennit64: &[f32]) -> Result<String, String> {
    let err32 = max_rel(ours, zennit32);
    let ours64 = max_rel(ours, zennit64);
    let zennit_own = max_rel(zennit32, zennit64);
    let cos = cosine(ours, zennit32);
    let report = format!(
        "max rel vs zennit f32 {err32:.2e}; vs zennit f64: ours {ours64:.2e}, zennit f32 {zennit_own:.2e}; cosine {cos:.9}"
    );
    if err32 <= 1e-4 || (ours64 <= 3.0 * zennit_own && cos >= 0.99999) {
        Ok(report)
    } else {
        Err(report)
    }
}
