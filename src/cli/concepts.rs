//! `relevance concepts`: parses the flags into [`ConceptsOptions`] and runs the library pipeline
//! ([`crate::explain::concepts::run`]), printing one JSON line per input on stdout.

use std::path::PathBuf;

use anyhow::Result;

use super::shard_args::{ShardArgs, Sharding};
use crate::data::shard::{ShardSet, keep};
use crate::explain::concepts::{ConceptsOptions, plan_inputs};
use crate::graph::LoadOptions;
use crate::methods::lrp::{Composite, SkipMode, StartRelevance};
use crate::records::ShardItem;

/// Arguments of `relevance concepts`.
#[derive(clap::Args, Debug)]
pub struct ConceptsArgs {
    /// Weights: .safetensors, .pth/.pt (with --arch or a card) or .onnx.
    #[arg(long)]
    pub model: PathBuf,
    /// Built-in architecture of a state dict.
    #[arg(long)]
    pub arch: Option<String>,
    /// Model card (JSON/TOML); by default one beside the weights is used.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Layer whose channels are the concepts (node name, e.g. features.28 or layer4.1).
    #[arg(long)]
    pub layer: String,
    /// Number of top concepts to report and draw.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Extra concepts to draw: channel sets such as `12` or `3,40` (repeatable).
    #[arg(long = "concept")]
    pub concepts: Vec<String>,
    /// LRP composite.
    #[arg(long, default_value = "epsilon-plus-flat")]
    pub composite: Composite,
    /// ResNet skip connections: zennit, split or symmetric.
    #[arg(long, default_value = "zennit")]
    pub resnet_skip: SkipMode,
    /// Starting relevance: logit, probability or one.
    #[arg(long, default_value = "logit")]
    pub start: StartRelevance,
    /// Class to explain (name or index); the predicted class by default.
    #[arg(long)]
    pub target: Option<String>,
    /// Also decompose each top concept into lower-layer concepts, with these widths per level.
    #[arg(long, value_delimiter = ',')]
    pub graph: Vec<usize>,
    /// Concepts per backward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Output folder: `<input>/<layer>_<channels>.npy|png` per input and `concepts.json`;
    /// the input and layer parts are made file-name safe (only `A-Za-z0-9-_.`, not starting
    /// with `.` or `-`, with a short hash of the original when changed), so every file stays inside this folder.
    #[arg(long, default_value = "relevance-concepts")]
    pub out: PathBuf,
    /// Print nothing on stdout (`concepts.json` in --out holds the same records).
    #[arg(long)]
    pub quiet: bool,
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
pub fn run(args: ConceptsArgs) -> Result<()> {
    let shards: Option<ShardSet> = args.shard.shard.map(Into::into);
    let items = match &shards {
        Some(set) => shard_items(&args.inputs, set)?,
        None => Vec::new(),
    };
    let mut models = vec![args.model.clone()];
    models.extend(args.card.clone());
    let sharding = args.shard.begin(&args.out, &models, items)?;
    if let Sharding::Done(_) = sharding {
        return Ok(());
    }
    let options = ConceptsOptions {
        model: args.model.clone(),
        load: LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
        layer: args.layer.clone(),
        top: args.top,
        concepts: args.concepts.clone(),
        composite: args.composite.clone(),
        skip: args.resnet_skip,
        start: args.start,
        target: args.target.clone(),
        graph: args.graph.clone(),
        batch: args.batch,
        out: sharding.out(&args.out),
        inputs: args.inputs.clone(),
        shards,
    };
    crate::explain::concepts::run(&options, |record| {
        if !args.quiet {
            outln!("{}", serde_json::to_string(record)?)?;
        }
        Ok(())
    })?;
    sharding.finish()
}

/// The inputs of `set` with their positions in the unsharded run and their folder names, for
/// the manifest the merge orders records by.
fn shard_items(inputs: &[PathBuf], set: &ShardSet) -> Result<Vec<ShardItem>> {
    let numbered: Vec<(usize, _)> = plan_inputs(inputs)?.into_iter().enumerate().collect();
    Ok(keep(numbered, set, |(_, p)| p.id.clone())
        .into_iter()
        .map(|(position, p)| ShardItem {
            position,
            name: p.stem,
        })
        .collect())
}
