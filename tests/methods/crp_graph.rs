//! Attribution graphs against zennit-crp 0.6's `AttributionGraph` (widths 3, 2; EpsilonPlusFlat;
//! concept layers = convolutions and dense layers) on the VGG-type fixtures, and the layer
//! search through skip connections.

use crate::lrp_common;

use lrp_common::{Fixture, fixture_model, tiny_resnet};
use relevance::methods::crp::graph::{attribution_graph, input_layers};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};

#[test]
fn attribution_graph_matches_zennit_crp() {
    for (name, layers) in [
        (
            "tiny_vgg",
            vec![
                "features.0",
                "features.4",
                "features.8",
                "classifier.0",
                "classifier.3",
            ],
        ),
        (
            "vgg11",
            vec![
                "features.0",
                "features.3",
                "features.6",
                "features.8",
                "features.11",
                "features.13",
                "features.16",
                "features.18",
                "classifier.0",
                "classifier.3",
                "classifier.6",
            ],
        ),
    ] {
        let fx = Fixture::load(name);
        let model = fixture_model(name);
        let lrp = LrpModel::new(
            &model,
            Composite::epsilon_plus_flat(),
            &LrpOptions::default(),
        )
        .unwrap();
        let root = fx.values("crp/graph_root");
        let (root_layer, root_channel) = (layers[root[0] as usize], root[1] as usize);
        let x = fx.t4("input").narrow(0, 0, 1);
        let target = root[2] as usize;
        let graph =
            attribution_graph(&lrp, &x, Some(target), root_layer, root_channel, &[3, 2]).unwrap();
        let reference: Vec<&[f32]> = fx.values("crp/graph_edges").chunks(5).collect();
        assert_eq!(graph.edges.len(), reference.len(), "{name}: edge count");
        for row in reference {
            let (pl, pc, cl, cc, rel) = (
                layers[row[0] as usize],
                row[1] as usize,
                layers[row[2] as usize],
                row[3] as usize,
                row[4],
            );
            let edge = graph
                .edges
                .iter()
                .find(|e| {
                    e.parent.layer == pl
                        && e.parent.channel == pc
                        && e.child.layer == cl
                        && e.child.channel == cc
                })
                .unwrap_or_else(|| panic!("{name}: missing edge {pl}:{pc} → {cl}:{cc}"));
            assert!(
                (edge.relevance - rel).abs() <= 1e-4 * rel.abs().max(1e-3),
                "{name}: edge {pl}:{pc} → {cl}:{cc} relevance {} vs {rel}",
                edge.relevance
            );
        }
        assert_eq!(graph.nodes[0].layer, root_layer);
    }
}

#[test]
fn input_layers_pass_through_pooling_sums_and_shortcuts() {
    let model = tiny_resnet();
    let lrp = LrpModel::new(&model, Composite::epsilon_plus(), &LrpOptions::default()).unwrap();
    let g = &lrp.canon.graph;
    let names = |ids: Vec<usize>| {
        let mut v: Vec<String> = ids.iter().map(|&i| g.nodes[i].name.clone()).collect();
        v.sort();
        v
    };
    // layer2.0.conv1 reads layer1.0's output: relu(add(bn2(conv2), shortcut = stem relu)).
    let id = lrp.find("layer2.0.conv1").unwrap();
    assert_eq!(names(input_layers(g, id)), ["conv1", "layer1.0.conv2"]);
    // fc reads avgpool ← layer2.0 relu ← add(conv2 branch, downsample conv).
    let id = lrp.find("fc").unwrap();
    assert_eq!(
        names(input_layers(g, id)),
        ["layer2.0.conv2", "layer2.0.downsample.0"]
    );
}
