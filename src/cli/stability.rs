//! `relevance stability`: maps of augmented images mapped back and compared with the original's.

use anyhow::Result;

use super::study_args::{StudyArgs, WroteLine, finish};
use crate::studies::stability::{DEFAULT_METHODS, NamedAug, StabilityOptions, run};
use crate::studies::toolkit::TargetRule;

/// Arguments of `relevance stability`.
#[derive(clap::Args, Debug)]
pub struct StabilityArgs {
    /// Models, data, methods, method options, output (default `stability`).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Write each map as .npy under maps/.
    #[arg(long)]
    pub save_maps: bool,
    /// Augmentations, comma-separated: identity, hflip, vflip, rotate[:DEG], translate[:PX],
    /// scale[:S], brightness[:F], contrast[:F], gamma[:G], noise[:STD], blur[:SIGMA].
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hflip,rotate:10,brightness:1.2,noise:0.05,blur:1"
    )]
    pub augment: Vec<String>,
    /// Class explained on both images: predicted (on the original) or true.
    #[arg(long, default_value = "predicted")]
    pub target: TargetRule,
    /// Fraction of the valid pixels in the top-k IoU.
    #[arg(long, default_value_t = 0.1)]
    pub top_k: f64,
}

/// Runs the command.
pub fn run_cli(args: StabilityArgs) -> Result<()> {
    let s = &args.study;
    let Some((inputs, sharding)) = s.begin("stability", DEFAULT_METHODS)? else {
        return Ok(());
    };
    let mut opts = StabilityOptions::with_inputs(inputs);
    // Parsed here rather than by clap, so a bad value is one `error:` line with exit status 1.
    opts.augmentations = args
        .augment
        .iter()
        .map(|a| a.parse::<NamedAug>().map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    opts.target = args.target;
    opts.top_k = args.top_k;
    opts.seed = s.method.seed;
    opts.save_maps = args.save_maps;
    let outcome = run(&opts, !s.no_progress)?;
    finish(sharding, &outcome, WroteLine::Stdout)
}
