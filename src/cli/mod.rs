//! Command-line interface: parses arguments, calls the library, prints and writes results.

/// `println!` that hands the write's error back instead of panicking: a closed standard output
/// (`relevance predict … | head -1`) then ends the command through [`main`], which ends quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod atlas;
mod bench;
mod compare;
mod concepts;
mod data;
mod demo;
mod device_args;
mod explain;
mod faithfulness;
mod inspect;
mod merge;
mod method_args;
mod predict;
mod quality;
mod report;
mod review;
mod sanity;
mod shard_args;
mod slurm;
mod stability;
mod study_args;
mod train;
mod variability;

pub use method_args::method_options_from_flags;

use clap::{Parser, Subcommand};

/// Explain and audit CNN image classifiers.
#[derive(Parser, Debug)]
#[command(name = "relevance", version, about)]
pub struct Cli {
    /// Where 3×3 stride-1 convolutions run by Winograd F(4×4, 3×3) / F(2×2, 3×3) instead of
    /// exact im2col summation: `relevance` (default) = in the extra passes LRP and CRP rules
    /// add and, as F(2×2) (which keeps max-pooling ties in flat regions), in the forward pass
    /// LRP and CRP start from; `on` (also plain `--winograd`) = everywhere, `off` = nowhere.
    /// See docs/benchmarks.md
    /// ("How the CPU kernels work") for what each costs in accuracy. Same as `RELEVANCE_WINOGRAD`.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "on",
          value_parser = str::parse::<crate::engine::kernels::WinogradScope>)]
    pub winograd: Option<crate::engine::kernels::WinogradScope>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Classify images (or preprocessed .npy tensors) and print one JSON object per input.
    Predict(predict::PredictArgs),
    /// Describe a model before explaining it: shapes, normalisation, operators, parameters,
    /// CAM layers, LRP rules per composite and unsupported ONNX operators.
    Inspect(inspect::InspectArgs),
    /// Make or inspect data sets (synthetic data with ground truth, summaries).
    Data(data::DataArgs),
    /// Train a model or an ensemble of seeds on an image data set.
    Train(Box<train::TrainArgs>),
    /// Time forward passes and input gradients per image, with peak memory.
    Bench(bench::BenchArgs),
    /// Explain predictions: maps (.npy) and overlays (.png) per input and method, plus explain.json.
    Explain(Box<explain::ExplainArgs>),
    /// Rank the channels of a layer by relevance and draw their conditional heatmaps (CRP).
    Concepts(concepts::ConceptsArgs),
    /// Relevance/activation maximisation over a folder of images: a concept atlas of a layer.
    Atlas(atlas::AtlasArgs),
    /// Ensemble study: per-image SD of predictions and maps across models, fits, clusters.
    Variability(Box<variability::VariabilityArgs>),
    /// Compare methods × models on the same images: centres of mass, IoU matrix, mask and
    /// confounder-marker agreement.
    Compare(Box<compare::CompareArgs>),
    /// Faithfulness study: insertion, deletion and ID score of methods × models, with curves.
    Faithfulness(Box<faithfulness::FaithfulnessArgs>),
    /// Stability study: maps of augmented images mapped back and compared with the original's.
    Stability(Box<stability::StabilityArgs>),
    /// Sanity checks: model-parameter randomisation (cascading, independent) and random logit.
    Sanity(Box<sanity::SanityArgs>),
    /// Quality metrics: checkerboard (vs noise), sparseness, complexity, pixel flipping, region
    /// perturbation, faithfulness correlation, max/avg-sensitivity.
    Quality(Box<quality::QualityArgs>),
    /// Run the whole workbench on built-in synthetic data and write an HTML report.
    Demo(demo::DemoArgs),
    /// (Re)build the HTML report of a run folder.
    Report(report::ReportArgs),
    /// Let domain experts rate explanations in a local web page; export and summarise the
    /// answers (counts, Wilson intervals, inter-rater agreement).
    Review(review::ReviewArgs),
    /// Build from a sharded run's OUT/shards/K-of-N/ exactly what one unsharded run writes.
    Merge(merge::MergeArgs),
    /// Run a command on a Slurm cluster as a job array of shards and a merge job.
    Slurm(slurm::SlurmArgs),
}

impl Command {
    /// The device the command asked for (`--device`); the CPU for commands that run no model.
    fn device(&self) -> crate::device::DeviceKind {
        let flag = match self {
            Command::Predict(args) => args.device,
            Command::Train(args) => args.device,
            Command::Bench(args) => args.device,
            Command::Explain(args) => args.device,
            Command::Concepts(args) => args.device,
            Command::Atlas(args) => args.device,
            Command::Variability(args) => args.study.device,
            Command::Compare(args) => args.study.device,
            Command::Faithfulness(args) => args.study.device,
            Command::Stability(args) => args.study.device,
            Command::Quality(args) => args.study.device,
            _ => device_args::DeviceArgs::default(),
        };
        flag.device
    }

    /// What to lower when the device runs out of memory: the command's batch flag and its value.
    fn batch_advice(&self) -> String {
        let lower = |flag: &str, now: String| format!("lower {flag} (now {now})");
        match self {
            Command::Train(args) => lower("--batch-size", args.batch_size.to_string()),
            Command::Bench(args) => lower(
                "--batch",
                args.batch
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Command::Explain(args) => lower("--batch", args.method_args.batch.to_string()),
            Command::Concepts(args) => lower("--batch", args.batch.to_string()),
            Command::Atlas(args) => lower("--batch", args.batch.to_string()),
            Command::Variability(args) => lower("--batch", args.study.batch().to_string()),
            Command::Compare(args) => lower("--batch", args.study.batch().to_string()),
            Command::Faithfulness(args) => lower("--batch", args.study.batch().to_string()),
            Command::Stability(args) => lower("--batch", args.study.batch().to_string()),
            Command::Sanity(args) => lower("--batch", args.study.batch().to_string()),
            Command::Quality(args) => lower("--batch", args.study.batch().to_string()),
            // predict runs one image at a time: the model itself does not fit.
            _ => "the model does not fit at one image; use --device cpu".into(),
        }
    }
}

/// Runs one parsed command, on the device it asked for.
fn dispatch(command: Command) -> anyhow::Result<()> {
    let kind = command.device();
    crate::device::use_device(kind)?;
    let advice = command.batch_advice();
    crate::device::catch_out_of_memory(kind, &advice, || run_command(command))?
}

/// Runs one parsed command on the run's device.
fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Predict(args) => predict::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Data(args) => data::run(args),
        Command::Train(args) => train::run(*args),
        Command::Bench(args) => bench::run_bench(args),
        Command::Explain(args) => explain::run(*args),
        Command::Concepts(args) => concepts::run(args),
        Command::Atlas(args) => atlas::run(args),
        Command::Faithfulness(args) => faithfulness::run_cli(*args),
        Command::Stability(args) => stability::run_cli(*args),
        Command::Sanity(args) => sanity::run_cli(*args),
        Command::Quality(args) => quality::run_cli(*args),
        Command::Variability(args) => variability::run(*args),
        Command::Compare(args) => compare::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Report(args) => report::run(args),
        Command::Review(args) => review::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Slurm(args) => slurm::run(args),
    }
}

/// Parses `argv` (without the program name) as a `relevance` command line and runs it; the demo
/// runs its steps through this, so the commands it records are exactly what it ran.
pub fn run_args(argv: &[String]) -> anyhow::Result<()> {
    let cli =
        Cli::try_parse_from(std::iter::once("relevance".to_string()).chain(argv.iter().cloned()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(scope) = cli.winograd {
        crate::engine::kernels::set_winograd_scope(scope);
    }
    dispatch(cli.command)
}

thread_local! {
    /// The command line [`run_embedded`] is running on this thread.
    static EMBEDDED_COMMAND: std::cell::RefCell<Option<Vec<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `argv` as [`run_args`] does, for a program that embeds the library (the Python
/// package): what the command records as its command line (a study's `summary.json`) is
/// `relevance <argv>`, not the host program's own command line.
pub fn run_embedded(argv: &[String]) -> anyhow::Result<()> {
    let command: Vec<String> = std::iter::once("relevance".to_string())
        .chain(argv.iter().cloned())
        .collect();
    EMBEDDED_COMMAND.with(|c| *c.borrow_mut() = Some(command));
    let result = run_args(argv);
    EMBEDDED_COMMAND.with(|c| *c.borrow_mut() = None);
    result
}

/// The command line [`run_embedded`] is running on this thread, if any.
fn embedded_command() -> Option<Vec<String>> {
    EMBEDDED_COMMAND.with(|c| c.borrow().clone())
}

/// Entry point of the binary: runs the command and maps errors to a one-line message and exit code 1.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(scope) = cli.winograd {
        crate::engine::kernels::set_winograd_scope(scope);
    }
    let result = dispatch(cli.command);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of our output has gone (`| head`): nothing is wrong with the work.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether `e` comes from writing to a pipe whose reader has closed it.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
