//! `relevance data`: make and inspect data sets.

use std::path::PathBuf;

use anyhow::Result;

use crate::data::describe::{DescribeOptions, describe};
use crate::data::folder::{DataSplits, ReadOptions};
use crate::data::split::SplitFractions;
use crate::data::synth::{SynthConfig, write_dataset};

/// Arguments of `relevance data`.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// Subcommands of `relevance data`.
#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Write a synthetic histology-like data set with ground-truth masks (ImageFolder layout).
    Synth(SynthArgs),
    /// Summarise a data set (classes, counts per split, masks, unreadable files).
    Info(InfoArgs),
}

/// Arguments of `relevance data synth`.
#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Output folder (gets train/, val/, test/ and dataset.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of images over all splits (70% train, 15% val, 15% test).
    #[arg(long, default_value_t = SynthConfig::default().n)]
    pub n: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Probability P that a "hospital tag" marks the malignant class in train/val (test: random).
    #[arg(long)]
    pub confounder: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `relevance data info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// ImageFolder folder or CSV file.
    pub data: PathBuf,
    /// Validation fraction when the data set has no val/ folder.
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f64,
    /// Test fraction when the data set has no test/ folder.
    #[arg(long, default_value_t = 0.15)]
    pub test_fraction: f64,
    /// Seed of the split.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Fail on unreadable images instead of skipping them.
    #[arg(long)]
    pub strict: bool,
    /// Also write the data set's description into this folder: image sizes (CSV + bar chart),
    /// formats, colour modes, per-channel intensity range and mean, a montage per class.
    #[arg(long, value_name = "OUT")]
    pub describe: Option<PathBuf>,
    /// Images per class in the description's montages (the first in path order).
    #[arg(long, default_value_t = DescribeOptions::default().montage_images)]
    pub montage_images: usize,
}

/// Runs the command.
pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Synth(a) => {
            let cfg = SynthConfig {
                n: a.n,
                size: a.size,
                confounder: a.confounder,
                seed: a.seed,
                ..SynthConfig::default()
            };
            let m = write_dataset(&a.out, &cfg)?;
            outln!("{}", serde_json::to_string(&m)?)?;
            Ok(())
        }
        DataCommand::Info(a) => {
            let f = SplitFractions {
                val: a.val_fraction,
                test: a.test_fraction,
            };
            let s = DataSplits::open(&a.data, f, a.split_seed, ReadOptions { strict: a.strict })?;
            let count = |part: &[crate::data::folder::Sample]| -> Vec<usize> {
                let mut c = vec![0; s.classes.len()];
                part.iter().for_each(|x| c[x.label] += 1);
                c
            };
            let masks = [&s.train, &s.val, &s.test]
                .iter()
                .map(|p| p.iter().filter(|x| x.mask.is_some()).count())
                .sum::<usize>();
            let info = serde_json::json!({
                "classes": s.classes,
                "split": s.source,
                "train": count(&s.train),
                "val": count(&s.val),
                "test": count(&s.test),
                "with_mask": masks,
                "skipped": s.skipped.iter().map(|k| format!("{} ({})", k.path.display(), k.reason)).collect::<Vec<_>>(),
            });
            outln!("{}", serde_json::to_string_pretty(&info)?)?;
            if let Some(out) = &a.describe {
                write_description(&s, out, a.montage_images, a.strict)?;
            }
            Ok(())
        }
    }
}

/// Describes every part of the data set (train, val and test together) into `out`.
fn write_description(
    s: &DataSplits,
    out: &std::path::Path,
    montage: usize,
    strict: bool,
) -> Result<()> {
    let samples: Vec<_> = [&s.train, &s.val, &s.test]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let opts = DescribeOptions {
        montage_images: montage,
        strict,
        ..DescribeOptions::default()
    };
    let d = describe(&s.classes, &samples, &s.skipped, opts)?;
    let files = crate::report::dataset::write_description(out, &d)?;
    eprintln!(
        "described {} images ({} unreadable) into {} ({} files)",
        d.images(),
        d.unreadable.len(),
        out.display(),
        files.len()
    );
    Ok(())
}
