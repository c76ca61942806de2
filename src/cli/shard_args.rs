//! `--shard K/N`, shared by the commands that walk a data set or a list of inputs, and the
//! wrapping of one such run as a shard ([`crate::shard::run`]).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::data::shard::Shard;
use crate::records::ShardItem;
use crate::shard::run::{Begun, ShardRun};

/// The shard flag.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// Run only shard K of N (1-based; e.g. an array task's index): a deterministic,
    /// class-balanced part of the inputs, written under OUT/shards/K-of-N/ with shard.json.
    /// `relevance merge OUT` then builds exactly what one unsharded run writes.
    #[arg(long, value_name = "K/N", value_parser = str::parse::<Shard>)]
    pub shard: Option<Shard>,
}

/// How a command runs: whole, as a shard to run, or a shard that already finished.
pub enum Sharding {
    /// No `--shard`: the run writes into `--out`.
    Whole,
    /// A shard to run: write into its folder, then [`ShardRun::finish`].
    Shard(Box<ShardRun>),
    /// A shard that already finished with the same configuration: nothing to do.
    Done(PathBuf),
}

impl ShardArgs {
    /// Starts the shard (when `--shard` is given) of this process's command writing to `out`,
    /// with its model files and (where the merge needs them) its items.
    pub fn begin(&self, out: &Path, models: &[PathBuf], items: Vec<ShardItem>) -> Result<Sharding> {
        let Some(shard) = self.shard else {
            return Ok(Sharding::Whole);
        };
        let argv: Vec<String> = std::env::args().collect();
        Ok(match ShardRun::begin(shard, &argv, out, models, items)? {
            Begun::Run(run) => Sharding::Shard(run),
            Begun::AlreadyFinished(dir) => {
                eprintln!(
                    "shard {shard} already finished in {} (same configuration): nothing to do",
                    dir.display()
                );
                Sharding::Done(dir)
            }
        })
    }
}

impl Sharding {
    /// The folder the run writes into: the shard's folder, else `out`.
    pub fn out(&self, out: &Path) -> PathBuf {
        match self {
            Sharding::Shard(run) => run.dir.clone(),
            Sharding::Whole | Sharding::Done(_) => out.to_path_buf(),
        }
    }

    /// Marks a shard finished; `work` read from the study's `summary.json` where it has one.
    pub fn finish(self) -> Result<()> {
        if let Sharding::Shard(run) = self {
            let summary = run.dir.join("summary.json");
            let work = crate::records::read_record::<crate::records::StudySummary>(&summary)
                .ok()
                .map(|s| s.work)
                .filter(|w| !w.is_null());
            run.finish(work)?;
        }
        Ok(())
    }
}
