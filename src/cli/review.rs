//! `relevance review`: serve explanations for experts to rate, export the answers, summarise
//! them (see `src/review`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::review::server::{ServeOptions, serve};
use crate::review::store::export;
use crate::review::summary::write_summary;

/// Arguments of `relevance review`.
#[derive(clap::Args, Debug)]
pub struct ReviewArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ReviewCommand,
}

/// Subcommands of `relevance review`.
#[derive(clap::Subcommand, Debug)]
pub enum ReviewCommand {
    /// Serve a web page where experts rate the explanations of a run folder.
    Serve(ServeArgs),
    /// Write every answer of a review database to CSV or JSON.
    Export(ExportArgs),
    /// Count answers per model × method × class with Wilson intervals, agreement between
    /// raters and common tags; writes review.json (read by `relevance report`) and CSVs.
    Summary(SummaryArgs),
}

/// Arguments of `relevance review serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Folders `relevance explain`, a study (`compare`, `variability`) or the demo wrote;
    /// every explain.json and study map cache below them is offered.
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// The data folder (or CSV list) the studies below the run folders read: their input
    /// images are shown from there, and only if they are the images the study recorded.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The review database (created if missing; several servers may share it).
    #[arg(long, default_value = "review.sqlite")]
    pub db: PathBuf,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind; anything but a loopback address requires --token.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Hide model and method, and show each rater the items in an order of their own.
    #[arg(long)]
    pub blind: bool,
    /// Require a random token (printed at start) on every request.
    #[arg(long)]
    pub token: bool,
    /// Seed of the per-rater order with --blind.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `relevance review export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The review database.
    pub db: PathBuf,
    /// Output file, `.csv` or `.json`.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `relevance review summary`.
#[derive(clap::Args, Debug)]
pub struct SummaryArgs {
    /// The review database.
    pub db: PathBuf,
    /// Output folder (default: `<db stem>-summary` beside the database).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The run folders the items came from (as given to `review serve`): each tag's example
    /// items found there get their overlay copied beside the summary, and the report shows
    /// them.
    #[arg(long, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// The data folder the studies below `--runs` read (as given to `review serve`).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: ReviewArgs) -> Result<()> {
    match args.command {
        ReviewCommand::Serve(args) => run_serve(args),
        ReviewCommand::Export(args) => {
            let n = export(&args.db, &args.out)?;
            outln!("wrote {} answers to {}", n, args.out.display())?;
            Ok(())
        }
        ReviewCommand::Summary(args) => run_summary(args),
    }
}

fn run_serve(args: ServeArgs) -> Result<()> {
    let options = ServeOptions {
        runs: args.runs,
        data: args.data,
        db: args.db,
        bind: args.bind,
        port: args.port,
        blind: args.blind,
        token: args.token,
        seed: args.seed,
    };
    serve(&options, |started| {
        // Printed and flushed at once: scripts (and the tests) read the address from here.
        let _ = outln!(
            "serving {} items; answers go to {}\nopen {}",
            started.items,
            started.db.display(),
            started.url
        );
    })?;
    Ok(())
}

fn default_summary_folder(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "review".into());
    db.with_file_name(format!("{}-summary", crate::io::safe_component(&stem)))
}

fn run_summary(args: SummaryArgs) -> Result<()> {
    let out = args.out.unwrap_or_else(|| default_summary_folder(&args.db));
    let (summary, json) = write_summary(&args.db, &out, &args.runs, args.data.as_deref())?;
    outln!(
        "{} raters, {} items, {} answers",
        summary.raters.len(),
        summary.items,
        summary.answers
    )?;
    for r in &summary.rows {
        let pct = r.pct_correct.map_or("–".into(), |p| format!("{p:.0} %"));
        let ci = match (r.wilson_low, r.wilson_high) {
            (Some(l), Some(h)) => format!(" [{l:.0}, {h:.0}]"),
            _ => String::new(),
        };
        outln!(
            "{} {} {}: {}/{} correct ({pct}{ci})",
            r.model,
            r.method,
            r.class,
            r.correct,
            r.n
        )?;
    }
    let fmt = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
    for a in &summary.agreement {
        outln!(
            "agreement {} {}: {} raters, {} items, Cohen κ {}, Fleiss κ {}, Krippendorff α {}",
            a.model,
            a.method,
            a.raters,
            a.items,
            fmt(a.cohen_kappa),
            fmt(a.fleiss_kappa),
            fmt(a.krippendorff_alpha)
        )?;
    }
    outln!("wrote {}", json.display())?;
    Ok(())
}
