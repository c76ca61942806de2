//! `relevance quality` end to end through the binary: a run on a small_cnn writes its tables,
//! figures and record; three shards merged give the unsharded files byte for byte; the report
//! picks the study up with its figures; bad options are one-line errors.

use crate::shard_common::{assert_same_files, fixture, path, run_err, run_ok, strs, temp_dir};

fn quality_args(data: &std::path::Path, weights: &std::path::Path) -> Vec<String> {
    [
        "quality",
        "--models",
        path(weights),
        "--data",
        path(data),
        "--split",
        "all",
        "--limit",
        "9",
        "--methods",
        "saliency,grad-cam,random",
        "--region-patch",
        "4",
        "--faithfulness-runs",
        "10",
        "--sensitivity-samples",
        "3",
        "--no-progress",
        "--out",
        "run",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn quality_runs_shards_merge_byte_for_byte_and_the_report_shows_it() {
    let dir = temp_dir("quality");
    let (data, weights) = fixture(&dir, 20);
    let args = quality_args(&data, &weights);
    let (whole, sharded) = (dir.join("whole"), dir.join("sharded"));
    std::fs::create_dir_all(&whole).unwrap();
    std::fs::create_dir_all(&sharded).unwrap();
    let out = run_ok(&whole, &strs(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("checkered"), "{stdout}");
    for k in 1..=3 {
        let mut a = args.clone();
        a.extend(["--shard".to_string(), format!("{k}/3")]);
        run_ok(&sharded, &strs(&a));
    }
    run_ok(&sharded, &["merge", "run"]);
    let (whole, merged) = (whole.join("run"), sharded.join("run"));
    let files = assert_same_files(&whole, &merged);
    assert!(files > 9 * 3, "{files}");

    // Tables: one row per image × method, and per method.
    let per_image = std::fs::read_to_string(whole.join("per_image.csv")).unwrap();
    assert_eq!(per_image.lines().count(), 1 + 9 * 3);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.join("quality.json")).unwrap()).unwrap();
    assert_eq!(record["schema_version"], 1);
    assert_eq!(record["entries"].as_array().unwrap().len(), 3);

    // The report has the section, its table and every figure, all inside the run folder.
    run_ok(&whole, &["report", "."]);
    let html = std::fs::read_to_string(whole.join("report.html")).unwrap();
    assert!(html.contains("Quality metrics"), "no quality section");
    assert!(html.contains("checkerboard / noise"), "no table column");
    // Seven figures, drawn inline (the report rebuilds each SVG), with their captions.
    assert_eq!(html.matches("<figure").count(), 7, "figures in the report");
    for caption in [
        "checkerboard / noise ↓ per method",
        "faithfulness correlation ↑ per method",
    ] {
        assert!(html.contains(caption), "{caption} missing from the report");
    }
    for figure in [
        "quality_checkerboard_ratio",
        "quality_faithfulness_correlation",
    ] {
        assert!(whole.join(format!("{figure}.png")).exists());
        assert!(whole.join(format!("{figure}.svg")).exists());
    }

    // Options that cannot work are one-line errors.
    let with = |flag: &str, value: &str| -> Vec<String> {
        let mut a = args.clone();
        let at = a.iter().position(|w| w == flag).unwrap();
        a[at + 1] = value.to_string();
        a
    };
    let err = run_err(&whole, &strs(&with("--sensitivity-samples", "0")));
    assert!(err.contains("sensitivity"), "{err}");
    let err = run_err(&whole, &strs(&with("--methods", "saliency,no-such-method")));
    assert!(err.contains("no-such-method"), "{err}");
    let err = run_err(&whole, &strs(&with("--methods", "crp(top=2)")));
    assert!(err.contains("layer"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
