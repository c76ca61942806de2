//! ONNX import: relevance's forward pass on imported graphs matches onnxruntime's output
//! (fixtures from `tools/fixtures_import.py`, batch of 2 through the dynamic batch axis), the
//! graph has the structure the importer promises (absorbed NHWC transpose, folded bias-adds,
//! ONNX node names), and bad files fail with one clear message.

use std::path::{Path, PathBuf};

use prost::Message;
use relevance::data::npy::read_npy;
use relevance::engine::predict;
use relevance::graph::card::Layout;
use relevance::graph::import::onnx::{InputHint, import_bytes, proto};
use relevance::graph::{LoadOptions, Model, Op};
use relevance::tensor::{from_vec, max_rel_diff, to_vec};

use crate::onnx_fixtures::count_ops;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn load(name: &str) -> Model {
    Model::load(&fixture(&format!("{name}.onnx")), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs the model on `<name>.input.npy` and compares with onnxruntime's `<name>.output.npy`:
/// largest absolute difference ≤ 1e-4 × largest reference magnitude.
fn assert_parity(name: &str, model: &Model) {
    let (shape, x) = read_npy(&fixture(&format!("{name}.input.npy"))).unwrap();
    let x = from_vec(x, [shape[0], shape[1], shape[2], shape[3]]);
    let y = predict(&model.graph, &model.params, x).unwrap();
    let (out_shape, expected) = read_npy(&fixture(&format!("{name}.output.npy"))).unwrap();
    let dims = y.dims();
    assert_eq!(dims[0], out_shape[0], "{name}: batch");
    assert_eq!(dims[1], out_shape[1], "{name}: width");
    let got = to_vec(&y);
    let err = max_rel_diff(&got, &expected);
    println!("{name}: max relative difference to onnxruntime {err:.2e}");
    assert!(
        err < 1e-4,
        "{name}: {got:?} vs {expected:?} (rel. error {err})"
    );
}

#[test]
fn tiny_cnn_with_asymmetric_pads_ceil_mode_and_batchnorm() {
    let m = load("tiny_cnn");
    assert_parity("tiny_cnn", &m);
    let first_conv = m
        .graph
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            Op::Conv2d(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_conv.padding, [2, 0, 0, 2]);
    assert_eq!(count_ops(&m, "batchnorm"), 1);
    assert!(
        m.graph
            .nodes
            .iter()
            .any(|n| matches!(&n.op, Op::MaxPool2d(p) if p.ceil_mode))
    );
    assert!(
        m.graph
            .nodes
            .iter()
            .any(|n| matches!(&n.op, Op::AvgPool2d(p) if !p.count_include_pad && p.ceil_mode))
    );
    assert_eq!(
        (
            m.card.input_size,
            m.card.channels,
            m.card.layout,
            m.card.num_classes
        ),
        ([15, 13], 3, Layout::Nchw, 5)
    );
}

#[test]
fn tiny_resnet_with_residual_add() {
    let m = load("tiny_resnet");
    assert_parity("tiny_resnet", &m);
    // One skip connection: Add of two tensors; the Gemm became a Linear with its bias.
    assert_eq!(count_ops(&m, "add"), 1);
    assert!(
        m.graph
            .nodes
            .iter()
            .any(|n| matches!(&n.op, Op::Linear(l) if l.bias.is_some()))
    );
}

#[test]
fn tiny_se_with_gates_hardswish_relu6_and_softmax() {
    let m = load("tiny_se");
    assert_parity("tiny_se", &m);
    assert!(count_ops(&m, "sigmoid") >= 2 && count_ops(&m, "mul") >= 2);
    assert!(
        m.graph
            .nodes
            .iter()
            .any(|n| n.op == Op::Clip { min: 0.0, max: 6.0 })
    );
    // The trailing Softmax is the output, so methods can strip it to reach the logits.
    assert_eq!(m.graph.nodes[m.graph.output].op, Op::Softmax);
    assert_ne!(m.graph.logits(), m.graph.output);
}

#[test]
fn keras_nhwc_export_becomes_an_nchw_graph() {
    let m = load("keras_nhwc");
    assert_parity("keras_nhwc", &m);
    assert_eq!(
        (
            m.card.input_size,
            m.card.channels,
            m.card.layout,
            m.card.num_classes
        ),
        ([11, 11], 3, Layout::Nhwc, 4)
    );
    // The input transpose is absorbed; the transpose back to NHWC before the flatten is kept as
    // one Permute named after the ONNX node, because Keras flattens in (H, W, C) order.
    let permutes: Vec<_> = m
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Permute(_)))
        .collect();
    assert_eq!(permutes.len(), 1);
    assert_eq!(permutes[0].name, "Transpose__20");
    assert_eq!(permutes[0].op, Op::Permute([0, 2, 3, 1]));
    // Dense bias-adds folded into the Linear layers; the Keras BN (Mul + Add of constants) kept.
    let linears: Vec<_> = m
        .graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Linear(l) => Some(l.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(linears.len(), 2);
    assert!(linears.iter().all(|l| l.bias.is_some()));
    assert_eq!(linears[0].bias.as_deref(), Some("dense1_b"));
    assert_eq!(count_ops(&m, "flatten"), 1);
    // ONNX node names are the layer names.
    assert!(m.graph.find("model/conv/BiasAdd").is_ok());
    assert!(m.graph.find("model/dense/MatMul").is_ok());
    assert_eq!(m.graph.nodes[0].name, "input");
}

#[test]
fn mixed_ops_gemm_depthwise_same_lower_clip_hardsigmoid_reshape() {
    let m = load("ops_mix");
    assert_parity("ops_mix", &m);
    let convs: Vec<_> = m
        .graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv2d(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(convs[0].groups, 3);
    assert_eq!(convs[0].dilation, [2, 2]);
    // SAME_LOWER with a 2×2 kernel: the one padded pixel goes top and left.
    assert_eq!(convs[1].padding, [1, 1, 0, 0]);
    assert_eq!(count_ops(&m, "reshape"), 1);
}

#[test]
fn unsupported_ops_are_all_listed_with_counts() {
    let path = fixture("unsupported.onnx");
    let err = Model::load(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsupported.onnx"), "{err}");
    assert!(err.contains("Einsum ×2"), "{err}");
    assert!(err.contains("LSTM ×1"), "{err}");
    assert!(!err.contains("Relu ×"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn a_card_that_contradicts_the_model_input_is_an_error() {
    let dir = std::env::temp_dir().join(format!("relevance-onnx-card-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let card = dir.join("card.json");
    std::fs::write(&card, r#"{"input_size": [32, 32]}"#).unwrap();
    let err = Model::load(
        &fixture("tiny_cnn.onnx"),
        &LoadOptions {
            arch: None,
            card: Some(card.clone()),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("height 32") && err.contains("15"), "{err}");
    // Classes and normalisation from a card are kept; the size comes from the model.
    std::fs::write(
        &card,
        r#"{"classes": ["a", "b", "c", "d"], "num_classes": 4, "normalization": {"kind": "unit"}}"#,
    )
    .unwrap();
    let m = Model::load(
        &fixture("keras_nhwc.onnx"),
        &LoadOptions {
            arch: None,
            card: Some(card),
        },
    )
    .unwrap();
    assert_eq!(m.class_name(2), "c");
    assert_eq!(m.card.input_size, [11, 11]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_and_external_data_files_fail_cleanly() {
    let bytes = std::fs::read(fixture("tiny_cnn.onnx")).unwrap();
    let hint = InputHint {
        fallback_size: [224, 224],
        ..InputHint::default()
    };
    for cut in [10, bytes.len() / 2, bytes.len() - 3] {
        assert!(import_bytes(&bytes[..cut], &hint).is_err(), "cut at {cut}");
    }
    let mut model = proto::ModelProto::decode(&bytes[..]).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let t = &mut graph.initializer[0];
    t.raw_data.clear();
    t.float_data.clear();
    t.data_location = 1;
    t.external_data.push(proto::StringStringEntryProto {
        key: "location".into(),
        value: "weights.bin".into(),
    });
    let name = t.name.clone();
    let err = import_bytes(&model.encode_to_vec(), &hint).unwrap_err();
    assert!(err.contains("external") && err.contains(&name), "{err}");
}
