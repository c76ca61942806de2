//! `relevance merge OUT`: builds from `OUT/shards/K-of-N/` what one unsharded run writes into
//! `OUT` — `predict` lines, `explain` and `concepts` rows and files, an atlas drawn from the
//! shards' best references, `train --seeds` members, or a study's per-image results summarised
//! by the study's own pipeline; `--status` says which shards are done.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;

use super::{Cli, Command};
use crate::data::shard::ShardSet;
use crate::shard::merge::Shards;

/// Arguments of `relevance merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The output folder of the sharded command (holding shards/K-of-N/).
    pub out: PathBuf,
    /// Merge the finished shards even when others are missing or unfinished; the summary then
    /// says which shards it covers.
    #[arg(long)]
    pub allow_partial: bool,
    /// Only say which shards are finished, unfinished or missing.
    #[arg(long)]
    pub status: bool,
}

/// Commands whose shards merge by re-running the study over the gathered per-image results.
const STUDIES: &[&str] = &[
    "faithfulness",
    "stability",
    "sanity",
    "quality",
    "variability",
    "compare",
];

/// Runs the command.
pub fn run(args: MergeArgs) -> Result<()> {
    let shards = Shards::read(&args.out)?;
    if args.status {
        outln!("{}", shards.status())?;
        return Ok(());
    }
    let set = shards.mergeable(args.allow_partial)?;
    let command = shards.first().command.clone();
    match command.as_str() {
        "train" => {
            let members = crate::shard::train::merge(&args.out, &shards, &set)?;
            eprintln!(
                "merged {members} ensemble member(s) of {} shard(s) into {}",
                set.members.len(),
                args.out.display()
            );
        }
        "predict" => {
            let lines = crate::shard::predict::merge(&args.out, &shards, &set)?;
            eprintln!(
                "merged {lines} prediction(s) of {} shard(s) into {}",
                set.members.len(),
                args.out.display()
            );
        }
        "concepts" => {
            let records = crate::shard::concepts::merge(&args.out, &shards, &set)?;
            eprintln!(
                "merged {records} record(s) of {} shard(s) into {}",
                set.members.len(),
                args.out.display()
            );
        }
        "explain" => {
            let rows = crate::shard::explain::merge(&args.out, &shards, &set)?;
            eprintln!(
                "merged {rows} row(s) of {} shard(s) into {}",
                set.members.len(),
                args.out.display()
            );
        }
        "atlas" => {
            let candidates = crate::shard::atlas::merged_candidates(&shards, &set)?;
            match parse_unsharded(&shards.first().argv, &args.out)?.command {
                Command::Atlas(a) => super::atlas::draw_merged(a, candidates, &args.out)?,
                other => bail!("shards of atlas record another command: {other:?}"),
            }
        }
        study if STUDIES.contains(&study) => {
            let files = crate::shard::study::gather(&args.out, &shards, &set)?;
            let partial = (set.members.len() < shards.count).then(|| set.clone());
            rerun_study(&shards.first().argv, &args.out, partial)?;
            crate::shard::study::finish_summary(&args.out, &shards, &set)?;
            eprintln!(
                "merged {files} per-image result(s) of {} shard(s) into {}",
                set.members.len(),
                args.out.display()
            );
        }
        other => bail!("merging shards of '{other}' is not supported"),
    }
    if set.members.len() < shards.count {
        eprintln!(
            "partial merge: {} of {} shards ({})",
            set.members.len(),
            shards.count,
            shards.not_done()
        );
    }
    Ok(())
}

/// Runs the study's unsharded command line `argv` with its output in `out`, where every
/// per-image result already lies, so only its summary phase does work; `partial` restricts it
/// to the images of the merged shards.
fn rerun_study(argv: &[String], out: &std::path::Path, partial: Option<ShardSet>) -> Result<()> {
    let mut words: Vec<String> = argv
        .iter()
        .filter(|w| *w != "--no-progress" && *w != "--quiet")
        .cloned()
        .collect();
    words.push("--no-progress".into());
    match parse_unsharded(&words, out)?.command {
        Command::Faithfulness(mut a) => {
            a.study.merged_shards = partial;
            super::faithfulness::run_cli(*a)
        }
        Command::Stability(mut a) => {
            a.study.merged_shards = partial;
            super::stability::run_cli(*a)
        }
        Command::Variability(mut a) => {
            a.study.merged_shards = partial;
            super::variability::run(*a)
        }
        Command::Compare(mut a) => {
            a.study.merged_shards = partial;
            super::compare::run(*a)
        }
        Command::Sanity(mut a) => {
            a.study.merged_shards = partial;
            super::sanity::run_cli(*a)
        }
        Command::Quality(mut a) => {
            a.study.merged_shards = partial;
            super::quality::run_cli(*a)
        }
        other => bail!("merging shards of {other:?} is not supported"),
    }
}

/// The shards' unsharded command line `argv` with its output in `out`, parsed.
fn parse_unsharded(argv: &[String], out: &std::path::Path) -> Result<Cli> {
    let mut words: Vec<String> = crate::shard::run::without_out(argv);
    words.extend(["--out".to_string(), out.display().to_string()]);
    Cli::try_parse_from(&words).map_err(|e| anyhow::anyhow!("{e}"))
}
