//! Training against PyTorch: optimiser updates equal `torch.optim` on the same gradients, and a
//! full training step of `small_cnn` (training-mode BatchNorm with running-statistic updates,
//! class-weighted cross-entropy, autodiff, SGD with momentum and weight decay) equals PyTorch's.
//! Fixtures: `tools/fixtures_train.py`.

use relevance::graph::import::{NamedTensor, safetensors as st};
use relevance::graph::init::reference_params;
use relevance::graph::{Op, zoo};
use relevance::tensor::{from_vec, max_rel_diff, to_vec};
use relevance::train::trainer::StepPlan;
use relevance::train::{Optimizer, OptimizerKind};

fn fixture(name: &str) -> Vec<NamedTensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/train")
        .join(name);
    st::read(&path).unwrap()
}

fn get<'a>(t: &'a [NamedTensor], key: &str) -> &'a NamedTensor {
    t.iter()
        .find(|x| x.key == key)
        .unwrap_or_else(|| panic!("fixture has no '{key}'"))
}

#[test]
fn optimiser_steps_match_torch_optim() {
    let f = fixture("optim.safetensors");
    for (name, kind, lr) in [
        ("sgd", OptimizerKind::Sgd { momentum: 0.9 }, 0.1),
        ("adam", OptimizerKind::adam(), 0.01),
    ] {
        let mut opt = Optimizer::new(kind, 0.01);
        let mut p: Vec<(String, Vec<f32>)> = ["w", "b"]
            .iter()
            .map(|k| (k.to_string(), get(&f, &format!("p0/{k}")).values.clone()))
            .collect();
        for step in 1..=3 {
            for (k, values) in p.iter_mut() {
                let g = get(&f, &format!("g{step}/{k}")).values.clone();
                let n = values.len();
                let new = opt.step(k, from_vec(values.clone(), [n]), from_vec(g, [n]), lr);
                *values = to_vec(&new);
                let expect = &get(&f, &format!("{name}{step}/{k}")).values;
                let err = max_rel_diff(values, expect);
                assert!(err < 1e-5, "{name} step {step} '{k}': rel err {err}");
            }
        }
    }
}

#[test]
fn small_cnn_training_steps_match_pytorch() {
    let f = fixture("step.safetensors");
    let mut graph = zoo::build("small_cnn", 2, 3).unwrap();
    // The fixture's twin has dropout p = 0 (a random mask cannot be matched across libraries).
    for n in graph.nodes.iter_mut() {
        if matches!(n.op, Op::Dropout { .. }) {
            n.op = Op::Identity;
        }
    }
    let mut params = reference_params(&graph).unwrap();
    let input = get(&f, "input");
    let x = from_vec(input.values.clone(), [4, 3, 16, 16]);
    let labels: Vec<usize> = get(&f, "labels")
        .values
        .iter()
        .map(|&v| v as usize)
        .collect();
    let weights = get(&f, "class_weights").values.clone();
    let plan = StepPlan::new(&graph, false).unwrap();
    let mut opt = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9 }, 1e-3);
    let r1 = plan
        .step(&mut params, &mut opt, x.clone(), &labels, &weights, 0.05, 0)
        .unwrap();
    let loss1 = get(&f, "loss1").values[0];
    assert!(
        (r1.loss - loss1).abs() < 1e-5 * loss1.abs().max(1.0),
        "loss {} vs torch {loss1}",
        r1.loss
    );
    let r2 = plan
        .step(&mut params, &mut opt, x, &labels, &weights, 0.05, 1)
        .unwrap();
    let loss2 = get(&f, "loss2").values[0];
    assert!(
        (r2.loss - loss2).abs() < 1e-4,
        "loss2 {} vs {loss2}",
        r2.loss
    );
    let mut checked = 0;
    for t in f.iter().filter(|t| t.key.starts_with("after/")) {
        let key = &t.key["after/".len()..];
        let ours = params.values(key).unwrap();
        let err = max_rel_diff(&ours, &t.values);
        assert!(err < 1e-4, "'{key}' after two steps: rel err {err}");
        checked += 1;
    }
    // 4 convs, 4 BNs × 4 tensors, linear weight + bias
    assert_eq!(checked, 4 + 16 + 2);
}
