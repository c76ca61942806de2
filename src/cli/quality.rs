//! `relevance quality`: checkerboard score (with its white-noise reference), sparseness,
//! complexity, pixel-flipping and region-perturbation AOPC, faithfulness correlation and
//! max/avg-sensitivity per model × method over a data set.

use anyhow::Result;

use super::study_args::{StudyArgs, WroteLine, finish};
use crate::studies::quality::{DEFAULT_METHODS, QualityOptions, run};
use crate::studies::toolkit::TargetRule;

/// Arguments of `relevance quality`.
#[derive(clap::Args, Debug)]
pub struct QualityArgs {
    /// Models, data, methods, method options, output (default `quality`).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Class explained and followed by the metrics: predicted or true.
    #[arg(long, default_value = "predicted")]
    pub target: TargetRule,
    /// Pixels flipped per step of pixel flipping (0: 1 % of the pixels).
    #[arg(long, default_value_t = 0)]
    pub pixels_per_step: usize,
    /// Side of region perturbation's patches (Quantus: 8).
    #[arg(long, default_value_t = 8)]
    pub region_patch: usize,
    /// Patches removed by region perturbation (Quantus: 100).
    #[arg(long, default_value_t = 100)]
    pub regions: usize,
    /// Random subsets of faithfulness correlation (Quantus: 100).
    #[arg(long, default_value_t = 100)]
    pub faithfulness_runs: usize,
    /// Pixels per subset (default 224 as Quantus, a quarter of the pixels on small maps).
    #[arg(long)]
    pub subset_size: Option<usize>,
    /// Noise draws of max/avg-sensitivity (Quantus: 200).
    #[arg(long, default_value_t = 20)]
    pub sensitivity_samples: usize,
    /// Sensitivity noise radius as a fraction of the image's value range.
    #[arg(long, default_value_t = 0.05)]
    pub sensitivity_radius: f32,
}

/// Runs the command.
pub fn run_cli(args: QualityArgs) -> Result<()> {
    let s = &args.study;
    let Some((inputs, sharding)) = s.begin("quality", DEFAULT_METHODS)? else {
        return Ok(());
    };
    let mut opts = QualityOptions::with_inputs(inputs);
    opts.target = args.target;
    opts.pixels_per_step = args.pixels_per_step;
    opts.region_patch = args.region_patch;
    opts.faithfulness_runs = args.faithfulness_runs;
    opts.regions = args.regions;
    opts.subset_size = args.subset_size;
    opts.sensitivity_samples = args.sensitivity_samples;
    opts.sensitivity_radius = args.sensitivity_radius;
    opts.seed = s.method.seed;
    let outcome = run(&opts, !s.no_progress)?;
    finish(sharding, &outcome, WroteLine::Stdout)
}
