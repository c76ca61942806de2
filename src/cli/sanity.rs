//! `relevance sanity`: model-parameter randomisation (cascading and independent) and random
//! logit over a data set, per method, with the methods whose maps ignore the model or the class
//! flagged.

use anyhow::Result;

use super::shard_args::Sharding;
use super::study_args::{StudyArgs, command_line};
use crate::studies::sanity::{SanityOptions, run};
use crate::studies::toolkit::TargetRule;

/// Arguments of `relevance sanity`.
#[derive(clap::Args, Debug)]
pub struct SanityArgs {
    /// Models, data, methods, method options, output (default `sanity`).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Class explained: predicted or true.
    #[arg(long, default_value = "predicted")]
    pub target: TargetRule,
    /// Fraction of the pixels in the top-k IoU.
    #[arg(long, default_value_t = 0.1)]
    pub top_k: f64,
    /// Compare signed maps instead of |maps|.
    #[arg(long)]
    pub signed: bool,
    /// Leave BatchNorm layers as they are (randomise convolutions and linear layers only).
    #[arg(long)]
    pub keep_batchnorm: bool,
    /// Mean Spearman correlation at or above which a method is flagged.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
}

/// Runs the command.
pub fn run_cli(args: SanityArgs) -> Result<()> {
    let s = &args.study;
    anyhow::ensure!(
        args.top_k.is_finite() && args.top_k > 0.0 && args.top_k <= 1.0,
        "--top-k must be a fraction in (0, 1], got {}",
        args.top_k
    );
    let sharding = s.begin_shard(&s.out_or("sanity"))?;
    if let Sharding::Done(_) = sharding {
        return Ok(());
    }
    let out = sharding.out(&s.out_or("sanity"));
    let mut opts = SanityOptions::new(s.models.clone(), s.data.clone(), out);
    opts.shards = s.shards();
    opts.split = s.split;
    opts.limit = s.limit;
    opts.batch = s.batch();
    if let Some(m) = s.method_list() {
        opts.methods = m;
    }
    opts.method_options = s.method_options()?;
    opts.target = args.target;
    opts.comparison.top_fraction = args.top_k;
    opts.comparison.abs = !args.signed;
    opts.include_batchnorm = !args.keep_batchnorm;
    opts.threshold = args.threshold;
    opts.seed = s.method.seed;
    opts.command = Some(command_line());
    let outcome = run(&opts, !s.no_progress)?;
    sharding.finish()?;
    for line in &outcome.headline {
        outln!("{line}")?;
    }
    outln!("wrote {}", outcome.out.display())?;
    Ok(())
}
