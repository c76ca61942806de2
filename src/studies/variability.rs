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

use std::path::PathBuf;

use image::RgbImage;
use serde_json::{Value, json};

use super::common::{
    Figure, SplitChoice, StudyImage, create_dir, jnum, load_batch, load_models, num, progress_bar,
    save_picture, save_plot, select_images, with_colour_bar, write_csv, write_figures, write_json,
    write_summary,
};
use super::fit::{Welford, kmeans, mean_sd, polyfit, standardise};
use super::maps::{ModelMaps, TargetClass, has_raw, model_maps};
use super::{StudyError, StudyOutcome};
use crate::data::npy::write_npy;
use crate::methods::{Explainer, MapStyle, MethodOptions, by_name};
use crate::report::Colormap;
use crate::report::heatmap::{
    Scale, colorize, default_colormap, grid, input_image, normalise, overlay,
};
use crate::report::plots::{Chart, Fit, Plot, Series};
use crate::tensor::to_vec;

/// Options of the ensemble-variability study.
#[derive(Clone, Debug)]
pub struct VariabilityOptions {
    /// Models (weights files, `ensemble.json` folders, `seed-*` folders); at least two.
    pub models: Vec<PathBuf>,
    /// ImageFolder data set.
    pub data: PathBuf,
    /// Which images (default: the test split).
    pub split: SplitChoice,
    /// At most this many images (default: all of the split).
    pub limit: Option<usize>,
    /// Images per forward pass (default 16).
    pub batch: usize,
    /// Explanation methods (default `grad-cam`).
    pub methods: Vec<String>,
    /// CAM layer (default: each method's default layer).
    pub layer: Option<String>,
    /// Class explained (default: the true class, the same for every model).
    pub target: TargetClass,
    /// Number of k-means clusters (default 3).
    pub clusters: usize,
    /// Example images shown per cluster (default 4).
    pub examples: usize,
    /// Seed of k-means (default 0).
    pub seed: u64,
    /// Output folder.
    pub out: PathBuf,
    /// The command line, recorded in `summary.json`.
    pub command: Option<Vec<String>>,
}

impl Default for VariabilityOptions {
    fn default() -> Self {
        VariabilityOptions {
            models: Vec::new(),
            data: PathBuf::new(),
            split: SplitChoice::Test,
            limit: None,
            batch: 16,
            methods: vec!["grad-cam".into()],
            layer: None,
            target: TargetClass::True,
            clusters: 3,
            examples: 4,
            seed: 0,
            out: PathBuf::from("variability"),
            command: None,
        }
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

fn mean_of(v: &[f32]) -> f64 {
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

/// Runs the study; see the module documentation.
pub fn run(opts: &VariabilityOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let models = load_models(&opts.models)?;
    if models.len() < 2 {
        return Err(StudyError::Invalid(format!(
            "variability needs at least two models (an ensemble); got {}",
            models.len()
        )));
    }
    let first = &models[0].model;
    for m in &models[1..] {
        if m.model.card.input_size != first.card.input_size
            || m.model.card.num_classes != first.card.num_classes
        {
            return Err(StudyError::file(
                &m.path,
                "input size or classes differ from the first model's",
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
        "variability: models × batches",
        progress,
    );
    let mut all: Vec<ModelMaps> = Vec::new();
    for m in &models {
        let dir = out.join("cache").join(&m.label);
        all.push(model_maps(
            m,
            &images,
            &methods,
            opts.target,
            opts.layer.as_deref(),
            opts.batch,
            &dir,
            &|| bar.inc(1),
        )?);
    }
    bar.finish_and_clear();
    let [h, w] = all[0].size;
    let n_models = models.len();

    let mut per_model_rows = Vec::new();
    let mut ensemble_rows = Vec::new();
    let mut metric_rows = Vec::new();
    let mut table_rows = Vec::new();
    let mut headline = Vec::new();
    let mut figures: Vec<Figure> = Vec::new();
    let mut clusters_json = serde_json::Map::new();

    let acc_per_model: Vec<f64> = all
        .iter()
        .map(|mm| {
            images
                .iter()
                .zip(&mm.probs)
                .filter(|(i, p)| super::common::argmax(p) == i.label)
                .count() as f64
                / images.len() as f64
        })
        .collect();
    let (acc_mean, acc_sd) = mean_sd(acc_per_model.iter().copied());
    headline.push(format!(
        "Accuracy of the {n_models} models on these {} images: {:.3} ± {:.3} (mean ± SD over models).",
        images.len(),
        acc_mean,
        acc_sd
    ));

    let pictures_bar = progress_bar(
        methods.len() * images.len(),
        "variability: statistics",
        progress,
    );
    let inputs = load_batch(&images, first)?;
    let input_values = to_vec(&inputs);
    let c = first.card.channels;
    let per_input = c * h * w;
    let base = |i: usize| {
        input_image(
            &input_values[i * per_input..(i + 1) * per_input],
            c,
            h as u32,
            w as u32,
            &first.card,
        )
    };

    for (k, method) in methods.iter().enumerate() {
        let name = method.name().to_string();
        let style = method.style();
        let map_dir = out.join("maps").join(&name);
        create_dir(&map_dir)?;
        let mut stats: Vec<ImageStats> = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            let corrects: Vec<f64> = all
                .iter()
                .map(|mm| f64::from(u8::from(super::common::argmax(&mm.probs[i]) == img.label)))
                .collect();
            let probs: Vec<f64> = all
                .iter()
                .map(|mm| mm.probs[i][mm.targets[i]] as f64)
                .collect();
            let normed: Vec<Vec<f32>> = all
                .iter()
                .map(|mm| normalise_map(&mm.methods[k].planes[i], style))
                .collect();
            let refs: Vec<&[f32]> = normed.iter().map(Vec::as_slice).collect();
            let (mean_map, sd_map) = pixel_mean_sd(&refs);
            let raw_refs: Vec<&[f32]> = all
                .iter()
                .map(|mm| match &mm.methods[k].raw {
                    Some(r) => r[i].as_slice(),
                    None => mm.methods[k].planes[i].as_slice(),
                })
                .collect();
            let raw_ok = has_raw(&name) || style != MapStyle::Unit;
            let (raw_mean, raw_sd_map) = pixel_mean_sd(&raw_refs);
            let raw_sd = if raw_ok {
                mean_of(&raw_sd_map)
            } else {
                f64::NAN
            };
            let raw_level =
                raw_mean.iter().map(|v| v.abs() as f64).sum::<f64>() / raw_mean.len() as f64;
            let raw_sd_rel = if raw_ok && raw_level > 0.0 {
                raw_sd / raw_level
            } else {
                f64::NAN
            };
            write_npy(
                &map_dir.join(format!("{}.mean.npy", img.stem)),
                &[h, w],
                &mean_map,
            )?;
            write_npy(
                &map_dir.join(format!("{}.sd.npy", img.stem)),
                &[h, w],
                &sd_map,
            )?;
            if raw_ok {
                write_npy(
                    &map_dir.join(format!("{}.raw-mean.npy", img.stem)),
                    &[h, w],
                    &raw_mean,
                )?;
                write_npy(
                    &map_dir.join(format!("{}.raw-sd.npy", img.stem)),
                    &[h, w],
                    &raw_sd_map,
                )?;
            }
            for (mi, mm) in all.iter().enumerate() {
                let plane = &mm.methods[k].planes[i];
                per_model_rows.push(vec![
                    img.stem.clone(),
                    img.class.clone(),
                    name.clone(),
                    models[mi].label.clone(),
                    super::common::argmax(&mm.probs[i]).to_string(),
                    (corrects[mi] as u8).to_string(),
                    mm.targets[i].to_string(),
                    num(probs[mi]),
                    num(plane.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64),
                    mm.methods[k].raw.as_ref().map_or(String::new(), |r| {
                        num(r[i].iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64)
                    }),
                ]);
            }
            stats.push(ImageStats {
                correct: mean_sd(corrects),
                prob: mean_sd(probs),
                map_sd: mean_of(&sd_map),
                raw_sd,
                raw_sd_rel,
                mean_map,
                sd_map,
                cluster: 0,
            });
            pictures_bar.inc(1);
        }
        // k-means on the standardised statistics.
        let features: Vec<Vec<f64>> = stats
            .iter()
            .map(|s| vec![s.correct.0, s.correct.1, s.prob.0, s.prob.1, s.map_sd])
            .collect();
        let z = standardise(&features);
        let clusters = kmeans(&z, opts.clusters.max(1), opts.seed, 10);
        for (s, &l) in stats.iter_mut().zip(&clusters.labels) {
            s.cluster = l;
        }
        // Pictures: mean overlay and SD map (SD coloured on [0, largest SD of this method]).
        let sd_max = stats
            .iter()
            .flat_map(|s| s.sd_map.iter())
            .fold(0.0f32, |a, &v| a.max(v))
            .max(f32::MIN_POSITIVE);
        let cmap = default_colormap(style);
        let tiles: Vec<[RgbImage; 3]> = stats
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let b = base(i);
                let mean_pic = overlay(
                    &b,
                    &normalise(&s.mean_map, style, Scale::Max),
                    style,
                    cmap,
                    0.7,
                );
                let sd01: Vec<f32> = s.sd_map.iter().map(|v| v / sd_max).collect();
                let sd_pic = colorize(&sd01, w as u32, h as u32, Colormap::Inferno);
                [b, mean_pic, sd_pic]
            })
            .collect();
        for (img, t) in images.iter().zip(&tiles) {
            let p = map_dir.join(format!("{}.mean.png", img.stem));
            crate::report::heatmap::write_png(&p, &t[1]).map_err(|e| StudyError::file(&p, e))?;
            let p = map_dir.join(format!("{}.sd.png", img.stem));
            crate::report::heatmap::write_png(&p, &with_colour_bar(&t[2], Colormap::Inferno))
                .map_err(|e| StudyError::file(&p, e))?;
        }
        let overview: Vec<Vec<RgbImage>> = tiles.iter().take(12).map(|t| t.to_vec()).collect();
        figures.push(save_picture(
            out,
            &format!("maps-{name}.png"),
            &with_colour_bar(&grid(&overview, 3), Colormap::Inferno),
            &format!("{name}: ensemble mean and SD maps"),
            &format!(
                "One row per image (first {} of the run): the input, the mean over the {n_models} models of the normalised {name} maps ({NORMALISATION}) laid over it, and the per-pixel SD map (inferno, 0 to {sd_max:.3}, the largest SD of this method; the colour bar on the right). Bright SD = the models disagree there.",
                overview.len()
            ),
        )?);
        // Examples of each cluster: the images closest to its centroid.
        let mut cluster_rows: Vec<Vec<RgbImage>> = Vec::new();
        let mut cluster_info = Vec::new();
        for (cl, centroid) in clusters.centroids.iter().enumerate() {
            let mut members: Vec<usize> = (0..images.len())
                .filter(|&i| stats[i].cluster == cl)
                .collect();
            let d = |i: usize| {
                z[i].iter()
                    .zip(centroid)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
            };
            members.sort_by(|&a, &b| d(a).total_cmp(&d(b)));
            let mut row: Vec<RgbImage> = Vec::new();
            for &i in members.iter().take(opts.examples.max(1)) {
                row.extend(tiles[i].iter().cloned());
            }
            cluster_rows.push(row);
            let avg = |f: &dyn Fn(&ImageStats) -> f64| {
                members.iter().map(|&i| f(&stats[i])).sum::<f64>() / members.len().max(1) as f64
            };
            cluster_info.push(json!({
                "cluster": cl,
                "size": members.len(),
                "correct_mean": jnum(avg(&|s| s.correct.0)),
                "correct_sd": jnum(avg(&|s| s.correct.1)),
                "target_prob_mean": jnum(avg(&|s| s.prob.0)),
                "target_prob_sd": jnum(avg(&|s| s.prob.1)),
                "map_sd": jnum(avg(&|s| s.map_sd)),
                "examples": members.iter().take(opts.examples.max(1)).map(|&i| images[i].stem.clone()).collect::<Vec<_>>(),
            }));
        }
        figures.push(save_picture(
            out,
            &format!("clusters-{name}.png"),
            &grid(&cluster_rows, 3),
            &format!("{name}: k-means clusters of images"),
            &format!(
                "One row per cluster (cluster 0 at the top; {} clusters by k-means on the standardised per-image correctness mean/SD, target-probability mean/SD and map SD, seed {}). Each example is a triple: input, mean normalised map, SD map (same colour scale as maps-{name}.png). The examples are the images nearest the cluster centre; clusters.json lists sizes and mean statistics.",
                clusters.centroids.len(),
                opts.seed
            ),
        )?);
        clusters_json.insert(name.clone(), Value::Array(cluster_info));
        // Scatter plots with fits.
        let pts_acc: Vec<(f64, f64)> = stats.iter().map(|s| (s.correct.0, s.map_sd)).collect();
        let pts_sd: Vec<(f64, f64)> = stats.iter().map(|s| (s.correct.1, s.map_sd)).collect();
        let quad = polyfit(&pts_acc, 2);
        let lin = polyfit(&pts_sd, 1);
        let fit_of = |f: &Option<super::fit::PolyFit>, what: &str| {
            f.as_ref().map(|f| Fit {
                coeffs: f.coeffs.clone(),
                label: format!("{what} fit, R² = {:.3}", f.r_squared),
            })
        };
        let scatter = |pts: &[(f64, f64)], fit: Option<Fit>, x: &str, title: &str| {
            Plot::new(
                title,
                x,
                "map SD (mean over pixels)",
                Chart::Scatter {
                    series: vec![Series {
                        label: "images".into(),
                        points: pts.to_vec(),
                    }],
                    fit,
                },
            )
        };
        let r2 = |f: &Option<super::fit::PolyFit>| f.as_ref().map_or(f64::NAN, |f| f.r_squared);
        figures.push(save_plot(
            out,
            &format!("sd-vs-accuracy-{name}"),
            &scatter(&pts_acc, fit_of(&quad, "quadratic"), "mean accuracy over the ensemble", &format!("{name}: map SD against mean accuracy")),
            &format!(
                "Each point is an image: x = fraction of the {n_models} models that classify it correctly, y = mean over pixels of the per-pixel SD of the normalised {name} maps. The curve is a least-squares quadratic (R² = {:.3}); an inverted U means maps vary most where the ensemble is split.",
                r2(&quad)
            ),
        )?);
        figures.push(save_plot(
            out,
            &format!("sd-vs-accuracy-sd-{name}"),
            &scatter(&pts_sd, fit_of(&lin, "linear"), "SD of correctness over the ensemble", &format!("{name}: map SD against accuracy SD")),
            &format!(
                "Each point is an image: x = sample SD over the {n_models} models of correctness (0/1), y = map SD as in sd-vs-accuracy-{name}. The line is a least-squares linear fit (R² = {:.3}).",
                r2(&lin)
            ),
        )?);
        let pts_raw: Vec<(f64, f64)> = stats
            .iter()
            .filter(|s| s.raw_sd_rel.is_finite())
            .map(|s| (s.correct.0, s.raw_sd_rel))
            .collect();
        if !pts_raw.is_empty() {
            let quad_raw = polyfit(&pts_raw, 2);
            let mut plot = scatter(
                &pts_raw,
                fit_of(&quad_raw, "quadratic"),
                "mean accuracy over the ensemble",
                &format!("{name}: raw-map SD against mean accuracy"),
            );
            plot.y_label = "raw map SD / mean |raw map|".into();
            figures.push(save_plot(
                out,
                &format!("raw-sd-vs-accuracy-{name}"),
                &plot,
                &format!(
                    "As sd-vs-accuracy-{name}, but on the raw (un-normalised) maps: y = mean pixel SD across models divided by the mean |mean map| of the image, a scale-free spread that per-image min-max scaling cannot distort. Quadratic fit R² = {:.3}.",
                    r2(&quad_raw)
                ),
            )?);
        }
        for (img, s) in images.iter().zip(&stats) {
            ensemble_rows.push(vec![
                img.stem.clone(),
                img.class.clone(),
                name.clone(),
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
        let (raw_rel_mean, _) =
            mean_sd(stats.iter().map(|s| s.raw_sd_rel).filter(|v| v.is_finite()));
        let (raw_sd_mean, _) = mean_sd(stats.iter().map(|s| s.raw_sd).filter(|v| v.is_finite()));
        let coeff = |f: &Option<super::fit::PolyFit>, j: usize| {
            f.as_ref()
                .map_or(f64::NAN, |f| f.coeffs.get(j).copied().unwrap_or(f64::NAN))
        };
        metric_rows.push(vec![
            name.clone(),
            n_models.to_string(),
            images.len().to_string(),
            num(acc_mean),
            num(acc_sd),
            num(map_sd_mean),
            num(raw_sd_mean),
            num(raw_rel_mean),
            num(coeff(&quad, 0)),
            num(coeff(&quad, 1)),
            num(coeff(&quad, 2)),
            num(r2(&quad)),
            num(coeff(&lin, 0)),
            num(coeff(&lin, 1)),
            num(r2(&lin)),
            clusters.centroids.len().to_string(),
            NORMALISATION.into(),
            "sample SD (n-1) over models".into(),
            format!("{:?}", opts.target).to_lowercase(),
            format!("{:?}", opts.split).to_lowercase(),
        ]);
        table_rows.push(vec![
            json!(name),
            jnum(map_sd_mean),
            jnum(raw_rel_mean),
            jnum(r2(&quad)),
            jnum(r2(&lin)),
            json!(clusters.centroids.len()),
        ]);
        headline.push(format!(
            "{name}: mean per-pixel SD of the normalised maps across the {n_models} models is {map_sd_mean:.3}{}; map SD vs mean accuracy: quadratic R² = {:.3}; vs accuracy SD: linear R² = {:.3}.",
            if raw_rel_mean.is_finite() {
                format!(" (raw maps: SD {raw_rel_mean:.3} × the mean |map|)")
            } else {
                " (no raw maps for this method)".into()
            },
            r2(&quad),
            r2(&lin)
        ));
    }
    pictures_bar.finish_and_clear();

    write_csv(
        &out.join("per_image.csv"),
        &[
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
        ],
        &per_model_rows,
    )?;
    write_csv(
        &out.join("per_image_ensemble.csv"),
        &[
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
        ],
        &ensemble_rows,
    )?;
    write_csv(
        &out.join("metrics.csv"),
        &[
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
            "lin_c0",
            "lin_c1",
            "lin_r2",
            "clusters",
            "normalisation",
            "sd",
            "target",
            "split",
        ],
        &metric_rows,
    )?;
    write_json(&out.join("clusters.json"), &Value::Object(clusters_json))?;
    write_figures(out, &figures)?;
    write_summary(
        out,
        "variability",
        opts.command.as_deref(),
        json!({
            "normalisation": NORMALISATION,
            "raw": "input-space maps as returned; gradient CAMs before min-max scaling (max(sum_c w_c A_c, 0), bilinear upsampling); other CAMs have no raw form",
            "map_sd": "mean over pixels of the per-pixel sample SD (n-1) across models",
            "raw_map_sd_rel": "raw map SD / mean over pixels of |raw mean map|",
            "correctness": "1 if the model's argmax is the true class",
            "target": opts.target,
            "target_prob": "softmax probability of the explained class",
            "clusters": {"k": opts.clusters, "seed": opts.seed, "features": ["correct_mean", "correct_sd", "target_prob_mean", "target_prob_sd", "map_sd"], "standardised": true},
            "split": opts.split,
            "models": models.iter().map(|m| m.label.clone()).collect::<Vec<_>>(),
            "images": images.len(),
        }),
        &headline,
        &[
            "method",
            "map SD",
            "raw map SD (relative)",
            "R² quadratic (vs accuracy)",
            "R² linear (vs accuracy SD)",
            "clusters",
        ],
        table_rows,
    )?;
    let _: &[StudyImage] = &images;
    Ok(StudyOutcome {
        out: out.clone(),
        headline,
    })
}
