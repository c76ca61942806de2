//! Fresh parameters for a graph, drawn from each [`ParamSpec`]'s initialiser with a seed.

use super::{Graph, GraphError, Init, ParamStore};
use crate::rng::Rng;
use crate::tensor::numel;

/// Fan-in of a weight shape: `C_in·kH·kW` for convolutions, `in` for linear layers.
fn fan_in(shape: &[usize]) -> usize {
    shape.iter().skip(1).product::<usize>().max(1)
}

/// Fan-out of a weight shape: `C_out·kH·kW`.
fn fan_out(shape: &[usize]) -> usize {
    shape.first().copied().unwrap_or(1) * shape.iter().skip(2).product::<usize>()
}

/// Draws every declared parameter of `graph`. Each key has its own stream derived from `seed`,
/// so adding a layer does not change the others' values.
pub fn init_params(graph: &Graph, seed: u64) -> Result<ParamStore, GraphError> {
    let mut store = ParamStore::new();
    for spec in &graph.param_specs {
        let n = numel(&spec.shape);
        let mut rng = Rng::derive(seed, &spec.key);
        let values: Vec<f32> = match spec.init {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::KaimingNormalFanOut => {
                let std = (2.0 / fan_out(&spec.shape) as f32).sqrt();
                (0..n).map(|_| rng.normal() * std).collect()
            }
            Init::TorchDefaultWeight => {
                let b = 1.0 / (fan_in(&spec.shape) as f32).sqrt();
                (0..n).map(|_| rng.uniform_range(-b, b)).collect()
            }
            Init::TorchDefaultBias { fan_in } => {
                let b = 1.0 / (fan_in.max(1) as f32).sqrt();
                (0..n).map(|_| rng.uniform_range(-b, b)).collect()
            }
            Init::Normal { std } => (0..n).map(|_| rng.normal() * std).collect(),
            Init::Uniform { a } => (0..n).map(|_| rng.uniform_range(-a, a)).collect(),
        };
        store.insert_values(spec.key.clone(), values, spec.shape.clone())?;
    }
    Ok(store)
}

/// Deterministic "reference" weights that a Python script can reproduce exactly, so parity
/// fixtures (torchvision logits, zennit relevances, pytorch-grad-cam maps) need not ship the
/// weights themselves. With `t` the rank of the key among all keys in sorted order and
/// `v_i = sin(0.731·i + 1.37·t + 0.1)` for element `i` (in f64, rounded to f32):
///
/// | parameter | value |
/// |---|---|
/// | weight of rank ≥ 2 (conv, linear) | `v·√(4 / fan_in)` (He variance 2/fan_in) |
/// | BN `weight` (rank 1) | `1 + 0.1·v` |
/// | `running_var` | `1 + 0.25·(1 + v)` |
/// | any other (biases, BN bias, `running_mean`) | `0.1·v` |
///
/// `tools/reference_weights.py` implements the same formula for PyTorch modules.
pub fn reference_params(graph: &Graph) -> Result<ParamStore, GraphError> {
    let mut keys: Vec<&super::ParamSpec> = graph.param_specs.iter().collect();
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    let mut store = ParamStore::new();
    for (t, spec) in keys.into_iter().enumerate() {
        let n = numel(&spec.shape);
        let phase = 1.37 * t as f64 + 0.1;
        let v = |i: usize| (0.731 * i as f64 + phase).sin();
        let values: Vec<f32> = if spec.shape.len() >= 2 {
            let scale = (4.0 / fan_in(&spec.shape) as f64).sqrt();
            (0..n).map(|i| (v(i) * scale) as f32).collect()
        } else if spec.key.ends_with("running_var") {
            (0..n).map(|i| (1.0 + 0.25 * (1.0 + v(i))) as f32).collect()
        } else if spec.key.ends_with(".weight") {
            (0..n).map(|i| (1.0 + 0.1 * v(i)) as f32).collect()
        } else {
            (0..n).map(|i| (0.1 * v(i)) as f32).collect()
        };
        store.insert_values(spec.key.clone(), values, spec.shape.clone())?;
    }
    Ok(store)
}
