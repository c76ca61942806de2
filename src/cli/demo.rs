//! `relevance demo`: the whole workbench on the built-in synthetic data, with nothing but the
//! binary. Synthetic lesions with a confounder tag → a small ensemble of `small_cnn` that learns
//! the shortcut, and a clean model without it → explanations of test images with one method of
//! each family → CRP concepts → the four studies → `report.html`.
//!
//! Every step is an ordinary `relevance` command line, parsed and run by the same code as on the
//! terminal, and recorded in `run.json`; a step whose output already exists is skipped, so a
//! killed demo continues where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::graph::{LoadOptions, Model, Op};
use crate::records::{RunRecord, RunStep, SCHEMA_VERSION, read_record, write_record};

/// Arguments of `relevance demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "relevance-demo")]
    pub out: PathBuf,
    /// A smaller, faster run (fewer and smaller images, fewer models and epochs).
    #[arg(long)]
    pub quick: bool,
}

/// Sizes of one demo mode.
struct Plan {
    mode: &'static str,
    images: usize,
    size: usize,
    seeds: usize,
    epochs: usize,
    explain_images: usize,
    study_images: usize,
    atlas: bool,
}

impl Plan {
    fn of(quick: bool) -> Plan {
        if quick {
            Plan {
                mode: "quick",
                images: 600,
                size: 48,
                seeds: 3,
                epochs: 4,
                explain_images: 4,
                study_images: 12,
                atlas: false,
            }
        } else {
            Plan {
                mode: "default",
                images: 2000,
                size: 64,
                seeds: 5,
                epochs: 5,
                explain_images: 8,
                study_images: 40,
                atlas: true,
            }
        }
    }
}

/// One command line of the demo and the file whose presence means it is done.
struct Step {
    name: &'static str,
    argv: Vec<String>,
    done_when: PathBuf,
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// Quotes an argument for a POSIX shell when it needs it, so recorded commands can be pasted.
fn shell_quote(a: &str) -> String {
    let plain = a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c));
    if plain && !a.is_empty() {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

fn command_line(argv: &[String]) -> String {
    std::iter::once("relevance".to_string())
        .chain(argv.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn words(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Test images to explain: tagged and untagged images of both classes, interleaved, so the grid
/// shows where each model looks when the confounder is present and when it is not.
fn pick_test_images(data: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let mut buckets: Vec<Vec<PathBuf>> = vec![Vec::new(); 4];
    for (ci, class) in crate::data::synth::CLASSES.iter().enumerate() {
        let dir = data.join("test").join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("{}: cannot list test images", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string());
                name.is_some_and(|n| {
                    n.ends_with(".png") && !n.ends_with(".mask.png") && !n.ends_with(".marker.png")
                })
            })
            .collect();
        files.sort();
        for f in files {
            let tagged = f.with_extension("marker.png").is_file();
            buckets[ci * 2 + usize::from(!tagged)].push(f);
        }
    }
    let mut picked = Vec::new();
    let mut i = 0;
    while picked.len() < n && buckets.iter().any(|b| i < b.len()) {
        for b in &buckets {
            if picked.len() < n
                && let Some(f) = b.get(i)
            {
                picked.push(f.clone());
            }
        }
        i += 1;
    }
    if picked.is_empty() {
        bail!("{}: no test images", data.display());
    }
    Ok(picked)
}

/// Name of the last convolution of a model: the layer whose channels CRP ranks as concepts.
fn last_conv(weights: &Path) -> Result<String> {
    let model = Model::load(weights, &LoadOptions::default())?;
    model
        .graph
        .nodes
        .iter()
        .rev()
        .find(|n| matches!(n.op, Op::Conv2d(_)))
        .map(|n| n.name.clone())
        .with_context(|| format!("{}: model has no convolution", weights.display()))
}

fn write_run_record(out: &Path, record: &RunRecord) -> Result<()> {
    Ok(write_record(&out.join("run.json"), record)?)
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`.
fn now() -> String {
    crate::records::utc_now()
}

/// Runs the demo.
///
/// Phases: check the output folder, start `run.json`, make the data and train the models,
/// explain them and run the studies, then build the report and finish `run.json`.
pub fn run(args: DemoArgs) -> Result<()> {
    let plan = Plan::of(args.quick);
    let out = args.out.clone();
    prepare_out(&out, &plan)?;
    let started = Instant::now();
    let mut record = start_record(&plan);
    write_run_record(&out, &record)?;

    let paths = DemoPaths::new(&out);
    let mut steps = data_steps(&paths, &plan);
    steps.extend(training_steps(&paths, &plan));
    run_steps(&out, &mut record, &steps)?;

    // These need the trained models and the written test images, so they are planned only now.
    let steps = analysis_steps(&paths, &plan)?;
    run_steps(&out, &mut record, &steps)?;

    finish_report(&out, &mut record, started)
}

/// Creates `out` and refuses a folder that holds a run of the other demo mode (resuming it
/// would mix the two).
fn prepare_out(out: &Path, plan: &Plan) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create output folder", out.display()))?;
    let record_path = out.join("run.json");
    if record_path.is_file() {
        let old: RunRecord = read_record(&record_path)?;
        if let Some(mode) = old.mode.filter(|m| m != plan.mode) {
            bail!(
                "{} holds a {mode} demo run; give another --out or delete it to run the {} demo",
                out.display(),
                plan.mode
            );
        }
    }
    Ok(())
}

/// The run record as written at the start: tool, version, mode, start time and machine.
fn start_record(plan: &Plan) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        tool: "relevance demo".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        mode: Some(plan.mode.to_string()),
        started: Some(now()),
        machine: Some(format!(
            "{} {}, {} logical CPUs",
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )),
        ..RunRecord::default()
    }
}

/// Where the demo's data sets and models go inside its output folder.
struct DemoPaths {
    out: PathBuf,
    /// Synthetic data with the confounder tag.
    data: PathBuf,
    /// The same lesions without the tag.
    data_clean: PathBuf,
    /// Ensemble trained on `data`.
    shortcut: PathBuf,
    /// Model trained on `data_clean`.
    clean: PathBuf,
}

impl DemoPaths {
    /// The layout inside `out`.
    fn new(out: &Path) -> DemoPaths {
        DemoPaths {
            out: out.to_path_buf(),
            data: out.join("data"),
            data_clean: out.join("data-clean"),
            shortcut: out.join("models").join("shortcut"),
            clean: out.join("models").join("clean"),
        }
    }

    /// Weights of the first (seed 0) model of `models`.
    fn seed0_model(models: &Path) -> PathBuf {
        models.join("seed-0").join("model.safetensors")
    }
}

/// The two synthetic data sets: with the confounder tag on every malignant training image,
/// and the same lesions (same seed) without it.
fn data_steps(paths: &DemoPaths, plan: &Plan) -> Vec<Step> {
    let (n, size) = (plan.images.to_string(), plan.size.to_string());
    vec![
        Step {
            name: "synthetic data with a confounder tag",
            argv: [
                words(&["data", "synth", "--out"]),
                vec![path_arg(&paths.data)],
                words(&[
                    "--n",
                    &n,
                    "--size",
                    &size,
                    "--confounder",
                    "1.0",
                    "--seed",
                    "0",
                ]),
            ]
            .concat(),
            done_when: paths.data.join("dataset.json"),
        },
        Step {
            name: "the same lesions without the tag",
            argv: [
                words(&["data", "synth", "--out"]),
                vec![path_arg(&paths.data_clean)],
                words(&["--n", &n, "--size", &size, "--seed", "0"]),
            ]
            .concat(),
            done_when: paths.data_clean.join("dataset.json"),
        },
    ]
}

/// The models: an ensemble on the confounded data and one clean model.
fn training_steps(paths: &DemoPaths, plan: &Plan) -> Vec<Step> {
    let (seeds, epochs) = (format!("0..{}", plan.seeds), plan.epochs.to_string());
    vec![
        Step {
            name: "ensemble trained on the confounded data",
            argv: [
                words(&["train", "--data"]),
                vec![path_arg(&paths.data)],
                words(&[
                    "--arch",
                    "small_cnn",
                    "--epochs",
                    &epochs,
                    "--seeds",
                    &seeds,
                ]),
                words(&["--no-progress", "--quiet", "--out"]),
                vec![path_arg(&paths.shortcut)],
            ]
            .concat(),
            done_when: paths.shortcut.join("ensemble.json"),
        },
        Step {
            name: "clean model",
            argv: [
                words(&["train", "--data"]),
                vec![path_arg(&paths.data_clean)],
                words(&["--arch", "small_cnn", "--epochs", &epochs, "--seeds", "0"]),
                words(&["--no-progress", "--quiet", "--out"]),
                vec![path_arg(&paths.clean)],
            ]
            .concat(),
            done_when: paths.clean.join("ensemble.json"),
        },
    ]
}

/// Everything after training: explanations of both models, CRP concepts (and, in the
/// default mode, the atlas) of the shortcut model, and the studies.
fn analysis_steps(paths: &DemoPaths, plan: &Plan) -> Result<Vec<Step>> {
    let test_images = pick_test_images(&paths.data, plan.explain_images)?;
    let shortcut_model = DemoPaths::seed0_model(&paths.shortcut);
    let clean_model = DemoPaths::seed0_model(&paths.clean);
    let layer = last_conv(&shortcut_model)?;
    let images: Vec<String> = test_images.iter().map(|p| path_arg(p)).collect();
    let mut steps = explain_steps(&paths.out, &shortcut_model, &clean_model, &images);
    steps.extend(concept_steps(paths, plan, &shortcut_model, &layer, &images));
    steps.extend(study_steps(
        &paths.out,
        plan,
        &paths.data,
        &paths.shortcut,
        &paths.clean,
    ));
    Ok(steps)
}

/// Heatmaps of four methods on `images` for the shortcut and the clean model.
fn explain_steps(
    out: &Path,
    shortcut_model: &Path,
    clean_model: &Path,
    images: &[String],
) -> Vec<Step> {
    let methods = "grad-cam,guided-grad-cam,integrated-gradients,lrp-epsilon-plus-flat";
    let mut steps = Vec::new();
    for (name, model, folder) in [
        ("explain the shortcut model", shortcut_model, "shortcut"),
        ("explain the clean model", clean_model, "clean"),
    ] {
        let dir = out.join("explain").join(folder);
        steps.push(Step {
            name,
            argv: [
                words(&["explain", "--model"]),
                vec![path_arg(model)],
                words(&["--method", methods, "--out"]),
                vec![path_arg(&dir)],
                images.to_vec(),
            ]
            .concat(),
            done_when: dir.join("explain.json"),
        });
    }
    steps
}

/// CRP on the shortcut model's last convolution `layer`: the top concepts of `images`, and
/// with `plan.atlas` a concept atlas over all test images.
fn concept_steps(
    paths: &DemoPaths,
    plan: &Plan,
    shortcut_model: &Path,
    layer: &str,
    images: &[String],
) -> Vec<Step> {
    let concepts = paths.out.join("concepts").join("shortcut");
    let mut steps = vec![Step {
        name: "CRP: top concepts of the last convolution",
        argv: [
            words(&["concepts", "--model"]),
            vec![path_arg(shortcut_model)],
            words(&["--layer", layer, "--top", "4", "--quiet", "--out"]),
            vec![path_arg(&concepts)],
            images.to_vec(),
        ]
        .concat(),
        done_when: concepts.join("concepts.json"),
    }];
    if plan.atlas {
        let atlas = paths.out.join("atlas").join("shortcut");
        steps.push(Step {
            name: "CRP: concept atlas over the test images",
            argv: [
                words(&["atlas", "--model"]),
                vec![path_arg(shortcut_model)],
                words(&["--layer", layer, "--top-k", "4", "--data"]),
                vec![path_arg(&paths.data.join("test"))],
                words(&["--out"]),
                vec![path_arg(&atlas)],
            ]
            .concat(),
            done_when: atlas.join("atlas.json"),
        });
    }
    steps
}

/// Builds the report, records its step and the total time in `run.json`, then rebuilds the
/// report so that it shows the total.
fn finish_report(out: &Path, record: &mut RunRecord, started: Instant) -> Result<()> {
    let t = Instant::now();
    let report = crate::report::build::write_report(out, None)?;
    push_step(
        record,
        "report",
        &command_line(&[String::from("report"), path_arg(out)]),
        t.elapsed().as_secs_f64(),
        false,
    );
    record.finished = Some(now());
    record.seconds = Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    write_run_record(out, record)?;
    // The record now holds the total time; rebuild so the report shows it.
    crate::report::build::write_report(out, None)?;
    eprintln!(
        "demo finished in {:.0} s; open {}",
        started.elapsed().as_secs_f64(),
        report.display()
    );
    Ok(())
}

/// The four studies: faithfulness and stability of one model of each kind, variability over
/// the ensemble, and a comparison of methods and models against the lesion and tag masks.
fn study_steps(out: &Path, plan: &Plan, data: &Path, shortcut: &Path, clean: &Path) -> Vec<Step> {
    let studies = out.join("studies");
    let limit = plan.study_images.to_string();
    let pair = vec![
        path_arg(&shortcut.join("seed-0")),
        path_arg(&clean.join("seed-0")),
    ];
    let common = |study: &str, models: Vec<String>, methods: &str| -> Vec<String> {
        [
            vec![study.to_string(), "--models".to_string()],
            models,
            words(&["--data"]),
            vec![path_arg(data)],
            words(&["--split", "test", "--limit", &limit, "--methods", methods]),
            words(&["--no-progress", "--out"]),
            vec![path_arg(&studies.join(study))],
        ]
        .concat()
    };
    vec![
        Step {
            name: "faithfulness study",
            argv: common(
                "faithfulness",
                pair.clone(),
                "grad-cam,integrated-gradients,lrp-epsilon-plus-flat",
            ),
            done_when: studies.join("faithfulness").join("summary.json"),
        },
        Step {
            name: "stability study",
            argv: common("stability", pair.clone(), "grad-cam,lrp-epsilon-plus-flat"),
            done_when: studies.join("stability").join("summary.json"),
        },
        Step {
            name: "ensemble variability study",
            argv: common("variability", vec![path_arg(shortcut)], "grad-cam"),
            done_when: studies.join("variability").join("summary.json"),
        },
        Step {
            name: "method and model comparison",
            argv: common(
                "compare",
                pair,
                "grad-cam,guided-grad-cam,integrated-gradients,lrp-epsilon-plus-flat",
            ),
            done_when: studies.join("compare").join("summary.json"),
        },
    ]
}

fn push_step(record: &mut RunRecord, name: &str, command: &str, seconds: f64, skipped: bool) {
    record.steps.push(RunStep {
        name: name.to_string(),
        command: command.to_string(),
        seconds: (seconds * 10.0).round() / 10.0,
        skipped,
    });
}

fn run_steps(out: &Path, record: &mut RunRecord, steps: &[Step]) -> Result<()> {
    for step in steps {
        let command = command_line(&step.argv);
        if step.done_when.is_file() {
            eprintln!("== {} (already done, skipped)", step.name);
            push_step(record, step.name, &command, 0.0, true);
            continue;
        }
        eprintln!("== {}\n   {command}", step.name);
        let t = Instant::now();
        super::run_args(&step.argv).with_context(|| format!("demo step '{}'", step.name))?;
        push_step(
            record,
            step.name,
            &command,
            t.elapsed().as_secs_f64(),
            false,
        );
        write_run_record(out, record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::records::civil_from_days;

    #[test]
    fn days_to_dates_by_hand() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2000-03-01 is day 11 017 (30 years incl. 7 leap days, plus Jan and Feb 2000).
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
