//! Conservation: with every bias zero (conv/linear biases, BatchNorm β and running means), the
//! relevance arriving at the input of a ResNet adds up to the explained logit under Relevance
//! Splitting (Otsuki et al. 2024) to within 1e-5, for randomly initialised ResNet-18 and
//! ResNet-50. The other skip modes and biased networks are measured and printed for the record.

use relevance::graph::{Model, ModelCard, Param};
use relevance::methods::lrp::{
    Composite, LrpModel, LrpOptions, SkipMode, StartRelevance, check_conservation,
};
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec};

/// A randomly initialised model with non-trivial BatchNorm scales and variances; biases, β and
/// running means zero when `bias_free`, random otherwise.
fn random_model(arch: &str, seed: u64, bias_free: bool) -> Model {
    let card = ModelCard {
        num_classes: 10,
        ..ModelCard::default()
    };
    let mut model = Model::init(arch, card, seed).unwrap();
    let mut rng = Rng::new(seed + 1);
    for (key, p) in model.params.iter_mut() {
        let n = p.shape.iter().product::<usize>();
        let values: Option<Vec<f32>> = if key.ends_with("running_mean") || key.ends_with(".bias") {
            Some(if bias_free {
                vec![0.0; n]
            } else {
                (0..n).map(|_| 0.1 * rng.normal()).collect()
            })
        } else if key.ends_with("running_var") {
            Some((0..n).map(|_| rng.uniform_range(0.5, 2.0)).collect())
        } else if p.shape.len() == 1 {
            // BatchNorm γ
            Some((0..n).map(|_| rng.uniform_range(0.5, 1.5)).collect())
        } else {
            None
        };
        if let Some(v) = values {
            *p = Param::from_values(v, p.shape.clone()).unwrap();
        }
    }
    model
}

fn random_input(n: usize, size: usize, seed: u64) -> T4 {
    let mut rng = Rng::new(seed);
    from_vec(
        (0..n * 3 * size * size).map(|_| rng.normal()).collect(),
        [n, 3, size, size],
    )
}

fn errors(model: &Model, skip: SkipMode, x: &T4, targets: &[usize]) -> Vec<f64> {
    let options = LrpOptions {
        skip,
        start: StartRelevance::Logit,
        zbox: None,
    };
    let lrp = LrpModel::new(model, Composite::epsilon_plus_flat(), &options).unwrap();
    check_conservation(&lrp, x, targets)
        .unwrap()
        .iter()
        .map(|c| c.error)
        .collect()
}

fn fmt(errors: &[f64]) -> String {
    errors
        .iter()
        .map(|e| format!("{e:.2e}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_split_conserves(arch: &str, size: usize) {
    let model = random_model(arch, 11, true);
    let x = random_input(2, size, 5);
    let targets = [3, 7];
    let split = errors(&model, SkipMode::Split, &x, &targets);
    let zennit = errors(&model, SkipMode::Zennit, &x, &targets);
    let symmetric = errors(&model, SkipMode::Symmetric, &x, &targets);
    println!(
        "{arch} bias-free conservation error: split {}, zennit {}, symmetric {}",
        fmt(&split),
        fmt(&zennit),
        fmt(&symmetric)
    );
    for e in split {
        assert!(e < 1e-5, "{arch}: split-mode conservation error {e:e}");
    }
    let biased = random_model(arch, 11, false);
    let split_b = errors(&biased, SkipMode::Split, &x, &targets);
    let zennit_b = errors(&biased, SkipMode::Zennit, &x, &targets);
    println!(
        "{arch} with biases: split {}, zennit {}",
        fmt(&split_b),
        fmt(&zennit_b)
    );
}

#[test]
fn relevance_splitting_conserves_on_resnet18() {
    check_split_conserves("resnet18", 64);
}

#[test]
fn relevance_splitting_conserves_on_resnet50() {
    check_split_conserves("resnet50", 64);
}

/// DenseNet-121, bias-free: its BatchNorms after concatenations stay in the graph and pass
/// relevance (zennit 1.0's Pass), so relevance is conserved; under the gradient they kept
/// before, each would rescale relevance by its `γ/√(σ² + ε)` (0.35–2.1 here).
#[test]
fn densenet121_conserves_with_unfolded_batchnorm_passed() {
    let model = random_model("densenet121", 11, true);
    let x = random_input(1, 32, 5);
    let errors = errors(&model, SkipMode::Zennit, &x, &[3]);
    println!("densenet121 bias-free conservation error: {}", fmt(&errors));
    assert!(errors.iter().all(|&e| e < 1e-5), "{}", fmt(&errors));
}
