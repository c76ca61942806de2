//! Guided backprop on SiLU networks: by default SiLU keeps its exact gradient (as in
//! pytorch-grad-cam) and the prepared method warns; `silu=guided` passes
//! `max(g, 0)·max(SiLU'(x), 0)`, checked here against that closed form on a model whose
//! backward signal is known by hand.

use std::path::PathBuf;

use relevance::graph::{GraphBuilder, Model, ModelCard, Op, ParamStore};
use relevance::methods::{MethodOptions, MethodSpec};
use relevance::tensor::{from_vec, to_vec};

/// input `[1, 2, 2, 2]` → SiLU → global average pool → flatten → fc (2 → 2, no bias).
/// For target class `t` the signal reaching SiLU's output at channel `c` is `w[t, c] / 4`.
fn silu_model(weights: [f32; 4]) -> Model {
    let mut b = GraphBuilder::new(2);
    let x = b.input();
    let x = b.unary("act", Op::Silu, x);
    let x = b.adaptive_avgpool("avgpool", x, [1, 1]);
    let x = b.flatten("flatten", x, 2);
    let x = b.linear("fc", x, 2, 2, false);
    let graph = b.finish(x);
    let mut params = ParamStore::new();
    params
        .insert_values("fc.weight", weights.to_vec(), vec![2, 2])
        .unwrap();
    graph.check_params(&params).unwrap();
    Model {
        graph,
        params,
        card: ModelCard {
            num_classes: 2,
            channels: 2,
            input_size: [2, 2],
            ..ModelCard::default()
        },
        source: PathBuf::new(),
    }
}

fn silu_slope(x: f64) -> f64 {
    let s = 1.0 / (1.0 + (-x).exp());
    s * (1.0 + x * (1.0 - s))
}

const INPUT: [f32; 8] = [-3.0, -1.5, -0.5, 0.7, 2.0, -2.2, -4.0, 1.1];

fn explain(model: &Model, spec: &str, target: usize) -> (Vec<f32>, Vec<String>) {
    let spec = MethodSpec::parse(spec, &MethodOptions::default()).unwrap();
    let prepared = spec.prepare(model).unwrap();
    let x = from_vec(INPUT.to_vec(), [1, 2, 2, 2]);
    let explanation = prepared.explain(&x, &[target]).unwrap();
    (to_vec(&explanation.maps), prepared.warnings())
}

#[test]
fn guided_silu_follows_the_closed_form() {
    // Channel 0 gets a positive signal, channel 1 a negative one (target 0).
    let model = silu_model([0.8, -1.2, 0.3, 0.5]);
    let (map, warnings) = explain(&model, "guided-backprop(silu=guided)", 0);
    assert!(warnings.is_empty(), "{warnings:?}");
    for (i, (&got, &x)) in map.iter().zip(INPUT.iter()).enumerate() {
        let g = if i < 4 { 0.8 / 4.0 } else { -1.2 / 4.0 };
        let expected = f64::max(g, 0.0) * silu_slope(x as f64).max(0.0);
        assert!(
            (got as f64 - expected).abs() < 1e-6,
            "element {i}: {got} vs {expected}"
        );
    }
    // SiLU'(x) < 0 below x ≈ −1.28: x = −3 and −1.5 are cut although their signal is positive.
    assert!(silu_slope(-1.5) < 0.0 && map[0] == 0.0 && map[1] == 0.0);
}

#[test]
fn default_guided_keeps_the_silu_gradient_and_warns() {
    let model = silu_model([0.8, -1.2, 0.3, 0.5]);
    let (map, warnings) = explain(&model, "guided-backprop", 0);
    for (i, (&got, &x)) in map.iter().zip(INPUT.iter()).enumerate() {
        let g = if i < 4 { 0.8 / 4.0 } else { -1.2 / 4.0 };
        let expected = g * silu_slope(x as f64);
        assert!(
            (got as f64 - expected).abs() < 1e-6,
            "element {i}: {got} vs {expected}"
        );
    }
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("silu ×1") && warnings[0].contains("silu=guided"),
        "{}",
        warnings[0]
    );
    let (_, none) = explain(&model, "saliency", 0);
    assert!(none.is_empty(), "only guided methods warn");
}
