//! `relevance variability`, the ensemble study: how much do predictions and explanation maps of
//! identically trained models (seeds of one ensemble) vary, image by image?
//!
//! Per test image and method, over the `M ≥ 2` models:
//! - correctness (`1` if the model's predicted class is the true one) and the target-class
//!   softmax probability: mean and sample SD (`n − 1`);
//! - the **normalised** maps: each model's map divided by its own largest magnitude
//!   `max_pixels |map|` (CAMs are already per-image min-max scaled into `[0, 1]` by
//!   pytorch-grad-cam's convention and are used as returned); per pixel the mean map and the
//!   sample-SD map; the image's **map SD** is the mean over pixels of the SD map;
//! - the **raw** maps (input-space maps as the method returns them; for gradient CAMs the
//!   CAM before min-max scaling, `max(Σ_c w_c A_c, 0)` upsampled): mean and SD maps, the mean
//!   pixel SD, and that SD relative to the mean `|mean map|` (a scale-free number comparable
//!   across images). Per-image min-max scaling stretches a weak map to the same range as a
//!   strong one, so only raw SDs say whether the models' evidence itself differs.
//!
//! Then per method: map SD against mean accuracy (quadratic least-squares fit, R²) and against
//! accuracy SD (linear fit, R²); k-means of the images on standardised `(correct mean, correct
//! SD, probability mean, probability SD, map SD)` with a deterministic seed, and each cluster's
//! most central images shown as input / mean map / SD map.
//!
//! With several ensembles (`--models A B`, each a training folder of two or more seeds) the
//! tables above pool every member, and [`super::ensembles`] compares the ensembles pairwise on
//! the same images (`ensemble_tests.csv`, the summary's tests table, a headline finding).

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde_json::{Value, json};

use super::ensembles::{Ensemble, ensemble_tests, ensembles_of};
use super::fit::{Clusters, Welford, kmeans, mean_sd, standardise};
use super::maps::{MapsRequest, ModelMaps, model_maps};
use super::stats::{Fit as StatsFit, polyfit_with_band};
use super::toolkit::TargetRule;
use super::toolkit::{
    Figure, StudyImage, StudyInputs, StudyMethod, StudyModel, Summary, Table, check_same_frame,
    create_dir, figure_stem, has_class, jnum, label_for_model, load_batch, load_models,
    method_options_json, num, progress_bar, save_picture, save_plot, with_colour_bar, write_csv,
    write_figures, write_json,
};
use super::{StudyError, StudyOutcome, paired};
use crate::data::npy::write_npy;
use crate::methods::MapStyle;
use crate::methods::spec::label_file_key;
use crate::report::Colormap;
use crate::report::heatmap::{
    Scale, colourise, default_colormap, grid, input_image, normalise, overlay,
};
use crate::report::plots::{Chart, Fit, Plot, Series};
use crate::tensor::to_vec;

/// Options of the ensemble-variability study.
#[derive(Clone, Debug)]
pub struct VariabilityOptions {
    /// Models (at least two), data, images, methods (default `grad-cam`), batch (default 16),
    /// output.
    pub inputs: StudyInputs,
    /// Class explained (default: the true class, the same for every model).
    pub target: TargetRule,
    /// Number of k-means clusters (default 3).
    pub clusters: usize,
    /// Example images shown per cluster (default 4).
    pub examples: usize,
    /// Seed of k-means (default 0).
    pub seed: u64,
    /// Stop after the maps phase: what a shard of a sharded run computes (its images'
    /// predictions and maps in `cache/`); the merge summarises them all.
    pub maps_only: bool,
}

/// Methods studied when none are named.
pub const DEFAULT_METHODS: &[&str] = &["grad-cam"];

impl VariabilityOptions {
    /// The study's options with its defaults on `inputs`.
    pub fn with_inputs(inputs: StudyInputs) -> Self {
        VariabilityOptions {
            inputs,
            target: TargetRule::True,
            clusters: 3,
            examples: 4,
            seed: 0,
            maps_only: false,
        }
    }
}

impl Default for VariabilityOptions {
    fn default() -> Self {
        let inputs = StudyInputs::new(
            Vec::new(),
            PathBuf::new(),
            PathBuf::from("variability"),
            16,
            DEFAULT_METHODS,
        );
        VariabilityOptions::with_inputs(inputs)
    }
}

/// How the per-model maps are normalised before mean and SD (stated in every output).
pub const NORMALISATION: &str =
    "per model and image: map / max|map| (CAMs: as returned, min-max scaled to [0,1])";

/// The normalised plane of one model's map (see [`NORMALISATION`]).
pub fn normalise_map(plane: &[f32], style: MapStyle) -> Vec<f32> {
    if style == MapStyle::Unit {
        return plane.to_vec();
    }
    let m = plane.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    if m > 0.0 {
        plane.iter().map(|v| v / m).collect()
    } else {
        plane.to_vec()
    }
}

/// Per-pixel mean and sample SD over maps (Welford in f64; identical maps give SD exactly 0).
pub fn pixel_mean_sd(maps: &[&[f32]]) -> (Vec<f32>, Vec<f32>) {
    let n = maps.first().map_or(0, |m| m.len());
    let mut mean = vec![0.0f32; n];
    let mut sd = vec![0.0f32; n];
    for p in 0..n {
        let mut w = Welford::default();
        for m in maps {
            w.push(m[p] as f64);
        }
        mean[p] = w.mean() as f32;
        sd[p] = w.sd() as f32;
    }
    (mean, sd)
}

/// Per pixel, the mean and sample-SD maps of image `i`'s normalised maps under method `k`
/// ([`normalise_map`]) across `models`.
pub fn normalised_mean_sd(
    models: &[ModelMaps],
    k: usize,
    i: usize,
    style: MapStyle,
) -> (Vec<f32>, Vec<f32>) {
    let normed: Vec<Vec<f32>> = models
        .iter()
        .map(|mm| normalise_map(&mm.methods[k].planes[i], style))
        .collect();
    pixel_mean_sd(&normed.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// The mean of a plane's values.
pub fn mean_of(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// Ensemble statistics of one image under one method.
#[derive(Clone, Debug)]
struct ImageStats {
    correct: (f64, f64),
    prob: (f64, f64),
    map_sd: f64,
    raw_sd: f64,
    raw_sd_rel: f64,
    mean_map: Vec<f32>,
    sd_map: Vec<f32>,
    cluster: usize,
}

/// What the select phase chose.
struct Selected {
    models: Vec<StudyModel>,
    /// The images of this run (of its shards, when sharded).
    images: Vec<StudyImage>,
    /// Every image the study selects, unsharded (the maps cache's key names them).
    selection: Vec<StudyImage>,
    methods: Vec<(String, StudyMethod)>,
    /// The ensembles compared, when `--models` names several ([`ensembles_of`]).
    ensembles: Option<Vec<Ensemble>>,
}

/// The rows and findings the per-method phases add to.
#[derive(Default)]
struct Tables {
    per_model: Vec<Vec<String>>,
    ensemble: Vec<Vec<String>>,
    metrics: Vec<Vec<String>>,
    table: Vec<Vec<Value>>,
    headline: Vec<String>,
    figures: Vec<Figure>,
    clusters: serde_json::Map<String, Value>,
    /// Rows of the summary's tests table (several ensembles: [`ensemble_tests`]).
    tests: Vec<Vec<Value>>,
}

/// The fits of one method, each a least-squares polynomial with OLS inference
/// ([`polyfit_with_band`]): map SD against mean accuracy (quadratic), against accuracy SD
/// (linear), and against the target probability's mean (quadratic) and SD (linear) across the
/// members — the ensemble study's "relation between score and attention".
struct Fits {
    quad: Option<StatsFit>,
    lin: Option<StatsFit>,
    prob: Option<StatsFit>,
    prob_sd: Option<StatsFit>,
}

/// Confidence level of the fit bands.
const BAND_LEVEL: f64 = 0.95;

fn r2(f: &Option<StatsFit>) -> f64 {
    f.as_ref().map_or(f64::NAN, |f| f.r2)
}

fn coeff(f: &Option<StatsFit>, j: usize) -> f64 {
    f.as_ref().map_or(f64::NAN, |f| {
        f.coefficients.get(j).copied().unwrap_or(f64::NAN)
    })
}

/// p-value of the quadratic term's t-test (NaN for linear or missing fits).
fn curvature_p(f: &Option<StatsFit>) -> f64 {
    f.as_ref()
        .and_then(StatsFit::quadratic_p_value)
        .unwrap_or(f64::NAN)
}

/// `R² = …, curvature p = … (significant at 5 % / not significant)` for captions and headlines.
fn describe_quadratic(f: &Option<StatsFit>) -> String {
    let p = curvature_p(f);
    let verdict = if !p.is_finite() {
        "not testable"
    } else if p < 0.05 {
        "significant at the 5% level"
    } else {
        "not significant at the 5% level"
    };
    format!("R² = {:.3}, quadratic term p = {p:.3} ({verdict})", r2(f))
}

/// The fit of `degree` to `points` with its confidence band.
fn fit_points(points: &[(f64, f64)], degree: usize) -> Option<StatsFit> {
    let (x, y): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    polyfit_with_band(&x, &y, degree, BAND_LEVEL)
}

/// Runs the study; see the module documentation.
pub fn run(opts: &VariabilityOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let sel = select(opts)?;
    create_dir(&opts.inputs.out)?;
    let all = compute_maps(opts, &sel, progress)?;
    if opts.maps_only {
        return Ok(maps_outcome(opts, &sel));
    }
    let mut t = Tables::default();
    let (acc_mean, acc_sd) = accuracy(&sel, &all, &mut t);
    let tiles = input_tiles(&sel, all[0].size)?;
    let bar = progress_bar(
        sel.methods.len() * sel.images.len(),
        "variability: statistics",
        progress,
    );
    for (k, (name, method)) in sel.methods.iter().enumerate() {
        let mut stats = scores(opts, &sel, &all, k, &mut t)?;
        bar.inc(sel.images.len() as u64);
        let (z, clusters) = cluster(opts, &mut stats);
        let style = method.style();
        let pictures = map_figures(opts, &sel, name, style, &stats, &tiles, &mut t)?;
        cluster_figure(opts, &sel, name, &stats, &z, &clusters, &pictures, &mut t)?;
        let fits = fit_figures(opts, &sel, name, &stats, &mut t)?;
        method_tables(
            opts,
            &sel,
            name,
            &stats,
            &fits,
            clusters.centroids.len(),
            (acc_mean, acc_sd),
            &mut t,
        );
    }
    bar.finish_and_clear();
    if let Some(ensembles) = &sel.ensembles {
        let (rows, findings) =
            ensemble_tests(&opts.inputs.out, ensembles, &all, &sel.images, &sel.methods)?;
        t.tests = rows;
        t.headline.extend(findings);
    }
    write_tables(opts, &t)?;
    write_figures(&opts.inputs.out, &t.figures)?;
    summary(opts, &sel, &t)?;
    Ok(StudyOutcome {
        out: opts.inputs.out.clone(),
        headline: t.headline,
    })
}

/// What a shard that stops after the maps phase reports.
fn maps_outcome(opts: &VariabilityOptions, sel: &Selected) -> StudyOutcome {
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

/// Select: at least two models with one frame and one class list, images labelled for the
/// first model, methods.
fn select(opts: &VariabilityOptions) -> Result<Selected, StudyError> {
    let models = load_models(&opts.inputs.models)?;
    if models.len() < 2 {
        return Err(StudyError::Invalid(format!(
            "variability needs at least two models (an ensemble); got {}",
            models.len()
        )));
    }
    check_same_frame(&models, true)?;
    let chosen = opts.inputs.select_images(&models[0])?;
    let selection = label_for_model(chosen.images, &models[0].model)?;
    Ok(Selected {
        images: opts.inputs.shard_images(selection.clone())?,
        selection,
        methods: opts.inputs.study_methods()?,
        ensembles: ensembles_of(&opts.inputs.models)?,
        models,
    })
}

/// Maps: predictions and maps of every model (cached under `cache/<model>/`).
fn compute_maps(
    opts: &VariabilityOptions,
    sel: &Selected,
    progress: bool,
) -> Result<Vec<ModelMaps>, StudyError> {
    let batches = sel.images.len().div_ceil(opts.inputs.batch.max(1));
    let bar = progress_bar(
        sel.models.len() * batches,
        "variability: models × batches",
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

/// Accuracy of each model on the images: mean and SD over models (and the first headline).
fn accuracy(sel: &Selected, all: &[ModelMaps], t: &mut Tables) -> (f64, f64) {
    let per_model = all.iter().map(|mm| {
        sel.images
            .iter()
            .zip(&mm.probs)
            .filter(|(i, p)| has_class(mm.head, p, i.label))
            .count() as f64
            / sel.images.len() as f64
    });
    let (mean, sd) = mean_sd(per_model);
    t.headline.push(format!(
        "Accuracy of the {} models on these {} images: {mean:.3} ± {sd:.3} (mean ± SD over models).",
        sel.models.len(),
        sel.images.len(),
    ));
    (mean, sd)
}

/// The input of every image as a picture (the first model's preprocessing).
fn input_tiles(sel: &Selected, [h, w]: [usize; 2]) -> Result<Vec<RgbImage>, StudyError> {
    let first = &sel.models[0].model;
    let values = to_vec(&load_batch(&sel.images, first)?);
    let c = first.card.channels;
    let per = c * h * w;
    Ok((0..sel.images.len())
        .map(|i| {
            input_image(
                &values[i * per..(i + 1) * per],
                c,
                h as u32,
                w as u32,
                &first.card,
            )
        })
        .collect())
}

/// Scores of method `k`: the ensemble statistics of every image (mean and SD maps written under
/// `maps/<method>/`), and the per-model rows of `per_image.csv`.
fn scores(
    opts: &VariabilityOptions,
    sel: &Selected,
    all: &[ModelMaps],
    k: usize,
    t: &mut Tables,
) -> Result<Vec<ImageStats>, StudyError> {
    let (name, method) = &sel.methods[k];
    let map_dir = opts.inputs.out.join("maps").join(label_file_key(name));
    create_dir(&map_dir)?;
    let mut stats = Vec::with_capacity(sel.images.len());
    for (i, img) in sel.images.iter().enumerate() {
        let corrects: Vec<f64> = all
            .iter()
            .map(|mm| f64::from(u8::from(has_class(mm.head, &mm.probs[i], img.label))))
            .collect();
        let probs: Vec<f64> = all
            .iter()
            .map(|mm| mm.probs[i][mm.targets[i]] as f64)
            .collect();
        for (mi, mm) in all.iter().enumerate() {
            t.per_model.push(per_model_row(
                sel,
                name,
                mm,
                k,
                i,
                mi,
                corrects[mi],
                probs[mi],
            ));
        }
        let s = image_stats(all, k, i, method, &map_dir, &img.stem)?;
        stats.push(ImageStats {
            correct: mean_sd(corrects),
            prob: mean_sd(probs),
            ..s
        });
    }
    Ok(stats)
}

/// One row of `per_image.csv`: one image × method × model.
#[allow(clippy::too_many_arguments)]
fn per_model_row(
    sel: &Selected,
    name: &str,
    mm: &ModelMaps,
    k: usize,
    i: usize,
    mi: usize,
    correct: f64,
    prob: f64,
) -> Vec<String> {
    let img = &sel.images[i];
    let max_abs = |p: &[f32]| num(p.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64);
    vec![
        img.stem.clone(),
        img.class.clone(),
        name.to_string(),
        sel.models[mi].label.clone(),
        crate::metrics::scorer::argmax(&mm.probs[i]).to_string(),
        (correct as u8).to_string(),
        mm.targets[i].to_string(),
        num(prob),
        max_abs(&mm.methods[k].planes[i]),
        mm.methods[k]
            .raw
            .as_ref()
            .map_or(String::new(), |r| max_abs(&r[i])),
    ]
}

/// The map statistics of image `i` under method `k` across models (correctness and
/// probability are filled in by the caller); writes the mean and SD maps as `.npy`.
fn image_stats(
    all: &[ModelMaps],
    k: usize,
    i: usize,
    method: &StudyMethod,
    map_dir: &Path,
    stem: &str,
) -> Result<ImageStats, StudyError> {
    let style = method.style();
    let (mean_map, sd_map) = normalised_mean_sd(all, k, i, style);
    let raw_refs: Vec<&[f32]> = all
        .iter()
        .map(|mm| match &mm.methods[k].raw {
            Some(r) => r[i].as_slice(),
            None => mm.methods[k].planes[i].as_slice(),
        })
        .collect();
    // Unit maps without a raw form (non-gradient CAMs) are min-max scaled: no raw spread.
    let raw_ok = method.has_raw() || style != MapStyle::Unit;
    let (raw_mean, raw_sd_map) = pixel_mean_sd(&raw_refs);
    let raw_sd = if raw_ok {
        mean_of(&raw_sd_map)
    } else {
        f64::NAN
    };
    let raw_level = raw_mean.iter().map(|v| v.abs() as f64).sum::<f64>() / raw_mean.len() as f64;
    let raw_sd_rel = if raw_ok && raw_level > 0.0 {
        raw_sd / raw_level
    } else {
        f64::NAN
    };
    let size = [all[0].size[0], all[0].size[1]];
    let mut files = vec![("mean", &mean_map), ("sd", &sd_map)];
    if raw_ok {
        files.extend([("raw-mean", &raw_mean), ("raw-sd", &raw_sd_map)]);
    }
    for (what, plane) in files {
        write_npy(&map_dir.join(format!("{stem}.{what}.npy")), &size, plane)?;
    }
    Ok(ImageStats {
        correct: (f64::NAN, f64::NAN),
        prob: (f64::NAN, f64::NAN),
        map_sd: mean_of(&sd_map),
        raw_sd,
        raw_sd_rel,
        mean_map,
        sd_map,
        cluster: 0,
    })
}

/// k-means of the images on their standardised statistics; returns the standardised points.
fn cluster(opts: &VariabilityOptions, stats: &mut [ImageStats]) -> (Vec<Vec<f64>>, Clusters) {
    let features: Vec<Vec<f64>> = stats
        .iter()
        .map(|s| vec![s.correct.0, s.correct.1, s.prob.0, s.prob.1, s.map_sd])
        .collect();
    let z = standardise(&features);
    let clusters = kmeans(&z, opts.clusters.max(1), opts.seed, 10);
    for (s, &l) in stats.iter_mut().zip(&clusters.labels) {
        s.cluster = l;
    }
    (z, clusters)
}

/// Pictures of method `name`: per image the input, the mean overlay and the SD map (SD coloured
/// on [0, the largest SD of this method]), written under `maps/`, and the overview figure.
fn map_figures(
    opts: &VariabilityOptions,
    sel: &Selected,
    name: &str,
    style: MapStyle,
    stats: &[ImageStats],
    tiles: &[RgbImage],
    t: &mut Tables,
) -> Result<Vec<[RgbImage; 3]>, StudyError> {
    let sd_max = stats
        .iter()
        .flat_map(|s| s.sd_map.iter())
        .fold(0.0f32, |a, &v| a.max(v))
        .max(f32::MIN_POSITIVE);
    let [h, w] = sel.models[0].model.card.input_size;
    let pictures: Vec<[RgbImage; 3]> = stats
        .iter()
        .zip(tiles)
        .map(|(s, b)| {
            let norm = normalise(&s.mean_map, style, Scale::Max);
            let mean_pic = overlay(b, &norm, style, default_colormap(style), 0.7);
            let sd01: Vec<f32> = s.sd_map.iter().map(|v| v / sd_max).collect();
            [
                b.clone(),
                mean_pic,
                colourise(&sd01, w as u32, h as u32, Colormap::Inferno),
            ]
        })
        .collect();
    let map_dir = opts.inputs.out.join("maps").join(label_file_key(name));
    for (img, p) in sel.images.iter().zip(&pictures) {
        let write = |file: PathBuf, pic: &RgbImage| {
            crate::report::heatmap::write_png(&file, pic).map_err(|e| StudyError::file(&file, e))
        };
        write(map_dir.join(format!("{}.mean.png", img.stem)), &p[1])?;
        write(
            map_dir.join(format!("{}.sd.png", img.stem)),
            &with_colour_bar(&p[2], Colormap::Inferno),
        )?;
    }
    let overview: Vec<Vec<RgbImage>> = pictures.iter().take(12).map(|p| p.to_vec()).collect();
    t.figures.push(save_picture(
        &opts.inputs.out,
        &figure_stem("maps", name),
        &with_colour_bar(&grid(&overview, 3), Colormap::Inferno),
        &format!("{name}: ensemble mean and SD maps"),
        &format!(
            "One row per image (first {} of the run): the input, the mean over the {} models of the normalised {name} maps ({NORMALISATION}) laid over it, and the per-pixel SD map (inferno, 0 to {sd_max:.3}, the largest SD of this method; the colour bar on the right). Bright SD = the models disagree there.",
            overview.len(),
            sel.models.len()
        ),
    )?);
    Ok(pictures)
}

/// Examples of each cluster (the images closest to its centroid) as a figure, and the cluster
/// statistics for `clusters.json`.
#[allow(clippy::too_many_arguments)]
fn cluster_figure(
    opts: &VariabilityOptions,
    sel: &Selected,
    name: &str,
    stats: &[ImageStats],
    z: &[Vec<f64>],
    clusters: &Clusters,
    pictures: &[[RgbImage; 3]],
    t: &mut Tables,
) -> Result<(), StudyError> {
    let shown = opts.examples.max(1);
    let mut rows: Vec<Vec<RgbImage>> = Vec::new();
    let mut info = Vec::new();
    for (cl, centroid) in clusters.centroids.iter().enumerate() {
        let d = |i: usize| {
            z[i].iter()
                .zip(centroid)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
        };
        let mut members: Vec<usize> = (0..stats.len())
            .filter(|&i| stats[i].cluster == cl)
            .collect();
        members.sort_by(|&a, &b| d(a).total_cmp(&d(b)));
        rows.push(
            members
                .iter()
                .take(shown)
                .flat_map(|&i| pictures[i].iter().cloned())
                .collect(),
        );
        let avg = |f: &dyn Fn(&ImageStats) -> f64| {
            members.iter().map(|&i| f(&stats[i])).sum::<f64>() / members.len().max(1) as f64
        };
        info.push(json!({
            "cluster": cl,
            "size": members.len(),
            "correct_mean": jnum(avg(&|s| s.correct.0)),
            "correct_sd": jnum(avg(&|s| s.correct.1)),
            "target_prob_mean": jnum(avg(&|s| s.prob.0)),
            "target_prob_sd": jnum(avg(&|s| s.prob.1)),
            "map_sd": jnum(avg(&|s| s.map_sd)),
            "examples": members.iter().take(shown).map(|&i| sel.images[i].stem.clone()).collect::<Vec<_>>(),
        }));
    }
    let maps_file = figure_stem("maps", name);
    t.figures.push(save_picture(
        &opts.inputs.out,
        &figure_stem("clusters", name),
        &grid(&rows, 3),
        &format!("{name}: k-means clusters of images"),
        &format!(
            "One row per cluster (cluster 0 at the top; {} clusters by k-means on the standardised per-image correctness mean/SD, target-probability mean/SD and map SD, seed {}). Each example is a triple: input, mean normalised map, SD map (same colour scale as {maps_file}.png). The examples are the images nearest the cluster centre; clusters.json lists sizes and mean statistics.",
            clusters.centroids.len(),
            opts.seed
        ),
    )?);
    t.clusters.insert(name.to_string(), Value::Array(info));
    Ok(())
}

/// A scatter of images with an optional fitted curve and its confidence band.
fn scatter(pts: &[(f64, f64)], fit: &Option<StatsFit>, what: &str, x: &str, title: &str) -> Plot {
    let fit = fit.as_ref().map(|f| {
        let (lo, hi) = pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, _)| {
                (lo.min(x), hi.max(x))
            });
        let grid: Vec<f64> = (0..=60).map(|k| lo + (hi - lo) * k as f64 / 60.0).collect();
        Fit {
            coeffs: f.coefficients.clone(),
            label: format!("{what} fit, R² = {:.3}", f.r2),
            band: grid
                .iter()
                .zip(f.band(&grid))
                .map(|(&x, (low, high))| (x, low, high))
                .collect(),
        }
    });
    let series = vec![Series {
        label: "images".into(),
        points: pts.to_vec(),
    }];
    Plot::new(
        title,
        x,
        "map SD (mean over pixels)",
        Chart::Scatter { series, fit },
    )
}

/// Map SD against mean accuracy and against accuracy SD, against the target probability's mean
/// and SD (and, where there are raw maps, the relative raw SD against mean accuracy), with
/// least-squares fits and 95 % confidence bands.
fn fit_figures(
    opts: &VariabilityOptions,
    sel: &Selected,
    name: &str,
    stats: &[ImageStats],
    t: &mut Tables,
) -> Result<Fits, StudyError> {
    let n_models = sel.models.len();
    let against = |x: &dyn Fn(&ImageStats) -> f64| -> Vec<(f64, f64)> {
        stats.iter().map(|s| (x(s), s.map_sd)).collect()
    };
    let (pts_acc, pts_sd) = (against(&|s| s.correct.0), against(&|s| s.correct.1));
    let (pts_prob, pts_prob_sd) = (against(&|s| s.prob.0), against(&|s| s.prob.1));
    let fits = Fits {
        quad: fit_points(&pts_acc, 2),
        lin: fit_points(&pts_sd, 1),
        prob: fit_points(&pts_prob, 2),
        prob_sd: fit_points(&pts_prob_sd, 1),
    };
    let acc_stem = figure_stem("sd-vs-accuracy", name);
    let band =
        "The shaded band is the 95% confidence band of the fitted mean (OLS, t-distribution).";
    t.figures.push(save_plot(
        &opts.inputs.out,
        &acc_stem,
        &scatter(&pts_acc, &fits.quad, "quadratic", "mean accuracy over the ensemble", &format!("{name}: map SD against mean accuracy")),
        &format!(
            "Each point is an image: x = fraction of the {n_models} models that classify it correctly, y = mean over pixels of the per-pixel SD of the normalised {name} maps. The curve is a least-squares quadratic ({}); an inverted U means maps vary most where the ensemble is split. {band}",
            describe_quadratic(&fits.quad)
        ),
    )?);
    t.figures.push(save_plot(
        &opts.inputs.out,
        &figure_stem("sd-vs-accuracy-sd", name),
        &scatter(&pts_sd, &fits.lin, "linear", "SD of correctness over the ensemble", &format!("{name}: map SD against accuracy SD")),
        &format!(
            "Each point is an image: x = sample SD over the {n_models} models of correctness (0/1), y = map SD as in {acc_stem}. The line is a least-squares linear fit (R² = {:.3}). {band}",
            r2(&fits.lin)
        ),
    )?);
    t.figures.push(save_plot(
        &opts.inputs.out,
        &figure_stem("sd-vs-target-prob", name),
        &scatter(&pts_prob, &fits.prob, "quadratic", "mean probability of the explained class over the ensemble", &format!("{name}: map SD against target probability")),
        &format!(
            "Each point is an image: x = mean over the {n_models} models of the probability of the explained class ({}), y = map SD as in {acc_stem}. The curve is a least-squares quadratic ({}). {band}",
            format!("{:?}", opts.target).to_lowercase(),
            describe_quadratic(&fits.prob)
        ),
    )?);
    t.figures.push(save_plot(
        &opts.inputs.out,
        &figure_stem("sd-vs-target-prob-sd", name),
        &scatter(&pts_prob_sd, &fits.prob_sd, "linear", "SD of the target probability over the ensemble", &format!("{name}: map SD against target-probability SD")),
        &format!(
            "Each point is an image: x = sample SD over the {n_models} models of the probability of the explained class, y = map SD as in {acc_stem}. The line is a least-squares linear fit (R² = {:.3}). {band}",
            r2(&fits.prob_sd)
        ),
    )?);
    let pts_raw: Vec<(f64, f64)> = stats
        .iter()
        .filter(|s| s.raw_sd_rel.is_finite())
        .map(|s| (s.correct.0, s.raw_sd_rel))
        .collect();
    if !pts_raw.is_empty() {
        let quad_raw = fit_points(&pts_raw, 2);
        let mut plot = scatter(
            &pts_raw,
            &quad_raw,
            "quadratic",
            "mean accuracy over the ensemble",
            &format!("{name}: raw-map SD against mean accuracy"),
        );
        plot.y_label = "raw map SD / mean |raw map|".into();
        t.figures.push(save_plot(
            &opts.inputs.out,
            &figure_stem("raw-sd-vs-accuracy", name),
            &plot,
            &format!(
                "As {acc_stem}, but on the raw (un-normalised) maps: y = mean pixel SD across models divided by the mean |mean map| of the image, a scale-free spread that per-image min-max scaling cannot distort. Quadratic fit: {}. {band}",
                describe_quadratic(&quad_raw)
            ),
        )?);
    }
    Ok(fits)
}

/// Tables of one method: its rows of `per_image_ensemble.csv`, `metrics.csv` and the summary
/// table, and its headline.
#[allow(clippy::too_many_arguments)]
fn method_tables(
    opts: &VariabilityOptions,
    sel: &Selected,
    name: &str,
    stats: &[ImageStats],
    fits: &Fits,
    clusters: usize,
    (acc_mean, acc_sd): (f64, f64),
    t: &mut Tables,
) {
    let n_models = sel.models.len();
    for (img, s) in sel.images.iter().zip(stats) {
        t.ensemble.push(vec![
            img.stem.clone(),
            img.class.clone(),
            name.to_string(),
            n_models.to_string(),
            num(s.correct.0),
            num(s.correct.1),
            num(s.prob.0),
            num(s.prob.1),
            num(s.map_sd),
            num(s.raw_sd),
            num(s.raw_sd_rel),
            s.cluster.to_string(),
        ]);
    }
    let (map_sd_mean, _) = mean_sd(stats.iter().map(|s| s.map_sd));
    let (raw_rel_mean, _) = mean_sd(stats.iter().map(|s| s.raw_sd_rel).filter(|v| v.is_finite()));
    let (raw_sd_mean, _) = mean_sd(stats.iter().map(|s| s.raw_sd).filter(|v| v.is_finite()));
    let (quad, lin) = (&fits.quad, &fits.lin);
    t.metrics.push(vec![
        name.to_string(),
        n_models.to_string(),
        sel.images.len().to_string(),
        num(acc_mean),
        num(acc_sd),
        num(map_sd_mean),
        num(raw_sd_mean),
        num(raw_rel_mean),
        num(coeff(quad, 0)),
        num(coeff(quad, 1)),
        num(coeff(quad, 2)),
        num(r2(quad)),
        num(curvature_p(quad)),
        num(coeff(lin, 0)),
        num(coeff(lin, 1)),
        num(r2(lin)),
        num(coeff(&fits.prob, 0)),
        num(coeff(&fits.prob, 1)),
        num(coeff(&fits.prob, 2)),
        num(r2(&fits.prob)),
        num(curvature_p(&fits.prob)),
        num(coeff(&fits.prob_sd, 0)),
        num(coeff(&fits.prob_sd, 1)),
        num(r2(&fits.prob_sd)),
        clusters.to_string(),
        NORMALISATION.into(),
        "sample SD (n-1) over models".into(),
        format!("{:?}", opts.target).to_lowercase(),
        format!("{:?}", opts.inputs.split).to_lowercase(),
    ]);
    t.table.push(vec![
        json!(name),
        jnum(map_sd_mean),
        jnum(raw_rel_mean),
        jnum(r2(quad)),
        jnum(r2(lin)),
        json!(clusters),
    ]);
    let raw_text = if raw_rel_mean.is_finite() {
        format!(" (raw maps: SD {raw_rel_mean:.3} × the mean |map|)")
    } else {
        " (no raw maps for this method)".into()
    };
    t.headline.push(format!(
        "{name}: mean per-pixel SD of the normalised maps across the {n_models} models is {map_sd_mean:.3}{raw_text}; map SD vs mean accuracy: quadratic {}; vs accuracy SD: linear R² = {:.3}; vs target probability: quadratic {}.",
        describe_quadratic(quad),
        r2(lin),
        describe_quadratic(&fits.prob)
    ));
}

const PER_IMAGE_COLUMNS: [&str; 10] = [
    "image",
    "class",
    "method",
    "model",
    "predicted",
    "correct",
    "target",
    "target_prob",
    "map_max_abs",
    "raw_map_max_abs",
];

const ENSEMBLE_COLUMNS: [&str; 12] = [
    "image",
    "class",
    "method",
    "models",
    "correct_mean",
    "correct_sd",
    "target_prob_mean",
    "target_prob_sd",
    "map_sd",
    "raw_map_sd",
    "raw_map_sd_rel",
    "cluster",
];

const METRICS_COLUMNS: [&str; 29] = [
    "method",
    "models",
    "images",
    "accuracy_mean",
    "accuracy_sd",
    "map_sd_mean",
    "raw_map_sd_mean",
    "raw_map_sd_rel_mean",
    "quad_c0",
    "quad_c1",
    "quad_c2",
    "quad_r2",
    "quad_c2_p",
    "lin_c0",
    "lin_c1",
    "lin_r2",
    "prob_quad_c0",
    "prob_quad_c1",
    "prob_quad_c2",
    "prob_quad_r2",
    "prob_quad_c2_p",
    "prob_sd_lin_c0",
    "prob_sd_lin_c1",
    "prob_sd_lin_r2",
    "clusters",
    "normalisation",
    "sd",
    "target",
    "split",
];

/// Tables: the three CSV files and `clusters.json`.
fn write_tables(opts: &VariabilityOptions, t: &Tables) -> Result<(), StudyError> {
    let out = &opts.inputs.out;
    write_csv(&out.join("per_image.csv"), &PER_IMAGE_COLUMNS, &t.per_model)?;
    write_csv(
        &out.join("per_image_ensemble.csv"),
        &ENSEMBLE_COLUMNS,
        &t.ensemble,
    )?;
    write_csv(&out.join("metrics.csv"), &METRICS_COLUMNS, &t.metrics)?;
    write_json(
        &out.join("clusters.json"),
        &Value::Object(t.clusters.clone()),
    )
}

/// Summary: `summary.json` with the conventions, the headline and the digest table.
fn summary(opts: &VariabilityOptions, sel: &Selected, t: &Tables) -> Result<(), StudyError> {
    let mut summary = Summary::new(
        "variability",
        opts.inputs.command.clone(),
        json!({
            "normalisation": NORMALISATION,
            "raw": "input-space maps as returned; gradient CAMs before min-max scaling (max(sum_c w_c A_c, 0), bilinear upsampling); other CAMs have no raw form",
            "map_sd": "mean over pixels of the per-pixel sample SD (n-1) across models",
            "raw_map_sd_rel": "raw map SD / mean over pixels of |raw mean map|",
            "correctness": "1 if the model gives the image its true class: the argmax is that class (softmax, binary logit), or its probability is at least 0.5 (sigmoid, multi-label)",
            "target": opts.target,
            "target_prob": "probability of the explained class under the model's head (softmax unless the card says sigmoid or binary-logit)",
            "fits": "least-squares polynomials with OLS inference: quadratic-term t-test p-values (quad_c2_p, prob_quad_c2_p) and 95% confidence bands of the fitted mean in the figures",
            "clusters": {"k": opts.clusters, "seed": opts.seed, "features": ["correct_mean", "correct_sd", "target_prob_mean", "target_prob_sd", "map_sd"], "standardised": true},
            "split": opts.inputs.split,
            "models": sel.models.iter().map(|m| m.label.clone()).collect::<Vec<_>>(),
            "images": sel.images.len(),
            "methods": sel.methods.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "method_options": method_options_json(&opts.inputs.method_options),
        }),
    );
    summary.headline = t.headline.clone();
    summary.table = Table::new(
        &[
            "method",
            "map SD",
            "raw map SD (relative)",
            "R² quadratic (vs accuracy)",
            "R² linear (vs accuracy SD)",
            "clusters",
        ],
        t.table.clone(),
    );
    if !t.tests.is_empty() {
        summary.tests = Table::new(&paired::TEST_COLUMNS, t.tests.clone());
    }
    summary.write(&opts.inputs.out)
}
