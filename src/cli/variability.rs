//! `relevance variability`: the ensemble study (see [`crate::studies::variability`]).

use anyhow::Result;

use super::study_args::{StudyArgs, WroteLine, finish};
use crate::studies::toolkit::TargetRule;
use crate::studies::variability::{DEFAULT_METHODS, VariabilityOptions, run as run_study};

/// Arguments of `relevance variability`.
#[derive(clap::Args, Debug)]
pub struct VariabilityArgs {
    /// Models (at least two), data, methods (default grad-cam), method options (`--seed` also
    /// seeds k-means), output (default `variability`).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Class explained: true (the label, the same for every model) or pred (each model's prediction).
    #[arg(long, default_value = "true")]
    pub target: TargetRule,
    /// Number of k-means clusters of images.
    #[arg(long, default_value_t = 3)]
    pub clusters: usize,
    /// Example images per cluster in the cluster figure.
    #[arg(long, default_value_t = 4)]
    pub examples: usize,
}

/// Runs the command.
pub fn run(args: VariabilityArgs) -> Result<()> {
    let s = &args.study;
    let Some((inputs, sharding)) = s.begin("variability", DEFAULT_METHODS)? else {
        return Ok(());
    };
    let opts = VariabilityOptions {
        target: args.target,
        clusters: args.clusters,
        examples: args.examples,
        seed: s.method.seed,
        maps_only: s.shard.shard.is_some(),
        ..VariabilityOptions::with_inputs(inputs)
    };
    let outcome = run_study(&opts, !s.no_progress)?;
    finish(sharding, &outcome, WroteLine::Stderr)
}
