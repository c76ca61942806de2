//! Flags shared by the study subcommands (`variability`, `compare`, `faithfulness`,
//! `stability`, `sanity`): what to study ([`StudyArgs`], turned into the library's
//! [`StudyInputs`] by [`StudyArgs::begin`]) and the method options ([`MethodArgs`], the same
//! flags as `relevance explain`).

use std::path::PathBuf;

use anyhow::Result;

use super::method_args::{MethodArgs, split_specs};
use super::shard_args::{ShardArgs, Sharding};
use crate::data::shard::ShardSet;
use crate::methods::MethodOptions;
use crate::studies::StudyOutcome;
use crate::studies::toolkit::{SplitChoice, StudyInputs};

/// Models, data, images, methods and output of a study.
#[derive(clap::Args, Debug)]
pub struct StudyArgs {
    /// Models: weights files (.safetensors/.pth with model.card.json beside, .onnx), training
    /// folders holding ensemble.json (all members), or seed-* folders.
    #[arg(long, num_args = 1.., required = true)]
    pub models: Vec<PathBuf>,
    /// Data set, as `train` reads it: an ImageFolder (one sub-folder per class), a CSV list
    /// `path,label[,mask]`, or a folder of MNIST-style IDX files; <stem>.mask.png object masks
    /// and <stem>.marker.png confounder masks beside the images are used where present.
    #[arg(long)]
    pub data: PathBuf,
    /// test (the split recorded in the first model's model.train.json — for IDX the t10k
    /// files —, else a test/ folder, else all images) or all.
    #[arg(long, default_value = "test")]
    pub split: SplitChoice,
    /// At most N images, classes interleaved: the first image of each class (in path order),
    /// then the second of each, …, so a limit keeps every class.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Methods, comma-separated, as `relevance explain --method` takes them, plus `random`
    /// (a control map of uniform noise); the default depends on the study.
    #[arg(long, value_parser = split_specs)]
    pub methods: Option<Vec<Vec<String>>>,
    /// Output folder (default: the study's name).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hide progress bars.
    #[arg(long = "no-progress", alias = "quiet")]
    pub no_progress: bool,
    /// Method options, as `relevance explain` takes them.
    #[command(flatten)]
    pub method: MethodArgs,
    /// Only one shard of the images (see `relevance merge`).
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Set by `relevance merge --allow-partial`: only the images of these shards.
    #[arg(skip)]
    pub merged_shards: Option<ShardSet>,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

impl StudyArgs {
    /// The method specs given with `--methods` (repeatable, comma-separated outside
    /// parentheses), if any.
    pub fn method_list(&self) -> Option<Vec<String>> {
        self.methods
            .as_ref()
            .map(|lists| lists.iter().flatten().cloned().collect())
    }

    /// Method options from the flags.
    pub fn method_options(&self) -> Result<MethodOptions> {
        self.method.method_options()
    }

    /// Images per pass (`--batch`, at least 1).
    pub fn batch(&self) -> usize {
        self.method.batch.max(1)
    }

    /// Starts the study as a shard when `--shard` is given (its manifest hashes the models'
    /// weight files) writing to `out`.
    pub fn begin_shard(&self, out: &std::path::Path) -> Result<Sharding> {
        if self.shard.shard.is_none() {
            return Ok(Sharding::Whole);
        }
        let weights: Vec<PathBuf> = crate::studies::toolkit::expand_models(&self.models)?
            .into_iter()
            .map(|(_, path)| path)
            .collect();
        self.shard.begin(out, &weights, Vec::new())
    }

    /// The images' shards to keep: `--shard`, or the shards a partial merge covers.
    pub fn shards(&self) -> Option<ShardSet> {
        self.shard
            .shard
            .map(Into::into)
            .or_else(|| self.merged_shards.clone())
    }

    /// The output folder: `--out`, else a folder named after the study.
    pub fn out_or(&self, study: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(study))
    }

    /// Starts the study `study` (its name is the default output folder; `default_methods`
    /// apply without `--methods`): its [`StudyInputs`] and how the run is sharded, or `None`
    /// when this shard has already finished.
    pub fn begin(
        &self,
        study: &str,
        default_methods: &[&str],
    ) -> Result<Option<(StudyInputs, Sharding)>> {
        let out = self.out_or(study);
        let sharding = self.begin_shard(&out)?;
        if let Sharding::Done(_) = sharding {
            return Ok(None);
        }
        let inputs = StudyInputs {
            models: self.models.clone(),
            data: self.data.clone(),
            split: self.split,
            limit: self.limit,
            batch: self.batch(),
            methods: self
                .method_list()
                .unwrap_or_else(|| default_methods.iter().map(|m| m.to_string()).collect()),
            method_options: self.method_options()?,
            out: sharding.out(&out),
            command: Some(command_line()),
            shards: self.shards(),
        };
        Ok(Some((inputs, sharding)))
    }
}

/// Where a study's result line `wrote <folder>` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WroteLine {
    /// On stdout, after the headline.
    Stdout,
    /// On stderr (stdout keeps only the headline).
    Stderr,
}

/// Ends a study run: finishes the shard, prints the headline on stdout and the output folder.
pub fn finish(sharding: Sharding, outcome: &StudyOutcome, wrote: WroteLine) -> Result<()> {
    sharding.finish()?;
    for line in &outcome.headline {
        outln!("{line}")?;
    }
    match wrote {
        WroteLine::Stdout => outln!("wrote {}", outcome.out.display())?,
        WroteLine::Stderr => eprintln!("wrote {}", outcome.out.display()),
    }
    Ok(())
}

/// The command line as run, for `summary.json`: the process's, or under
/// [`super::run_embedded`] the `relevance` command line it was given.
pub fn command_line() -> Vec<String> {
    super::embedded_command().unwrap_or_else(|| std::env::args().collect())
}
