//! Sharded runs on a real Slurm: `relevance slurm submit` arrays of `explain` and a
//! `faithfulness` study whose merge jobs rebuild the unsharded outputs byte for byte, and an
//! array task cancelled with `scancel`, refused by `merge`, resubmitted alone and merged; a
//! 3-seed ensemble trained one seed per array task, merged, and studied with `variability`.
//!
//! These tests need a running Slurm (`tools/slurm-test-cluster.sh start`, which `.ci/run` does)
//! and run only when `RELEVANCE_SLURM=1`; without it they print why they skip. With it set, a
//! Slurm that does not answer fails them with the reason.

#[path = "../shard_common/mod.rs"]
mod shard_common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shard_common::{
    assert_same_files, assert_same_training, explain_args, faithfulness_args, fixture, run_err,
    run_ok, strs, temp_dir, train_args,
};

/// Whether the Slurm tests are to run; when they are, Slurm must answer.
fn slurm_enabled(test: &str) -> bool {
    if std::env::var("RELEVANCE_SLURM").as_deref() != Ok("1") {
        eprintln!(
            "{test}: skipped: RELEVANCE_SLURM is not 1 (start a one-node Slurm with \
             tools/slurm-test-cluster.sh start, export its SLURM_CONF and RELEVANCE_SLURM=1; \
             .ci/run does)"
        );
        return false;
    }
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%t"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let states = String::from_utf8_lossy(&o.stdout).to_string();
            assert!(
                states.lines().any(|s| s.starts_with("idle")
                    || s.starts_with("mix")
                    || s.starts_with("alloc")),
                "RELEVANCE_SLURM=1 but no usable node: sinfo says '{}'",
                states.trim()
            );
        }
        Ok(o) => panic!(
            "RELEVANCE_SLURM=1 but sinfo fails: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("RELEVANCE_SLURM=1 but sinfo cannot run: {e}"),
    }
    true
}

/// `relevance slurm submit` of `args` as `n` shards in `cwd`; returns (array job, merge job).
fn submit(cwd: &Path, args: &[String], n: usize, extra: &[&str]) -> (String, String) {
    let mut words = vec!["slurm", "submit", "--shards"];
    let n = n.to_string();
    words.push(&n);
    words.extend(extra);
    words.push("--");
    words.extend(strs(args));
    let out = run_ok(cwd, &words);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{}", text.trim());
    let jobs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.join("run/slurm/jobs.json")).unwrap()).unwrap();
    (
        jobs["array_job"].as_str().unwrap().to_string(),
        jobs["merge_job"].as_str().unwrap().to_string(),
    )
}

/// `JobState` of a (non-array) job from `scontrol show job`.
fn job_state(job: &str) -> String {
    let out = Command::new("scontrol")
        .args(["show", "job", job])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("JobState="))
        .unwrap_or("UNKNOWN")
        .to_string()
}

/// Waits until `job` leaves the queue's pending and running states; returns its final state.
fn wait_job(job: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let state = job_state(job);
        if !["PENDING", "RUNNING", "CONFIGURING", "COMPLETING"].contains(&state.as_str()) {
            return state;
        }
        assert!(
            start.elapsed() < limit,
            "job {job} still {state} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until no task of array `job` is pending or running (`squeue` lists none).
fn wait_array(job: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-j", job, "-o", "%i %t"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.trim().is_empty() {
            return;
        }
        assert!(start.elapsed() < limit, "array {job} still queued: {text}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

const LIMIT: Duration = Duration::from_secs(600);

#[test]
fn explain_and_faithfulness_arrays_merge_to_the_unsharded_outputs() {
    if !slurm_enabled("explain_and_faithfulness_arrays_merge_to_the_unsharded_outputs") {
        return;
    }
    let dir = temp_dir("slurm-arrays");
    let (data, weights) = fixture(&dir, 16);
    let mut merges = Vec::new();
    for (name, args) in [
        ("explain", explain_args(&data, &weights)),
        ("faithfulness", faithfulness_args(&data, &weights)),
    ] {
        let (whole, sharded) = (dir.join(name).join("whole"), dir.join(name).join("sharded"));
        std::fs::create_dir_all(&whole).unwrap();
        std::fs::create_dir_all(&sharded).unwrap();
        run_ok(&whole, &strs(&args));
        let (_, merge) = submit(&sharded, &args, 4, &["--cpus-per-task", "1"]);
        merges.push((name, merge, whole, sharded));
    }
    for (name, merge, whole, sharded) in merges {
        let state = wait_job(&merge, LIMIT);
        let log = std::fs::read_to_string(sharded.join("run/slurm/merge.log")).unwrap_or_default();
        assert_eq!(state, "COMPLETED", "{name} merge job {merge}: {log}");
        let files = assert_same_files(&whole.join("run"), &sharded.join("run"));
        println!(
            "{name}: 4 Slurm array tasks + merge job {merge}: {files} files identical to the unsharded run"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_cancelled_task_is_named_by_merge_and_resubmitted_alone() {
    if !slurm_enabled("a_cancelled_task_is_named_by_merge_and_resubmitted_alone") {
        return;
    }
    let dir = temp_dir("slurm-cancel");
    let (data, weights) = fixture(&dir, 12);
    let args = explain_args(&data, &weights);
    let (whole, sharded) = (dir.join("whole"), dir.join("sharded"));
    std::fs::create_dir_all(&whole).unwrap();
    std::fs::create_dir_all(&sharded).unwrap();
    run_ok(&whole, &strs(&args));
    // One task at a time, so task 4 is still pending when it is cancelled.
    let (array, merge) = submit(&sharded, &args, 4, &["--array-limit", "1"]);
    let cancel = Command::new("scancel")
        .arg(format!("{array}_4"))
        .output()
        .unwrap();
    assert!(
        cancel.status.success(),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    wait_array(&array, LIMIT);
    // The merge job's dependency can no longer be met: it must not have run.
    assert_ne!(job_state(&merge), "COMPLETED");
    let err = run_err(&sharded, &["merge", "run"]);
    assert!(err.contains("missing 4/4"), "{err}");
    println!("merge refused: {err}");
    Command::new("scancel").arg(&merge).status().unwrap();
    // Resubmit shard 4 alone with the same script, then merge.
    let out = Command::new("sbatch")
        .args(["--parsable", "--array=4", "run/slurm/array.sbatch"])
        .current_dir(&sharded)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = String::from_utf8_lossy(&out.stdout).trim().to_string();
    wait_array(&again, LIMIT);
    run_ok(&sharded, &["merge", "run"]);
    let files = assert_same_files(&whole.join("run"), &sharded.join("run"));
    println!(
        "task 4 resubmitted as job {again}; merged {files} files identical to the unsharded run"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_three_seed_ensemble_trained_as_an_array_feeds_variability() {
    if !slurm_enabled("a_three_seed_ensemble_trained_as_an_array_feeds_variability") {
        return;
    }
    let dir = temp_dir("slurm-train");
    let (data, _) = fixture(&dir, 20);
    let args = train_args(&data);
    let (whole, sharded) = (dir.join("whole"), dir.join("sharded"));
    std::fs::create_dir_all(&whole).unwrap();
    std::fs::create_dir_all(&sharded).unwrap();
    // Each task computes with its one CPU, and training's sums depend on the thread count: the
    // reference is trained with one thread too.
    let reference = shard_common::relevance()
        .current_dir(&whole)
        .env("RAYON_NUM_THREADS", "1")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let (_, merge) = submit(&sharded, &args, 3, &[]);
    let state = wait_job(&merge, LIMIT);
    let log = std::fs::read_to_string(sharded.join("run/slurm/merge.log")).unwrap_or_default();
    assert_eq!(state, "COMPLETED", "merge job {merge}: {log}");
    let files = assert_same_training(&whole.join("run"), &sharded.join("run"));
    let data_arg = data.display().to_string();
    let out = run_ok(
        &sharded,
        &[
            "variability",
            "--models",
            "run",
            "--data",
            &data_arg,
            "--split",
            "all",
            "--methods",
            "saliency",
            "--no-progress",
            "--out",
            "var",
        ],
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sharded.join("var/summary.json")).unwrap()).unwrap();
    let models = summary["conventions"]["models"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "3 seeds trained as array tasks, merge job {merge}: {files} files as trained unsharded; \
         variability over {models} models: {}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
    );
    assert_eq!(models, 3, "{summary}");
    std::fs::remove_dir_all(&dir).ok();
}
