//! LRP treatment of the nodes that are not conv/linear layers: zennit's Pass rule (activations),
//! its Norm rule (average pooling) and the plain gradient for everything a composite leaves alone
//! (max pooling, reshapes, dropout, BatchNorm that could not be folded), written so that a signal
//! with more rows than the one-row forward pass (CRP's batched concepts) is handled.

use super::kernel::stabilized_ratio;
use super::rules::STABILIZER;
use crate::engine::forward::Aux;
use crate::engine::gradient::{adaptive_avgpool_adjoint, avgpool_adjoint, reduce_to};
use crate::engine::{EngineError, Gradient, Rule, RuleCtx};
use crate::graph::Op;
use crate::tensor::T4;

/// zennit's `Pass`: the relevance at the output is the relevance at the input (used on
/// activation functions, so that relevance is not multiplied by their derivative).
pub struct Pass;

impl Rule for Pass {
    fn backward(&self, _ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError> {
        Ok(vec![Some(signal)])
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn reads_inputs(&self) -> bool {
        false
    }
}

/// zennit's `Norm` on average pooling: `R_in = x ⊙ Pᵀ(R / stabilize(P x))`, the share of each
/// input in the window average it contributed to (P the pooling operator, ε = 10⁻⁶).
pub struct Norm;

impl Rule for Norm {
    fn backward(&self, ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let x = ctx.input(0)?;
        let z = ctx.output()?.clone();
        let s = stabilized_ratio(signal, z, STABILIZER);
        let rows = s.dims()[0];
        let x_rows = with_rows(x, rows);
        let back = match ctx.op() {
            Op::AvgPool2d(p) => avgpool_adjoint(s, &x_rows, p)?,
            Op::AdaptiveAvgPool2d { .. } => adaptive_avgpool_adjoint(s, &x_rows),
            other => {
                return Err(EngineError::Unsupported(format!(
                    "the Norm rule on a {} node",
                    other.kind()
                )));
            }
        };
        Ok(vec![Some(x.clone().mul(back))])
    }
}

/// The exact gradient (zennit's behaviour for modules without a rule), extended to signals with
/// more rows than the forward pass for the ops whose gradient depends on the input's shape.
pub struct Grad;

impl Rule for Grad {
    fn backward(&self, ctx: &RuleCtx, g: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let rows = g.dims()[0];
        if rows == ctx.output()?.dims()[0] {
            return Gradient.backward(ctx, g);
        }
        let one = |t: T4| Ok(vec![Some(t)]);
        match ctx.op() {
            Op::Flatten | Op::Reshape(_) => {
                let [_, c, h, w] = ctx.input(0)?.dims();
                one(g.reshape([rows, c, h, w]))
            }
            Op::MaxPool2d(p) => {
                let Some(Aux::MaxPoolIndices(idx)) = &ctx.acts.aux[ctx.id] else {
                    return Err(EngineError::Invalid(
                        "max-pool indices were not kept".into(),
                    ));
                };
                // The kernel shares one batch row of indices across the signal's rows.
                let mut dims = ctx.input(0)?.dims();
                dims[0] = rows;
                one(crate::engine::kernels::max_pool2d_adjoint(g, dims, p, idx))
            }
            Op::AvgPool2d(p) => one(avgpool_adjoint(g, &with_rows(ctx.input(0)?, rows), p)?),
            Op::AdaptiveAvgPool2d { .. } => {
                one(adaptive_avgpool_adjoint(g, &with_rows(ctx.input(0)?, rows)))
            }
            Op::Add => {
                let (a, b) = (ctx.input(0)?.dims(), ctx.input(1)?.dims());
                Ok(vec![
                    Some(reduce_to(g.clone(), [rows, a[1], a[2], a[3]])),
                    Some(reduce_to(g, [rows, b[1], b[2], b[3]])),
                ])
            }
            Op::Mul => {
                let (a, b) = (ctx.input(0)?.clone(), ctx.input(1)?.clone());
                let (da, db) = (a.dims(), b.dims());
                let ga =
                    ctx.wanted[0].then(|| reduce_to(g.clone().mul(b), [rows, da[1], da[2], da[3]]));
                let gb = ctx.wanted[1].then(|| reduce_to(g.mul(a), [rows, db[1], db[2], db[3]]));
                Ok(vec![ga, gb])
            }
            // Every other op's gradient is element-wise or reads only spatial sizes, and
            // broadcasts a one-row forward pass over the signal's rows.
            _ => Gradient.backward(ctx, g),
        }
    }
}

/// `x` viewed with `rows` rows (a broadcast view when `x` has one row).
pub fn with_rows(x: &T4, rows: usize) -> T4 {
    let [n, c, h, w] = x.dims();
    if n == rows {
        x.clone()
    } else {
        x.clone().expand([rows, c, h, w])
    }
}
