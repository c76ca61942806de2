//! Optimisers on flat parameter tensors with PyTorch's update formulas, so a step here equals a
//! step of `torch.optim` on the same gradients, and their state can be saved and resumed.
//!
//! burn's optimisers work on its `Module` records; ours update the flat
//! [`ParamStore`](crate::graph::ParamStore) by key, and their state is a plain map of named
//! tensors that goes into our checkpoints.

use std::collections::BTreeMap;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::graph::import::NamedTensor;
use crate::tensor::{from_vec, to_vec};

/// Which update rule, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum OptimizerKind {
    /// `torch.optim.SGD` with momentum μ (dampening 0, no Nesterov):
    /// `g ← ∇ + λθ; b ← μb + g (b = g at the first step); θ ← θ − η·b`.
    Sgd {
        /// Momentum μ (0 for plain SGD).
        momentum: f32,
    },
    /// `torch.optim.Adam` (Kingma & Ba 2015; no AMSGrad): `g ← ∇ + λθ; m ← β₁m + (1−β₁)g;
    /// v ← β₂v + (1−β₂)g²; θ ← θ − η/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
    Adam {
        /// β₁.
        beta1: f32,
        /// β₂.
        beta2: f32,
        /// ε.
        eps: f32,
    },
}

impl OptimizerKind {
    /// SGD with momentum 0.9.
    pub fn sgd() -> Self {
        OptimizerKind::Sgd { momentum: 0.9 }
    }
    /// Adam with PyTorch's defaults (0.9, 0.999, 1e-8).
    pub fn adam() -> Self {
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
    /// By name: `sgd` or `adam`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sgd" => Some(Self::sgd()),
            "adam" => Some(Self::adam()),
            _ => None,
        }
    }
}

/// Per-parameter state.
#[derive(Clone, Debug, Default)]
struct Slot {
    /// Momentum buffer (SGD) or first moment `m` (Adam).
    first: Option<Tensor<1>>,
    /// Second moment `v` (Adam).
    second: Option<Tensor<1>>,
    /// Steps taken for this parameter.
    steps: u64,
}

/// An optimiser with its state.
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// Update rule.
    pub kind: OptimizerKind,
    /// L2 penalty λ added to the gradient (PyTorch's `weight_decay`).
    pub weight_decay: f32,
    slots: BTreeMap<String, Slot>,
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(kind: OptimizerKind, weight_decay: f32) -> Self {
        Optimizer {
            kind,
            weight_decay,
            slots: BTreeMap::new(),
        }
    }

    /// Updates parameter `key` with value `param` and gradient `grad` at learning rate `lr`;
    /// returns the new value.
    pub fn step(&mut self, key: &str, param: Tensor<1>, grad: Tensor<1>, lr: f32) -> Tensor<1> {
        let grad = if self.weight_decay != 0.0 {
            grad.add(param.clone().mul_scalar(self.weight_decay))
        } else {
            grad
        };
        let slot = self.slots.entry(key.to_string()).or_default();
        slot.steps += 1;
        match self.kind {
            OptimizerKind::Sgd { momentum } => {
                let direction = if momentum != 0.0 {
                    let b = match slot.first.take() {
                        None => grad,
                        Some(b) => b.mul_scalar(momentum).add(grad),
                    };
                    slot.first = Some(b.clone());
                    b
                } else {
                    grad
                };
                param.sub(direction.mul_scalar(lr))
            }
            OptimizerKind::Adam { beta1, beta2, eps } => {
                let m = match slot.first.take() {
                    None => grad.clone().mul_scalar(1.0 - beta1),
                    Some(m) => m
                        .mul_scalar(beta1)
                        .add(grad.clone().mul_scalar(1.0 - beta1)),
                };
                let g2 = grad.square().mul_scalar(1.0 - beta2);
                let v = match slot.second.take() {
                    None => g2,
                    Some(v) => v.mul_scalar(beta2).add(g2),
                };
                let t = slot.steps as i32;
                let bc1 = 1.0 - (beta1 as f64).powi(t);
                let bc2_sqrt = (1.0 - (beta2 as f64).powi(t)).sqrt();
                let step_size = (lr as f64 / bc1) as f32;
                let denom = v.clone().sqrt().div_scalar(bc2_sqrt as f32).add_scalar(eps);
                slot.first = Some(m.clone());
                slot.second = Some(v);
                param.sub(m.div(denom).mul_scalar(step_size))
            }
        }
    }

    /// The state as named tensors (`<key>/first`, `<key>/second`, `<key>/steps`) for a checkpoint.
    pub fn state_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for (key, slot) in &self.slots {
            for (name, t) in [("first", &slot.first), ("second", &slot.second)] {
                if let Some(t) = t {
                    let values = to_vec(t);
                    out.push(NamedTensor {
                        key: format!("{key}/{name}"),
                        shape: vec![values.len()],
                        values,
                    });
                }
            }
            out.push(NamedTensor {
                key: format!("{key}/steps"),
                shape: vec![1],
                values: vec![slot.steps as f32],
            });
        }
        out
    }

    /// Restores state written by [`Optimizer::state_tensors`].
    pub fn load_state(&mut self, tensors: Vec<NamedTensor>) -> Result<(), String> {
        self.slots.clear();
        for t in tensors {
            let (key, part) = t
                .key
                .rsplit_once('/')
                .ok_or_else(|| format!("bad optimiser state key '{}'", t.key))?;
            let slot = self.slots.entry(key.to_string()).or_default();
            let n = t.values.len();
            match part {
                "first" => slot.first = Some(from_vec(t.values, [n])),
                "second" => slot.second = Some(from_vec(t.values, [n])),
                "steps" => slot.steps = t.values[0] as u64,
                other => return Err(format!("bad optimiser state part '{other}'")),
            }
        }
        Ok(())
    }
}

/// Learning-rate schedule over epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// `η_e = η·(1 + cos(π·e/E))/2` (`CosineAnnealingLR` with `T_max = E`, stepped per epoch).
    Cosine,
    /// `η_e = η·γ^⌊e/s⌋` (`StepLR`).
    Step {
        /// Epochs per step `s`.
        every: usize,
        /// Factor γ.
        gamma: f32,
    },
}

impl Schedule {
    /// Learning rate in epoch `epoch` (0-based) of `epochs`.
    pub fn lr(&self, base: f32, epoch: usize, epochs: usize) -> f32 {
        match *self {
            Schedule::Constant => base,
            Schedule::Cosine => {
                let t = epoch as f64 / epochs.max(1) as f64;
                (base as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
            }
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
        }
    }
}
