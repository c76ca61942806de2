//! Parameter counts against torchvision's (PyTorch 2.15 / torchvision 0.29, 1000 classes):
//! trainable = Σ numel of `parameters()` with `requires_grad`, total = that plus the
//! `named_buffers()` other than `num_batches_tracked` (BatchNorm running mean and variance), the
//! numbers Keras prints as "Trainable params" and "Total params". Computed with:
//! `sum(p.numel() for p in m.parameters())`, `sum(b.numel() for k, b in m.named_buffers() if not
//! k.endswith('num_batches_tracked'))`.

use relevance::graph::{Model, ModelCard};

#[test]
fn zoo_parameter_counts_match_torchvision() {
    for (arch, trainable, total) in [
        ("resnet18", 11_689_512, 11_699_112),
        ("efficientnet_b0", 5_288_548, 5_330_564),
        ("densenet121", 7_978_856, 8_062_504),
    ] {
        let model = Model::init(arch, ModelCard::default(), 0).unwrap();
        let counts = model.parameter_counts();
        assert_eq!(counts.trainable, trainable, "{arch} trainable");
        assert_eq!(counts.total, total, "{arch} total");
    }
}

#[test]
fn a_binary_logit_head_adds_no_parameters() {
    let card = ModelCard {
        num_classes: 1,
        input_size: [32, 32],
        ..ModelCard::default()
    };
    let binary = Model::init("small_cnn", card.clone(), 0).unwrap();
    assert_eq!(binary.card.num_classes, 2, "presented as [−z, z]");
    let graph = relevance::graph::zoo::build("small_cnn", 1, 3).unwrap();
    let params = relevance::graph::init::init_params(&graph, 0).unwrap();
    let plain = Model {
        graph,
        params,
        card,
        source: Default::default(),
    };
    assert_eq!(binary.parameter_counts(), plain.parameter_counts());
}
