//! Folding BatchNorm into the preceding layer keeps the model's function, removes exactly the
//! foldable BatchNorms, and keeps their names as aliases.

mod lrp_common;

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
