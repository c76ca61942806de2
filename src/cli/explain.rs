//! `relevance explain`: parses the flags into [`ExplainOptions`] and runs the library pipeline
//! ([`crate::explain::run`]); prints conservation errors with `--check-conservation`.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::method_args::{MethodArgs, split_specs};
use super::shard_args::{ShardArgs, Sharding};
use crate::data::shard::{ShardSet, keep};
use crate::explain::{ExplainOptions, ExplainRecord};
use crate::graph::LoadOptions;
use crate::methods::{Target, registry};
use crate::records::OutputFile;
use crate::records::ShardItem;
use crate::report::Colormap;

/// Arguments of `relevance explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Weights: .safetensors, .pth/.pt (with --arch or a card) or .onnx.
    #[arg(long)]
    pub model: PathBuf,
    /// Built-in architecture of a state dict.
    #[arg(long)]
    pub arch: Option<String>,
    /// Model card (JSON/TOML); by default one beside the weights is used.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Methods, comma-separated, each with optional parameters (see --help).
    #[arg(long, required = true, value_parser = split_specs, long_help = registry::help())]
    pub method: Vec<Vec<String>>,
    /// Class to explain: pred (the predicted class), a class index, a class name, or all.
    #[arg(long, default_value = "pred")]
    pub target: String,
    /// Options of the methods (a spec's parameters override them per method).
    #[command(flatten)]
    pub method_args: MethodArgs,
    /// Output folder.
    #[arg(long, default_value = "explanations")]
    pub out: PathBuf,
    /// LRP: print each map's conservation error |Σ R_input − R_start| / |R_start| and fail when
    /// one exceeds --conservation-tol.
    #[arg(long)]
    pub check_conservation: bool,
    /// Largest conservation error --check-conservation accepts.
    #[arg(long, default_value_t = 1e-3)]
    pub conservation_tol: f64,
    /// Opacity of the heatmap in the overlays (0–1).
    #[arg(long, default_value_t = crate::report::heatmap::DEFAULT_ALPHA)]
    pub alpha: f32,
    /// Colormap of unsigned maps (viridis, inferno, gray); signed maps use bwr or coldnhot.
    #[arg(long)]
    pub colormap: Option<String>,
    /// Only one shard of the inputs (see `relevance merge`).
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Images, .npy tensors or folders of them. All are read before the first map is written:
    /// one unreadable input stops the run with nothing written.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs the command.
pub fn run(args: ExplainArgs) -> Result<()> {
    let shards: Option<ShardSet> = args.shard.shard.map(Into::into);
    let items = shard_items(&args.inputs, shards.as_ref())?;
    let mut models = vec![args.model.clone()];
    models.extend(args.card.clone());
    let sharding = args.shard.begin(&args.out, &models, items)?;
    if let Sharding::Done(_) = sharding {
        return Ok(());
    }
    let out = sharding.out(&args.out);
    let options = ExplainOptions {
        model: args.model.clone(),
        load: LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
        methods: args.method.iter().flatten().cloned().collect(),
        method_options: args.method_args.method_options()?,
        target: args.target.parse::<Target>()?,
        out: out.clone(),
        alpha: args.alpha,
        colormap: args
            .colormap
            .as_deref()
            .map(|s| s.parse::<Colormap>().map_err(anyhow::Error::msg))
            .transpose()?,
        inputs: args.inputs.clone(),
        shards,
    };
    let record = crate::explain::run(&options)?;
    sharding.finish()?;
    if args.check_conservation {
        report_conservation(&record, args.conservation_tol)?;
    }
    eprintln!(
        "wrote {} map(s) for {} row(s) to {}",
        record.outputs.len() * record.methods.len(),
        record.outputs.len(),
        out.display()
    );
    Ok(())
}

/// The inputs of the shards in `shards` with their positions in the unsharded run, for the
/// manifest the merge orders rows by (none without `--shard`).
fn shard_items(inputs: &[PathBuf], shards: Option<&ShardSet>) -> Result<Vec<ShardItem>> {
    let Some(set) = shards else {
        return Ok(Vec::new());
    };
    let planned = crate::explain::plan_inputs(inputs)?;
    let numbered: Vec<(usize, _)> = planned.into_iter().enumerate().collect();
    Ok(keep(numbered, set, |(_, p)| p.id.clone())
        .into_iter()
        .map(|(position, p)| ShardItem {
            position,
            name: p.stem,
        })
        .collect())
}

/// `--check-conservation`: prints every LRP map's conservation error and fails when one exceeds
/// `tol`, naming them.
fn report_conservation(record: &ExplainRecord, tol: f64) -> Result<()> {
    let rows: Vec<(String, f64)> = record
        .outputs
        .iter()
        .flat_map(|out| {
            out.files
                .iter()
                .filter_map(move |(key, entry)| match entry {
                    OutputFile::Conservation(c) => {
                        let method = key.strip_suffix(".conservation").unwrap_or(key);
                        let map = match out.files.get(method) {
                            Some(OutputFile::Map(files)) => files.npy.trim_end_matches(".npy"),
                            _ => method,
                        };
                        Some((map.to_string(), c.error))
                    }
                    _ => None,
                })
        })
        .collect();
    if rows.is_empty() {
        bail!("--check-conservation needs at least one LRP method (lrp:* or lrp-*)");
    }
    outln!("map\tconservation_error")?;
    for (name, error) in &rows {
        outln!("{name}\t{error:.3e}")?;
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|(_, e)| e.is_nan() || *e > tol)
        .map(|(n, e)| format!("{n} ({e:.3e})"))
        .collect();
    if !bad.is_empty() {
        bail!(
            "conservation error above {tol:e} in {} of {} map(s): {}",
            bad.len(),
            rows.len(),
            bad.join(", ")
        );
    }
    Ok(())
}
