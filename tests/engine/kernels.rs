//! Our CPU kernels (`relevance::engine::kernels`) against burn's plain implementation on random
//! geometries. Convolutions: batch sizes, channel counts, kernel sizes, strides, dilations,
//! symmetric and asymmetric paddings, and grouped/depthwise convolutions (which must fall back to
//! burn's path and still agree); forward against `burn::tensor::module::conv2d`, input adjoint
//! against burn's transposed convolution (`kernels::burn_input_adjoint`) and burn's autodiff
//! gradient, and the training (autodiff) operation's gradients against burn's recorded
//! convolution. Max pooling: values, arg-max indices and adjoint against burn's, with padding,
//! dilation and ceil mode; and training's recorded max pooling against burn's.

use burn::tensor::module::{
    conv2d as burn_conv2d, max_pool2d_with_indices, max_pool2d_with_indices_backward,
};
use relevance::engine::forward::{conv_options, maxpool_options};
use relevance::engine::kernels;
use relevance::graph::{Conv2d, Pool2d};
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec, max_rel_diff, to_vec};

fn random(shape: [usize; 4], rng: &mut Rng) -> T4 {
    from_vec(
        (0..shape.iter().product()).map(|_| rng.normal()).collect(),
        shape,
    )
}

/// A random convolution and input size whose output is at least 1×1.
fn random_case(rng: &mut Rng) -> (Conv2d, [usize; 4], [usize; 4]) {
    loop {
        let groups = [1, 1, 1, 2, 3][rng.below(5)];
        let depthwise = rng.below(6) == 0;
        let c_in = if depthwise {
            1 + rng.below(8)
        } else {
            groups * (1 + rng.below(6))
        };
        let (groups, c_out) = if depthwise {
            (c_in, c_in)
        } else {
            (groups, groups * (1 + rng.below(6)))
        };
        let kernel = [1 + rng.below(5), 1 + rng.below(5)];
        let stride = [1 + rng.below(3), 1 + rng.below(3)];
        let dilation = [1 + rng.below(2), 1 + rng.below(2)];
        let padding = if rng.below(2) == 0 {
            let p = rng.below(3);
            [p, p, p, p]
        } else {
            [rng.below(3), rng.below(3), rng.below(3), rng.below(3)]
        };
        let batch = 1 + rng.below(3);
        let hw = [3 + rng.below(20), 3 + rng.below(20)];
        let reach = |a: usize| dilation[a] * (kernel[a] - 1) + 1;
        if hw[0] + padding[0] + padding[2] < reach(0) || hw[1] + padding[1] + padding[3] < reach(1)
        {
            continue;
        }
        let conv = Conv2d {
            weight: String::new(),
            bias: None,
            stride,
            padding,
            dilation,
            groups,
        };
        return (
            conv,
            [batch, c_in, hw[0], hw[1]],
            [c_out, c_in / groups, kernel[0], kernel[1]],
        );
    }
}

#[test]
fn forward_matches_burn_on_random_geometries() {
    let mut rng = Rng::new(11);
    for case in 0..150 {
        let (c, xs, ws) = random_case(&mut rng);
        let x = random(xs, &mut rng);
        let w = random(ws, &mut rng);
        let b = from_vec((0..ws[0]).map(|_| rng.normal()).collect(), [ws[0]]);
        for bias in [None, Some(b.clone())] {
            let ours = kernels::conv2d(x.clone(), w.clone(), bias.clone(), &c);
            let theirs = burn_conv2d(x.clone(), w.clone(), bias, conv_options(&c));
            assert_eq!(ours.dims(), theirs.dims(), "case {case}: {c:?} on {xs:?}");
            let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
            assert!(
                err < 1e-5,
                "case {case}: {c:?} on {xs:?}, w {ws:?}: rel. error {err}"
            );
        }
    }
}

#[test]
fn input_adjoint_matches_burn_transposed_convolution_on_random_geometries() {
    let mut rng = Rng::new(12);
    for case in 0..150 {
        let (c, xs, ws) = random_case(&mut rng);
        let y = burn_conv2d(
            random(xs, &mut rng),
            random(ws, &mut rng),
            None,
            conv_options(&c),
        );
        let g = random(y.dims(), &mut rng);
        let w = random(ws, &mut rng);
        let hw = [xs[2], xs[3]];
        let ours = kernels::conv2d_input_adjoint(g.clone(), w.clone(), &c, hw);
        let theirs = kernels::burn_input_adjoint(g, w, &c, hw);
        assert_eq!(ours.dims(), xs, "case {case}");
        let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
        assert!(
            err < 1e-5,
            "case {case}: {c:?} on {xs:?}, w {ws:?}: rel. error {err}"
        );
    }
}

/// Independent of the transposed convolution: burn's autodiff gradient of `⟨conv(x), g⟩` by `x`.
#[test]
fn input_adjoint_equals_the_autodiff_gradient() {
    let mut rng = Rng::new(13);
    for case in 0..40 {
        let (c, xs, ws) = random_case(&mut rng);
        let x = random(xs, &mut rng);
        let w = random(ws, &mut rng);
        let y = burn_conv2d(x.clone(), w.clone(), None, conv_options(&c));
        let g = random(y.dims(), &mut rng);
        let ours = kernels::conv2d_input_adjoint(g.clone(), w.clone(), &c, [xs[2], xs[3]]);

        let xa = x.autodiff().require_grad();
        let loss = burn_conv2d(xa.clone(), w.autodiff(), None, conv_options(&c))
            .mul(g.autodiff())
            .sum();
        let grads = loss.backward();
        let dx = xa.grad(&grads).expect("input gradient");
        let err = max_rel_diff(&to_vec(&ours), &to_vec(&dx));
        assert!(err < 1e-5, "case {case}: {c:?} on {xs:?}: rel. error {err}");
    }
}

/// A fixed backward signal of shape `dims` with a non-zero mean, so that bias gradients are not
/// sums that cancel to rounding noise.
fn fixed_signal(dims: [usize; 4]) -> T4 {
    from_vec(
        (0..dims.iter().product::<usize>())
            .map(|i| ((i * 7919) % 13) as f32 / 6.0 - 0.5)
            .collect(),
        dims,
    )
}

/// Training runs our kernels as a recorded autodiff operation: its forward values and its
/// gradients by input, weight and bias must equal those burn's own convolution records, on random
/// geometries and batches of up to 8 (small images take the grouped-images path), with the input,
/// the weight or both tracked.
#[test]
fn training_convolution_gradients_equal_burns() {
    let mut rng = Rng::new(14);
    for case in 0..60 {
        let (c, mut xs, ws) = random_case(&mut rng);
        xs[0] = 1 + rng.below(8);
        let x = random(xs, &mut rng);
        let w = random(ws, &mut rng);
        let b = from_vec((0..ws[0]).map(|_| rng.normal()).collect(), [ws[0]]);
        // Which operands are tracked: a first layer trains its weight on a plain batch, a frozen
        // layer passes gradients to its input only, most layers do both.
        let (track_input, track_weight) = [(false, true), (true, false), (true, true)][case % 3];
        let run = |ours: bool| {
            let tracked = |t: T4, on: bool| if on { t.autodiff().require_grad() } else { t };
            let xa = tracked(x.clone(), track_input);
            let wa = tracked(w.clone(), track_weight);
            let ba = if track_weight {
                b.clone().autodiff().require_grad()
            } else {
                b.clone()
            };
            let y = if ours {
                kernels::conv2d(xa.clone(), wa.clone(), Some(ba.clone()), &c)
            } else {
                burn_conv2d(xa.clone(), wa.clone(), Some(ba.clone()), conv_options(&c))
            };
            let g = fixed_signal(y.dims());
            let grads = y.clone().mul(g.autodiff()).sum().backward();
            let grad = |t: &T4, on: bool| {
                if on {
                    to_vec(&t.grad(&grads).expect("gradient"))
                } else {
                    Vec::new()
                }
            };
            [
                to_vec(&y.without_autodiff()),
                grad(&xa, track_input),
                grad(&wa, track_weight),
                if track_weight {
                    to_vec(&ba.grad(&grads).expect("bias gradient"))
                } else {
                    Vec::new()
                },
            ]
        };
        let (ours, theirs) = (run(true), run(false));
        for (k, what) in [
            "output",
            "input gradient",
            "weight gradient",
            "bias gradient",
        ]
        .iter()
        .enumerate()
        {
            let err = max_rel_diff(&ours[k], &theirs[k]);
            assert!(
                err < 1e-5,
                "case {case}: {what} of {c:?} on {xs:?}, w {ws:?}: rel. error {err}"
            );
        }
    }
}

/// A random max pooling (padding at most half the window, as torch requires) and an input it fits.
fn random_pool(rng: &mut Rng) -> (Pool2d, [usize; 4]) {
    loop {
        let kernel = [1 + rng.below(4), 1 + rng.below(4)];
        let pad = [rng.below(kernel[0] / 2 + 1), rng.below(kernel[1] / 2 + 1)];
        let pool = Pool2d {
            kernel,
            stride: [1 + rng.below(3), 1 + rng.below(3)],
            padding: [pad[0], pad[1], pad[0], pad[1]],
            dilation: [1 + rng.below(2), 1 + rng.below(2)],
            ceil_mode: rng.below(2) == 0,
            count_include_pad: false,
        };
        let x = [
            1 + rng.below(3),
            1 + rng.below(5),
            2 + rng.below(20),
            2 + rng.below(20),
        ];
        let reach = |a: usize| pool.dilation[a] * (kernel[a] - 1) + 1;
        if x[2] + 2 * pad[0] >= reach(0) && x[3] + 2 * pad[1] >= reach(1) {
            return (pool, x);
        }
    }
}

#[test]
fn max_pooling_and_its_adjoint_match_burn_on_random_geometries() {
    let mut rng = Rng::new(14);
    for case in 0..200 {
        let (p, xs) = random_pool(&mut rng);
        // Ties on purpose in half the cases (ReLU outputs are often exactly zero): both must keep
        // the first maximum.
        let x = random(xs, &mut rng);
        let x = if case % 2 == 0 { x.clamp_min(0.0) } else { x };
        let (ours, our_idx) = kernels::max_pool2d_with_indices(x.clone(), &p);
        let (theirs, their_idx) = max_pool2d_with_indices(x.clone(), maxpool_options(&p));
        assert_eq!(ours.dims(), theirs.dims(), "case {case}: {p:?} on {xs:?}");
        assert_eq!(
            to_vec(&ours),
            to_vec(&theirs),
            "case {case}: values, {p:?} on {xs:?}"
        );
        let (a, b): (Vec<i64>, Vec<i64>) = (
            our_idx.to_data().convert::<i64>().try_to_vec().unwrap(),
            their_idx.to_data().convert::<i64>().try_to_vec().unwrap(),
        );
        assert_eq!(a, b, "case {case}: indices, {p:?} on {xs:?}");
        let g = random(ours.dims(), &mut rng);
        let dx = kernels::max_pool2d_adjoint(g.clone(), xs, &p, &our_idx);
        let want = max_pool2d_with_indices_backward(
            x,
            p.kernel,
            p.stride,
            [p.padding[0], p.padding[1]],
            p.dilation,
            p.ceil_mode,
            g,
            their_idx,
        );
        let err = max_rel_diff(&to_vec(&dx), &to_vec(&want));
        assert!(err < 1e-6, "case {case}: adjoint, {p:?} on {xs:?}: {err}");
    }
}

/// VGG's 2×2/2 pooling on planes wide enough for the kernel's 16-window AVX-512 steps (odd
/// widths leave a scalar remainder): values and indices equal burn's, ties included.
#[test]
fn wide_vgg_poolings_match_burn() {
    let mut rng = Rng::new(15);
    let p = Pool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0, 0, 0],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    for xs in [[1, 3, 6, 224], [2, 2, 9, 75], [1, 5, 4, 33]] {
        let x = random(xs, &mut rng).clamp_min(0.0);
        let (ours, our_idx) = kernels::max_pool2d_with_indices(x.clone(), &p);
        let (theirs, their_idx) = max_pool2d_with_indices(x, maxpool_options(&p));
        assert_eq!(to_vec(&ours), to_vec(&theirs), "values on {xs:?}");
        let (a, b): (Vec<i64>, Vec<i64>) = (
            our_idx.to_data().convert::<i64>().try_to_vec().unwrap(),
            their_idx.to_data().convert::<i64>().try_to_vec().unwrap(),
        );
        assert_eq!(a, b, "indices on {xs:?}");
    }
}

/// Training's max pooling (our kernel as a recorded autodiff operation): values, indices and the
/// input gradient equal burn's recorded max pooling, ties included.
#[test]
fn training_max_pooling_gradients_equal_burns() {
    let mut rng = Rng::new(15);
    for case in 0..100 {
        let (p, xs) = random_pool(&mut rng);
        let x = random(xs, &mut rng);
        let x = if case % 2 == 0 { x.clamp_min(0.0) } else { x };
        let run = |ours: bool| {
            let xa = x.clone().autodiff().require_grad();
            let (y, idx) = if ours {
                kernels::max_pool2d_with_indices(xa.clone(), &p)
            } else {
                max_pool2d_with_indices(xa.clone(), maxpool_options(&p))
            };
            let g = fixed_signal(y.dims());
            let grads = y.clone().mul(g.autodiff()).sum().backward();
            let idx: Vec<i64> = idx.to_data().convert::<i64>().try_to_vec().unwrap();
            (
                to_vec(&y.without_autodiff()),
                idx,
                to_vec(&xa.grad(&grads).expect("input gradient")),
            )
        };
        let (ours, theirs) = (run(true), run(false));
        assert_eq!(ours.0, theirs.0, "case {case}: values, {p:?} on {xs:?}");
        assert_eq!(ours.1, theirs.1, "case {case}: indices, {p:?} on {xs:?}");
        assert_eq!(ours.2, theirs.2, "case {case}: gradient, {p:?} on {xs:?}");
    }
}

/// Stride-1 convolutions whose output rows are as wide as the input's take a shifted-plane
/// im2col/col2im (planes over 64 pixels) or per-tap source tables (smaller ones): forward, input
/// adjoint and (training) weight gradient against burn on such geometries — kernels 1–5,
/// dilation 1–2, horizontal padding split any way that keeps the width, any vertical padding,
/// batches of 1–6.
#[test]
fn width_preserving_convolutions_match_burn() {
    let mut rng = Rng::new(16);
    let mut cases = 0;
    while cases < 80 {
        let kernel = [1 + rng.below(5), 1 + rng.below(5)];
        let dilation = [1 + rng.below(2), 1 + rng.below(2)];
        let reach_w = dilation[1] * (kernel[1] - 1);
        let left = rng.below(reach_w + 1);
        let padding = [rng.below(3), left, rng.below(3), reach_w - left];
        // Half the planes above 64 pixels (shifted copies), half at most 64 (source tables).
        let hw = if cases % 2 == 0 {
            [6 + rng.below(10), 12 + rng.below(12)]
        } else {
            [1 + rng.below(8), 1 + rng.below(8)]
        };
        if hw[0] + padding[0] + padding[2] < dilation[0] * (kernel[0] - 1) + 1 {
            continue;
        }
        cases += 1;
        let c = Conv2d {
            weight: String::new(),
            bias: None,
            stride: [1, 1],
            padding,
            dilation,
            groups: 1,
        };
        let (c_in, c_out) = (1 + rng.below(5), 1 + rng.below(5));
        let xs = [1 + rng.below(6), c_in, hw[0], hw[1]];
        let x = random(xs, &mut rng);
        let w = random([c_out, c_in, kernel[0], kernel[1]], &mut rng);
        let ours = kernels::conv2d(x.clone(), w.clone(), None, &c);
        let theirs = burn_conv2d(x.clone(), w.clone(), None, conv_options(&c));
        assert_eq!(ours.dims()[3], hw[1], "{c:?}: the width is kept");
        let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
        assert!(err < 1e-5, "forward {c:?} on {xs:?}: rel. error {err}");
        let g = random(ours.dims(), &mut rng);
        let adj = kernels::conv2d_input_adjoint(g.clone(), w.clone(), &c, hw);
        let want = kernels::burn_input_adjoint(g.clone(), w.clone(), &c, hw);
        let err = max_rel_diff(&to_vec(&adj), &to_vec(&want));
        assert!(err < 1e-5, "adjoint {c:?} on {xs:?}: rel. error {err}");
        let weight_gradient = |ours: bool| {
            let wa = w.clone().autodiff().require_grad();
            let y = if ours {
                kernels::conv2d(x.clone().autodiff(), wa.clone(), None, &c)
            } else {
                burn_conv2d(x.clone().autodiff(), wa.clone(), None, conv_options(&c))
            };
            let grads = y.mul(g.clone().autodiff()).sum().backward();
            to_vec(&wa.grad(&grads).expect("weight gradient"))
        };
        let err = max_rel_diff(&weight_gradient(true), &weight_gradient(false));
        assert!(
            err < 1e-5,
            "weight gradient {c:?} on {xs:?}: rel. error {err}"
        );
    }
}

/// Our forward (with a random bias) and input adjoint of convolution `c` against burn's, on a
/// random input `[N, C, H, W]` and weight of the given shapes, to 1e-5 relative.
fn forward_and_adjoint_match_burn(c: &Conv2d, xs: [usize; 4], ws: [usize; 4], rng: &mut Rng) {
    let x = random(xs, rng);
    let w = random(ws, rng);
    let b = from_vec((0..ws[0]).map(|_| rng.normal()).collect(), [ws[0]]);
    let ours = kernels::conv2d(x.clone(), w.clone(), Some(b.clone()), c);
    let theirs = burn_conv2d(x.clone(), w.clone(), Some(b), conv_options(c));
    assert_eq!(ours.dims(), theirs.dims());
    let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
    assert!(err < 1e-5, "forward {c:?} on {xs:?}: rel. error {err}");
    let g = random(ours.dims(), rng);
    let hw = [xs[2], xs[3]];
    let adj = kernels::conv2d_input_adjoint(g.clone(), w.clone(), c, hw);
    let want = kernels::burn_input_adjoint(g, w, c, hw);
    assert_eq!(adj.dims(), want.dims());
    let err = max_rel_diff(&to_vec(&adj), &to_vec(&want));
    assert!(err < 1e-5, "adjoint {c:?} on {xs:?}: rel. error {err}");
}

/// Convolutions with more than one tap run on the direct (implicit-GEMM) kernel — stride 1
/// forward and input adjoint, strided ones forward through phase planes: forward with bias and
/// input adjoint against burn on random geometries — kernels 2–5 on either axis, strides 1–3
/// (half the cases 1), any padding before up to `k − 1` and after up to `k`, channel counts
/// that give every panel split and several channel blocks (3×3: 32 channels per block), planes
/// from one pixel to wider than a 32-position chunk, batches of 1–3.
#[test]
fn direct_convolutions_match_burn() {
    let mut rng = Rng::new(23);
    let mut cases = 0;
    while cases < 60 {
        let kernel = [1 + rng.below(5), 1 + rng.below(5)];
        if kernel[0] * kernel[1] == 1 {
            continue;
        }
        let pad = |k: usize, rng: &mut Rng| (rng.below(k), rng.below(k + 1));
        let ((top, bottom), (left, right)) = (pad(kernel[0], &mut rng), pad(kernel[1], &mut rng));
        let hw = [1 + rng.below(40), 1 + rng.below(40)];
        if hw[0] + top + bottom < kernel[0] || hw[1] + left + right < kernel[1] {
            continue;
        }
        let stride = if cases % 2 == 0 {
            [1, 1]
        } else {
            [1 + rng.below(3), 1 + rng.below(3)]
        };
        cases += 1;
        let c = Conv2d {
            weight: String::new(),
            bias: None,
            stride,
            padding: [top, left, bottom, right],
            dilation: [1, 1],
            groups: 1,
        };
        let (c_in, c_out) = (1 + rng.below(70), 1 + rng.below(45));
        let xs = [1 + rng.below(3), c_in, hw[0], hw[1]];
        let geometry = kernels::conv::ConvGeometry {
            batch: xs[0],
            c_in,
            in_hw: hw,
            c_out,
            kernel,
            out_hw: [
                (hw[0] + top + bottom - kernel[0]) / stride[0] + 1,
                (hw[1] + left + right - kernel[1]) / stride[1] + 1,
            ],
            stride,
            dilation: [1, 1],
            pad_before: [top, left],
        };
        assert_eq!(
            kernels::direct::applies(&geometry),
            kernels::direct::available()
        );
        forward_and_adjoint_match_burn(&c, xs, [c_out, c_in, kernel[0], kernel[1]], &mut rng);
    }
}

/// Strided adjoints with many input channels run by phases (`kernels::transposed`: one
/// stride-1 direct adjoint per phase, interleaved): against burn's transposed convolution on
/// ResNet's 3×3/2 geometry at 512 channels and two uneven ones (odd sizes, unequal strides,
/// a 2×4 kernel, padding after), batches 1–2.
#[test]
fn strided_adjoints_by_phases_match_burn() {
    let mut rng = Rng::new(31);
    for (batch, c_in, c_out, hw, kernel, stride, padding) in [
        (1, 512, 512, [14, 14], [3, 3], [2, 2], [1, 1, 1, 1]),
        (2, 520, 37, [11, 9], [3, 3], [2, 3], [1, 0, 0, 2]),
        (1, 512, 20, [10, 13], [2, 4], [2, 2], [0, 1, 1, 0]),
    ] {
        let c = Conv2d {
            weight: String::new(),
            bias: None,
            stride,
            padding,
            dilation: [1, 1],
            groups: 1,
        };
        forward_and_adjoint_match_burn(
            &c,
            [batch, c_in, hw[0], hw[1]],
            [c_out, c_in, kernel[0], kernel[1]],
            &mut rng,
        );
    }
}

/// 1×1 convolutions run on the pointwise kernel (packed input blocks, the direct kernel's
/// micro-kernel): forward with bias and input adjoint (strided ones through the dense adjoint
/// and a scatter) against burn on random geometries — strides 1–3 per axis, sizes from one
/// pixel to wider than a 256-position block, up to 600 input channels (several channel blocks of
/// 288), panel remainders, batches of 1–3; padded ones (every fourth case) stay on im2col.
#[test]
fn pointwise_convolutions_match_burn() {
    let mut rng = Rng::new(29);
    for case in 0..40 {
        let stride = [1 + rng.below(3), 1 + rng.below(3)];
        let pad = if case % 4 == 3 { 1 } else { 0 };
        let hw = [1 + rng.below(40), 1 + rng.below(40)];
        let c = Conv2d {
            weight: String::new(),
            bias: None,
            stride,
            padding: [pad; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let (c_in, c_out) = (1 + rng.below(600), 1 + rng.below(45));
        let xs = [1 + rng.below(3), c_in, hw[0], hw[1]];
        let out_hw = [
            (hw[0] + 2 * pad - 1) / stride[0] + 1,
            (hw[1] + 2 * pad - 1) / stride[1] + 1,
        ];
        let geometry = kernels::conv::ConvGeometry {
            batch: xs[0],
            c_in,
            in_hw: hw,
            c_out,
            kernel: [1, 1],
            out_hw,
            stride,
            dilation: [1, 1],
            pad_before: [pad, pad],
        };
        assert_eq!(
            kernels::pointwise::applies(&geometry),
            pad == 0 && kernels::direct::available()
        );
        forward_and_adjoint_match_burn(&c, xs, [c_out, c_in, 1, 1], &mut rng);
    }
}

/// Every output of the direct kernel is summed in the same order wherever it lies, so equal
/// neighbourhoods give bit-identical outputs — what keeps max-pooling ties in flat image regions
/// where PyTorch has them (Winograd breaks this; see `tests/winograd_scope.rs`). A constant
/// image through a 3×3 "same" convolution: every interior pixel of an output channel, and of
/// the adjoint, is the same float.
#[test]
fn direct_convolution_treats_equal_neighbourhoods_equally() {
    let mut rng = Rng::new(29);
    let (c_in, c_out, h, w) = (37, 30, 23, 41);
    let x = from_vec(vec![0.3711f32; c_in * h * w], [1, c_in, h, w]);
    let weight = random([c_out, c_in, 3, 3], &mut rng);
    let c = Conv2d {
        weight: String::new(),
        bias: None,
        stride: [1, 1],
        padding: [1, 1, 1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let interior_is_constant = |t: &T4, channels: usize| {
        let v = to_vec(t);
        for ch in 0..channels {
            let at = |y: usize, x: usize| v[(ch * h + y) * w + x];
            for y in 1..h - 1 {
                for x in 1..w - 1 {
                    assert_eq!(
                        at(y, x).to_bits(),
                        at(1, 1).to_bits(),
                        "channel {ch} ({y}, {x})"
                    );
                }
            }
        }
    };
    let y = kernels::conv2d(x, weight.clone(), None, &c);
    interior_is_constant(&y, c_out);
    let g = from_vec(vec![-1.25f32; c_out * h * w], [1, c_out, h, w]);
    let dx = kernels::conv2d_input_adjoint(g, weight, &c, [h, w]);
    interior_is_constant(&dx, c_in);
}

/// Dense layers on up to 16 inputs run as single passes over the weight
/// (`kernels::dense`): output and input adjoint against burn's matmul, batches 1–16 (and 17,
/// which falls back to burn), with rows of the signal that are zero in every image (skipped).
#[test]
fn dense_layers_match_burn() {
    let mut rng = Rng::new(31);
    for (n, out, inp) in [(1, 10, 513), (4, 257, 1000), (16, 3, 4096), (17, 9, 70)] {
        let x = random([n, inp, 1, 1], &mut rng);
        let w2 = from_vec(
            (0..out * inp).map(|_| rng.normal()).collect::<Vec<_>>(),
            [out, inp, 1, 1],
        )
        .reshape([out, inp]);
        let b = from_vec((0..out).map(|_| rng.normal()).collect(), [out]);
        let ours =
            relevance::engine::forward::linear_forward(x.clone(), w2.clone(), Some(b.clone()))
                .expect("shapes agree");
        let theirs = x
            .reshape([n, inp])
            .matmul(w2.clone().transpose())
            .add(b.reshape([1, out]))
            .reshape([n, out, 1, 1]);
        let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
        assert!(err < 1e-5, "forward n={n}: rel. error {err}");
        let mut gv: Vec<f32> = (0..n * out).map(|_| rng.normal()).collect();
        for i in 0..n {
            gv[i * out] = 0.0; // row 0 is zero in every image
        }
        let g = from_vec(gv, [n, out, 1, 1]);
        let adj = relevance::engine::gradient::linear_input_adjoint(g.clone(), w2.clone());
        let want = g.reshape([n, out]).matmul(w2).reshape([n, inp, 1, 1]);
        let err = max_rel_diff(&to_vec(&adj), &to_vec(&want));
        assert!(err < 1e-5, "adjoint n={n}: rel. error {err}");
    }
}

/// The forward pass runs a convolution and the ReLU reading it as one kernel call
/// (`kernels::conv2d_relu`), and a sum and the ReLU reading it as one pass
/// (`kernels::add_relu`); every activation must equal, bit for bit, what the nodes give
/// evaluated one by one — for the direct 3×3, 1×1, strided 7×7 and grouped (not fused)
/// convolutions, a convolution whose output a second node also reads, a residual sum with its
/// ReLU, and NaN passing the ReLU as the `Relu` op lets it.
#[test]
fn fused_conv_relu_forward_equals_node_by_node() {
    use relevance::engine::forward::{Keep, eval, forward, run};
    use relevance::graph::builder::ConvGeom;
    use relevance::graph::{GraphBuilder, Op, init::init_params};

    let mut b = GraphBuilder::new(3);
    let x = b.input();
    let stem = b.conv("stem", x, ConvGeom::new(8, 7).stride(2).bias(true));
    let r0 = b.relu("r0", stem);
    let c3 = b.conv("c3", r0, ConvGeom::new(16, 3).bias(true));
    let r1 = b.relu("r1", c3);
    let c1 = b.conv("c1", r1, ConvGeom::new(12, 1).bias(true));
    let r2 = b.relu("r2", c1);
    let dw = b.conv("dw", r2, ConvGeom::new(12, 3).groups(12).bias(true));
    let r3 = b.relu("r3", dw);
    let sum = b.add("sum", r3, c1); // c1's pre-ReLU output is read again
    let out = b.relu("out", sum);
    let graph = b.finish(out);
    let params = init_params(&graph, 3).unwrap();
    let mut rng = Rng::new(9);
    let mut values = to_vec(&random([2, 3, 29, 31], &mut rng));
    values[100] = f32::NAN;
    let input = from_vec(values, [2, 3, 29, 31]);

    let acts = forward(&graph, &params, input.clone()).unwrap();
    let mut apart: Vec<T4> = Vec::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        let args = node.inputs.iter().map(|&i| apart[i].clone()).collect();
        let first = (id == 0).then(|| input.clone());
        apart.push(eval(&node.op, args, first, &params, None).unwrap().0);
    }
    let bits = |t: &T4| to_vec(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut nans = 0;
    for (id, node) in graph.nodes.iter().enumerate() {
        let fused = acts.get(id).unwrap();
        assert_eq!(bits(fused), bits(&apart[id]), "node {}", node.name);
        nans += to_vec(fused).iter().filter(|v| v.is_nan()).count();
    }
    assert!(nans > 0, "the NaN input reached the ReLUs");

    // Keeping only the graph output: convolutions and the sum read by their ReLU alone are not
    // written (`kernels::conv2d_relu_only`, the ReLU of the sum alone), c1 (read again by the
    // sum) still is; same values.
    let keep = vec![false; graph.nodes.len()];
    let lean = run(&graph, &params, input.clone(), Keep::Only(&keep), None).unwrap();
    assert_eq!(bits(lean.get(out).unwrap()), bits(&apart[out]), "output");
    assert!(
        lean.values
            .iter()
            .enumerate()
            .all(|(id, v)| v.is_some() == (id == out))
    );
    // Keeping the ReLUs' values: each equals the node-by-node one although its convolution
    // was never stored.
    let relus: Vec<bool> = graph
        .nodes
        .iter()
        .map(|n| matches!(n.op, Op::Relu))
        .collect();
    let lean = run(&graph, &params, input, Keep::Only(&relus), None).unwrap();
    for (id, node) in graph.nodes.iter().enumerate() {
        match lean.values[id].as_ref() {
            Some(v) => assert_eq!(bits(v), bits(&apart[id]), "node {}", node.name),
            None => assert!(!relus[id], "node {} missing", node.name),
        }
    }
    assert!(lean.values[stem].is_none() && lean.values[c3].is_none());
    assert!(lean.values[sum].is_none());
}
