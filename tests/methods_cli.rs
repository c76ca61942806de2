//! `relevance explain` end to end on a small model written to disk: files, shapes, names, the
//! JSON record, agreement with the library, and one-line errors for bad requests.

mod methods_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use methods_common::max_abs;
use relevance::data::image::load_input;
use relevance::data::npy::{read_npy, write_npy};
use relevance::graph::import::{NamedTensor, safetensors::to_bytes};
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
    let tensors: Vec<NamedTensor> = params
        .iter()
        .map(|(k, p)| NamedTensor {
            key: k.clone(),
            shape: p.shape.clone(),
            values: p.values(),
        })
        .collect();
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
