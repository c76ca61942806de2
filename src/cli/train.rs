//! `relevance train`: train one model or an ensemble of seeds on an image data set.

use super::shard_args::{ShardArgs, Sharding};
use crate::data::shard::Shard;
use crate::records::ShardItem;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::data::augment::AugmentSpec;
use crate::data::split::SplitFractions;
use crate::graph::card::ResizeMode;
use crate::graph::{ModelCard, Normalization};
use crate::train::{
    OptimizerKind, Schedule, TrainConfig, Verbosity, open_data, parse_seeds, train_ensemble,
};

/// Arguments of `relevance train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// ImageFolder folder (optionally with train/ val/ test/), CSV file `path,label[,mask]`, or
    /// a folder of MNIST/Fashion-MNIST IDX files.
    #[arg(long)]
    pub data: PathBuf,
    /// Built-in architecture (small_cnn, vgg11, vgg16, vgg16_bn, resnet18, resnet34, resnet50).
    #[arg(long, default_value = "small_cnn")]
    pub arch: String,
    /// Output folder: seed-<s>/model.safetensors, model.card.json, model.train.json, ensemble.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Train only shard K of N of the seeds (the sorted seeds dealt round-robin: with N equal to
    /// the number of seeds, one seed per array task), under OUT/shards/K-of-N/; `relevance merge
    /// OUT` then writes the ensemble.
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Starting weights (.safetensors state dict); a head of another shape is trained afresh.
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Train only the classification head (needs --pretrained).
    #[arg(long)]
    pub freeze_backbone: bool,
    /// Maximum epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seeds: 0..5 (five models), 0..=4, 0,1,2 or one number.
    #[arg(long, default_value = "0")]
    pub seeds: String,
    /// sgd (momentum 0.9) or adam.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate (default 1e-3 for adam, 0.01 for sgd).
    #[arg(long)]
    pub lr: Option<f32>,
    /// L2 weight decay added to the gradients.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// cosine, step (×0.1 every third of the epochs) or constant.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// Mini-batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Weight the loss by inverse class frequency.
    #[arg(long)]
    pub class_weights: bool,
    /// Stop after this many epochs without a lower validation loss.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Continue an interrupted run from its last finished epoch.
    #[arg(long)]
    pub resume: bool,
    /// Training augmentations: comma list of flip, hflip, vflip, rotate, affine, crop, colour,
    /// noise, blur.
    #[arg(long, default_value = "none")]
    pub augment: String,
    /// Input size HxW or one number (default: the images' size for IDX/synthetic data, 224).
    #[arg(long)]
    pub input_size: Option<String>,
    /// Input channels: 3 (RGB) or 1 (grey).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Normalisation: imagenet, unit or raw.
    #[arg(long, default_value = "imagenet")]
    pub normalization: String,
    /// Validation fraction (when the data has no val/ folder).
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f64,
    /// Test fraction (when the data has no test/ folder).
    #[arg(long, default_value_t = 0.15)]
    pub test_fraction: f64,
    /// Seed of the data split (shared by all ensemble members).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Fail on unreadable images instead of skipping them.
    #[arg(long)]
    pub strict: bool,
    /// No progress bar (one line per epoch only).
    #[arg(long)]
    pub no_progress: bool,
    /// Print nothing on stdout (`ensemble.json` in --out holds the summary).
    #[arg(long)]
    pub quiet: bool,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

fn parse_size(s: &str) -> Result<[usize; 2]> {
    let parts: Vec<&str> = s.split(['x', 'X', ',']).collect();
    let nums: Vec<usize> = parts
        .iter()
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("bad --input-size '{s}': use e.g. 64 or 224x224"))?;
    match nums[..] {
        [n] if n > 0 => Ok([n, n]),
        [h, w] if h > 0 && w > 0 => Ok([h, w]),
        _ => bail!("bad --input-size '{s}': use e.g. 64 or 224x224"),
    }
}

/// The size and channels of the first training image, for defaults.
fn probe_data(path: &std::path::Path) -> Option<([usize; 2], usize)> {
    if crate::data::idx::is_mnist_dir(path) {
        return Some(([28, 28], 1));
    }
    let root = if path.join("train").is_dir() {
        path.join("train")
    } else {
        path.to_path_buf()
    };
    let first = crate::data::folder::ImageFolder::open(&root, Default::default())
        .ok()?
        .samples
        .into_iter()
        .next()?;
    let img = crate::data::image::load_image(&first.path).ok()?;
    Some(([img.height, img.width], img.channels))
}

/// Runs the command.
pub fn run(args: TrainArgs) -> Result<()> {
    if args.freeze_backbone && args.pretrained.is_none() {
        bail!(
            "--freeze-backbone needs --pretrained weights (a random backbone is not worth freezing)"
        );
    }
    let optimizer = OptimizerKind::parse(&args.optimizer)
        .ok_or_else(|| anyhow::anyhow!("unknown --optimizer '{}': sgd or adam", args.optimizer))?;
    let schedule = match args.schedule.as_str() {
        "cosine" => Schedule::Cosine,
        "constant" => Schedule::Constant,
        "step" => Schedule::Step {
            every: (args.epochs / 3).max(1),
            gamma: 0.1,
        },
        other => bail!("unknown --schedule '{other}': cosine, step or constant"),
    };
    let normalization = match args.normalization.as_str() {
        "imagenet" => Normalization::Imagenet,
        "unit" => Normalization::Unit,
        "raw" => Normalization::Raw,
        other => bail!("unknown --normalization '{other}': imagenet, unit or raw"),
    };
    let all_seeds = parse_seeds(&args.seeds).map_err(anyhow::Error::msg)?;
    let (seeds, items) = shard_seeds(&all_seeds, args.shard.shard);
    let pretrained: Vec<PathBuf> = args.pretrained.iter().cloned().collect();
    let sharding = args.shard.begin(&args.out, &pretrained, items)?;
    if let Sharding::Done(_) = sharding {
        return Ok(());
    }
    let out = sharding.out(&args.out);
    let probe = probe_data(&args.data);
    let input_size = match &args.input_size {
        Some(s) => parse_size(s)?,
        None => match probe {
            Some((size, _)) if size[0] <= 128 && size[1] <= 128 => size,
            _ => [224, 224],
        },
    };
    let channels = args.channels.unwrap_or_else(|| probe.map_or(3, |(_, c)| c));
    let card = ModelCard {
        input_size,
        channels,
        normalization,
        resize: ResizeMode::Stretch,
        ..ModelCard::default()
    };
    card.validate().map_err(anyhow::Error::msg)?;
    let augment = AugmentSpec::parse(&args.augment)?;
    let fractions = SplitFractions {
        val: args.val_fraction,
        test: args.test_fraction,
    };
    let data = open_data(
        &args.data,
        &card,
        fractions,
        args.split_seed,
        args.strict,
        augment.clone(),
    )?;
    eprintln!(
        "data: {} classes ({}), {} train / {} val / {} test images at {}×{}×{}",
        data.classes.len(),
        data.classes.join(", "),
        data.train.len(),
        data.val.len(),
        data.test.len(),
        channels,
        input_size[0],
        input_size[1]
    );
    let cfg = TrainConfig {
        arch: args.arch.clone(),
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer,
        lr: args.lr.unwrap_or(match optimizer {
            OptimizerKind::Sgd { .. } => 0.01,
            OptimizerKind::Adam { .. } => 1e-3,
        }),
        weight_decay: args.weight_decay,
        schedule,
        class_weights: args.class_weights,
        patience: args.patience,
        augment,
        freeze_backbone: args.freeze_backbone,
        max_steps: None,
    };
    let verbosity = if args.no_progress {
        Verbosity::Lines
    } else {
        Verbosity::Bar
    };
    let record = train_ensemble(
        &data,
        &cfg,
        &seeds,
        &out,
        args.resume,
        args.pretrained.as_deref(),
        verbosity,
    )?;
    sharding.finish()?;
    if !args.quiet {
        outln!("{}", serde_json::to_string(&record)?)?;
    }
    Ok(())
}

/// The seeds of `shard` (all without one) and, for its manifest, each with its position in
/// the seed list: the seeds sorted and dealt round-robin to the shards.
fn shard_seeds(seeds: &[u64], shard: Option<Shard>) -> (Vec<u64>, Vec<ShardItem>) {
    let Some(shard) = shard else {
        return (seeds.to_vec(), Vec::new());
    };
    let mut sorted: Vec<(usize, u64)> = seeds.iter().copied().enumerate().collect();
    sorted.sort_by_key(|&(_, s)| s);
    let mine: Vec<(usize, u64)> = sorted
        .into_iter()
        .enumerate()
        .filter(|(rank, _)| rank % shard.count + 1 == shard.index)
        .map(|(_, item)| item)
        .collect();
    let items = mine
        .iter()
        .map(|&(position, seed)| ShardItem {
            position,
            name: seed.to_string(),
        })
        .collect();
    (mine.into_iter().map(|(_, s)| s).collect(), items)
}
