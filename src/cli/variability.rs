//! `relevance variability`: the ensemble study (see [`crate::studies::variability`]).

use std::path::PathBuf;

use anyhow::Result;

use crate::studies::common::SplitChoice;
use crate::studies::maps::TargetClass;
use crate::studies::variability::{VariabilityOptions, run as run_study};

/// Arguments of `relevance variability`.
#[derive(clap::Args, Debug)]
pub struct VariabilityArgs {
    /// Models: weights files (card beside), training folders with ensemble.json, or seed-* folders.
    #[arg(long, num_args = 1.., required = true)]
    pub models: Vec<PathBuf>,
    /// ImageFolder data set (masks <stem>.mask.png beside images are used where present).
    #[arg(long)]
    pub data: PathBuf,
    /// Images: test (the split recorded in model.train.json, or test/) or all.
    #[arg(long, default_value = "test")]
    pub split: SplitChoice,
    /// At most this many images (interleaved across classes, in path order).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Explanation methods, comma-separated (names as `relevance explain` takes them).
    #[arg(long, value_delimiter = ',', default_value = "grad-cam")]
    pub methods: Vec<String>,
    /// CAM target layer (a node name); default: each method's default.
    #[arg(long)]
    pub layer: Option<String>,
    /// Class explained: true (the label, the same for every model) or pred (each model's prediction).
    #[arg(long, default_value = "true")]
    pub target: TargetClass,
    /// Number of k-means clusters of images.
    #[arg(long, default_value_t = 3)]
    pub clusters: usize,
    /// Example images per cluster in the cluster figure.
    #[arg(long, default_value_t = 4)]
    pub examples: usize,
    /// Seed of k-means.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder.
    #[arg(long, default_value = "variability")]
    pub out: PathBuf,
    /// No progress bars (`--quiet` is accepted too).
    #[arg(long = "no-progress", alias = "quiet")]
    pub no_progress: bool,
}

/// Runs the command.
pub fn run(args: VariabilityArgs) -> Result<()> {
    let opts = VariabilityOptions {
        models: args.models,
        data: args.data,
        split: args.split,
        limit: args.limit,
        batch: args.batch,
        methods: args.methods,
        layer: args.layer,
        target: args.target,
        clusters: args.clusters,
        examples: args.examples,
        seed: args.seed,
        out: args.out,
        command: Some(std::env::args().collect()),
    };
    let outcome = run_study(&opts, !args.no_progress)?;
    for line in &outcome.headline {
        outln!("{line}")?;
    }
    eprintln!("wrote {}", outcome.out.display());
    Ok(())
}
