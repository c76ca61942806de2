//! The training loop on a tiny in-memory task: it learns (loss falls, accuracy far above chance),
//! is bit-for-bit reproducible from its seed, resumes exactly after an interruption, keeps a
//! frozen backbone bit-identical, and rejects bad requests with clear messages.

use std::path::{Path, PathBuf};

use relevance::data::augment::AugmentSpec;
use relevance::data::batch::{BatchLoader, Source};
use relevance::data::folder::SplitSource;
use relevance::data::image::Image;
use relevance::data::split::SplitFractions;
use relevance::graph::card::ResizeMode;
use relevance::graph::init::init_params;
use relevance::graph::{ModelCard, Normalization, zoo};
use relevance::rng::Rng;
use relevance::train::checkpoint::save_model;
use relevance::train::trainer::RunOptions;
use relevance::train::{
    OptimizerKind, Schedule, TrainConfig, TrainData, TrainError, Verbosity, train_ensemble,
    train_model,
};

const SIZE: usize = 12;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relevance-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Class 0: a bright square in the left half; class 1: in the right half; noisy background.
fn toy_images(n: usize, seed: u64) -> Source {
    let mut rng = Rng::new(seed);
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let label = i % 2;
        let x0 = if label == 0 { 1 } else { SIZE / 2 + 1 } + rng.below(SIZE / 2 - 4);
        let y0 = 1 + rng.below(SIZE - 5);
        let pixels = (0..SIZE * SIZE)
            .map(|p| {
                let (x, y) = (p % SIZE, p / SIZE);
                let on = (x0..x0 + 3).contains(&x) && (y0..y0 + 3).contains(&y);
                let noise = rng.uniform() * 60.0;
                (if on { 180.0 } else { 30.0 } + noise) as u8
            })
            .collect();
        images.push(Image {
            width: SIZE,
            height: SIZE,
            channels: 1,
            pixels,
        });
        labels.push(label);
    }
    Source::Memory { images, labels }
}

fn card() -> ModelCard {
    ModelCard {
        input_size: [SIZE, SIZE],
        channels: 1,
        normalization: Normalization::MeanStd {
            mean: vec![0.3],
            std: vec![0.3],
        },
        resize: ResizeMode::Stretch,
        ..ModelCard::default()
    }
}

fn data(augment: AugmentSpec) -> TrainData {
    let c = card();
    TrainData {
        classes: vec!["left".into(), "right".into()],
        train: BatchLoader::new(toy_images(96, 1), &c, augment),
        val: BatchLoader::new(toy_images(32, 2), &c, AugmentSpec::default()),
        test: BatchLoader::new(toy_images(32, 3), &c, AugmentSpec::default()),
        split: SplitSource::Stratified {
            seed: 0,
            fractions: SplitFractions::default(),
        },
        card: c,
        source: PathBuf::from("memory"),
    }
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        arch: "small_cnn".into(),
        epochs,
        batch_size: 16,
        optimizer: OptimizerKind::adam(),
        lr: 3e-3,
        schedule: Schedule::Cosine,
        ..TrainConfig::default()
    }
}

fn run(
    data: &TrainData,
    cfg: &TrainConfig,
    seed: u64,
    out: &Path,
) -> Result<relevance::train::TrainOutcome, TrainError> {
    train_model(
        data,
        cfg,
        &RunOptions {
            seed,
            out,
            resume: false,
            pretrained: None,
            verbosity: Verbosity::Quiet,
            stop_after_epochs: None,
        },
    )
}

#[test]
fn training_lowers_the_loss_and_beats_chance_with_a_complete_card() {
    let out = temp_dir("learn");
    let r = run(&data(AugmentSpec::default()), &config(4), 0, &out).unwrap();
    let h = &r.record.history;
    assert_eq!(h.len(), 4);
    assert!(
        h[3].train_loss < 0.7 * h[0].train_loss,
        "loss {} → {}",
        h[0].train_loss,
        h[3].train_loss
    );
    let test = &r.record.metrics["test"];
    assert!(test.accuracy >= 0.8, "test accuracy {}", test.accuracy);
    assert_eq!(test.confusion.iter().flatten().sum::<usize>(), 32);
    assert!(test.roc_auc_macro.unwrap() > 0.85);
    // The written model loads through the ordinary path, with its classes.
    let m = relevance::Model::load(&r.weights, &Default::default()).unwrap();
    assert_eq!(m.card.classes, vec!["left", "right"]);
    assert_eq!(m.card.channels, 1);
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model.train.json")).unwrap())
            .unwrap();
    assert_eq!(rec["seed"], 0);
    assert!(
        rec["metrics"]["test"]["balanced_accuracy"]
            .as_f64()
            .is_some()
    );
}

#[test]
fn same_seed_gives_bit_identical_weights_and_another_seed_does_not() {
    let spec = AugmentSpec::parse("flip,noise").unwrap();
    let d = data(spec);
    let cfg = TrainConfig {
        max_steps: Some(4),
        ..config(1)
    };
    let bytes = |seed: u64, name: &str| {
        let out = temp_dir(name);
        run(&d, &cfg, seed, &out).unwrap();
        std::fs::read(out.join("model.safetensors")).unwrap()
    };
    let a = bytes(7, "det-a");
    let b = bytes(7, "det-b");
    let c = bytes(8, "det-c");
    assert!(a == b, "same seed, different weights");
    assert!(a != c, "different seeds, same weights");
}

#[test]
fn a_resumed_run_ends_exactly_where_an_uninterrupted_one_does() {
    let d = data(AugmentSpec::parse("hflip").unwrap());
    let cfg = TrainConfig {
        optimizer: OptimizerKind::Sgd { momentum: 0.9 },
        lr: 0.02,
        ..config(3)
    };
    let full = temp_dir("resume-full");
    run(&d, &cfg, 3, &full).unwrap();
    let part = temp_dir("resume-part");
    let opts = |resume, stop| RunOptions {
        seed: 3,
        out: &part,
        resume,
        pretrained: None,
        verbosity: Verbosity::Quiet,
        stop_after_epochs: stop,
    };
    match train_model(&d, &cfg, &opts(false, Some(2))) {
        Err(TrainError::Interrupted(2)) => {}
        Err(e) => panic!("expected an interruption after 2 epochs, got {e}"),
        Ok(_) => panic!("expected an interruption after 2 epochs"),
    }
    assert!(!part.join("model.safetensors").exists());
    let r = train_model(&d, &cfg, &opts(true, None)).unwrap();
    assert_eq!(r.record.history.len(), 3);
    let read = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(read(&full) == read(&part), "resumed weights differ");
    // Resuming with other settings is refused.
    let other = TrainConfig {
        lr: 0.1,
        ..cfg.clone()
    };
    let err = train_model(&d, &other, &opts(true, None))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("other settings"), "{err}");
}

#[test]
fn a_frozen_backbone_stays_bit_identical_and_the_head_learns() {
    let dir = temp_dir("frozen");
    // "Pretrained" weights: another seed's initialisation, with a 3-class head that does not
    // fit the 2-class task (the head is then trained afresh).
    let graph3 = zoo::build("small_cnn", 3, 1).unwrap();
    let pre = init_params(&graph3, 42).unwrap();
    let pre_path = save_model(&dir.join("pre"), &pre, &card()).unwrap();
    let cfg = TrainConfig {
        freeze_backbone: true,
        ..config(2)
    };
    let out = dir.join("run");
    let r = train_model(
        &data(AugmentSpec::default()),
        &cfg,
        &RunOptions {
            seed: 0,
            out: &out,
            resume: false,
            pretrained: Some(&pre_path),
            verbosity: Verbosity::Quiet,
            stop_after_epochs: None,
        },
    )
    .unwrap();
    let trained = &r.model.params;
    let fresh = init_params(&zoo::build("small_cnn", 2, 1).unwrap(), 0).unwrap();
    let mut backbone_keys = 0;
    for (key, p) in trained.iter() {
        if key.starts_with("classifier.") {
            assert_ne!(
                p.values(),
                fresh.values(key).unwrap(),
                "head '{key}' did not train"
            );
        } else {
            // Weights and BN running statistics alike.
            let a: Vec<u32> = p.values().iter().map(|v| v.to_bits()).collect();
            let b: Vec<u32> = pre
                .values(key)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert!(a == b, "backbone '{key}' changed");
            backbone_keys += 1;
        }
    }
    assert_eq!(backbone_keys, 4 + 16);
}

#[test]
fn bad_requests_fail_with_clear_messages() {
    let d = data(AugmentSpec::default());
    let out = temp_dir("bad");
    let err = run(
        &d,
        &TrainConfig {
            batch_size: 1,
            ..config(1)
        },
        0,
        &out,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("--batch-size"), "{err}");
    let err = run(
        &d,
        &TrainConfig {
            arch: "alexnet".into(),
            ..config(1)
        },
        0,
        &out,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("unknown architecture") && err.contains("small_cnn"),
        "{err}"
    );
    // Starting weights of another architecture.
    let g = zoo::build("resnet18", 2, 1).unwrap();
    let p = save_model(&out.join("r18"), &init_params(&g, 0).unwrap(), &card()).unwrap();
    let err = train_model(
        &d,
        &config(1),
        &RunOptions {
            seed: 0,
            out: &out,
            resume: false,
            pretrained: Some(&p),
            verbosity: Verbosity::Quiet,
            stop_after_epochs: None,
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("not a parameter"),
        "{err}"
    );
}

#[test]
fn the_cli_rejects_bad_input_with_one_line() {
    let exe = env!("CARGO_BIN_EXE_relevance");
    let out = temp_dir("cli");
    let cases: [(&[&str], &str); 3] = [
        (
            &["train", "--data", "/no/such/folder", "--out"],
            "no such file",
        ),
        (
            &["train", "--data", "/tmp", "--freeze-backbone", "--out"],
            "--pretrained",
        ),
        (
            &["train", "--data", "/tmp", "--seeds", "4..2", "--out"],
            "--seeds",
        ),
    ];
    for (args, expect) in cases {
        let o = std::process::Command::new(exe)
            .args(args)
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn an_ensemble_trains_one_model_per_seed_and_summarises_them() {
    let out = temp_dir("ensemble");
    let cfg = TrainConfig {
        max_steps: Some(3),
        ..config(1)
    };
    let rec = train_ensemble(
        &data(AugmentSpec::default()),
        &cfg,
        &[4, 9],
        &out,
        false,
        None,
        Verbosity::Quiet,
    )
    .unwrap();
    assert_eq!(
        rec.members.iter().map(|m| m.seed).collect::<Vec<_>>(),
        vec![4, 9]
    );
    let a = std::fs::read(out.join("seed-4/model.safetensors")).unwrap();
    let b = std::fs::read(out.join("seed-9/model.safetensors")).unwrap();
    assert!(a != b);
    let accs: Vec<f64> = rec
        .members
        .iter()
        .map(|m| m.test_accuracy.unwrap())
        .collect();
    assert!((rec.test_accuracy_mean.unwrap() - (accs[0] + accs[1]) / 2.0).abs() < 1e-12);
    assert!(out.join("ensemble.json").is_file());
}
