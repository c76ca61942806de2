//! `relevance inspect` end to end: its numbers agree with the library and the weights, its CAM
//! layers with what `explain` does, its LRP rules with zennit's composites; unsupported ONNX
//! operators are listed all at once and bad files are one-line errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use relevance::graph::import::{NamedTensor, safetensors::to_bytes};
use relevance::graph::init::reference_params;
use relevance::graph::{LoadOptions, Model, zoo};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relevance-inspect-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn relevance(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(args)
        .output()
        .expect("run relevance")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `relevance inspect ARGS --json`, which must succeed.
fn inspect_json(args: &[&str]) -> Value {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    let out = relevance(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts a failed run with exactly one stderr line `error: …` that mentions every `needle`.
fn assert_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "succeeded; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' missing from: {stderr}");
    }
}

/// A colour PNG of an odd size (explain resizes it to the model's input).
fn picture(dir: &Path) -> PathBuf {
    let png = dir.join("scan.png");
    image::RgbImage::from_fn(30, 26, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 9) as u8, ((x * y) % 256) as u8])
    })
    .save(&png)
    .unwrap();
    png
}

/// A small_cnn with 3 outputs and reference weights as safetensors, its card naming only the
/// architecture and the classes: (weights, the tensors written).
fn small_cnn(dir: &Path) -> (PathBuf, Vec<NamedTensor>) {
    let graph = zoo::build("small_cnn", 3, 3).unwrap();
    let tensors =
        relevance::train::checkpoint::params_to_tensors(&reference_params(&graph).unwrap(), "");
    let weights = dir.join("net.safetensors");
    std::fs::write(&weights, to_bytes(&tensors, None).unwrap()).unwrap();
    std::fs::write(
        dir.join("net.card.json"),
        r#"{"arch": "small_cnn", "classes": ["cat", "dog", "bird"], "input_size": [28, 28]}"#,
    )
    .unwrap();
    (weights, tensors)
}

/// The grad-cam layer `explain` records in explain.json (with `--layer` if given), or its
/// one-line error.
fn explained_layer(model: &Path, image: &Path, layer: Option<&str>, out: &Path) -> Output {
    let mut args = vec![
        "explain",
        "--model",
        s(model),
        "--method",
        "grad-cam",
        "--out",
        s(out),
        s(image),
    ];
    if let Some(l) = layer {
        args.extend(["--layer", l]);
    }
    relevance(&args)
}

fn recorded_grad_cam_layer(out: &Path) -> String {
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("explain.json")).unwrap()).unwrap();
    record["layers"]["grad-cam"].as_str().unwrap().to_string()
}

fn operator_counts(model: &Model) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for node in &model.graph.nodes {
        *counts.entry(node.op.kind().to_string()).or_default() += 1;
    }
    counts
}

#[test]
fn counts_on_an_onnx_model_agree_with_the_imported_graph() {
    let path = fixture("tiny_resnet.onnx");
    let v = inspect_json(&[s(&path)]);
    let model = Model::load(&path, &LoadOptions::default()).unwrap();
    let m = &v["model"];
    let sum: usize = model
        .params
        .iter()
        .map(|(_, p)| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(m["parameters"]["count"], sum);
    assert_eq!(m["parameters"]["tensors"], model.params.len());
    let counts: BTreeMap<String, u64> = serde_json::from_value(m["operators"].clone()).unwrap();
    assert_eq!(counts, operator_counts(&model));
    assert_eq!(m["input"]["shape"], serde_json::json!([1, 3, 12, 12]));
    assert_eq!(m["output"]["shape"], serde_json::json!([1, 4]));
    assert_eq!(v["onnx_operators"]["Conv"], 4);
    assert_eq!(v["unsupported"], serde_json::json!({}));
}

#[test]
fn a_keras_model_shows_its_nhwc_layout() {
    let v = inspect_json(&[s(&fixture("keras_nhwc.onnx"))]);
    let input = &v["model"]["input"];
    assert_eq!(input["layout"], "nhwc");
    assert_eq!(input["shape"], serde_json::json!([1, 3, 11, 11]));
    assert_eq!(input["original_shape"], serde_json::json!([1, 11, 11, 3]));
    assert_eq!(v["model"]["output"]["softmax"], true);
}

#[test]
fn parameters_of_a_state_dict_are_the_sum_over_its_tensors() {
    let dir = scratch("params");
    let (weights, tensors) = small_cnn(&dir);
    let v = inspect_json(&[s(&weights)]);
    let written: usize = tensors.iter().map(|t| t.values.len()).sum();
    assert_eq!(v["model"]["parameters"]["count"], written);
    assert_eq!(v["model"]["parameters"]["tensors"], tensors.len());
    // The card names only the classes; the weights fix their count.
    assert_eq!(v["model"]["output"]["shape"], serde_json::json!([1, 3]));
    assert_eq!(
        v["model"]["output"]["class_names"],
        serde_json::json!(["cat", "dog", "bird"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_default_cam_layer_is_the_one_explain_records() {
    let dir = scratch("default-cam");
    let image = picture(&dir);
    let (weights, _) = small_cnn(&dir);
    for model in [
        fixture("tiny_resnet.onnx"),
        fixture("keras_nhwc.onnx"),
        weights,
    ] {
        let v = inspect_json(&[s(&model)]);
        let out = dir.join("explained");
        let run = explained_layer(&model, &image, None, &out);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            v["model"]["cam"]["default_layer"].as_str().unwrap(),
            recorded_grad_cam_layer(&out),
            "{}",
            model.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_candidate_layer_is_accepted_by_explain_and_the_classifier_is_not() {
    let dir = scratch("candidates");
    let image = picture(&dir);
    let model = fixture("tiny_resnet.onnx");
    let v = inspect_json(&[s(&model)]);
    let candidates: Vec<String> = v["model"]["cam"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(candidates.len() >= 4, "{candidates:?}");
    for name in &candidates {
        let out = dir.join("explained");
        let run = explained_layer(&model, &image, Some(name), &out);
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(&recorded_grad_cam_layer(&out), name);
    }
    // The logits have no spatial grid: not a candidate, and explain refuses them.
    let logits = v["model"]["output"]["logits_node"].as_str().unwrap();
    assert!(!candidates.iter().any(|c| c == logits));
    let run = explained_layer(&model, &image, Some(logits), &dir.join("refused"));
    assert_error(&run, &["no spatial dimensions"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lrp_rules_follow_zennits_composites_on_a_builtin_resnet() {
    let v = inspect_json(&["--arch", "resnet18"]);
    assert_eq!(v["format"], "built-in");
    let m = &v["model"];
    assert_eq!(m["cam"]["default_layer"], "layer4.1");
    assert_eq!(m["output"]["shape"], serde_json::json!([1, 1000]));
    let nodes = m["lrp"]["nodes"].as_array().unwrap();
    let of = |op: &'static str| nodes.iter().filter(move |n| n["op"] == op);
    assert_eq!(of("conv2d").count(), 20);
    assert_eq!(of("batchnorm").count(), 0, "BatchNorm is folded before LRP");
    // EpsilonPlus: z+ on every convolution, ε on the dense layer.
    assert!(of("conv2d").all(|n| n["rules"]["epsilon-plus"] == "zplus"));
    assert!(of("linear").all(|n| {
        n["rules"]["epsilon-plus"]
            .as_str()
            .unwrap()
            .starts_with("epsilon")
    }));
    // The first layer rules: Flat and z^B on the first convolution only.
    let first_conv = of("conv2d").next().unwrap();
    assert_eq!(first_conv["name"], "conv1");
    assert_eq!(first_conv["rules"]["epsilon-plus-flat"], "flat");
    assert_eq!(first_conv["rules"]["epsilon-gamma-box"], "zbox");
    assert!(
        of("conv2d")
            .skip(1)
            .all(|n| n["rules"]["epsilon-gamma-box"] == "gamma(0.25)"
                && n["rules"]["epsilon-alpha2-beta1"] == "alpha2-beta1")
    );
    assert!(of("add").all(|n| n["rules"]["epsilon-plus"] == "skip-zennit"));
    assert!(of("relu").all(|n| n["rules"]["epsilon-plus"] == "pass"));
}

#[test]
fn the_text_layout_names_each_section() {
    let out = relevance(&["inspect", s(&fixture("tiny_resnet.onnx"))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for label in [
        "model",
        "input",
        "normalise",
        "resize",
        "output",
        "parameters",
        "operators",
        "CAM layer",
        "LRP rules",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(label)),
            "no '{label}' line in:\n{text}"
        );
    }
    assert!(text.contains("(default)"), "{text}");
    assert!(
        text.lines().all(|l| l == l.trim_end()),
        "trailing spaces:\n{text}"
    );
}

#[test]
fn unsupported_onnx_operators_are_listed_all_at_once_and_inspect_succeeds() {
    let model = fixture("unsupported.onnx");
    let v = inspect_json(&[s(&model)]);
    assert_eq!(
        v["unsupported"],
        serde_json::json!({"Einsum": 2, "LSTM": 1})
    );
    assert_eq!(v["onnx_operators"]["Relu"], 1);
    assert!(v["model"].is_null());
    let out = relevance(&["inspect", s(&model)]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Einsum ×2, LSTM ×1"), "{text}");
}

#[test]
fn bad_files_and_requests_are_one_line_errors() {
    let evil = fixture("evil_legacy.pth");
    let out = relevance(&["inspect", s(&evil), "--arch", "small_cnn"]);
    assert_error(&out, &[s(&evil), "refusing"]);
    let missing = fixture("no_such_model.onnx");
    assert_error(
        &relevance(&["inspect", s(&missing)]),
        &[s(&missing), "no such file"],
    );
    let garbage = fixture("tiny_cnn.input.npy");
    assert_error(
        &relevance(&["inspect", s(&garbage)]),
        &[s(&garbage), "unsupported weights format"],
    );
    assert_error(&relevance(&["inspect"]), &["--arch"]);
    assert_error(
        &relevance(&["inspect", "--arch", "resnet99"]),
        &["resnet99", "unknown architecture"],
    );
    let mismatch = fixture("mismatch.pth");
    assert_error(
        &relevance(&["inspect", s(&mismatch), "--arch", "small_cnn"]),
        &[s(&mismatch), "features.0.weight"],
    );
}
