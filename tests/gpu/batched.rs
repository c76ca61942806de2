//! CPU against GPU for the batched methods (SmoothGrad, Integrated Gradients, occlusion,
//! Score-CAM, each with a `batch` that does not divide its rows), the perturbation metrics'
//! batched scoring (insertion and deletion curves) and one study end to end (`faithfulness`).

use relevance::Model;
use relevance::metrics::insertion::{InsertionOptions, insertion_deletion};
use relevance::metrics::order::Step;
use relevance::metrics::{ImageView, MapView, ModelScorer, ScoreKind};
use relevance::tensor::{T4, from_vec, to_vec};

use std::collections::BTreeMap;

use super::parity::{Outputs, assert_same, card, maps, on_cpu_and_gpu, pattern};
use super::studies_support::{pointwise_model, synth_data, temp_dir};

#[test]
fn batched_methods_agree() {
    if let Some(results) = on_cpu_and_gpu(|| {
        maps(
            "small_cnn",
            &[
                "smoothgrad(samples=4,batch=3)",
                "integrated-gradients(steps=5,batch=3)",
                "occlusion(window=16,stride=16,batch=5)",
                "score-cam(batch=48)",
            ],
        )
    }) {
        assert_same(results);
    }
}

#[test]
fn insertion_and_deletion_scoring_agree() {
    if let Some(results) = on_cpu_and_gpu(|| {
        let side = 32;
        let model = Model::init("small_cnn", card(side, 10), 11).expect("zoo model");
        // 7 images per forward pass: the 33 points of each curve split unevenly.
        let scorer = ModelScorer::new(&model, ScoreKind::Softmax)
            .expect("scorer")
            .with_batch_size(7);
        let image = to_vec(&pattern(1, side));
        let map: Vec<f32> = (0..side * side)
            .map(|p| ((p % side) as f32 * 0.3).cos() + (p / side) as f32 * 0.05)
            .collect();
        let opts = InsertionOptions {
            step: Step::Pixels(32),
            ..InsertionOptions::default()
        };
        let id = insertion_deletion(
            &scorer,
            &ImageView::new(&image, [3, side, side]).unwrap(),
            &MapView::new(&map, [side, side]).unwrap(),
            &opts,
        )
        .expect("insertion and deletion");
        let curve = |scores: &[f32]| from_vec(scores.to_vec(), [scores.len(), 1, 1, 1]);
        vec![
            ("insertion curve".into(), curve(&id.insertion.curve.scores)),
            ("deletion curve".into(), curve(&id.deletion.curve.scores)),
        ]
    }) {
        assert_same(results);
    }
}

/// `faithfulness` (the study's own method list, scorer and files) on the hand-built model of
/// tests/studies and a synthetic data set: every number of `per_image` agrees.
#[test]
fn the_faithfulness_study_agrees() {
    use relevance::studies::faithfulness::{FaithfulnessOptions, run_with_models};

    let dir = temp_dir("gpu-faithfulness");
    let data = synth_data(&dir, 20);
    let run = |label: &str| {
        let out = dir.join(label);
        let _ = std::fs::remove_dir_all(&out);
        let mut opts = FaithfulnessOptions::new(vec![], data.clone(), out);
        opts.inputs.methods = vec![
            "input-x-gradient".into(),
            "integrated-gradients(steps=4)".into(),
            "lrp:epsilon-plus".into(),
        ];
        let outcome = run_with_models(&opts, &[pointwise_model()], false).expect("study");
        numbers(&outcome.out.join("per_image"))
    };
    let results = on_cpu_and_gpu(|| {
        let label = if relevance::device::is_cpu(&relevance::tensor::device()) {
            "cpu"
        } else {
            "gpu"
        };
        run(label)
            .into_iter()
            .map(|(name, values)| {
                let n = values.len();
                (name, from_vec(values, [n, 1, 1, 1]))
            })
            .collect::<Vec<(String, T4)>>()
    });
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(results) = results {
        assert_same_fields(results);
    }
}

/// Every number of the per-image JSON files under `dir` (sorted by path), grouped by field
/// (the path of object keys), so each field is compared at its own scale.
fn numbers(dir: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("per_image folder") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    fn collect(value: &serde_json::Value, key: &str, out: &mut BTreeMap<String, Vec<f32>>) {
        match value {
            serde_json::Value::Number(n) => out
                .entry(key.to_string())
                .or_default()
                .push(n.as_f64().unwrap() as f32),
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, key, out)),
            serde_json::Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| collect(v, &format!("{key}.{k}"), out)),
            _ => {}
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut fields = BTreeMap::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        collect(&serde_json::from_str(&text).unwrap(), "", &mut fields);
    }
    fields.into_iter().collect()
}

/// Fields that are zero everywhere (a class index 0, an ε of 0) cannot be compared relatively:
/// they must be zero on both devices; the rest go to [`assert_same`].
fn assert_same_fields([cpu, gpu]: [Outputs; 2]) {
    let zero = |v: &[f32]| v.iter().all(|x| *x == 0.0);
    let mut compared = [Vec::new(), Vec::new()];
    for ((name, c), (gpu_name, g)) in cpu.into_iter().zip(gpu) {
        assert_eq!(name, gpu_name);
        if zero(&c) {
            assert!(zero(&g), "{name}: zero on the CPU, {g:?} on the GPU");
        } else {
            compared[0].push((name.clone(), c));
            compared[1].push((name, g));
        }
    }
    assert!(
        compared[0].len() >= 3,
        "too few fields compared: {:?}",
        compared[0]
    );
    assert_same(compared);
}
