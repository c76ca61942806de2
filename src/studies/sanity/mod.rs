//! `relevance sanity`: sanity checks of explanation methods over a data set (Adebayo, Gilmer,
//! Muelly, Goodfellow, Hardt & Kim 2018, "Sanity checks for saliency maps", NeurIPS; Sixt,
//! Granz & Landgraf 2020, "When explanations lie", ICML).
//!
//! Per model × method × image: the map of the original model is compared with the map after
//! each step of **cascading** model-parameter randomisation (output layer first, earlier steps
//! kept), after randomising each layer **independently**, and with the map for a **random other
//! class** ([`crate::metrics::randomisation`]: Spearman rank correlation, SSIM and top-k IoU, of
//! `|maps|` by default as Adebayo et al.'s Fig. 2 and Quantus' MPRT). A method whose mean
//! Spearman correlation stays at or above `threshold` (default 0.5) after every layer is
//! randomised does not depend on the model's parameters, and one that stays there for another
//! class does not depend on the class: both are flagged.
//!
//! Phases: select → maps and scores (per chunk, resumable: [`scores`]) → tables → figures
//! ([`figures`]) → summary. Outputs in `out/`: `sanity.json` ([`SanityRecord`]: curves with
//! bootstrap 95 % intervals, random logit, verdicts), `metrics.csv` (one row per model × method
//! × test × layer), `random_logit.csv`, `per_image.csv`, `summary.json`, `figures.json`, the
//! similarity curves `cascading.{png,svg}` and `independent.{png,svg}`, `random_logit.{png,svg}`
//! and `randomised_maps.png` (the first image's maps as layers are randomised, Fig. 2 style),
//! and `per_image/<model>/<method>/<stem>.json` (the resume unit).

pub mod figures;
pub mod scores;

use std::path::PathBuf;

use serde_json::{Value, json};

use super::toolkit::{
    ScoredRun, StudyImage, StudyInputs, StudyMethod, StudyModel, Summary, Table, TargetRule,
    load_models, method_options_json, nothing_to_note, num, per_image_dir, progress_bar, resume,
    write_csv,
};
use super::{StudyError, StudyOutcome};
use crate::graph::init::init_params;
use crate::metrics::randomisation::{Comparison, Similarities};
use crate::records::{
    MeanInterval, SanityCurve, SanityLogit, SanityRecord, SanityStep, SanityVerdict, write_record,
};
use scores::Row;

/// Options of the sanity study.
#[derive(Clone, Debug)]
pub struct SanityOptions {
    /// Models, data, images, methods (default [`DEFAULT_METHODS`], plus `random`: a control
    /// that ignores the model, always flagged), batch (default 16), output.
    pub inputs: StudyInputs,
    /// The class explained: predicted (default) or true.
    pub target: TargetRule,
    /// How maps are compared (default `|maps|`, top 10 %, Wang et al.'s SSIM).
    pub comparison: Comparison,
    /// Randomise BatchNorm layers too (default true, as Quantus).
    pub include_batchnorm: bool,
    /// Seed of the fresh parameters and of the random classes.
    pub seed: u64,
    /// Mean Spearman correlation at or above which a method is flagged (default 0.5).
    pub threshold: f64,
}

/// Methods checked when none are named.
pub const DEFAULT_METHODS: &[&str] = &[
    "saliency",
    "guided-backprop",
    "grad-cam",
    "lrp-epsilon-plus",
];

impl SanityOptions {
    /// Defaults for the given models, data and output.
    pub fn new(models: Vec<PathBuf>, data: PathBuf, out: PathBuf) -> Self {
        Self::with_inputs(StudyInputs::new(models, data, out, 16, DEFAULT_METHODS))
    }

    /// The study's options with its defaults on `inputs`.
    pub fn with_inputs(inputs: StudyInputs) -> Self {
        SanityOptions {
            inputs,
            target: TargetRule::Predicted,
            comparison: Comparison::default(),
            include_batchnorm: true,
            seed: 0,
            threshold: 0.5,
        }
    }
}

/// Runs the study; see the module documentation for what it writes.
pub fn run(opts: &SanityOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let models = load_models(&opts.inputs.models)?;
    run_with_models(opts, &models, progress)
}

/// [`run`] on models already loaded (`opts.inputs.models` is ignored).
pub fn run_with_models(
    opts: &SanityOptions,
    models: &[StudyModel],
    progress: bool,
) -> Result<StudyOutcome, StudyError> {
    if models.is_empty() {
        return Err(StudyError::Invalid("no models".into()));
    }
    if !(opts.threshold.is_finite() && (-1.0..=1.0).contains(&opts.threshold)) {
        return Err(StudyError::Invalid(format!(
            "the flag threshold must be a correlation in [-1, 1], got {}",
            opts.threshold
        )));
    }
    let ScoredRun {
        methods,
        images,
        rows,
        facts,
    } = opts.inputs.select_and_score(
        models,
        nothing_to_note,
        |m, name, method, images, rows| scores_of(opts, m, name, method, images, progress, rows),
    )?;
    let (computed, reused) = (facts.computed, facts.reused);
    let record = tables(opts, &rows, &facts)?;
    let mut all_figures = figures::curves(opts, &record, &facts)?;
    all_figures.push(figures::random_logit_boxes(opts, &rows, &facts)?);
    if let Some(first) = images.first() {
        all_figures.push(figures::randomised_maps(opts, &models[0], &methods, first)?);
    }
    super::toolkit::write_figures(&opts.inputs.out, &all_figures)?;
    let headline = headline(&record, &facts);
    summary(opts, &record, &facts, &headline, computed, reused)?;
    Ok(StudyOutcome {
        out: opts.inputs.out.clone(),
        headline,
    })
}

/// The resume key: everything the per-image numbers depend on.
fn key_of(opts: &SanityOptions, m: &StudyModel) -> String {
    format!(
        "{:?}|{}|{}|{}|{:?}|{}",
        opts.target,
        scores::describe(&opts.comparison),
        opts.include_batchnorm,
        randomisation_seed(opts.seed),
        opts.inputs.method_options,
        super::toolkit::weights_stamp(&m.model)
    )
}

/// Maps and scores of one model × method, reusing what an earlier run stored.
fn scores_of(
    opts: &SanityOptions,
    m: &StudyModel,
    name: &str,
    method: &StudyMethod,
    images: &[StudyImage],
    progress: bool,
    rows: &mut Vec<Row>,
) -> Result<(usize, usize), StudyError> {
    let dir = per_image_dir(&opts.inputs.out, &m.label, name)?;
    let key = key_of(opts, m);
    let (done, todo) = resume(&dir, images, |v| {
        scores::row_from_json(v, &key, &m.label, name)
    });
    rows.extend(done);
    let bar = progress_bar(images.len(), format!("{} · {name}", m.label), progress);
    bar.inc((images.len() - todo.len()) as u64);
    if !todo.is_empty() {
        let fresh = init_params(&m.model.graph, randomisation_seed(opts.seed))
            .map_err(crate::metrics::MetricError::from)?;
        for chunk in todo.chunks(opts.inputs.batch.max(1)) {
            let new = scores::evaluate_chunk(opts, m, name, method, &fresh, chunk, &dir, &key)?;
            bar.inc(new.len() as u64);
            rows.extend(new);
        }
    }
    bar.finish_and_clear();
    Ok((todo.len(), images.len() - todo.len()))
}

/// The seed the fresh parameters are drawn with: derived from `seed` rather than `seed` itself,
/// because training initialises a model of seed `s` with `init_params(graph, s)` — re-drawing
/// with the training seed would restore the model's own initial weights, which are not random
/// with respect to the trained ones (on a small CNN trained from seed 0, the maps after
/// "randomising" its last layer to its initial weights kept a Spearman correlation of 0.99).
pub fn randomisation_seed(seed: u64) -> u64 {
    crate::rng::Rng::derive(seed, "sanity-randomisation").next_u64()
}

/// Mean and 95 % percentile-bootstrap interval (2000 resamples, seed 0) of the finite values.
pub fn mean_interval(values: &[f64]) -> MeanInterval {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let ci =
        super::stats::bootstrap_mean_ci(&finite, 0.95, 2000, 0, super::stats::CiMethod::Percentile);
    MeanInterval {
        mean: ci.estimate,
        low: ci.low,
        high: ci.high,
    }
}

/// Per-layer statistics of one test over the rows of one model × method.
fn curve(sel: &[&Row], test: &str) -> Vec<SanityStep> {
    let steps = |r: &Row| -> Vec<(String, Similarities)> {
        if test == "cascading" {
            r.cascading.clone()
        } else {
            r.independent.clone()
        }
    };
    let Some(first) = sel.first() else {
        return Vec::new();
    };
    let layers: Vec<String> = steps(first).into_iter().map(|(l, _)| l).collect();
    layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let at: Vec<Similarities> = sel
                .iter()
                .filter_map(|r| steps(r).get(k).map(|s| s.1))
                .collect();
            let of =
                |f: fn(&Similarities) -> f64| mean_interval(&at.iter().map(f).collect::<Vec<_>>());
            SanityStep {
                layer: layer.clone(),
                n: at.len(),
                spearman: of(|s| s.spearman),
                ssim: of(|s| s.ssim),
                top_k_iou: of(|s| s.top_k_iou),
            }
        })
        .collect()
}

/// Tables: `sanity.json`, `metrics.csv`, `random_logit.csv`, `per_image.csv`.
fn tables(
    opts: &SanityOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<SanityRecord, StudyError> {
    let c = &opts.comparison;
    let mut record = SanityRecord::new(opts.threshold, c.abs, c.top_fraction);
    for model in &facts.models {
        for method in &facts.methods {
            let sel: Vec<&Row> = rows
                .iter()
                .filter(|r| &r.model == model && &r.method == method)
                .collect();
            for test in ["cascading", "independent"] {
                record.curves.push(SanityCurve {
                    model: model.clone(),
                    method: method.clone(),
                    test: test.into(),
                    steps: curve(&sel, test),
                });
            }
            let of = |f: fn(&Similarities) -> f64| {
                mean_interval(&sel.iter().map(|r| f(&r.logit.1)).collect::<Vec<_>>())
            };
            let logit = SanityLogit {
                model: model.clone(),
                method: method.clone(),
                n: sel.len(),
                spearman: of(|s| s.spearman),
                ssim: of(|s| s.ssim),
                top_k_iou: of(|s| s.top_k_iou),
            };
            let after_cascade = record
                .curves
                .iter()
                .rev()
                .find(|c| &c.model == model && &c.method == method && c.test == "cascading")
                .and_then(|c| c.steps.last())
                .map_or(f64::NAN, |s| s.spearman.mean);
            record.verdicts.push(SanityVerdict {
                model: model.clone(),
                method: method.clone(),
                after_cascade,
                random_logit: logit.spearman.mean,
                insensitive_to_model: after_cascade >= opts.threshold,
                insensitive_to_class: logit.spearman.mean >= opts.threshold,
            });
            record.random_logit.push(logit);
        }
    }
    write_record(&opts.inputs.out.join("sanity.json"), &record)
        .map_err(|e| StudyError::file(&e.path, e.message))?;
    metrics_csv(opts, &record)?;
    per_image_csv(opts, rows)?;
    Ok(record)
}

fn interval_cells(m: &MeanInterval) -> [String; 3] {
    [num(m.mean), num(m.low), num(m.high)]
}

fn metrics_csv(opts: &SanityOptions, record: &SanityRecord) -> Result<(), StudyError> {
    let mut table = Vec::new();
    for c in &record.curves {
        for (k, s) in c.steps.iter().enumerate() {
            let mut row = vec![
                c.model.clone(),
                c.method.clone(),
                c.test.clone(),
                (k + 1).to_string(),
                s.layer.clone(),
                s.n.to_string(),
            ];
            for m in [&s.spearman, &s.ssim, &s.top_k_iou] {
                row.extend(interval_cells(m));
            }
            table.push(row);
        }
    }
    let header = [
        "model",
        "method",
        "test",
        "step",
        "layer",
        "n",
        "spearman_mean",
        "spearman_low",
        "spearman_high",
        "ssim_mean",
        "ssim_low",
        "ssim_high",
        "top_k_iou_mean",
        "top_k_iou_low",
        "top_k_iou_high",
    ];
    write_csv(&opts.inputs.out.join("metrics.csv"), &header, &table)?;
    let logit: Vec<Vec<String>> = record
        .random_logit
        .iter()
        .map(|l| {
            let mut row = vec![l.model.clone(), l.method.clone(), l.n.to_string()];
            for m in [&l.spearman, &l.ssim, &l.top_k_iou] {
                row.extend(interval_cells(m));
            }
            row
        })
        .collect();
    let mut header: Vec<&str> = vec!["model", "method", "n"];
    header.extend(&[
        "spearman_mean",
        "spearman_low",
        "spearman_high",
        "ssim_mean",
        "ssim_low",
        "ssim_high",
        "top_k_iou_mean",
        "top_k_iou_low",
        "top_k_iou_high",
    ]);
    write_csv(&opts.inputs.out.join("random_logit.csv"), &header, &logit)
}

fn per_image_csv(opts: &SanityOptions, rows: &[Row]) -> Result<(), StudyError> {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let last = |steps: &[(String, Similarities)]| {
                steps.last().map_or(String::new(), |s| num(s.1.spearman))
            };
            vec![
                r.model.clone(),
                r.method.clone(),
                r.image.clone(),
                r.class.to_string(),
                last(&r.cascading),
                r.logit.0.to_string(),
                num(r.logit.1.spearman),
            ]
        })
        .collect();
    write_csv(
        &opts.inputs.out.join("per_image.csv"),
        &[
            "model",
            "method",
            "image",
            "class",
            "spearman_after_cascade",
            "other_class",
            "spearman_random_logit",
        ],
        &table,
    )
}

fn cell(m: &MeanInterval) -> String {
    if m.low.is_finite() {
        format!("{:.3} [{:.3}, {:.3}]", m.mean, m.low, m.high)
    } else {
        format!("{:.3}", m.mean)
    }
}

/// The headline: which methods are flagged, and by which check.
fn headline(record: &SanityRecord, facts: &super::toolkit::RunFacts) -> Vec<String> {
    let name = |v: &SanityVerdict| {
        if facts.models.len() > 1 {
            format!("{} on {}", v.method, v.model)
        } else {
            v.method.clone()
        }
    };
    let model_flags: Vec<String> = record
        .verdicts
        .iter()
        .filter(|v| v.insensitive_to_model)
        .map(name)
        .collect();
    let class_flags: Vec<String> = record
        .verdicts
        .iter()
        .filter(|v| v.insensitive_to_class)
        .map(name)
        .collect();
    let mut out = Vec::new();
    out.push(if model_flags.is_empty() {
        format!(
            "Every method's maps change when the model's parameters are randomised (mean Spearman \
             of |maps| below {} after every layer is re-drawn).",
            record.threshold
        )
    } else {
        format!(
            "Flagged — maps stay similar after every layer is randomised (mean Spearman ≥ {}): {}.",
            record.threshold,
            model_flags.join(", ")
        )
    });
    if !class_flags.is_empty() {
        out.push(format!(
            "Flagged — maps for a random other class stay similar (mean Spearman ≥ {}): {}.",
            record.threshold,
            class_flags.join(", ")
        ));
    }
    out.push(format!(
        "{} images ({}), {} model(s); {} compared by Spearman, SSIM and top-{}% IoU.",
        facts.images,
        facts.split,
        facts.models.len(),
        if record.abs { "|maps|" } else { "signed maps" },
        record.top_fraction * 100.0
    ));
    out
}

/// `summary.json`: the table of verdicts.
fn summary(
    opts: &SanityOptions,
    record: &SanityRecord,
    facts: &super::toolkit::RunFacts,
    headline: &[String],
    computed: usize,
    reused: usize,
) -> Result<(), StudyError> {
    let cascade_end = |v: &SanityVerdict| -> String {
        record
            .curves
            .iter()
            .find(|c| c.model == v.model && c.method == v.method && c.test == "cascading")
            .and_then(|c| c.steps.last())
            .map_or("–".into(), |s| cell(&s.spearman))
    };
    let independent_min = |v: &SanityVerdict| -> String {
        record
            .curves
            .iter()
            .find(|c| c.model == v.model && c.method == v.method && c.test == "independent")
            .and_then(|c| {
                c.steps
                    .iter()
                    .min_by(|a, b| a.spearman.mean.total_cmp(&b.spearman.mean))
            })
            .map_or("–".into(), |s| {
                format!("{:.3} ({})", s.spearman.mean, s.layer)
            })
    };
    let rows: Vec<Vec<Value>> = record
        .verdicts
        .iter()
        .zip(&record.random_logit)
        .map(|(v, l)| {
            let flags: Vec<&str> = [
                (v.insensitive_to_model, "model"),
                (v.insensitive_to_class, "class"),
            ]
            .iter()
            .filter(|(f, _)| *f)
            .map(|(_, n)| *n)
            .collect();
            vec![
                json!(v.model),
                json!(v.method),
                json!(cascade_end(v)),
                json!(independent_min(v)),
                json!(cell(&l.spearman)),
                json!(if flags.is_empty() {
                    "passes".to_string()
                } else {
                    format!("flagged: ignores the {}", flags.join(" and the "))
                }),
            ]
        })
        .collect();
    let summary = Summary {
        study: "sanity".into(),
        command: opts.inputs.command.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        conventions: json!({
            "tests": "cascading (output layer first, earlier layers kept randomised) and independent model-parameter randomisation (Adebayo et al. 2018); random logit (Sixt et al. 2020)",
            "randomised layers": if opts.include_batchnorm { "convolutions, linear layers and BatchNorm (re-drawn from their initialisers; BatchNorm as a fresh layer)" } else { "convolutions and linear layers (re-drawn from their initialisers)" },
            "compared": if opts.comparison.abs { "|maps| (as drawn: signed maps summed over channels, sensitivity maps max_c |v|, CAMs as they are)" } else { "signed maps as drawn" },
            "similarities": format!("Spearman rank correlation, SSIM ({:?}), IoU of the top {}% pixels", opts.comparison.ssim, opts.comparison.top_fraction * 100.0),
            "intervals": "95 % percentile bootstrap of the mean over images (2000 resamples, seed 0)",
            "flag": format!("mean Spearman ≥ {} after full cascading randomisation (ignores the model) or for a random other class (ignores the class)", opts.threshold),
            "target": opts.target,
            "seed": opts.seed,
            "split": facts.split,
            "images": facts.images,
            "models": facts.models,
            "methods": facts.methods,
            "method_options": method_options_json(&opts.inputs.method_options),
        }),
        headline: headline.to_vec(),
        table: Table {
            columns: vec![
                "model".into(),
                "method".into(),
                "Spearman after full cascade ↓ (mean [95 % CI])".into(),
                "lowest Spearman, one layer randomised (layer)".into(),
                "Spearman with a random class's map ↓ (mean [95 % CI])".into(),
                "verdict".into(),
            ],
            rows,
        },
        tests: Table::default(),
        work: json!({"computed": computed, "reused": reused}),
    };
    summary.write(&opts.inputs.out)
}
