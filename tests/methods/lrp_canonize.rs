//! Folding BatchNorm into the preceding layer keeps the model's function, removes exactly the
//! foldable BatchNorms, and keeps their names as aliases.

use crate::lrp_common;

use lrp_common::{max_rel, tiny_resnet, tiny_vgg, zoo_model};
use relevance::engine::canonize::fold_batchnorm;
use relevance::engine::predict;
use relevance::graph::builder::ConvGeom;
use relevance::graph::init::reference_params;
use relevance::graph::{GraphBuilder, Model, Op};
use relevance::rng::Rng;
use relevance::tensor::{from_vec, to_vec};

fn check_function_kept(name: &str, model: &Model, size: usize) {
    let mut rng = Rng::new(1);
    let x = from_vec(
        (0..2 * 3 * size * size).map(|_| rng.normal()).collect(),
        [2, 3, size, size],
    );
    let canon = fold_batchnorm(&model.graph, &model.params).unwrap();
    canon.graph.validate().unwrap();
    canon.graph.check_params(&canon.params).unwrap();
    let before = to_vec(&predict(&model.graph, &model.params, x.clone()).unwrap());
    let after = to_vec(&predict(&canon.graph, &canon.params, x).unwrap());
    let err = max_rel(&after, &before);
    assert!(err < 1e-5, "{name}: folded model output differs by {err:e}");
    let bns = |g: &relevance::graph::Graph| {
        g.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::BatchNorm(_)))
            .count()
    };
    assert_eq!(bns(&canon.graph), 0, "{name}: a BatchNorm was left");
    assert_eq!(canon.aliases.len(), bns(&model.graph));
    for (alias, &id) in &canon.aliases {
        assert!(
            canon.graph.nodes[id].op.is_linear_layer(),
            "{name}: {alias} points at {}",
            canon.graph.nodes[id].name
        );
        // The alias and the original BN node carry the same value.
        assert_eq!(canon.find(alias).unwrap(), id);
    }
}

#[test]
fn folding_keeps_the_function_of_bn_networks() {
    check_function_kept("tiny_vgg", &tiny_vgg(), 16);
    check_function_kept("tiny_resnet", &tiny_resnet(), 16);
    check_function_kept("resnet18", &zoo_model("resnet18", 10), 32);
    check_function_kept("vgg16_bn", &zoo_model("vgg16_bn", 10), 32);
}

#[test]
fn batchnorm_after_a_shared_or_nonlinear_input_is_left_alone() {
    // conv → (BN, ReLU) : the conv output is read twice, so folding would change the ReLU's input.
    // relu → BN: nothing to fold into.
    let mut b = GraphBuilder::new(3);
    let c = b.conv("c", 0, ConvGeom::new(4, 3).bias(true));
    let bn = b.bn("bn", c);
    let r = b.relu("r", c);
    let sum = b.add("sum", bn, r);
    let bn2 = b.bn("bn2", sum);
    let graph = b.finish(bn2);
    let params = reference_params(&graph).unwrap();
    let canon = fold_batchnorm(&graph, &params).unwrap();
    assert_eq!(canon.graph.nodes.len(), graph.nodes.len());
    assert!(canon.aliases.is_empty());
}

#[test]
fn a_layer_without_bias_gets_the_folded_bias() {
    // resnet convs have no bias; after folding each has `<conv>.bias` = β − μ·γ/√(σ²+ε).
    let model = zoo_model("resnet18", 10);
    let canon = fold_batchnorm(&model.graph, &model.params).unwrap();
    let bias = canon.params.values("conv1.bias").unwrap();
    let g = model.params.values("bn1.weight").unwrap();
    let beta = model.params.values("bn1.bias").unwrap();
    let mean = model.params.values("bn1.running_mean").unwrap();
    let var = model.params.values("bn1.running_var").unwrap();
    for c in 0..bias.len() {
        let want = beta[c] - mean[c] * g[c] / (var[c] + 1e-5).sqrt();
        assert!((bias[c] - want).abs() < 1e-6);
    }
    assert!(!canon.params.contains("bn1.weight"));
}

/// dense → ReLU → affine → dense, the affine map as a BatchNorm node or as `Mul`/`Add` by
/// constants (an ONNX export of Keras' BatchNormalization).
fn dense_relu_affine_dense(
    as_batchnorm: bool,
) -> (relevance::graph::Graph, relevance::graph::ParamStore) {
    use relevance::graph::Op;
    let mut b = GraphBuilder::new(6);
    let d1 = b.linear("d1", 0, 6, 5, true);
    let r = b.relu("r", d1);
    let affine = if as_batchnorm {
        b.bn("bn", r)
    } else {
        let s = b.push("s", Op::Constant("s".into()), vec![], 5);
        let m = b.mul("m", r, s);
        let t = b.push("t", Op::Constant("t".into()), vec![], 5);
        b.add("a", m, t)
    };
    let d2 = b.linear("d2", affine, 5, 3, true);
    let mut graph = b.finish(d2);
    if !as_batchnorm {
        for key in ["s", "t"] {
            graph.param_specs.push(relevance::graph::ParamSpec {
                key: key.into(),
                shape: vec![1, 5, 1, 1],
                init: relevance::graph::Init::Zeros,
                trainable: false,
            });
        }
    }
    let mut params = reference_params(&graph).unwrap();
    if !as_batchnorm {
        params
            .insert_values("s", vec![0.5, 2.0, -1.0, 3.0, 0.1], vec![1, 5, 1, 1])
            .unwrap();
        params
            .insert_values("t", vec![-1.0, 0.5, 2.0, -0.3, 1.5], vec![1, 5, 1, 1])
            .unwrap();
    }
    (graph, params)
}

#[test]
fn affine_maps_before_dense_layers_fold_into_them() {
    use relevance::engine::canonize::canonize;
    for as_batchnorm in [true, false] {
        let (graph, params) = dense_relu_affine_dense(as_batchnorm);
        graph.validate().unwrap();
        let canon = canonize(&graph, &params).unwrap();
        canon.graph.validate().unwrap();
        canon.graph.check_params(&canon.params).unwrap();
        // Only d1 → relu → d2 remain.
        let kinds: Vec<&str> = canon.graph.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(
            kinds,
            ["input", "linear", "relu", "linear"],
            "{as_batchnorm}"
        );
        let mut rng = Rng::new(4);
        let x = from_vec((0..4 * 6).map(|_| rng.normal()).collect(), [4, 6, 1, 1]);
        let before = to_vec(&predict(&graph, &params, x.clone()).unwrap());
        let after = to_vec(&predict(&canon.graph, &canon.params, x).unwrap());
        assert!(
            max_rel(&after, &before) < 1e-5,
            "{as_batchnorm}: {before:?} vs {after:?}"
        );
    }
}

#[test]
fn switched_off_units_get_no_relevance_through_a_folded_affine_map() {
    use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
    let (graph, params) = dense_relu_affine_dense(false);
    let model = Model {
        graph,
        params,
        card: relevance::graph::ModelCard {
            num_classes: 3,
            ..Default::default()
        },
        source: Default::default(),
    };
    let lrp = LrpModel::new(&model, Composite::epsilon_plus(), &LrpOptions::default()).unwrap();
    let mut rng = Rng::new(6);
    let x = from_vec((0..6).map(|_| rng.normal()).collect(), [1, 6, 1, 1]);
    let acts = lrp.forward(x).unwrap();
    let relu = lrp.find("r").unwrap();
    let (seed, _) = lrp.start_relevance(&acts, &[1]).unwrap();
    let at_relu = to_vec(
        &lrp.propagate(&acts, lrp.logits_node(), seed, &[relu])
            .unwrap()
            .remove(0),
    );
    let a = to_vec(acts.get(relu).unwrap());
    assert!(
        a.contains(&0.0),
        "the test needs a switched-off unit: {a:?}"
    );
    for (r, a) in at_relu.iter().zip(&a) {
        if *a == 0.0 {
            assert_eq!(*r, 0.0, "a switched-off unit received relevance {r}");
        }
    }
}

/// MBConv networks (EfficientNet, MobileNet-V2) have a BatchNorm right after every convolution,
/// as torchvision's do, so every BatchNorm folds (zennit 1.0's `SequentialMergeBatchNorm` merges
/// the same pairs) and the folded model computes the original function.
#[test]
fn mbconv_networks_fold_every_batchnorm() {
    check_function_kept("efficientnet_b0", &zoo_model("efficientnet_b0", 10), 32);
    check_function_kept("mobilenet_v2", &zoo_model("mobilenet_v2", 10), 32);
}

/// DenseNet: the BatchNorms after a convolution fold (`norm0`, each layer's `norm2`); those
/// after a concatenation or a pooling (each layer's `norm1`, the transitions' `norm`, `norm5`)
/// cannot, and LRP gives them zennit 1.0's Pass rule under every composite.
#[test]
fn densenet_batchnorm_after_a_concatenation_stays_and_gets_pass() {
    use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
    let model = lrp_common::tiny_densenet();
    let canon = fold_batchnorm(&model.graph, &model.params).unwrap();
    let mut left: Vec<&str> = canon
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::BatchNorm(_)))
        .map(|n| n.name.as_str())
        .collect();
    left.sort();
    let mut expected = vec!["features.norm5".to_string()];
    for block in 1..=4 {
        for layer in 1..=2 {
            expected.push(format!(
                "features.denseblock{block}.denselayer{layer}.norm1"
            ));
        }
        if block < 4 {
            expected.push(format!("features.transition{block}.norm"));
        }
    }
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(
        canon.aliases.len(),
        1 + 8,
        "norm0 and the eight norm2 folded"
    );
    for composite in Composite::presets() {
        let lrp = LrpModel::new(&model, composite.clone(), &LrpOptions::default()).unwrap();
        for name in &expected {
            let rule = lrp
                .assignment
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r);
            assert_eq!(rule.map(String::as_str), Some("pass"), "{composite} {name}");
        }
    }
}
