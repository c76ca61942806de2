//! LRP rules for convolutions and fully connected layers, as zennit 1.0.0 defines them (the
//! classic Gamma rule of zennit 0.4.6 kept by name).
//!
//! For a layer `z = W a + b` every rule is `R_in = Σ_k m_k(a) ⊙ W_kᵀ (R / stabilize(z'))`: the
//! relevance `R` at the output is divided by a (modified) output `z'`, sent back through the
//! (modified) transposed weights and multiplied by the (modified) input. With `a⁺ = max(a, 0)`,
//! `a⁻ = min(a, 0)`, `W⁺ = max(W, 0)`, `W⁻ = min(W, 0)` and zennit's `stabilize(z) = z ± ε`
//! (`+ε` for `z ≥ 0`, `ε = 10⁻⁶` unless the rule says otherwise):
//!
//! | rule | `z'` | `R_in` |
//! |---|---|---|
//! | Epsilon(ε) | `W a + b` | `a ⊙ Wᵀ s` |
//! | ZPlus | `W⁺a⁺ + b⁺ + W⁻a⁻` | `a⁺ ⊙ W⁺ᵀ s + a⁻ ⊙ W⁻ᵀ s` |
//! | AlphaBeta(α, β) | `z⁺ = W⁺a⁺ + b⁺ + W⁻a⁻`, `z⁻ = W⁻a⁺ + b⁻ + W⁺a⁻` | `α(a⁺ ⊙ W⁺ᵀ s⁺ + a⁻ ⊙ W⁻ᵀ s⁺) − β(a⁺ ⊙ W⁻ᵀ s⁻ + a⁻ ⊙ W⁺ᵀ s⁻)` |
//! | Gamma(γ) (generalized) | `z↑ = W↑a⁺ + b↑ + W↓a⁻` where `z > 0`, `z↓ = W↓a⁺ + b↓ + W↑a⁻` where `z < 0` | `a⁺ ⊙ (W↑ᵀ s↑ + W↓ᵀ s↓) + a⁻ ⊙ (W↓ᵀ s↑ + W↑ᵀ s↓)` |
//! | GammaClassic(γ) | `W↑ a + b↑` | `a ⊙ W↑ᵀ s` |
//! | Flat | `1ᵀ 1` (all-ones weights and input, no bias) | `1ᵀ s` |
//! | WSquare | `W² 1 + b²` | `W²ᵀ s` |
//! | ZBox(l, h) | `W a + b − (W⁺l + b⁺) − (W⁻h + b⁻)` | `a ⊙ Wᵀ s − l ⊙ W⁺ᵀ s − h ⊙ W⁻ᵀ s` |
//!
//! with `s = R / stabilize(z')`, `W↑ = W + γW⁺`, `b↑ = b + γb⁺`, `W↓ = W + γW⁻`, `b↓ = b + γb⁻`.
//! The generalized Gamma rule (Montavon et al. 2019; Andéol et al. 2021; zennit 1.0's `Gamma`)
//! splits the relevance by the sign of the layer's output `z = W a + b`: `s↑ = R·[z > 0] / stabilize(z↑)`,
//! `s↓ = R·[z < 0] / stabilize(z↓)`, so a negative output is explained by what pushed it down,
//! boosted, and its denominator keeps the output's sign. The classic form (zennit 0.4.6) divides
//! every output by `W↑a + b↑`, whose sign can differ from `z`'s: where relevance reaches negative
//! outputs (a residual sum before its ReLU) the quotient explodes (zennit issue #148). For inputs
//! `a ≥ 0` and outputs `z > 0` both forms agree. Modified weights are derived once per prepared model
//! ([`LayerWeights`]); outputs that do not depend on the image (Flat, WSquare, the bound terms of
//! ZBox) once per input size. Inputs that are all non-negative (everything after a ReLU) skip
//! the `a⁻` terms, which are exactly zero there.
//!
//! The signal may carry more rows than the cached forward pass when the forward pass has one
//! row (CRP runs many masked relevances of one image at once): every term computed from the
//! forward pass then has one row and broadcasts over the signal's rows.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use burn::prelude::*;

use super::kernel::{LayerWeights, Weights, spatial, stabilized_ratio};
use crate::engine::{EngineError, Rule, RuleCtx};
use crate::graph::{Graph, NodeId, Op, ParamStore};
use crate::tensor::T4;

/// zennit's default stabiliser of every rule other than Epsilon.
pub const STABILIZER: f32 = 1e-6;

/// A rule for a convolution or fully connected layer, with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum LinearRule {
    /// LRP-ε (Bach et al. 2015); ε = 0 is LRP-0.
    Epsilon {
        /// Stabiliser added to the output with its sign.
        epsilon: f32,
    },
    /// LRP-z⁺ (α = 1, β = 0; Montavon et al. 2017).
    ZPlus,
    /// LRP-αβ with α − β = 1 (Bach et al. 2015).
    AlphaBeta {
        /// Weight of the positive contributions.
        alpha: f32,
        /// Weight of the negative contributions.
        beta: f32,
    },
    /// Generalized LRP-γ (Montavon et al. 2019, Andéol et al. 2021; zennit 1.0.0): the
    /// contributions that push an output away from zero boosted by γ, separately for positive
    /// and negative outputs.
    Gamma {
        /// Boost of the contributions with the output's sign.
        gamma: f32,
    },
    /// Classic LRP-γ as zennit 0.4.6 implements it: positive weights boosted by γ, one
    /// denominator `(W + γW⁺) a + b + γb⁺` for every output.
    GammaClassic {
        /// Boost of the positive weights.
        gamma: f32,
    },
    /// Flat (Lapuschkin et al. 2019): relevance spread uniformly over the receptive field.
    Flat,
    /// W²-rule (Montavon et al. 2017).
    WSquare,
    /// z^B-rule (Montavon et al. 2017) for inputs bounded in `[low, high]`, per input channel
    /// (one value applies to all channels).
    ZBox {
        /// Lowest input value per channel.
        low: Vec<f32>,
        /// Highest input value per channel.
        high: Vec<f32>,
    },
}

impl LinearRule {
    /// Short name for messages and run records.
    pub fn name(&self) -> String {
        match self {
            LinearRule::Epsilon { epsilon } => format!("epsilon({epsilon})"),
            LinearRule::ZPlus => "zplus".into(),
            LinearRule::AlphaBeta { alpha, beta } => format!("alpha{alpha}-beta{beta}"),
            LinearRule::Gamma { gamma } => format!("gamma({gamma})"),
            LinearRule::GammaClassic { gamma } => format!("gamma-classic({gamma})"),
            LinearRule::Flat => "flat".into(),
            LinearRule::WSquare => "wsquare".into(),
            LinearRule::ZBox { .. } => "zbox".into(),
        }
    }
}

/// A [`LinearRule`] bound to one node, with that node's derived weights and per-size caches.
pub struct LinearLrp {
    rule: LinearRule,
    weights: LayerWeights,
    /// `W↑ = W + γW⁺`, `b↑ = b + γb⁺` for the Gamma rules.
    boosted: OnceLock<Weights>,
    /// `W↓ = W + γW⁻`, `b↓ = b + γb⁻` for the generalized Gamma rule.
    boosted_negative: OnceLock<Weights>,
    /// Image-independent `z'` terms by input `[C, H, W]` (Flat, WSquare, ZBox bounds).
    constant_z: Mutex<HashMap<[usize; 3], T4>>,
}

impl LinearLrp {
    /// Binds `rule` to node `node` of a graph with parameters `params`.
    pub fn new(
        rule: LinearRule,
        op: &Op,
        params: &ParamStore,
        node: NodeId,
    ) -> Result<Self, EngineError> {
        if let LinearRule::AlphaBeta { alpha, beta } = rule
            && (alpha < 0.0 || beta < 0.0 || (alpha - beta - 1.0).abs() > 1e-6)
        {
            return Err(EngineError::Invalid(format!(
                "node {node}: the alpha-beta rule needs α, β ≥ 0 and α − β = 1, got α = {alpha}, β = {beta}"
            )));
        }
        Ok(LinearLrp {
            rule,
            weights: LayerWeights::new(op, params)?,
            boosted: OnceLock::new(),
            boosted_negative: OnceLock::new(),
            constant_z: Mutex::new(HashMap::new()),
        })
    }

    /// The rule.
    pub fn rule(&self) -> &LinearRule {
        &self.rule
    }

    /// A `z'` term that depends only on the input size, computed once per size.
    fn constant(
        &self,
        x: &T4,
        make: impl FnOnce([usize; 4]) -> Result<T4, EngineError>,
    ) -> Result<T4, EngineError> {
        let [_, c, h, w] = x.dims();
        let mut cache = self.constant_z.lock().expect("cache lock");
        if let Some(z) = cache.get(&[c, h, w]) {
            return Ok(z.clone());
        }
        let z = make([1, c, h, w])?;
        cache.insert([c, h, w], z.clone());
        Ok(z)
    }

    /// `a⁺ ⊙ P ᵀ(R/z) + a⁻ ⊙ Nᵀ(R/z)` with `z = P a⁺ + [bias of P] + N a⁻` — the positive half
    /// of α-β (and z⁺) with `(P, N) = (W⁺, W⁻)`, the negative half with `(W⁻, W⁺)`.
    fn signed_half(
        &self,
        x: &T4,
        r: &T4,
        p: &Weights,
        n: &Weights,
        has_negative_input: bool,
    ) -> Result<T4, EngineError> {
        let hw = spatial(x);
        if !has_negative_input {
            let s = p.forward_ratio(x.clone(), r, STABILIZER)?;
            return Ok(p.adjoint_product(s, hw, x));
        }
        let xp = x.clone().clamp_min(0.0);
        let xn = x.clone().clamp_max(0.0);
        let z = p
            .forward(xp.clone())?
            .add(n.forward_without_bias(xn.clone())?);
        let s = stabilized_ratio(r.clone(), z, STABILIZER);
        Ok(xp
            .mul(p.adjoint(s.clone(), hw))
            .add(xn.mul(n.adjoint(s, hw))))
    }

    /// `W↑ = W + γW⁺` with `b↑ = b + γb⁺`, derived once.
    fn boosted_up(&self, gamma: f32) -> &Weights {
        self.boosted.get_or_init(|| {
            self.weights.original.map(
                |v| v.clone().add(v.clamp_min(0.0).mul_scalar(gamma)),
                |b| Some(b.clone().add(b.clamp_min(0.0).mul_scalar(gamma))),
            )
        })
    }

    /// `W↓ = W + γW⁻` with `b↓ = b + γb⁻`, derived once.
    fn boosted_down(&self, gamma: f32) -> &Weights {
        self.boosted_negative.get_or_init(|| {
            self.weights.original.map(
                |v| v.clone().add(v.clamp_max(0.0).mul_scalar(gamma)),
                |b| Some(b.clone().add(b.clamp_max(0.0).mul_scalar(gamma))),
            )
        })
    }

    fn relevance(&self, ctx: &RuleCtx, r: T4) -> Result<T4, EngineError> {
        let x = ctx.input(0)?;
        let hw = spatial(x);
        let w = &self.weights;
        Ok(match &self.rule {
            LinearRule::Epsilon { epsilon } => {
                let z = ctx.output()?.clone();
                let s = stabilized_ratio(r, z, *epsilon);
                w.original.adjoint_product(s, hw, x)
            }
            LinearRule::ZPlus => {
                let neg = may_be_negative(ctx) && has_negative(x);
                self.signed_half(x, &r, w.positive(), w.negative(), neg)?
            }
            LinearRule::AlphaBeta { alpha, beta } => {
                let neg = may_be_negative(ctx) && has_negative(x);
                let pos_part = self.signed_half(x, &r, w.positive(), w.negative(), neg)?;
                let neg_part = self.signed_half(x, &r, w.negative(), w.positive(), neg)?;
                pos_part.mul_scalar(*alpha).sub(neg_part.mul_scalar(*beta))
            }
            LinearRule::Gamma { gamma } => {
                let (up, down) = (self.boosted_up(*gamma), self.boosted_down(*gamma));
                let z = ctx.output()?;
                let neg = may_be_negative(ctx) && has_negative(x);
                // Relevance reaches outputs z ≤ 0 only where nothing zeroes it on the way (a
                // residual sum before its ReLU, the classifier); after a ReLU it is exactly zero
                // there, `R·[z > 0]` is `R` itself and the second half would add zeros.
                if !relevance_off_positive_outputs(&r, z) {
                    return self.signed_half(x, &r, up, down, neg);
                }
                let (r_up, r_down) = split_by_sign(&r, z);
                let pushed_up = self.signed_half(x, &r_up, up, down, neg)?;
                let pushed_down = self.signed_half(x, &r_down, down, up, neg)?;
                pushed_up.add(pushed_down)
            }
            LinearRule::GammaClassic { gamma } => {
                let boosted = self.boosted_up(*gamma);
                let s = boosted.forward_ratio(x.clone(), &r, STABILIZER)?;
                boosted.adjoint_product(s, hw, x)
            }
            LinearRule::Flat | LinearRule::WSquare => {
                let modified = if self.rule == LinearRule::Flat {
                    w.ones()
                } else {
                    w.squared()
                };
                let device = x.device();
                let z = self.constant(x, |dims| modified.forward(Tensor::ones(dims, &device)))?;
                if self.rule == LinearRule::Flat {
                    w.ones_adjoint_of_ratio(r, &z, STABILIZER, hw)
                } else {
                    modified.adjoint(stabilized_ratio(r, z, STABILIZER), hw)
                }
            }
            LinearRule::ZBox { low, high } => {
                let device = x.device();
                let bounds = |dims: [usize; 4], v: &[f32]| bound_tensor(dims, v, &device);
                let dims = x.dims();
                let (lo, hi) = (
                    bounds([1, dims[1], dims[2], dims[3]], low)?,
                    bounds([1, dims[1], dims[2], dims[3]], high)?,
                );
                let (lo2, hi2) = (lo.clone(), hi.clone());
                let bound_z = self.constant(x, |_| {
                    Ok(w.positive().forward(lo2)?.add(w.negative().forward(hi2)?))
                })?;
                let z = ctx.output()?.clone().sub(bound_z);
                let s = stabilized_ratio(r, z, STABILIZER);
                let own = x.clone().mul(w.original.adjoint(s.clone(), hw));
                let from_bounds = lo
                    .mul(w.positive().adjoint(s.clone(), hw))
                    .add(hi.mul(w.negative().adjoint(s, hw)));
                own.sub(from_bounds)
            }
        })
    }
}

impl Rule for LinearLrp {
    fn backward(&self, ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError> {
        Ok(vec![Some(self.relevance(ctx, signal)?)])
    }
    /// ε and z^B divide by the layer's own output and the generalized γ splits the relevance by
    /// its sign; the other rules compute their `z'`.
    fn reads_output(&self) -> bool {
        matches!(
            self.rule,
            LinearRule::Epsilon { .. } | LinearRule::ZBox { .. } | LinearRule::Gamma { .. }
        )
    }
}

/// Whether the node's input can hold a negative element at all: not when it is the output of a
/// ReLU, or of pooling, reshaping or identity-like ops applied to one (every input of VGG's
/// and ResNet's z⁺ layers but the first) — then the scan of [`has_negative`] is skipped.
fn may_be_negative(ctx: &RuleCtx) -> bool {
    fn non_negative(graph: &Graph, id: NodeId) -> bool {
        let node = &graph.nodes[id];
        match node.op {
            Op::Relu => true,
            Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::AdaptiveAvgPool2d { .. }
            | Op::Flatten
            | Op::Reshape(_)
            | Op::Permute(_)
            | Op::Identity
            | Op::Dropout { .. } => node.inputs.first().is_some_and(|&i| non_negative(graph, i)),
            _ => false,
        }
    }
    !ctx.node()
        .inputs
        .first()
        .is_some_and(|&i| non_negative(ctx.graph, i))
}

/// `(R·[z > 0], R·[z < 0])`: the relevance of positive and of negative outputs, in one pass each
/// where the tensors allow it (a one-row `z` broadcasts over the signal's rows otherwise).
fn split_by_sign(r: &T4, z: &T4) -> (T4, T4) {
    let keep = |positive: bool| {
        let fused = crate::engine::kernels::zip_map(r, z, |r, z| {
            if (positive && z > 0.0) || (!positive && z < 0.0) {
                r
            } else {
                0.0
            }
        });
        fused.unwrap_or_else(|| {
            let mask = if positive {
                z.clone().greater_elem(0.0)
            } else {
                z.clone().lower_elem(0.0)
            };
            r.clone().mul(mask.float())
        })
    };
    (keep(true), keep(false))
}

/// Whether any output `z ≤ 0` carries relevance `R ≠ 0` (one fused scan where the tensors allow
/// it; a one-row `z` broadcasts over the signal's rows otherwise).
fn relevance_off_positive_outputs(r: &T4, z: &T4) -> bool {
    crate::engine::kernels::zip_any(r, z, |r, z| r != 0.0 && z <= 0.0).unwrap_or_else(|| {
        let off = r.clone().mul(z.clone().lower_equal_elem(0.0).float());
        off.not_equal_elem(0.0).any().into_scalar::<bool>()
    })
}

/// Whether any element of `x` is negative (then the `a⁻` terms of z⁺ and α-β are needed).
fn has_negative(x: &T4) -> bool {
    crate::engine::kernels::any_negative(x)
        .unwrap_or_else(|| x.clone().lower_elem(0.0).any().into_scalar::<bool>())
}

/// A `[1, C, H, W]` tensor holding `values[c]` (or `values[0]` for every channel).
fn bound_tensor(dims: [usize; 4], values: &[f32], device: &Device) -> Result<T4, EngineError> {
    let c = dims[1];
    let per_channel: Vec<f32> = match values.len() {
        1 => vec![values[0]; c],
        n if n == c => values.to_vec(),
        n => {
            return Err(EngineError::Shape(format!(
                "z-box bounds have {n} values but the first layer has {c} input channels"
            )));
        }
    };
    let column = Tensor::<1>::from_floats(per_channel.as_slice(), device).reshape([1, c, 1, 1]);
    Ok(column.expand(dims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::from_vec;

    /// The fused scan for relevance on outputs `z ≤ 0` agrees with the composed burn ops (the
    /// broadcasting fallback of CRP's many rows): relevance only on positive outputs → false;
    /// one relevance on a zero or on a negative output, wherever it sits → true.
    #[test]
    fn relevance_off_positive_outputs_agrees_with_the_composed_ops() {
        let n = 2 * 32 * 30 * 30;
        let z: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
        let on_positive: Vec<f32> = z.iter().map(|&z| if z > 0.0 { 1.5 } else { 0.0 }).collect();
        let composed = |r: &T4, z: &T4| {
            let off = r.clone().mul(z.clone().lower_equal_elem(0.0).float());
            off.not_equal_elem(0.0).any().into_scalar::<bool>()
        };
        let zt = from_vec(z.clone(), [2, 32, 30, 30]);
        let r = from_vec(on_positive.clone(), [2, 32, 30, 30]);
        assert!(!relevance_off_positive_outputs(&r, &zt) && !composed(&r, &zt));
        for at in [0, 2, n / 2 + 1, n - 3] {
            assert!(z[at] <= 0.0);
            let mut v = on_positive.clone();
            v[at] = -1e-30;
            let r = from_vec(v, [2, 32, 30, 30]);
            assert!(relevance_off_positive_outputs(&r, &zt), "relevance at {at}");
            assert!(composed(&r, &zt));
        }
        // Three signal rows over a one-row output: the broadcasting path.
        let z1 = from_vec(z[..n / 2].to_vec(), [1, 32, 30, 30]);
        let rows: Vec<f32> = (0..3).flat_map(|_| on_positive[..n / 2].to_vec()).collect();
        assert!(!relevance_off_positive_outputs(
            &from_vec(rows.clone(), [3, 32, 30, 30]),
            &z1
        ));
        let mut hit = rows;
        hit[n / 2 + 7] = 2.0; // row 1, position 7: z = 0
        assert!(relevance_off_positive_outputs(
            &from_vec(hit, [3, 32, 30, 30]),
            &z1
        ));
    }

    /// The one-pass scan agrees with burn's comparison + `any` wherever the single negative
    /// sits (first, inside a later chunk, last), and treats −0.0 as not negative, as `< 0` does.
    #[test]
    fn has_negative_agrees_with_burns_comparison() {
        let n = 3 * 64 * 40 * 40;
        let burn_says = |x: &T4| x.clone().lower_elem(0.0).any().into_scalar::<bool>();
        let mut base: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.5).collect();
        base[5] = -0.0;
        let x = from_vec(base.clone(), [3, 64, 40, 40]);
        assert!(!has_negative(&x) && !burn_says(&x));
        for at in [0, 1 << 14, n / 2 + 3, n - 1] {
            let mut v = base.clone();
            v[at] = -1e-30;
            let x = from_vec(v, [3, 64, 40, 40]);
            assert!(has_negative(&x), "negative at {at}");
            assert_eq!(has_negative(&x), burn_says(&x));
        }
    }
}
