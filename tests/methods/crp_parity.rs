//! Parity with zennit-crp 0.6: channel relevances of a layer (`ChannelConcept.attribute`, with
//! absolute normalisation) and conditional heatmaps of several concepts at once
//! (`CondAttribution`, `exclude_parallel=True`) under EpsilonPlusFlat, on the fixtures of
//! `tools/fixtures_lrp.py`. Criterion: max |ours − reference| ≤ 1e-4 · max |reference|.

use crate::lrp_common;

use lrp_common::{Fixture, fixture_model, max_rel};
use relevance::methods::crp::{channel_relevance, conditional_relevance};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
use relevance::tensor::to_vec;

const LAYERS: [(&str, &str); 4] = [
    ("tiny_vgg", "features.4"),
    ("tiny_resnet", "layer2.0.conv1"),
    ("vgg11", "features.8"),
    ("resnet18", "layer3.0.conv2"),
];

#[test]
fn channel_relevance_and_conditional_heatmaps_match_zennit_crp() {
    for (name, layer) in LAYERS {
        let fx = Fixture::load(name);
        let model = fixture_model(name);
        let lrp = LrpModel::new(
            &model,
            Composite::epsilon_plus_flat(),
            &LrpOptions::default(),
        )
        .unwrap();
        let layer_id = lrp.find(layer).unwrap();
        let x = fx.t4("input");
        let targets = fx.targets();
        // Channel relevance of every image for its own target.
        let acts = lrp.forward(x.clone()).unwrap();
        let (seed, _) = lrp.start_relevance(&acts, &targets).unwrap();
        let at_layer = lrp
            .propagate(&acts, lrp.logits_node(), seed, &[layer_id])
            .unwrap()
            .remove(0);
        let ours: Vec<f32> = channel_relevance(&at_layer, true).concat();
        let err = max_rel(&ours, fx.values("crp/layer_relevance"));
        println!("{name} {layer}: channel relevance max rel error {err:.2e}");
        assert!(err < 1e-4, "{name}: channel relevance differs by {err:e}");
        // Conditional heatmaps of image 0, all concepts in one batch.
        let concepts: Vec<Vec<usize>> = fx
            .values("crp/concepts")
            .chunks(2)
            .map(|c| {
                let mut set = vec![c[0] as usize, c[1] as usize];
                set.dedup();
                set
            })
            .collect();
        let x0 = x.clone().narrow(0, 0, 1);
        let result = conditional_relevance(&lrp, &x0, targets[0], layer_id, &concepts, 8).unwrap();
        let heatmaps = to_vec(&result.heatmaps());
        let reference = fx.values("crp/heatmaps");
        let err = max_rel(&heatmaps, reference);
        println!("{name} {layer}: conditional heatmaps max rel error {err:.2e}");
        assert!(err < 1e-4, "{name}: heatmaps differ by {err:e}");
        // Each concept's heatmap separately (not only the batch as a whole) is close.
        let per = heatmaps.len() / concepts.len();
        for k in 0..concepts.len() {
            let e = max_rel(
                &heatmaps[k * per..(k + 1) * per],
                &reference[k * per..(k + 1) * per],
            );
            assert!(e < 1e-4, "{name} concept {:?}: {e:e}", concepts[k]);
        }
    }
}
