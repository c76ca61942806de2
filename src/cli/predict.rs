//! `relevance predict`: class, probability and optionally logits for each input.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::data::{expand_inputs, image::load_input};
use crate::engine::predict;
use crate::graph::{LoadOptions, Model};
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
    /// Images, .npy tensors or folders of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs the command.
pub fn run(args: PredictArgs) -> Result<()> {
    let model = Model::load(
        &args.model,
        &LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
    )?;
    let files = expand_inputs(&args.inputs)?;
    for file in files {
        let x = load_input(&file, &model.card)?;
        let line = predict_one(&model, &file, x, args.top, args.logits)?;
        outln!("{line}")?;
    }
    Ok(())
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
