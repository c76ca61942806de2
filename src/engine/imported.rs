//! Forward pass and exact derivative of the ops that imported models bring beyond the zoo's:
//! layer normalisation over channels, GELU, channel shuffle and slices, and spatial padding.
//! [`super::forward`] and [`super::gradient`] call these; LRP rules reuse the pieces.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

use super::EngineError;
use super::forward::channel_view;
use crate::graph::{
    CoordinateMode, LayerNorm, NearestRounding, PadMode, ParamStore, Resize, ResizeMode, Unary,
};
use crate::tensor::T4;

/// The normalised input `x̂ = (x − μ) / √(σ² + ε)` over channels, and `1 / √(σ² + ε)`
/// (`[N, 1, H, W]`).
pub fn layer_norm_parts(x: &T4, eps: f32) -> (T4, T4) {
    let mean = x.clone().mean_dim(1);
    let centred = x.clone().sub(mean);
    let var = centred.clone().square().mean_dim(1);
    let inv_std = var.add_scalar(eps).sqrt().recip();
    (centred.mul(inv_std.clone()), inv_std)
}

/// γ and β of a LayerNorm as `[1, C, 1, 1]` views (absent ones are `None`).
pub fn layer_norm_affine(
    ln: &LayerNorm,
    params: &ParamStore,
) -> Result<(Option<T4>, Option<T4>), EngineError> {
    let view = |k: &Option<String>| -> Result<Option<T4>, EngineError> {
        k.as_deref()
            .map(|k| params.tensor::<1>(k).map(channel_view))
            .transpose()
            .map_err(Into::into)
    };
    Ok((view(&ln.weight)?, view(&ln.bias)?))
}

/// LayerNorm over channels: `x̂ · γ + β` ([`crate::graph::LayerNorm`]).
pub fn layer_norm(x: T4, ln: &LayerNorm, params: &ParamStore) -> Result<T4, EngineError> {
    let (xhat, _) = layer_norm_parts(&x, ln.eps);
    let (gamma, beta) = layer_norm_affine(ln, params)?;
    let y = match gamma {
        Some(g) => xhat.mul(g),
        None => xhat,
    };
    Ok(match beta {
        Some(b) => y.add(b),
        None => y,
    })
}

/// Vector–Jacobian product of LayerNorm over channels: with `g' = g ⊙ γ`,
/// `∂L/∂x = (g' − mean_C g' − x̂ · mean_C(g' ⊙ x̂)) / √(σ² + ε)`. `g` may have more rows than
/// the one-row forward input `x` (the row terms broadcast).
pub fn layer_norm_adjoint(
    g: T4,
    x: &T4,
    ln: &LayerNorm,
    params: &ParamStore,
) -> Result<T4, EngineError> {
    let (xhat, inv_std) = layer_norm_parts(x, ln.eps);
    let g = match layer_norm_affine(ln, params)?.0 {
        Some(gamma) => g.mul(gamma),
        None => g,
    };
    let mean_g = g.clone().mean_dim(1);
    let mean_gx = g.clone().mul(xhat.clone()).mean_dim(1);
    Ok(g.sub(mean_g).sub(xhat.mul(mean_gx)).mul(inv_std))
}

/// `x · Φ(x) = ½ x (1 + erf(x/√2))`.
pub fn gelu(x: T4) -> T4 {
    let phi = x
        .clone()
        .mul_scalar(std::f32::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    x.mul(phi)
}

/// `d/dx x·Φ(x) = Φ(x) + x·φ(x)` with φ the standard normal density.
pub fn gelu_derivative(x: T4) -> T4 {
    let phi_cdf = x
        .clone()
        .mul_scalar(std::f32::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    let density = x
        .clone()
        .square()
        .mul_scalar(-0.5)
        .exp()
        .mul_scalar(0.398_942_3); // 1/√(2π)
    phi_cdf.add(x.mul(density))
}

/// `x` above zero, `below(x)` elsewhere, as masks (NaN stays NaN through the masks' sum).
fn piecewise(x: T4, below: T4) -> T4 {
    let positive = x.clone().greater_elem(0.0).float();
    x.mul(positive.clone())
        .add(below.mul(positive.neg().add_scalar(1.0)))
}

/// Leaky ReLU: `x` for `x > 0`, `α·x` otherwise.
pub fn leaky_relu(x: T4, alpha: f32) -> T4 {
    piecewise(x.clone(), x.mul_scalar(alpha))
}

/// ELU / SELU: `scale·x` for `x > 0`, `scale·α·(eˣ − 1)` otherwise.
pub fn elu(x: T4, alpha: f32, scale: f32) -> T4 {
    let below = x.clone().exp().sub_scalar(1.0).mul_scalar(alpha);
    piecewise(x, below).mul_scalar(scale)
}

/// PReLU with slopes `[C]` (or one shared slope).
pub fn prelu(x: T4, slope: &str, params: &ParamStore) -> Result<T4, EngineError> {
    let a = params.tensor::<1>(slope)?;
    Ok(piecewise(x.clone(), x.mul(channel_view(a))))
}

/// Derivative of a function that is `x` above zero and has derivative `below` elsewhere.
fn piecewise_derivative(x: &T4, below: T4) -> T4 {
    let positive = x.clone().greater_elem(0.0).float();
    positive
        .clone()
        .add(below.mul(positive.neg().add_scalar(1.0)))
}

/// `∂/∂x` of [`leaky_relu`], [`elu`] and [`prelu`] (at 0 the left derivative, as torch).
pub fn activation_derivative(
    op: &crate::graph::Op,
    x: &T4,
    params: &ParamStore,
) -> Result<T4, EngineError> {
    use crate::graph::Op;
    let ones = || x.clone().mul_scalar(0.0).add_scalar(1.0);
    Ok(match op {
        Op::LeakyRelu { alpha } => piecewise_derivative(x, ones().mul_scalar(*alpha)),
        Op::Elu { alpha, scale } => {
            piecewise_derivative(x, x.clone().exp().mul_scalar(*alpha)).mul_scalar(*scale)
        }
        Op::PRelu { slope } => {
            let a = channel_view(params.tensor::<1>(slope)?);
            piecewise_derivative(x, ones().mul(a))
        }
        other => {
            return Err(EngineError::Unsupported(format!(
                "activation derivative of {}",
                other.kind()
            )));
        }
    })
}

/// ShuffleNet's channel shuffle: `[N, g·k, H, W]` viewed as `[N, g, k, HW]`, groups and
/// members swapped. Its inverse is the shuffle with `k` groups.
pub fn channel_shuffle(x: T4, groups: usize) -> Result<T4, EngineError> {
    let [n, c, h, w] = x.dims();
    if groups == 0 || !c.is_multiple_of(groups) {
        return Err(EngineError::Shape(format!(
            "channel shuffle of {c} channels in {groups} groups"
        )));
    }
    Ok(x.reshape([n, groups, c / groups, h * w])
        .swap_dims(1, 2)
        .reshape([n, c, h, w]))
}

/// Adjoint of [`channel_shuffle`] (its inverse, a shuffle with `C / groups` groups).
pub fn channel_shuffle_adjoint(g: T4, groups: usize) -> Result<T4, EngineError> {
    let c = g.dims()[1];
    channel_shuffle(g, c / groups.max(1))
}

/// Adjoint of the mean over `c` channels: the signal spread evenly over them.
pub fn channel_mean_adjoint(g: T4, c: usize, [h, w]: [usize; 2]) -> T4 {
    let n = g.dims()[0];
    g.div_scalar(c as f32).expand([n, c, h, w])
}

/// Channels `start .. start + len`.
pub fn channel_slice(x: T4, start: usize, len: usize) -> Result<T4, EngineError> {
    let c = x.dims()[1];
    if start + len > c || len == 0 {
        return Err(EngineError::Shape(format!(
            "channels {start}..{} of a {c}-channel tensor",
            start + len
        )));
    }
    Ok(x.narrow(1, start, len))
}

/// Adjoint of [`channel_slice`]: the signal placed at its channels, zeros elsewhere.
pub fn channel_slice_adjoint(g: T4, start: usize, channels: usize) -> T4 {
    let [n, len, h, w] = g.dims();
    let device = g.device();
    let mut parts = Vec::with_capacity(3);
    if start > 0 {
        parts.push(Tensor::zeros([n, start, h, w], &device));
    }
    parts.push(g);
    let after = channels - start - len;
    if after > 0 {
        parts.push(Tensor::zeros([n, after, h, w], &device));
    }
    Tensor::cat(parts, 1)
}

/// `xᵖ`: integer exponents by repeated products (exact for negative bases, as torch),
/// others by `exp(p·ln x)` (NaN below zero, as torch).
fn power(x: T4, p: f32) -> T4 {
    if p.fract() == 0.0 && p.abs() <= 64.0 {
        x.powi_scalar(p as i32)
    } else {
        x.powf_scalar(p)
    }
}

/// The element-wise function `f` ([`Unary`]).
pub fn unary(x: T4, f: Unary) -> T4 {
    match f {
        Unary::Neg => x.neg(),
        Unary::Abs => x.abs(),
        Unary::Sqrt => x.sqrt(),
        Unary::Pow(p) => power(x, p),
        Unary::Reciprocal => x.recip(),
        Unary::Exp => x.exp(),
    }
}

/// `f′(x)` from the input `x` and the output `y = f(x)`: −1; sign(x) (0 at 0, as torch);
/// `1/(2y)`; `p·xᵖ⁻¹`; `−y²`; `y`.
pub fn unary_derivative(f: Unary, x: &T4, y: &T4) -> T4 {
    match f {
        Unary::Neg => x.clone().mul_scalar(0.0).sub_scalar(1.0),
        Unary::Abs => x.clone().sign(),
        Unary::Sqrt => y.clone().mul_scalar(2.0).recip(),
        Unary::Pow(p) => power(x.clone(), p - 1.0).mul_scalar(p),
        Unary::Reciprocal => y.clone().square().neg(),
        Unary::Exp => y.clone(),
    }
}

/// For each position of a padded axis of `size` values padded by `before` and `after`, the
/// input position it copies (reflect: mirror without repeating the edge; edge: clamp).
fn pad_sources(size: usize, before: usize, after: usize, mode: PadMode) -> Vec<i64> {
    let last = size as i64 - 1;
    (0..before + size + after)
        .map(|p| {
            let i = p as i64 - before as i64;
            match mode {
                PadMode::Reflect if last > 0 => {
                    // Fold the index into [0, last] by reflection (period 2·last).
                    let period = 2 * last;
                    let m = i.rem_euclid(period);
                    if m > last { period - m } else { m }
                }
                _ => i.clamp(0, last.max(0)),
            }
        })
        .collect()
}

fn index_tensor(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let len = v.len();
    Tensor::<1, Int>::from_data(TensorData::new(v, [len]), device)
}

/// Spatial padding `[top, left, bottom, right]` filled as `mode` says.
pub fn pad(x: T4, pads: [usize; 4], mode: PadMode) -> T4 {
    let [t, l, b, r] = pads;
    if let PadMode::Constant(value) = mode {
        return x.pad((l, r, t, b), burn::tensor::ops::PadMode::Constant(value));
    }
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let rows = index_tensor(pad_sources(h, t, b, mode), &device);
    let cols = index_tensor(pad_sources(w, l, r, mode), &device);
    x.select(2, rows).select(3, cols)
}

/// Adjoint of [`pad`] to an input of spatial size `[h, w]`: the border's signal is added back
/// onto the positions it copied (none for a constant pad).
pub fn pad_adjoint(g: T4, pads: [usize; 4], mode: PadMode, [h, w]: [usize; 2]) -> T4 {
    let [t, l, b, r] = pads;
    if let PadMode::Constant(_) = mode {
        return g.narrow(2, t, h).narrow(3, l, w);
    }
    let [n, c, _, pw] = g.dims();
    let device = g.device();
    let rows = index_tensor(pad_sources(h, t, b, mode), &device);
    let cols = index_tensor(pad_sources(w, l, r, mode), &device);
    let by_rows =
        Tensor::zeros([n, c, h, pw], &device).select_assign(2, rows, g, IndexingUpdateOp::Add);
    Tensor::zeros([n, c, h, w], &device).select_assign(3, cols, by_rows, IndexingUpdateOp::Add)
}

/// The source coordinate of output pixel `i` along an axis resized from `input` to `output`
/// pixels with scale `scale` (ONNX's `coordinate_transformation_mode` formulas).
fn source_coordinate(
    i: usize,
    input: usize,
    output: usize,
    scale: f32,
    mode: CoordinateMode,
) -> f32 {
    let i = i as f32;
    match mode {
        CoordinateMode::HalfPixel => (i + 0.5) / scale - 0.5,
        CoordinateMode::PytorchHalfPixel if output > 1 => (i + 0.5) / scale - 0.5,
        CoordinateMode::PytorchHalfPixel => 0.0,
        CoordinateMode::AlignCorners if output > 1 => {
            i * (input as f32 - 1.0) / (output as f32 - 1.0)
        }
        CoordinateMode::AlignCorners => 0.0,
        CoordinateMode::Asymmetric => i / scale,
    }
}

/// The `[output, input]` interpolation matrix (row-major) of one axis of a [`Resize`]: row `i`
/// holds a one at the nearest source pixel, or the linear weights `1 − t` and `t` at the two
/// source pixels around the coordinate clamped to `[0, input − 1]` (torch's and ONNX
/// Runtime's border handling). Every entry is non-negative and every row sums to one.
pub fn resize_matrix(input: usize, output: usize, scale: f32, r: &Resize) -> Vec<f32> {
    let mut m = vec![0.0f32; output * input];
    let last = input.saturating_sub(1);
    for i in 0..output {
        let x = source_coordinate(i, input, output, scale, r.coordinates);
        let row = &mut m[i * input..(i + 1) * input];
        match r.mode {
            ResizeMode::Nearest(rounding) => {
                let j = match rounding {
                    NearestRounding::Floor => x.floor(),
                    NearestRounding::Ceil => x.ceil(),
                    NearestRounding::RoundPreferFloor if x.fract() == 0.5 => x.floor(),
                    NearestRounding::RoundPreferFloor => x.round(),
                    NearestRounding::RoundPreferCeil => (x + 0.5).floor(),
                };
                row[(j.max(0.0) as usize).min(last)] = 1.0;
            }
            ResizeMode::Linear => {
                let x = x.clamp(0.0, last as f32);
                let j0 = (x.floor() as usize).min(last);
                let j1 = (j0 + 1).min(last);
                let t = x - j0 as f32;
                row[j0] += 1.0 - t;
                row[j1] += t;
            }
        }
    }
    m
}

/// The two axis matrices of `r` for an input of spatial size `[h, w]`, as `[out, in]` tensors.
fn resize_matrices(r: &Resize, [h, w]: [usize; 2], device: &Device) -> (Tensor<2>, Tensor<2>) {
    let [oh, ow] = r.size;
    let a_h = Tensor::from_data(
        TensorData::new(resize_matrix(h, oh, r.scale[0], r), [oh, h]),
        device,
    );
    let a_w = Tensor::from_data(
        TensorData::new(resize_matrix(w, ow, r.scale[1], r), [ow, w]),
        device,
    );
    (a_h, a_w)
}

/// [`Resize`]: `y = A_H · x · A_Wᵀ` for every image and channel.
pub fn resize(x: T4, r: &Resize) -> T4 {
    let [n, c, h, w] = x.dims();
    let [oh, ow] = r.size;
    let (a_h, a_w) = resize_matrices(r, [h, w], &x.device());
    let planes = x.reshape([n * c, h, w]);
    let rows = a_h.unsqueeze::<3>().matmul(planes); // [NC, oH, W]
    rows.matmul(a_w.transpose().unsqueeze::<3>())
        .reshape([n, c, oh, ow])
}

/// Adjoint of [`resize`] to an input of spatial size `[h, w]`: `A_Hᵀ · g · A_W` (for nearest
/// upsampling, each source pixel sums the signal of the output pixels that copied it).
pub fn resize_adjoint(g: T4, r: &Resize, [h, w]: [usize; 2]) -> T4 {
    let [n, c, oh, ow] = g.dims();
    let (a_h, a_w) = resize_matrices(r, [h, w], &g.device());
    let planes = g.reshape([n * c, oh, ow]);
    let rows = a_h.transpose().unsqueeze::<3>().matmul(planes); // [NC, H, oW]
    rows.matmul(a_w.unsqueeze::<3>()).reshape([n, c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_and_edge_sources_follow_onnx() {
        // ONNX Pad on [1, 2, 3] with pads 2, 2: reflect [3, 2, 1, 2, 3, 2, 1]; edge [1, 1, 1, 2, 3, 3, 3].
        assert_eq!(
            pad_sources(3, 2, 2, PadMode::Reflect),
            vec![2, 1, 0, 1, 2, 1, 0]
        );
        assert_eq!(
            pad_sources(3, 2, 2, PadMode::Edge),
            vec![0, 0, 0, 1, 2, 2, 2]
        );
    }
}
