//! Output names, model cards, data sets, `explain` inputs and messages: every output file stays
//! inside `--out` whatever the layer or input is called, hostile cards and data sets are refused
//! with one line naming the file and the field, and nothing allocates what the work does not need.

use std::path::{Path, PathBuf};

use relevance::graph::import::NamedTensor;
use relevance::graph::{Model, ModelCard};

use crate::common::*;

/// small_cnn (layers `features.0` … `features.8`) with 3 classes at 32×32: weights and card in
/// `inputs/model/`.
fn small_model(sb: &Sandbox) -> PathBuf {
    let card = ModelCard {
        classes: vec!["a".into(), "b".into(), "c".into()],
        num_classes: 3,
        input_size: [32, 32],
        ..ModelCard::default()
    };
    let model = Model::init("small_cnn", card, 5).unwrap();
    let tensors: Vec<NamedTensor> = model
        .params
        .iter()
        .map(|(k, p)| NamedTensor {
            key: k.clone(),
            shape: p.shape.clone(),
            values: p.values(),
        })
        .collect();
    let bytes = relevance::graph::import::safetensors::to_bytes(&tensors, None).unwrap();
    sb.input(
        "model/model.card.json",
        br#"{"arch": "small_cnn", "classes": ["a", "b", "c"], "num_classes": 3,
            "input_size": [32, 32]}"#,
    );
    sb.input("model/model.safetensors", &bytes)
}

/// A fixture of the import tests (small ONNX models exported by `torch.onnx.export`).
fn import_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Every file below `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                all.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    all.sort();
    all
}

/// Removes `/0` if this run created it (the old code wrote `/0/Conv_<c>.npy` there) and says
/// whether it did, so a failing case leaves no litter at the file-system root.
fn created_at_root(existed_before: bool) -> bool {
    let root = Path::new("/0");
    if existed_before || !root.exists() {
        return false;
    }
    for f in ["npy", "png"].iter().flat_map(|ext| {
        (0..16).map(move |c| root.join(format!("Conv_{c}.{ext}")))
    }) {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir(root);
    true
}

#[test]
fn concepts_with_a_torch_onnx_export_node_name_writes_inside_out() {
    let sb = Sandbox::new("out-onnx-layer");
    let image = sb.input("img.png", &png(20, 20));
    let existed = Path::new("/0").exists();
    let before = sb.listing();
    let out = run_limited(
        &sb.cwd(),
        &[
            "concepts",
            "--model",
            s(&import_fixture("tiny_cnn.onnx")),
            "--layer",
            "/0/Conv",
            "--top",
            "2",
            "--quiet",
            "--out",
            s(&sb.out()),
            s(&image),
        ],
    );
    let littered = created_at_root(existed);
    assert_ok(&out);
    assert!(!littered, "concepts wrote /0/Conv_*.npy at the file-system root");
    sb.assert_nothing_outside_out(&before);
    let files = files_below(&sb.out());
    // concepts.json + two channels × (.npy, .png), all in out/img/.
    assert_eq!(files.len(), 5, "{files:?}");
    for f in files.iter().filter(|f| !f.ends_with("concepts.json")) {
        assert!(f.starts_with("img"), "{f:?}");
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("_0_Conv-"), "{name}");
    }
    // The record keeps the layer's own name.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.out().join("concepts.json")).unwrap()).unwrap();
    assert_eq!(record[0]["layer"], "/0/Conv");
}

#[test]
fn concepts_inputs_named_dot_dot_in_a_sub_folder_write_inside_out() {
    let sb = Sandbox::new("out-dotdot-input");
    let model = small_model(&sb);
    // `...png` has the stem `..`, `..png` the stem `.`; two `x.png` in different folders share
    // a stem and must not overwrite each other.
    let inputs = [
        sb.input("sub/...png", &png(40, 36)),
        sb.input("sub/..png", &png(36, 40)),
        sb.input("p/x.png", &png(40, 40)),
        sb.input("q/x.png", &png(30, 40)),
    ];
    let before = sb.listing();
    let out_dir = sb.out();
    let mut args = vec![
        "concepts",
        "--model",
        s(&model),
        "--layer",
        "features.8",
        "--top",
        "1",
        "--quiet",
        "--out",
        s(&out_dir),
    ];
    args.extend(inputs.iter().map(|p| s(p)));
    let out = run_limited(&sb.cwd(), &args);
    assert_ok(&out);
    sb.assert_nothing_outside_out(&before);
    let folders: std::collections::BTreeSet<PathBuf> = files_below(&sb.out())
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    assert_eq!(folders.len(), 4, "one folder per input: {folders:?}");
}

#[test]
fn explain_with_a_250_character_input_name_writes_its_maps() {
    let sb = Sandbox::new("out-long-name");
    let model = small_model(&sb);
    let image = sb.input(&format!("{}.png", "n".repeat(250)), &png(32, 32));
    let before = sb.listing();
    let out = run_limited(
        &sb.cwd(),
        &[
            "explain",
            "--model",
            s(&model),
            "--method",
            "saliency,grad-cam",
            "--out",
            s(&sb.out()),
            s(&image),
        ],
    );
    assert_ok(&out);
    sb.assert_nothing_outside_out(&before);
    let files = files_below(&sb.out());
    assert!(files.iter().any(|f| f.to_string_lossy().ends_with(".saliency.npy")), "{files:?}");
    for f in &files {
        assert!(f.to_string_lossy().len() < 255, "{f:?}");
    }
}
