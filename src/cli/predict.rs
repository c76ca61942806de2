//! `relevance predict`: class, probability and optionally logits for each input, one JSON line
//! each on stdout and, with `--out`, in `OUT/predictions.jsonl`; `--shard K/N` predicts one
//! shard of the inputs (merged by `relevance merge`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::shard_args::{ShardArgs, Sharding};
use crate::data::shard::{SampleId, ShardSet, keep};
use crate::data::{InputFile, expand_input_files, image::load_input};
use crate::engine::predict;
use crate::graph::{LoadOptions, Model};
use crate::records::ShardItem;
use crate::shard::predict::PREDICTIONS;
use crate::tensor::{T4, to_vec};

/// Arguments of `relevance predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// Weights: .safetensors, .pth/.pt (with --arch or a card) or .onnx.
    #[arg(long)]
    pub model: PathBuf,
    /// Built-in architecture of a state dict.
    #[arg(long)]
    pub arch: Option<String>,
    /// Model card (JSON/TOML); by default one beside the weights is used.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Also list the K most probable classes.
    #[arg(long, default_value_t = 1)]
    pub top: usize,
    /// Include the raw logits.
    #[arg(long)]
    pub logits: bool,
    /// Also write the lines to OUT/predictions.jsonl (needed with --shard).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only one shard of the inputs (see `relevance merge`).
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Images, .npy tensors, folders of them, or .csv lists (`path[,label]` rows).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs the command.
pub fn run(args: PredictArgs) -> Result<()> {
    let shards: Option<ShardSet> = args.shard.shard.map(Into::into);
    let numbered: Vec<(usize, InputFile)> = expand_input_files(&args.inputs)?
        .into_iter()
        .enumerate()
        .collect();
    let files = match &shards {
        Some(set) => keep(numbered, set, |(_, f)| SampleId {
            class: f.class.clone(),
            name: f.path.display().to_string(),
        }),
        None => numbered,
    };
    let sharding = match (&args.out, args.shard.shard) {
        (Some(out), _) => args
            .shard
            .begin(out, &model_files(&args), shard_items(&files))?,
        (None, Some(_)) => bail!("--shard needs --out (the folder the shards are merged in)"),
        (None, None) => Sharding::Whole,
    };
    if let Sharding::Done(_) = sharding {
        return Ok(());
    }
    let model = Model::load(
        &args.model,
        &LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
    )?;
    let mut lines = String::new();
    for (_, file) in &files {
        let x = load_input(&file.path, &model.card)?;
        let line = predict_one(&model, &file.path, x, args.top, args.logits)?;
        outln!("{line}")?;
        lines.push_str(&format!("{line}\n"));
    }
    if let Some(out) = &args.out {
        write_predictions(&sharding.out(out), &lines)?;
    }
    sharding.finish()
}

/// The model files a shard's manifest hashes: the weights and the card given.
fn model_files(args: &PredictArgs) -> Vec<PathBuf> {
    let mut models = vec![args.model.clone()];
    models.extend(args.card.clone());
    models
}

/// The shard's inputs with their positions in the unsharded run, which order the merge.
fn shard_items(files: &[(usize, InputFile)]) -> Vec<ShardItem> {
    files
        .iter()
        .map(|(position, f)| ShardItem {
            position: *position,
            name: f.path.display().to_string(),
        })
        .collect()
}

/// Writes the lines as `dir/predictions.jsonl` (atomically).
fn write_predictions(dir: &Path, lines: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create output folder", dir.display()))?;
    let path = dir.join(PREDICTIONS);
    crate::io::write_text_atomic(&path, lines)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// The JSON line for one input.
pub fn predict_one(
    model: &Model,
    file: &std::path::Path,
    x: T4,
    top: usize,
    with_logits: bool,
) -> Result<serde_json::Value> {
    let logits_node = model.graph.logits();
    let mut graph = model.graph.clone();
    graph.output = logits_node;
    let logits = predict(&graph, &model.params, x)?;
    let logit_values = to_vec(&logits);
    let head = model.card.head();
    let probs = head.probabilities(&logit_values);
    let k = probs.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let best = order[0];
    let mut obj = json!({
        "input": file.display().to_string(),
        "class": model.class_name(best),
        "index": best,
        "prob": probs[best],
    });
    if top > 1 {
        obj["top"] = order
            .iter()
            .take(top)
            .map(|&i| json!({"class": model.class_name(i), "index": i, "prob": probs[i]}))
            .collect();
    }
    if head.multi_label() {
        // Every class the image has: an independent sigmoid per class, threshold 0.5.
        obj["labels"] = (0..k)
            .filter(|&i| probs[i] >= 0.5)
            .map(|i| json!({"class": model.class_name(i), "index": i, "prob": probs[i]}))
            .collect();
    }
    if with_logits {
        obj["logits"] = json!(logit_values);
    }
    Ok(obj)
}
