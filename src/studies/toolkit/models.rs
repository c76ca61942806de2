//! Opening the models of `--models`: weights files, training folders with `ensemble.json`, and
//! `seed-*` folders, each with a readable, unique label.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::super::StudyError;
use crate::data::folder::SplitSource;
use crate::graph::{LoadOptions, Model};
use crate::io::{safe_component, unique_name};
use crate::records::{EnsembleRecord, TrainRecord};

/// One model of a study with its label in the outputs.
pub struct StudyModel {
    /// `seed-<s>` for ensemble members, the folder name for a `seed-*` folder, else the weights'
    /// file stem; qualified and made unique when labels clash (see [`expand_models`]).
    pub label: String,
    /// The loaded model (`model.source` is the weights file).
    pub model: Model,
    /// Its `model.train.json`, when one lies beside the weights and parses.
    pub record: Option<TrainRecord>,
}

impl StudyModel {
    /// The split recorded beside the weights. Read from the record, or — when the record does
    /// not parse as a whole (an older or hand-written file) — from its `data.split` alone, so a
    /// study still uses the test images the model was not trained on.
    pub fn split(&self) -> Option<SplitSource> {
        if let Some(r) = &self.record {
            return Some(r.data.split.clone());
        }
        let rec = self.model.source.with_file_name("model.train.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(rec).ok()?).ok()?;
        serde_json::from_value(v.get("data")?.get("split")?.clone()).ok()
    }
}

impl StudyModel {
    /// True when `data` is the data this model was trained on: the source in its
    /// `model.train.json`, compared as resolved paths (as written where neither resolves).
    pub fn trained_on(&self, data: &Path) -> bool {
        let Some(source) = self.record.as_ref().map(|r| &r.data.source) else {
            return false;
        };
        match (source.canonicalize(), data.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => source == data,
        }
    }
}

/// One `--models` entry expanded: its label, the label qualified by a folder (used when labels
/// clash) and the weights file.
struct Found {
    label: String,
    qualified: String,
    weights: PathBuf,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StudyError> {
    crate::records::read_record(path).map_err(|e| StudyError::file(path, e.message))
}

fn name_of(p: &Path) -> Option<String> {
    p.file_name().map(|n| n.to_string_lossy().to_string())
}

fn qualify(folder: Option<String>, label: &str) -> String {
    folder.map_or(label.to_string(), |f| format!("{f}-{label}"))
}

/// The members of an ensemble folder. The record may hold paths relative to where training
/// ran; the member's folder beside `ensemble.json` is authoritative.
fn ensemble_members(dir: &Path, record: &Path) -> Result<Vec<Found>, StudyError> {
    let rec: EnsembleRecord = read_json(record)?;
    Ok(rec
        .members
        .into_iter()
        .map(|m| {
            let local = dir
                .join(format!("seed-{}", m.seed))
                .join("model.safetensors");
            let label = format!("seed-{}", m.seed);
            Found {
                qualified: qualify(name_of(dir), &label),
                label,
                weights: if local.is_file() { local } else { m.weights },
            }
        })
        .collect())
}

/// One `--models` entry: an ensemble folder, a folder holding `model.safetensors`, or a file.
fn expand_one(path: &Path) -> Result<Vec<Found>, StudyError> {
    let parent = path.parent().and_then(name_of);
    if !path.is_dir() {
        let stem = path
            .file_stem()
            .map_or("model".into(), |n| n.to_string_lossy().to_string());
        return Ok(vec![Found {
            qualified: qualify(parent, &stem),
            label: stem,
            weights: path.to_path_buf(),
        }]);
    }
    let ensemble = path.join("ensemble.json");
    if ensemble.is_file() {
        return ensemble_members(path, &ensemble);
    }
    let weights = path.join("model.safetensors");
    if !weights.is_file() {
        return Err(StudyError::file(
            path,
            "neither ensemble.json nor model.safetensors in this folder",
        ));
    }
    let name = name_of(path).unwrap_or_else(|| "model".into());
    Ok(vec![Found {
        qualified: qualify(parent, &name),
        label: name,
        weights,
    }])
}

/// Expands `--models` into `(label, weights)`: a training folder with `ensemble.json` gives all
/// its members (`seed-<s>`), a folder with `model.safetensors` that file (the folder's name), a
/// file itself (its stem). Labels that would repeat (`seed-0` of two ensembles) are qualified by
/// the folder above (`shortcut-seed-0`, `clean-seed-0`); any still repeated get `-2`, `-3`, ….
/// Labels are file-name safe.
pub fn expand_models(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, StudyError> {
    let mut found = Vec::new();
    for p in paths {
        found.extend(expand_one(p)?);
    }
    if found.is_empty() {
        return Err(StudyError::Invalid("no models given (--models)".into()));
    }
    let clashes = |l: &str| found.iter().filter(|f| f.label == l).count() > 1;
    let labels: Vec<String> = found
        .iter()
        .map(|f| {
            if clashes(&f.label) {
                f.qualified.clone()
            } else {
                f.label.clone()
            }
        })
        .collect();
    let mut seen = HashSet::new();
    Ok(labels
        .into_iter()
        .zip(found)
        .map(|(l, f)| (unique_name(safe_component(&l), &mut seen), f.weights))
        .collect())
}

/// The training record beside `weights`, if there is one and it parses.
fn train_record_beside(weights: &Path) -> Option<TrainRecord> {
    let path = weights.with_file_name("model.train.json");
    path.is_file().then(|| read_json(&path).ok()).flatten()
}

/// Loads every model of `--models` (see [`expand_models`] for the labels).
pub fn load_models(paths: &[PathBuf]) -> Result<Vec<StudyModel>, StudyError> {
    expand_models(paths)?
        .into_iter()
        .map(|(label, weights)| {
            Ok(StudyModel {
                label,
                model: Model::load(&weights, &LoadOptions::default())?,
                record: train_record_beside(&weights),
            })
        })
        .collect()
}

/// Checks that every model takes the first one's input size (and, with `classes`, has its
/// number of classes): the studies explain all models on the same images.
pub fn check_same_frame(models: &[StudyModel], classes: bool) -> Result<(), StudyError> {
    let first = &models[0].model.card;
    for m in &models[1..] {
        let card = &m.model.card;
        if card.input_size != first.input_size || (classes && card.num_classes != first.num_classes)
        {
            return Err(StudyError::file(
                &m.model.source,
                "input size or classes differ from the first model's",
            ));
        }
    }
    Ok(())
}

/// A stamp of the model's weights file (path, size and modification time), so results stored
/// by an earlier run are not reused after the weights changed; `memory` for models without a
/// file.
pub fn weights_stamp(model: &Model) -> String {
    match std::fs::metadata(&model.source) {
        Ok(meta) => {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{}:{modified}", model.source.display(), meta.len())
        }
        Err(_) => "memory".into(),
    }
}
