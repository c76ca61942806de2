//! LRP treatment of the nodes that are not conv/linear layers: zennit's Pass rule (activations,
//! BatchNorm that could not be folded) and its Norm rule (average pooling), written so that a
//! signal with more rows than the one-row forward pass (CRP's batched concepts) is handled.
//! Everything a composite leaves alone (max pooling, reshapes, dropout, concatenation) keeps the
//! engine's
//! [`crate::engine::Gradient`], which handles such signals too.

use super::kernel::stabilized_ratio;
use super::rules::STABILIZER;
use crate::engine::gradient::{adaptive_avgpool_adjoint, avgpool_adjoint, with_rows};
use crate::engine::{EngineError, Rule, RuleCtx};
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
/// input in the window average it contributed to (P the pooling operator, ε = 10⁻⁶); also on a
/// mean over the channels (P the channel average) and on a resize (P the interpolation map
/// `A_H · x · A_Wᵀ`). This is the z-rule of a bias-free linear map with non-negative weights,
/// so it conserves relevance up to the stabiliser; for nearest upsampling it sums the
/// relevance of the copies back onto the source pixel.
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
            Op::ChannelMean => {
                let [_, c, h, w] = x.dims();
                crate::engine::imported::channel_mean_adjoint(s, c, [h, w])
            }
            Op::Resize(r) => {
                let [_, _, h, w] = x.dims();
                crate::engine::imported::resize_adjoint(s, r, [h, w])
            }
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

/// LayerNorm with its normalisation's `1/σ` held constant (Ali et al. 2022, "XAI for
/// Transformers: better explanations through conservative propagation"; Achtibat et al. 2024,
/// "AttnLRP", the identity rule on the normalisation): the layer is then the linear map
/// `y = γ ⊙ (x − mean_C x) / σ + β`, explained by the ε-rule
/// `R_x = x ⊙ Jᵀ(R / stabilize(y))`, `Jᵀs = (γ ⊙ s − mean_C(γ ⊙ s)) / σ`. Without β it is
/// conservative at every position (`Σ_C R_x = Σ_C R_y` up to ε).
pub struct LayerNormRule;

impl Rule for LayerNormRule {
    fn backward(&self, ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let Op::LayerNorm(ln) = ctx.op() else {
            return Err(EngineError::Unsupported(format!(
                "the LayerNorm rule on a {} node",
                ctx.op().kind()
            )));
        };
        let x = ctx.input(0)?;
        let s = stabilized_ratio(signal, ctx.output()?.clone(), STABILIZER);
        let (_, inv_std) = crate::engine::imported::layer_norm_parts(x, ln.eps);
        let s = match crate::engine::imported::layer_norm_affine(ln, ctx.params)?.0 {
            Some(gamma) => s.mul(gamma),
            None => s,
        };
        let mean = s.clone().mean_dim(1);
        Ok(vec![Some(x.clone().mul(s.sub(mean).mul(inv_std)))])
    }
}
