//! Sharded runs end to end through the binary: `--shard K/N` runs merged with `relevance merge`
//! give exactly the files of the unsharded run (byte for byte), merges of missing, unfinished or
//! mismatched shards are refused naming what is wrong, a finished shard is not redone, and
//! `relevance slurm submit --dry-run` prints the array and merge scripts.

use std::path::Path;

use crate::shard_common::{
    assert_same_files, assert_same_training, csv_list, explain_args, faithfulness_args, fixture,
    more_members, path, run_err, run_ok, stability_args, strs, temp_dir, train_args,
};

/// Runs `args` unsharded in `dir/whole` and as `n` shards plus a merge in `dir/sharded`
/// (both with `--out run`, so even the recorded command lines agree); returns both run folders.
fn whole_and_merged(
    dir: &Path,
    args: &[String],
    n: usize,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (whole, sharded) = (dir.join("whole"), dir.join("sharded"));
    std::fs::create_dir_all(&whole).unwrap();
    std::fs::create_dir_all(&sharded).unwrap();
    run_ok(&whole, &strs(args));
    for k in 1..=n {
        let mut a = args.to_vec();
        a.extend(["--shard".to_string(), format!("{k}/{n}")]);
        run_ok(&sharded, &strs(&a));
    }
    run_ok(&sharded, &["merge", "run"]);
    (whole.join("run"), sharded.join("run"))
}

#[test]
fn explain_in_three_shards_merges_to_the_unsharded_files_byte_for_byte() {
    let dir = temp_dir("explain");
    let (data, weights) = fixture(&dir, 20);
    let (whole, merged) = whole_and_merged(&dir, &explain_args(&data, &weights), 3);
    let files = assert_same_files(&whole, &merged);
    // 20 rows × (input + 2 methods × (npy + png)) + grid + explain.json
    assert_eq!(files, 20 * 5 + 2);
    // The shards split the 20 inputs 7/7/6, 3–4 of each class (10 + 10), and share none.
    let mut seen = std::collections::BTreeSet::new();
    for k in 1..=3 {
        let shard = merged.join(format!("shards/{k}-of-3"));
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(shard.join("explain.json")).unwrap()).unwrap();
        let stems: Vec<String> = record["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["input"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(stems.len(), if k == 3 { 6 } else { 7 }, "shard {k}");
        for class in ["benign", "malignant"] {
            let c = stems
                .iter()
                .filter(|s| s.contains(&format!("/{class}/")))
                .count();
            assert!((3..=4).contains(&c), "shard {k}: {c} {class}");
        }
        for s in stems {
            assert!(seen.insert(s), "an input in two shards");
        }
    }
    assert_eq!(seen.len(), 20);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn faithfulness_in_four_shards_merges_to_the_unsharded_study_byte_for_byte() {
    let dir = temp_dir("faith");
    let (data, weights) = fixture(&dir, 16);
    let (whole, merged) = whole_and_merged(&dir, &faithfulness_args(&data, &weights), 4);
    let files = assert_same_files(&whole, &merged);
    // per_image.csv, metrics.csv, summary.json … and 16 × 3 per-image results.
    assert!(files > 16 * 3, "{files}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["work"]["computed"], 16 * 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stability_in_three_shards_merges_to_the_unsharded_study_byte_for_byte() {
    let dir = temp_dir("stability");
    let (data, weights) = fixture(&dir, 12);
    let (whole, merged) = whole_and_merged(&dir, &stability_args(&data, &weights), 3);
    let files = assert_same_files(&whole, &merged);
    assert!(files > 12 * 2, "{files}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_three_seed_ensemble_trained_one_seed_per_shard_merges_to_the_unsharded_ensemble() {
    let dir = temp_dir("train");
    let (data, _) = fixture(&dir, 20);
    let (whole, sharded) = (dir.join("whole"), dir.join("sharded"));
    std::fs::create_dir_all(&whole).unwrap();
    std::fs::create_dir_all(&sharded).unwrap();
    let args = train_args(&data);
    run_ok(&whole, &strs(&args));
    for k in 1..=3 {
        let mut a = args.clone();
        a.extend(["--shard".to_string(), format!("{k}/3")]);
        run_ok(&sharded, &strs(&a));
        // one seed per task: shard k holds seed k − 1 only
        let shard = sharded.join(format!("run/shards/{k}-of-3"));
        assert!(shard.join(format!("seed-{}", k - 1)).is_dir());
        assert_eq!(
            std::fs::read_dir(&shard)
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("seed-"))
                .count(),
            1
        );
    }
    run_ok(&sharded, &["merge", "run"]);
    let files = assert_same_training(&whole.join("run"), &sharded.join("run"));
    assert_eq!(
        files,
        3 * 4 + 1,
        "seed-*/{{model,checkpoint}}.safetensors, card, train record + ensemble.json"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn predict_in_three_shards_merges_to_the_unsharded_lines_for_folders_and_csv_lists() {
    let dir = temp_dir("predict");
    let (data, weights) = fixture(&dir, 20);
    let list = csv_list(&dir, &data);
    for (case, input) in [("folder", &data), ("csv", &list)] {
        let args: Vec<String> = ["predict", "--model", path(&weights), "--top", "2", "--out"]
            .iter()
            .map(|s| s.to_string())
            .chain(["run".to_string(), path(input).to_string()])
            .collect();
        let case = dir.join(case);
        let (whole, merged) = whole_and_merged(&case, &args, 3);
        assert_eq!(assert_same_files(&whole, &merged), 1, "predictions.jsonl");
        let lines = std::fs::read_to_string(merged.join("predictions.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 20);
        // The unsharded file holds exactly what the unsharded run printed.
        let printed = run_ok(&case.join("whole"), &strs(&args)).stdout;
        assert_eq!(String::from_utf8(printed).unwrap(), lines);
    }
    // A shard needs a folder to be merged in.
    let err = run_err(
        &dir,
        &[
            "predict",
            "--model",
            path(&weights),
            "--shard",
            "1/2",
            path(&data),
        ],
    );
    assert!(err.contains("--out"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_of_a_csv_list_in_three_shards_merges_to_the_unsharded_files() {
    let dir = temp_dir("explain-csv");
    let (data, weights) = fixture(&dir, 12);
    let list = csv_list(&dir, &data);
    let mut args = explain_args(&data, &weights);
    *args.last_mut().unwrap() = path(&list).to_string();
    let (whole, merged) = whole_and_merged(&dir, &args, 3);
    // 12 rows × (input + 2 methods × (npy + png)) + grid + explain.json
    assert_eq!(assert_same_files(&whole, &merged), 12 * 5 + 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// `variability` or `compare` over all of `data` with these models, writing to `run`.
fn map_study_args(study: &str, models: &[&Path], data: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![study.to_string(), "--models".to_string()];
    args.extend(models.iter().map(|m| path(m).to_string()));
    args.extend(
        [
            "--data",
            path(data),
            "--split",
            "all",
            "--methods",
            "saliency,grad-cam",
            "--no-progress",
            "--out",
            "run",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn variability_in_three_shards_merges_to_the_unsharded_study_byte_for_byte() {
    let dir = temp_dir("variability");
    let (data, weights) = fixture(&dir, 12);
    let others = more_members(&dir);
    let models = [weights.as_path(), others[0].as_path(), others[1].as_path()];
    let args = map_study_args("variability", &models, &data, &["--clusters", "2"]);
    let (whole, merged) = whole_and_merged(&dir, &args, 3);
    let files = assert_same_files(&whole, &merged);
    // The maps cache: 3 models × 12 images × (probabilities + saliency + grad-cam + raw CAM).
    let cached = |run: &Path| {
        crate::shard_common::files(run)
            .keys()
            .filter(|p| p.starts_with("cache") && p.extension().is_some_and(|e| e == "npy"))
            .count()
    };
    assert_eq!(cached(&merged), 3 * 12 * 4);
    assert!(files > 3 * 12 * 4 + 10, "{files}");
    // A shard computes only its maps; the summary is the merge's.
    assert!(!merged.join("shards/1-of-3/summary.json").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn compare_in_three_shards_merges_to_the_unsharded_study_byte_for_byte() {
    let dir = temp_dir("compare");
    let (data, weights) = fixture(&dir, 12);
    let others = more_members(&dir);
    let models = [weights.as_path(), others[0].as_path()];
    let args = map_study_args("compare", &models, &data, &[]);
    let (whole, merged) = whole_and_merged(&dir, &args, 3);
    let files = assert_same_files(&whole, &merged);
    assert!(files > 2 * 12 * 4, "{files}");
    // Shard 2 killed while writing a map: its manifest unfinished and a temporary file of a
    // process that no longer runs left in its cache. Resubmitted, it redoes nothing it had
    // written, and the merge leaves the temporary out.
    let shard = merged.join("shards/2-of-3");
    let manifest = shard.join("shard.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("finished");
    std::fs::write(&manifest, serde_json::to_string(&v).unwrap()).unwrap();
    let maps = std::fs::read_dir(shard.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap()
        .join("saliency");
    let temp = maps.join(".x.npy.tmp4000000000-0");
    std::fs::write(&temp, b"half a map").unwrap();
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let a_map = std::fs::read_dir(&maps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "npy"))
        .unwrap();
    let before = stamp(&a_map);
    let mut again = args.clone();
    again.extend(["--shard".to_string(), "2/3".to_string()]);
    let out = run_ok(merged.parent().unwrap(), &strs(&again));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("already finished"));
    assert_eq!(stamp(&a_map), before, "a written map is not redone");
    run_ok(merged.parent().unwrap(), &["merge", "run"]);
    assert_same_files(&whole, &merged);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn map_study_shards_of_different_configurations_are_refused_naming_the_flag() {
    let dir = temp_dir("variability-refuse");
    let (data, weights) = fixture(&dir, 20);
    let others = more_members(&dir);
    let models = [weights.as_path(), others[0].as_path()];
    for (k, clusters) in [(1, "2"), (2, "3")] {
        let shard = format!("{k}/2");
        let args = map_study_args(
            "variability",
            &models,
            &data,
            &["--clusters", clusters, "--shard", &shard],
        );
        run_ok(&dir, &strs(&args));
    }
    let err = run_err(&dir, &["merge", "run"]);
    assert!(
        err.contains("--clusters") && err.contains("shard 2/2"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn concepts_in_three_shards_merge_to_the_unsharded_files_byte_for_byte() {
    let dir = temp_dir("concepts");
    let (data, weights) = fixture(&dir, 20);
    let args: Vec<String> = [
        "concepts",
        "--model",
        path(&weights),
        "--layer",
        "features.8",
        "--top",
        "2",
        "--quiet",
        "--out",
        "run",
        path(&data),
    ]
    .map(String::from)
    .to_vec();
    let (whole, merged) = whole_and_merged(&dir, &args, 3);
    // 20 inputs × (input.png + 2 concepts × (npy + png)) + concepts.json
    assert_eq!(assert_same_files(&whole, &merged), 20 * 5 + 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_atlas_in_three_shards_merges_to_the_unsharded_atlas_byte_for_byte() {
    let dir = temp_dir("atlas");
    let (data, weights) = fixture(&dir, 12);
    let args: Vec<String> = [
        "atlas",
        "--model",
        path(&weights),
        "--layer",
        "features.4",
        "--data",
        path(&data),
        "--top-k",
        "3",
        "--out",
        "run",
    ]
    .map(String::from)
    .to_vec();
    let (whole, merged) = whole_and_merged(&dir, &args, 3);
    let files = assert_same_files(&whole, &merged);
    assert!(files > 2, "channel PNGs and atlas.json: {files}");
    // The global best references come from more than one shard: each shard's candidates hold
    // only its own images, yet the merged atlas names images of at least two shards.
    let atlas: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("atlas.json")).unwrap()).unwrap();
    let shard_of = |file: &str| {
        (1..=3)
            .find(|k| {
                let c = std::fs::read_to_string(
                    merged.join(format!("shards/{k}-of-3/candidates.json")),
                )
                .unwrap();
                c.contains(&format!("\"{file}\""))
            })
            .unwrap()
    };
    let samples = atlas["samples"].as_array().unwrap();
    let mut shards = std::collections::BTreeSet::new();
    for channel in atlas["channels"].as_array().unwrap() {
        for r in channel["relevance"].as_array().unwrap() {
            let i = r["sample"].as_u64().unwrap() as usize;
            shards.insert(shard_of(samples[i]["file"].as_str().unwrap()));
        }
    }
    assert!(shards.len() >= 2, "{shards:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_study_shard_without_images_is_an_error_naming_the_counts() {
    let dir = temp_dir("empty");
    let (data, weights) = fixture(&dir, 20);
    let mut args = faithfulness_args(&data, &weights);
    args.extend(["--shard".to_string(), "25/25".to_string()]);
    let err = run_err(&dir, &strs(&args));
    assert!(
        err.contains("no images") && err.contains("25 shards of 20"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn merge_refuses_missing_unfinished_and_mismatched_shards() {
    let dir = temp_dir("refuse");
    let (data, weights) = fixture(&dir, 12);
    let args = explain_args(&data, &weights);
    let shard = |k: usize, extra: &[&str]| {
        let mut a = args.clone();
        a.extend(["--shard".to_string(), format!("{k}/3")]);
        a.extend(extra.iter().map(|s| s.to_string()));
        run_ok(&dir, &strs(&a));
    };
    assert!(run_err(&dir, &["merge", "run"]).contains("no shards to merge"));
    shard(1, &[]);
    shard(2, &[]);
    let err = run_err(&dir, &["merge", "run"]);
    assert!(
        err.contains("missing 3/3") && err.contains("--allow-partial"),
        "{err}"
    );
    let status = run_ok(&dir, &["merge", "--status", "run"]);
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("shard 1/3: finished"), "{status}");
    assert!(status.contains("shard 3/3: missing"), "{status}");
    assert!(status.contains("2 of 3 shards finished"), "{status}");
    // An unfinished shard (its manifest without `finished`, as a killed task leaves it).
    let manifest = dir.join("run/shards/2-of-3/shard.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("finished");
    std::fs::write(&manifest, serde_json::to_string(&v).unwrap()).unwrap();
    let err = run_err(&dir, &["merge", "run"]);
    assert!(err.contains("unfinished 2/3"), "{err}");
    // --allow-partial merges shard 1 alone: its rows, and says so.
    let out = run_ok(&dir, &["merge", "--allow-partial", "run"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("partial merge: 1 of 3"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/explain.json")).unwrap()).unwrap();
    assert_eq!(record["outputs"].as_array().unwrap().len(), 4);
    std::fs::write(&manifest, text).unwrap();
    // A shard run with another method does not belong to the run: the flag is named.
    shard(3, &["--alpha", "0.5"]);
    let err = run_err(&dir, &["merge", "run"]);
    assert!(
        err.contains("--alpha") && err.contains("shard 3/3"),
        "{err}"
    );
    // Bad shard values are one-line errors.
    for bad in ["0/3", "4/3", "1/0", "a/b"] {
        let mut a = args.clone();
        a.extend(["--shard".to_string(), bad.to_string()]);
        let out = crate::shard_common::relevance()
            .current_dir(&dir)
            .args(&a)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("bad shard"),
            "{bad}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_finished_shard_is_not_redone() {
    let dir = temp_dir("rerun");
    let (data, weights) = fixture(&dir, 20);
    let mut args = explain_args(&data, &weights);
    args.extend(["--shard".to_string(), "2/2".to_string()]);
    run_ok(&dir, &strs(&args));
    let shard = dir.join("run/shards/2-of-2");
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = (
        stamp(&shard.join("explain.json")),
        stamp(&shard.join("shard.json")),
    );
    let out = run_ok(&dir, &strs(&args));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already finished"));
    assert_eq!(
        before,
        (
            stamp(&shard.join("explain.json")),
            stamp(&shard.join("shard.json"))
        )
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn slurm_dry_run_prints_the_array_and_the_merge_scripts() {
    let dir = temp_dir("dry");
    let out = run_ok(
        &dir,
        &[
            "slurm",
            "submit",
            "--shards",
            "16",
            "--array-limit",
            "4",
            "--cpus-per-task",
            "2",
            "--time",
            "1:00:00",
            "--mem",
            "4G",
            "--dry-run",
            "--",
            "faithfulness",
            "--models",
            "m.safetensors",
            "--data",
            "my data",
            "--out",
            "run",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "#SBATCH --array=1-16%4",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --time=1:00:00",
        "#SBATCH --mem=4G",
        "#SBATCH --output=run/slurm/shard-%a.log",
        "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"",
        "faithfulness --models m.safetensors --data 'my data' --out run --shard \"${SLURM_ARRAY_TASK_ID}/16\"",
        " merge run",
        "--dependency=afterok:<array job>",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(!dir.join("run").exists(), "a dry run writes nothing");
    let err = run_err(
        &dir,
        &[
            "slurm",
            "submit",
            "--shards",
            "2",
            "--",
            "faithfulness",
            "--models",
            "m",
            "--data",
            "d",
        ],
    );
    assert!(err.contains("--out"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
