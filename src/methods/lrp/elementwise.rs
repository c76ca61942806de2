//! LRP treatment of the nodes that are not conv/linear layers: zennit's Pass rule (activations,
//! BatchNorm that could not be folded) and its Norm rule (average pooling), written so that a
//! signal with more rows than the one-row forward pass (CRP's batched concepts) is handled.
//! Everything a composite leaves alone (max pooling, reshapes, dropout, concatenation) keeps the
//! engine's
//! [`crate::engine::Gradient`], which handles such signals too.

use super::kernel::stabilized_ratio;
use super::rules::STABILIZER;
use crate::engine::gradient::{adaptive_avgpool_adjoint, avgpool_adjoint, reduce_to, with_rows};
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

/// The input's dims with the signal's row count, for reducing a broadcast signal onto it.
fn rows_like(input: &T4, signal: &T4) -> [usize; 4] {
    let mut dims = input.dims();
    dims[0] = signal.dims()[0];
    dims
}

/// The product of two activations `y = a ⊙ b` by the uniform rule of AttnLRP (Achtibat et
/// al. 2024, "AttnLRP: attention-aware layer-wise relevance propagation for transformers",
/// Proposition 3.3): each factor receives half of the relevance, `R_a = R_b = R/2`, summed
/// over the axes it was broadcast along. Conservative. (A product with a sigmoid gate keeps
/// the gradient, the squeeze-excitation treatment; see `Composite::rules`.)
pub struct UniformSplit;

impl Rule for UniformSplit {
    fn backward(&self, ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let half = signal.mul_scalar(0.5);
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        Ok(vec![
            Some(reduce_to(half.clone(), rows_like(a, &half))),
            Some(reduce_to(half.clone(), rows_like(b, &half))),
        ])
    }
    fn reads_output(&self) -> bool {
        false
    }
}

/// A quotient of two activations `y = a / b` with the denominator held constant (AttnLRP,
/// Achtibat et al. 2024, as for the normalisation of softmax and LayerNorm): `y` is then the
/// linear map `a ↦ a/b`, whose ε-rule gives the numerator all of the relevance,
/// `R_a = a/b · R / stabilize(y) = R` (summed over the axes `a` was broadcast along), and the
/// denominator none. Conservative.
pub struct Numerator;

impl Rule for Numerator {
    fn backward(&self, ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let a = ctx.input(0)?;
        let dims = rows_like(a, &signal);
        Ok(vec![Some(reduce_to(signal, dims)), None])
    }
    fn reads_output(&self) -> bool {
        false
    }
}
