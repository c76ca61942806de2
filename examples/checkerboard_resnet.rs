//! Checkerboard score (see `relevance::methods::lrp::checkerboard`) and conservation error of
//! `lrp-epsilon-plus-flat` maps of ResNets under the three skip-connection modes, on the brain
//! MRIs of `RELEVANCE_DATA` (resized to 224×224, ImageNet normalisation) or, without it, on a
//! smooth synthetic image. Weights: the deterministic reference weights.
//!
//! ```bash
//! RELEVANCE_DATA=$(tools/fetch-data.sh) cargo run --release --example checkerboard_resnet
//! ```

use std::path::PathBuf;

use relevance::data::image::load_image;
use relevance::data::preprocess;
use relevance::graph::init::reference_params;
use relevance::graph::{Model, ModelCard, zoo};
use relevance::methods::lrp::{
    Composite, LrpModel, LrpOptions, SkipMode, checkerboard_scores, conservation_of,
};
use relevance::tensor::{T4, from_vec};

fn inputs(card: &ModelCard) -> Vec<(String, T4)> {
    if let Some(dir) = std::env::var_os("RELEVANCE_DATA") {
        let dir = PathBuf::from(dir).join("brain-mri/images");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        if !files.is_empty() {
            return files
                .iter()
                .map(|f| {
                    let name = f.file_stem().unwrap().to_string_lossy().to_string();
                    (name, preprocess(&load_image(f).unwrap(), card))
                })
                .collect();
        }
    }
    let values: Vec<f32> = (0..3 * 224 * 224)
        .map(|i| {
            let (c, y, x) = (i / (224 * 224), (i / 224) % 224, i % 224);
            ((y as f32 * 0.03 + c as f32).sin() + (x as f32 * 0.05).cos()) * 0.8
        })
        .collect();
    vec![("synthetic".into(), from_vec(values, [1, 3, 224, 224]))]
}

fn main() {
    let card = ModelCard::default();
    let images = inputs(&card);
    for arch in ["resnet18", "resnet50"] {
        let graph = zoo::build(arch, 1000, 3).unwrap();
        let params = reference_params(&graph).unwrap();
        let model = Model {
            graph,
            params,
            card: card.clone(),
            source: Default::default(),
        };
        for skip in [SkipMode::Zennit, SkipMode::Split, SkipMode::Symmetric] {
            let options = LrpOptions {
                skip,
                ..LrpOptions::default()
            };
            let lrp = LrpModel::new(&model, Composite::epsilon_plus_flat(), &options).unwrap();
            let (mut scores, mut errors) = (Vec::new(), Vec::new());
            for (_, x) in &images {
                let acts = lrp.forward(x.clone()).unwrap();
                let logits = relevance::tensor::to_vec(acts.get(lrp.logits_node()).unwrap());
                let target = (0..logits.len())
                    .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                    .unwrap();
                let attribution = lrp.attribute_with(&acts, &[target]).unwrap();
                scores.push(checkerboard_scores(&attribution.input)[0]);
                errors.push(conservation_of(&attribution)[0].error);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
            println!(
                "{arch} skip={skip}: checkerboard mean {:.4} (min {:.4}, max {:.4}), \
                 conservation error mean {:.3e} over {} image(s)",
                mean(&scores),
                scores.iter().copied().fold(f64::INFINITY, f64::min),
                max(&scores),
                mean(&errors),
                images.len()
            );
        }
    }
}
