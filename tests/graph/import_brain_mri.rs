//! The real model: Keras VGG16 exported by tf2onnx (opset 13, NHWC input `[N, 240, 240, 3]`),
//! classifying 17 labelled brain MRIs. Needs `RELEVANCE_DATA` (see `tools/fetch-data.sh`);
//! without it the test says how to get the data and returns.
//!
//! Reference numbers in `brain_mri_ort.json` come from onnxruntime (`tools/fixtures_import.py`):
//! logits and probabilities for a synthetic input given by a formula (the same input here, so
//! this checks the imported graph alone) and for two MRIs preprocessed with PIL (this also
//! covers decoding and bicubic resizing; PIL's libjpeg and the `image` crate's decoder differ
//! by one grey level on ~1% of pixels, so the tolerance there is looser).

use std::path::{Path, PathBuf};

use relevance::data::image::load_input;
use relevance::engine::predict;
use relevance::graph::card::Layout;
use relevance::graph::{LoadOptions, Model};
use relevance::tensor::{T4, from_vec, max_abs_diff, max_rel_diff, to_vec};

fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("RELEVANCE_DATA") {
        Some(d) => Some(PathBuf::from(d).join("brain-mri")),
        None => {
            eprintln!(
                "RELEVANCE_DATA is not set: skipping the brain-MRI check \
                 (run `RELEVANCE_DATA=$(tools/fetch-data.sh) cargo test`)"
            );
            None
        }
    }
}

fn reference() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/brain_mri_ort.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// `(logits, probabilities)` for one input.
fn run(model: &Model, x: T4) -> (Vec<f32>, Vec<f32>) {
    let mut logits_graph = model.graph.clone();
    logits_graph.output = model.graph.logits();
    let logits = to_vec(&predict(&logits_graph, &model.params, x.clone()).unwrap());
    let probs = to_vec(&predict(&model.graph, &model.params, x).unwrap());
    (logits, probs)
}

#[test]
fn vgg16_classifies_all_17_mris_and_matches_onnxruntime() {
    let Some(dir) = data_dir() else { return };
    let model = Model::load(&dir.join("vgg16.onnx"), &LoadOptions::default()).unwrap();
    assert_eq!(model.card.layout, Layout::Nhwc);
    assert_eq!(
        (model.card.input_size, model.card.channels),
        ([240, 240], 3)
    );
    assert_eq!(
        model.card.classes,
        ["glioma", "meningioma", "notumor", "pituitary"]
    );

    // The imported graph alone: a synthetic input, 0.5 + 0.5·sin(0.0123·i) over NHWC index i.
    let (h, w, c) = (240, 240, 3);
    let mut x = vec![0f32; h * w * c];
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                let i = ((y * w + xx) * c + ch) as f64;
                x[(ch * h + y) * w + xx] = (0.5 + 0.5 * (0.0123 * i).sin()) as f32;
            }
        }
    }
    let reference = reference();
    let (logits, probs) = run(&model, from_vec(x, [1, c, h, w]));
    let ort_logits = floats(&reference["synthetic"]["logits"]);
    let err = max_rel_diff(&logits, &ort_logits);
    println!(
        "synthetic input: logits {logits:?}, onnxruntime {ort_logits:?}, rel. error {err:.2e}"
    );
    assert!(err < 1e-4);
    assert!(max_abs_diff(&probs, &floats(&reference["synthetic"]["probs"])) < 1e-5);

    let prefixes = [("gl", 0), ("me", 1), ("no", 2), ("pi", 3)];
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 17);
    let mut worst = 0f32;
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let x = load_input(f, &model.card).unwrap();
        let probs = to_vec(&predict(&model.graph, &model.params, x).unwrap());
        let best = (0..4)
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap();
        let expected = prefixes
            .iter()
            .find(|(p, _)| name[3..].starts_with(p))
            .unwrap()
            .1;
        let mut line = format!("{name}: {probs:.6?} → {}", model.class_name(best));
        if let Some(r) = reference.get(&name) {
            let d = max_abs_diff(&probs, &floats(&r["probs"]));
            worst = worst.max(d);
            line += &format!(" (onnxruntime on PIL's pixels: max abs diff {d:.2e})");
        }
        println!("{line}");
        assert_eq!(
            best,
            expected,
            "{name} classified as {}",
            model.class_name(best)
        );
    }
    assert!(worst > 0.0, "no reference image was compared");
    assert!(worst < 1e-3, "max abs probability difference {worst}");
}
