//! Winograd convolutions (`--winograd`, `kernels::winograd`) through the kernels' public entry
//! points, against burn's direct convolution: forward and input adjoint on layer shapes that take
//! F(4×4), F(2×2) and the im2col fallback; an image's result does not depend on its batch; and
//! how far LRP moves from zennit's with them on (the bound docs/methods.md states). Everything in
//! this file runs with Winograd everywhere; the other test files keep the default scope
//! (`relevance`: Winograd only in the LRP/CRP rule passes, `winograd_scope.rs`).

#[path = "lrp_common/mod.rs"]
mod lrp_common;

use burn::tensor::module::conv2d as burn_conv2d;
use lrp_common::{Fixture, cosine, fixture_model, max_rel};
use relevance::engine::forward::conv_options;
use relevance::engine::kernels::conv::ConvGeometry;
use relevance::engine::kernels::winograd::{self, Tile};
use relevance::engine::kernels::{self, WinogradScope, set_winograd_scope};
use relevance::graph::Conv2d;
use relevance::methods::lrp::{Composite, LrpModel};
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec, max_rel_diff, to_vec};

fn random(shape: [usize; 4], rng: &mut Rng) -> T4 {
    from_vec(
        (0..shape.iter().product()).map(|_| rng.normal()).collect(),
        shape,
    )
}

fn conv(pad: usize) -> Conv2d {
    Conv2d {
        weight: String::new(),
        bias: None,
        stride: [1, 1],
        padding: [pad; 4],
        dilation: [1, 1],
        groups: 1,
    }
}

fn geometry(batch: usize, c: usize, size: usize) -> ConvGeometry {
    ConvGeometry {
        batch,
        c_in: c,
        in_hw: [size, size],
        c_out: c,
        kernel: [3, 3],
        out_hw: [size, size],
        stride: [1, 1],
        dilation: [1, 1],
        pad_before: [1, 1],
    }
}

/// (channels, size, variant the kernels pick at batch 1 and 3). The bound is 3e-5 of the largest
/// output: rounding grows with the channels summed (the unit test in `kernels::winograd`, with
/// at most 35 channels, holds 1e-5; 128 channels measured 1.1e-5).
const SHAPES: &[(usize, usize, Option<Tile>)] = &[
    (128, 28, Some(Tile::Four)),
    (192, 12, Some(Tile::Two)),
    (32, 40, Some(Tile::Four)),
    (48, 23, Some(Tile::Four)),
    (64, 14, Some(Tile::Two)),
    (24, 9, Some(Tile::Two)),
    (32, 5, None),
];

#[test]
fn forward_and_adjoint_match_burn_on_every_variant() {
    set_winograd_scope(WinogradScope::Everywhere);
    let mut rng = Rng::new(3);
    for &(c, size, tile) in SHAPES {
        for batch in [1, 3] {
            assert_eq!(
                winograd::choose(&geometry(batch, c, size)),
                tile,
                "{c}@{size}"
            );
            let x = random([batch, c, size, size], &mut rng);
            let w = random([c, c, 3, 3], &mut rng);
            let b = from_vec((0..c).map(|_| rng.normal()).collect(), [c]);
            let ours = kernels::conv2d(x.clone(), w.clone(), Some(b.clone()), &conv(1));
            let theirs = burn_conv2d(x.clone(), w.clone(), Some(b), conv_options(&conv(1)));
            let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
            assert!(
                err < 3e-5,
                "{c}@{size} batch {batch}: forward rel. error {err}"
            );

            let g = random([batch, c, size, size], &mut rng);
            let ours = kernels::conv2d_input_adjoint(g.clone(), w.clone(), &conv(1), [size, size]);
            let theirs = kernels::burn_input_adjoint(g, w, &conv(1), [size, size]);
            let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
            assert!(
                err < 3e-5,
                "{c}@{size} batch {batch}: adjoint rel. error {err}"
            );
        }
    }
}

/// The variant depends on the image size only, so an image convolved alone or in a batch of
/// three (where the batch would have enough tiles for F(4×4)) gives the same numbers.
#[test]
fn an_image_gets_the_same_result_in_any_batch() {
    set_winograd_scope(WinogradScope::Everywhere);
    let mut rng = Rng::new(4);
    let (c, size) = (64, 14);
    let x = random([3, c, size, size], &mut rng);
    let w = random([c, c, 3, 3], &mut rng);
    let batch = to_vec(&kernels::conv2d(x.clone(), w.clone(), None, &conv(1)));
    let per = c * size * size;
    for k in 0..3 {
        let alone = to_vec(&kernels::conv2d(
            x.clone().narrow(0, k, 1),
            w.clone(),
            None,
            &conv(1),
        ));
        let err = max_rel_diff(&alone, &batch[k * per..(k + 1) * per]);
        assert!(err < 1e-6, "image {k}: {err}");
    }
}

/// With Winograd everywhere (the model's forward pass included), LRP on the VGG-11 fixture stays
/// at zennit parity (1e-4 of the largest value, as `lrp_parity.rs` asks of exact summation).
/// Measured: 6.8e-5 for the z⁺ composites against 4.1e-5 exact. Before the filter transform
/// was summed in double precision and rounded once, the transform's own rounding took it to
/// 1.3e-4.
#[test]
fn lrp_with_winograd_everywhere_stays_at_zennit_parity() {
    set_winograd_scope(WinogradScope::Everywhere);
    let name = "vgg11";
    let fx = Fixture::load(name);
    let model = fixture_model(name);
    let x = fx.t4("input");
    let targets = fx.targets();
    let options = fx.zennit_options();
    for composite in Composite::presets() {
        let lrp = LrpModel::new(&model, composite.clone(), &options).unwrap();
        let ours = to_vec(&lrp.attribute(&x, &targets).unwrap().input);
        let reference = fx.values(&format!("lrp/{composite}"));
        let err = max_rel(&ours, reference);
        let cos = cosine(&ours, reference);
        println!(
            "{name} {composite} with Winograd: max rel vs zennit f32 {err:.2e}, cosine {cos:.9}"
        );
        assert!(
            err < 1e-4 && cos > 0.99999,
            "{composite}: {err:e}, cosine {cos}"
        );
    }
}
