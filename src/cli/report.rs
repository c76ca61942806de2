//! `relevance report RUN_DIR`: (re)builds the self-contained HTML report of a run folder.

use std::path::PathBuf;

use anyhow::Result;

use crate::report::build::write_report;

/// Arguments of `relevance report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A run folder (of `relevance demo`, or any folder holding training, explain, concept or
    /// study outputs).
    pub run: PathBuf,
    /// Where to write the report (default: RUN/report.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: ReportArgs) -> Result<()> {
    let path = write_report(&args.run, args.out.as_deref())?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
