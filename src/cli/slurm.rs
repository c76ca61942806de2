//! `relevance slurm submit`: a command as a Slurm job array of shards plus a merge job
//! ([`crate::shard::slurm`]).

use anyhow::{Context, Result};
use clap::Parser;

use crate::shard::slurm::{SlurmOptions, scripts, submit};

/// Arguments of `relevance slurm`.
#[derive(clap::Args, Debug)]
pub struct SlurmArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SlurmCommand,
}

/// `relevance slurm` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SlurmCommand {
    /// Submit a command as an array of N shards and a merge job that runs when all succeeded.
    Submit(SubmitArgs),
}

/// Arguments of `relevance slurm submit`.
#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// Number of shards (array tasks 1..N; task K runs --shard K/N).
    #[arg(long)]
    pub shards: usize,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (Slurm's format, e.g. 1:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task; each task computes with as many threads.
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Memory per task (e.g. 8G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Generic resources per task (e.g. gpu:1).
    #[arg(long)]
    pub gres: Option<String>,
    /// At most this many tasks at once (--array=1-N%L).
    #[arg(long)]
    pub array_limit: Option<usize>,
    /// Print the scripts and the sbatch commands without submitting.
    #[arg(long)]
    pub dry_run: bool,
    /// The relevance command and its flags (after --), with --out.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Runs the command.
pub fn run(args: SlurmArgs) -> Result<()> {
    let SlurmCommand::Submit(args) = args.command;
    // Refuse a command that would fail in every task before anything is submitted.
    let words = std::iter::once("relevance".to_string()).chain(args.command.iter().cloned());
    super::Cli::try_parse_from(words).map_err(|e| anyhow::anyhow!("the command: {e}"))?;
    let opts = SlurmOptions {
        shards: args.shards,
        partition: args.partition,
        time: args.time,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem,
        gres: args.gres,
        array_limit: args.array_limit,
    };
    let exe = std::env::current_exe().context("cannot find the relevance binary")?;
    let workdir = std::env::current_dir().context("cannot read the current folder")?;
    let scripts = scripts(&args.command, &opts, &exe, &workdir)?;
    if args.dry_run {
        let logs = crate::shard::slurm::out_of(&args.command)?.join("slurm");
        outln!("# {}", logs.join("array.sbatch").display())?;
        outln!("{}", scripts.array)?;
        outln!("# {}", logs.join("merge.sbatch").display())?;
        outln!("{}", scripts.merge)?;
        outln!("# submitted as:")?;
        outln!("sbatch --parsable {}", logs.join("array.sbatch").display())?;
        outln!(
            "sbatch --parsable --dependency=afterok:<array job> {}",
            logs.join("merge.sbatch").display()
        )?;
        return Ok(());
    }
    let jobs = submit(&args.command, &scripts, args.shards)?;
    outln!(
        "array job {} ({} tasks), merge job {} (after the array succeeded); recorded in {}",
        jobs.array_job,
        jobs.shards,
        jobs.merge_job,
        crate::shard::slurm::out_of(&args.command)?
            .join("slurm/jobs.json")
            .display()
    )?;
    Ok(())
}
