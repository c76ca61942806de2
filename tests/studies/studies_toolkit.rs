//! The study toolkit shared by the studies: the one `--limit` rule (classes interleaved, each
//! class in path order) checked on a hand-made folder, the rule matching an image's class to a
//! model's, and the method options of `relevance explain` reaching a study's maps
//! (`--resnet-skip` on a ResNet).

use crate::studies_common;

use std::path::{Path, PathBuf};

use relevance::data::npy::read_npy;
use relevance::graph::ModelCard;
use relevance::studies::toolkit::{SplitChoice, StudyImage, model_label, select_images};
use studies_common::*;

/// An ImageFolder whose classes hold these file stems (written out of order on purpose).
fn folder(dir: &Path, classes: &[(&str, &[&str])]) -> PathBuf {
    let data = dir.join("data");
    for (class, stems) in classes {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for stem in *stems {
            image::RgbImage::from_pixel(4, 4, image::Rgb([90, 120, 200]))
                .save(data.join(class).join(format!("{stem}.png")))
                .unwrap();
        }
    }
    data
}

fn stems(data: &Path, limit: Option<usize>) -> Vec<String> {
    select_images(data, SplitChoice::All, limit, None, false)
        .unwrap()
        .images
        .into_iter()
        .map(|i| format!("{}/{}", i.class, i.stem))
        .collect()
}

/// An image of class `class` with the data set's index `label`.
fn image_of(class: &str, label: usize, training_source: bool) -> StudyImage {
    StudyImage {
        stem: "x".into(),
        path: PathBuf::from("x.png"),
        class: class.into(),
        label,
        mask: None,
        marker: None,
        pixels: None,
        training_source,
    }
}

#[test]
fn classes_match_by_name_and_by_index_only_on_the_training_data_or_an_unnamed_card() {
    let named = ModelCard {
        classes: vec!["T-shirt/top".into(), "Trouser".into(), "Pullover".into()],
        num_classes: 3,
        ..ModelCard::default()
    };
    // By name, whatever the data set's index: a CSV sorts its labels, so `Trouser` is 1 there
    // and `T-shirt/top` 0 … but a folder export may order them otherwise.
    assert_eq!(model_label(&image_of("Trouser", 2, false), &named), Some(1));
    assert_eq!(
        model_label(&image_of("T-shirt/top", 1, true), &named),
        Some(0)
    );
    // A name the card lacks (a folder cannot be called `T-shirt/top`): refused on other data,
    // the data set's index on the data the model was trained on, if the model has that class.
    assert_eq!(
        model_label(&image_of("T-shirt_top", 0, false), &named),
        None
    );
    assert_eq!(
        model_label(&image_of("T-shirt_top", 0, true), &named),
        Some(0)
    );
    assert_eq!(model_label(&image_of("Sandal", 5, true), &named), None);
    // A card without names: the index, wherever the data come from.
    let unnamed = ModelCard {
        classes: Vec::new(),
        num_classes: 3,
        ..ModelCard::default()
    };
    assert_eq!(model_label(&image_of("2", 2, false), &unnamed), Some(2));
    assert_eq!(model_label(&image_of("7", 7, false), &unnamed), None);
}

#[test]
fn limit_interleaves_classes_in_path_order() {
    let dir = temp_dir("toolkit-limit");
    let data = folder(
        &dir,
        &[
            ("a", &["a3", "a1", "a2"]),
            ("b", &["b2", "b1"]),
            ("c", &["c1"]),
        ],
    );
    // By hand: round 1 takes each class's first path (a1, b1, c1), round 2 the second of the
    // classes that have one (a2, b2), round 3 the rest (a3).
    assert_eq!(
        stems(&data, None),
        ["a/a1", "b/b1", "c/c1", "a/a2", "b/b2", "a/a3"]
    );
    // A limit cuts that order, so every class is kept while it can be: a cut of the
    // path-sorted list (a1, a2, a3, b1, …) would have dropped b and c entirely.
    assert_eq!(stems(&data, Some(3)), ["a/a1", "b/b1", "c/c1"]);
    assert_eq!(stems(&data, Some(4)), ["a/a1", "b/b1", "c/c1", "a/a2"]);
    // At least one image; a limit beyond the split keeps all.
    assert_eq!(stems(&data, Some(0)), ["a/a1"]);
    assert_eq!(stems(&data, Some(99)).len(), 6);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `relevance compare` with LRP on `model` and `--resnet-skip skip`; returns the output.
fn compare_lrp(model: &Path, data: &Path, out: &Path, skip: &str) -> PathBuf {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(["compare", "--no-progress", "--limit", "3"])
        .args(["--methods", "lrp-epsilon-plus", "--resnet-skip", skip])
        .arg("--models")
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out.to_path_buf()
}

/// The cached maps of a compare run (one model, one method), by file name.
fn cached_maps(out: &Path) -> Vec<(String, Vec<f32>)> {
    let dir = out.join("cache/model/lrp-epsilon-plus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, read_npy(&p).unwrap().1)
        })
        .collect()
}

#[test]
fn a_study_takes_the_method_options_of_explain() {
    let dir = temp_dir("toolkit-skip");
    let data = synth_data(&dir);
    let resnet = relevance::graph::Model::init("resnet18", card(), 5).unwrap();
    let weights = save(&resnet, &dir.join("m"));
    let zennit = compare_lrp(&weights, &data, &dir.join("zennit"), "zennit");
    let split = compare_lrp(&weights, &data, &dir.join("split"), "split");
    let summary = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
    };
    let options = |out: &Path| summary(out)["conventions"]["method_options"].clone();
    assert_eq!(options(&zennit)["resnet_skip"], "zennit");
    assert_eq!(options(&split)["resnet_skip"], "split");
    // Same images, same files; the maps differ because the skip connections split relevance
    // differently (Relevance Splitting vs zennit's canonizer).
    let (a, b) = (cached_maps(&zennit), cached_maps(&split));
    assert_eq!(a.len(), 3);
    assert_eq!(
        a.iter().map(|m| &m.0).collect::<Vec<_>>(),
        b.iter().map(|m| &m.0).collect::<Vec<_>>()
    );
    let largest_difference = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| x.1.iter().zip(&y.1).map(|(p, q)| (p - q).abs()))
        .fold(0.0f32, f32::max);
    let scale = a
        .iter()
        .flat_map(|m| m.1.iter())
        .fold(0.0f32, |s, v| s.max(v.abs()));
    assert!(
        largest_difference > 1e-3 * scale,
        "maps equal under split and zennit ({largest_difference} of {scale})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
