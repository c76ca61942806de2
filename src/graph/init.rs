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
