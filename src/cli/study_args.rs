//! Flags shared by the study subcommands (`faithfulness`, `stability`, …).

use std::path::PathBuf;

use anyhow::Result;

use crate::methods::lrp::{LrpOptions, SkipMode, StartRelevance};
use crate::methods::{Baseline, MethodOptions, Quadrature};
use crate::studies::common::SplitChoice;

/// Models, data, methods and output of a study.
#[derive(clap::Args, Debug)]
pub struct StudyArgs {
    /// Models: weights files (.safetensors/.pth with model.card.json beside, .onnx), training
    /// folders holding ensemble.json (all members), or seed-* folders.
    #[arg(long, num_args = 1.., required = true)]
    pub models: Vec<PathBuf>,
    /// ImageFolder data set (one sub-folder per class; <stem>.mask.png masks optional).
    #[arg(long)]
    pub data: PathBuf,
    /// test (the split recorded in the first model's model.train.json, else a test/ folder,
    /// else all images) or all.
    #[arg(long, default_value = "test")]
    pub split: SplitChoice,
    /// Use only the first N images of the split (sorted by path).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images per explanation pass (and perturbed copies per scoring pass).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Methods, comma-separated, as `relevance explain --method` takes them, plus `random`
    /// (a control map of uniform noise).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// CAM target layer (a node name); default: each method's default.
    #[arg(long)]
    pub layer: Option<String>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Integrated Gradients: points on the path.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// SmoothGrad: noisy samples per image.
    #[arg(long, default_value_t = 25)]
    pub samples: usize,
    /// Integrated Gradients / Occlusion reference: zero, black, blur, blur:SIGMA or a number.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Seed of random draws (SmoothGrad noise, the random control).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// LRP: zennit, split or symmetric treatment of ResNet skip connections.
    #[arg(long, default_value = "zennit")]
    pub resnet_skip: SkipMode,
    /// LRP: starting relevance: logit, probability or one.
    #[arg(long, default_value = "logit")]
    pub relevance_start: StartRelevance,
    /// Write each map as .npy under maps/.
    #[arg(long)]
    pub save_maps: bool,
    /// Hide progress bars.
    #[arg(long = "no-progress", alias = "quiet")]
    pub no_progress: bool,
}

impl StudyArgs {
    /// Method options from the flags.
    pub fn method_options(&self) -> Result<MethodOptions> {
        Ok(MethodOptions {
            layer: self.layer.clone(),
            steps: self.steps,
            quadrature: Quadrature::GaussLegendre,
            samples: self.samples,
            baseline: self
                .baseline
                .as_deref()
                .map(str::parse::<Baseline>)
                .transpose()?,
            seed: self.seed,
            batch: self.batch.max(1),
            lrp: LrpOptions {
                skip: self.resnet_skip,
                start: self.relevance_start,
                zbox: None,
            },
            ..MethodOptions::default()
        })
    }
}

/// The command line as run, for `summary.json`.
pub fn command_line() -> Vec<String> {
    std::env::args().collect()
}
