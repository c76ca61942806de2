//! Explanations of the brain-MRI VGG16 (`$RELEVANCE_DATA/brain-mri/vgg16.onnx`) on the 17 labelled
//! MRIs, through `relevance explain`; the overlays land in `test-output/brain-mri/` (ignored by
//! git) for a person to look at. Needs `RELEVANCE_DATA` (see `tools/fetch-data.sh`) and the ONNX
//! importer; without either it says so and checks nothing else.

use std::path::PathBuf;
use std::process::Command;

use relevance::data::npy::read_npy;
use relevance::graph::{LoadOptions, Model};

fn data() -> Option<PathBuf> {
    match std::env::var_os("RELEVANCE_DATA") {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            eprintln!(
                "RELEVANCE_DATA is not set; run `RELEVANCE_DATA=$(tools/fetch-data.sh) cargo test` \
                 to explain the brain-MRI VGG16"
            );
            None
        }
    }
}

#[test]
fn brain_mri_vgg16_explanations() {
    let Some(data) = data() else { return };
    let onnx = data.join("brain-mri/vgg16.onnx");
    let model = match Model::load(&onnx, &LoadOptions::default()) {
        Ok(m) => m,
        // Before the ONNX importer exists, an .onnx file is either an unsupported format or,
        // with a card that names no architecture, a request for --arch.
        Err(e)
            if e.to_string().contains("unsupported weights format '.onnx'")
                || e.to_string().contains("which architecture?") =>
        {
            eprintln!("ONNX import is not available in this build yet ({e}); skipping");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let images = data.join("brain-mri/images");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-output/brain-mri");
    let res = Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(["explain", "--model"])
        .arg(&onnx)
        .args([
            "--method",
            "grad-cam,guided-grad-cam,integrated-gradients",
            "--steps",
            "8",
            "--out",
        ])
        .arg(&out)
        .arg(&images)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("explain.json")).unwrap()).unwrap();
    let outputs = record["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 17);
    // The model is accurate on these scans: the explained (predicted) class is the labelled one.
    let mut correct = 0;
    for o in outputs {
        let stem = o["stem"].as_str().unwrap();
        let label = match &stem[3..5] {
            "gl" => "glioma",
            "me" => "meningioma",
            "no" => "notumor",
            _ => "pituitary",
        };
        correct += usize::from(o["target"]["name"] == label);
        let (shape, cam) = read_npy(&out.join(format!("{stem}.grad-cam.npy"))).unwrap();
        assert_eq!(shape, model.card.input_size.to_vec());
        let max = cam.iter().copied().fold(f32::MIN, f32::max);
        assert!(
            cam.iter().all(|v| (0.0..=1.0).contains(v)) && max > 0.99,
            "{stem}"
        );
        let (shape, ig) = read_npy(&out.join(format!("{stem}.integrated-gradients.npy"))).unwrap();
        assert_eq!(shape[0], 3);
        assert!(
            ig.iter().all(|v| v.is_finite()) && ig.iter().any(|&v| v != 0.0),
            "{stem}"
        );
    }
    assert!(correct >= 16, "{correct}/17 predictions match the labels");
    eprintln!("overlays in {}", out.display());
}
