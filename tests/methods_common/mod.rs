//! Shared by the `methods_*` tests: the reference models and inputs of
//! `tools/fixtures_methods.py`, fixture loading and error measures.
#![allow(dead_code)]

use std::path::PathBuf;

use relevance::graph::init::reference_params;
use relevance::graph::{Model, ModelCard, zoo};
use relevance::tensor::{T4, from_vec};

/// `tests/fixtures/methods/<name>.npy` as `(shape, values)`.
pub fn fixture(name: &str) -> (Vec<usize>, Vec<f32>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/methods")
        .join(format!("{name}.npy"));
    relevance::data::npy::read_npy(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `meta.json` of the fixtures.
pub fn meta() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/methods/meta.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Targets used for a model's fixtures.
pub fn targets(model: &str) -> Vec<usize> {
    meta()[model]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

/// A zoo architecture with 10 classes and the reference weights (Python twin:
/// `tools/reference_weights.py`).
pub fn reference_model(arch: &str, h: usize, w: usize) -> Model {
    let graph = zoo::build(arch, 10, 3).unwrap();
    let params = reference_params(&graph).unwrap();
    Model {
        graph,
        params,
        card: ModelCard {
            arch: Some(arch.into()),
            num_classes: 10,
            input_size: [h, w],
            ..Default::default()
        },
        source: PathBuf::new(),
    }
}

/// Twin of `reference_input` in `tools/fixtures_methods.py`:
/// `1.2 sin(0.11 y + 0.07 x (1 + 0.3 c) + 1.3 i) + 0.6 cos(0.05 (y − x) + 0.9 c + i)`.
pub fn reference_input(n: usize, c: usize, h: usize, w: usize) -> T4 {
    let mut v = Vec::with_capacity(n * c * h * w);
    for i in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let (i, ch, y, x) = (i as f64, ch as f64, y as f64, x as f64);
                    let val = 1.2 * (0.11 * y + 0.07 * x * (1.0 + 0.3 * ch) + 1.3 * i).sin()
                        + 0.6 * (0.05 * (y - x) + 0.9 * ch + i).cos();
                    v.push(val as f32);
                }
            }
        }
    }
    from_vec(v, [n, c, h, w])
}

/// `‖a − b‖₂ / ‖b‖₂`.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

/// `max |a − b|`.
pub fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
}
