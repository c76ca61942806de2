//! Our own CPU kernels for the passes that dominate explanation time, used in place of burn's
//! where they are measured to be faster (`relevance bench`); burn stays the tensor library and
//! runs everything else.
//!
//! Set `RELEVANCE_KERNELS=burn` to run burn's kernels everywhere (for A/B timing and checks).

pub mod autodiff;
pub mod conv;
pub mod dense;
pub mod direct;
pub mod epilogue;
mod filter_cache;
pub mod lanes;
pub mod pointwise;
pub mod pool;
mod prefetch;
pub mod simd;
mod tile_products;
pub mod transposed;
pub mod winograd;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU8, Ordering};

use rayon::prelude::*;

use burn::backend::flex::{Flex, FlexTensor};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::module::{
    conv_transpose2d, conv2d as burn_conv2d, max_pool2d_with_indices as burn_max_pool2d,
    max_pool2d_with_indices_backward,
};
use burn::tensor::ops::ConvTransposeOptions;

use crate::engine::forward::{conv_options, maxpool_options};
use crate::graph::op::{Conv2d, Pool2d};
use crate::tensor::T4;
use conv::ConvGeometry;
use epilogue::Epilogue;
use pool::PoolGeometry;

/// Kernel choice: 0 = not yet read from the environment, 1 = ours, 2 = burn's.
static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Whether our kernels are enabled: by default yes, unless `RELEVANCE_KERNELS=burn` or
/// [`set_own_kernels`] says otherwise.
pub fn own_kernels_enabled() -> bool {
    switch(&CHOICE, || {
        std::env::var("RELEVANCE_KERNELS").map_or(true, |v| !v.eq_ignore_ascii_case("burn"))
    })
}

/// A process-wide on/off switch (0 = not yet read, 1 = on, 2 = off), read from the environment
/// by `from_env` the first time.
fn switch(state: &AtomicU8, from_env: impl FnOnce() -> bool) -> bool {
    match state.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = from_env();
            state.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
    }
}

/// Switches between our kernels and burn's for the whole process (A/B checks and timings).
pub fn set_own_kernels(own: bool) {
    CHOICE.store(if own { 1 } else { 2 }, Ordering::Relaxed);
}

/// Direct-convolution choice, as [`CHOICE`].
static DIRECT: AtomicU8 = AtomicU8::new(0);

/// Whether stride-1 convolutions and their adjoints run on the direct kernel ([`direct`]) where
/// the CPU has it: by default yes, unless `RELEVANCE_DIRECT=off` (or `0`, `false`) or
/// [`set_direct`] says otherwise (then im2col).
pub fn direct_enabled() -> bool {
    switch(&DIRECT, || {
        std::env::var("RELEVANCE_DIRECT").map_or(true, |v| {
            !matches!(v.to_ascii_lowercase().as_str(), "off" | "0" | "false")
        })
    })
}

/// Switches the direct kernel on or off for the whole process (A/B checks and timings).
pub fn set_direct(on: bool) {
    DIRECT.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Winograd scope: 0 = not yet read from the environment, else a [`WinogradScope`] + 1.
static WINOGRAD: AtomicU8 = AtomicU8::new(0);

/// Which convolutions run as Winograd F(4×4, 3×3) / F(2×2, 3×3) ([`winograd`]) where the
/// geometry allows it (3×3, stride 1, ≥ 16 channels).
///
/// Winograd's rounding is relative to a whole tile and depends on a pixel's place in it, so a sum
/// that is small next to its neighbours keeps fewer correct digits, and under F(4×4) equal
/// neighbourhoods no longer give equal outputs. In the model's own forward pass that is enough
/// to flip a few near-zero ReLUs (input gradients) and max-pooling ties (LRP maps in flat
/// regions); in the rule passes of LRP/CRP (the modified forward `z'` and the adjoint `W'ᵀs`)
/// it only perturbs denominators and sums of positive terms. F(2×2) keeps the ties of flat
/// regions ([`winograd::choose_tie_preserving`]), so it runs the forward pass an LRP/CRP
/// explanation starts from, where its rounding moves the maps as much as exact summation in
/// another order does (burn's kernels against ours; docs/benchmarks.md, "How the CPU kernels work").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinogradScope {
    /// Exact im2col summation everywhere.
    Off,
    /// Winograd in the passes LRP and CRP rules add, and as F(2×2) in the forward pass of an
    /// LRP/CRP explanation ([`ConvPass::RuleForward`]); the model's forward pass elsewhere
    /// (prediction, Grad-CAM, …) and every gradient stay exact.
    Relevance,
    /// Winograd in every plain-tensor convolution and input adjoint.
    Everywhere,
}

/// Which kind of pass a convolution belongs to, for [`WinogradScope`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPass {
    /// The model's forward pass or a gradient (the numbers other libraries reproduce exactly).
    Model,
    /// The forward pass an LRP/CRP explanation starts from (its activations are what the rules
    /// read). Under [`WinogradScope::Relevance`] its eligible convolutions run as F(2×2, 3×3)
    /// only ([`winograd::choose_tie_preserving`]): that variant's input and output transforms
    /// have entries 0 and ±1 alone, so a tile whose input is constant along an axis gives
    /// outputs that are exactly equal along it, as exact summation does, and max-pooling ties
    /// in flat regions (an image's black background) resolve as they do there.
    RuleForward,
    /// A modified-weight forward or adjoint of an LRP/CRP rule.
    Relevance,
}

/// The current [`WinogradScope`]: from [`set_winograd_scope`] (the CLI's `--winograd`) or
/// `RELEVANCE_WINOGRAD` (`off`, `relevance`, `on`); unset or unreadable means
/// [`WinogradScope::Relevance`].
pub fn winograd_scope() -> WinogradScope {
    match WINOGRAD.load(Ordering::Relaxed) {
        1 => WinogradScope::Off,
        2 => WinogradScope::Relevance,
        3 => WinogradScope::Everywhere,
        _ => {
            let scope = std::env::var("RELEVANCE_WINOGRAD")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(WinogradScope::Relevance);
            set_winograd_scope(scope);
            scope
        }
    }
}

impl std::str::FromStr for WinogradScope {
    type Err = String;

    /// `off`, `relevance`, `on` (also `everywhere`, `1`, `true`, `0`, `false`), any case.
    fn from_str(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "off" | "0" | "false" => Ok(WinogradScope::Off),
            "relevance" => Ok(WinogradScope::Relevance),
            "on" | "everywhere" | "1" | "true" => Ok(WinogradScope::Everywhere),
            _ => Err(format!(
                "unknown Winograd scope {name:?}: expected off, relevance or on"
            )),
        }
    }
}

/// Sets the [`WinogradScope`] for the whole process (A/B checks and timings).
pub fn set_winograd_scope(scope: WinogradScope) {
    let code = match scope {
        WinogradScope::Off => 1,
        WinogradScope::Relevance => 2,
        WinogradScope::Everywhere => 3,
    };
    WINOGRAD.store(code, Ordering::Relaxed);
}

/// Whether a convolution of kind `pass` may use Winograd under the current scope.
fn winograd_allowed(pass: ConvPass) -> bool {
    match winograd_scope() {
        WinogradScope::Off => false,
        WinogradScope::Relevance => pass != ConvPass::Model,
        WinogradScope::Everywhere => true,
    }
}

/// The Flex primitive behind a plain (non-autodiff) `f32` tensor, sharing its storage; `None`
/// for anything else (autodiff tensors during training, other dtypes).
fn flex_f32<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let p = t.clone().try_into_primitive::<Flex>().ok()?;
    (p.dtype() == DType::F32).then_some(p)
}

/// A Flex tensor of `shape` holding `values`: our kernels read Flex tensors only, so their
/// results stay there whatever the run's device.
fn from_vec<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(
        burn::tensor::TensorData::new(values, shape),
        &Device::flex(),
    )
}

/// Contiguous values of a Flex tensor; copies only when the layout is strided.
fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.clone()
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 tensor data"),
        ),
    }
}

/// Output extent of a convolution along one axis.
fn out_len(input: usize, pad: usize, dilation: usize, kernel: usize, stride: usize) -> usize {
    (input + pad - dilation * (kernel - 1) - 1) / stride + 1
}

/// Forward geometry of `c` on an `[N, C, H, W]` input with weight `[O, C, kH, kW]`.
fn geometry(x: [usize; 4], w: [usize; 4], c: &Conv2d) -> ConvGeometry {
    let [n, ci, h, wd] = x;
    let [co, _, kh, kw] = w;
    let [t, l, b, r] = c.padding;
    ConvGeometry {
        batch: n,
        c_in: ci,
        in_hw: [h, wd],
        c_out: co,
        kernel: [kh, kw],
        out_hw: [
            out_len(h, t + b, c.dilation[0], kh, c.stride[0]),
            out_len(wd, l + r, c.dilation[1], kw, c.stride[1]),
        ],
        stride: c.stride,
        dilation: c.dilation,
        pad_before: [t, l],
    }
}

/// Convolution `y = W ⋆ x + b` of node `c`: our im2col + GEMM kernel ([`conv::conv2d_forward`])
/// for dense (one-group) convolutions, on plain tensors directly and on autodiff tensors as a
/// recorded operation ([`autodiff::dense_conv2d`]); burn's for depthwise and grouped
/// convolutions.
pub fn conv2d(x: T4, weight: Tensor<4>, bias: Option<Tensor<1>>, c: &Conv2d) -> T4 {
    conv2d_in(ConvPass::Model, x, weight, bias, c)
}

/// [`conv2d`] as a convolution of kind `pass` (which decides whether Winograd may run it).
pub fn conv2d_in(
    pass: ConvPass,
    x: T4,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    c: &Conv2d,
) -> T4 {
    if let Some(y) = own_conv2d(pass, &x, &weight, bias.as_ref(), c, Epilogue::Store) {
        return y;
    }
    // Either operand may be the tracked one: the first layer's input is a plain batch while its
    // weight is trained; a frozen layer's weight is plain while its input is tracked.
    if c.groups == 1
        && own_kernels_enabled()
        && (is_flex_autodiff_f32(&x) || is_flex_autodiff_f32(&weight))
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
    {
        // Training: the same kernels as a recorded operation with its own backward step.
        let g = geometry(x.dims(), weight.dims(), c);
        let y = autodiff::dense_conv2d(x, weight, g);
        return match bias {
            Some(b) => y + b.reshape([1, g.c_out, 1, 1]),
            None => y,
        };
    }
    burn_conv2d(x, weight, bias, conv_options(c))
}

/// [`conv2d`] and a ReLU of its output, `(y, relu(y))`, the ReLU written by the convolution's
/// epilogue as each output run is stored ([`Epilogue::ReluCopy`]) — the same values as
/// [`conv2d`] followed by the `Relu` op, without a pass of its own over the output. `None`
/// where our kernels do not run this convolution (the caller then runs the two apart).
pub fn conv2d_relu(
    pass: ConvPass,
    x: &T4,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    c: &Conv2d,
) -> Option<(T4, T4)> {
    if c.groups != 1 {
        return None;
    }
    let g = geometry(x.dims(), weight.dims(), c);
    let dims = [g.batch, g.c_out, g.out_hw[0], g.out_hw[1]];
    let len = dims.iter().product();
    let mut relu = Vec::<f32>::with_capacity(len);
    let second = epilogue::SecondOutput::new(&mut relu.spare_capacity_mut()[..len]);
    let y = own_conv2d(
        pass,
        x,
        weight,
        bias,
        c,
        Epilogue::ReluCopy { relu: second },
    )?;
    // SAFETY: the convolution ran and passed every output index to the epilogue, which wrote
    // that element of `relu` (the epilogue contract).
    unsafe { relu.set_len(len) };
    Some((y, from_vec(relu, dims)))
}

/// `relu(W ⋆ x + b)` in one kernel call, the ReLU applied as the output is written (see
/// [`epilogue`]); for a convolution whose own output nobody keeps. `None` where
/// [`conv2d_relu`] gives `None`. Same values as the convolution and ReLU apart.
pub fn conv2d_relu_only(
    pass: ConvPass,
    x: &T4,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    c: &Conv2d,
) -> Option<T4> {
    own_conv2d(pass, x, weight, bias, c, Epilogue::Relu)
}

/// `r / stabilize(W ⋆ x + b)` (zennit's stabiliser ±`epsilon`, as LRP rules divide by their
/// modified outputs) with the division done as our kernels write the convolution's output
/// (see [`epilogue`]); `None` where our kernels do not run this convolution (grouped, burn's
/// kernels chosen, tensors that are not plain `f32`) or `r` is not shaped like its output —
/// the caller then runs the two steps apart (same values either way).
pub fn conv2d_ratio(
    pass: ConvPass,
    x: &T4,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    c: &Conv2d,
    r: &T4,
    epsilon: f32,
) -> Option<T4> {
    let fr = flex_f32(r)?;
    let numerator = values(&fr);
    let epilogue = Epilogue::Ratio {
        numerator: &numerator,
        epsilon,
    };
    own_conv2d(pass, x, weight, bias, c, epilogue)
}

fn own_conv2d(
    pass: ConvPass,
    x: &T4,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    c: &Conv2d,
    epilogue: Epilogue,
) -> Option<T4> {
    if c.groups != 1 || !own_kernels_enabled() {
        return None;
    }
    let (fx, fw) = (flex_f32(x)?, flex_f32(weight)?);
    let fb = match bias {
        Some(b) => Some(flex_f32(b)?),
        None => None,
    };
    let g = geometry(x.dims(), weight.dims(), c);
    if !epilogue.fits(g.batch * g.c_out * g.out_hw[0] * g.out_hw[1]) {
        return None;
    }
    let b = fb.as_ref().map(values);
    let y = if let Some(filters) = winograd_filters(pass, &fw, &g, false) {
        winograd::convolve(&values(&fx), &filters, b.as_deref(), &g, epilogue)
    } else if let Some(filters) = lane_filters(&fw, &g, false) {
        lanes::convolve(&values(&fx), &filters, b.as_deref(), &g, epilogue)
    } else if let Some(filters) = direct_filters(&fw, &g, false) {
        if g.kernel == [1, 1] {
            pointwise::convolve(&values(&fx), &filters, b.as_deref(), &g, epilogue)
        } else {
            direct::convolve(&values(&fx), &filters, b.as_deref(), &g, epilogue)
        }
    } else {
        let mut y = conv::conv2d_forward(&values(&fx), &values(&fw), b.as_deref(), &g);
        epilogue.apply(0, &mut y);
        y
    };
    Some(from_vec(y, [g.batch, g.c_out, g.out_hw[0], g.out_hw[1]]))
}

/// Frees the cached filter layouts (Winograd, direct, 1×1) of weights that no model holds any
/// more, at once instead of at the next cache insertion (for memory measurements).
pub fn release_unused_filters() {
    filter_cache::release_unused();
}

/// The Winograd filters of the plain weight `fw` for the convolution `g`, or for its input
/// adjoint if `adjoint`, when Winograd is on and applies ([`winograd::choose`]); `None` means
/// im2col. Only weights stored contiguously are cached: a strided weight is copied on every call,
/// so its copy's address identifies nothing.
fn winograd_filters(
    pass: ConvPass,
    fw: &FlexTensor,
    g: &ConvGeometry,
    adjoint: bool,
) -> Option<std::sync::Arc<winograd::FilterTransform>> {
    if !winograd_allowed(pass) {
        return None;
    }
    let w = fw.as_slice::<f32>()?;
    let tile = match (pass, adjoint) {
        (ConvPass::Relevance, true) => winograd::choose_adjoint_for_rules(g)?,
        (ConvPass::Relevance, false) => winograd::choose_for_rules(g)?,
        (_, true) => winograd::choose_adjoint(g)?,
        (ConvPass::RuleForward, false) if winograd_scope() == WinogradScope::Relevance => {
            winograd::choose_tie_preserving(g)?
        }
        (_, false) => winograd::choose(g)?,
    };
    let layout = filter_cache::Layout::Winograd { tile, adjoint };
    Some(filter_cache::filters(fw, w, layout, || {
        if adjoint {
            winograd::FilterTransform::adjoint(w, g.c_out, g.c_in, tile)
        } else {
            winograd::FilterTransform::forward(w, g.c_out, g.c_in, tile)
        }
    }))
}

/// The direct-convolution filters of the plain weight `fw` for the convolution `g`, or for its
/// input adjoint if `adjoint`, when the direct kernel is on and applies ([`direct::applies`],
/// or [`pointwise::applies`] for 1×1 convolutions, which share its packed panels); `None`
/// means im2col. Only contiguous weights are cached (see [`winograd_filters`]).
fn direct_filters(
    fw: &FlexTensor,
    g: &ConvGeometry,
    adjoint: bool,
) -> Option<std::sync::Arc<direct::PackedFilters>> {
    let applies = if adjoint {
        direct::applies_to_adjoint(g) || pointwise::applies(g)
    } else {
        direct::applies(g) || pointwise::applies(g)
    };
    if !direct_enabled() || !applies {
        return None;
    }
    let w = fw.as_slice::<f32>()?;
    let layout = filter_cache::Layout::Direct { adjoint };
    Some(filter_cache::filters(fw, w, layout, || {
        if adjoint {
            direct::PackedFilters::adjoint(w, g.c_out, g.c_in, g.kernel)
        } else {
            direct::PackedFilters::forward(w, g.c_out, g.c_in, g.kernel)
        }
    }))
}

/// The lane panels of the plain 1×1 weight `fw` for the convolution `g` (its adjoint, `Wᵀ` at
/// the output positions, if `adjoint`), when the direct kernel is on and [`lanes::applies`];
/// `None` means another kernel. Only contiguous weights are cached (see [`winograd_filters`]).
fn lane_filters(
    fw: &FlexTensor,
    g: &ConvGeometry,
    adjoint: bool,
) -> Option<std::sync::Arc<lanes::LanePanels>> {
    if !direct_enabled() || g.kernel != [1, 1] || g.pad_before != [0, 0] {
        return None;
    }
    let computed = if adjoint {
        pointwise::adjoint_at_outputs(g)
    } else {
        *g
    };
    if !lanes::applies(&computed) {
        return None;
    }
    let w = fw.as_slice::<f32>()?;
    let layout = filter_cache::Layout::Lanes { adjoint };
    Some(filter_cache::filters(fw, w, layout, || {
        if adjoint {
            lanes::LanePanels::adjoint(w, g.c_out, g.c_in)
        } else {
            lanes::LanePanels::forward(w, g.c_out, g.c_in)
        }
    }))
}

/// Fewest input channels for which a strided adjoint runs by phases. Measured per layer at
/// batch 1 (`benches/conv.rs`): with 512 channels on a 14² input (ResNet-50's layer4.0.conv2)
/// the phases take 1.8 ms against col2im's 2.5–2.7; with 128 or 256 channels on 56² / 28² they
/// lose (2.3 vs 1.6, 1.75 vs 1.5 ms: four small convolutions, each with its own padded copy and
/// thread split), and on the 3-channel stem the 14-row micro-kernel is mostly idle.
const PHASES_MIN_CHANNELS: usize = 512;

/// The phase filters of the plain weight `fw` for the input adjoint of the strided convolution
/// `g` ([`transposed::applies`]; 1×1 ones go to [`pointwise`]), when the direct kernel is on;
/// `None` means col2im. Only contiguous weights are cached (see [`winograd_filters`]).
fn phase_filters(
    fw: &FlexTensor,
    g: &ConvGeometry,
) -> Option<std::sync::Arc<transposed::PhaseFilters>> {
    if !direct_enabled()
        || g.kernel == [1, 1]
        || g.c_in < PHASES_MIN_CHANNELS
        || !transposed::applies(g)
    {
        return None;
    }
    let w = fw.as_slice::<f32>()?;
    let layout = filter_cache::Layout::Phases {
        stride: g.stride,
        pad: g.pad_before,
    };
    Some(filter_cache::filters(fw, w, layout, || {
        transposed::PhaseFilters::new(w, g)
    }))
}

/// `y = x Wᵀ + b` for `x: [N, F, 1, 1]`, `weight: [O, F]` on plain `f32` tensors with `N ≤`
/// [`dense::MAX_BATCH`] ([`dense::linear`], one pass over the weight); `None` otherwise (then
/// burn's matmul).
pub fn linear(x: &T4, weight: &Tensor<2>, bias: Option<&Tensor<1>>) -> Option<T4> {
    let n = x.dims()[0];
    let [o, _] = weight.dims();
    if !own_kernels_enabled() || n > dense::MAX_BATCH {
        return None;
    }
    let (fx, fw) = (flex_f32(x)?, flex_f32(weight)?);
    let fb = match bias {
        Some(b) => Some(flex_f32(b)?),
        None => None,
    };
    let b = fb.as_ref().map(values);
    let y = dense::linear(&values(&fx), n, &values(&fw), o, b.as_deref());
    Some(from_vec(y, [n, o, 1, 1]))
}

/// `dx = g W` for `g: [N, O, 1, 1]`, `weight: [O, F]` on plain `f32` tensors with `N ≤`
/// [`dense::MAX_BATCH`] ([`dense::linear_input_adjoint`]); `None` otherwise.
pub fn linear_input_adjoint(g: &T4, weight: &Tensor<2>) -> Option<T4> {
    let [n, o, _, _] = g.dims();
    let [_, f] = weight.dims();
    if !own_kernels_enabled() || n > dense::MAX_BATCH {
        return None;
    }
    let (fg, fw) = (flex_f32(g)?, flex_f32(weight)?);
    let dx = dense::linear_input_adjoint(&values(&fg), n, &values(&fw), o);
    Some(from_vec(dx, [n, f, 1, 1]))
}

/// Whether `t` is an `f32` tensor on the Flex backend's autodiff device (a training pass).
fn is_flex_autodiff_f32<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && t.device() == Device::flex().autodiff()
}

/// Adjoint of convolution `c` with respect to its input, `Wᵀ ⋆ g`, at input size `hw`: our
/// GEMM + col2im kernel ([`conv::conv2d_input_adjoint`]) for dense convolutions on plain
/// tensors; otherwise burn's transposed convolution, cropped to `hw`.
pub fn conv2d_input_adjoint(g: T4, weight: Tensor<4>, c: &Conv2d, hw: [usize; 2]) -> T4 {
    conv2d_input_adjoint_in(ConvPass::Model, g, weight, c, hw)
}

/// [`conv2d_input_adjoint`] as a convolution of kind `pass` (which decides whether Winograd
/// may run it).
pub fn conv2d_input_adjoint_in(
    pass: ConvPass,
    g: T4,
    weight: Tensor<4>,
    c: &Conv2d,
    hw: [usize; 2],
) -> T4 {
    own_input_adjoint(pass, &g, &weight, c, hw, Epilogue::Store)
        .unwrap_or_else(|| burn_input_adjoint(g, weight, c, hw))
}

/// `a ⊙ (Wᵀ ⋆ g)` (the last step of an LRP rule) with the product taken as our kernels write
/// the input adjoint; `None` where they do not run it or `a` is not shaped like the adjoint (as
/// [`conv2d_ratio`]).
pub fn conv2d_input_adjoint_product(
    pass: ConvPass,
    g: &T4,
    weight: &Tensor<4>,
    c: &Conv2d,
    hw: [usize; 2],
    a: &T4,
) -> Option<T4> {
    let fa = flex_f32(a)?;
    let factor = values(&fa);
    let epilogue = Epilogue::Product { factor: &factor };
    own_input_adjoint(pass, g, weight, c, hw, epilogue)
}

fn own_input_adjoint(
    pass: ConvPass,
    g: &T4,
    weight: &Tensor<4>,
    c: &Conv2d,
    hw: [usize; 2],
    epilogue: Epilogue,
) -> Option<T4> {
    let [n, _, oh, ow] = g.dims();
    let [_, ci, _, _] = weight.dims();
    if c.groups != 1 || !own_kernels_enabled() || !epilogue.fits(n * ci * hw[0] * hw[1]) {
        return None;
    }
    let (fg, fw) = (flex_f32(g)?, flex_f32(weight)?);
    // The forward geometry on an input of size `hw`, with the output size `g` has (the two
    // agree for any `hw` the convolution could have produced `g` from).
    let geometry = ConvGeometry {
        out_hw: [oh, ow],
        ..geometry([n, ci, hw[0], hw[1]], weight.dims(), c)
    };
    let dx = if let Some(filters) = winograd_filters(pass, &fw, &geometry, true) {
        winograd::convolve(
            &values(&fg),
            &filters,
            None,
            &winograd::adjoint_geometry(&geometry),
            epilogue,
        )
    } else if let Some(filters) = lane_filters(&fw, &geometry, true) {
        pointwise_adjoint(&geometry, epilogue, |adjoint, step| {
            lanes::convolve(&values(&fg), &filters, None, adjoint, step)
        })
    } else if let Some(filters) = direct_filters(&fw, &geometry, true) {
        if geometry.kernel == [1, 1] {
            pointwise_adjoint(&geometry, epilogue, |adjoint, step| {
                pointwise::convolve(&values(&fg), &filters, None, adjoint, step)
            })
        } else {
            direct::convolve(
                &values(&fg),
                &filters,
                None,
                &direct::adjoint_geometry(&geometry),
                epilogue,
            )
        }
    } else if let Some(filters) = phase_filters(&fw, &geometry) {
        transposed::input_adjoint(&values(&fg), &filters, &geometry, epilogue)
    } else {
        let mut dx = conv::conv2d_input_adjoint(&values(&fg), &values(&fw), &geometry);
        epilogue.apply(0, &mut dx);
        dx
    };
    Some(from_vec(dx, [n, ci, hw[0], hw[1]]))
}

/// The input adjoint of the 1×1 convolution `geometry`: `Wᵀ dy` at the output positions by
/// `dense(adjoint geometry, epilogue)`, with `epilogue` applied as it is written where the output
/// positions are the input grid (stride 1), else spread onto the input grid first.
fn pointwise_adjoint(
    geometry: &ConvGeometry,
    epilogue: Epilogue,
    dense: impl Fn(&ConvGeometry, Epilogue) -> Vec<f32>,
) -> Vec<f32> {
    let adjoint = pointwise::adjoint_at_outputs(geometry);
    if geometry.out_hw == geometry.in_hw {
        dense(&adjoint, epilogue)
    } else {
        let mut dx = pointwise::scatter_strided(&dense(&adjoint, Epilogue::Store), geometry);
        epilogue.apply(0, &mut dx);
        dx
    }
}

/// burn's transposed convolution as the input adjoint, cropped to the input size `hw`.
pub fn burn_input_adjoint(g: T4, weight: Tensor<4>, c: &Conv2d, hw: [usize; 2]) -> T4 {
    let [_, _, kh, kw] = weight.dims();
    let [_, _, oh, ow] = g.dims();
    let [t, l, b, r] = c.padding;
    let full = |o: usize, s: usize, d: usize, k: usize| (o - 1) * s + d * (k - 1) + 1;
    let fh = full(oh, c.stride[0], c.dilation[0], kh);
    let fw = full(ow, c.stride[1], c.dilation[1], kw);
    if t == b && l == r {
        // Symmetric padding: the transposed convolution crops it; the remainder rows that the
        // forward pass never reached are restored by `padding_out`.
        let opt = ConvTransposeOptions {
            stride: c.stride,
            padding: [t, l],
            padding_out: [hw[0] + 2 * t - fh, hw[1] + 2 * l - fw],
            dilation: c.dilation,
            groups: c.groups,
        };
        return conv_transpose2d(g, weight, None, opt);
    }
    let opt = ConvTransposeOptions {
        stride: c.stride,
        padding: [0, 0],
        padding_out: [hw[0] + t + b - fh, hw[1] + l + r - fw],
        dilation: c.dilation,
        groups: c.groups,
    };
    let padded = conv_transpose2d(g, weight, None, opt);
    padded.narrow(2, t, hw[0]).narrow(3, l, hw[1])
}

/// Max-pool geometry of `p` on an `[N, C, H, W]` input.
fn pool_geometry(x: [usize; 4], p: &Pool2d) -> PoolGeometry {
    let [n, c, h, w] = x;
    let [t, l, b, r] = p.padding;
    PoolGeometry {
        planes: n * c,
        in_hw: [h, w],
        out_hw: [
            pool::pooled_len(
                h,
                [t, b],
                p.kernel[0],
                p.stride[0],
                p.dilation[0],
                p.ceil_mode,
            ),
            pool::pooled_len(
                w,
                [l, r],
                p.kernel[1],
                p.stride[1],
                p.dilation[1],
                p.ceil_mode,
            ),
        ],
        kernel: p.kernel,
        stride: p.stride,
        dilation: p.dilation,
        pad_before: [t, l],
    }
}

/// Max pooling with arg-max indices (flat within each `H×W` plane, as burn and torch give
/// them): our kernel ([`pool::max_pool2d`]) on plain tensors, and on autodiff tensors as a
/// recorded operation ([`autodiff::dense_max_pool2d`]).
pub fn max_pool2d_with_indices(x: T4, p: &Pool2d) -> (T4, Tensor<4, Int>) {
    if own_kernels_enabled() && (flex_f32(&x).is_some() || is_flex_autodiff_f32(&x)) {
        // One entry for both: the extension runs the kernel directly on a plain tensor and
        // records it with its backward step on an autodiff one.
        let g = pool_geometry(x.dims(), p);
        return autodiff::dense_max_pool2d(x, g);
    }
    burn_max_pool2d(x, maxpool_options(p))
}

/// Adjoint of max pooling at input shape `x_dims`: each output's signal goes to its arg-max.
/// `indices` may cover one batch row that every row of `g` shares (one forward pass, many
/// backward signals). Our kernel ([`pool::max_pool2d_adjoint`]) on plain tensors, burn's
/// otherwise.
pub fn max_pool2d_adjoint(g: T4, x_dims: [usize; 4], p: &Pool2d, indices: &Tensor<4, Int>) -> T4 {
    let [rows, ..] = g.dims();
    let [index_rows, c, oh, ow] = indices.dims();
    if own_kernels_enabled()
        && (index_rows == rows || index_rows == 1)
        && let (Some(fg), Ok(fi)) = (flex_f32(&g), indices.clone().try_into_primitive::<Flex>())
        && fi.dtype() == DType::I64
        && let Some(idx) = fi.as_slice::<i64>()
    {
        let geometry = PoolGeometry {
            planes: rows * c,
            out_hw: [oh, ow],
            ..pool_geometry(x_dims, p)
        };
        let dx = pool::max_pool2d_adjoint(&values(&fg), idx, &geometry, index_rows * c);
        return from_vec(dx, [rows, x_dims[1], x_dims[2], x_dims[3]]);
    }
    let [t, l, _, _] = p.padding;
    let mut dims = indices.dims();
    dims[0] = rows;
    let shape_only = Tensor::<4>::zeros([rows, x_dims[1], x_dims[2], x_dims[3]], &g.device());
    max_pool2d_with_indices_backward(
        shape_only,
        p.kernel,
        p.stride,
        [t, l],
        p.dilation,
        p.ceil_mode,
        g,
        indices.clone().expand(dims),
    )
}

/// Whether any element of `x` is below zero, in one parallel pass that stops early (`None`
/// where the tensor is not a plain `f32` Flex tensor). Replaces a comparison tensor plus a
/// reduction: LRP asks this of every layer input to know whether the `a⁻` terms are needed.
pub fn any_negative(x: &T4) -> Option<bool> {
    if !own_kernels_enabled() {
        return None;
    }
    let fx = flex_f32(x)?;
    let v = values(&fx);
    const CHUNK: usize = 1 << 14;
    Some(
        v.par_chunks(CHUNK)
            .any(|chunk| chunk.iter().fold(false, |neg, &e| neg | (e < 0.0))),
    )
}

/// Whether `pred(a, b)` holds for any pair of elements, in one parallel pass over two plain `f32`
/// tensors of the same shape (`None` otherwise). The generalized Gamma rule asks it of the
/// relevance and the output of every layer, to skip the half of the rule that only outputs
/// `z ≤ 0` with relevance need.
pub fn zip_any(a: &T4, b: &T4, pred: impl Fn(f32, f32) -> bool + Sync) -> Option<bool> {
    if !own_kernels_enabled() || a.dims() != b.dims() {
        return None;
    }
    let (fa, fb) = (flex_f32(a)?, flex_f32(b)?);
    let (va, vb) = (values(&fa), values(&fb));
    const CHUNK: usize = 1 << 14;
    Some(
        va.par_chunks(CHUNK)
            .zip(vb.par_chunks(CHUNK))
            .any(|(ca, cb)| {
                ca.iter()
                    .zip(cb)
                    .fold(false, |found, (&x, &y)| found | pred(x, y))
            }),
    )
}

/// Elements per parallel task of the element-wise passes (64 KiB).
const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// A fresh `len`-element vector whose chunks of [`ELEMENTWISE_CHUNK`] are written in parallel
/// by `fill(chunk index, chunk)`, which must write every element (so nothing is zeroed first).
fn par_collect(
    len: usize,
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut out = Vec::<f32>::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(ELEMENTWISE_CHUNK)
        .enumerate()
        .for_each(|(k, chunk)| fill(k, chunk));
    // SAFETY: `fill` wrote every element of every chunk.
    unsafe { out.set_len(len) };
    out
}

/// `f(a, b)` element by element in one parallel pass, for two plain `f32` tensors of the same
/// shape; `None` otherwise (the caller then composes burn's ops). Fusing a chain of element-wise
/// ops into one pass saves a full read and write of the tensor per op it replaces.
pub fn zip_map(a: &T4, b: &T4, f: impl Fn(f32, f32) -> f32 + Sync) -> Option<T4> {
    if !own_kernels_enabled() || a.dims() != b.dims() {
        return None;
    }
    let (fa, fb) = (flex_f32(a)?, flex_f32(b)?);
    let (va, vb) = (values(&fa), values(&fb));
    let out = par_collect(va.len(), |k, o| {
        let at = k * ELEMENTWISE_CHUNK;
        for ((o, &x), &y) in o.iter_mut().zip(&va[at..]).zip(&vb[at..]) {
            o.write(f(x, y));
        }
    });
    Some(from_vec(out, a.dims()))
}

/// `(a + b, relu(a + b))` in one parallel pass for two plain `f32` tensors of one shape (a
/// residual sum and the ReLU after it, when both values are needed: LRP's skip rule reads the
/// sum); `None` otherwise. The same values as the add and the ReLU one after the other.
pub fn add_relu(a: &T4, b: &T4) -> Option<(T4, T4)> {
    zip2_map2([a, b], |x, y| {
        let z = x + y;
        (z, epilogue::relu(z))
    })
}

/// `(f(a, b).0, f(a, b).1)` element by element in one parallel pass that writes two tensors, on
/// plain `f32` tensors of one shape; `None` otherwise.
fn zip2_map2([a, b]: [&T4; 2], f: impl Fn(f32, f32) -> (f32, f32) + Sync) -> Option<(T4, T4)> {
    let dims = a.dims();
    if !own_kernels_enabled() || b.dims() != dims {
        return None;
    }
    let (fa, fb) = (flex_f32(a)?, flex_f32(b)?);
    let (va, vb) = (values(&fa), values(&fb));
    let (first, second) = par_collect2(va.len(), |j| f(va[j], vb[j]));
    Some((from_vec(first, dims), from_vec(second, dims)))
}

/// Two fresh `len`-element vectors, element `j` of each from `f(j)`, chunks of
/// [`ELEMENTWISE_CHUNK`] written in parallel (nothing is zeroed first).
fn par_collect2(len: usize, f: impl Fn(usize) -> (f32, f32) + Sync) -> (Vec<f32>, Vec<f32>) {
    let (mut first, mut second) = (
        Vec::<f32>::with_capacity(len),
        Vec::<f32>::with_capacity(len),
    );
    first.spare_capacity_mut()[..len]
        .par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(second.spare_capacity_mut()[..len].par_chunks_mut(ELEMENTWISE_CHUNK))
        .enumerate()
        .for_each(|(k, (o1, o2))| {
            let at = k * ELEMENTWISE_CHUNK;
            for (i, (o1, o2)) in o1.iter_mut().zip(o2.iter_mut()).enumerate() {
                let (x, y) = f(at + i);
                o1.write(x);
                o2.write(y);
            }
        });
    // SAFETY: every chunk of both outputs was written in full above.
    unsafe {
        first.set_len(len);
        second.set_len(len);
    }
    (first, second)
}

/// `(f(r, z, a, b).0, f(r, z, a, b).1)` element by element in one parallel pass that writes
/// two tensors, on plain `f32` tensors of one shape (an LRP rule that shares one relevance
/// between two inputs reads each operand once); `None` otherwise.
pub fn zip4_map2(
    [r, z, a, b]: [&T4; 4],
    f: impl Fn(f32, f32, f32, f32) -> (f32, f32) + Sync,
) -> Option<(T4, T4)> {
    let dims = r.dims();
    if !own_kernels_enabled() || [z, a, b].iter().any(|t| t.dims() != dims) {
        return None;
    }
    let (fr, fz, fa, fb) = (flex_f32(r)?, flex_f32(z)?, flex_f32(a)?, flex_f32(b)?);
    let (vr, vz, va, vb) = (values(&fr), values(&fz), values(&fa), values(&fb));
    let (first, second) = par_collect2(vr.len(), |j| f(vr[j], vz[j], va[j], vb[j]));
    Some((from_vec(first, dims), from_vec(second, dims)))
}

/// `f(x)` element by element in one parallel pass on a plain `f32` tensor (burn's element-wise
/// ops run on one thread); `None` otherwise.
pub fn map(x: &T4, f: impl Fn(f32) -> f32 + Sync) -> Option<T4> {
    if !own_kernels_enabled() {
        return None;
    }
    let fx = flex_f32(x)?;
    let v = values(&fx);
    let out = par_collect(v.len(), |k, o| {
        for (o, &x) in o.iter_mut().zip(&v[k * ELEMENTWISE_CHUNK..]) {
            o.write(f(x));
        }
    });
    Some(from_vec(out, x.dims()))
}

/// `y[n, 0, p] = Σ_c x[n, c, p]` (`[N, 1, H, W]`) in one parallel pass on a plain `f32` tensor,
/// channels summed in order; `None` otherwise.
pub fn channel_sum(x: &T4) -> Option<T4> {
    let [n, c, h, w] = x.dims();
    if !own_kernels_enabled() {
        return None;
    }
    let fx = flex_f32(x)?;
    let v = values(&fx);
    let plane = h * w;
    let out = channel_sums(n, plane, |image, p, dst| {
        for ch in 0..c {
            let src = &v[(image * c + ch) * plane + p..][..dst.len()];
            dst.iter_mut().zip(src).for_each(|(d, &x)| *d += x);
        }
    });
    Some(from_vec(out, [n, 1, h, w]))
}

/// `y[n, 0, p] = Σ_c stabilized_quotient(r[n, c, p], z[n, c, p], ε)` — [`channel_sum`] of
/// `r / stabilize(z)` without writing the quotient out (the same operations in the same order,
/// so the same values) — for plain `f32` tensors, `z` with one row shared by every row of `r`
/// or one row per row; `None` otherwise. The Flat rule's first layer: VGG-16's 64 × 224²
/// quotients are 12.8 MB that would be written and read back.
pub fn channel_sum_ratio(r: &T4, z: &T4, epsilon: f32) -> Option<T4> {
    let [n, c, h, w] = r.dims();
    let [zn, zc, zh, zw] = z.dims();
    if !own_kernels_enabled() || [zc, zh, zw] != [c, h, w] || (zn != 1 && zn != n) {
        return None;
    }
    let (fr, fz) = (flex_f32(r)?, flex_f32(z)?);
    let (rv, zv) = (values(&fr), values(&fz));
    let plane = h * w;
    let out = channel_sums(n, plane, |image, p, dst| {
        let z_image = if zn == 1 { 0 } else { image };
        for ch in 0..c {
            let rs = &rv[(image * c + ch) * plane + p..][..dst.len()];
            let zs = &zv[(z_image * c + ch) * plane + p..][..dst.len()];
            dst.iter_mut()
                .zip(rs.iter().zip(zs))
                .for_each(|(d, (&r, &z))| *d += epilogue::stabilized_quotient(r, z, epsilon));
        }
    });
    Some(from_vec(out, [n, 1, h, w]))
}

/// An `[N, 1, H, W]` result (`plane = H·W`) computed in parallel chunks: each run of one
/// image's positions `p..p + dst.len()` is zeroed and handed to `add_channels(image, p, dst)`,
/// which adds the channels' terms in order (vectorised over the run).
fn channel_sums(
    n: usize,
    plane: usize,
    add_channels: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    par_collect(n * plane, |k, o| {
        let mut i = 0;
        while i < o.len() {
            let at = k * ELEMENTWISE_CHUNK + i;
            let (image, p) = (at / plane, at % plane);
            let run = (plane - p).min(o.len() - i);
            add_channels(image, p, conv::zeroed(&mut o[i..i + run]));
            i += run;
        }
    })
}

/// `y[n, c, ·] = x[n, c, ·] · scale[c] + shift[c]` (inference BatchNorm; without a shift, its
/// adjoint) in one parallel pass on a plain `f32` tensor, instead of two broadcast passes;
/// `None` otherwise.
pub fn channel_affine(x: &T4, scale: &[f32], shift: Option<&[f32]>) -> Option<T4> {
    let [_, c, h, w] = x.dims();
    if !own_kernels_enabled() || scale.len() != c || shift.is_some_and(|t| t.len() != c) {
        return None;
    }
    let fx = flex_f32(x)?;
    let v = values(&fx);
    let plane = (h * w).max(1);
    let out = par_collect(v.len(), |k, o| {
        // Runs of one channel within the chunk.
        let mut i = 0;
        while i < o.len() {
            let at = k * ELEMENTWISE_CHUNK + i;
            let (ch, run) = (at / plane % c, (plane - at % plane).min(o.len() - i));
            let (src, dst, s) = (&v[at..at + run], &mut o[i..i + run], scale[ch]);
            match shift {
                Some(shift) => {
                    let t = shift[ch];
                    for (o, &x) in dst.iter_mut().zip(src) {
                        o.write(x * s + t);
                    }
                }
                None => {
                    for (o, &x) in dst.iter_mut().zip(src) {
                        o.write(x * s);
                    }
                }
            }
            i += run;
        }
    });
    Some(from_vec(out, x.dims()))
}
