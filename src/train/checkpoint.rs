//! Files a training run writes: the model (`model.safetensors` + `model.card.json`, loadable by
//! `Model::load`), its training record (`model.train.json`), and a resumable checkpoint
//! (`checkpoint.safetensors`: current and best parameters, optimiser state, and the loop state
//! as JSON metadata). Every file is written atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::optim::Optimizer;
use crate::graph::import::{NamedTensor, safetensors as st};
use crate::graph::{ModelCard, ParamStore};

/// Parameters as named tensors (key order).
pub fn params_to_tensors(params: &ParamStore, prefix: &str) -> Vec<NamedTensor> {
    params
        .iter()
        .map(|(k, p)| NamedTensor {
            key: format!("{prefix}{k}"),
            shape: p.shape.clone(),
            values: p.values(),
        })
        .collect()
}

/// Named tensors back into a store (keys with `prefix`, prefix removed).
pub fn tensors_to_params(tensors: &[NamedTensor], prefix: &str) -> Result<ParamStore, TrainError> {
    let mut store = ParamStore::new();
    for t in tensors {
        if let Some(k) = t.key.strip_prefix(prefix) {
            store.insert_values(k, t.values.clone(), t.shape.clone())?;
        }
    }
    Ok(store)
}

fn write_safetensors(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: Option<HashMap<String, String>>,
) -> Result<(), TrainError> {
    let bytes = st::to_bytes(tensors, metadata).map_err(|e| TrainError::file(path, e))?;
    crate::io::write_atomic(path, &bytes).map_err(|e| TrainError::file(path, e.to_string()))
}

/// Writes `dir/model.safetensors` and `dir/model.card.json`.
pub fn save_model(
    dir: &Path,
    params: &ParamStore,
    card: &ModelCard,
) -> Result<PathBuf, TrainError> {
    let weights = dir.join("model.safetensors");
    write_safetensors(&weights, &params_to_tensors(params, ""), None)?;
    let card_path = dir.join("model.card.json");
    crate::io::write_text_atomic(&card_path, &card.to_json())
        .map_err(|e| TrainError::file(&card_path, e.to_string()))?;
    Ok(weights)
}

/// Per-epoch numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f32,
    /// Mean training loss (with dropout, batch statistics).
    pub train_loss: f64,
    /// Training accuracy of the same passes.
    pub train_accuracy: f64,
    /// Validation loss (inference mode), if there is a validation set.
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Wall-clock seconds of the epoch's training passes.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// The loop state saved after every finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Best validation loss so far.
    pub best_val_loss: Option<f64>,
    /// Epoch of the best validation loss.
    pub best_epoch: Option<usize>,
    /// Epochs since the best validation loss.
    pub bad_epochs: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// History so far.
    pub history: Vec<EpochRecord>,
    /// Fingerprint of the configuration (a resumed run must match).
    pub config: String,
}

/// A resumable checkpoint.
pub struct Checkpoint {
    /// Current parameters (incl. BN running statistics).
    pub params: ParamStore,
    /// Parameters at the best validation loss.
    pub best: ParamStore,
    /// Optimiser state tensors.
    pub optimizer: Vec<NamedTensor>,
    /// Loop state.
    pub state: LoopState,
}

/// The checkpoint file of a run folder.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}

/// Writes the checkpoint (one atomic file).
pub fn save_checkpoint(
    dir: &Path,
    params: &ParamStore,
    best: &ParamStore,
    opt: &Optimizer,
    state: &LoopState,
) -> Result<(), TrainError> {
    let mut tensors = params_to_tensors(params, "param/");
    tensors.extend(params_to_tensors(best, "best/"));
    tensors.extend(opt.state_tensors().into_iter().map(|t| NamedTensor {
        key: format!("optim/{}", t.key),
        ..t
    }));
    let meta = HashMap::from([(
        "loop_state".to_string(),
        serde_json::to_string(state).expect("state serialises"),
    )]);
    write_safetensors(&checkpoint_path(dir), &tensors, Some(meta))
}

/// Reads a checkpoint written by [`save_checkpoint`].
pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint, TrainError> {
    let path = checkpoint_path(dir);
    let bytes = std::fs::read(&path).map_err(|e| TrainError::file(&path, e.to_string()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| TrainError::file(&path, format!("not a checkpoint: {e}")))?;
    let state: LoopState = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("loop_state"))
        .ok_or_else(|| TrainError::file(&path, "no loop state: not a relevance checkpoint"))
        .and_then(|s| {
            serde_json::from_str(s).map_err(|e| TrainError::file(&path, e.to_string()))
        })?;
    let tensors = st::read(&path).map_err(|e| TrainError::file(&path, e.to_string()))?;
    let optimizer = tensors
        .iter()
        .filter_map(|t| {
            t.key.strip_prefix("optim/").map(|k| NamedTensor {
                key: k.to_string(),
                ..t.clone()
            })
        })
        .collect();
    Ok(Checkpoint {
        params: tensors_to_params(&tensors, "param/")?,
        best: tensors_to_params(&tensors, "best/")?,
        optimizer,
        state,
    })
}
