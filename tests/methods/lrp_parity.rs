//! Parity with zennit 0.4.6: the same weights (the reference formula) and inputs give the same
//! input relevance for each composite. Fixtures from `tools/fixtures_lrp.py`; criterion in
//! [`lrp_common::parity`] (1e-4 of the largest reference magnitude, or — where float32 round-off
//! moves zennit's own result by more — as close to zennit's float64 result as zennit's float32
//! result is, within 3×). ResNets use the `zennit` skip mode (zennit's ResNet canonizer).

use crate::lrp_common;

use lrp_common::{Fixture, fixture_model, max_rel, parity};
use relevance::methods::lrp::{Composite, LrpModel};
use relevance::tensor::to_vec;

fn check_model(name: &str) {
    let fx = Fixture::load(name);
    let model = fixture_model(name);
    let x = fx.t4("input");
    let targets = fx.targets();
    let options = fx.zennit_options();
    let mut failures = Vec::new();
    for composite in Composite::presets() {
        let lrp = LrpModel::new(&model, composite.clone(), &options).unwrap();
        let attribution = lrp.attribute(&x, &targets).unwrap();
        let err_logits = max_rel(&attribution.logits, fx.values("logits"));
        assert!(err_logits < 1e-5, "{name}: logits differ by {err_logits:e}");
        let ours = to_vec(&attribution.input);
        let verdict = parity(
            &ours,
            fx.values(&format!("lrp/{composite}")),
            fx.values(&format!("lrp64/{composite}")),
        );
        match verdict {
            Ok(report) => println!("{name} {composite}: {report}"),
            Err(report) => failures.push(format!("{name} {composite}: {report}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
