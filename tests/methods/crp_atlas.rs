//! Relevance/activation maximisation and the concept atlas: the references of each channel are
//! the samples with the largest normalised channel score (checked against scores computed
//! independently from the layer relevance), the single-neuron heatmaps stay inside the neuron's
//! receptive field, and the atlas files are written.

use crate::lrp_common;

use std::path::PathBuf;

use lrp_common::tiny_vgg;
use relevance::data::image::load_image;
use relevance::data::preprocess;
use relevance::methods::crp::atlas::{AtlasOptions, build_atlas};
use relevance::methods::crp::channel_relevance;
use relevance::methods::crp::maximize::{NeuronRequest, neuron_heatmaps};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
use relevance::rng::Rng;
use relevance::tensor::{from_vec, to_vec};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relevance-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `n` random 20×18 RGB images into `dir/<folder>/`.
fn write_images(dir: &std::path::Path, folder: &str, n: usize, rng: &mut Rng) -> Vec<PathBuf> {
    let d = dir.join(folder);
    std::fs::create_dir_all(&d).unwrap();
    (0..n)
        .map(|i| {
            let img = image::RgbImage::from_fn(20, 18, |x, y| {
                let base = ((x * 7 + y * 13) % 200) as f32;
                let mut v = |o: f32| (base + o + 40.0 * rng.normal()).clamp(0.0, 255.0) as u8;
                image::Rgb([v(0.0), v(30.0), v(60.0)])
            });
            let path = d.join(format!("img{i}.png"));
            img.save(&path).unwrap();
            path
        })
        .collect()
}

#[test]
fn atlas_references_are_the_top_scoring_samples() {
    let mut model = tiny_vgg();
    model.card.input_size = [16, 16];
    model.card.classes = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    let dir = scratch("atlas");
    let mut rng = Rng::new(8);
    let data = dir.join("data");
    let mut files = write_images(&data, "a", 3, &mut rng);
    files.extend(write_images(&data, "b", 3, &mut rng));
    files.extend(write_images(&data, "unlabelled", 3, &mut rng));
    files.sort();
    let lrp = LrpModel::new(
        &model,
        Composite::epsilon_plus_flat(),
        &LrpOptions::default(),
    )
    .unwrap();
    let opts = AtlasOptions {
        layer: "features.4".into(),
        top_k: 4,
        channels: Some(vec![0, 3, 15]),
        batch: 4,
        tile: 32,
        ..AtlasOptions::default()
    };
    let out = dir.join("atlas");
    let atlas = build_atlas(&lrp, &model.card, &files, &opts, &out).unwrap();
    assert_eq!(atlas.samples.len(), 9);
    // Independent scores: relevance of each sample for its target at the layer.
    let layer = lrp.find("features.4").unwrap();
    let mut rel_scores = Vec::new();
    let mut act_scores = Vec::new();
    for s in &atlas.samples {
        let folder = s
            .file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let x = preprocess(&load_image(&s.file).unwrap(), &model.card);
        let acts = lrp.forward(x).unwrap();
        let logits = to_vec(acts.get(lrp.logits_node()).unwrap());
        let expected_target = match folder {
            "a" => 0,
            "b" => 1,
            _ => (0..5)
                .max_by(|&i, &j| logits[i].total_cmp(&logits[j]))
                .unwrap(),
        };
        assert_eq!(s.target, expected_target, "{}", s.file.display());
        let (seed, _) = lrp.start_relevance(&acts, &[s.target]).unwrap();
        let r = lrp
            .propagate(&acts, lrp.logits_node(), seed, &[layer])
            .unwrap()
            .remove(0);
        rel_scores.push(channel_relevance(&r, true).remove(0));
        act_scores.push(channel_relevance(acts.get(layer).unwrap(), true).remove(0));
    }
    for ch in &atlas.channels {
        for (refs, scores) in [(&ch.relevance, &rel_scores), (&ch.activation, &act_scores)] {
            assert_eq!(refs.len(), 4);
            let mut expected: Vec<f32> = scores.iter().map(|s| s[ch.channel]).collect();
            expected.sort_by(|a, b| b.total_cmp(a));
            for (r, want) in refs.iter().zip(&expected) {
                assert!(
                    (r.score - want).abs() < 1e-5,
                    "channel {}: {} vs {want}",
                    ch.channel,
                    r.score
                );
                assert!((scores[r.sample][ch.channel] - r.score).abs() < 1e-5);
                assert!(r.crop.y1 < 16 && r.crop.x1 < 16 && r.crop.y0 <= r.crop.y1);
            }
        }
        let png = image::open(out.join(&ch.image)).unwrap();
        assert_eq!(
            (png.width(), png.height()),
            (4 * 32 + 5 * 2, 2 * 32 + 3 * 2)
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("atlas.json")).unwrap()).unwrap();
    assert_eq!(json["channels"].as_array().unwrap().len(), 3);
    assert_eq!(json["samples"][8]["target_source"], "predicted");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn single_neuron_heatmaps_stay_in_the_receptive_field() {
    // features.4 of the tiny VGG: 3×3 conv (pad 1) on the 2×2-max-pooled output of a 3×3 conv
    // (pad 1), so neuron (y, x) of its 8×8 map reads input rows 2y−3 … 2y+4 (clipped).
    let model = tiny_vgg();
    let lrp = LrpModel::new(
        &model,
        Composite::epsilon_plus_flat(),
        &LrpOptions::default(),
    )
    .unwrap();
    let mut rng = Rng::new(2);
    let x = from_vec((0..3 * 256).map(|_| rng.normal()).collect(), [1, 3, 16, 16]);
    let acts = lrp.forward(x).unwrap();
    let layer = lrp.find("features.4").unwrap();
    let requests: Vec<NeuronRequest> = [(2, 0), (5, 27), (11, 63), (7, 9)]
        .iter()
        .map(|&(channel, neuron)| NeuronRequest { channel, neuron })
        .collect();
    let heat = to_vec(&neuron_heatmaps(&lrp, &acts, layer, &requests, 3).unwrap());
    let act = to_vec(acts.get(layer).unwrap());
    for (k, q) in requests.iter().enumerate() {
        let (ny, nx) = ((q.neuron / 8) as isize, (q.neuron % 8) as isize);
        let map = &heat[k * 256..(k + 1) * 256];
        let mut total = 0.0f64;
        for y in 0..16isize {
            for x in 0..16isize {
                let v = map[(y * 16 + x) as usize];
                total += v as f64;
                let inside = (2 * ny - 3..=2 * ny + 4).contains(&y)
                    && (2 * nx - 3..=2 * nx + 4).contains(&x);
                assert!(
                    inside || v == 0.0,
                    "neuron {q:?}: relevance {v} at ({y}, {x})"
                );
            }
        }
        // The heatmap carries the neuron's activation (EpsilonPlusFlat conserves apart from the
        // biases of the layers in between), with its sign.
        let a = act[q.channel * 64 + q.neuron] as f64;
        assert!(
            a == 0.0 || total.signum() == a.signum() || total == 0.0,
            "{total} vs {a}"
        );
    }
}
