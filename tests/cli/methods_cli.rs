//! `relevance explain` end to end on a small model written to disk: files, shapes, names, the
//! JSON record, agreement with the library, and one-line errors for bad requests.

use crate::methods_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use methods_common::max_abs;
use relevance::data::image::load_input;
use relevance::data::npy::{read_npy, write_npy};
use relevance::graph::import::safetensors::to_bytes;
use relevance::graph::init::reference_params;
use relevance::graph::{Model, ModelCard, zoo};
use relevance::methods::{MethodOptions, by_name};
use relevance::tensor::to_vec;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relevance-explain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small_cnn with 3 named classes, saved as safetensors with its card; and three inputs: a
/// colour PNG and a grey JPEG of other sizes, and a preprocessed `.npy`.
fn setup(dir: &Path) -> (PathBuf, Vec<PathBuf>, Model) {
    let graph = zoo::build("small_cnn", 3, 3).unwrap();
    let params = reference_params(&graph).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&params, "");
    let weights = dir.join("net.safetensors");
    std::fs::write(&weights, to_bytes(&tensors, None).unwrap()).unwrap();
    let card = ModelCard {
        arch: Some("small_cnn".into()),
        classes: vec!["cat".into(), "dog".into(), "bird".into()],
        num_classes: 3,
        input_size: [32, 40],
        ..Default::default()
    };
    std::fs::write(dir.join("net.card.json"), card.to_json()).unwrap();
    let png = dir.join("scan.png");
    image::RgbImage::from_fn(50, 60, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 4) as u8, ((x * y) % 256) as u8])
    })
    .save(&png)
    .unwrap();
    let jpg = dir.join("grey.jpg");
    image::GrayImage::from_fn(33, 31, |x, y| image::Luma([((x + 2 * y) * 3) as u8]))
        .save(&jpg)
        .unwrap();
    let npy = dir.join("tensor.npy");
    let values: Vec<f32> = (0..3 * 32 * 40)
        .map(|i| ((i as f32) * 0.37).sin())
        .collect();
    write_npy(&npy, &[3, 32, 40], &values).unwrap();
    let model = Model {
        graph,
        params,
        card,
        source: weights.clone(),
    };
    (weights, vec![png, jpg, npy], model)
}

fn explain(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
        .arg("explain")
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn writes_maps_overlays_grid_and_record() {
    let dir = scratch("ok");
    let (weights, inputs, model) = setup(&dir);
    let out = dir.join("out");
    let mut args = vec![
        "--model",
        s(&weights),
        "--method",
        "grad-cam,saliency,integrated-gradients",
        "--steps",
        "4",
        "--out",
        s(&out),
    ];
    args.extend(inputs.iter().map(|p| s(p)));
    let res = explain(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    for stem in ["scan", "grey", "tensor"] {
        let (shape, cam) = read_npy(&out.join(format!("{stem}.grad-cam.npy"))).unwrap();
        assert_eq!(shape, vec![32, 40]);
        assert!(cam.iter().all(|v| (0.0..=1.0).contains(v)));
        let (shape, _) = read_npy(&out.join(format!("{stem}.saliency.npy"))).unwrap();
        assert_eq!(shape, vec![3, 32, 40]);
        for m in ["grad-cam", "saliency", "integrated-gradients"] {
            let png = image::open(out.join(format!("{stem}.{m}.png"))).unwrap();
            assert_eq!((png.width(), png.height()), (40, 32));
        }
    }
    let grid = image::open(out.join("grid.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (4 + 4 * 44, 4 + 3 * 36));
    // The files hold what the library computes for the predicted class.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("explain.json")).unwrap()).unwrap();
    let first = &record["outputs"][0];
    assert_eq!(first["stem"], "scan");
    let target = first["target"]["index"].as_u64().unwrap() as usize;
    assert_eq!(first["target"]["name"], ["cat", "dog", "bird"][target]);
    let prob = first["target"]["prob"].as_f64().unwrap();
    assert!(
        prob > 1.0 / 3.0 && prob <= 1.0,
        "the predicted class has the top probability"
    );
    assert_eq!(record["layers"]["grad-cam"], "features.14");
    assert_eq!(first["files"]["grad-cam"]["npy"], "scan.grad-cam.npy");
    let x = load_input(&inputs[0], &model.card).unwrap();
    let lib = by_name("grad-cam", &MethodOptions::default()).unwrap();
    let want = to_vec(&lib.explain(&model, &x, &[target]).unwrap());
    let (_, got) = read_npy(&out.join("scan.grad-cam.npy")).unwrap();
    assert!(max_abs(&got, &want) < 1e-6);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn target_all_writes_one_map_per_class() {
    let dir = scratch("all");
    let (weights, inputs, _) = setup(&dir);
    let out = dir.join("out");
    let res = explain(&[
        "--model",
        s(&weights),
        "--method",
        "layer-cam,guided-backprop",
        "--target",
        "all",
        "--out",
        s(&out),
        s(&inputs[0]),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let mut maps = Vec::new();
    for class in ["cat", "dog", "bird"] {
        assert!(
            out.join(format!("scan.{class}.guided-backprop.npy"))
                .is_file()
        );
        maps.push(
            read_npy(&out.join(format!("scan.{class}.layer-cam.npy")))
                .unwrap()
                .1,
        );
    }
    assert!(
        max_abs(&maps[0], &maps[1]) > 1e-3,
        "classes get their own maps"
    );
    let res = explain(&[
        "--model",
        s(&weights),
        "--method",
        "grad-cam",
        "--target",
        "bird",
        "--out",
        s(&out),
        s(&inputs[1]),
    ]);
    assert!(res.status.success());
    let record = std::fs::read_to_string(out.join("explain.json")).unwrap();
    assert!(record.contains("\"name\": \"bird\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_fail_with_one_line() {
    let dir = scratch("bad");
    let (weights, inputs, _) = setup(&dir);
    let out = dir.join("out");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--method", "gradcam"],
            "unknown method 'gradcam'; valid methods: saliency",
        ),
        (
            &["--method", "grad-cam", "--layer", "features.99"],
            "no node named 'features.99'",
        ),
        (
            &["--method", "grad-cam", "--layer", "classifier.1"],
            "no spatial dimensions",
        ),
        (
            &["--method", "grad-cam", "--target", "horse"],
            "unknown class 'horse'; classes: cat, dog, bird",
        ),
        (
            &["--method", "occlusion", "--baseline", "grey"],
            "bad baseline 'grey'",
        ),
        (
            &["--method", "cam", "--target", "7"],
            "target class 7 does not exist",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["--model", s(&weights), "--out", s(&out)];
        args.extend_from_slice(extra);
        args.push(s(&inputs[0]));
        let res = explain(&args);
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{extra:?} should fail");
        assert!(err.contains(message), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let missing = dir.join("nope.png");
    let res = explain(&[
        "--model",
        s(&weights),
        "--method",
        "saliency",
        "--out",
        s(&out),
        s(&missing),
    ]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success() && err.contains("nope.png") && err.lines().count() == 1,
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `relevance predict --logits` on one input and returns its logits.
fn predicted_logits(weights: &Path, input: &Path) -> Vec<f64> {
    let out = Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(["predict", "--logits", "--model", s(weights), s(input)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    line["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn lrp_maps_record_their_conservation_for_every_starting_relevance() {
    let dir = scratch("lrp");
    let (weights, inputs, _) = setup(&dir);
    let logits = predicted_logits(&weights, &inputs[0]);
    let target = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap();
    let max = logits[target];
    let prob = 1.0 / logits.iter().map(|l| (l - max).exp()).sum::<f64>();
    let mut maps = Vec::new();
    for (start, explained) in [
        ("logit", logits[target]),
        ("probability", prob),
        ("one", 1.0),
    ] {
        let out = dir.join(start);
        let res = explain(&[
            "--model",
            s(&weights),
            "--method",
            "lrp-epsilon-plus-flat,lrp-epsilon-plus",
            "--relevance-start",
            start,
            "--out",
            s(&out),
            s(&inputs[0]),
        ]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("explain.json")).unwrap())
                .unwrap();
        for m in ["lrp-epsilon-plus-flat", "lrp-epsilon-plus"] {
            let c = &record["outputs"][0]["files"][format!("{m}.conservation")];
            // The starting relevance is the one asked for, read off `predict`'s logits.
            let got = c["explained"].as_f64().unwrap();
            assert!(
                (got - explained).abs() <= 1e-5 * explained.abs().max(1.0),
                "{start}: {got} vs {explained}"
            );
            // The total is the sum of the written map, and the error follows from both.
            let (shape, map) = read_npy(&out.join(format!("scan.{m}.npy"))).unwrap();
            assert_eq!(shape, vec![3, 32, 40]);
            let total: f64 = map.iter().map(|&v| v as f64).sum();
            assert!((c["total"].as_f64().unwrap() - total).abs() <= 1e-9 * total.abs().max(1.0));
            let error = (total - got).abs() / got.abs();
            assert!((c["error"].as_f64().unwrap() - error).abs() <= 1e-9);
            if m == "lrp-epsilon-plus-flat" {
                maps.push((explained, map));
            }
        }
        assert_eq!(record["lrp"]["relevance_start"], start);
    }
    // Every rule is linear in the relevance it receives, so the maps differ only by the factor
    // between their starting relevances.
    let (base_start, base) = &maps[0];
    for (start, map) in &maps[1..] {
        let k = (start / base_start) as f32;
        let scaled: Vec<f32> = base.iter().map(|v| v * k).collect();
        let norm = scaled.iter().map(|v| v.abs()).fold(0.0, f32::max);
        assert!(
            max_abs(map, &scaled) <= 1e-4 * f64::from(norm),
            "start {start}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_conservation_passes_or_fails_by_the_tolerance_and_names_the_maps() {
    let dir = scratch("lrp-check");
    let (weights, inputs, _) = setup(&dir);
    let out = dir.join("out");
    let run = |tol: &str| {
        explain(&[
            "--model",
            s(&weights),
            "--method",
            "lrp-epsilon-plus-flat,grad-cam",
            "--check-conservation",
            "--conservation-tol",
            tol,
            "--out",
            s(&out),
            s(&inputs[0]),
            s(&inputs[1]),
        ])
    };
    let loose = run("1e9");
    assert!(
        loose.status.success(),
        "{}",
        String::from_utf8_lossy(&loose.stderr)
    );
    let table = String::from_utf8_lossy(&loose.stdout);
    assert!(table.contains("scan.lrp-epsilon-plus-flat\t"));
    assert!(table.contains("grey.lrp-epsilon-plus-flat\t"));
    assert!(!table.contains("grad-cam"), "only LRP maps are checked");
    let strict = run("0");
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(
        err.contains("conservation error above") && err.contains("2 of 2"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let none = explain(&[
        "--model",
        s(&weights),
        "--method",
        "grad-cam",
        "--check-conservation",
        "--out",
        s(&out),
        s(&inputs[0]),
    ]);
    assert!(String::from_utf8_lossy(&none.stderr).contains("needs at least one LRP method"));
    let _ = std::fs::remove_dir_all(&dir);
}
