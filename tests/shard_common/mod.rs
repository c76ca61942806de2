//! Shared by the shard tests (`tests/cli/shard_cli.rs`, `tests/cluster`): a small synthetic data
//! set and a small_cnn with reference weights on disk, running the binary, and comparing two run
//! folders file by file.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn relevance() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
}

/// A fresh temporary folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relevance-shard-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `relevance args…` in `cwd` and asserts success.
pub fn run_ok(cwd: &Path, args: &[&str]) -> Output {
    let out = relevance().current_dir(cwd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "relevance {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `relevance args…` in `cwd` and returns its one-line error (asserting exit 1).
pub fn run_err(cwd: &Path, args: &[&str]) -> String {
    let out = relevance().current_dir(cwd).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "relevance {}", args.join(" "));
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// A 32×32 synthetic data set of `n` images under `dir/data` and a two-class small_cnn with
/// reference weights and a card beside them; returns (data, weights).
pub fn fixture(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    use relevance::graph::import::safetensors::to_bytes;
    let data = dir.join("data");
    run_ok(
        dir,
        &[
            "data",
            "synth",
            "--out",
            path(&data),
            "--n",
            &n.to_string(),
            "--size",
            "32",
            "--seed",
            "0",
        ],
    );
    let graph = relevance::graph::zoo::build("small_cnn", 2, 3).unwrap();
    let params = relevance::graph::init::reference_params(&graph).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&params, "");
    let weights = dir.join("net.safetensors");
    std::fs::write(&weights, to_bytes(&tensors, None).unwrap()).unwrap();
    std::fs::write(
        dir.join("net.card.json"),
        r#"{"arch": "small_cnn", "classes": ["benign", "malignant"], "input_size": [32, 32],
            "normalization": {"kind": "unit"}}"#,
    )
    .unwrap();
    (data, weights)
}

/// A path as a command-line word.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file below `dir` (relative path → bytes), leaving out the folders of a sharded run
/// (`shards/`, `slurm/`).
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if rel == Path::new("shards") || rel == Path::new("slurm") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts two run folders hold the same files with the same bytes; returns how many.
pub fn assert_same_files(expected: &Path, got: &Path) -> usize {
    let (a, b) = (files(expected), files(got));
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "file lists differ");
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{} differs:\n--- unsharded\n{}\n--- merged\n{}",
            name.display(),
            String::from_utf8_lossy(bytes)
                .chars()
                .take(3000)
                .collect::<String>(),
            String::from_utf8_lossy(&b[name])
                .chars()
                .take(3000)
                .collect::<String>()
        );
    }
    a.len()
}

/// The explain command line over `data` with `weights`, writing to `run` (relative).
pub fn explain_args(data: &Path, weights: &Path) -> Vec<String> {
    [
        "explain",
        "--model",
        path(weights),
        "--method",
        "saliency,grad-cam",
        "--out",
        "run",
        path(data),
    ]
    .map(String::from)
    .to_vec()
}

/// The faithfulness command line over all of `data` with `weights`, writing to `run`.
pub fn faithfulness_args(data: &Path, weights: &Path) -> Vec<String> {
    [
        "faithfulness",
        "--models",
        path(weights),
        "--data",
        path(data),
        "--split",
        "all",
        "--methods",
        "saliency,grad-cam,random",
        "--step",
        "0.1",
        "--no-progress",
        "--out",
        "run",
    ]
    .map(String::from)
    .to_vec()
}

/// `args` as `&str`s.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The stability command line over all of `data` with `weights`, writing to `run`.
pub fn stability_args(data: &Path, weights: &Path) -> Vec<String> {
    [
        "stability",
        "--models",
        path(weights),
        "--data",
        path(data),
        "--split",
        "all",
        "--methods",
        "saliency,random",
        "--no-progress",
        "--out",
        "run",
    ]
    .map(String::from)
    .to_vec()
}

/// Training a 3-seed small_cnn ensemble on `data` for one epoch, writing to `run`.
pub fn train_args(data: &Path) -> Vec<String> {
    [
        "train",
        "--data",
        path(data),
        "--arch",
        "small_cnn",
        "--epochs",
        "1",
        "--seeds",
        "0..3",
        "--no-progress",
        "--quiet",
        "--out",
        "run",
    ]
    .map(String::from)
    .to_vec()
}

/// A safetensors file as (header JSON, tensor bytes), its `__metadata__` strings parsed as JSON.
fn safetensors_parts(bytes: &[u8]) -> (serde_json::Value, &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    if let Some(meta) = header
        .get_mut("__metadata__")
        .and_then(|m| m.as_object_mut())
    {
        for v in meta.values_mut() {
            if let Some(text) = v.as_str() {
                *v = serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.into()));
            }
        }
    }
    (header, &bytes[8 + n..])
}

/// Asserts two training folders hold the same files with the same bytes, except the times
/// (keys with `second`: durations, images per second) in `model.train.json` and in the checkpoint's loop state, which differ
/// between any two runs; returns how many files.
pub fn assert_same_training(expected: &Path, got: &Path) -> usize {
    fn without_times(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.retain(|k, _| !k.contains("second"));
                map.values_mut().for_each(without_times);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(without_times),
            _ => {}
        }
    }
    let (a, b) = (files(expected), files(got));
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "file lists differ");
    for (name, bytes) in &a {
        if name.ends_with("checkpoint.safetensors") {
            let ((mut x, dx), (mut y, dy)) =
                (safetensors_parts(bytes), safetensors_parts(&b[name]));
            without_times(&mut x);
            without_times(&mut y);
            assert_eq!(x, y, "{}: header", name.display());
            assert!(dx == dy, "{}: tensors differ", name.display());
        } else if name.ends_with("model.train.json") {
            let mut x: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            let mut y: serde_json::Value = serde_json::from_slice(&b[name]).unwrap();
            without_times(&mut x);
            without_times(&mut y);
            assert_eq!(x, y, "{}", name.display());
        } else {
            assert!(bytes == &b[name], "{} differs", name.display());
        }
    }
    a.len()
}

/// A second and third small_cnn beside the fixture's (`init_params` with seeds 1 and 2, the same
/// card), so a study has an ensemble of three different members; returns their weights files.
pub fn more_members(dir: &Path) -> Vec<PathBuf> {
    use relevance::graph::import::safetensors::to_bytes;
    let graph = relevance::graph::zoo::build("small_cnn", 2, 3).unwrap();
    (1..=2)
        .map(|seed| {
            let params = relevance::graph::init::init_params(&graph, seed).unwrap();
            let tensors = relevance::train::checkpoint::params_to_tensors(&params, "");
            let weights = dir.join(format!("net{seed}.safetensors"));
            std::fs::write(&weights, to_bytes(&tensors, None).unwrap()).unwrap();
            std::fs::copy(
                dir.join("net.card.json"),
                dir.join(format!("net{seed}.card.json")),
            )
            .unwrap();
            weights
        })
        .collect()
}

/// Every image of `data` (recursively, sorted) as a CSV list `path,label` with the folder as
/// label, written to `dir/list.csv` with paths relative to `dir`; returns the list's path.
pub fn csv_list(dir: &Path, data: &Path) -> PathBuf {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "png")
                && !p.to_string_lossy().contains(".mask.")
                && !p.to_string_lossy().contains(".marker.")
            {
                out.push(p);
            }
        }
    }
    let mut images = Vec::new();
    walk(data, &mut images);
    images.sort();
    let mut text = String::from("path,label\n");
    for p in images {
        let label = p.parent().unwrap().file_name().unwrap().to_string_lossy();
        let rel = p.strip_prefix(dir).unwrap();
        text.push_str(&format!("{},{label}\n", rel.display()));
    }
    let list = dir.join("list.csv");
    std::fs::write(&list, text).unwrap();
    list
}
