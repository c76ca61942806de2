//! Named parameters of a model, keyed like a PyTorch `state_dict`.

use std::collections::BTreeMap;

use burn::prelude::*;

use super::GraphError;
use crate::tensor::{from_vec, numel, to_vec};

/// One parameter: its logical shape and its values, stored flat so that every rank shares one
/// representation (training, loading and canonizers treat all parameters alike).
#[derive(Clone, Debug)]
pub struct Param {
    /// Logical shape, e.g. `[64, 3, 7, 7]` for a convolution weight.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Tensor<1>,
}

impl Param {
    /// A parameter from host values; fails if the count does not match the shape.
    pub fn from_values(values: Vec<f32>, shape: Vec<usize>) -> Result<Self, GraphError> {
        if values.len() != numel(&shape) {
            return Err(GraphError::Invalid(format!(
                "parameter of shape {shape:?} needs {} values, got {}",
                numel(&shape),
                values.len()
            )));
        }
        let n = values.len();
        Ok(Param {
            shape,
            data: from_vec(values, [n]),
        })
    }

    /// Host copy of the values.
    pub fn values(&self) -> Vec<f32> {
        to_vec(&self.data)
    }
}

/// All parameters of a model, by state-dict key.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    params: BTreeMap<String, Param>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces a parameter.
    pub fn insert(&mut self, key: impl Into<String>, param: Param) {
        self.params.insert(key.into(), param);
    }

    /// Inserts host values with a shape.
    pub fn insert_values(
        &mut self,
        key: impl Into<String>,
        values: Vec<f32>,
        shape: Vec<usize>,
    ) -> Result<(), GraphError> {
        self.insert(key, Param::from_values(values, shape)?);
        Ok(())
    }

    /// The parameter under `key`.
    pub fn get(&self, key: &str) -> Result<&Param, GraphError> {
        self.params
            .get(key)
            .ok_or_else(|| GraphError::MissingParam(key.to_string()))
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.params.contains_key(key)
    }

    /// Removes and returns a parameter.
    pub fn remove(&mut self, key: &str) -> Option<Param> {
        self.params.remove(key)
    }

    /// The parameter as a rank-`D` tensor in its logical shape (a view; no copy).
    pub fn tensor<const D: usize>(&self, key: &str) -> Result<Tensor<D>, GraphError> {
        let p = self.get(key)?;
        if p.shape.len() != D {
            return Err(GraphError::Invalid(format!(
                "parameter '{key}' has shape {:?}, expected rank {D}",
                p.shape
            )));
        }
        let mut shape = [0usize; D];
        shape.copy_from_slice(&p.shape);
        Ok(p.data.clone().reshape(shape))
    }

    /// Host values of a parameter.
    pub fn values(&self, key: &str) -> Result<Vec<f32>, GraphError> {
        Ok(self.get(key)?.values())
    }

    /// Iterates over `(key, param)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Param)> {
        self.params.iter()
    }

    /// Iterates mutably over `(key, param)` in key order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Param)> {
        self.params.iter_mut()
    }

    /// Number of parameters (tensors, not scalars).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when no parameter is stored.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Total number of scalar values.
    pub fn scalar_count(&self) -> usize {
        self.params.values().map(|p| numel(&p.shape)).sum()
    }
}
