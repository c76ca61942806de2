//! The default Winograd scope, `relevance`: the model's own convolutions (forward pass, every
//! gradient) stay exact summation; the passes LRP/CRP rules add (`z' = W'a`, `W'ᵀs`) run by
//! Winograd, and the forward pass an LRP/CRP explanation starts from by F(2×2), which keeps
//! the ties of flat regions. One test function, because the scope is a process-wide setting
//! and the steps below switch it.

#[path = "lrp_common/mod.rs"]
mod lrp_common;

use lrp_common::{Fixture, fixture_model, max_rel, parity};
use relevance::engine::kernels::{
    self, ConvPass, WinogradScope, set_winograd_scope, winograd_scope,
};
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

fn same_padding_3x3() -> Conv2d {
    Conv2d {
        weight: String::new(),
        bias: None,
        stride: [1, 1],
        padding: [1; 4],
        dilation: [1, 1],
        groups: 1,
    }
}

/// Forward and adjoint of one layer shape that Winograd F(4×4) takes, as `pass`.
fn both_passes(pass: ConvPass, x: &T4, w: &T4, g: &T4) -> (Vec<f32>, Vec<f32>) {
    let c = same_padding_3x3();
    let [_, _, h, wd] = x.dims();
    let y = kernels::conv2d_in(pass, x.clone(), w.clone(), None, &c);
    let dx = kernels::conv2d_input_adjoint_in(pass, g.clone(), w.clone(), &c, [h, wd]);
    (to_vec(&y), to_vec(&dx))
}

#[test]
fn relevance_scope_keeps_model_passes_exact_and_lrp_at_zennit_parity() {
    if std::env::var_os("RELEVANCE_WINOGRAD").is_none() {
        assert_eq!(winograd_scope(), WinogradScope::Relevance, "default scope");
    }
    assert_eq!("on".parse(), Ok(WinogradScope::Everywhere));
    assert_eq!("Relevance".parse(), Ok(WinogradScope::Relevance));
    assert!("sometimes".parse::<WinogradScope>().is_err());

    // Kernel entry points: model passes bit-identical to exact summation; rule passes by
    // Winograd (different rounding, so not bit-identical) within its bound of 3e-5.
    let mut rng = Rng::new(11);
    let (c, size) = (64, 28);
    let x = random([1, c, size, size], &mut rng);
    let w = random([c, c, 3, 3], &mut rng);
    let g = random([1, c, size, size], &mut rng);
    set_winograd_scope(WinogradScope::Off);
    let exact = both_passes(ConvPass::Model, &x, &w, &g);
    assert_eq!(
        both_passes(ConvPass::Relevance, &x, &w, &g),
        exact,
        "off: no Winograd"
    );
    set_winograd_scope(WinogradScope::Relevance);
    assert_eq!(
        both_passes(ConvPass::Model, &x, &w, &g),
        exact,
        "model passes exact"
    );
    let (y, dx) = both_passes(ConvPass::Relevance, &x, &w, &g);
    for (name, ours, exact) in [("forward", &y, &exact.0), ("adjoint", &dx, &exact.1)] {
        let err = max_rel_diff(ours, exact);
        assert!(
            ours != exact,
            "{name}: the rule pass did not run by Winograd"
        );
        assert!(err < 3e-5, "{name}: {err}");
    }
    // An explanation's forward pass: F(2×2) where the rule passes take F(4×4) (28² has 49 4×4
    // tiles), exact with the scope off.
    let c = same_padding_3x3();
    let explained = |x: &T4| {
        to_vec(&kernels::conv2d_in(
            ConvPass::RuleForward,
            x.clone(),
            w.clone(),
            None,
            &c,
        ))
    };
    let y_rule_forward = explained(&x);
    assert!(
        y_rule_forward != exact.0 && y_rule_forward != y,
        "F(2×2), not exact nor F(4×4)"
    );
    let err = max_rel_diff(&y_rule_forward, &exact.0);
    assert!(err < 3e-5, "explanation forward: {err}");
    set_winograd_scope(WinogradScope::Off);
    assert_eq!(
        explained(&x),
        exact.0,
        "off: the explanation's forward pass is exact"
    );
    set_winograd_scope(WinogradScope::Relevance);

    // LRP on the VGG-11 fixture (3×3 convolutions with 64–256 channels at 32² and below; its
    // 16² layer is the one Winograd takes): the scope moves every composite's map by no more
    // than exact summation in another order does — burn's own kernels against ours, which is
    // what a forward pass by F(2×2) adds to the rule passes' float noise — and zennit parity
    // holds.
    let name = "vgg11";
    let fx = Fixture::load(name);
    let model = fixture_model(name);
    let input = fx.t4("input");
    let targets = fx.targets();
    let options = fx.zennit_options();
    for composite in Composite::presets() {
        let lrp = LrpModel::new(&model, composite.clone(), &options).unwrap();
        set_winograd_scope(WinogradScope::Off);
        let exact = to_vec(&lrp.attribute(&input, &targets).unwrap().input);
        kernels::set_own_kernels(false);
        let other_order = to_vec(&lrp.attribute(&input, &targets).unwrap().input);
        kernels::set_own_kernels(true);
        set_winograd_scope(WinogradScope::Relevance);
        let scoped = to_vec(&lrp.attribute(&input, &targets).unwrap().input);
        let moved = max_rel(&scoped, &exact);
        let moved_exact = max_rel(&other_order, &exact);
        println!(
            "{name} {composite}: relevance scope vs exact {moved:.2e}; burn's exact kernels vs ours {moved_exact:.2e}"
        );
        assert!(scoped != exact, "{composite}: no pass ran by Winograd");
        assert!(
            moved <= 1.5 * moved_exact.max(1e-6),
            "{composite}: moved {moved:e}, exact summation in burn's order {moved_exact:e}"
        );
        let reference = (
            fx.values(&format!("lrp/{composite}")),
            fx.values(&format!("lrp64/{composite}")),
        );
        if let Err(e) = parity(&scoped, reference.0, reference.1) {
            panic!("{composite} with the relevance scope: {e}");
        }
    }
}
