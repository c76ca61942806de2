//! Keras 3 models exported the way Keras documents (`model.export` as a SavedModel, then
//! tf2onnx): small models built from the layers of the Keras applications (fixtures from
//! `tools/fixtures_keras.py`), at opsets 13 and 17. relevance's logits and input gradient are
//! compared with Keras's forward pass and `GradientTape`. tf2onnx leaves values in NHWC with
//! transposes around each convolution; the importer tracks those layouts instead of executing
//! them, including a `ZeroPadding2D` pad applied to an NHWC value (MobileNetV3's pattern).

use relevance::graph::Model;
use relevance::graph::card::Layout;

use crate::onnx_fixtures::FixtureDir;

/// The logit whose input gradient the fixtures hold.
const TARGET: usize = 3;

const FIXTURES: FixtureDir = FixtureDir("keras");

fn load(name: &str) -> Model {
    FIXTURES.load(name)
}

const EXPORTS: [&str; 4] = ["mobile.13", "mobile.17", "resnet_v2.13", "resnet_v2.17"];

#[test]
fn keras_models_through_tf2onnx_match_keras_logits_and_gradients() {
    for name in EXPORTS {
        let model = load(name);
        assert_eq!(
            model.card.layout,
            Layout::Nhwc,
            "{name}: NHWC input recognised"
        );
        FIXTURES.assert_reference_parity(name, &model, TARGET);
    }
}

#[test]
fn every_method_runs_on_keras_graphs_with_finite_maps_of_the_input_size() {
    for name in ["mobile.17", "resnet_v2.17"] {
        FIXTURES.assert_every_method_runs(name, &load(name), TARGET);
    }
}
