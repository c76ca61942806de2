//! `relevance slurm submit`: a sharded command as a Slurm job array (task `K` runs shard
//! `K/N`) and a merge job that starts when every task succeeded (`--dependency=afterok`).
//!
//! Both scripts are written to `OUT/slurm/` as plain, readable sbatch files (the command
//! quoted for the shell, the `#SBATCH` options at the top), so they can be read, edited and
//! resubmitted by hand — e.g. `sbatch --array=3 OUT/slurm/array.sbatch` re-runs shard 3 only.
//! Progress and state come from Slurm's own tools (`squeue`, `scontrol show job`, `sacct`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::records::{SCHEMA_VERSION, SlurmJobs, write_record};

/// The resources and limits of the array tasks.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// Number of shards (array tasks).
    pub shards: usize,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` per task.
    pub time: Option<String>,
    /// `--cpus-per-task` (also the threads each task uses).
    pub cpus_per_task: Option<usize>,
    /// `--mem` per task.
    pub mem: Option<String>,
    /// `--gres`.
    pub gres: Option<String>,
    /// At most this many tasks at once (`--array=1-N%L`).
    pub array_limit: Option<usize>,
}

/// The two scripts of a submission.
pub struct Scripts {
    /// `OUT/slurm/array.sbatch`.
    pub array: String,
    /// `OUT/slurm/merge.sbatch`.
    pub merge: String,
}

/// The run's output folder: the value of `--out` in `command`, which must be given (the
/// tasks and the merge job must agree on it).
pub fn out_of(command: &[String]) -> Result<PathBuf> {
    let mut words = command.iter();
    while let Some(w) = words.next() {
        if w == "--out" {
            if let Some(v) = words.next() {
                return Ok(PathBuf::from(v));
            }
        } else if let Some(v) = w.strip_prefix("--out=") {
            return Ok(PathBuf::from(v));
        }
    }
    bail!(
        "the command needs --out OUT: the array tasks write under OUT/shards and the merge job into OUT"
    )
}

/// Quotes `word` for a POSIX shell (single quotes, `'` as `'\''`) unless it is plainly safe.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The sbatch scripts running `command` (a `relevance` command line without the program
/// name) as `opts.shards` array tasks and the merge, with `exe` the `relevance` binary and
/// `workdir` the folder relative paths are taken from.
pub fn scripts(
    command: &[String],
    opts: &SlurmOptions,
    exe: &Path,
    workdir: &Path,
) -> Result<Scripts> {
    if command.is_empty() {
        bail!(
            "no command given: put the relevance command after --, e.g. -- faithfulness --models m.safetensors --data data --out run"
        );
    }
    if command
        .iter()
        .any(|w| w == "--shard" || w.starts_with("--shard="))
    {
        bail!("the command must not carry --shard: each array task adds its own");
    }
    crate::data::shard::Shard::new(1, opts.shards).map_err(|e| anyhow::anyhow!("--shards: {e}"))?;
    let out = out_of(command)?;
    let logs = out.join("slurm");
    let n = opts.shards;
    let name = format!("relevance-{}", command[0]);
    let mut array = String::from("#!/bin/bash\n");
    let _ = writeln!(
        array,
        "# Written by `relevance slurm submit`: array task K runs shard K/{n} of"
    );
    let _ = writeln!(
        array,
        "# the command below; `relevance merge` then builds the unsharded outputs."
    );
    let _ = writeln!(
        array,
        "# Re-run one task by hand: sbatch --array=K {}",
        logs.join("array.sbatch").display()
    );
    let _ = writeln!(array, "#SBATCH --job-name={name}");
    let array_range = match opts.array_limit {
        Some(l) => format!("1-{n}%{l}"),
        None => format!("1-{n}"),
    };
    let _ = writeln!(array, "#SBATCH --array={array_range}");
    let _ = writeln!(
        array,
        "#SBATCH --output={}",
        logs.join("shard-%a.log").display()
    );
    let _ = writeln!(array, "#SBATCH --chdir={}", workdir.display());
    resources(&mut array, opts);
    array.push_str("set -euo pipefail\n");
    array.push_str("# As many compute threads as CPUs Slurm gave the task.\n");
    array.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
    let words: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
    let _ = writeln!(
        array,
        "exec {} {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\"",
        shell_quote(&exe.display().to_string()),
        words.join(" ")
    );
    let mut merge = String::from("#!/bin/bash\n");
    let _ = writeln!(
        merge,
        "# Written by `relevance slurm submit`: merges the {n} shards of the array"
    );
    let _ = writeln!(
        merge,
        "# (submitted with --dependency=afterok:<array job>)."
    );
    let _ = writeln!(merge, "#SBATCH --job-name={name}-merge");
    let _ = writeln!(
        merge,
        "#SBATCH --output={}",
        logs.join("merge.log").display()
    );
    let _ = writeln!(merge, "#SBATCH --chdir={}", workdir.display());
    let merge_opts = SlurmOptions {
        gres: None,
        array_limit: None,
        ..opts.clone()
    };
    resources(&mut merge, &merge_opts);
    merge.push_str("set -euo pipefail\n");
    merge.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
    let _ = writeln!(
        merge,
        "exec {} merge {}",
        shell_quote(&exe.display().to_string()),
        shell_quote(&out.display().to_string())
    );
    Ok(Scripts { array, merge })
}

/// The `#SBATCH` lines of the resources given.
fn resources(script: &mut String, opts: &SlurmOptions) {
    let lines = [
        ("partition", opts.partition.clone()),
        ("time", opts.time.clone()),
        ("cpus-per-task", opts.cpus_per_task.map(|c| c.to_string())),
        ("mem", opts.mem.clone()),
        ("gres", opts.gres.clone()),
    ];
    for (flag, value) in lines {
        if let Some(v) = value {
            let _ = writeln!(script, "#SBATCH --{flag}={v}");
        }
    }
}

/// Writes the scripts to `OUT/slurm/`, submits the array and then the merge job depending on
/// it, records the job ids in `OUT/slurm/jobs.json` and returns them. `sbatch`'s own error
/// text is passed on as it is.
pub fn submit(command: &[String], scripts: &Scripts, shards: usize) -> Result<SlurmJobs> {
    let logs = out_of(command)?.join("slurm");
    std::fs::create_dir_all(&logs).with_context(|| format!("{}: cannot create", logs.display()))?;
    let array_path = logs.join("array.sbatch");
    let merge_path = logs.join("merge.sbatch");
    crate::io::write_text_atomic(&array_path, &scripts.array)
        .with_context(|| format!("{}: cannot write", array_path.display()))?;
    crate::io::write_text_atomic(&merge_path, &scripts.merge)
        .with_context(|| format!("{}: cannot write", merge_path.display()))?;
    let array_job = sbatch(&[], &array_path)?;
    let merge_job = sbatch(&[format!("--dependency=afterok:{array_job}")], &merge_path)?;
    let jobs = SlurmJobs {
        schema_version: SCHEMA_VERSION,
        array_job,
        merge_job,
        shards,
        array_script: array_path.display().to_string(),
        merge_script: merge_path.display().to_string(),
        submitted: crate::records::utc_now(),
    };
    write_record(&logs.join("jobs.json"), &jobs)?;
    Ok(jobs)
}

/// Runs `sbatch --parsable [extra] script` and returns the job id (the part before `;cluster`).
fn sbatch(extra: &[String], script: &Path) -> Result<String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run sbatch: {e} (is Slurm installed and on PATH?)"))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        bail!("sbatch {}: {}", script.display(), text.trim());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "sbatch {}: unexpected answer '{}'",
            script.display(),
            text.trim()
        );
    }
    Ok(id)
}
