//! `relevance faithfulness` end to end: on a model that is linear in its input, Input×Gradient's
//! deletion curve is the hand-computed greedy curve and beats the random control on insertion,
//! deletion and ID for every image; a re-run reuses every result; the conventions reach
//! `metrics.csv`; a trained ensemble runs through the CLI with a preset.

use crate::studies_support;

use relevance::metrics::ScoreKind;
use relevance::metrics::curve::trapezoid;
use relevance::metrics::order::{Step, Ties};
use relevance::studies::faithfulness::{
    FaithfulnessOptions, IdConventions, SubstrateSpec, run_with_models,
};
use relevance::studies::toolkit::TargetRule;
use studies_support::*;

fn linear_options(dir: &std::path::Path, data: std::path::PathBuf) -> FaithfulnessOptions {
    let mut opts = FaithfulnessOptions::new(vec![], data, dir.join("out"));
    opts.inputs.methods = vec!["input-x-gradient".into(), "random".into()];
    opts.conventions = IdConventions {
        step: Step::Pixels(8),
        ties: Ties::Stable,
        score: ScoreKind::Logit,
        target: TargetRule::Predicted,
        insertion_substrate: SubstrateSpec::Zero,
        deletion_substrate: SubstrateSpec::Zero,
    };
    opts
}

/// Deletion AUC of removing pixels in descending order of `c` (stable), 8 a step, from the logit
/// `start`: the logit after removing a set is `start − Σ removed c_p`.
fn greedy_deletion_auc(c: &[f64], start: f64) -> f64 {
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| (c[b] as f32).total_cmp(&(c[a] as f32)));
    let mut x = vec![0.0];
    let mut y = vec![start as f32];
    let mut logit = start;
    for (s, chunk) in order.chunks(8).enumerate() {
        logit -= chunk.iter().map(|&p| c[p]).sum::<f64>();
        x.push(((s + 1) * 8) as f64 / c.len() as f64);
        y.push(logit as f32);
    }
    trapezoid(&x, &y)
}

#[test]
fn input_x_gradient_is_the_greedy_order_on_a_linear_model_and_beats_random() {
    let dir = temp_dir("faith-linear");
    let data = synth_data(&dir, 20);
    let opts = linear_options(&dir, data);
    let model = pointwise_model();
    let outcome = run_with_models(&opts, std::slice::from_ref(&model), false).unwrap();
    let out = outcome.out;
    let per = |method: &str, stem: &str| {
        json(&out.join(format!("per_image/pointwise/{method}/{stem}.json")))
    };
    let test_dir = dir.join("data/test");
    let mut images: Vec<std::path::PathBuf> = walk_images(&test_dir);
    images.sort();
    assert_eq!(images.len(), 3, "15 % of 20 images are test images");
    for path in &images {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let ixg = per("input-x-gradient", &stem);
        let rnd = per("random", &stem);
        let k = ixg["class"].as_u64().unwrap() as usize;
        let (c, logits) = contributions(path, k);
        let predicted = if logits[1] > logits[0] { 1 } else { 0 };
        assert_eq!(k, predicted, "{stem}: target is the predicted class");
        let expected = greedy_deletion_auc(&c, logits[k]);
        let got = ixg["deletion_auc"].as_f64().unwrap();
        assert!(
            (got - expected).abs() < 1e-4 * expected.abs().max(1.0),
            "{stem}: deletion AUC {got} vs hand-computed {expected}"
        );
        // The greedy order minimises every point of the deletion curve and maximises every
        // point of the insertion curve of an additive model, so it beats any other order.
        let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
        assert!(
            f(&ixg, "deletion_auc") < f(&rnd, "deletion_auc"),
            "{stem}: deletion"
        );
        assert!(
            f(&ixg, "insertion_auc") > f(&rnd, "insertion_auc"),
            "{stem}: insertion"
        );
        assert!(f(&ixg, "id") > f(&rnd, "id"), "{stem}: ID");
        assert!(
            (f(&ixg, "id") - (f(&ixg, "insertion_auc") - f(&ixg, "deletion_auc"))).abs() < 1e-9
        );
    }

    // metrics.csv states the conventions and aggregates the per-image rows.
    let (header, rows) = read_csv(&out.join("metrics.csv"));
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r[col("step")], "8px");
        assert_eq!(r[col("ties")], "stable");
        assert_eq!(r[col("score")], "logit");
        assert_eq!(r[col("target")], "predicted");
        assert_eq!(r[col("insertion_substrate")], "zero");
        assert_eq!(r[col("deletion_substrate")], "zero");
        assert_eq!(r[col("n")], "3");
    }
    let (ph, prow) = read_csv(&out.join("per_image.csv"));
    let pid = ph.iter().position(|h| h == "id").unwrap();
    let ixg_mean: f64 = prow
        .iter()
        .filter(|r| r[1] == "input-x-gradient")
        .map(|r| r[pid].parse::<f64>().unwrap())
        .sum::<f64>()
        / 3.0;
    let row = rows.iter().find(|r| r[1] == "input-x-gradient").unwrap();
    assert!((row[col("id_mean")].parse::<f64>().unwrap() - ixg_mean).abs() < 1e-5);

    // id_tests.csv pairs the two methods image by image: the mean difference, and the Wilcoxon
    // p-value of the same per-image IDs (Holm over one comparison changes nothing).
    let (th, trows) = read_csv(&out.join("id_tests.csv"));
    let tcol = |name: &str| th.iter().position(|h| h == name).unwrap();
    assert_eq!(trows.len(), 1);
    let t = &trows[0];
    assert_eq!(
        (t[tcol("method_a")].as_str(), t[tcol("method_b")].as_str()),
        ("input-x-gradient", "random")
    );
    assert_eq!(t[tcol("n")], "3");
    let image_col = ph.iter().position(|h| h == "image").unwrap();
    let id_of = |method: &str, image: &str| -> f64 {
        prow.iter()
            .find(|r| r[1] == method && r[image_col] == image)
            .map(|r| r[pid].parse().unwrap())
            .unwrap()
    };
    let images: Vec<&str> = prow
        .iter()
        .filter(|r| r[1] == "random")
        .map(|r| r[image_col].as_str())
        .collect();
    let x: Vec<f64> = images
        .iter()
        .map(|i| id_of("input-x-gradient", i))
        .collect();
    let y: Vec<f64> = images.iter().map(|i| id_of("random", i)).collect();
    let mean_difference = x.iter().zip(&y).map(|(a, b)| a - b).sum::<f64>() / 3.0;
    let got: f64 = t[tcol("difference")].parse().unwrap();
    assert!(
        (got - mean_difference).abs() < 1e-5,
        "{got} vs {mean_difference}"
    );
    let p = relevance::studies::stats::wilcoxon_signed_rank(&x, &y).p_value;
    let (got_p, got_holm): (f64, f64) = (
        t[tcol("wilcoxon_p")].parse().unwrap(),
        t[tcol("holm_p")].parse().unwrap(),
    );
    assert!((got_p - p).abs() <= 1e-3 * p, "{got_p} vs {p}");
    assert_eq!(got_p, got_holm);
    let (low, high): (f64, f64) = (
        t[tcol("ci_low")].parse().unwrap(),
        t[tcol("ci_high")].parse().unwrap(),
    );
    assert!(
        low <= mean_difference + 1e-6 && mean_difference - 1e-6 <= high,
        "{low} {high}"
    );

    // summary.json and figures.json follow the contract and name files that exist.
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["study"], "faithfulness");
    assert_eq!(summary["table"]["rows"].as_array().unwrap().len(), 2);
    assert_eq!(summary["table"]["columns"].as_array().unwrap().len(), 4);
    assert!(
        summary["headline"][1]
            .as_str()
            .unwrap()
            .starts_with("1 of 1 methods beat")
    );
    assert_eq!(summary["work"]["computed"], 6);
    let figures = json(&out.join("figures.json"));
    assert_eq!(figures.as_array().unwrap().len(), 4);
    assert_eq!(figures[3]["file"], "examples.png");
    for f in figures.as_array().unwrap() {
        assert!(out.join(f["file"].as_str().unwrap()).is_file());
        if let Some(svg) = f["svg"].as_str() {
            assert!(out.join(svg).is_file());
        }
        assert!(!f["caption"].as_str().unwrap().is_empty());
    }

    // A re-run with the same options computes nothing and leaves the per-image files alone.
    let before = mtimes(&out.join("per_image"));
    run_with_models(&opts, std::slice::from_ref(&model), false).unwrap();
    assert_eq!(mtimes(&out.join("per_image")), before);
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["work"]["computed"], 0);
    assert_eq!(summary["work"]["reused"], 6);
    // An interrupted run (some results missing) computes exactly the missing ones.
    let gone = out.join("per_image/pointwise/random");
    let first = std::fs::read_dir(&gone)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&first).unwrap();
    run_with_models(&opts, std::slice::from_ref(&model), false).unwrap();
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["work"]["computed"], 1);
    assert_eq!(summary["work"]["reused"], 5);
    assert!(first.is_file());
    // Other conventions invalidate the stored results.
    let mut coarser = opts.clone();
    coarser.conventions.step = Step::Pixels(16);
    run_with_models(&coarser, std::slice::from_ref(&model), false).unwrap();
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["work"]["computed"], 6);
    let (_, rows) = read_csv(&out.join("metrics.csv"));
    assert_eq!(rows[0][col("step")], "16px");
}

fn walk_images(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for class in std::fs::read_dir(dir).unwrap() {
        let class = class.unwrap().path();
        if !class.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&class).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".png")
                && !name.ends_with(".mask.png")
                && !name.ends_with(".marker.png")
            {
                out.push(f);
            }
        }
    }
    out
}

#[test]
fn an_ensemble_runs_through_the_cli_with_the_resnet_lrp_preset() {
    let dir = temp_dir("faith-cli");
    let data = synth_data(&dir, 20);
    let ens = tiny_ensemble(&dir, &data);
    let out = dir.join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args([
            "faithfulness",
            "--no-progress",
            "--preset",
            "resnet-lrp",
            "--methods",
            "saliency,random",
            "--limit",
            "4",
            "--road",
            "--road-percentages",
            "20,60",
            "--models",
        ])
        .arg(&ens)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (header, rows) = read_csv(&out.join("metrics.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let models: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        models,
        [
            "seed-0",
            "seed-0",
            "seed-1",
            "seed-1",
            "ensemble-mean",
            "ensemble-mean"
        ]
    );
    for r in &rows {
        assert_eq!(r[col("ties")], "quantise:8");
        assert_eq!(r[col("target")], "true");
        assert_eq!(r[col("insertion_substrate")], "black");
        assert_eq!(r[col("deletion_substrate")], "black");
    }
    // The ensemble row is the mean of the two models' means.
    let id = col("id_mean");
    let v = |i: usize| rows[i][id].parse::<f64>().unwrap();
    assert!((v(4) - (v(0) + v(2)) / 2.0).abs() < 1e-5);
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["command"][1], "faithfulness");
    assert_eq!(
        summary["conventions"]["split"],
        "test split recorded in model.train.json"
    );
    // Paired tests, recomputed from per_image.csv pairing by image: methods per model on ID
    // (id_tests.csv), models per method on every score (model_tests.csv).
    let names = [
        "id",
        "insertion",
        "deletion",
        "road_morf",
        "road_lerf",
        "road_combined",
    ];
    let per_image = per_image_from_records(&out, &names, &|v, m| {
        let change = |order: &str| v["road"][order]["mean_change"].as_f64().unwrap();
        match m {
            "insertion" => v["insertion_auc"].as_f64().unwrap(),
            "deletion" => v["deletion_auc"].as_f64().unwrap(),
            "road_morf" => change("morf"),
            "road_lerf" => change("lerf"),
            "road_combined" => (change("lerf") - change("morf")) / 2.0,
            other => v[other].as_f64().unwrap(),
        }
    });
    let methods = check_paired_tests(&per_image, &out.join("id_tests.csv"));
    assert_eq!(methods, 2, "saliency vs random under each model");
    let models = check_paired_tests(&per_image, &out.join("model_tests.csv"));
    assert_eq!(models, 6 * 2, "six scores × one model pair × two methods");
    let (th, trows) = read_csv(&out.join("model_tests.csv"));
    let measures: Vec<&str> = trows.iter().step_by(2).map(|r| r[0].as_str()).collect();
    assert_eq!(th[0], "measure");
    assert_eq!(
        measures,
        [
            "id",
            "insertion",
            "deletion",
            "road_morf",
            "road_lerf",
            "road_combined"
        ]
    );
    assert_eq!(
        summary["tests"]["rows"].as_array().unwrap().len(),
        methods + models
    );
    // A bad option is one clear line.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args([
            "faithfulness",
            "--step",
            "abc",
            "--models",
            "x",
            "--data",
            "y",
            "--out",
            "z",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bad step 'abc'"), "{err}");
}

#[test]
fn convention_flags_parse_and_bad_ones_are_refused() {
    use relevance::studies::faithfulness::{parse_step, parse_ties};
    assert_eq!(parse_step("500px").unwrap(), Step::Pixels(500));
    assert_eq!(parse_step("1/224").unwrap(), Step::Fraction(1.0 / 224.0));
    assert_eq!(parse_step("0.02").unwrap(), Step::Fraction(0.02));
    assert!(parse_step("0").is_err() && parse_step("2").is_err() && parse_step("x").is_err());
    assert_eq!(parse_ties("stable").unwrap(), Ties::Stable);
    assert_eq!(
        parse_ties("quantise:8").unwrap(),
        Ties::Quantise { levels: 8 }
    );
    assert!(parse_ties("quantise:1").is_err());
    let s: SubstrateSpec = "blur".parse().unwrap();
    assert_eq!(
        s,
        SubstrateSpec::Blur {
            kernel: 11,
            sigma: 5.0
        }
    );
    assert_eq!(
        "black".parse::<SubstrateSpec>().unwrap(),
        SubstrateSpec::Pixel { value: 0.0 }
    );
    assert!("grey".parse::<SubstrateSpec>().is_err());
    // Black in pixel space is -mean/std in input space under ImageNet normalisation.
    let card = relevance::graph::ModelCard {
        normalization: relevance::graph::Normalization::Imagenet,
        channels: 3,
        ..Default::default()
    };
    match (SubstrateSpec::Pixel { value: 0.0 }).resolve(&card) {
        relevance::metrics::Substrate::Value(v) => {
            assert!((v[0] - (-0.485 / 0.229)).abs() < 1e-5, "{v:?}");
        }
        other => panic!("{other:?}"),
    }
    let rise = IdConventions::rise();
    assert_eq!(rise.step, Step::Fraction(1.0 / 224.0));
    assert_eq!(
        IdConventions::default().insertion_substrate,
        rise.insertion_substrate
    );
    assert!(IdConventions::preset("nope").is_err());
}
