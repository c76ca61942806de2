//! `relevance variability`: the ensemble study (see [`crate::studies::variability`]).

use anyhow::Result;

use super::shard_args::Sharding;
use super::study_args::{StudyArgs, command_line};
use crate::studies::toolkit::TargetRule;
use crate::studies::variability::{VariabilityOptions, run as run_study};

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
    let sharding = s.begin_shard(&s.out_or("variability"))?;
    if let Sharding::Done(_) = sharding {
        return Ok(());
    }
    let defaults = VariabilityOptions::default();
    let opts = VariabilityOptions {
        models: s.models.clone(),
        data: s.data.clone(),
        split: s.split,
        limit: s.limit,
        batch: s.batch(),
        methods: s.method_list().unwrap_or(defaults.methods),
        method_options: s.method_options()?,
        target: args.target,
        clusters: args.clusters,
        examples: args.examples,
        seed: s.method.seed,
        out: sharding.out(&s.out_or("variability")),
        command: Some(command_line()),
        shards: s.shards(),
        maps_only: s.shard.shard.is_some(),
    };
    let outcome = run_study(&opts, !s.no_progress)?;
    sharding.finish()?;
    for line in &outcome.headline {
        outln!("{line}")?;
    }
    eprintln!("wrote {}", outcome.out.display());
    Ok(())
}
