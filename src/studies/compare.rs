//! `relevance compare`: methods × models on the same images. Where do the maps sit, do the
//! methods agree, and do the maps sit on the object (ground-truth mask) or on a confounder
//! (marker mask)?
//!
//! Per image × method × model (maps as the method returns them, reduced to one plane by the
//! method's style; relevance counted as `max(R, 0)`, [`Mass::Positive`]):
//! - **centre of mass** ([`centre_of_mass`]) as fractions of the image height / width measured
//!   from the top-left corner, and its distance `√(Δrow_f² + Δcol_f²)` (in units of the image
//!   side) to the centre of mass of the object mask;
//! - against the object mask, where the data set has one: the **pointing game** (the map's
//!   maximum on the object, with a tolerance in pixels), **relevance mass accuracy** (share of
//!   positive relevance on the object), **relevance rank accuracy**, the **IoU** of the
//!   thresholded map with the mask, and a **correct map** flag: relevance mass on the object at
//!   least `correct_mass` (default ½: most of the evidence lies on the object);
//! - against the confounder **marker** mask, where the image has one: the relevance mass on the
//!   marker, beside the marker's area fraction (what a uniform map would put there).
//!
//! Between methods (same model, same image): the IoU of their thresholded maps and the distance
//! of their centres of mass, averaged over images (per model and pooled). Between models (same
//! method, same image): the same IoU and distance (`model_matrix.csv`), and paired tests of which
//! model's maps lie more on the object or the marker (`model_tests.csv`, [`super::paired`]).

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use serde_json::{Value, json};

use super::fit::mean_sd;
use super::maps::{MapsRequest, ModelMaps, model_maps};
use super::paired;
use super::toolkit::TargetRule;
use super::toolkit::{
    Figure, StudyImage, StudyInputs, StudyMethod, StudyModel, Summary, Table, check_same_frame,
    create_dir, figure_stem, has_class, jnum, label_for_model, load_batch, load_mask, load_models,
    num, progress_bar, save_picture, save_plot, write_csv, write_figures,
};
use super::{StudyError, StudyOutcome};
use crate::metrics::MapView;
use crate::metrics::centre::{ComNormalisation, Mass, centre_of_mass};
use crate::metrics::localisation::{
    pointing_game, relevance_mass_accuracy, relevance_rank_accuracy,
};
use crate::metrics::threshold::{Threshold, binarise, iou};
use crate::report::heatmap::{Scale, default_colormap, grid, input_image, normalise, overlay};
use crate::report::plots::{Chart, Plot, Series};
use crate::tensor::to_vec;

/// Options of the method-comparison study.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Models, data (object masks `<stem>.mask.png`, marker masks `<stem>.marker.png`),
    /// images, methods (default [`DEFAULT_METHODS`]), batch (default 16), output.
    pub inputs: StudyInputs,
    /// Class explained (default: the true class).
    pub target: TargetRule,
    /// How maps are binarised for IoUs (default: the top 20 % of pixels).
    pub threshold: Threshold,
    /// Pointing-game tolerance in pixels (default 0: the maximum must be on the object).
    pub tolerance: f64,
    /// Relevance mass on the object from which a map counts as correct (default 0.5).
    pub correct_mass: f64,
    /// How centres of mass are normalised (default by the mass; `area`: the thesis's W·H).
    pub com_normalisation: ComNormalisation,
    /// Images shown in the heatmap grid per model (default 8).
    pub grid_images: usize,
    /// Stop after the maps phase: what a shard of a sharded run computes (its images'
    /// predictions and maps in `cache/`); the merge summarises them all.
    pub maps_only: bool,
}

/// Methods compared when none are named.
pub const DEFAULT_METHODS: &[&str] = &[
    "grad-cam",
    "saliency",
    "input-x-gradient",
    "lrp-epsilon-plus",
];

impl CompareOptions {
    /// The study's options with its defaults on `inputs`.
    pub fn with_inputs(inputs: StudyInputs) -> Self {
        CompareOptions {
            inputs,
            target: TargetRule::True,
            threshold: Threshold::TopFraction(0.2),
            tolerance: 0.0,
            correct_mass: 0.5,
            com_normalisation: ComNormalisation::Mass,
            grid_images: 8,
            maps_only: false,
        }
    }
}

impl Default for CompareOptions {
    fn default() -> Self {
        let inputs = StudyInputs::new(
            Vec::new(),
            PathBuf::new(),
            PathBuf::from("compare"),
            16,
            DEFAULT_METHODS,
        );
        CompareOptions::with_inputs(inputs)
    }
}

/// Text of a threshold for outputs: `top-20%`, `otsu`, `fixed:0.5`.
pub fn threshold_name(t: Threshold) -> String {
    match t {
        Threshold::TopFraction(f) => format!("top-{}%", f * 100.0),
        Threshold::Otsu => "otsu".into(),
        Threshold::Fixed(v) => format!("fixed:{v}"),
    }
}

/// Parses `top:0.2` / `top-20%`, `otsu`, `fixed:0.5`.
pub fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let bad = || format!("bad threshold '{s}': use top:0.2, otsu or fixed:0.5");
    if s == "otsu" {
        return Ok(Threshold::Otsu);
    }
    if let Some(v) = s.strip_prefix("top:") {
        return v.parse().map(Threshold::TopFraction).map_err(|_| bad());
    }
    if let Some(v) = s.strip_prefix("top-").and_then(|v| v.strip_suffix('%')) {
        return v
            .parse::<f64>()
            .map(|p| Threshold::TopFraction(p / 100.0))
            .map_err(|_| bad());
    }
    if let Some(v) = s.strip_prefix("fixed:") {
        return v.parse().map(Threshold::Fixed).map_err(|_| bad());
    }
    Err(bad())
}

/// Agreement of one map with a mask.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaskAgreement {
    /// Pointing game: the maximum on the mask (within the tolerance).
    pub hit: bool,
    /// Share of positive relevance on the mask.
    pub mass: f64,
    /// Relevance rank accuracy.
    pub rank: f64,
    /// IoU of the thresholded map with the mask.
    pub iou: f64,
}

/// The agreement of `map` (`[h, w]`) with `mask`; `None` for an empty mask.
pub fn mask_agreement(
    map: &[f32],
    [h, w]: [usize; 2],
    mask: &[bool],
    threshold: Threshold,
    tolerance: f64,
) -> Result<Option<MaskAgreement>, StudyError> {
    let view = MapView::new(map, [h, w])?;
    let Some(pg) = pointing_game(&view, mask, tolerance)? else {
        return Ok(None);
    };
    Ok(Some(MaskAgreement {
        hit: pg.hit,
        mass: relevance_mass_accuracy(map, mask, true)?.unwrap_or(f64::NAN),
        rank: relevance_rank_accuracy(map, mask)?.unwrap_or(f64::NAN),
        iou: iou(&binarise(map, threshold, None)?, mask)?,
    }))
}

/// Centre of mass of a binary mask as `(row, col)` fractions.
fn mask_centre(mask: &[bool], [h, w]: [usize; 2]) -> Option<(f64, f64)> {
    let v: Vec<f32> = mask.iter().map(|&m| f32::from(u8::from(m))).collect();
    let c = centre_of_mass(&MapView::new(&v, [h, w]).ok()?, Mass::Positive)?;
    Some((c.row_fraction, c.col_fraction))
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// The input tile with the object mask's outline in green and the marker's in cyan.
fn outlined(base: &RgbImage, masks: &[(&[bool], [u8; 3])], [h, w]: [usize; 2]) -> RgbImage {
    let mut img = base.clone();
    for (mask, colour) in masks {
        for r in 0..h {
            for c in 0..w {
                let i = r * w + c;
                if !mask[i] {
                    continue;
                }
                let edge = r == 0
                    || c == 0
                    || r + 1 == h
                    || c + 1 == w
                    || !mask[i - 1]
                    || !mask[i + 1]
                    || !mask[i - w]
                    || !mask[i + w];
                if edge {
                    img.put_pixel(c as u32, r as u32, Rgb(*colour));
                }
            }
        }
    }
    img
}

/// Mean of the finite values (NaN when none).
fn finite_mean(v: impl IntoIterator<Item = f64>) -> f64 {
    mean_sd(v.into_iter().filter(|x| x.is_finite())).0
}

/// Per image × method × model results.
struct Row {
    image: usize,
    method: usize,
    model: usize,
    com: Option<(f64, f64)>,
    object: Option<MaskAgreement>,
    marker: Option<f64>,
}

/// What the select phase chose: models, images (labelled for the first model), methods and
/// the masks brought to the models' frame.
struct Selected {
    models: Vec<StudyModel>,
    /// The images of this run (of its shards, when sharded).
    images: Vec<StudyImage>,
    /// Every image the study selects, unsharded (the maps cache's key names them).
    selection: Vec<StudyImage>,
    methods: Vec<(String, StudyMethod)>,
    objects: Vec<Option<Vec<bool>>>,
    markers: Vec<Option<Vec<bool>>>,
    /// Share of the image the marker covers (NaN without a marker).
    marker_area: Vec<f64>,
}

impl Selected {
    fn names(&self) -> Vec<String> {
        self.methods.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// The scores phase's results: per image × method × model rows; per model the method ×
/// method IoUs and centre-of-mass distances of every image; and per method the model × model
/// ones, as `(image, value)` so they can be split by class.
struct Scores {
    rows: Vec<Row>,
    iou: Vec<Vec<Vec<Vec<f64>>>>,
    com: Vec<Vec<Vec<Vec<f64>>>>,
    model_iou: Vec<PairMatrix<ImageValues>>,
    model_com: Vec<PairMatrix<ImageValues>>,
}

/// `(image, value)` pairs of one comparison.
type ImageValues = Vec<(usize, f64)>;
/// `[a][b]`: one entry per ordered pair.
type PairMatrix<T> = Vec<Vec<T>>;

/// Runs the study; see the module documentation.
pub fn run(opts: &CompareOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let sel = select(opts)?;
    create_dir(&opts.inputs.out)?;
    let all = maps(opts, &sel, progress)?;
    if opts.maps_only {
        return Ok(maps_outcome(opts, &sel));
    }
    let scores = score(opts, &sel, &all, progress)?;
    let (table, tests, mut headline) = tables(opts, &sel, &all, &scores)?;
    let figures = figures(opts, &sel, &all, &scores)?;
    write_figures(&opts.inputs.out, &figures)?;
    if headline.is_empty() {
        headline.push(format!(
            "{} method(s) compared on {} images with {} model(s); the data has no object or marker masks, so only centres of mass and method agreement are reported.",
            sel.methods.len(),
            sel.images.len(),
            sel.models.len()
        ));
    }
    summary(opts, &sel, (table, tests), &headline)?;
    Ok(StudyOutcome {
        out: opts.inputs.out.clone(),
        headline,
    })
}

/// What a shard that stops after the maps phase reports.
fn maps_outcome(opts: &CompareOptions, sel: &Selected) -> StudyOutcome {
    StudyOutcome {
        out: opts.inputs.out.clone(),
        headline: vec![format!(
            "Maps of {} of {} images × {} models × {} methods cached under cache/; \
             `relevance merge` summarises them.",
            sel.images.len(),
            sel.selection.len(),
            sel.models.len(),
            sel.methods.len()
        )],
    }
}

/// Select: models (one input size), images labelled for the first model, methods, masks.
fn select(opts: &CompareOptions) -> Result<Selected, StudyError> {
    let models = load_models(&opts.inputs.models)?;
    check_same_frame(&models, false)?;
    let first = &models[0].model;
    let chosen = opts.inputs.select_images(&models[0])?;
    let selection = label_for_model(chosen.images, first)?;
    let images = opts.inputs.shard_images(selection.clone())?;
    let methods = opts.inputs.study_methods()?;
    let masks = |of: fn(&StudyImage) -> Option<&Path>| {
        images
            .iter()
            .map(|i| of(i).map(|p| load_mask(p, first)).transpose())
            .collect::<Result<Vec<_>, _>>()
    };
    let objects = masks(|i| i.mask.as_deref())?;
    let markers = masks(|i| i.marker.as_deref())?;
    let marker_area = markers
        .iter()
        .map(|m| {
            m.as_ref().map_or(f64::NAN, |m| {
                m.iter().filter(|&&v| v).count() as f64 / m.len() as f64
            })
        })
        .collect();
    Ok(Selected {
        models,
        images,
        selection,
        methods,
        objects,
        markers,
        marker_area,
    })
}

/// Maps: predictions and maps of every model (cached under `cache/<model>/`).
fn maps(
    opts: &CompareOptions,
    sel: &Selected,
    progress: bool,
) -> Result<Vec<ModelMaps>, StudyError> {
    let batches = sel.images.len().div_ceil(opts.inputs.batch.max(1));
    let bar = progress_bar(
        sel.models.len() * batches,
        "compare: models × batches",
        progress,
    );
    let req = MapsRequest {
        images: &sel.images,
        selection: &sel.selection,
        methods: &sel.methods,
        method_options: &opts.inputs.method_options,
        target: opts.target,
        batch: opts.inputs.batch,
        data: &opts.inputs.data,
    };
    let all = sel
        .models
        .iter()
        .map(|m| {
            model_maps(
                m,
                &req,
                &opts.inputs.out.join("cache").join(&m.label),
                &|| bar.inc(1),
            )
        })
        .collect();
    bar.finish_and_clear();
    all
}

/// The row of one map (image `ii`, method `k`, model `mi`): centre of mass and agreement with
/// the object and marker masks.
fn score_map(
    opts: &CompareOptions,
    sel: &Selected,
    map: &[f32],
    size: [usize; 2],
    (ii, k, mi): (usize, usize, usize),
) -> Result<Row, StudyError> {
    let com = centre_of_mass(&MapView::new(map, size)?, Mass::Positive)
        .map(|c| c.fractions(opts.com_normalisation, size));
    let object = match &sel.objects[ii] {
        Some(mask) => mask_agreement(map, size, mask, opts.threshold, opts.tolerance)?,
        None => None,
    };
    let marker = match &sel.markers[ii] {
        Some(mask) if mask.iter().any(|&v| v) => relevance_mass_accuracy(map, mask, true)?,
        _ => None,
    };
    Ok(Row {
        image: ii,
        method: k,
        model: mi,
        com,
        object,
        marker,
    })
}

/// Scores: every map against the masks, every pair of methods on the same image and model, and
/// every pair of models on the same image and method. Images run in the outer loop so that only
/// one image's binarised maps are held at a time.
fn score(
    opts: &CompareOptions,
    sel: &Selected,
    all: &[ModelMaps],
    progress: bool,
) -> Result<Scores, StudyError> {
    let (nm, nmod) = (sel.methods.len(), sel.models.len());
    fn pairs<T: Clone>(outer: usize, inner: usize) -> Vec<Vec<Vec<Vec<T>>>> {
        vec![vec![vec![Vec::new(); inner]; inner]; outer]
    }
    let mut scores = Scores {
        rows: Vec::new(),
        iou: pairs(nmod, nm),
        com: pairs(nmod, nm),
        model_iou: pairs(nm, nmod),
        model_com: pairs(nm, nmod),
    };
    let bar = progress_bar(sel.images.len() * nmod, "compare: metrics", progress);
    for ii in 0..sel.images.len() {
        // bins[mi][k], coms[mi][k]: this image's thresholded map and centre per model × method.
        let (mut bins, mut coms) = (Vec::with_capacity(nmod), Vec::with_capacity(nmod));
        for (mi, mm) in all.iter().enumerate() {
            let (mut model_bins, mut model_coms) = (Vec::with_capacity(nm), Vec::with_capacity(nm));
            for k in 0..nm {
                let map = &mm.methods[k].planes[ii];
                let row = score_map(opts, sel, map, mm.size, (ii, k, mi))?;
                model_bins.push(binarise(map, opts.threshold, None)?);
                model_coms.push(row.com);
                scores.rows.push(row);
            }
            bins.push(model_bins);
            coms.push(model_coms);
            bar.inc(1);
        }
        for mi in 0..nmod {
            for a in 0..nm {
                for b in 0..nm {
                    scores.iou[mi][a][b].push(iou(&bins[mi][a], &bins[mi][b])?);
                    if let (Some(ca), Some(cb)) = (coms[mi][a], coms[mi][b]) {
                        scores.com[mi][a][b].push(dist(ca, cb));
                    }
                }
            }
        }
        for k in 0..nm {
            for a in 0..nmod {
                for b in 0..nmod {
                    scores.model_iou[k][a][b].push((ii, iou(&bins[a][k], &bins[b][k])?));
                    if let (Some(ca), Some(cb)) = (coms[a][k], coms[b][k]) {
                        scores.model_com[k][a][b].push((ii, dist(ca, cb)));
                    }
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok(scores)
}

/// Tables: `per_image.csv`, `metrics.csv`, `method_matrix.csv` and, with several models,
/// `model_matrix.csv` and `model_tests.csv`; returns the summary table, the tests' table and
/// the headline findings.
fn tables(
    opts: &CompareOptions,
    sel: &Selected,
    all: &[ModelMaps],
    scores: &Scores,
) -> Result<(TableRows, TableRows, Vec<String>), StudyError> {
    per_image_table(opts, sel, all, scores)?;
    let (table, mut headline) = metrics_table(opts, sel, all, scores)?;
    headline.extend(matrix_table(opts, sel, scores)?);
    let mut tests = Vec::new();
    if sel.models.len() > 1 {
        headline.extend(model_matrix_table(opts, sel, scores)?);
        let (rows, findings) = model_tests(opts, sel, scores)?;
        tests = rows;
        headline.extend(findings);
    }
    Ok((table, tests, headline))
}

/// Columns of the summary's tests table (one row per measure × method × pair of models).
const TEST_COLUMNS: [&str; 9] = [
    "measure",
    "method",
    "model a",
    "model b",
    "images",
    "difference a − b [95 % CI]",
    "Wilcoxon p",
    "Holm p",
    "significant",
];

/// Rows of a summary table.
type TableRows = Vec<Vec<Value>>;

/// The score of one map (row) under a measure, if defined.
type RowScore = fn(&Row) -> Option<f64>;

/// The per-image scores of one map that models are compared on: relevance mass on the object,
/// IoU of the thresholded map with the object, and relevance mass on the marker.
const MODEL_TEST_MEASURES: [(&str, RowScore); 3] = [
    ("object_mass", |r| r.object.map(|o| o.mass)),
    ("object_iou", |r| r.object.map(|o| o.iou)),
    ("marker_mass", |r| r.marker),
];

/// `model_tests.csv`: per measure and method, every pair of models on the same images — mean
/// difference with a bootstrap interval, Wilcoxon and paired t p-values, Holm within the
/// measure ([`super::paired`]); returns the rows of the summary's tests table and, per measure
/// with data, the finding of its smallest adjusted p-value (a direction only when it is
/// significant).
fn model_tests(
    opts: &CompareOptions,
    sel: &Selected,
    scores: &Scores,
) -> Result<(Vec<Vec<Value>>, Vec<String>), StudyError> {
    let (models, methods) = (
        sel.models
            .iter()
            .map(|m| m.label.clone())
            .collect::<Vec<_>>(),
        sel.names(),
    );
    // Paired by image index: two images may share a file stem in different class folders.
    let keys: Vec<String> = (0..sel.images.len()).map(|i| i.to_string()).collect();
    let mut measures = Vec::new();
    let mut headline = Vec::new();
    for (measure, value) in MODEL_TEST_MEASURES {
        let scored: Vec<paired::Scored> = scores
            .rows
            .iter()
            .filter_map(|r| {
                value(r).map(|v| paired::Scored {
                    model: &models[r.model],
                    method: &methods[r.method],
                    image: &keys[r.image],
                    value: v,
                })
            })
            .collect();
        if scored.is_empty() {
            continue;
        }
        let tests = paired::compare_models(&scored, &models, &methods);
        headline.extend(
            paired::strongest(&tests)
                .map(|c| paired::model_sentence(&measure.replace('_', " "), c)),
        );
        measures.push((measure, tests));
    }
    paired::write_model_comparisons(&opts.inputs.out.join("model_tests.csv"), &measures)?;
    let rows = paired::test_rows(&measures);
    Ok((rows, headline))
}

const PER_IMAGE_COLUMNS: [&str; 17] = [
    "image",
    "class",
    "method",
    "model",
    "target",
    "predicted",
    "correct",
    "com_row",
    "com_col",
    "com_to_object",
    "pointing_hit",
    "object_mass",
    "object_rank",
    "object_iou",
    "correct_map",
    "marker_mass",
    "marker_area",
];

fn per_image_table(
    opts: &CompareOptions,
    sel: &Selected,
    all: &[ModelMaps],
    scores: &Scores,
) -> Result<(), StudyError> {
    let names = sel.names();
    let opt = |v: Option<f64>| v.map_or(String::new(), num);
    let rows: Vec<Vec<String>> = scores
        .rows
        .iter()
        .map(|r| {
            let img = &sel.images[r.image];
            let mm = &all[r.model];
            let pred = crate::metrics::scorer::argmax(&mm.probs[r.image]);
            let size = mm.size;
            let obj_centre = sel.objects[r.image]
                .as_ref()
                .and_then(|m| mask_centre(m, size));
            let o = r.object;
            let flag = |b: bool| u8::from(b).to_string();
            vec![
                img.stem.clone(),
                img.class.clone(),
                names[r.method].clone(),
                sel.models[r.model].label.clone(),
                mm.targets[r.image].to_string(),
                pred.to_string(),
                flag(has_class(mm.head, &mm.probs[r.image], img.label)),
                opt(r.com.map(|c| c.0)),
                opt(r.com.map(|c| c.1)),
                opt(r.com.zip(obj_centre).map(|(a, b)| dist(a, b))),
                o.map_or(String::new(), |o| flag(o.hit)),
                opt(o.map(|o| o.mass)),
                opt(o.map(|o| o.rank)),
                opt(o.map(|o| o.iou)),
                o.map_or(String::new(), |o| flag(o.mass >= opts.correct_mass)),
                opt(r.marker),
                num(sel.marker_area[r.image]),
            ]
        })
        .collect();
    write_csv(
        &opts.inputs.out.join("per_image.csv"),
        &PER_IMAGE_COLUMNS,
        &rows,
    )
}

const METRICS_COLUMNS: [&str; 20] = [
    "method",
    "model",
    "images",
    "accuracy",
    "mask_images",
    "pointing_game",
    "object_mass",
    "object_rank",
    "object_iou",
    "correct_map_rate",
    "marker_images",
    "marker_mass",
    "marker_area",
    "com_row_mean",
    "com_col_mean",
    "target",
    "threshold",
    "mass",
    "pointing_tolerance_px",
    "correct_mass",
];

/// Means of one method × model over images.
struct Aggregate {
    accuracy: f64,
    objects: usize,
    pointing: f64,
    mass: f64,
    rank: f64,
    iou: f64,
    correct: f64,
    markers: usize,
    marker_mass: f64,
    marker_area: f64,
    com: (f64, f64),
}

fn aggregate(
    opts: &CompareOptions,
    sel: &Selected,
    mm: &ModelMaps,
    sel_rows: &[&Row],
) -> Aggregate {
    let objs: Vec<MaskAgreement> = sel_rows.iter().filter_map(|r| r.object).collect();
    let marks: Vec<(f64, f64)> = sel_rows
        .iter()
        .filter_map(|r| r.marker.map(|m| (m, sel.marker_area[r.image])))
        .collect();
    let right = sel
        .images
        .iter()
        .zip(&mm.probs)
        .filter(|(i, p)| has_class(mm.head, p, i.label))
        .count();
    let over_objects = |f: &dyn Fn(&MaskAgreement) -> f64| finite_mean(objs.iter().map(f));
    Aggregate {
        accuracy: right as f64 / sel.images.len() as f64,
        objects: objs.len(),
        pointing: over_objects(&|o| f64::from(u8::from(o.hit))),
        mass: over_objects(&|o| o.mass),
        rank: over_objects(&|o| o.rank),
        iou: over_objects(&|o| o.iou),
        correct: over_objects(&|o| f64::from(u8::from(o.mass >= opts.correct_mass))),
        markers: marks.len(),
        marker_mass: finite_mean(marks.iter().map(|m| m.0)),
        marker_area: finite_mean(marks.iter().map(|m| m.1)),
        com: (
            mean_sd(sel_rows.iter().filter_map(|r| r.com.map(|c| c.0))).0,
            mean_sd(sel_rows.iter().filter_map(|r| r.com.map(|c| c.1))).0,
        ),
    }
}

/// The headline of one method × model: marker mass where images are tagged, else the
/// agreement with the object.
fn aggregate_headline(model: &str, name: &str, a: &Aggregate) -> Option<String> {
    if a.markers > 0 {
        Some(format!(
            "{model} / {name}: {:.1}% of the positive relevance lies on the confounder marker (mean over {} tagged images; the marker covers {:.1}% of the image) and {:.1}% on the object; pointing game {:.2}.",
            100.0 * a.marker_mass,
            a.markers,
            100.0 * a.marker_area,
            100.0 * a.mass,
            a.pointing
        ))
    } else if a.objects > 0 {
        Some(format!(
            "{model} / {name}: pointing game {:.2}, {:.1}% of the positive relevance on the object, correct-map rate {:.2}.",
            a.pointing,
            100.0 * a.mass,
            a.correct
        ))
    } else {
        None
    }
}

/// `metrics.csv`: one row per method × model; returns the summary table and headlines.
fn metrics_table(
    opts: &CompareOptions,
    sel: &Selected,
    all: &[ModelMaps],
    scores: &Scores,
) -> Result<(Vec<Vec<Value>>, Vec<String>), StudyError> {
    let (mut csv, mut table, mut headline) = (Vec::new(), Vec::new(), Vec::new());
    let target_name = format!("{:?}", opts.target).to_lowercase();
    for (mi, model) in sel.models.iter().enumerate() {
        for (k, name) in sel.names().iter().enumerate() {
            let rows: Vec<&Row> = scores
                .rows
                .iter()
                .filter(|r| r.model == mi && r.method == k)
                .collect();
            let a = aggregate(opts, sel, &all[mi], &rows);
            csv.push(vec![
                name.clone(),
                model.label.clone(),
                sel.images.len().to_string(),
                num(a.accuracy),
                a.objects.to_string(),
                num(a.pointing),
                num(a.mass),
                num(a.rank),
                num(a.iou),
                num(a.correct),
                a.markers.to_string(),
                num(a.marker_mass),
                num(a.marker_area),
                num(a.com.0),
                num(a.com.1),
                target_name.clone(),
                threshold_name(opts.threshold),
                "positive".into(),
                opts.tolerance.to_string(),
                opts.correct_mass.to_string(),
            ]);
            table.push(vec![
                json!(name),
                json!(model.label),
                jnum(a.accuracy),
                jnum(a.pointing),
                jnum(a.mass),
                jnum(a.correct),
                jnum(a.marker_mass),
                jnum(a.marker_area),
            ]);
            headline.extend(aggregate_headline(&model.label, name, &a));
        }
    }
    write_csv(&opts.inputs.out.join("metrics.csv"), &METRICS_COLUMNS, &csv)?;
    Ok((table, headline))
}

/// The method × method mean of `acc` over images of one model (`Some`) or all models.
fn pooled(acc: &[Vec<Vec<Vec<f64>>>], nm: usize, model: Option<usize>) -> Vec<Vec<f64>> {
    (0..nm)
        .map(|a| {
            (0..nm)
                .map(|b| {
                    finite_mean(
                        acc.iter()
                            .enumerate()
                            .filter(|(i, _)| model.is_none_or(|m| m == *i))
                            .flat_map(|(_, per)| per[a][b].iter().copied()),
                    )
                })
                .collect()
        })
        .collect()
}

/// The scopes of the matrices: all models pooled, then each model when there are several.
fn scopes(models: usize) -> Vec<Option<usize>> {
    std::iter::once(None)
        .chain(
            (models > 1)
                .then_some(0..models)
                .into_iter()
                .flatten()
                .map(Some),
        )
        .collect()
}

/// `method_matrix.csv`; returns the headline on the most and least similar methods.
fn matrix_table(
    opts: &CompareOptions,
    sel: &Selected,
    scores: &Scores,
) -> Result<Option<String>, StudyError> {
    let (names, nm) = (sel.names(), sel.methods.len());
    let mut rows = Vec::new();
    for scope in scopes(sel.models.len()) {
        let label = scope.map_or("all".to_string(), |m| sel.models[m].label.clone());
        let (ious, coms) = (
            pooled(&scores.iou, nm, scope),
            pooled(&scores.com, nm, scope),
        );
        for a in 0..nm {
            for b in 0..nm {
                rows.push(vec![
                    label.clone(),
                    names[a].clone(),
                    names[b].clone(),
                    num(ious[a][b]),
                    num(coms[a][b]),
                ]);
            }
        }
    }
    write_csv(
        &opts.inputs.out.join("method_matrix.csv"),
        &["model", "method_a", "method_b", "iou", "com_distance"],
        &rows,
    )?;
    Ok(similarity_headline(
        opts,
        &names,
        &pooled(&scores.iou, nm, None),
    ))
}

/// The class scopes of the model × model matrices: all images, then each class present.
fn class_scopes(sel: &Selected) -> Vec<Option<usize>> {
    let mut labels: Vec<usize> = sel.images.iter().map(|i| i.label).collect();
    labels.sort_unstable();
    labels.dedup();
    std::iter::once(None)
        .chain(labels.into_iter().map(Some))
        .collect()
}

/// Mean of the `(image, value)` pairs whose image has class `class` (all when `None`), and
/// their number.
fn class_mean(sel: &Selected, values: &[(usize, f64)], class: Option<usize>) -> (f64, usize) {
    let kept: Vec<f64> = values
        .iter()
        .filter(|(ii, v)| v.is_finite() && class.is_none_or(|c| sel.images[*ii].label == c))
        .map(|&(_, v)| v)
        .collect();
    (mean_sd(kept.iter().copied()).0, kept.len())
}

/// `model_matrix.csv`: per method and class (and all classes), the mean IoU and centre-of-mass
/// distance of two models' maps of the same image; returns the headline on the most and least
/// similar pair of models.
fn model_matrix_table(
    opts: &CompareOptions,
    sel: &Selected,
    scores: &Scores,
) -> Result<Option<String>, StudyError> {
    let first = &sel.models[0].model;
    let mut rows = Vec::new();
    for (k, method) in sel.names().iter().enumerate() {
        for class in class_scopes(sel) {
            let class_name = class.map_or("all".to_string(), |c| first.class_name(c));
            for (a, model_a) in sel.models.iter().enumerate() {
                for (b, model_b) in sel.models.iter().enumerate() {
                    let (iou, n) = class_mean(sel, &scores.model_iou[k][a][b], class);
                    let (com, _) = class_mean(sel, &scores.model_com[k][a][b], class);
                    rows.push(vec![
                        method.clone(),
                        class_name.clone(),
                        model_a.label.clone(),
                        model_b.label.clone(),
                        n.to_string(),
                        num(iou),
                        num(com),
                    ]);
                }
            }
        }
    }
    write_csv(
        &opts.inputs.out.join("model_matrix.csv"),
        &[
            "method",
            "class",
            "model_a",
            "model_b",
            "images",
            "iou",
            "com_distance",
        ],
        &rows,
    )?;
    Ok(model_similarity_headline(opts, sel, scores))
}

/// "Across models, <method>'s maps agree most between A and B (IoU …) and least between …".
fn model_similarity_headline(
    opts: &CompareOptions,
    sel: &Selected,
    scores: &Scores,
) -> Option<String> {
    let mut best = (f64::NEG_INFINITY, 0, 0, 0);
    let mut worst = (f64::INFINITY, 0, 0, 0);
    for k in 0..sel.methods.len() {
        for a in 0..sel.models.len() {
            for b in a + 1..sel.models.len() {
                let (v, _) = class_mean(sel, &scores.model_iou[k][a][b], None);
                if v.is_finite() && v > best.0 {
                    best = (v, k, a, b);
                }
                if v.is_finite() && v < worst.0 {
                    worst = (v, k, a, b);
                }
            }
        }
    }
    let (names, models) = (sel.names(), &sel.models);
    best.0.is_finite().then(|| {
        if (best.1, best.2, best.3) == (worst.1, worst.2, worst.3) {
            return format!(
                "Across models, {}'s maps from {} and {} overlap with IoU {:.2} ({} pixels).",
                names[best.1],
                models[best.2].label,
                models[best.3].label,
                best.0,
                threshold_name(opts.threshold)
            );
        }
        format!(
            "Across models, the most similar maps are {}'s from {} and {} (IoU of {} pixels {:.2}); the least similar, {}'s from {} and {} ({:.2}).",
            names[best.1],
            models[best.2].label,
            models[best.3].label,
            threshold_name(opts.threshold),
            best.0,
            names[worst.1],
            models[worst.2].label,
            models[worst.3].label,
            worst.0
        )
    })
}

fn similarity_headline(
    opts: &CompareOptions,
    names: &[String],
    ious: &[Vec<f64>],
) -> Option<String> {
    let mut best = (f64::NEG_INFINITY, 0, 0);
    let mut worst = (f64::INFINITY, 0, 0);
    for (a, row) in ious.iter().enumerate() {
        for (b, &v) in row.iter().enumerate().skip(a + 1) {
            if v.is_finite() && v > best.0 {
                best = (v, a, b);
            }
            if v.is_finite() && v < worst.0 {
                worst = (v, a, b);
            }
        }
    }
    let threshold = threshold_name(opts.threshold);
    best.0.is_finite().then(|| {
        if (best.1, best.2) == (worst.1, worst.2) {
            return format!(
                "{} and {}: IoU of their {threshold} pixels {:.2}.",
                names[best.1], names[best.2], best.0
            );
        }
        format!(
            "Most similar methods: {} and {} (IoU of {threshold} pixels {:.2}); least similar: {} and {} ({:.2}).",
            names[best.1], names[best.2], best.0, names[worst.1], names[worst.2], worst.0
        )
    })
}

/// Figures: the method × method matrices, the centres of mass and the heatmap grids.
fn figures(
    opts: &CompareOptions,
    sel: &Selected,
    all: &[ModelMaps],
    scores: &Scores,
) -> Result<Vec<Figure>, StudyError> {
    let mut figures = Vec::new();
    for scope in scopes(sel.models.len()) {
        figures.extend(matrix_figures(opts, sel, scores, scope)?);
    }
    if sel.models.len() > 1 {
        for k in 0..sel.methods.len() {
            figures.extend(model_matrix_figures(opts, sel, scores, k)?);
        }
    }
    figures.push(com_figure(opts, sel, scores)?);
    for (mm, model) in all.iter().zip(&sel.models) {
        figures.push(grid_figure(opts, sel, mm, &model.label)?);
    }
    Ok(figures)
}

/// The IoU and centre-distance matrices of one scope.
fn matrix_figures(
    opts: &CompareOptions,
    sel: &Selected,
    scores: &Scores,
    scope: Option<usize>,
) -> Result<[Figure; 2], StudyError> {
    let (names, nm, n) = (sel.names(), sel.methods.len(), sel.images.len());
    let label = scope.map_or("all".to_string(), |m| sel.models[m].label.clone());
    let stem = |what: &str| {
        scope.map_or(what.to_string(), |m| {
            figure_stem(what, &sel.models[m].label)
        })
    };
    let scope_text = match scope {
        None => format!("averaged over {n} images and {} model(s)", sel.models.len()),
        Some(m) => format!("model {}, averaged over {n} images", sel.models[m].label),
    };
    let matrix = |values: Vec<Vec<f64>>, max: f64| Chart::Matrix {
        rows: names.clone(),
        columns: names.clone(),
        values,
        max,
    };
    let coms = pooled(&scores.com, nm, scope);
    let dmax = coms
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let threshold = threshold_name(opts.threshold);
    Ok([
        save_plot(
            &opts.inputs.out,
            &stem("iou-matrix"),
            &Plot::new(
                &format!("IoU of thresholded maps ({label})"),
                "method",
                "method",
                matrix(pooled(&scores.iou, nm, scope), 1.0),
            ),
            &format!(
                "Cell (a, b): mean IoU of the {threshold} pixels of method a's map and method b's map on the same image and model, {scope_text}. Symmetric with ones on the diagonal; high values = the methods highlight the same pixels."
            ),
        )?,
        save_plot(
            &opts.inputs.out,
            &stem("com-distance"),
            &Plot::new(
                &format!("Distance of centres of mass ({label})"),
                "method",
                "method",
                matrix(coms, dmax.max(1e-9)),
            ),
            &format!(
                "Cell (a, b): mean distance between the centres of mass of the positive relevance of methods a and b, in units of the image side (0 = same place, 1 = a full side apart), {scope_text}."
            ),
        )?,
    ])
}

/// The model × model IoU and centre-distance matrices of method `k`, over all images.
fn model_matrix_figures(
    opts: &CompareOptions,
    sel: &Selected,
    scores: &Scores,
    k: usize,
) -> Result<[Figure; 2], StudyError> {
    let method = &sel.names()[k];
    let labels: Vec<String> = sel.models.iter().map(|m| m.label.clone()).collect();
    let means = |per: &[Vec<Vec<(usize, f64)>>]| -> Vec<Vec<f64>> {
        per.iter()
            .map(|row| row.iter().map(|v| class_mean(sel, v, None).0).collect())
            .collect()
    };
    let coms = means(&scores.model_com[k]);
    let dmax = coms
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let matrix = |values: Vec<Vec<f64>>, max: f64| Chart::Matrix {
        rows: labels.clone(),
        columns: labels.clone(),
        values,
        max,
    };
    let n = sel.images.len();
    let threshold = threshold_name(opts.threshold);
    Ok([
        save_plot(
            &opts.inputs.out,
            &figure_stem("model-iou-matrix", method),
            &Plot::new(
                &format!("IoU of {method} maps across models"),
                "model",
                "model",
                matrix(means(&scores.model_iou[k]), 1.0),
            ),
            &format!(
                "Cell (a, b): mean IoU of the {threshold} pixels of model a's and model b's {method} map of the same image, over {n} images (per class in model_matrix.csv). High values = the models look at the same pixels."
            ),
        )?,
        save_plot(
            &opts.inputs.out,
            &figure_stem("model-com-distance", method),
            &Plot::new(
                &format!("Distance of {method} centres of mass across models"),
                "model",
                "model",
                matrix(coms, dmax.max(1e-9)),
            ),
            &format!(
                "Cell (a, b): mean distance between the centres of positive relevance of model a's and model b's {method} map of the same image, in units of the image side, over {n} images."
            ),
        )?,
    ])
}

/// Centre-of-mass positions, one series per method (all models pooled).
fn com_figure(
    opts: &CompareOptions,
    sel: &Selected,
    scores: &Scores,
) -> Result<Figure, StudyError> {
    let series: Vec<Series> = sel
        .names()
        .into_iter()
        .enumerate()
        .map(|(k, label)| Series {
            label,
            points: scores
                .rows
                .iter()
                .filter(|r| r.method == k)
                .filter_map(|r| r.com.map(|(row, col)| (col, 1.0 - row)))
                .collect(),
        })
        .collect();
    save_plot(
        &opts.inputs.out,
        "centres-of-mass",
        &Plot::new(
            "Centres of mass of the maps",
            "column (fraction of the width, left = 0)",
            "row (fraction of the height, top = 1)",
            Chart::Scatter { series, fit: None },
        ),
        &format!(
            "Each point is one map's centre of positive relevance (image × model; {} model(s)), coloured by method, in image coordinates with the top of the image at the top (y = 1 − row fraction). A method whose points crowd a corner looks at a corner — where the synthetic data's confounder tag sits.",
            sel.models.len()
        ),
    )
}

/// Heatmap grid of one model: rows = images, columns = input (outlined masks) + one overlay
/// per method.
fn grid_figure(
    opts: &CompareOptions,
    sel: &Selected,
    mm: &ModelMaps,
    label: &str,
) -> Result<Figure, StudyError> {
    let first = &sel.models[0].model;
    let shown = sel.images.len().min(opts.grid_images.max(1));
    let xv = to_vec(&load_batch(&sel.images[..shown], first)?);
    let ([h, w], c) = (mm.size, first.card.channels);
    let per = c * h * w;
    let mut tiles = Vec::new();
    for ii in 0..shown {
        let base = input_image(
            &xv[ii * per..(ii + 1) * per],
            c,
            h as u32,
            w as u32,
            &first.card,
        );
        let mut masks: Vec<(&[bool], [u8; 3])> = Vec::new();
        if let Some(m) = &sel.objects[ii] {
            masks.push((m, [0, 200, 0]));
        }
        if let Some(m) = &sel.markers[ii] {
            masks.push((m, [0, 220, 255]));
        }
        let mut row = vec![outlined(&base, &masks, mm.size)];
        for (k, (_, m)) in sel.methods.iter().enumerate() {
            let style = m.style();
            let norm = normalise(&mm.methods[k].planes[ii], style, Scale::default());
            row.push(overlay(&base, &norm, style, default_colormap(style), 0.7));
        }
        tiles.push(row);
    }
    save_picture(
        &opts.inputs.out,
        &figure_stem("grid", label),
        &grid(&tiles, 3),
        &format!("Maps of {label}: inputs × methods"),
        &format!(
            "One row per image (the first {shown}); columns: the input with the object mask outlined in green and the confounder marker in cyan (where present), then the maps of {} laid over it (signed maps: blue negative / red positive, scaled to the 99.5th percentile of |R|; CAMs and magnitudes: inferno).",
            sel.names().join(", ")
        ),
    )
}

/// Summary: `summary.json` with the conventions, the headline and the digest table.
fn summary(
    opts: &CompareOptions,
    sel: &Selected,
    (table, tests): (Vec<Vec<Value>>, Vec<Vec<Value>>),
    headline: &[String],
) -> Result<(), StudyError> {
    let mut summary = Summary::new(
        "compare",
        opts.inputs.command.clone(),
        json!({
            "target": opts.target,
            "mass": "positive relevance max(R, 0); maps reduced to one plane by the method's style (signed: channel sum; magnitude: max |.|; CAM as returned)",
            "centre_of_mass": match opts.com_normalisation {
                ComNormalisation::Mass => "fractions (row + 0.5)/H, (col + 0.5)/W from the top-left, normalised by the total positive mass; distances in units of the image side",
                ComNormalisation::Area => "area-normalised (the thesis's W·H): mass-normalised fractions (row + 0.5)/H, (col + 0.5)/W times the mean positive mass M/(W·H); distances in units of the image side",
            },
            "threshold": threshold_name(opts.threshold),
            "pointing_tolerance_px": opts.tolerance,
            "correct_map": format!("relevance mass on the object >= {}", opts.correct_mass),
            "marker_mass": "share of positive relevance on the marker mask, tagged images only",
            "model_tests": "models compared per method on the same images (object mass, object IoU, marker mass): mean difference with a 95 % BCa bootstrap interval, two-sided Wilcoxon signed-rank (scipy defaults) and paired t p-values, Holm over the measure's pairs; significant = Holm p < 0.05",
            "split": opts.inputs.split,
            "models": sel.models.iter().map(|m| m.label.clone()).collect::<Vec<_>>(),
            "images": sel.images.len(),
            "methods": sel.names(),
            "method_options": super::toolkit::method_options_json(&opts.inputs.method_options),
        }),
    );
    summary.headline = headline.to_vec();
    summary.table = Table::new(
        &[
            "method",
            "model",
            "accuracy",
            "pointing game",
            "object mass",
            "correct-map rate",
            "marker mass",
            "marker area",
        ],
        table,
    );
    if !tests.is_empty() {
        summary.tests = Table::new(&TEST_COLUMNS, tests);
    }
    summary.write(&opts.inputs.out)
}
