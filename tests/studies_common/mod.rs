//! Shared fixtures of the study tests: a tiny confounded synthetic data set and small_cnn
//! models saved as training folders would hold them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use relevance::data::synth::{SynthConfig, write_dataset};
use relevance::graph::card::ResizeMode;
use relevance::graph::{Model, ModelCard};
use relevance::train::checkpoint::save_model;

/// Side of the synthetic images (the smallest the generator allows is 16).
pub const SIZE: usize = 32;

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relevance-studies-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A confounded synthetic data set (`train/`, `val/`, `test/`, masks and markers) in `dir/data`.
pub fn synth_data(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    write_dataset(
        &data,
        &SynthConfig {
            n: 60,
            size: SIZE,
            confounder: Some(1.0),
            seed: 3,
            val_fraction: 0.2,
            test_fraction: 0.2,
        },
    )
    .unwrap();
    data
}

/// The card of the test models.
pub fn card() -> ModelCard {
    ModelCard {
        classes: vec!["benign".into(), "malignant".into()],
        num_classes: 2,
        input_size: [SIZE, SIZE],
        channels: 3,
        resize: ResizeMode::Stretch,
        ..ModelCard::default()
    }
}

/// A small_cnn with weights drawn from `seed`.
pub fn model(seed: u64) -> Model {
    Model::init("small_cnn", card(), seed).unwrap()
}

/// Saves `model` as `dir/model.safetensors` + `model.card.json` (as training does).
pub fn save(model: &Model, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    save_model(dir, &model.params, &model.card).unwrap()
}

/// An ensemble folder: `seed-<s>/model.safetensors` for each model and `ensemble.json`.
pub fn ensemble(dir: &Path, models: &[(u64, &Model)]) -> PathBuf {
    let members: Vec<serde_json::Value> = models
        .iter()
        .map(|(s, m)| {
            let w = save(m, &dir.join(format!("seed-{s}")));
            serde_json::json!({"seed": s, "weights": w, "test_accuracy": null, "test_balanced_accuracy": null})
        })
        .collect();
    let rec = serde_json::json!({
        "arch": "small_cnn",
        "classes": ["benign", "malignant"],
        "members": members,
        "test_accuracy_mean": null,
        "test_accuracy_sd": null,
    });
    std::fs::write(dir.join("ensemble.json"), rec.to_string()).unwrap();
    dir.to_path_buf()
}

/// Rows of a CSV file as header-keyed maps (no quoted commas in the columns tests read).
pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            let fields = split_csv(l);
            header.iter().cloned().zip(fields).collect()
        })
        .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Checks summary.json and figures.json of a study and that every figure exists.
pub fn check_common_outputs(out: &Path, study: &str) -> serde_json::Value {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["study"], study);
    assert!(!summary["headline"].as_array().unwrap().is_empty());
    let cols = summary["table"]["columns"].as_array().unwrap().len();
    for row in summary["table"]["rows"].as_array().unwrap() {
        assert_eq!(row.as_array().unwrap().len(), cols);
    }
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("figures.json")).unwrap()).unwrap();
    let figures = figures.as_array().unwrap();
    assert!(!figures.is_empty());
    for f in figures {
        let file = f["file"].as_str().unwrap();
        assert!(out.join(file).is_file(), "{file} missing");
        image::open(out.join(file)).unwrap();
        if let Some(svg) = f["svg"].as_str() {
            assert!(
                std::fs::read_to_string(out.join(svg))
                    .unwrap()
                    .contains("<svg")
            );
        }
        assert!(!f["caption"].as_str().unwrap().is_empty());
        assert_eq!(f["schema_version"], relevance::records::SCHEMA_VERSION);
    }
    // Both records carry this build's version and load through the typed readers.
    assert_eq!(
        summary["schema_version"],
        relevance::records::SCHEMA_VERSION
    );
    let typed: relevance::records::StudySummary =
        relevance::records::read_record(&out.join("summary.json")).unwrap();
    assert_eq!(
        (typed.study.as_str(), typed.table.columns.len()),
        (study, cols)
    );
    let typed: Vec<relevance::records::Figure> =
        relevance::records::read_record(&out.join("figures.json")).unwrap();
    assert_eq!(typed.len(), figures.len());
    assert!(out.join("metrics.csv").is_file() && out.join("per_image.csv").is_file());
    summary
}
