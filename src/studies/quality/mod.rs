//! `relevance quality`: the map-quality metrics of [`crate::metrics`] per model × method over a
//! data set, each with the convention that reproduces Quantus 0.6 stated in `summary.json`.
//!
//! Per image (the map as `relevance explain` draws it, for the predicted or the true class):
//!
//! - **checkerboard score** ([`crate::metrics::checkerboard_score`]: the share of spectral energy
//!   at the stride-2 frequencies), its **white-noise reference** at that map size
//!   ([`scores::checkerboard_noise_reference`]: noise with the map's mean and variance; zero-mean
//!   noise scores `(H + W − 1)/(H·W)`) and their ratio (about 1 for a map as checkered as noise);
//! - **sparseness** (Gini of `|R| + 1e-7`, Chalasani et al. 2020) and **complexity** (entropy of
//!   `|R|/Σ|R|` with `1e-12` in the log, Bhatt et al. 2020) — Quantus' `Sparseness`,
//!   `Complexity` (`abs=True`);
//! - **pixel flipping** and **region perturbation** AOPC, MoRF, to the image minimum (Quantus'
//!   `"black"`), logits ([`crate::metrics::perturbation`]);
//! - **faithfulness correlation** (Bhatt et al. 2020; Quantus' defaults: 100 runs, subsets of
//!   224 pixels, `"black"`, logits);
//! - **max- and avg-sensitivity** (Yeh et al. 2019; relative to `‖Φ(x)‖` as Quantus, uniform
//!   noise in the L∞ ball of radius 5 % of the image's range, 20 draws).
//!
//! Phases: select → maps and scores (per chunk, resumable: [`scores`]) → tables → figures
//! ([`figures`]) → summary. Outputs in `out/`: `quality.json` ([`QualityRecord`]: mean and
//! bootstrap 95 % interval per model × method × metric), `metrics.csv` (the same as a table),
//! `per_image.csv`, `method_tests.csv` and, with several models, `model_tests.csv` (paired tests
//! on each metric of the table, [`super::paired`]; also the summary's tests table),
//! `summary.json`, `figures.json`, box plots `quality_<metric>.{png,svg}`, and
//! `per_image/<model>/<method>/<stem>.json` (the resume unit; `--shard` and `relevance merge`
//! gather them).

pub mod figures;
pub mod scores;

use std::path::PathBuf;

use serde_json::{Value, json};

use super::toolkit::{
    RunFacts, ScoredRun, StudyImage, StudyInputs, StudyMethod, StudyModel, Summary, Table,
    TargetRule, load_models, method_options_json, nothing_to_note, num, per_image_dir,
    progress_bar, resume, write_csv,
};
use super::{StudyError, StudyOutcome, paired};
use crate::records::{MeanInterval, QualityEntry, QualityRecord, write_record};
use scores::{Metric, Row};

/// Options of the quality study.
#[derive(Clone, Debug)]
pub struct QualityOptions {
    /// Models, data, images, methods (default [`DEFAULT_METHODS`], plus `random`: uniform
    /// noise maps, the floor, and the checkerboard's noise reference in practice), batch
    /// (images per pass, and perturbed images per forward pass of the metrics; default 16),
    /// output.
    pub inputs: StudyInputs,
    /// The class explained and followed: predicted (default) or true.
    pub target: TargetRule,
    /// Pixels flipped per step; 0 (default): 1 % of the pixels, rounded up.
    pub pixels_per_step: usize,
    /// Side of region perturbation's patches (default 8, Quantus).
    pub region_patch: usize,
    /// Patches perturbed (default 100, Quantus; fewer when the grid is smaller).
    pub regions: usize,
    /// Random subsets of faithfulness correlation (default 100, Quantus).
    pub faithfulness_runs: usize,
    /// Pixels per subset; `None`: 224 (Quantus), or a quarter of the pixels on maps of fewer
    /// than 896 pixels.
    pub subset_size: Option<usize>,
    /// Noise draws of the sensitivity estimate (default 20; Quantus 200).
    pub sensitivity_samples: usize,
    /// Noise radius as a fraction of the image's value range (default 0.05).
    pub sensitivity_radius: f32,
    /// Seed of the subsets and the noise (combined with each image's key).
    pub seed: u64,
}

/// Methods scored when none are named.
pub const DEFAULT_METHODS: &[&str] = &["saliency", "grad-cam", "lrp-epsilon-plus", "random"];

impl QualityOptions {
    /// Defaults for the given models, data and output.
    pub fn new(models: Vec<PathBuf>, data: PathBuf, out: PathBuf) -> Self {
        Self::with_inputs(StudyInputs::new(models, data, out, 16, DEFAULT_METHODS))
    }

    /// The study's options with its defaults on `inputs`.
    pub fn with_inputs(inputs: StudyInputs) -> Self {
        QualityOptions {
            inputs,
            target: TargetRule::Predicted,
            pixels_per_step: 0,
            region_patch: 8,
            regions: 100,
            faithfulness_runs: 100,
            subset_size: None,
            sensitivity_samples: 20,
            sensitivity_radius: 0.05,
            seed: 0,
        }
    }
}

/// Runs the study; see the module documentation for what it writes.
pub fn run(opts: &QualityOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let models = load_models(&opts.inputs.models)?;
    run_with_models(opts, &models, progress)
}

/// [`run`] on models already loaded (`opts.inputs.models` is ignored).
pub fn run_with_models(
    opts: &QualityOptions,
    models: &[StudyModel],
    progress: bool,
) -> Result<StudyOutcome, StudyError> {
    check_options(opts, models)?;
    let ScoredRun { rows, facts, .. } = opts.inputs.select_and_score(
        models,
        nothing_to_note,
        |m, name, method, images, rows| scores_of(opts, m, name, method, images, progress, rows),
    )?;
    let record = tables(opts, &rows, &facts)?;
    let (tests, findings) = paired_tests(opts, &rows, &facts)?;
    let figures = figures::boxes(opts, &rows, &facts)?;
    super::toolkit::write_figures(&opts.inputs.out, &figures)?;
    let mut headline = headline(&record, &facts);
    headline.extend(findings);
    summary(opts, &record, &facts, &headline, tests)?;
    Ok(StudyOutcome {
        out: opts.inputs.out.clone(),
        headline,
    })
}

/// Options that cannot work.
fn check_options(opts: &QualityOptions, models: &[StudyModel]) -> Result<(), StudyError> {
    if models.is_empty() {
        return Err(StudyError::Invalid("no models".into()));
    }
    let bad = |what: &str| Err(StudyError::Invalid(what.into()));
    if opts.region_patch == 0 || opts.regions == 0 {
        return bad("region perturbation needs a patch side and a region count of at least 1");
    }
    if opts.faithfulness_runs < 2 {
        return bad("faithfulness correlation needs at least 2 runs");
    }
    if opts.subset_size == Some(0) {
        return bad("the faithfulness subset size must be at least 1 pixel");
    }
    if opts.sensitivity_samples == 0 {
        return bad("sensitivity needs at least 1 noise draw");
    }
    if !(opts.sensitivity_radius.is_finite() && opts.sensitivity_radius > 0.0) {
        return bad("the sensitivity radius must be a positive fraction of the image's range");
    }
    Ok(())
}

/// The resume key: everything the per-image numbers depend on.
fn key_of(opts: &QualityOptions, m: &StudyModel) -> String {
    format!(
        "{:?}|{}|{}|{}|{}|{:?}|{}|{}|{}|{:?}|{}",
        opts.target,
        opts.pixels_per_step,
        opts.region_patch,
        opts.regions,
        opts.faithfulness_runs,
        opts.subset_size,
        opts.sensitivity_samples,
        opts.sensitivity_radius,
        opts.seed,
        opts.inputs.method_options,
        super::toolkit::weights_stamp(&m.model)
    )
}

/// Maps and scores of one model × method, reusing what an earlier run stored.
fn scores_of(
    opts: &QualityOptions,
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
        let prepared = method.prepare(&m.model)?;
        for chunk in todo.chunks(opts.inputs.batch.max(1)) {
            let new = scores::evaluate_chunk(opts, m, name, &prepared, chunk, &dir, &key)?;
            bar.inc(new.len() as u64);
            rows.extend(new);
        }
    }
    bar.finish_and_clear();
    Ok((todo.len(), images.len() - todo.len()))
}

/// Mean and 95 % percentile-bootstrap interval (2000 resamples, seed 0) of the finite values.
pub fn mean_interval(values: &[f64]) -> MeanInterval {
    super::sanity::mean_interval(values)
}

/// The rows of one model × method, in image order.
fn rows_of<'a>(rows: &'a [Row], model: &str, method: &str) -> Vec<&'a Row> {
    rows.iter()
        .filter(|r| r.model == model && r.method == method)
        .collect()
}

/// Tables: `quality.json`, `metrics.csv`, `per_image.csv`.
fn tables(
    opts: &QualityOptions,
    rows: &[Row],
    facts: &RunFacts,
) -> Result<QualityRecord, StudyError> {
    let mut record = QualityRecord::new();
    for model in &facts.models {
        for method in &facts.methods {
            let sel = rows_of(rows, model, method);
            let metrics = Metric::ALL
                .iter()
                .enumerate()
                .map(|(k, m)| {
                    let values: Vec<f64> = sel.iter().map(|r| r.values[k]).collect();
                    (m.name().to_string(), mean_interval(&values))
                })
                .collect();
            record.entries.push(QualityEntry {
                model: model.clone(),
                method: method.clone(),
                n: sel.len(),
                metrics,
            });
        }
    }
    write_record(&opts.inputs.out.join("quality.json"), &record)
        .map_err(|e| StudyError::file(&e.path, e.message))?;
    metrics_csv(opts, &record)?;
    per_image_csv(opts, rows)?;
    Ok(record)
}

/// The metrics the summary's table shows (the raw checkerboard score and its noise reference
/// stay in `metrics.csv`); also the measures of the paired tests.
fn shown_metrics() -> Vec<Metric> {
    Metric::ALL
        .into_iter()
        .filter(|&m| m != Metric::CheckerboardNoise && m != Metric::Checkerboard)
        .collect()
}

/// `method_tests.csv` (every pair of methods under each model) and, with several models,
/// `model_tests.csv` (every pair of models under each method), each on every shown metric,
/// paired by image ([`super::paired`]); returns the summary's tests rows and the model finding.
fn paired_tests(
    opts: &QualityOptions,
    rows: &[Row],
    facts: &RunFacts,
) -> Result<(Vec<Vec<Value>>, Vec<String>), StudyError> {
    let shown = shown_metrics();
    let names: Vec<&str> = shown.iter().map(|m| m.name()).collect();
    let column = |m: Metric| Metric::ALL.iter().position(|&x| x == m).unwrap_or(0);
    let scores_of = |k: usize| -> Vec<paired::Scored> {
        let at = column(shown[k]);
        rows.iter()
            .map(|r| paired::Scored {
                model: &r.model,
                method: &r.method,
                image: &r.image,
                value: r.values[at],
            })
            .collect()
    };
    paired::write_tests(&opts.inputs.out, &names, scores_of, facts)
}

fn metrics_csv(opts: &QualityOptions, record: &QualityRecord) -> Result<(), StudyError> {
    let table: Vec<Vec<String>> = record
        .entries
        .iter()
        .map(|e| {
            let mut row = vec![e.model.clone(), e.method.clone(), e.n.to_string()];
            for (_, m) in &e.metrics {
                row.extend([num(m.mean), num(m.low), num(m.high)]);
            }
            row
        })
        .collect();
    let names: Vec<String> = Metric::ALL
        .iter()
        .flat_map(|m| ["mean", "low", "high"].map(|s| format!("{}_{s}", m.name())))
        .collect();
    let mut header: Vec<&str> = vec!["model", "method", "n"];
    header.extend(names.iter().map(String::as_str));
    write_csv(&opts.inputs.out.join("metrics.csv"), &header, &table)
}

fn per_image_csv(opts: &QualityOptions, rows: &[Row]) -> Result<(), StudyError> {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.model.clone(),
                r.method.clone(),
                r.image.clone(),
                r.label.clone(),
                r.class.to_string(),
            ];
            row.extend(r.values.iter().map(|&v| num(v)));
            row
        })
        .collect();
    let mut header: Vec<&str> = vec!["model", "method", "image", "label", "class"];
    header.extend(Metric::ALL.iter().map(|m| m.name()));
    write_csv(&opts.inputs.out.join("per_image.csv"), &header, &table)
}

fn cell(m: &MeanInterval) -> String {
    if !m.mean.is_finite() {
        "–".into()
    } else if m.low.is_finite() {
        format!("{:.3} [{:.3}, {:.3}]", m.mean, m.low, m.high)
    } else {
        format!("{:.3}", m.mean)
    }
}

fn metric_of(e: &QualityEntry, metric: Metric) -> MeanInterval {
    let k = Metric::ALL.iter().position(|&m| m == metric).unwrap_or(0);
    e.metrics.get(k).map_or(
        MeanInterval {
            mean: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        },
        |(_, m)| *m,
    )
}

/// The headline: the most checkered maps against noise, and the best method per faithfulness
/// measure.
fn headline(record: &QualityRecord, facts: &RunFacts) -> Vec<String> {
    let name = |e: &QualityEntry| {
        if facts.models.len() > 1 {
            format!("{} on {}", e.method, e.model)
        } else {
            e.method.clone()
        }
    };
    let mut out = Vec::new();
    let checkered: Vec<String> = record
        .entries
        .iter()
        .filter(|e| metric_of(e, Metric::CheckerboardRatio).low > 1.0)
        .map(|e| {
            format!(
                "{} ({:.1}× noise)",
                name(e),
                metric_of(e, Metric::CheckerboardRatio).mean
            )
        })
        .collect();
    out.push(if checkered.is_empty() {
        "No method's maps are more checkered than white noise of their size (the 95 % interval \
         of checkerboard / noise reaches 1 or below)."
            .to_string()
    } else {
        format!(
            "More checkered than white noise of their size (95 % interval above 1): {}.",
            checkered.join(", ")
        )
    });
    for metric in [Metric::PixelFlipping, Metric::FaithfulnessCorrelation] {
        if let Some(best) = record
            .entries
            .iter()
            .filter(|e| metric_of(e, metric).mean.is_finite())
            .max_by(|a, b| {
                metric_of(a, metric)
                    .mean
                    .total_cmp(&metric_of(b, metric).mean)
            })
        {
            out.push(format!(
                "Highest {}: {} ({}).",
                metric.heading().trim_end_matches(" ↑"),
                name(best),
                cell(&metric_of(best, metric))
            ));
        }
    }
    out.push(format!(
        "{} images ({}), {} model(s), {} method(s); table cells are mean [95 % CI] over images \
         (percentile bootstrap; the raw checkerboard score and its noise reference are in metrics.csv).",
        facts.images,
        facts.split,
        facts.models.len(),
        facts.methods.len()
    ));
    out
}

/// The conventions of every metric, as `summary.json` states them.
pub fn conventions(opts: &QualityOptions, facts: &RunFacts) -> Value {
    json!({
        "maps": "one plane per map as relevance explain draws it: signed maps summed over channels, sensitivity maps max_c |v|, CAMs as they are",
        "checkerboard": "share of the map's spectral energy at the stride-2 frequencies (DFT row k = H/2 and column l = W/2, crossing once, over Σ|F|²); reference: the expected score of white noise of the map's size, mean μ and variance σ², e·σ²/(H·W·(σ²+μ²)) with e = H + W − 1 for even sides ((H + W − 1)/(H·W) for zero-mean noise); ratio = score / reference",
        "sparseness": "Gini index of |R| + 1e-7 (Chalasani et al. 2020) = Quantus Sparseness(abs=True)",
        "complexity": "entropy −Σ P ln(P + 1e-12), P = |R|/Σ|R| (Bhatt et al. 2020) = Quantus Complexity(abs=True)",
        "pixel_flipping": format!("MoRF, {} pixels per step (all channels of a pixel together), to the image minimum (Quantus perturb_baseline=\"black\"), logits; AOPC = mean over k = 0…L of f(x⁰) − f(xᵏ) including the unperturbed point (Quantus PixelFlipping's curve is ours without point 0)", if opts.pixels_per_step == 0 { "1 % of the".to_string() } else { opts.pixels_per_step.to_string() }),
        "region_perturbation": format!("MoRF, Quantus' centred grid of {0}×{0} patches, at most {1} patches, to the image minimum, logits; AOPC as pixel flipping (Quantus RegionPerturbation's curve is f(x⁰) − f(xᵏ) for k ≥ 1)", opts.region_patch, opts.regions),
        "faithfulness_correlation": format!("Pearson over {} random pixel subsets of {} of the relevance sum vs the logit drop when the subset is set to the image minimum (Quantus FaithfulnessCorrelation defaults: nr_runs=100, subset_size=224, \"black\", logits; Quantus draws input elements, equal on one-channel images)", opts.faithfulness_runs, match opts.subset_size { Some(s) => format!("{s} pixels"), None => "224 pixels (a quarter of the pixels on maps under 896 pixels)".to_string() }),
        "sensitivity": format!("max and mean over {} draws of ‖Φ(x+δ) − Φ(x)‖₂ / ‖Φ(x)‖₂ (Quantus Max/AvgSensitivity's normalisation), δ uniform in the L∞ ball of radius {} × (max x − min x) (Quantus: absolute lower_bound 0.2, 200 samples); the random control's map depends only on the image's key, so its sensitivity is 0", opts.sensitivity_samples, opts.sensitivity_radius),
        "intervals": "95 % percentile bootstrap of the mean over images (2000 resamples, seed 0); NaN values (undefined metrics, e.g. an all-zero map) are left out",
        "tests": "method_tests.csv: methods compared per model; model_tests.csv (several models): models compared per method; on every metric of the table, paired by image (an image with a NaN on either side is left out of that pair): mean difference with a 95 % BCa bootstrap interval, two-sided Wilcoxon signed-rank (scipy defaults) and paired t p-values, Holm over the metric's pairs; significant = Holm p < 0.05",
        "target": opts.target,
        "seed": opts.seed,
        "split": facts.split,
        "images": facts.images,
        "models": facts.models,
        "methods": facts.methods,
        "method_options": method_options_json(&opts.inputs.method_options),
    })
}

/// `summary.json`: one row per model × method, `mean [95 % CI]` per metric (the raw checkerboard
/// score and its reference stay in `metrics.csv`, keeping the table within the page).
fn summary(
    opts: &QualityOptions,
    record: &QualityRecord,
    facts: &RunFacts,
    headline: &[String],
    tests: Vec<Vec<Value>>,
) -> Result<(), StudyError> {
    let shown = shown_metrics();
    let rows: Vec<Vec<Value>> = record
        .entries
        .iter()
        .map(|e| {
            let mut row = vec![json!(e.model), json!(e.method), json!(e.n)];
            row.extend(shown.iter().map(|&m| json!(cell(&metric_of(e, m)))));
            row
        })
        .collect();
    let mut columns = vec!["model".to_string(), "method".into(), "n".into()];
    columns.extend(shown.iter().map(|m| m.heading().to_string()));
    let summary = Summary {
        study: "quality".into(),
        command: opts.inputs.command.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        conventions: conventions(opts, facts),
        headline: headline.to_vec(),
        table: Table { columns, rows },
        tests: Table::new(&paired::TEST_COLUMNS, tests),
        work: json!({"computed": facts.computed, "reused": facts.reused}),
    };
    summary.write(&opts.inputs.out)
}
