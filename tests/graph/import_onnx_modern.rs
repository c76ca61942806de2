//! ONNX operators of ConvNeXt, ShuffleNet, MnasNet and TensorFlow-padded models: small torch
//! models built from torchvision's own blocks, exported by torch.onnx at opsets 13 and 17
//! (fixtures from `tools/fixtures_onnx_modern.py`). relevance's logits and input gradients
//! are compared with torch's forward pass and autograd; the graph has one node per LayerNorm,
//! GELU and channel shuffle whatever form the exporter wrote; LRP conserves relevance on a
//! bias-free ConvNeXt; every method runs; misused operators are refused by name.

use relevance::engine::forward;
use relevance::graph::{Model, Op, PadMode};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
use relevance::methods::registry::METHODS;
use relevance::methods::{MethodOptions, MethodSpec};
use relevance::tensor::{T4, to_vec};

use crate::onnx_fixtures::{FixtureDir, count_ops};

/// The logit whose input gradient the fixtures hold.
const TARGET: usize = 3;

const FIXTURES: FixtureDir = FixtureDir("modern");

fn load(name: &str) -> Model {
    FIXTURES.load(name)
}

fn input(name: &str) -> T4 {
    FIXTURES.input(name)
}

/// Logits within 1e-4 and the input gradient of logit [`TARGET`] within 1e-4 (relative to
/// the largest reference value) of torch's.
fn assert_torch_parity(name: &str, model: &Model) {
    FIXTURES.assert_reference_parity(name, model, TARGET);
}

#[test]
fn convnext_blocks_import_as_layernorm_and_gelu_nodes_at_opsets_13_and_17() {
    for name in ["convnext.13", "convnext.17"] {
        let m = load(name);
        assert_torch_parity(name, &m);
        // Stem, two + one blocks, downsampling and head LayerNorms: 6, whether exported as
        // LayerNormalization (17) or decomposed (13); their γ and β inside the node.
        assert_eq!(count_ops(&m, "layernorm"), 6, "{name}");
        assert!(
            m.graph.nodes.iter().all(
                |n| !matches!(&n.op, Op::LayerNorm(l) if l.weight.is_none() || l.bias.is_none())
            ),
            "{name}: every LayerNorm carries its γ and β"
        );
        assert_eq!(count_ops(&m, "gelu"), 3, "{name}");
        // Layer scale folded into the second point-wise convolution; nothing else multiplies.
        assert_eq!(count_ops(&m, "mul"), 0, "{name}");
        // Residual sums only: biases are folded into the convolutions.
        assert_eq!(count_ops(&m, "add"), 3, "{name}");
    }
}

#[test]
fn convnext_from_the_dynamo_exporter_imports_its_as_strided_head_as_a_reshape() {
    let name = "convnext.dynamo";
    let m = load(name);
    assert_torch_parity(name, &m);
    assert_eq!(count_ops(&m, "layernorm"), 6);
    assert_eq!(count_ops(&m, "gelu"), 3);
}

#[test]
fn shufflenet_units_split_and_shuffle_channels_like_torch() {
    for name in ["shufflenet.13", "shufflenet.17"] {
        let m = load(name);
        assert_torch_parity(name, &m);
        assert_eq!(count_ops(&m, "channel_shuffle"), 2, "{name}");
        assert!(
            m.graph
                .nodes
                .iter()
                .any(|n| n.op == Op::ChannelShuffle { groups: 2 })
        );
        // The stride-1 unit splits its input into two halves of 8 channels.
        assert_eq!(count_ops(&m, "channel_slice"), 2, "{name}");
        // x.mean([2, 3]) is a global average pooling.
        assert_eq!(count_ops(&m, "adaptive_avgpool2d"), 1, "{name}");
    }
}

#[test]
fn zero_pads_fold_into_convolutions_and_other_pads_become_pad_nodes() {
    for name in ["pads.13", "pads.17"] {
        let m = load(name);
        assert_torch_parity(name, &m);
        let convs: Vec<[usize; 4]> = m
            .graph
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Conv2d(c) => Some(c.padding),
                _ => None,
            })
            .collect();
        // F.pad(x, (0, 1, 0, 1)) before a valid convolution: TensorFlow's asymmetric "same".
        assert_eq!(convs[0], [0, 0, 1, 1], "{name}");
        let pads: Vec<([usize; 4], PadMode)> = m
            .graph
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Pad { pads, mode } => Some((*pads, *mode)),
                _ => None,
            })
            .collect();
        assert_eq!(
            pads,
            vec![
                ([2, 1, 1, 1], PadMode::Reflect),
                ([1, 2, 1, 1], PadMode::Edge),
                ([0, 1, 1, 0], PadMode::Constant(0.5)),
            ],
            "{name}"
        );
    }
}

#[test]
fn reduce_max_and_reduce_sum_become_global_pools_and_match_torch() {
    for name in ["reductions.13", "reductions.17"] {
        let m = load(name);
        assert_torch_parity(name, &m);
        // The spatial maximum is a max pooling over the whole map, the sums are means (global
        // average pooling, channel mean) times the number of values summed.
        assert_eq!(count_ops(&m, "maxpool2d"), 1, "{name}");
        assert_eq!(count_ops(&m, "adaptive_avgpool2d"), 1, "{name}");
        assert_eq!(count_ops(&m, "channel_mean"), 1, "{name}");
        let composite = Composite::preset("epsilon-plus").unwrap();
        let lrp = LrpModel::new(&m, composite, &LrpOptions::default()).unwrap();
        let graph = &lrp.canon.graph;
        for (node, rule) in &lrp.assignment {
            let kind = graph.nodes[graph.find(node).unwrap()].op.kind();
            if ["adaptive_avgpool2d", "channel_mean"].contains(&kind) {
                assert_eq!(rule, "norm", "{name}: {node}");
            }
        }
    }
}

#[test]
fn leaky_relu_elu_selu_prelu_and_channel_means_match_torch_with_their_lrp_rules() {
    for name in ["activations.13", "activations.17"] {
        let m = load(name);
        assert_torch_parity(name, &m);
        assert!(
            m.graph
                .nodes
                .iter()
                .any(|n| n.op == Op::LeakyRelu { alpha: 0.1 })
        );
        assert!(m.graph.nodes.iter().any(|n| n.op
            == Op::Elu {
                alpha: 0.7,
                scale: 1.0
            }));
        assert!(m.graph.nodes.iter().any(
            |n| matches!(n.op, Op::Elu { alpha, scale } if (alpha - 1.673_263_2).abs() < 1e-6 && (scale - 1.050_701).abs() < 1e-6)
        ));
        assert_eq!(count_ops(&m, "prelu"), 1, "{name}");
        assert_eq!(count_ops(&m, "channel_mean"), 1, "{name}");
        let lrp = LrpModel::new(
            &m,
            Composite::preset("epsilon-plus").unwrap(),
            &LrpOptions::default(),
        )
        .unwrap();
        let graph = &lrp.canon.graph;
        for (node, rule) in &lrp.assignment {
            let kind = graph.nodes[graph.find(node).unwrap()].op.kind();
            if ["leaky_relu", "elu", "prelu"].contains(&kind) {
                assert_eq!(rule, "pass", "{name}: {node}");
            }
            if kind == "channel_mean" {
                assert_eq!(rule, "norm", "{name}: {node}");
            }
        }
    }
}

#[test]
fn lrp_conserves_relevance_through_layernorm_gelu_and_layer_scale_on_a_bias_free_convnext() {
    let name = "convnext_nobias.17";
    let m = load(name);
    assert_torch_parity(name, &m);
    let x = input(name);
    for composite in ["epsilon-plus", "epsilon-plus-flat", "epsilon-alpha2-beta1"] {
        let lrp = LrpModel::new(
            &m,
            Composite::preset(composite).unwrap(),
            &LrpOptions::default(),
        )
        .unwrap();
        let graph = &lrp.canon.graph;
        let rule_of = |kind: &str| -> Vec<&str> {
            lrp.assignment
                .iter()
                .filter(|(node, _)| graph.nodes[graph.find(node).unwrap()].op.kind() == kind)
                .map(|(_, rule)| rule.as_str())
                .collect()
        };
        assert_eq!(rule_of("layernorm"), vec!["layernorm-epsilon"; 6]);
        assert_eq!(rule_of("gelu"), vec!["pass"; 3]);
        // Each LayerNorm (σ held constant, no β) passes on exactly the relevance it receives:
        // every one of them is its input's only reader.
        let acts = forward(graph, &lrp.canon.params, x.clone()).unwrap();
        let (seed, explained) = lrp.start_relevance(&acts, &[TARGET]).unwrap();
        let norms: Vec<usize> = (0..graph.nodes.len())
            .filter(|&id| matches!(graph.nodes[id].op, Op::LayerNorm(_)))
            .collect();
        let mut collect = Vec::new();
        for &id in &norms {
            collect.extend([id, graph.nodes[id].inputs[0]]);
        }
        let r = lrp
            .propagate(&acts, lrp.logits_node(), seed, &collect)
            .unwrap();
        for (k, &id) in norms.iter().enumerate() {
            let out: f32 = to_vec(&r[2 * k]).iter().sum();
            let inp: f32 = to_vec(&r[2 * k + 1]).iter().sum();
            let err = (out - inp).abs() / explained[0].abs();
            assert!(
                err < 1e-5,
                "{composite}: '{}' receives {out} and passes on {inp}",
                graph.nodes[id].name
            );
        }
        // The whole model: what the residual-sum and z⁺/αβ rules lose on signed (GELU)
        // activations stays small for the ε/z⁺ composites (measured 1.6e-3).
        let a = lrp.attribute(&x, &[TARGET]).unwrap();
        let total: f32 = to_vec(&a.input).iter().sum();
        let err = (total - explained[0]).abs() / explained[0].abs();
        println!(
            "{composite}: Σ R = {total}, logit {}, error {err:.1e}",
            explained[0]
        );
        if composite != "epsilon-alpha2-beta1" {
            assert!(
                err < 5e-3,
                "{composite}: Σ R = {total} for {}",
                explained[0]
            );
        }
    }
}

#[test]
fn every_method_runs_on_imported_convnext_and_shufflenet_graphs() {
    for name in ["convnext.17", "shufflenet.13"] {
        let m = load(name);
        let x = input(name);
        for info in METHODS {
            let spec = MethodSpec::parse(
                info.name,
                &MethodOptions {
                    steps: 2,
                    samples: 2,
                    ..MethodOptions::default()
                },
            )
            .unwrap();
            let prepared = spec
                .prepare(&m)
                .unwrap_or_else(|e| panic!("{name} {}: {e}", info.name));
            let maps = match prepared.explain(&x, &[TARGET]) {
                // CAM proper needs a GAP + linear head; ConvNeXt has a LayerNorm between.
                Err(e) if info.name == "cam" && name.starts_with("convnext") => {
                    assert!(e.to_string().contains("global average pooling"), "{e}");
                    continue;
                }
                other => {
                    other
                        .unwrap_or_else(|e| panic!("{name} {}: {e}", info.name))
                        .maps
                }
            };
            assert!(
                to_vec(&maps).iter().all(|v| v.is_finite()),
                "{name} {}: non-finite map",
                info.name
            );
        }
    }
}

#[test]
fn misused_operators_are_refused_by_node_attribute_and_value() {
    let err = |name: &str| FIXTURES.refusal(name);
    let e = err("erf_alone");
    assert!(
        e.contains("node 'lonely_erf' (Erf)") && e.contains("GELU"),
        "{e}"
    );
    let e = err("pad_wrap");
    assert!(
        e.contains("node 'wrap_pad' (Pad)") && e.contains("mode = 'wrap'"),
        "{e}"
    );
}
