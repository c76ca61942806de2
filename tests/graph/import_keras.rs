//! Keras 3 models exported the way Keras documents (`model.export` as a SavedModel, then
//! tf2onnx): small models built from the layers of the Keras applications (fixtures from
//! `tools/fixtures_keras.py`), at opsets 13 and 17. relevance's logits and input gradient are
//! compared with Keras's forward pass and `GradientTape`. tf2onnx leaves values in NHWC with
//! transposes around each convolution; the importer tracks those layouts instead of executing
//! them, including a `ZeroPadding2D` pad applied to an NHWC value (MobileNetV3's pattern).

use relevance::engine::{forward, predict};
use relevance::graph::Model;
use relevance::graph::card::Layout;
use relevance::methods::gradient::input_gradient;
use relevance::methods::registry::METHODS;
use relevance::methods::{MethodOptions, MethodSpec};
use relevance::tensor::{T4, max_rel_diff, to_vec};

use crate::onnx_fixtures::FixtureDir;

/// The logit whose input gradient the fixtures hold.
const TARGET: usize = 3;

const FIXTURES: FixtureDir = FixtureDir("keras");

fn load(name: &str) -> Model {
    FIXTURES.load(name)
}

fn npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    FIXTURES.npy(name)
}

fn input(name: &str) -> T4 {
    FIXTURES.input(name)
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
        let x = input(name);
        let logits = to_vec(&predict(&model.graph, &model.params, x.clone()).unwrap());
        let (_, want) = npy(&format!("{name}.logits.npy"));
        let err = max_rel_diff(&logits, &want);
        println!("{name}: logits rel. error {err:.2e}");
        assert!(err < 1e-4, "{name}: logits {logits:?} vs Keras {want:?}");
        let acts = forward(&model.graph, &model.params, x).unwrap();
        let grad = to_vec(&input_gradient(&model, &acts, &[TARGET]).unwrap());
        let (_, want) = npy(&format!("{name}.grad.npy"));
        let err = max_rel_diff(&grad, &want);
        println!("{name}: input gradient rel. error {err:.2e}");
        assert!(err < 1e-4, "{name}: input gradient rel. error {err}");
    }
}

#[test]
fn every_method_runs_on_keras_graphs_with_finite_maps_of_the_input_size() {
    for name in ["mobile.17", "resnet_v2.17"] {
        let model = load(name);
        let x = input(name);
        for info in METHODS {
            let options = MethodOptions {
                steps: 2,
                samples: 2,
                ..MethodOptions::default()
            };
            let spec = MethodSpec::parse(info.name, &options).unwrap();
            let prepared = spec
                .prepare(&model)
                .unwrap_or_else(|e| panic!("{name} {}: {e}", info.name));
            let maps = prepared
                .explain(&x, &[TARGET])
                .unwrap_or_else(|e| panic!("{name} {}: {e}", info.name))
                .maps;
            let [_, _, h, w] = maps.dims();
            assert_eq!([h, w], [32, 32], "{name} {}", info.name);
            assert!(
                to_vec(&maps).iter().all(|v| v.is_finite()),
                "{name} {}: non-finite map",
                info.name
            );
        }
    }
}
