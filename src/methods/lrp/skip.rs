//! Relevance at residual sums `y = h_m + h_s` (ResNet skip connections), three ways.
//!
//! - [`SkipMode::Zennit`]: zennit's ResNet canonizer rewrites the sum as a `Sum` module with the
//!   Norm rule, `R_i = h_i · R / stabilize(h_m + h_s)`: signed shares that add up to `R` but can
//!   be large and of opposite signs when the branches cancel.
//! - [`SkipMode::Split`]: Relevance Splitting (Otsuki et al., 2024, "Layer-Wise Relevance
//!   Propagation with Conservation Property for ResNet"): `R_i = R · |h_i| / (|h_m| + |h_s|)`,
//!   shares of the same sign as `R` that add up to `R` exactly (`R/2` each where both are zero).
//! - [`SkipMode::Symmetric`]: `R/2` to each branch, whatever they computed.
//!
//! `h_m` is the residual branch's output (after its last BatchNorm) and `h_s` the shortcut's
//! (the block input, or the downsampling conv + BatchNorm, whose conv then gets the composite's
//! conv rule like any other).

use std::fmt;
use std::str::FromStr;

use super::kernel::{product, stabilized_ratio};
use super::rules::STABILIZER;
use crate::engine::gradient::reduce_to;
use crate::engine::kernels::{self, epilogue::stabilized_quotient};
use crate::engine::{EngineError, Rule, RuleCtx};
use crate::graph::{Graph, NodeId, Op};
use crate::tensor::T4;

/// How relevance crosses a residual sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SkipMode {
    /// zennit's ResNet canonizer (Norm rule on the sum). The default, for parity with zennit.
    #[default]
    Zennit,
    /// Relevance Splitting by absolute contributions (Otsuki et al. 2024).
    Split,
    /// Half to each branch.
    Symmetric,
}

impl SkipMode {
    /// Names accepted by [`SkipMode::from_str`].
    pub const NAMES: &'static [&'static str] = &["zennit", "split", "symmetric"];
}

impl fmt::Display for SkipMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipMode::Zennit => "zennit",
            SkipMode::Split => "split",
            SkipMode::Symmetric => "symmetric",
        })
    }
}

impl FromStr for SkipMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zennit" => Ok(SkipMode::Zennit),
            "split" => Ok(SkipMode::Split),
            "symmetric" => Ok(SkipMode::Symmetric),
            _ => Err(format!(
                "unknown ResNet skip mode '{s}'; valid: {}",
                SkipMode::NAMES.join(", ")
            )),
        }
    }
}

/// Whether node `id` is a candidate residual sum: an `Add` of two computed (non-constant)
/// tensors. Sums with a constant (bias adds of imported graphs) keep the gradient, as a plain
/// `torch.add` does under zennit; sums that broadcast are left to the gradient by the rule.
pub fn is_residual_sum(graph: &Graph, id: NodeId) -> bool {
    let node = &graph.nodes[id];
    node.op == Op::Add
        && node
            .inputs
            .iter()
            .all(|&i| !matches!(graph.nodes[i].op, Op::Constant(_)))
}

/// The ε-rule on the terms of a broadcasting sum: each term's share `h_i ⊙ R / stabilize(z)`,
/// reduced onto the term's shape (with the signal's rows). Conservative up to the stabiliser.
fn broadcast_sum_shares(ctx: &RuleCtx, r: T4) -> Result<Vec<Option<T4>>, EngineError> {
    let s = stabilized_ratio(r, ctx.output()?.clone(), STABILIZER);
    let rows = s.dims()[0];
    let share = |h: &T4| {
        let mut dims = h.dims();
        dims[0] = rows;
        reduce_to(h.clone().mul(s.clone()), dims)
    };
    Ok(vec![Some(share(ctx.input(0)?)), Some(share(ctx.input(1)?))])
}

/// The rule for a residual sum in a given mode.
pub struct SkipRule {
    /// How the relevance is shared.
    pub mode: SkipMode,
}

impl Rule for SkipRule {
    fn backward(&self, ctx: &RuleCtx, r: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        if a.dims()[1..] != b.dims()[1..] {
            // A broadcasting sum is not a skip connection: the ε-rule on its terms,
            // `R_i = h_i ⊙ R / stabilize(z)` summed over the axes `h_i` was broadcast along.
            return broadcast_sum_shares(ctx, r);
        }
        let (ra, rb) = match self.mode {
            SkipMode::Zennit => {
                let z = ctx.output()?;
                // One pass: s = R / stabilize(z), then a · s and b · s — the same operations as
                // the ratio and the two products apart.
                let fused = kernels::zip4_map2([&r, z, a, b], |r, z, a, b| {
                    let s = stabilized_quotient(r, z, STABILIZER);
                    (a * s, b * s)
                });
                match fused {
                    Some(shares) => shares,
                    None => {
                        let s = stabilized_ratio(r, z.clone(), STABILIZER);
                        (product(a, s.clone()), product(b, s))
                    }
                }
            }
            SkipMode::Split => {
                let (abs_a, abs_b) = (a.clone().abs(), b.clone().abs());
                let total = abs_a.clone().add(abs_b.clone());
                let zero = total.clone().equal_elem(0.0);
                // Where both branches are zero the shares are 1/2 each; elsewhere |h_i|/Σ|h|.
                let safe = total.add(zero.clone().float());
                let half = zero.clone().float().mul_scalar(0.5);
                let share_a = abs_a.div(safe.clone()).add(half.clone());
                let share_b = abs_b.div(safe).add(half);
                (r.clone().mul(share_a), r.mul(share_b))
            }
            SkipMode::Symmetric => {
                let half = r.mul_scalar(0.5);
                (half.clone(), half)
            }
        };
        Ok(vec![Some(ra), Some(rb)])
    }
}
