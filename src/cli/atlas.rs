//! `relevance atlas`: relevance and activation maximisation over a folder of images for the
//! channels of one layer, written as a concept atlas (a PNG grid per channel and `atlas.json`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::shard_args::{ShardArgs, Sharding};
use crate::data::shard::{SampleId, keep};
use crate::data::{expand_inputs, is_image};
use crate::graph::{LoadOptions, Model};
use crate::methods::crp::atlas::{Atlas, AtlasOptions, Candidates, draw, scan};
use crate::methods::lrp::{Composite, LrpModel, LrpOptions, SkipMode, StartRelevance};
use crate::records::{AtlasRecord, SCHEMA_VERSION, write_record};
use crate::shard::atlas::CANDIDATES;

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
    /// Only scan one shard of the images; `relevance merge` takes the best references of all
    /// shards and draws the atlas.
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs the command: the whole atlas, or with `--shard` pass 1 over the shard's images only,
/// whose candidates `relevance merge` combines and draws ([`draw_merged`]).
pub fn run(args: AtlasArgs) -> Result<()> {
    let files = data_files(&args.data)?;
    let mut models = vec![args.model.clone()];
    models.extend(args.card.clone());
    let sharding = args.shard.begin(&args.out, &models, Vec::new())?;
    if let Sharding::Done(_) = sharding {
        return Ok(());
    }
    let total = files.len();
    let files: Vec<(usize, PathBuf)> = match args.shard.shard {
        Some(shard) => keep(files, &shard.into(), |(_, f)| sample_id(f)),
        None => files,
    };
    let (model, lrp) = load(&args)?;
    let opts = atlas_options(&args);
    match sharding {
        Sharding::Whole | Sharding::Done(_) => {
            let candidates = scan(&lrp, &model.card, &files, &opts)?;
            write_atlas(&args, &model, &lrp, candidates, &args.out)
        }
        Sharding::Shard(ref run) => {
            if files.is_empty() {
                bail!(
                    "this shard holds no images: {} shards of {total} image(s); use at most {total}",
                    args.shard.shard.map_or(1, |s| s.count)
                );
            }
            let candidates = scan(&lrp, &model.card, &files, &opts)?;
            let path = run.dir.join(CANDIDATES);
            let text = serde_json::to_string(&candidates)?;
            crate::io::write_text_atomic(&path, &text)
                .with_context(|| format!("{}: cannot write", path.display()))?;
            eprintln!(
                "atlas candidates of {} image(s) written to {}",
                files.len(),
                path.display()
            );
            sharding.finish()
        }
    }
}

/// Draws the atlas of merged shards' `candidates` into `out`, as the command `args` (the
/// unsharded command line of the shards) draws its own.
pub fn draw_merged(args: AtlasArgs, candidates: Candidates, out: &Path) -> Result<()> {
    let (model, lrp) = load(&args)?;
    write_atlas(&args, &model, &lrp, candidates, out)
}

/// Every image below `data` (recursively, sorted), numbered in that order.
fn data_files(data: &Path) -> Result<Vec<(usize, PathBuf)>> {
    if !data.is_dir() {
        bail!("{}: not a folder of images", data.display());
    }
    let files: Vec<PathBuf> = expand_inputs(std::slice::from_ref(&data.to_path_buf()))?
        .into_iter()
        .filter(|f| is_image(f))
        .collect();
    if files.is_empty() {
        bail!("{}: no images found", data.display());
    }
    Ok(files.into_iter().enumerate().collect())
}

/// An image's identity for the shard partition: its folder (its class) and its path.
fn sample_id(file: &Path) -> SampleId {
    SampleId {
        class: file
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        name: file.display().to_string(),
    }
}

/// The model and its LRP rules.
fn load(args: &AtlasArgs) -> Result<(Model, LrpModel)> {
    let model = Model::load(
        &args.model,
        &LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
    )?;
    let options = LrpOptions {
        skip: args.resnet_skip,
        start: args.start,
        zbox: None,
    };
    let lrp = LrpModel::new(&model, args.composite.clone(), &options)?;
    Ok((model, lrp))
}

fn atlas_options(args: &AtlasArgs) -> AtlasOptions {
    AtlasOptions {
        layer: args.layer.clone(),
        top_k: args.top_k,
        channels: (!args.channels.is_empty()).then(|| args.channels.clone()),
        batch: args.batch,
        tile: args.tile,
        ..AtlasOptions::default()
    }
}

/// Pass 2 and the files: draws `candidates` into `out` and writes the record.
fn write_atlas(
    args: &AtlasArgs,
    model: &Model,
    lrp: &LrpModel,
    candidates: Candidates,
    out: &Path,
) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create output folder", out.display()))?;
    let atlas = draw(lrp, &model.card, candidates, &atlas_options(args), out)?;
    write_atlas_record(&atlas, out)?;
    eprintln!(
        "atlas of {} channel(s) of '{}' over {} image(s) written to {}",
        atlas.channels.len(),
        atlas.layer,
        atlas.samples.len(),
        out.display()
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
