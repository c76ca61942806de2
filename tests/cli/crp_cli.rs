//! The `concepts` and `atlas` subcommands end to end on a small CNN saved as safetensors with a
//! model card, and their one-line errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use relevance::graph::{Model, ModelCard};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relevance-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// small_cnn with 3 classes at 32×32, weights + card in `dir`.
fn write_model(dir: &Path) -> PathBuf {
    let card = ModelCard {
        classes: vec!["glioma".into(), "meningioma".into(), "notumor".into()],
        num_classes: 3,
        input_size: [32, 32],
        ..ModelCard::default()
    };
    let model = Model::init("small_cnn", card, 5).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&model.params, "");
    let path = dir.join("model.safetensors");
    std::fs::write(
        &path,
        relevance::graph::import::safetensors::to_bytes(&tensors, None).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("model.card.json"),
        r#"{"arch": "small_cnn", "classes": ["glioma", "meningioma", "notumor"], "num_classes": 3,
            "input_size": [32, 32]}"#,
    )
    .unwrap();
    path
}

fn write_images(dir: &Path) {
    for (folder, n) in [("glioma", 2), ("notumor", 2)] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        for i in 0..n {
            let img = image::GrayImage::from_fn(40, 36, |x, y| {
                image::Luma([((x * 5 + y * 3 + i * 50) % 256) as u8])
            });
            img.save(dir.join(folder).join(format!("scan{i}.png")))
                .unwrap();
        }
    }
}

fn relevance() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
}

#[test]
fn concepts_ranks_channels_and_writes_heatmaps() {
    let dir = scratch("concepts");
    let model = write_model(&dir);
    write_images(&dir.join("data"));
    let out = dir.join("out");
    let output = relevance()
        .args(["concepts", "--model"])
        .arg(&model)
        .args([
            "--layer",
            "features.8",
            "--top",
            "3",
            "--concept",
            "1,2",
            "--graph",
            "2",
        ])
        .arg("--out")
        .arg(&out)
        .arg(dir.join("data/glioma/scan0.png"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    let concepts = line["concepts"].as_array().unwrap();
    assert_eq!(concepts.len(), 3);
    let rel: Vec<f64> = concepts
        .iter()
        .map(|c| c["relevance"].as_f64().unwrap())
        .collect();
    assert!(
        rel.windows(2).all(|w| w[0] >= w[1]),
        "ranking not sorted: {rel:?}"
    );
    let heatmaps = line["heatmaps"].as_array().unwrap();
    assert_eq!(heatmaps.len(), 4);
    for h in heatmaps {
        assert!(Path::new(h["npy"].as_str().unwrap()).is_file());
        assert!(Path::new(h["png"].as_str().unwrap()).is_file());
    }
    // A single-channel concept's heatmap carries that channel's relevance at the layer.
    for (c, h) in concepts.iter().zip(heatmaps) {
        let raw = c["raw"].as_f64().unwrap();
        let total = h["relevance"].as_f64().unwrap();
        assert!(
            (raw - total).abs() <= 0.05 * raw.abs() + 1e-6,
            "{raw} vs {total}"
        );
    }
    assert_eq!(line["graphs"].as_array().unwrap().len(), 3);
    // concepts.json holds the same records as stdout; --quiet prints nothing and writes the same.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("concepts.json")).unwrap()).unwrap();
    assert_eq!(file.as_array().unwrap(), &vec![line.clone()]);
    let quiet_out = dir.join("quiet");
    let quiet = relevance()
        .args([
            "concepts",
            "--quiet",
            "--layer",
            "features.8",
            "--top",
            "3",
            "--model",
        ])
        .arg(&model)
        .arg("--out")
        .arg(&quiet_out)
        .arg(dir.join("data/glioma/scan0.png"))
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert!(quiet.stdout.is_empty());
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(quiet_out.join("concepts.json")).unwrap())
            .unwrap();
    assert_eq!(again[0]["concepts"], line["concepts"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn atlas_writes_a_png_per_channel_and_json() {
    let dir = scratch("atlas");
    let model = write_model(&dir);
    write_images(&dir.join("data"));
    let out = dir.join("atlas");
    let output = relevance()
        .args(["atlas", "--model"])
        .arg(&model)
        .args(["--layer", "features.4", "--top-k", "3", "--channels", "0,5"])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.join("channel_0000.png").is_file());
    assert!(out.join("channel_0005.png").is_file());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("atlas.json")).unwrap()).unwrap();
    assert_eq!(json["samples"].as_array().unwrap().len(), 4);
    assert_eq!(json["samples"][0]["target_source"], "label");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_layer_and_bad_concept_are_one_line_errors() {
    let dir = scratch("errors");
    let model = write_model(&dir);
    write_images(&dir.join("data"));
    let output = relevance()
        .args(["concepts", "--model"])
        .arg(&model)
        .args(["--layer", "features.99"])
        .arg(dir.join("data/glioma/scan0.png"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("features.99") && err.lines().count() == 1,
        "{err}"
    );
    let output = relevance()
        .args(["concepts", "--model"])
        .arg(&model)
        .args(["--layer", "features.8", "--concept", "1,x"])
        .arg(dir.join("data/glioma/scan0.png"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("1,x"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
