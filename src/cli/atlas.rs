//! `relevance atlas`: relevance and activation maximisation over a folder of images for the
//! channels of one layer, written as a concept atlas (a PNG grid per channel and `atlas.json`).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::data::{expand_inputs, is_image};
use crate::graph::{LoadOptions, Model};
use crate::methods::crp::atlas::{Atlas, AtlasOptions, build_atlas};
use crate::methods::lrp::{Composite, LrpModel, LrpOptions, SkipMode, StartRelevance};
use crate::records::{AtlasRecord, SCHEMA_VERSION, write_record};

/// Arguments of `relevance atlas`.
#[derive(clap::Args, Debug)]
pub struct AtlasArgs {
    /// Weights: .safetensors, .pth/.pt (with --arch or a card) or .onnx.
    #[arg(long)]
    pub model: PathBuf,
    /// Built-in architecture of a state dict.
    #[arg(long)]
    pub arch: Option<String>,
    /// Model card (JSON/TOML); by default one beside the weights is used.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Layer whose channels are drawn (node name).
    #[arg(long)]
    pub layer: String,
    /// Folder of images (searched recursively); a sub-folder named after a class of the model
    /// card makes that class the explained target of its images, otherwise the prediction is.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// References per channel, for relevance and for activation.
    #[arg(long, default_value_t = 8)]
    pub top_k: usize,
    /// Only these channels (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<usize>,
    /// LRP composite.
    #[arg(long, default_value = "epsilon-plus-flat")]
    pub composite: Composite,
    /// ResNet skip connections: zennit, split or symmetric.
    #[arg(long, default_value = "zennit")]
    pub resnet_skip: SkipMode,
    /// Starting relevance: logit, probability or one.
    #[arg(long, default_value = "logit")]
    pub start: StartRelevance,
    /// Images per forward pass and heatmaps per backward pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Tile size in the PNG grids, pixels.
    #[arg(long, default_value_t = 96)]
    pub tile: usize,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs the command.
pub fn run(args: AtlasArgs) -> Result<()> {
    let model = Model::load(
        &args.model,
        &LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
    )?;
    if !args.data.is_dir() {
        anyhow::bail!("{}: not a folder of images", args.data.display());
    }
    let files: Vec<PathBuf> = expand_inputs(std::slice::from_ref(&args.data))?
        .into_iter()
        .filter(|f| is_image(f))
        .collect();
    if files.is_empty() {
        anyhow::bail!("{}: no images found", args.data.display());
    }
    let options = LrpOptions {
        skip: args.resnet_skip,
        start: args.start,
        zbox: None,
    };
    let lrp = LrpModel::new(&model, args.composite, &options)?;
    let opts = AtlasOptions {
        layer: args.layer.clone(),
        top_k: args.top_k,
        channels: (!args.channels.is_empty()).then(|| args.channels.clone()),
        batch: args.batch,
        tile: args.tile,
        ..AtlasOptions::default()
    };
    let atlas = build_atlas(&lrp, &model.card, &files, &opts, &args.out)?;
    write_atlas_record(&atlas, &args.out)?;
    eprintln!(
        "atlas of {} channel(s) of '{}' over {} image(s) written to {}",
        atlas.channels.len(),
        atlas.layer,
        atlas.samples.len(),
        args.out.display()
    );
    Ok(())
}

/// Rewrites the `atlas.json` that `build_atlas` (in `methods`, which knows nothing of record
/// versions) wrote as the versioned [`AtlasRecord`]: the same content plus `schema_version`.
fn write_atlas_record(atlas: &Atlas, out: &Path) -> Result<()> {
    let mut record: AtlasRecord = serde_json::from_value(serde_json::to_value(atlas)?)?;
    record.schema_version = SCHEMA_VERSION;
    write_record(&out.join("atlas.json"), &record)?;
    Ok(())
}
