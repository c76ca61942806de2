//! `relevance compare`: methods × models on the same images (see [`crate::studies::compare`]).

use anyhow::{Result, anyhow};

use super::study_args::{StudyArgs, WroteLine, finish};
use crate::studies::compare::{CompareOptions, DEFAULT_METHODS, parse_threshold, run as run_study};
use crate::studies::toolkit::TargetRule;

/// Arguments of `relevance compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Models, data, methods (default grad-cam,saliency,input-x-gradient,lrp-epsilon-plus),
    /// method options, output (default `compare`).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Class explained: true (the label) or pred (each model's prediction).
    #[arg(long, default_value = "true")]
    pub target: TargetRule,
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
    /// Centre-of-mass normalisation: `mass` (Σ relevance) or `area` (W·H, the brain-MRI thesis's).
    #[arg(long, default_value = "mass")]
    pub com_normalisation: crate::metrics::centre::ComNormalisation,
}

/// Runs the command.
pub fn run(args: CompareArgs) -> Result<()> {
    let Some((inputs, sharding)) = args.study.begin("compare", DEFAULT_METHODS)? else {
        return Ok(());
    };
    let opts = CompareOptions {
        target: args.target,
        threshold: parse_threshold(&args.threshold).map_err(|e| anyhow!(e))?,
        tolerance: args.tolerance,
        correct_mass: args.correct_mass,
        grid_images: args.grid_images,
        com_normalisation: args.com_normalisation,
        maps_only: args.study.shard.shard.is_some(),
        ..CompareOptions::with_inputs(inputs)
    };
    let outcome = run_study(&opts, !args.study.no_progress)?;
    finish(sharding, &outcome, WroteLine::Stderr)
}
