//! `relevance sanity`: model-parameter randomisation (cascading and independent) and random
//! logit over a data set, per method, with the methods whose maps ignore the model or the class
//! flagged.

use anyhow::Result;

use super::study_args::{StudyArgs, WroteLine, finish};
use crate::studies::sanity::{DEFAULT_METHODS, SanityOptions, run};
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
    let Some((inputs, sharding)) = s.begin("sanity", DEFAULT_METHODS)? else {
        return Ok(());
    };
    let mut opts = SanityOptions::with_inputs(inputs);
    opts.target = args.target;
    opts.comparison.top_fraction = args.top_k;
    opts.comparison.abs = !args.signed;
    opts.include_batchnorm = !args.keep_batchnorm;
    opts.threshold = args.threshold;
    opts.seed = s.method.seed;
    let outcome = run(&opts, !s.no_progress)?;
    finish(sharding, &outcome, WroteLine::Stdout)
}
