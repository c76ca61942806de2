//! Helpers shared by the `metrics_*` tests: fixtures, the tiny CNN twin of
//! `tools/fixtures_metrics.py`, and a plain-gradient explainer.
#![allow(dead_code)]

use std::path::PathBuf;

use relevance::engine::{Rules, backward, forward};
use relevance::graph::builder::ConvGeom;
use relevance::graph::init::reference_params;
use relevance::graph::{GraphBuilder, Model, ModelCard};
use relevance::metrics::MetricError;
use relevance::metrics::explain::{ChannelReduce, reduce_channels};
use relevance::tensor::{T4, from_vec, to_vec};
use serde_json::Value;

/// A fixture under `tests/fixtures/metrics/`.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/metrics")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tools/fixtures_metrics.py)", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of numbers as f32.
pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON array of numbers as f64.
pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A JSON array of booleans.
pub fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect()
}

/// A JSON array of integers.
pub fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// `|a − b| ≤ tol · max(1, |b|)`, with a message.
pub fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{what}: ours {a}, reference {b} (diff {})",
        (a - b).abs()
    );
}

/// The tiny CNN of `tools/fixtures_metrics.py` with the shared reference weights:
/// conv1 (1→4, 3×3) → ReLU → conv2 (4→8, 3×3, stride 2) → ReLU → flatten → fc (512→3).
pub fn tiny_model() -> Model {
    let mut b = GraphBuilder::new(1);
    let x = b.input();
    let x = b.conv("conv1", x, ConvGeom::new(4, 3).bias(true));
    let x = b.relu("relu1", x);
    let x = b.conv("conv2", x, ConvGeom::new(8, 3).stride(2).bias(true));
    let x = b.relu("relu2", x);
    let x = b.flatten("flatten", x, 512);
    let x = b.linear("fc", x, 512, 3, true);
    let graph = b.finish(x);
    graph.validate().unwrap();
    let params = reference_params(&graph).unwrap();
    Model {
        graph,
        params,
        card: ModelCard {
            num_classes: 3,
            input_size: [16, 16],
            channels: 1,
            ..ModelCard::default()
        },
        source: PathBuf::new(),
    }
}

/// The gradient of each image's target logit with respect to the input, summed over channels.
pub fn gradient_maps(model: &Model, batch: T4, targets: &[usize]) -> Result<Vec<f32>, MetricError> {
    let acts = forward(&model.graph, &model.params, batch)?;
    let logits = model.graph.logits();
    let [n, k, _, _] = acts.get(logits)?.dims();
    let mut seed = vec![0.0f32; n * k];
    for (i, &t) in targets.iter().enumerate() {
        seed[i * k + t] = 1.0;
    }
    let g = backward(
        &model.graph,
        &model.params,
        &acts,
        logits,
        from_vec(seed, [n, k, 1, 1]),
        &Rules::gradient(),
        &[model.graph.input()],
    )?;
    Ok(reduce_channels(
        &to_vec(&g[0]),
        g[0].dims(),
        ChannelReduce::Sum,
    ))
}
