//! Output heads end to end: a one-logit model is a binary logit (probability σ(z), the negative
//! class explains −z), a `sigmoid` card gives per-class probabilities and labels, and heads that
//! contradict the model are one-line errors. The reference values are computed here from the
//! model's raw logit with the closed forms, not read back from the code under test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use relevance::data::image::load_input;
use relevance::data::npy::read_npy;
use relevance::engine::predict;
use relevance::graph::import::safetensors::to_bytes;
use relevance::graph::init::reference_params;
use relevance::graph::{Graph, ModelCard, ParamStore, zoo};
use relevance::tensor::to_vec;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relevance-heads-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A small_cnn with `outputs` outputs written as `net.safetensors` + `net.card.json` (the card
/// from `card_json`), an input image, and the raw graph and weights for reference logits.
fn setup(
    dir: &Path,
    outputs: usize,
    card_json: serde_json::Value,
) -> (PathBuf, PathBuf, Graph, ParamStore) {
    let graph = zoo::build("small_cnn", outputs, 3).unwrap();
    let params = reference_params(&graph).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&params, "");
    let weights = dir.join("net.safetensors");
    std::fs::write(&weights, to_bytes(&tensors, None).unwrap()).unwrap();
    std::fs::write(dir.join("net.card.json"), card_json.to_string()).unwrap();
    let png = dir.join("scan.png");
    image::RgbImage::from_fn(40, 36, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 7) as u8, ((x * y) % 200) as u8])
    })
    .save(&png)
    .unwrap();
    (weights, png, graph, params)
}

/// The raw logits of the unmodified graph on the image, as the card preprocesses it.
fn raw_logits(graph: &Graph, params: &ParamStore, png: &Path, card: &ModelCard) -> Vec<f32> {
    let x = load_input(png, card).unwrap();
    to_vec(&predict(graph, params, x).unwrap())
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn card_for(dir: &Path) -> ModelCard {
    ModelCard::load(&dir.join("net.card.json")).unwrap()
}

#[test]
fn one_logit_model_reports_sigmoid_probability_and_both_classes() {
    let dir = scratch("binary");
    let card =
        serde_json::json!({"arch": "small_cnn", "classes": ["tumour"], "input_size": [32, 32]});
    let (weights, png, graph, params) = setup(&dir, 1, card);
    let z = raw_logits(&graph, &params, &png, &card_for(&dir))[0] as f64;
    let stdout = ok(&run(&[
        "predict",
        "--model",
        s(&weights),
        "--top",
        "2",
        "--logits",
        s(&png),
    ]));
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let logits: Vec<f64> = serde_json::from_value(line["logits"].clone()).unwrap();
    assert!(
        (logits[0] + z).abs() < 1e-5 && (logits[1] - z).abs() < 1e-5,
        "{logits:?} vs z={z}"
    );
    let (best, p_best) = if z > 0.0 {
        ("tumour", sigmoid(z))
    } else {
        ("not tumour", sigmoid(-z))
    };
    assert_eq!(line["class"], best);
    assert!(
        (line["prob"].as_f64().unwrap() - p_best).abs() < 1e-6,
        "{line}"
    );
    let top = line["top"].as_array().unwrap();
    let total: f64 = top.iter().map(|t| t["prob"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-6, "σ(z) + σ(−z) = 1: {line}");
}

#[test]
fn negative_target_explains_minus_the_logit() {
    let dir = scratch("neg");
    let card = serde_json::json!({"arch": "small_cnn", "classes": ["normal", "tumour"], "input_size": [32, 32]});
    let (weights, png, _, _) = setup(&dir, 1, card);
    let maps = |target: &str, tag: &str| -> Vec<Vec<f32>> {
        let out = dir.join(tag);
        ok(&run(&[
            "explain",
            "--model",
            s(&weights),
            "--method",
            "saliency,lrp:epsilon-plus",
            "--target",
            target,
            "--out",
            s(&out),
            s(&png),
        ]));
        ["saliency", "lrp-epsilon-plus"]
            .iter()
            .map(|m| {
                let name = std::fs::read_dir(&out)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .find(|f| f.ends_with(".npy") && f.contains(m.trim_start_matches("lrp-")))
                    .unwrap_or_else(|| panic!("no {m} map in {}", out.display()));
                read_npy(&out.join(name)).unwrap().1
            })
            .collect()
    };
    let positive = maps("tumour", "pos");
    let negative = maps("neg:tumour", "neg");
    let by_name = maps("normal", "normal");
    for (p, n) in positive.iter().zip(&negative) {
        let scale = p.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        // The gradient of −z is −∇z; LRP is linear in its starting relevance (−z instead of z).
        let worst = p
            .iter()
            .zip(n)
            .map(|(a, b)| (a + b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-5 * scale,
            "neg map is not −pos: {worst} vs {scale}"
        );
    }
    assert_eq!(negative, by_name, "neg:tumour is the class 'normal'");
}

#[test]
fn sigmoid_card_gives_independent_probabilities_and_labels() {
    let dir = scratch("sigmoid");
    let card = serde_json::json!({
        "arch": "small_cnn", "classes": ["effusion", "nodule", "edema"], "input_size": [32, 32],
        "head": "sigmoid"
    });
    let (weights, png, graph, params) = setup(&dir, 3, card);
    let z = raw_logits(&graph, &params, &png, &card_for(&dir));
    let stdout = ok(&run(&[
        "predict",
        "--model",
        s(&weights),
        "--top",
        "3",
        s(&png),
    ]));
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for t in line["top"].as_array().unwrap() {
        let i = t["index"].as_u64().unwrap() as usize;
        assert!(
            (t["prob"].as_f64().unwrap() - sigmoid(z[i] as f64)).abs() < 1e-6,
            "{line}"
        );
    }
    let labels: Vec<u64> = line["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..3).filter(|&i| z[i as usize] >= 0.0).collect();
    assert_eq!(
        labels, expected,
        "labels are the classes with σ(z) ≥ 0.5: z = {z:?}"
    );
}

#[test]
fn heads_that_contradict_the_model_are_one_line_errors() {
    let dir = scratch("bad");
    let card =
        serde_json::json!({"arch": "small_cnn", "input_size": [32, 32], "head": "binary-logit"});
    let (weights, png, _, _) = setup(&dir, 3, card);
    let out = run(&["predict", "--model", s(&weights), s(&png)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("binary-logit") && stderr.contains("3"),
        "{stderr}"
    );

    let dir = scratch("neg-on-softmax");
    let card =
        serde_json::json!({"arch": "small_cnn", "classes": ["a", "b"], "input_size": [32, 32]});
    let (weights, png, _, _) = setup(&dir, 2, card);
    let out = run(&[
        "explain",
        "--model",
        s(&weights),
        "--method",
        "saliency",
        "--target",
        "neg:b",
        "--out",
        s(&dir.join("out")),
        s(&png),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("binary-logit") && stderr.contains("softmax"),
        "{stderr}"
    );
}
