//! Several ensembles in one `variability` run (`--models runs/resnet runs/vgg`, each entry a
//! training folder of two or more seeds): which ensemble's maps and predictions vary more
//! across its seeds, image by image ("ResNet's maps vary more across seeds than VGG's").
//!
//! Per image and method, each ensemble's **map SD** (the mean over pixels of the per-pixel
//! sample SD of its members' normalised maps, as [`super::variability`] computes for the whole
//! run), **probability SD** (sample SD of the explained class's probability over its members)
//! and **accuracy** (share of its members that give the image its true class). Ensembles are
//! compared pairwise under each method on the same images by [`super::paired`]
//! (`ensemble_tests.csv`, with the columns of compare's `model_tests.csv`; `model_a`/`model_b`
//! name the ensembles).

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::fit::mean_sd;
use super::maps::ModelMaps;
use super::toolkit::{RunFacts, StudyImage, StudyMethod, expand_models, has_class};
use super::variability::{mean_of, normalised_mean_sd};
use super::{StudyError, paired};

/// One ensemble of the run: its name (the `--models` entry's folder) and its members' positions
/// in the run's model list.
#[derive(Clone, Debug, PartialEq)]
pub struct Ensemble {
    /// The entry's folder name (made unique with `-2`, … when two entries share one).
    pub name: String,
    /// Its members in the run's model list (expanded in `--models` order).
    pub members: Range<usize>,
}

/// The ensembles of `--models` when there are several: every entry expands to two or more
/// models (a training folder with `ensemble.json`). `None` for one ensemble, or when some entry
/// is a single model (the run is then one ensemble of all the models given, as before).
pub fn ensembles_of(paths: &[PathBuf]) -> Result<Option<Vec<Ensemble>>, StudyError> {
    if paths.len() < 2 {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut start = 0;
    for p in paths {
        let n = expand_models(std::slice::from_ref(p))?.len();
        if n < 2 {
            return Ok(None);
        }
        let name = p
            .file_name()
            .map_or("ensemble".into(), |n| n.to_string_lossy().to_string());
        out.push(Ensemble {
            name: crate::io::unique_name(crate::io::safe_component(&name), &mut seen),
            members: start..start + n,
        });
        start += n;
    }
    Ok(Some(out))
}

/// The per-image quantities ensembles are compared on.
pub const MEASURES: [&str; 3] = ["map_sd", "probability_sd", "accuracy"];

/// The [`MEASURES`] of one ensemble on image `i` under method `k`.
fn measures_of(
    members: &[ModelMaps],
    k: usize,
    i: usize,
    method: &StudyMethod,
    image: &StudyImage,
) -> [f64; 3] {
    let (_, sd_map) = normalised_mean_sd(members, k, i, method.style());
    let map_sd = mean_of(&sd_map);
    let probs: Vec<f64> = members
        .iter()
        .map(|mm| mm.probs[i][mm.targets[i]] as f64)
        .collect();
    let correct = members
        .iter()
        .filter(|mm| has_class(mm.head, &mm.probs[i], image.label))
        .count();
    [
        map_sd,
        mean_sd(probs).1,
        correct as f64 / members.len() as f64,
    ]
}

/// `ensemble_tests.csv`: every pair of ensembles under each method on the same images, per
/// [`MEASURES`] (Holm within a measure); returns the summary's tests rows and the finding of
/// the first measure's strongest pair (a direction only when significant).
pub fn ensemble_tests(
    out: &Path,
    ensembles: &[Ensemble],
    all: &[ModelMaps],
    images: &[StudyImage],
    methods: &[(String, StudyMethod)],
) -> Result<(Vec<Vec<Value>>, Vec<String>), StudyError> {
    // Paired by position: two images may share a file stem in different class folders.
    let keys: Vec<String> = (0..images.len()).map(|i| i.to_string()).collect();
    let mut values = Vec::new(); // (ensemble, method, image, measures)
    for e in ensembles {
        let members = &all[e.members.clone()];
        for (k, (name, method)) in methods.iter().enumerate() {
            for (i, image) in images.iter().enumerate() {
                let m = measures_of(members, k, i, method, image);
                values.push((e.name.as_str(), name.as_str(), keys[i].as_str(), m));
            }
        }
    }
    let scores_of = |k: usize| -> Vec<paired::Scored> {
        values
            .iter()
            .map(|(ensemble, method, image, m)| paired::Scored {
                model: ensemble,
                method,
                image,
                value: m[k],
            })
            .collect()
    };
    let facts = RunFacts {
        methods: methods.iter().map(|(n, _)| n.clone()).collect(),
        models: ensembles.iter().map(|e| e.name.clone()).collect(),
        split: String::new(),
        images: images.len(),
        computed: 0,
        reused: 0,
    };
    let by_ensemble = paired::by_measure(&MEASURES, scores_of, paired::compare_models, &facts);
    paired::write_model_comparisons(&out.join("ensemble_tests.csv"), &by_ensemble)?;
    let findings = paired::model_finding(&by_ensemble)
        .into_iter()
        .map(|s| format!("Ensembles compared — {s}"))
        .collect();
    Ok((paired::test_rows(&by_ensemble), findings))
}
