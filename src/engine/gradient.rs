//! The exact derivative of every op (the default rule), and the adjoint operators it is built
//! from, which LRP rules reuse with modified weights.

use burn::prelude::*;
use burn::tensor::module::avg_pool2d_backward;

use super::backward::{Rule, RuleCtx};
use super::forward::{Aux, batchnorm_affine, channel_view};
use super::{EngineError, imported, kernels};
use crate::graph::{Op, Pool2d};
use crate::tensor::{T4, from_vec};

/// Vector–Jacobian product of each op: `∂L/∂x = Jᵀ ∂L/∂y`. Also the rule LRP composites leave
/// on nodes without one (zennit's behaviour), so it accepts a signal with more rows than the
/// forward pass had (CRP's batched concepts of one image): every term read from the one-row
/// forward pass then broadcasts over the signal's rows ([`broadcast_rows`]).
pub struct Gradient;

impl Rule for Gradient {
    fn backward(&self, ctx: &RuleCtx, g: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let rows = g.dims()[0];
        match ctx.output() {
            Ok(out) if out.dims()[0] != rows => broadcast_rows(ctx, g, rows),
            _ => exact(ctx, g),
        }
    }
}

/// The gradient for a signal with as many rows as the forward pass.
fn exact(ctx: &RuleCtx, g: T4) -> Result<Vec<Option<T4>>, EngineError> {
    let params = ctx.params;
    let one = |t: T4| Ok(vec![Some(t)]);
    match ctx.op() {
        Op::Input | Op::Constant(_) => Ok(vec![]),
        Op::Conv2d(c) => {
            let x = ctx.input(0)?;
            let [_, _, h, w] = x.dims();
            one(kernels::conv2d_input_adjoint(
                g,
                params.tensor::<4>(&c.weight)?,
                c,
                [h, w],
            ))
        }
        Op::Linear(l) => one(linear_input_adjoint(g, params.tensor::<2>(&l.weight)?)),
        Op::BatchNorm(bn) => {
            let (scale, _) = batchnorm_affine(bn, params)?;
            match kernels::channel_affine(&g, &crate::tensor::to_vec(&scale), None) {
                Some(dx) => one(dx),
                None => one(g.mul(channel_view(scale))),
            }
        }
        Op::Relu => {
            let y = ctx.output()?;
            // One fused pass where possible; the same values as the composed mask product.
            let fused = kernels::zip_map(&g, y, |g, y| g * if y > 0.0 { 1.0 } else { 0.0 });
            one(fused.unwrap_or_else(|| g.mul(y.clone().greater_elem(0.0).float())))
        }
        Op::Clip { min, max } => {
            let x = ctx.input(0)?.clone();
            let inside = x
                .clone()
                .greater_elem(*min)
                .float()
                .mul(x.lower_elem(*max).float());
            one(g.mul(inside))
        }
        Op::Silu => {
            let x = ctx.input(0)?.clone();
            let s = super::forward::sigmoid(x.clone());
            // d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
            let d = s
                .clone()
                .mul(x.mul(s.neg().add_scalar(1.0)).add_scalar(1.0));
            one(g.mul(d))
        }
        Op::Sigmoid => {
            let y = ctx.output()?.clone();
            one(g.mul(y.clone().mul(y.neg().add_scalar(1.0))))
        }
        Op::Tanh => {
            let y = ctx.output()?.clone();
            one(g.mul(y.square().neg().add_scalar(1.0)))
        }
        Op::MaxPool2d(p) => {
            let Some(Aux::MaxPoolIndices(idx)) = &ctx.acts.aux[ctx.id] else {
                return Err(EngineError::Invalid(
                    "max-pool indices were not kept".into(),
                ));
            };
            one(kernels::max_pool2d_adjoint(g, ctx.input(0)?.dims(), p, idx))
        }
        Op::AvgPool2d(p) => one(avgpool_adjoint(g, ctx.input(0)?, p)?),
        Op::AdaptiveAvgPool2d { .. } => one(adaptive_avgpool_adjoint(g, ctx.input(0)?)),
        Op::Flatten | Op::Reshape(_) => {
            let dims = ctx.input(0)?.dims();
            one(g.reshape(dims))
        }
        Op::Permute(perm) => {
            let mut inverse = [0usize; 4];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            one(g.permute(inverse))
        }
        Op::Add => {
            let (a, b) = (ctx.input(0)?.dims(), ctx.input(1)?.dims());
            Ok(vec![Some(reduce_to(g.clone(), a)), Some(reduce_to(g, b))])
        }
        Op::Mul => {
            let (a, b) = (ctx.input(0)?.clone(), ctx.input(1)?.clone());
            let (da, db) = (a.dims(), b.dims());
            let ga = ctx.wanted[0].then(|| reduce_to(g.clone().mul(b), da));
            let gb = ctx.wanted[1].then(|| reduce_to(g.mul(a), db));
            Ok(vec![ga, gb])
        }
        Op::Div => {
            // ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b²; each reduced to its input's shape (with the
            // signal's rows).
            let (a, b) = (ctx.input(0)?.clone(), ctx.input(1)?.clone());
            let rows = g.dims()[0];
            let (da, db) = (
                with_row_count(a.dims(), rows),
                with_row_count(b.dims(), rows),
            );
            let gb = ctx.wanted[1].then(|| {
                let q = a.div(b.clone().square()).neg();
                reduce_to(g.clone().mul(q), db)
            });
            let ga = ctx.wanted[0].then(|| reduce_to(g.div(b), da));
            Ok(vec![ga, gb])
        }
        Op::Unary(f) => {
            let (x, y) = (ctx.input(0)?, ctx.output()?);
            one(g.mul(imported::unary_derivative(*f, x, y)))
        }
        Op::Expand(_) => {
            let rows = g.dims()[0];
            one(reduce_to(g, with_row_count(ctx.input(0)?.dims(), rows)))
        }
        Op::Concat => {
            let mut start = 0;
            let mut outs = Vec::new();
            for i in 0..ctx.node().inputs.len() {
                let c = ctx.input(i)?.dims()[1];
                outs.push(Some(g.clone().narrow(1, start, c)));
                start += c;
            }
            Ok(outs)
        }
        Op::Identity | Op::Dropout { .. } => one(g),
        Op::Softmax => {
            let y = ctx.output()?.clone();
            let dot = g.clone().mul(y.clone()).sum_dim(1);
            one(y.mul(g.sub(dot)))
        }
        Op::LayerNorm(ln) => one(imported::layer_norm_adjoint(g, ctx.input(0)?, ln, params)?),
        Op::Gelu => one(g.mul(imported::gelu_derivative(ctx.input(0)?.clone()))),
        op @ (Op::LeakyRelu { .. } | Op::Elu { .. } | Op::PRelu { .. }) => {
            one(g.mul(imported::activation_derivative(op, ctx.input(0)?, params)?))
        }
        Op::ChannelShuffle { groups } => one(imported::channel_shuffle_adjoint(g, *groups)?),
        Op::ChannelSlice { start, .. } => {
            let channels = ctx.input(0)?.dims()[1];
            one(imported::channel_slice_adjoint(g, *start, channels))
        }
        Op::ChannelMean => {
            let [_, c, h, w] = ctx.input(0)?.dims();
            one(imported::channel_mean_adjoint(g, c, [h, w]))
        }
        Op::Pad { pads, mode } => {
            let [_, _, h, w] = ctx.input(0)?.dims();
            one(imported::pad_adjoint(g, *pads, *mode, [h, w]))
        }
        Op::Resize(r) => {
            let [_, _, h, w] = ctx.input(0)?.dims();
            one(imported::resize_adjoint(g, r, [h, w]))
        }
    }
}

/// `dims` with the batch dimension set to `rows`.
fn with_row_count(mut dims: [usize; 4], rows: usize) -> [usize; 4] {
    dims[0] = rows;
    dims
}

/// Sums `g` over the dimensions where `target` has size 1 (the adjoint of broadcasting).
pub fn reduce_to(mut g: T4, target: [usize; 4]) -> T4 {
    let dims = g.dims();
    for d in 0..4 {
        if target[d] == 1 && dims[d] != 1 {
            g = g.sum_dim(d);
        }
    }
    g
}

/// Adjoint of `y = x Wᵀ` on `[N, F, 1, 1]`: `g W`.
pub fn linear_input_adjoint(g: T4, weight: Tensor<2>) -> T4 {
    if let Some(dx) = crate::engine::kernels::linear_input_adjoint(&g, &weight) {
        return dx;
    }
    let [n, out, _, _] = g.dims();
    let [_, inp] = weight.dims();
    g.reshape([n, out]).matmul(weight).reshape([n, inp, 1, 1])
}

/// Adjoint of average pooling.
pub fn avgpool_adjoint(g: T4, x: &T4, p: &Pool2d) -> Result<T4, EngineError> {
    let [t, l, b, r] = p.padding;
    if t != b || l != r {
        return Err(EngineError::Unsupported(
            "average pooling with asymmetric padding".into(),
        ));
    }
    Ok(avg_pool2d_backward(
        x.clone(),
        g,
        p.kernel,
        p.stride,
        [t, l],
        p.count_include_pad,
        p.ceil_mode,
    ))
}

/// The `[out, in]` averaging matrix of torch's adaptive average pooling along one axis: output
/// `i` averages inputs `⌊i·in/out⌋ .. ⌈(i+1)·in/out⌉`.
pub fn adaptive_pool_matrix(input: usize, output: usize) -> Tensor<2> {
    let mut m = vec![0.0f32; output * input];
    for i in 0..output {
        let start = i * input / output;
        let end = ((i + 1) * input).div_ceil(output);
        let w = 1.0 / (end - start) as f32;
        for j in start..end {
            m[i * input + j] = w;
        }
    }
    from_vec(m, [output, input])
}

/// Adjoint of adaptive average pooling, `Pₕᵀ g P_w` per channel.
pub fn adaptive_avgpool_adjoint(g: T4, x: &T4) -> T4 {
    let [n, c, h, w] = x.dims();
    let [_, _, oh, ow] = g.dims();
    if oh == 1 && ow == 1 {
        return g.div_scalar((h * w) as f32).expand([n, c, h, w]);
    }
    let ph = adaptive_pool_matrix(h, oh).to_device(&g.device());
    let pw = adaptive_pool_matrix(w, ow).to_device(&g.device());
    let g3 = g.reshape([n * c, oh, ow]);
    let left = ph.transpose().unsqueeze::<3>().matmul(g3); // [NC, H, ow]
    left.matmul(pw.unsqueeze::<3>()).reshape([n, c, h, w])
}

/// The gradient of a signal with `rows` rows through a node whose forward pass had one row:
/// reshapes and pooling adjoints take the signal's row count, sums and products reduce to each
/// input's shape; every other op's gradient is element-wise or reads only spatial sizes and
/// broadcasts.
fn broadcast_rows(ctx: &RuleCtx, g: T4, rows: usize) -> Result<Vec<Option<T4>>, EngineError> {
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
        _ => exact(ctx, g),
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
