//! The synthetic data set: the label is carried by the lesion border (its isoperimetric ratio
//! separates the classes), masks cover the lesion, the confounder tag follows the label exactly
//! in training with P = 1 and is independent of it in test, and the written folder opens as an
//! ImageFolder with masks.

use relevance::data::folder::{DataSplits, ReadOptions};
use relevance::data::split::SplitFractions;
use relevance::data::synth::{Part, SynthConfig, generate, write_dataset};
use relevance::train::eval::roc_auc;

/// `perimeter² / (4π·area)` of a binary mask (1 for a disc, larger for ragged outlines), with
/// the perimeter counted as mask/background pixel edges scaled by π/4 (the expected ratio of
/// a 4-connected boundary length to the Euclidean one).
fn isoperimetric(mask: &[u8], s: usize) -> f64 {
    let on = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < s
            && (y as usize) < s
            && mask[y as usize * s + x as usize] > 0
    };
    let (mut area, mut edges) = (0f64, 0f64);
    for y in 0..s as isize {
        for x in 0..s as isize {
            if on(x, y) {
                area += 1.0;
                for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                    if !on(x + dx, y + dy) {
                        edges += 1.0;
                    }
                }
            }
        }
    }
    let perimeter = edges * std::f64::consts::PI / 4.0;
    perimeter * perimeter / (4.0 * std::f64::consts::PI * area)
}

#[test]
fn the_lesion_border_decides_the_label() {
    let cfg = SynthConfig::default();
    let mut scores = Vec::new();
    let mut malignant = Vec::new();
    for i in 0..200 {
        let g = generate(&cfg, Part::Train, i);
        let area = g.mask.iter().filter(|&&m| m > 0).count();
        // A lesion of radius 0.13–0.18 of the side, never touching the border.
        assert!((120..3000).contains(&area), "image {i}: lesion area {area}");
        scores.push(isoperimetric(&g.mask, cfg.size));
        malignant.push(g.label == 1);
        assert!(g.marker.is_none(), "no tags without --confounder");
    }
    assert_eq!(malignant.iter().filter(|&&m| m).count(), 100);
    let auc = roc_auc(&scores, &malignant).unwrap();
    assert!(
        auc > 0.95,
        "border irregularity separates the classes only with AUC {auc}"
    );
    // Same seed, same image.
    assert_eq!(
        generate(&cfg, Part::Val, 3).image,
        generate(&cfg, Part::Val, 3).image
    );
}

#[test]
fn the_confounder_tag_follows_the_label_in_training_only() {
    let cfg = SynthConfig {
        confounder: Some(1.0),
        ..SynthConfig::default()
    };
    for i in 0..100 {
        let g = generate(&cfg, Part::Train, i);
        assert_eq!(g.marker.is_some(), g.label == 1, "train image {i}");
        if let Some(m) = &g.marker {
            // The tag never covers the lesion.
            assert!(m.iter().zip(&g.mask).all(|(a, b)| *a == 0 || *b == 0));
        }
    }
    // In test the tag appears about half of the time in each class.
    let mut tagged = [0usize; 2];
    for i in 0..400 {
        let g = generate(&cfg, Part::Test, i);
        tagged[g.label] += g.marker.is_some() as usize;
    }
    for (c, &t) in tagged.iter().enumerate() {
        assert!(
            (70..=130).contains(&t),
            "class {c}: {t} of 200 test images tagged"
        );
    }
    // P = 0: tags at random in training too.
    let cfg0 = SynthConfig {
        confounder: Some(0.0),
        ..SynthConfig::default()
    };
    let agree = (0..200)
        .map(|i| generate(&cfg0, Part::Train, i))
        .filter(|g| g.marker.is_some() == (g.label == 1))
        .count();
    assert!(
        (70..=130).contains(&agree),
        "{agree} of 200 agree with P = 0"
    );
}

#[test]
fn the_written_folder_opens_with_masks_and_a_manifest() {
    let out = std::env::temp_dir().join(format!("relevance-synth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cfg = SynthConfig {
        n: 40,
        size: 24,
        confounder: Some(1.0),
        ..SynthConfig::default()
    };
    let m = write_dataset(&out, &cfg).unwrap();
    assert_eq!(m.sizes["train"] + m.sizes["val"] + m.sizes["test"], 40);
    let s = DataSplits::open(
        &out,
        SplitFractions::default(),
        0,
        ReadOptions { strict: true },
    )
    .unwrap();
    assert_eq!(s.classes, vec!["benign", "malignant"]);
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (28, 6, 6));
    assert!(s.train.iter().chain(&s.test).all(|x| x.mask.is_some()));
    assert!(s.train.iter().all(|x| x.marker.is_some() == (x.label == 1)));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(manifest["config"]["confounder"], 1.0);
    assert!(write_dataset(&out, &SynthConfig { n: 6, ..cfg }).is_err());
}
