//! Parity with zennit 1.0.0, the reference for LRP: the same weights (the reference formulas)
//! and inputs give the same input relevance for each composite (fixtures `z1_<model>` from
//! `tools/fixtures_lrp_zennit1.py`), and the classic Gamma rule, kept as
//! `gamma-form=classic`, gives zennit 0.4.6's `EpsilonGammaBox` (fixtures `<model>` from
//! `tools/fixtures_lrp.py`). Criterion in [`lrp_common::parity`] (1e-4 of the largest
//! reference magnitude, or — where float32 round-off moves zennit's own result by more — as
//! close to zennit's float64 result as zennit's float32 result is, within 3×). ResNets use the
//! `zennit` skip mode (zennit's ResNet canonizer).

use crate::lrp_common;

use lrp_common::{Fixture, fixture_model, max_rel, parity};
use relevance::methods::lrp::{Composite, GammaForm, LrpModel};
use relevance::tensor::to_vec;

/// Checks each composite against the fixture's `lrp/<preset>` (and `lrp64/<preset>`).
fn check_composites(fixture: &str, composites: &[Composite]) {
    let fx = Fixture::load(fixture);
    let model = fixture_model(fixture);
    let x = fx.t4("input");
    let targets = fx.targets();
    let options = fx.zennit_options();
    let mut failures = Vec::new();
    for composite in composites {
        let lrp = LrpModel::new(&model, composite.clone(), &options).unwrap();
        let attribution = lrp.attribute(&x, &targets).unwrap();
        let err_logits = max_rel(&attribution.logits, fx.values("logits"));
        assert!(
            err_logits < 1e-5,
            "{fixture}: logits differ by {err_logits:e}"
        );
        let ours = to_vec(&attribution.input);
        let verdict = parity(
            &ours,
            fx.values(&format!("lrp/{composite}")),
            fx.values(&format!("lrp64/{composite}")),
        );
        match verdict {
            Ok(report) => println!("{fixture} {composite}: {report}"),
            Err(report) => failures.push(format!("{fixture} {composite}: {report}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The four presets against zennit 1.0.0.
fn check_model(name: &str) {
    check_composites(&format!("z1_{name}"), &Composite::presets());
}

/// `epsilon-gamma-box` with the classic Gamma rule against zennit 0.4.6's.
fn check_classic_gamma(name: &str) {
    let mut classic = Composite::epsilon_gamma_box();
    classic.set_gamma_form(GammaForm::Classic).unwrap();
    check_composites(name, &[classic]);
}

#[test]
fn tiny_vgg_matches_zennit() {
    check_model("tiny_vgg");
}

#[test]
fn tiny_resnet_matches_zennit_resnet_canonizer() {
    check_model("tiny_resnet");
}

#[test]
fn vgg11_matches_zennit() {
    check_model("vgg11");
}

#[test]
fn resnet18_matches_zennit_resnet_canonizer() {
    check_model("resnet18");
}

/// Bottleneck blocks (1×1 → 3×3 with the stride → 1×1 ×4, downsampling and identity
/// shortcuts), hashed weights so BatchNorm statistics are pseudo-random.
#[test]
fn bottleneck_resnet_matches_zennit_resnet_canonizer() {
    check_model("tiny_bottleneck");
}

/// DenseNet: the BatchNorms after a convolution folded, those after a concatenation
/// (`norm1`, the transitions' `norm`, `norm5`) under zennit 1.0's Pass rule.
#[test]
fn densenet_matches_zennit_with_unfolded_batchnorm_passed() {
    check_model("tiny_densenet");
}

#[test]
fn classic_gamma_matches_zennit_0_4_6_on_tiny_vgg() {
    check_classic_gamma("tiny_vgg");
}

#[test]
fn classic_gamma_matches_zennit_0_4_6_on_resnets() {
    check_classic_gamma("tiny_resnet");
    check_classic_gamma("resnet18");
}

/// The two Gamma forms agree where the classic one is sound (a VGG: every convolution's input
/// is non-negative after its ReLU and relevance reaches only positive outputs) and differ on
/// a ResNet, where relevance reaches negative outputs before the residual sum.
#[test]
fn gamma_forms_agree_on_vgg_and_differ_on_resnet() {
    let run = |name: &str, form: GammaForm| {
        let fx = Fixture::load(&format!("z1_{name}"));
        let mut composite = Composite::epsilon_gamma_box();
        composite.set_gamma_form(form).unwrap();
        let lrp = LrpModel::new(&fixture_model(name), composite, &fx.zennit_options()).unwrap();
        to_vec(&lrp.attribute(&fx.t4("input"), &fx.targets()).unwrap().input)
    };
    let vgg = max_rel(
        &run("tiny_vgg", GammaForm::Classic),
        &run("tiny_vgg", GammaForm::Generalized),
    );
    assert!(vgg < 1e-5, "VGG: the forms differ by {vgg:e}");
    let resnet = max_rel(
        &run("tiny_bottleneck", GammaForm::Classic),
        &run("tiny_bottleneck", GammaForm::Generalized),
    );
    assert!(
        resnet > 1e-2,
        "bottleneck ResNet: the forms differ by only {resnet:e}"
    );
}
