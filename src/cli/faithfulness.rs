//! `relevance faithfulness`: insertion / deletion / ID score of methods × models.

use anyhow::Result;

use super::study_args::{StudyArgs, WroteLine, finish};
use crate::metrics::road::RoadSelection;
use crate::studies::faithfulness::{
    DEFAULT_METHODS, FaithfulnessOptions, IdConventions, RoadSettings, SubstrateSpec,
    parse_road_percentages, parse_step, parse_ties, run,
};
use crate::studies::toolkit::TargetRule;

/// Arguments of `relevance faithfulness`.
#[derive(clap::Args, Debug)]
pub struct FaithfulnessArgs {
    /// Models, data, methods, method options, output (default `faithfulness`).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Write each map as .npy under maps/.
    #[arg(long)]
    pub save_maps: bool,
    /// Convention preset the flags below override: default (RISE with 2 % of the pixels a
    /// step), rise (1/224 a step), resnet-lrp (black, true class, 8 quantised levels) or
    /// xplique (logits, 10 steps, zero baseline).
    #[arg(long, default_value = "default")]
    pub preset: String,
    /// Pixels per step: a fraction (0.02, 1/224) or a count (500px). Default 0.02.
    #[arg(long)]
    pub step: Option<String>,
    /// Ties: stable (stable sort, cut into steps) or quantise:L (L levels, a level per step).
    /// Default stable.
    #[arg(long)]
    pub ties: Option<String>,
    /// Score: softmax (probability) or logit. Default softmax.
    #[arg(long)]
    pub score: Option<String>,
    /// Class followed: predicted or true. Default predicted.
    #[arg(long)]
    pub target: Option<TargetRule>,
    /// Insertion start: zero (input space), black, white, pixel:V (0–255), mean, blur (RISE's
    /// kernel 11, σ 5) or blur:K:SIGMA. Default blur.
    #[arg(long)]
    pub insertion_substrate: Option<SubstrateSpec>,
    /// Deletion substrate (same choices). Default zero.
    #[arg(long)]
    pub deletion_substrate: Option<SubstrateSpec>,
    /// Also score ROAD (Rong et al. 2022): MoRF and LeRF with noisy linear imputation, with
    /// the score and target above; writes road.csv and road_curves.
    #[arg(long)]
    pub road: bool,
    /// ROAD: percentages of the pixels removed, comma-separated, each in (0, 100). Default
    /// 10,20,…,90.
    #[arg(long, requires = "road")]
    pub road_percentages: Option<String>,
    /// ROAD: rank (the first ⌊H·W·p/100⌋ pixels of the ranking, as Quantus) or percentile
    /// (at or above the (100 − p)-th percentile, as pytorch-grad-cam). Default rank.
    #[arg(long, requires = "road")]
    pub road_selection: Option<String>,
    /// ROAD: SD of the Gaussian noise added to imputed values (input space). Default 0.01.
    #[arg(long, requires = "road")]
    pub road_noise: Option<f32>,
    /// ROAD: seed of the imputation noise. Default 0.
    #[arg(long, requires = "road")]
    pub road_seed: Option<u64>,
}

/// ROAD settings from the flags, `None` without `--road`.
fn road_settings(args: &FaithfulnessArgs) -> Result<Option<RoadSettings>> {
    if !args.road {
        return Ok(None);
    }
    let mut settings = RoadSettings::default();
    if let Some(p) = &args.road_percentages {
        settings.percentages = parse_road_percentages(p).map_err(anyhow::Error::msg)?;
    }
    if let Some(s) = &args.road_selection {
        settings.selection = match s.as_str() {
            "rank" => RoadSelection::Rank,
            "percentile" => RoadSelection::Percentile,
            other => anyhow::bail!("unknown ROAD selection '{other}'; use rank or percentile"),
        };
    }
    if let Some(noise) = args.road_noise {
        anyhow::ensure!(
            noise.is_finite() && noise >= 0.0,
            "--road-noise must be a finite SD ≥ 0, got {noise}"
        );
        settings.noise = noise;
    }
    if let Some(seed) = args.road_seed {
        settings.seed = seed;
    }
    Ok(Some(settings))
}

/// Runs the command.
pub fn run_cli(args: FaithfulnessArgs) -> Result<()> {
    let mut conv = IdConventions::preset(&args.preset).map_err(anyhow::Error::msg)?;
    if let Some(s) = &args.step {
        conv.step = parse_step(s).map_err(anyhow::Error::msg)?;
    }
    if let Some(s) = &args.ties {
        conv.ties = parse_ties(s).map_err(anyhow::Error::msg)?;
    }
    if let Some(s) = &args.score {
        conv.score = match s.as_str() {
            "softmax" => crate::metrics::ScoreKind::Softmax,
            "logit" => crate::metrics::ScoreKind::Logit,
            other => anyhow::bail!("unknown score '{other}'; use softmax or logit"),
        };
    }
    if let Some(t) = args.target {
        conv.target = t;
    }
    if let Some(s) = &args.insertion_substrate {
        conv.insertion_substrate = s.clone();
    }
    if let Some(s) = &args.deletion_substrate {
        conv.deletion_substrate = s.clone();
    }
    let road = road_settings(&args)?;
    let s = &args.study;
    let Some((inputs, sharding)) = s.begin("faithfulness", DEFAULT_METHODS)? else {
        return Ok(());
    };
    let mut opts = FaithfulnessOptions::with_inputs(inputs);
    opts.conventions = conv;
    opts.save_maps = args.save_maps;
    opts.road = road;
    let outcome = run(&opts, !s.no_progress)?;
    finish(sharding, &outcome, WroteLine::Stdout)
}
