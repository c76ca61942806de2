//! `relevance compare`: methods × models on the same images (see [`crate::studies::compare`]).

use std::path::PathBuf;

use anyhow::{Result, anyhow};

use crate::studies::common::SplitChoice;
use crate::studies::compare::{CompareOptions, parse_threshold, run as run_study};
use crate::studies::maps::TargetClass;

/// Arguments of `relevance compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Models: weights files (card beside), training folders with ensemble.json, or seed-* folders.
    #[arg(long, num_args = 1.., required = true)]
    pub models: Vec<PathBuf>,
    /// ImageFolder data set; object masks <stem>.mask.png and marker masks <stem>.marker.png
    /// beside the images are used where present.
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
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "grad-cam,saliency,input-x-gradient,lrp-epsilon-plus"
    )]
    pub methods: Vec<String>,
    /// CAM target layer (a node name); default: each method's default.
    #[arg(long)]
    pub layer: Option<String>,
    /// Class explained: true (the label) or pred (each model's prediction).
    #[arg(long, default_value = "true")]
    pub target: TargetClass,
    /// Binarisation for IoUs: top:F (the top fraction F of pixels), otsu, or fixed:T.
    #[arg(long, default_value = "top:0.2")]
    pub threshold: String,
    /// Pointing-game tolerance in pixels.
    #[arg(long, default_value_t = 0.0)]
    pub tolerance: f64,
    /// Relevance mass on the object from which a map counts as correct.
    #[arg(long, default_value_t = 0.5)]
    pub correct_mass: f64,
    /// Images shown per model in the heatmap grid.
    #[arg(long, default_value_t = 8)]
    pub grid_images: usize,
    /// Output folder.
    #[arg(long, default_value = "compare")]
    pub out: PathBuf,
    /// No progress bars (`--quiet` is accepted too).
    #[arg(long = "no-progress", alias = "quiet")]
    pub no_progress: bool,
}

/// Runs the command.
pub fn run(args: CompareArgs) -> Result<()> {
    let opts = CompareOptions {
        models: args.models,
        data: args.data,
        split: args.split,
        limit: args.limit,
        batch: args.batch,
        methods: args.methods,
        layer: args.layer,
        target: args.target,
        threshold: parse_threshold(&args.threshold).map_err(|e| anyhow!(e))?,
        tolerance: args.tolerance,
        correct_mass: args.correct_mass,
        grid_images: args.grid_images,
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
