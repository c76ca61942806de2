//! Opening training data and training ensembles: identical models that differ only in their
//! seed (initial weights, data order, augmentations, dropout), each in `out/seed-<s>/`, with a
//! summary in `out/ensemble.json`. All members share one data split.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::trainer::{RunOptions, TrainConfig, TrainData, Verbosity, train_model};
use crate::data::DataError;
use crate::data::augment::AugmentSpec;
use crate::data::batch::{BatchLoader, Source};
use crate::data::folder::{DataSplits, ReadOptions, SplitSource};
use crate::data::idx::{class_names, is_mnist_dir, read_mnist_dir};
use crate::data::split::{SplitFractions, stratified_split};
use crate::graph::ModelCard;

/// Most members an ensemble may have: each is a full training run, so more is never meant (and
/// a range like `0..1000000000000` must be refused before its seeds are listed, not allocated).
pub const MAX_SEEDS: u64 = 1000;

/// Parses `--seeds`: `A..B` (B exclusive, like a Rust range), `A..=B`, a list `0,1,2`, or one
/// number; at most [`MAX_SEEDS`] seeds.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("bad --seeds '{text}': use e.g. 0..5, 0..=4 or 0,1,2");
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    let too_many = || format!("--seeds '{text}' names more than {MAX_SEEDS} seeds");
    let range = |a: u64, end: u64| {
        if end.saturating_sub(a) > MAX_SEEDS {
            Err(too_many())
        } else {
            Ok((a..end).collect::<Vec<u64>>())
        }
    };
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..=") {
        range(num(a)?, num(b)?.saturating_add(1))?
    } else if let Some((a, b)) = text.split_once("..") {
        range(num(a)?, num(b)?)?
    } else {
        text.split(',').map(num).collect::<Result<_, _>>()?
    };
    if seeds.is_empty() {
        return Err(format!("--seeds '{text}' names no seed"));
    }
    if seeds.len() as u64 > MAX_SEEDS {
        return Err(too_many());
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        return Err(format!("--seeds '{text}' repeats a seed"));
    }
    Ok(seeds)
}

/// Opens `path` for training: an ImageFolder folder (with or without `train/val/test`
/// sub-folders), a CSV file, or a folder of MNIST-style IDX files (test = `t10k`, validation
/// split off the training files). `card` gives input size, channels and normalisation.
pub fn open_data(
    path: &Path,
    card: &ModelCard,
    fractions: SplitFractions,
    split_seed: u64,
    strict: bool,
    augment: AugmentSpec,
) -> Result<TrainData, TrainError> {
    if path.is_dir() && is_mnist_dir(path) {
        let (train, test) = read_mnist_dir(path)?;
        let f = SplitFractions {
            val: fractions.val,
            test: 0.0,
        };
        let split = stratified_split(&train.labels, f, split_seed);
        let pick = |idx: &[usize]| Source::Memory {
            images: idx.iter().map(|&i| train.images[i].clone()).collect(),
            labels: idx.iter().map(|&i| train.labels[i]).collect(),
        };
        let classes = train.labels.iter().max().map_or(0, |m| m + 1);
        let names = class_names(classes);
        return Ok(TrainData {
            classes: names,
            train: preloaded(pick(&split.train), card, augment)?,
            val: preloaded(pick(&split.val), card, AugmentSpec::default())?,
            test: preloaded(
                Source::Memory {
                    images: test.images,
                    labels: test.labels,
                },
                card,
                AugmentSpec::default(),
            )?,
            split: SplitSource::Stratified {
                seed: split_seed,
                fractions: f,
            },
            card: card.clone(),
            source: path.to_path_buf(),
        });
    }
    refuse_multi_label(path)?;
    let splits = DataSplits::open(path, fractions, split_seed, ReadOptions { strict })?;
    if let Some(w) = splits.skipped_warning() {
        eprintln!("warning: {w}");
    }
    Ok(TrainData {
        classes: splits.classes.clone(),
        train: preloaded(Source::Files(splits.train), card, augment)?,
        val: preloaded(Source::Files(splits.val), card, AugmentSpec::default())?,
        test: preloaded(Source::Files(splits.test), card, AugmentSpec::default())?,
        split: splits.source,
        card: card.clone(),
        source: path.to_path_buf(),
    })
}

/// Training fits one class per image (softmax cross-entropy); a CSV list that gives an image
/// several labels (`path,a;b` or repeated rows) would train it towards each label in turn, so
/// it is refused, naming the row. The studies read such lists as image × class units.
fn refuse_multi_label(path: &Path) -> Result<(), DataError> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !(path.is_file() && is_csv) {
        return Ok(()); // folders have one class per file; other errors are DataSplits::open's
    }
    match crate::data::folder::first_multi_label_row(path)? {
        None => Ok(()),
        Some((line, what)) => Err(DataError::file(
            path,
            format!(
                "line {line}: {what}; train fits one class per image (softmax cross-entropy) and \
                 does not train multi-label data (sigmoid/BCE) — give each image one label \
                 (the studies read multi-label lists)"
            ),
        )),
    }
}

fn preloaded(
    source: Source,
    card: &ModelCard,
    augment: AugmentSpec,
) -> Result<BatchLoader, DataError> {
    let mut l = BatchLoader::new(source, card, augment);
    l.preload()?;
    Ok(l)
}

/// One member of an ensemble in `ensemble.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    /// Its seed.
    pub seed: u64,
    /// Its weights.
    pub weights: PathBuf,
    /// Test accuracy (if there is a test set).
    pub test_accuracy: Option<f64>,
    /// Test balanced accuracy.
    pub test_balanced_accuracy: Option<f64>,
}

impl EnsembleRecord {
    /// The record of `members` (in order): their mean test accuracy and its sample SD (n − 1),
    /// `None` where no member has a test accuracy (or, for the SD, only one has).
    pub fn of(arch: String, classes: Vec<String>, members: Vec<Member>) -> Self {
        let accs: Vec<f64> = members.iter().filter_map(|m| m.test_accuracy).collect();
        let mean = (!accs.is_empty()).then(|| accs.iter().sum::<f64>() / accs.len() as f64);
        let sd = mean.filter(|_| accs.len() > 1).map(|m| {
            (accs.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (accs.len() - 1) as f64).sqrt()
        });
        EnsembleRecord {
            schema_version: crate::records::SCHEMA_VERSION,
            arch,
            classes,
            members,
            test_accuracy_mean: mean,
            test_accuracy_sd: sd,
        }
    }
}

/// Summary of an ensemble (`out/ensemble.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnsembleRecord {
    /// Record layout (`records::SCHEMA_VERSION` when written now; 0: written before the field).
    #[serde(default, skip_serializing_if = "crate::records::is_unversioned")]
    pub schema_version: u32,
    /// Architecture.
    pub arch: String,
    /// Class names.
    pub classes: Vec<String>,
    /// Members in seed order given.
    pub members: Vec<Member>,
    /// Mean test accuracy over members.
    pub test_accuracy_mean: Option<f64>,
    /// Sample standard deviation of the test accuracy.
    pub test_accuracy_sd: Option<f64>,
}

/// Trains one model per seed into `out/seed-<s>/` and writes `out/ensemble.json`.
pub fn train_ensemble(
    data: &TrainData,
    cfg: &TrainConfig,
    seeds: &[u64],
    out: &Path,
    resume: bool,
    pretrained: Option<&Path>,
    verbosity: Verbosity,
) -> Result<EnsembleRecord, TrainError> {
    let mut members = Vec::new();
    for &seed in seeds {
        let dir = out.join(format!("seed-{seed}"));
        if verbosity != Verbosity::Quiet {
            eprintln!("training {} with seed {seed} → {}", cfg.arch, dir.display());
        }
        let outcome = train_model(
            data,
            cfg,
            &RunOptions {
                seed,
                out: &dir,
                resume,
                pretrained,
                verbosity,
                stop_after_epochs: None,
            },
        )?;
        let test = outcome.record.metrics.get("test");
        if verbosity != Verbosity::Quiet
            && let Some(t) = test
        {
            eprintln!(
                "seed {seed}: test accuracy {:.4}, balanced {:.4}",
                t.accuracy, t.balanced_accuracy
            );
        }
        members.push(Member {
            seed,
            weights: outcome.weights.clone(),
            test_accuracy: test.map(|t| t.accuracy),
            test_balanced_accuracy: test.map(|t| t.balanced_accuracy),
        });
    }
    let record = EnsembleRecord::of(cfg.arch.clone(), data.classes.clone(), members);
    let path = out.join("ensemble.json");
    crate::records::write_record(&path, &record).map_err(|e| TrainError::file(&path, e.message))?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists_and_ranges() {
        assert_eq!(parse_seeds("0..3").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_seeds("2..=4").unwrap(), vec![2, 3, 4]);
        assert_eq!(parse_seeds("5,1").unwrap(), vec![5, 1]);
        assert_eq!(parse_seeds("7").unwrap(), vec![7]);
        assert!(parse_seeds("3..3").is_err());
        assert!(parse_seeds("1,1").is_err());
        assert!(parse_seeds("a").is_err());
        // Refused before the seeds are listed (8 TB for this one).
        assert!(
            parse_seeds("0..1000000000000")
                .unwrap_err()
                .contains("more than 1000")
        );
        assert!(parse_seeds("0..=1000").is_err());
        assert_eq!(parse_seeds("0..1000").unwrap().len(), 1000);
    }
}
