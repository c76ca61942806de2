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
//! of their centres of mass, averaged over images (per model and pooled).

use std::path::PathBuf;

use image::{Rgb, RgbImage};
use serde_json::json;

use super::common::{
    Figure, SplitChoice, create_dir, jnum, load_batch, load_mask, load_models, num, progress_bar,
    save_picture, save_plot, select_images, write_csv, write_figures, write_summary,
};
use super::fit::mean_sd;
use super::maps::{ModelMaps, TargetClass, model_maps};
use super::{StudyError, StudyOutcome};
use crate::methods::{Explainer, MethodOptions, by_name};
use crate::metrics::MapView;
use crate::metrics::centre::{Mass, centre_of_mass};
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
    /// Models (weights files, `ensemble.json` folders, `seed-*` folders).
    pub models: Vec<PathBuf>,
    /// ImageFolder data set (object masks `<stem>.mask.png`, marker masks `<stem>.marker.png`).
    pub data: PathBuf,
    /// Which images (default: the test split).
    pub split: SplitChoice,
    /// At most this many images (default: all of the split).
    pub limit: Option<usize>,
    /// Images per forward pass (default 16).
    pub batch: usize,
    /// Methods (default `grad-cam`, `saliency`, `input-x-gradient`, `lrp-epsilon-plus`).
    pub methods: Vec<String>,
    /// CAM layer (default: each method's default layer).
    pub layer: Option<String>,
    /// Class explained (default: the true class).
    pub target: TargetClass,
    /// How maps are binarised for IoUs (default: the top 20 % of pixels).
    pub threshold: Threshold,
    /// Pointing-game tolerance in pixels (default 0: the maximum must be on the object).
    pub tolerance: f64,
    /// Relevance mass on the object from which a map counts as correct (default 0.5).
    pub correct_mass: f64,
    /// Images shown in the heatmap grid per model (default 8).
    pub grid_images: usize,
    /// Output folder.
    pub out: PathBuf,
    /// The command line, recorded in `summary.json`.
    pub command: Option<Vec<String>>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            models: Vec::new(),
            data: PathBuf::new(),
            split: SplitChoice::Test,
            limit: None,
            batch: 16,
            methods: [
                "grad-cam",
                "saliency",
                "input-x-gradient",
                "lrp-epsilon-plus",
            ]
            .map(String::from)
            .to_vec(),
            layer: None,
            target: TargetClass::True,
            threshold: Threshold::TopFraction(0.2),
            tolerance: 0.0,
            correct_mass: 0.5,
            grid_images: 8,
            out: PathBuf::from("compare"),
            command: None,
        }
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

/// Runs the study; see the module documentation.
pub fn run(opts: &CompareOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let models = load_models(&opts.models)?;
    let first = &models[0].model;
    for m in &models[1..] {
        if m.model.card.input_size != first.card.input_size {
            return Err(StudyError::file(
                &m.path,
                "input size differs from the first model's",
            ));
        }
    }
    let images = select_images(
        &opts.data,
        opts.split,
        opts.limit,
        models[0].split.as_ref(),
        first,
    )?;
    let mopts = MethodOptions {
        layer: opts.layer.clone(),
        batch: opts.batch.max(1),
        ..MethodOptions::default()
    };
    let methods: Vec<Box<dyn Explainer>> = opts
        .methods
        .iter()
        .map(|n| by_name(n.trim(), &mopts))
        .collect::<Result<_, _>>()?;
    if methods.is_empty() {
        return Err(StudyError::Invalid("no method given (--methods)".into()));
    }
    let out = &opts.out;
    create_dir(out)?;
    let batches = images.len().div_ceil(opts.batch.max(1));
    let bar = progress_bar(
        models.len() * batches,
        "compare: models × batches",
        progress,
    );
    let mut all: Vec<ModelMaps> = Vec::new();
    for m in &models {
        all.push(model_maps(
            m,
            &images,
            &methods,
            opts.target,
            opts.layer.as_deref(),
            opts.batch,
            &out.join("cache").join(&m.label),
            &|| bar.inc(1),
        )?);
    }
    bar.finish_and_clear();
    let size = all[0].size;
    let [h, w] = size;
    let objects: Vec<Option<Vec<bool>>> = images
        .iter()
        .map(|i| i.mask.as_deref().map(|p| load_mask(p, first)).transpose())
        .collect::<Result<_, _>>()?;
    let markers: Vec<Option<Vec<bool>>> = images
        .iter()
        .map(|i| i.marker.as_deref().map(|p| load_mask(p, first)).transpose())
        .collect::<Result<_, _>>()?;
    let marker_area: Vec<f64> = markers
        .iter()
        .map(|m| {
            m.as_ref().map_or(f64::NAN, |m| {
                m.iter().filter(|&&v| v).count() as f64 / m.len() as f64
            })
        })
        .collect();

    // Per image × method × model.
    let mut rows: Vec<Row> = Vec::new();
    let nm = methods.len();
    // iou[model][a][b] and com distance, accumulated over images.
    let mut iou_acc = vec![vec![vec![Vec::<f64>::new(); nm]; nm]; models.len()];
    let mut com_acc = vec![vec![vec![Vec::<f64>::new(); nm]; nm]; models.len()];
    let stat_bar = progress_bar(images.len() * models.len(), "compare: metrics", progress);
    for (mi, mm) in all.iter().enumerate() {
        for ii in 0..images.len() {
            let mut bins = Vec::with_capacity(nm);
            let mut coms = Vec::with_capacity(nm);
            for k in 0..nm {
                let map = &mm.methods[k].planes[ii];
                let com = centre_of_mass(&MapView::new(map, size)?, Mass::Positive)
                    .map(|c| (c.row_fraction, c.col_fraction));
                let object = match &objects[ii] {
                    Some(mask) => mask_agreement(map, size, mask, opts.threshold, opts.tolerance)?,
                    None => None,
                };
                let marker = match &markers[ii] {
                    Some(mask) if mask.iter().any(|&v| v) => {
                        relevance_mass_accuracy(map, mask, true)?
                    }
                    _ => None,
                };
                bins.push(binarise(map, opts.threshold, None)?);
                coms.push(com);
                rows.push(Row {
                    image: ii,
                    method: k,
                    model: mi,
                    com,
                    object,
                    marker,
                });
            }
            for a in 0..nm {
                for b in 0..nm {
                    iou_acc[mi][a][b].push(iou(&bins[a], &bins[b])?);
                    if let (Some(ca), Some(cb)) = (coms[a], coms[b]) {
                        com_acc[mi][a][b].push(dist(ca, cb));
                    }
                }
            }
            stat_bar.inc(1);
        }
    }
    stat_bar.finish_and_clear();

    let method_names: Vec<String> = methods.iter().map(|m| m.name().to_string()).collect();
    let conv_threshold = threshold_name(opts.threshold);
    let target_name = format!("{:?}", opts.target).to_lowercase();

    // per_image.csv
    let per_image: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let img = &images[r.image];
            let mm = &all[r.model];
            let pred = super::common::argmax(&mm.probs[r.image]);
            let obj_centre = objects[r.image].as_ref().and_then(|m| mask_centre(m, size));
            let o = r.object;
            vec![
                img.stem.clone(),
                img.class.clone(),
                method_names[r.method].clone(),
                models[r.model].label.clone(),
                mm.targets[r.image].to_string(),
                pred.to_string(),
                u8::from(pred == img.label).to_string(),
                r.com.map_or(String::new(), |c| num(c.0)),
                r.com.map_or(String::new(), |c| num(c.1)),
                match (r.com, obj_centre) {
                    (Some(a), Some(b)) => num(dist(a, b)),
                    _ => String::new(),
                },
                o.map_or(String::new(), |o| u8::from(o.hit).to_string()),
                o.map_or(String::new(), |o| num(o.mass)),
                o.map_or(String::new(), |o| num(o.rank)),
                o.map_or(String::new(), |o| num(o.iou)),
                o.map_or(String::new(), |o| {
                    u8::from(o.mass >= opts.correct_mass).to_string()
                }),
                r.marker.map_or(String::new(), num),
                num(marker_area[r.image]),
            ]
        })
        .collect();
    write_csv(
        &out.join("per_image.csv"),
        &[
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
        ],
        &per_image,
    )?;

    // metrics.csv: one row per method × model.
    let mut metric_rows = Vec::new();
    let mut table = Vec::new();
    let mut headline = Vec::new();
    for (mi, model) in models.iter().enumerate() {
        for (k, name) in method_names.iter().enumerate() {
            let sel: Vec<&Row> = rows
                .iter()
                .filter(|r| r.model == mi && r.method == k)
                .collect();
            let objs: Vec<MaskAgreement> = sel.iter().filter_map(|r| r.object).collect();
            let marks: Vec<(f64, f64)> = sel
                .iter()
                .filter_map(|r| r.marker.map(|m| (m, marker_area[r.image])))
                .collect();
            let acc = images
                .iter()
                .zip(&all[mi].probs)
                .filter(|(i, p)| super::common::argmax(p) == i.label)
                .count() as f64
                / images.len() as f64;
            let pg = finite_mean(objs.iter().map(|o| f64::from(u8::from(o.hit))));
            let mass = finite_mean(objs.iter().map(|o| o.mass));
            let rank = finite_mean(objs.iter().map(|o| o.rank));
            let oiou = finite_mean(objs.iter().map(|o| o.iou));
            let correct = finite_mean(
                objs.iter()
                    .map(|o| f64::from(u8::from(o.mass >= opts.correct_mass))),
            );
            let marker_mass = finite_mean(marks.iter().map(|m| m.0));
            let marker_area_mean = finite_mean(marks.iter().map(|m| m.1));
            let (com_r, _) = mean_sd(sel.iter().filter_map(|r| r.com.map(|c| c.0)));
            let (com_c, _) = mean_sd(sel.iter().filter_map(|r| r.com.map(|c| c.1)));
            metric_rows.push(vec![
                name.clone(),
                model.label.clone(),
                images.len().to_string(),
                num(acc),
                objs.len().to_string(),
                num(pg),
                num(mass),
                num(rank),
                num(oiou),
                num(correct),
                marks.len().to_string(),
                num(marker_mass),
                num(marker_area_mean),
                num(com_r),
                num(com_c),
                target_name.clone(),
                conv_threshold.clone(),
                "positive".into(),
                opts.tolerance.to_string(),
                opts.correct_mass.to_string(),
            ]);
            table.push(vec![
                json!(name),
                json!(model.label),
                jnum(acc),
                jnum(pg),
                jnum(mass),
                jnum(correct),
                jnum(marker_mass),
                jnum(marker_area_mean),
            ]);
            if !marks.is_empty() {
                headline.push(format!(
                    "{} / {name}: {:.1}% of the positive relevance lies on the confounder marker (mean over {} tagged images; the marker covers {:.1}% of the image) and {:.1}% on the object; pointing game {:.2}.",
                    model.label,
                    100.0 * marker_mass,
                    marks.len(),
                    100.0 * marker_area_mean,
                    100.0 * mass,
                    pg
                ));
            } else if !objs.is_empty() {
                headline.push(format!(
                    "{} / {name}: pointing game {pg:.2}, {:.1}% of the positive relevance on the object, correct-map rate {correct:.2}.",
                    model.label,
                    100.0 * mass
                ));
            }
        }
    }
    write_csv(
        &out.join("metrics.csv"),
        &[
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
        ],
        &metric_rows,
    )?;

    // Method × method matrices.
    let pooled = |acc: &Vec<Vec<Vec<Vec<f64>>>>, mi: Option<usize>| -> Vec<Vec<f64>> {
        (0..nm)
            .map(|a| {
                (0..nm)
                    .map(|b| {
                        finite_mean(
                            acc.iter()
                                .enumerate()
                                .filter(|(i, _)| mi.is_none_or(|m| m == *i))
                                .flat_map(|(_, per)| per[a][b].iter().copied()),
                        )
                    })
                    .collect()
            })
            .collect()
    };
    let mut figures: Vec<Figure> = Vec::new();
    let mut matrix_rows = Vec::new();
    let scopes: Vec<Option<usize>> = std::iter::once(None)
        .chain(
            (models.len() > 1)
                .then_some(0..models.len())
                .into_iter()
                .flatten()
                .map(Some),
        )
        .collect();
    for scope in &scopes {
        let label = scope.map_or("all".to_string(), |m| models[m].label.clone());
        let ious = pooled(&iou_acc, *scope);
        let coms = pooled(&com_acc, *scope);
        for a in 0..nm {
            for b in 0..nm {
                matrix_rows.push(vec![
                    label.clone(),
                    method_names[a].clone(),
                    method_names[b].clone(),
                    num(ious[a][b]),
                    num(coms[a][b]),
                ]);
            }
        }
        let suffix = scope.map_or(String::new(), |m| format!("-{}", models[m].label));
        let scope_text = match scope {
            None => format!(
                "averaged over {} images and {} model(s)",
                images.len(),
                models.len()
            ),
            Some(m) => format!(
                "model {}, averaged over {} images",
                models[*m].label,
                images.len()
            ),
        };
        figures.push(save_plot(
            out,
            &format!("iou-matrix{suffix}"),
            &Plot::new(
                &format!("IoU of thresholded maps ({label})"),
                "method",
                "method",
                Chart::Matrix {
                    rows: method_names.clone(),
                    columns: method_names.clone(),
                    values: ious.clone(),
                    max: 1.0,
                },
            ),
            &format!(
                "Cell (a, b): mean IoU of the {conv_threshold} pixels of method a's map and method b's map on the same image and model, {scope_text}. Symmetric with ones on the diagonal; high values = the methods highlight the same pixels."
            ),
        )?);
        let dmax = coms
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        figures.push(save_plot(
            out,
            &format!("com-distance{suffix}"),
            &Plot::new(
                &format!("Distance of centres of mass ({label})"),
                "method",
                "method",
                Chart::Matrix {
                    rows: method_names.clone(),
                    columns: method_names.clone(),
                    values: coms,
                    max: dmax.max(1e-9),
                },
            ),
            &format!(
                "Cell (a, b): mean distance between the centres of mass of the positive relevance of methods a and b, in units of the image side (0 = same place, 1 = a full side apart), {scope_text}."
            ),
        )?);
        if scope.is_none() && nm > 1 {
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
            if best.0.is_finite() {
                headline.push(format!(
                    "Most similar methods: {} and {} (IoU of {conv_threshold} pixels {:.2}); least similar: {} and {} ({:.2}).",
                    method_names[best.1], method_names[best.2], best.0, method_names[worst.1], method_names[worst.2], worst.0
                ));
            }
        }
    }
    // Centre-of-mass positions, one series per method (all models pooled).
    let com_series: Vec<Series> = method_names
        .iter()
        .enumerate()
        .map(|(k, name)| Series {
            label: name.clone(),
            points: rows
                .iter()
                .filter(|r| r.method == k)
                .filter_map(|r| r.com.map(|(row, col)| (col, 1.0 - row)))
                .collect(),
        })
        .collect();
    figures.push(save_plot(
        out,
        "centres-of-mass",
        &Plot::new(
            "Centres of mass of the maps",
            "column (fraction of the width, left = 0)",
            "row (fraction of the height, top = 1)",
            Chart::Scatter {
                series: com_series,
                fit: None,
            },
        ),
        &format!(
            "Each point is one map's centre of positive relevance (image × model; {} model(s)), coloured by method, in image coordinates with the top of the image at the top (y = 1 − row fraction). A method whose points crowd a corner looks at a corner — where the synthetic data's confounder tag sits.",
            models.len()
        ),
    )?);
    if headline.is_empty() {
        headline.push(format!(
            "{} method(s) compared on {} images with {} model(s); the data has no object or marker masks, so only centres of mass and method agreement are reported.",
            nm,
            images.len(),
            models.len()
        ));
    }
    write_csv(
        &out.join("method_matrix.csv"),
        &["model", "method_a", "method_b", "iou", "com_distance"],
        &matrix_rows,
    )?;

    // Heatmap grids: rows = images, columns = input (outlined masks) + one overlay per method.
    let shown = images.len().min(opts.grid_images.max(1));
    let x = load_batch(&images[..shown], first)?;
    let xv = to_vec(&x);
    let c = first.card.channels;
    let per = c * h * w;
    for (mi, mm) in all.iter().enumerate() {
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
            if let Some(m) = &objects[ii] {
                masks.push((m, [0, 200, 0]));
            }
            if let Some(m) = &markers[ii] {
                masks.push((m, [0, 220, 255]));
            }
            let mut row = vec![outlined(&base, &masks, size)];
            for (k, m) in methods.iter().enumerate() {
                let style = m.style();
                let norm = normalise(&mm.methods[k].planes[ii], style, Scale::default());
                row.push(overlay(&base, &norm, style, default_colormap(style), 0.7));
            }
            tiles.push(row);
        }
        let label = &models[mi].label;
        figures.push(save_picture(
            out,
            &format!("grid-{label}.png"),
            &grid(&tiles, 3),
            &format!("Maps of {label}: inputs × methods"),
            &format!(
                "One row per image (the first {shown}); columns: the input with the object mask outlined in green and the confounder marker in cyan (where present), then the maps of {} laid over it (signed maps: blue negative / red positive, scaled to the 99.5th percentile of |R|; CAMs and magnitudes: inferno).",
                method_names.join(", ")
            ),
        )?);
    }

    write_figures(out, &figures)?;
    write_summary(
        out,
        "compare",
        opts.command.as_deref(),
        json!({
            "target": opts.target,
            "mass": "positive relevance max(R, 0); maps reduced to one plane by the method's style (signed: channel sum; magnitude: max |.|; CAM as returned)",
            "centre_of_mass": "fractions (row + 0.5)/H, (col + 0.5)/W from the top-left; distances in units of the image side",
            "threshold": conv_threshold,
            "pointing_tolerance_px": opts.tolerance,
            "correct_map": format!("relevance mass on the object >= {}", opts.correct_mass),
            "marker_mass": "share of positive relevance on the marker mask, tagged images only",
            "split": opts.split,
            "models": models.iter().map(|m| m.label.clone()).collect::<Vec<_>>(),
            "images": images.len(),
        }),
        &headline,
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
    )?;
    Ok(StudyOutcome {
        out: out.clone(),
        headline,
    })
}
