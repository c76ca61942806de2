//! CRP concepts as `stability` methods: `crp(layer=…,top=2)` becomes one method per rank; an
//! unchanged image is stable exactly; the channel of each rank is the original image's (the
//! library's ranking of its layer relevance), and the perturbed image is explained for that same
//! channel, value for value what the CRP library computes directly.

use crate::studies_support;

use relevance::data::augment::{Aug, augment};
use relevance::data::npy::read_npy;
use relevance::methods::MethodOptions;
use relevance::methods::crp::{conditional_relevance, rank_channels};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
use relevance::studies::stability::{StabilityOptions, run_with_models};
use relevance::studies::toolkit::{load_models, load_planes, planes_to_input, study_methods};
use relevance::tensor::{T4, from_vec, to_vec};
use studies_support::*;

const LAYER: &str = "features.4";

/// The library's conditional heatmap of `x` for `channel`, and the channels ranked for `target`.
fn library_crp(lrp: &LrpModel, x: &T4, target: usize, channel: usize) -> (Vec<f32>, Vec<usize>) {
    let layer = lrp.find(LAYER).unwrap();
    let r = conditional_relevance(lrp, x, target, layer, &[vec![channel]], 1).unwrap();
    let ranked = rank_channels(&r.layer_relevance, 3)
        .into_iter()
        .map(|c| c.channel)
        .collect();
    (to_vec(&r.heatmaps()), ranked)
}

fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    (d, b.iter().map(|v| v.abs()).fold(0.0, f32::max))
}

/// Splits a CSV line, honouring double quotes (labels such as `crp(layer=…,rank=1)`).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
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

#[test]
fn crp_top_k_expands_into_one_method_per_rank_with_a_checked_spec() {
    let opts = MethodOptions::default();
    let methods = study_methods(&["crp(layer=features.4,top=3)".into()], &opts).unwrap();
    let labels: Vec<&str> = methods.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "crp(layer=features.4,rank=1)",
            "crp(layer=features.4,rank=2)",
            "crp(layer=features.4,rank=3)"
        ]
    );
    for bad in [
        "crp(top=2)",
        "crp(layer=features.4,top=0)",
        "crp(layer=features.4,top=2,rank=1)",
        "crp(layer=features.4,colour=red)",
        "crp(layer=features.4,composite=nonsense)",
    ] {
        let err = study_methods(&[bad.into()], &opts).err().expect(bad);
        assert!(err.to_string().contains(bad), "{bad}: {err}");
    }
}

#[test]
fn crp_concepts_are_matched_by_the_original_channel_and_equal_the_library() {
    let dir = temp_dir("stab-crp");
    let data = synth_data(&dir, 20);
    let ens = tiny_ensemble(&dir, &data);
    let models = load_models(&[ens.join("seed-0")]).unwrap();
    let mut opts = StabilityOptions::new(vec![], data, dir.join("out"));
    opts.inputs.methods = vec![format!("crp(layer={LAYER},top=2)")];
    opts.augmentations = vec![
        "identity".parse().unwrap(),
        "brightness:1.3".parse().unwrap(),
    ];
    opts.save_maps = true;
    let out = run_with_models(&opts, &models, false).unwrap().out;

    let text = std::fs::read_to_string(out.join("per_image.csv")).unwrap();
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap());
    let rows: Vec<Vec<String>> = lines.map(fields).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(
        rows.len(),
        3 * 2 * 2,
        "3 test images × 2 ranks × 2 augmentations"
    );
    let mut brightness_pearson = Vec::new();
    for r in &rows {
        let v = |name: &str| r[col(name)].parse::<f64>().unwrap();
        if r[col("augmentation")] == "identity" {
            // The same image explained for the same channel: the same map, so every measure is 1.
            assert_eq!(v("spearman"), 1.0, "{r:?}");
            assert_eq!(v("top_k_iou"), 1.0, "{r:?}");
            assert!((v("pearson") - 1.0).abs() < 1e-12, "{r:?}");
        } else {
            brightness_pearson.push(v("pearson"));
        }
    }
    // A brighter image changes the maps: the check above is not a constant.
    assert!(
        brightness_pearson.iter().any(|&p| p < 0.999999),
        "{brightness_pearson:?}"
    );

    // Independent computation: the CRP library on the original and on the brightened image.
    let model = &models[0].model;
    let lrp = LrpModel::new(
        model,
        Composite::preset("epsilon-plus-flat").unwrap(),
        &LrpOptions::default(),
    )
    .unwrap();
    let stems: Vec<String> = rows.iter().map(|r| r[col("image")].clone()).collect();
    let images = relevance::studies::toolkit::select_images(
        &opts.inputs.data,
        opts.inputs.split,
        None,
        models[0].split().as_ref(),
        false,
    )
    .unwrap()
    .images;
    let mut checked = 0;
    for img in images.iter().filter(|i| stems.contains(&i.stem)) {
        let planes = load_planes(img, &model.card).unwrap();
        let dims = [1, planes.channels, planes.height, planes.width];
        let x = from_vec(planes_to_input(&planes, &model.card), dims);
        let bright = augment(&planes, &[Aug::Brightness { factor: 1.3 }]).image;
        let xb = from_vec(planes_to_input(&bright, &model.card), dims);
        let row = rows.iter().find(|r| r[col("image")] == img.stem).unwrap();
        let target: usize = row[col("target_class")].parse().unwrap();
        let (_, ranked) = library_crp(&lrp, &x, target, 0);
        let (_, ranked_bright) = library_crp(&lrp, &xb, target, 0);
        for rank in 1..=2 {
            let channel = ranked[rank - 1];
            let folder = out
                .join("maps/seed-0")
                .join(format!("crp.layer-{LAYER}.rank-{rank}"));
            let (_, original) = read_npy(&folder.join(format!("{}.npy", img.stem))).unwrap();
            let (expected, _) = library_crp(&lrp, &x, target, channel);
            let (d, scale) = max_diff(&original, &expected);
            assert!(
                scale > 0.0 && d <= 1e-5 * scale,
                "{} rank {rank}: {d} of {scale}",
                img.stem
            );
            // The brightened image is explained for the original's channel, not its own.
            // The augmentation's name `brightness:1.3` is made file-name safe (`_` and a hash).
            let prefix = format!("{}.brightness_1.3-", img.stem);
            let file = std::fs::read_dir(&folder)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&prefix)
                })
                .unwrap();
            let (_, perturbed) = read_npy(&file).unwrap();
            let (expected, _) = library_crp(&lrp, &xb, target, channel);
            let (d, scale) = max_diff(&perturbed, &expected);
            assert!(
                scale > 0.0 && d <= 1e-5 * scale,
                "{} rank {rank} bright: {d} of {scale}",
                img.stem
            );
            if ranked_bright[rank - 1] != channel {
                let (own, _) = library_crp(&lrp, &xb, target, ranked_bright[rank - 1]);
                assert!(max_diff(&perturbed, &own).0 > 1e-4 * scale);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * 2);
    let _ = std::fs::remove_dir_all(&dir);
}
