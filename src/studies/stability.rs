//! `relevance stability`: how much a map changes when the image is augmented.
//!
//! For every image, model, method and augmentation: the augmented image is explained for the
//! class explained on the original (its prediction, or the true label), the map is mapped back to
//! the original frame through the augmentation's inverse warp
//! ([`crate::data::augment::Augmented::to_original`], bilinear), and compared with the original's
//! map on the valid region (original pixels the augmented image still shows): Pearson, Spearman,
//! SSIM and the IoU of the top-k % pixels ([`crate::metrics::similarity`]). Whether the
//! prediction changed (a *flip*) is recorded beside each comparison, so map changes can be read
//! against prediction changes. Maps are reduced to one plane as `relevance explain` draws them.
//!
//! Augmentations act on the image in `[0, 1]` after it is brought to the model's input size,
//! before normalisation. Photometric ones (brightness, noise, blur, …) keep the geometry: their
//! maps are compared pixel by pixel.
//!
//! Outputs in `out/`: `metrics.csv` (per model × method × augmentation, and pooled over models),
//! `per_image.csv`, `method_tests.csv` and, with several models, `model_tests.csv` (paired tests,
//! [`super::paired`]), `summary.json`, `figures.json`, box plots
//! `stability_<metric>.{png,svg}`, `stability_by_model.{png,svg}`, `prediction_flips.{png,svg}`,
//! and the resume unit `per_image/<model>/<method>/<stem>.json`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::maps::{saved_maps_dir, saved_maps_note, write_probs};
use super::toolkit::TargetRule;
use super::toolkit::{
    Figure, PreparedMethod, ScoredRun, StudyImage, StudyInputs, StudyMethod, StudyModel, Summary,
    Table, create_dir, enlarge, explain_planes_grouped, load_models, load_planes, mean_sd, median,
    method_options_json, model_label, num, overlay_tile, per_image_dir, planes_to_input,
    predictions, progress_bar, resume, save_plot, write_csv, write_grid, write_json,
};
use super::{StudyError, StudyOutcome, paired};
use crate::data::augment::{Aug, Augmented, augment};
use crate::data::npy::write_npy;
use crate::io::safe_component;
use crate::methods::pass::{forward_all, stack_rows};
use crate::methods::spec::label_file_key;
use crate::metrics::MapView;
use crate::metrics::similarity::{
    DataRange, SsimOptions, SsimWindow, pearson, spearman, ssim, top_k_iou,
};
use crate::report::plots::{Chart, Plot};

/// A named augmentation of the study (a sequence of [`Aug`]; empty = identity).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedAug {
    /// Name in outputs, e.g. `rotate:10`.
    pub name: String,
    /// The transforms, applied in order. A `Noise` seed is replaced per image (see
    /// [`NamedAug::concrete`]).
    pub augs: Vec<Aug>,
}

impl NamedAug {
    /// The transforms for one image: noise streams are drawn from `seed` and the image's key,
    /// so each image gets its own noise and a re-run the same.
    pub fn concrete(&self, seed: u64, key: &str) -> Vec<Aug> {
        self.augs
            .iter()
            .map(|a| match a {
                Aug::Noise { std, .. } => Aug::Noise {
                    std: *std,
                    seed: crate::rng::Rng::derive(seed, &format!("{}/{key}", self.name)).next_u64(),
                },
                other => other.clone(),
            })
            .collect()
    }
}

impl std::str::FromStr for NamedAug {
    type Err = String;
    /// `identity`, `hflip`, `vflip`, `rotate[:DEG]` (10), `translate[:PX]` (4, right and down),
    /// `scale[:S]` (1.1), `brightness[:F]` (1.2), `contrast[:F]` (0.8), `gamma[:G]` (1.2),
    /// `noise[:STD]` (0.05 of the [0, 1] range), `blur[:SIGMA]` (1 pixel).
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        let bad = || {
            format!(
                "bad augmentation '{s}'; use identity, hflip, vflip, rotate[:DEG], translate[:PX], \
                 scale[:S], brightness[:F], contrast[:F], gamma[:G], noise[:STD], blur[:SIGMA]"
            )
        };
        let value = |default: f64| -> Result<f64, String> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(bad),
            }
        };
        let affine = |degrees: f64, scale: f64, t: f64| Aug::Affine {
            degrees,
            scale,
            translate: [t, t],
            shear: [0.0, 0.0],
        };
        let augs = match kind {
            "identity" | "none" if arg.is_none() => vec![],
            "hflip" if arg.is_none() => vec![Aug::FlipHorizontal],
            "vflip" if arg.is_none() => vec![Aug::FlipVertical],
            "rotate" => vec![Aug::Rotate {
                degrees: value(10.0)?,
            }],
            "translate" => vec![affine(0.0, 1.0, value(4.0)?)],
            "scale" => {
                let v = value(1.1)?;
                if v <= 0.0 {
                    return Err(bad());
                }
                vec![affine(0.0, v, 0.0)]
            }
            "brightness" => vec![Aug::Brightness {
                factor: value(1.2)? as f32,
            }],
            "contrast" => vec![Aug::Contrast {
                factor: value(0.8)? as f32,
            }],
            "gamma" => vec![Aug::Gamma {
                gamma: value(1.2)? as f32,
            }],
            "noise" => vec![Aug::Noise {
                std: value(0.05)? as f32,
                seed: 0,
            }],
            "blur" => {
                let sigma = value(1.0)?;
                if !(0.0..=MAX_BLUR_SIGMA).contains(&sigma) {
                    return Err(format!(
                        "--augment '{s}': blur σ must lie in 0..={MAX_BLUR_SIGMA} pixels \
                         (a larger σ already averages any image the models take)"
                    ));
                }
                vec![Aug::Blur {
                    sigma: sigma as f32,
                }]
            }
            _ => return Err(bad()),
        };
        let name = match arg {
            Some(a) => format!("{kind}:{a}"),
            None => kind.to_string(),
        };
        Ok(NamedAug { name, augs })
    }
}

/// Largest blur σ `blur:SIGMA` accepts, in pixels: beyond a few image sides the blur is a
/// plain average, and the kernel (radius 3σ) would only cost time.
pub const MAX_BLUR_SIGMA: f64 = 1000.0;

/// The default augmentations: `hflip, rotate:10, brightness:1.2, noise:0.05, blur:1`.
pub fn default_augmentations() -> Vec<NamedAug> {
    DEFAULT_AUGMENTATIONS
        .iter()
        .map(|s| s.parse().expect("default augmentations parse"))
        .collect()
}

/// Names of [`default_augmentations`].
pub const DEFAULT_AUGMENTATIONS: &[&str] = &[
    "hflip",
    "rotate:10",
    "brightness:1.2",
    "noise:0.05",
    "blur:1",
];

/// Options of the stability study.
#[derive(Clone, Debug)]
pub struct StabilityOptions {
    /// Models, data, images, methods (default [`DEFAULT_METHODS`]), batch (default 32: rows —
    /// images × (1 + augmentations) — per explanation pass, at least one image), output.
    pub inputs: StudyInputs,
    /// Augmentations (default [`default_augmentations`]).
    pub augmentations: Vec<NamedAug>,
    /// Class explained on both images: the prediction on the original (default) or the label.
    pub target: TargetRule,
    /// Fraction of valid pixels in the top-k IoU (default 0.1).
    pub top_k: f64,
    /// SSIM parameters (default Wang et al. 2004: Gaussian σ 1.5, data range of both maps).
    pub ssim: SsimOptions,
    /// Seed of the noise augmentation streams.
    pub seed: u64,
    /// Also write maps as `.npy` under `maps/<model>/<method>/` (original `<stem>.npy`, mapped
    /// back `<stem>.<augmentation>.npy`), with the originals' class probabilities and the
    /// model's `source.json` beside them (the originals reviewable by `relevance review`).
    pub save_maps: bool,
}

impl StabilityOptions {
    /// Defaults for the given models, data and output: test split, batch 32, methods
    /// `saliency, input-x-gradient, grad-cam, lrp-epsilon-plus`, the default augmentations,
    /// predicted class, top-10 % IoU, Wang SSIM.
    pub fn new(models: Vec<PathBuf>, data: PathBuf, out: PathBuf) -> Self {
        Self::with_inputs(StudyInputs::new(models, data, out, 32, DEFAULT_METHODS))
    }

    /// The study's options with its defaults on `inputs`.
    pub fn with_inputs(inputs: StudyInputs) -> Self {
        StabilityOptions {
            inputs,
            augmentations: default_augmentations(),
            target: TargetRule::Predicted,
            top_k: 0.1,
            ssim: SsimOptions::default(),
            seed: 0,
            save_maps: false,
        }
    }
}

/// Methods compared when none are named.
pub const DEFAULT_METHODS: &[&str] = &[
    "saliency",
    "input-x-gradient",
    "grad-cam",
    "lrp-epsilon-plus",
];

/// The four similarity measures, in output order.
const MEASURES: [&str; 4] = ["pearson", "spearman", "ssim", "iou"];

/// One image × method × model × augmentation comparison.
#[derive(Clone, Debug)]
struct Row {
    model: String,
    method: String,
    image: String,
    label: String,
    aug: String,
    class: usize,
    predicted: usize,
    predicted_aug: usize,
    prob: f64,
    prob_aug: f64,
    valid_fraction: f64,
    values: [f64; 4],
}

impl Row {
    fn flipped(&self) -> bool {
        self.predicted != self.predicted_aug
    }

    /// The augmentation's entry in the image's resume file.
    fn record(&self) -> Value {
        let mut rec = json!({
            "name": self.aug,
            "predicted": self.predicted_aug,
            "prob": self.prob_aug,
            "flipped": self.flipped(),
            "valid_fraction": self.valid_fraction,
        });
        for (k, v) in MEASURES.iter().zip(self.values) {
            rec[*k] = if v.is_finite() { json!(v) } else { Value::Null };
        }
        rec
    }
}

fn key_of(opts: &StabilityOptions) -> String {
    let augs: Vec<String> = opts
        .augmentations
        .iter()
        .map(|a| format!("{}={:?}", a.name, a.augs))
        .collect();
    format!(
        "{:?}|{}|{:?}|{}|{}|{:?}",
        opts.target,
        augs.join(";"),
        opts.ssim,
        opts.top_k,
        opts.seed,
        opts.inputs.method_options
    )
}

fn rows_from_json(v: &Value, key: &str, model: &str, method: &str) -> Option<Vec<Row>> {
    if v.get("key")?.as_str()? != key {
        return None;
    }
    let f = |x: &Value, k: &str| x.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let image = v.get("image")?.as_str()?.to_string();
    let label = v.get("label")?.as_str()?.to_string();
    let class = v.get("class")?.as_u64()? as usize;
    let predicted = v.get("predicted")?.as_u64()? as usize;
    let prob = f(v, "prob");
    v.get("augmentations")?
        .as_array()?
        .iter()
        .map(|a| {
            Some(Row {
                model: model.into(),
                method: method.into(),
                image: image.clone(),
                label: label.clone(),
                aug: a.get("name")?.as_str()?.into(),
                class,
                predicted,
                predicted_aug: a.get("predicted")?.as_u64()? as usize,
                prob,
                prob_aug: f(a, "prob"),
                valid_fraction: f(a, "valid_fraction"),
                values: MEASURES.map(|m| f(a, m)),
            })
        })
        .collect()
}

/// Runs the study; see the module documentation for what it writes.
pub fn run(opts: &StabilityOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let models = load_models(&opts.inputs.models)?;
    run_with_models(opts, &models, progress)
}

/// [`run`] on models already loaded (`opts.inputs.models` is ignored). Phases: select → maps and
/// scores (per chunk of images, resumable) → tables → figures → summary.
pub fn run_with_models(
    opts: &StabilityOptions,
    models: &[StudyModel],
    progress: bool,
) -> Result<StudyOutcome, StudyError> {
    check_options(opts, models)?;
    let ScoredRun {
        methods,
        images,
        rows,
        facts,
    } = opts.inputs.select_and_score(
        models,
        saved_maps_note(opts.save_maps, &opts.inputs, models, opts.target),
        |m, name, method, images, rows| scores(opts, m, name, method, images, progress, rows),
    )?;
    let grid = example_grid(opts, &models[0], &methods, &images[0])?;
    write_outputs(opts, &rows, &facts, grid)
}

/// Options that cannot work: no models or augmentations, an augmentation named twice, a top-k
/// fraction outside (0, 1].
fn check_options(opts: &StabilityOptions, models: &[StudyModel]) -> Result<(), StudyError> {
    if models.is_empty() {
        return Err(StudyError::Invalid("no models".into()));
    }
    if opts.augmentations.is_empty() {
        return Err(StudyError::Invalid("no augmentations given".into()));
    }
    let mut names: Vec<&str> = opts.augmentations.iter().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(StudyError::Invalid("an augmentation is named twice".into()));
    }
    if !(opts.top_k > 0.0 && opts.top_k <= 1.0) {
        return Err(StudyError::Invalid(format!(
            "top-k fraction must be in (0, 1], got {}",
            opts.top_k
        )));
    }
    Ok(())
}

/// Maps and scores of one model × method: images an earlier run stored under
/// `per_image/<model>/<method>/` with the same key are read back, the rest computed in chunks
/// (an image and its augmentations share a pass). Returns how many images were computed and
/// how many reused.
fn scores(
    opts: &StabilityOptions,
    m: &StudyModel,
    name: &str,
    method: &StudyMethod,
    images: &[StudyImage],
    progress: bool,
    rows: &mut Vec<Row>,
) -> Result<(usize, usize), StudyError> {
    let dir = per_image_dir(&opts.inputs.out, &m.label, name)?;
    let key = format!(
        "{}|{}",
        key_of(opts),
        super::toolkit::weights_stamp(&m.model)
    );
    let bar = progress_bar(images.len(), format!("{} · {name}", m.label), progress);
    let (done, todo) = resume(&dir, images, |v| rows_from_json(v, &key, &m.label, name));
    rows.extend(done.into_iter().flatten());
    bar.inc((images.len() - todo.len()) as u64);
    let per_pass = (opts.inputs.batch / (1 + opts.augmentations.len())).max(1);
    let method = method.prepare(&m.model)?;
    for chunk in todo.chunks(per_pass) {
        rows.extend(compare_chunk(opts, m, name, &method, chunk, &dir, &key)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok((todo.len(), images.len() - todo.len()))
}

/// The first image and its augmentations with every method's map (first model), as a grid.
fn example_grid(
    opts: &StabilityOptions,
    m: &StudyModel,
    methods: &[(String, StudyMethod)],
    img: &StudyImage,
) -> Result<Figure, StudyError> {
    let card = &m.model.card;
    let planes = load_planes(img, card)?;
    let chw = [planes.channels, planes.height, planes.width];
    let mut versions = vec![planes.clone()];
    let mut keys = vec![img.stem.clone()];
    for a in &opts.augmentations {
        versions.push(augment(&planes, &a.concrete(opts.seed, &img.stem)).image);
        keys.push(format!("{}/{}", img.stem, a.name));
    }
    let x = stack_rows(
        versions.iter().map(|p| planes_to_input(p, card)).collect(),
        chw,
    );
    let acts = forward_all(&m.model, &x)?;
    let preds = predictions(&m.model, &acts, versions.len())?;
    let target = match opts.target {
        TargetRule::Predicted => preds[0].0,
        TargetRule::True => model_label(img, card).unwrap_or(preds[0].0),
    };
    let targets = vec![target; versions.len()];
    let bases: Vec<image::RgbImage> = versions
        .iter()
        .map(|p| {
            crate::report::heatmap::input_image(
                &planes_to_input(p, card),
                chw[0],
                chw[1] as u32,
                chw[2] as u32,
                card,
            )
        })
        .collect();
    let mut rows = vec![bases.iter().map(enlarge).collect::<Vec<_>>()];
    for (_, method) in methods {
        let prepared = method.prepare(&m.model)?;
        let maps = explain_planes_grouped(&prepared, &x, &acts, &targets, &keys, keys.len())?;
        rows.push(
            maps.iter()
                .zip(&bases)
                .map(|(map, base)| overlay_tile(base, map, method.style()))
                .collect(),
        );
    }
    let names: Vec<&str> = methods.iter().map(|(n, _)| n.as_str()).collect();
    let augs: Vec<&str> = opts.augmentations.iter().map(|a| a.name.as_str()).collect();
    let flips: Vec<String> = preds[1..]
        .iter()
        .zip(&augs)
        .filter(|(p, _)| p.0 != preds[0].0)
        .map(|(_, a)| a.to_string())
        .collect();
    write_grid(
        &opts.inputs.out,
        "examples",
        &rows,
        &format!(
            "Maps of {} and its augmentations (model {})",
            img.stem, m.label
        ),
        &format!(
            "Columns: the original image, then {} as the model saw them. First row: the images; \
             then one row per method ({}) with its map of class {} laid over each image, in the \
             augmented frame (the study compares them after mapping back). Each map is scaled on \
             its own. Prediction changed under: {}.",
            augs.join(", "),
            names.join(", "),
            card.class_name(target),
            if flips.is_empty() {
                "none".to_string()
            } else {
                flips.join(", ")
            }
        ),
    )
}

/// A chunk of images with their augmentations as one batch: per image the original row, then
/// one row per augmentation.
struct AugmentedChunk {
    inputs: Vec<Vec<f32>>,
    augmented: Vec<Vec<Augmented>>,
    keys: Vec<String>,
    chw: [usize; 3],
}

/// Reads the images of `chunk` and augments each (augmentations must keep the size).
fn augment_chunk(
    opts: &StabilityOptions,
    card: &crate::graph::ModelCard,
    chunk: &[&StudyImage],
) -> Result<AugmentedChunk, StudyError> {
    let mut b = AugmentedChunk {
        inputs: Vec::new(),
        augmented: Vec::new(),
        keys: Vec::new(),
        chw: [0; 3],
    };
    for img in chunk {
        let planes = load_planes(img, card)?;
        b.chw = [planes.channels, planes.height, planes.width];
        b.inputs.push(planes_to_input(&planes, card));
        b.keys.push(img.stem.clone());
        let mut these = Vec::new();
        for a in &opts.augmentations {
            let aug = augment(&planes, &a.concrete(opts.seed, &img.stem));
            if [aug.image.channels, aug.image.height, aug.image.width] != b.chw {
                return Err(StudyError::Invalid(format!(
                    "augmentation {} changes the image size; use one that keeps it",
                    a.name
                )));
            }
            b.inputs.push(planes_to_input(&aug.image, card));
            b.keys.push(format!("{}/{}", img.stem, a.name));
            these.push(aug);
        }
        b.augmented.push(these);
    }
    Ok(b)
}

/// The class explained for each image of `chunk` (`--target`), repeated for its augmentations.
fn chunk_targets(
    opts: &StabilityOptions,
    m: &StudyModel,
    chunk: &[&StudyImage],
    preds: &[(usize, Vec<f32>)],
) -> Result<Vec<usize>, StudyError> {
    let per_image = 1 + opts.augmentations.len();
    let mut targets = Vec::with_capacity(chunk.len() * per_image);
    for (i, img) in chunk.iter().enumerate() {
        let t = match opts.target {
            TargetRule::Predicted => preds[i * per_image].0,
            TargetRule::True => model_label(img, &m.model.card).ok_or_else(|| {
                StudyError::file(
                    &img.path,
                    format!("class '{}' is not a class of model {}", img.class, m.label),
                )
            })?,
        };
        targets.extend(std::iter::repeat_n(t, per_image));
    }
    Ok(targets)
}

/// Explains a chunk of images and their augmentations with one method and compares each
/// mapped-back map with the original's.
fn compare_chunk(
    opts: &StabilityOptions,
    m: &StudyModel,
    name: &str,
    method: &PreparedMethod,
    chunk: &[&StudyImage],
    dir: &Path,
    key: &str,
) -> Result<Vec<Row>, StudyError> {
    let per_image = 1 + opts.augmentations.len();
    let b = augment_chunk(opts, &m.model.card, chunk)?;
    let x = stack_rows(b.inputs, b.chw);
    let acts = forward_all(&m.model, &x)?;
    let preds = predictions(&m.model, &acts, chunk.len() * per_image)?;
    let targets = chunk_targets(opts, m, chunk, &preds)?;
    let planes = explain_planes_grouped(method, &x, &acts, &targets, &b.keys, per_image)?;
    let map_dir = saved_maps_dir(&opts.inputs.out, m).join(label_file_key(name));
    let mut out = Vec::new();
    for (i, img) in chunk.iter().enumerate() {
        let base = i * per_image;
        let (class, predicted) = (targets[base], preds[base].0);
        let prob = preds[base].1[class] as f64;
        let mut records = Vec::new();
        for (a, (named, aug)) in opts.augmentations.iter().zip(&b.augmented[i]).enumerate() {
            let r = base + 1 + a;
            let (back, valid) = aug.to_original(&planes[r])?;
            let row = Row {
                model: m.label.clone(),
                method: name.into(),
                image: img.stem.clone(),
                label: img.class.clone(),
                aug: named.name.clone(),
                class,
                predicted,
                predicted_aug: preds[r].0,
                prob,
                prob_aug: preds[r].1[class] as f64,
                valid_fraction: valid.iter().filter(|&&v| v).count() as f64 / valid.len() as f64,
                values: similarities(opts, &planes[base], &back, &valid, b.chw)?,
            };
            if opts.save_maps {
                save_map(
                    &map_dir,
                    &format!("{}.{}", img.stem, safe_component(&named.name)),
                    &back,
                    b.chw,
                )?;
            }
            records.push(row.record());
            out.push(row);
        }
        if opts.save_maps {
            save_map(&map_dir, &img.stem, &planes[base], b.chw)?;
            write_probs(
                &saved_maps_dir(&opts.inputs.out, m),
                &img.stem,
                &preds[base].1,
            )?;
        }
        write_json(
            &dir.join(format!("{}.json", img.stem)),
            &json!({
                "key": key,
                "image": img.stem,
                "path": img.path.display().to_string(),
                "label": img.class,
                "class": class,
                "predicted": predicted,
                "prob": prob,
                "augmentations": records,
            }),
        )?;
    }
    Ok(out)
}

/// The four measures of the original's map against a mapped-back map, on the valid pixels.
fn similarities(
    opts: &StabilityOptions,
    original: &[f32],
    back: &[f32],
    valid: &[bool],
    [_, h, w]: [usize; 3],
) -> Result<[f64; 4], StudyError> {
    let (orig_view, back_view) = (MapView::new(original, [h, w])?, MapView::new(back, [h, w])?);
    Ok([
        pearson(original, back, Some(valid))?,
        spearman(original, back, Some(valid))?,
        ssim(&orig_view, &back_view, Some(valid), &opts.ssim)?,
        top_k_iou(original, back, opts.top_k, Some(valid))?,
    ])
}

/// Writes one map as `<dir>/<stem>.npy` (`--save-maps`).
fn save_map(
    dir: &Path,
    stem: &str,
    plane: &[f32],
    [_, h, w]: [usize; 3],
) -> Result<(), StudyError> {
    create_dir(dir)?;
    write_npy(&dir.join(format!("{stem}.npy")), &[h, w], plane)?;
    Ok(())
}

/// SSIM parameters in words, e.g. `gaussian σ=1.5, population covariance, range=joint max−min,
/// K1=0.01, K2=0.03`.
pub fn describe_ssim(o: &SsimOptions) -> String {
    let window = match o.window {
        SsimWindow::Gaussian { sigma } => format!("gaussian σ={sigma}"),
        SsimWindow::Uniform { size } => format!("uniform {size}×{size}"),
    };
    let range = match o.data_range {
        DataRange::Joint => "joint max−min".to_string(),
        DataRange::Fixed(r) => format!("{r}"),
    };
    format!(
        "{window}, {} covariance, range={range}, K1={}, K2={}",
        if o.sample_covariance {
            "sample"
        } else {
            "population"
        },
        o.k1,
        o.k2
    )
}

/// About 60 pixels a box, never wider than the report shows a figure: a wider plot would be
/// scaled down and its boxes squashed. Names that do not fit under their box are turned upright
/// by the plot itself.
fn box_plot_width(groups: &[(String, Vec<f64>)]) -> u32 {
    (groups.len() as u32 * 60 + 160).clamp(640, crate::report::plots::PAGE_WIDTH)
}

fn values_of(rows: &[&Row], k: usize) -> Vec<f64> {
    rows.iter().map(|r| r.values[k]).collect()
}

/// The class explained, in words.
fn target_text(opts: &StabilityOptions) -> &'static str {
    match opts.target {
        TargetRule::Predicted => "predicted on the original",
        TargetRule::True => "true",
    }
}

fn aug_names(opts: &StabilityOptions) -> Vec<String> {
    opts.augmentations.iter().map(|a| a.name.clone()).collect()
}

/// The rows of one method and augmentation (all models).
fn rows_of<'a>(rows: &'a [Row], method: &str, aug: &str) -> Vec<&'a Row> {
    rows.iter()
        .filter(|r| r.method == method && r.aug == aug)
        .collect()
}

/// `method_tests.csv`: every pair of methods compared on the same image × augmentation, per
/// measure — mean difference with a bootstrap interval, Wilcoxon and paired t p-values, Holm
/// within the measure ([`super::paired`]); with several models also `model_tests.csv`, every
/// pair of models under each method on the same image × augmentation. Returns the rows of the
/// summary's tests table (both kinds, with the significance column) and the findings of the
/// model tests.
fn paired_tests(
    out: &Path,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<(Vec<Vec<Value>>, Vec<String>), StudyError> {
    let keys: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r.image, r.aug))
        .collect();
    let scores_of = |k: usize| -> Vec<paired::Scored> {
        rows.iter()
            .zip(&keys)
            .map(|(r, key)| paired::Scored {
                model: &r.model,
                method: &r.method,
                image: key,
                value: r.values[k],
            })
            .collect()
    };
    paired::write_tests(out, &MEASURES, scores_of, facts)
}

fn write_outputs(
    opts: &StabilityOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
    grid: Figure,
) -> Result<StudyOutcome, StudyError> {
    per_image_table(&opts.inputs.out, rows)?;
    metrics_table(opts, rows, facts)?;
    let (tests, findings) = paired_tests(&opts.inputs.out, rows, facts)?;
    let mut figures = measure_figures(opts, rows, facts)?;
    figures.push(by_model_figure(&opts.inputs.out, rows, facts)?);
    figures.push(flips_figure(opts, rows, facts)?);
    figures.push(grid);
    write_json(&opts.inputs.out.join("figures.json"), &figures)?;
    let mut headline = headline(opts, rows, facts);
    headline.extend(findings);
    summary(opts, rows, facts, &headline, tests)?;
    Ok(StudyOutcome {
        out: opts.inputs.out.clone(),
        headline,
    })
}

/// `per_image.csv`: one row per image × augmentation × method × model.
fn per_image_table(out: &Path, rows: &[Row]) -> Result<(), StudyError> {
    let per_image: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.model.clone(),
                r.method.clone(),
                r.image.clone(),
                r.label.clone(),
                r.aug.clone(),
                r.class.to_string(),
                r.predicted.to_string(),
                r.predicted_aug.to_string(),
                (r.flipped() as u8).to_string(),
                num(r.prob),
                num(r.prob_aug),
                num(r.valid_fraction),
            ];
            v.extend(r.values.iter().map(|&x| num(x)));
            v
        })
        .collect();
    write_csv(
        &out.join("per_image.csv"),
        &[
            "model",
            "method",
            "image",
            "label",
            "augmentation",
            "target_class",
            "predicted",
            "predicted_augmented",
            "prediction_flipped",
            "prob",
            "prob_augmented",
            "valid_fraction",
            "pearson",
            "spearman",
            "ssim",
            "top_k_iou",
        ],
        &per_image,
    )
}

/// `metrics.csv`: per model (and all models pooled, when there are several) × method ×
/// augmentation: mean, SD and median of each measure, flips, and the conventions.
fn metrics_table(
    opts: &StabilityOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<(), StudyError> {
    let stat_cols: Vec<String> = MEASURES
        .iter()
        .flat_map(|m| {
            [
                format!("{m}_mean"),
                format!("{m}_sd"),
                format!("{m}_median"),
            ]
        })
        .collect();
    let mut header = vec!["model", "method", "augmentation", "n"];
    header.extend(stat_cols.iter().map(String::as_str));
    header.extend([
        "prediction_flips",
        "flip_rate",
        "valid_fraction_mean",
        "top_k",
        "ssim",
        "target",
        "map_plane",
    ]);
    let mut groups: Vec<String> = facts.models.to_vec();
    if facts.models.len() > 1 {
        groups.push("all-models".into());
    }
    let ssim_text = describe_ssim(&opts.ssim);
    let mut metrics = Vec::new();
    for g in &groups {
        for method in &facts.methods {
            for aug in &aug_names(opts) {
                let sel: Vec<&Row> = rows_of(rows, method, aug)
                    .into_iter()
                    .filter(|r| g == "all-models" || &r.model == g)
                    .collect();
                let mut row = vec![
                    g.clone(),
                    method.clone(),
                    aug.clone(),
                    sel.len().to_string(),
                ];
                for k in 0..4 {
                    let v = values_of(&sel, k);
                    let (mean, sd) = mean_sd(&v);
                    row.extend([num(mean), num(sd), num(median(&v))]);
                }
                let flips = sel.iter().filter(|r| r.flipped()).count();
                row.extend([
                    flips.to_string(),
                    num(flips as f64 / sel.len().max(1) as f64),
                    num(mean_sd(&sel.iter().map(|r| r.valid_fraction).collect::<Vec<_>>()).0),
                    opts.top_k.to_string(),
                    ssim_text.clone(),
                    target_text(opts).into(),
                    "explain's plane (signed: channel sum; magnitude: max |v|; CAM as is)".into(),
                ]);
                metrics.push(row);
            }
        }
    }
    write_csv(&opts.inputs.out.join("metrics.csv"), &header, &metrics)
}

/// The report table: method × augmentation pooled over models.
fn summary_rows(opts: &StabilityOptions, rows: &[Row], methods: &[String]) -> Vec<Vec<Value>> {
    let cell = |v: &[f64]| -> Value {
        let (m, s) = mean_sd(v);
        if s.is_finite() {
            json!(format!("{m:.3} ± {s:.3}"))
        } else if m.is_finite() {
            json!(format!("{m:.3}"))
        } else {
            Value::Null
        }
    };
    let mut table = Vec::new();
    for method in methods {
        for aug in &aug_names(opts) {
            let sel = rows_of(rows, method, aug);
            let flips = sel.iter().filter(|r| r.flipped()).count();
            let mut row = vec![json!(method), json!(aug)];
            row.extend((0..4).map(|k| cell(&values_of(&sel, k))));
            row.push(json!(format!("{flips}/{}", sel.len())));
            table.push(row);
        }
    }
    table
}

/// A box plot of `groups`, wide enough for its boxes.
fn box_plot(title: &str, x: &str, y: &str, groups: Vec<(String, Vec<f64>)>) -> Plot {
    let width = box_plot_width(&groups);
    let mut plot = Plot::new(title, x, y, Chart::Boxes { groups });
    plot.size = (width, 520);
    plot
}

/// One box plot per measure: method × augmentation.
fn measure_figures(
    opts: &StabilityOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Vec<Figure>, StudyError> {
    let titles = [
        "Pearson".to_string(),
        "Spearman".into(),
        "SSIM".into(),
        format!("top-{}% IoU", opts.top_k * 100.0),
    ];
    let augs = aug_names(opts);
    let mut figures = Vec::new();
    for (k, measure) in MEASURES.iter().enumerate() {
        let groups: Vec<(String, Vec<f64>)> = facts
            .methods
            .iter()
            .flat_map(|method| augs.iter().map(move |aug| (method, aug)))
            .map(|(method, aug)| {
                (
                    format!("{method} · {aug}"),
                    values_of(&rows_of(rows, method, aug), k),
                )
            })
            .collect();
        let title = format!("{} of original and mapped-back maps", titles[k]);
        figures.push(save_plot(
            &opts.inputs.out,
            &format!("stability_{measure}"),
            &box_plot(&title, "method · augmentation", &titles[k], groups),
            &format!(
                "{} between each image's map and the map of its augmented version mapped back to \
                 the original frame, on the pixels the augmented image still shows; one box per \
                 method and augmentation over images{} (box = quartiles, line = median, whiskers \
                 = 1.5 IQR). 1 means the map moved exactly with the image.",
                titles[k],
                if facts.models.len() > 1 {
                    " and models"
                } else {
                    ""
                }
            ),
        )?);
    }
    Ok(figures)
}

/// Pearson per method and model, over images and augmentations.
fn by_model_figure(
    out: &Path,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Figure, StudyError> {
    let groups: Vec<(String, Vec<f64>)> = facts
        .methods
        .iter()
        .flat_map(|method| facts.models.iter().map(move |model| (method, model)))
        .map(|(method, model)| {
            let sel: Vec<&Row> = rows
                .iter()
                .filter(|r| &r.method == method && &r.model == model)
                .collect();
            (format!("{method} · {model}"), values_of(&sel, 0))
        })
        .collect();
    save_plot(
        out,
        "stability_by_model",
        &box_plot(
            "Pearson of original and mapped-back maps per method and model",
            "method · model",
            "Pearson",
            groups,
        ),
        "Pearson correlation per method and model, over images and all augmentations: boxes of \
         one method that differ between models show that its stability depends on the training \
         run, not only on the method.",
    )
}

/// Share of prediction flips per augmentation. Flips depend on the model and augmentation
/// only: they are counted once (first method).
fn flips_figure(
    opts: &StabilityOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Figure, StudyError> {
    let bars: Vec<(String, f64)> = aug_names(opts)
        .into_iter()
        .map(|aug| {
            let sel = rows_of(rows, &facts.methods[0], &aug);
            let flips = sel.iter().filter(|r| r.flipped()).count();
            (aug, flips as f64 / sel.len().max(1) as f64)
        })
        .collect();
    let plot = Plot::new(
        "Prediction flips per augmentation",
        "augmentation",
        "share of images whose prediction changed",
        Chart::Bars { bars },
    );
    save_plot(
        &opts.inputs.out,
        "prediction_flips",
        &plot,
        "Share of (image, model) pairs whose predicted class changed under each augmentation. \
         Read beside the similarity plots: a map that changes where the prediction does not \
         is an unstable explanation; one that changes with the prediction may be faithful.",
    )
}

/// The headline: the most stable method, the most disruptive augmentation, the flips.
fn headline(
    opts: &StabilityOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Vec<String> {
    let ensemble = facts.models.len() > 1;
    let mut headline = Vec::new();
    let med_of = |f: &dyn Fn(&Row) -> bool| -> f64 {
        median(
            &rows
                .iter()
                .filter(|r| f(r))
                .map(|r| r.values[0])
                .collect::<Vec<_>>(),
        )
    };
    let finite = |v: f64| if v.is_finite() { v } else { f64::NEG_INFINITY };
    let by_method: Vec<(String, f64)> = facts
        .methods
        .iter()
        .map(|m| (m.clone(), med_of(&|r: &Row| &r.method == m)))
        .collect();
    if let Some((best, v)) = by_method
        .iter()
        .filter(|(m, _)| m != super::toolkit::RANDOM_METHOD)
        .max_by(|a, b| finite(a.1).total_cmp(&finite(b.1)))
    {
        headline.push(format!(
            "Most stable method: {best} (median Pearson {v:.3} over all augmentations{}).",
            if ensemble { " and models" } else { "" }
        ));
    }
    let by_aug: Vec<(String, f64)> = aug_names(opts)
        .into_iter()
        .map(|a| {
            let v = med_of(&|r: &Row| r.aug == a);
            (a, v)
        })
        .collect();
    if let Some((worst, v)) = by_aug
        .iter()
        .min_by(|a, b| finite(a.1).total_cmp(&finite(b.1)))
    {
        headline.push(format!(
            "Augmentation that changes the maps most: {worst} (median Pearson {v:.3} over methods)."
        ));
    }
    let first_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.method == facts.methods[0])
        .collect();
    let flips = first_rows.iter().filter(|r| r.flipped()).count();
    let flipped_p = med_of(&|r: &Row| r.flipped());
    headline.push(format!(
        "Prediction flips: {flips} of {} augmented images{}; median Pearson {} when the \
         prediction flipped, {:.3} when it did not.",
        first_rows.len(),
        if ensemble { " (over models)" } else { "" },
        if flipped_p.is_finite() {
            format!("{flipped_p:.3}")
        } else {
            "—".into()
        },
        med_of(&|r: &Row| !r.flipped())
    ));
    headline
}

/// Summary: `summary.json` with the conventions, the headline, the table and the work done.
fn summary(
    opts: &StabilityOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
    headline: &[String],
    tests: Vec<Vec<Value>>,
) -> Result<(), StudyError> {
    let summary = Summary {
        study: "stability".into(),
        command: opts.inputs.command.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        conventions: json!({
            "augmentations": opts.augmentations.iter().map(|a| json!({"name": a.name, "transforms": a.augs})).collect::<Vec<_>>(),
            "augmentation_space": "applied to the image in [0, 1] at the model's input size, before normalisation; noise drawn per image from the seed",
            "seed": opts.seed,
            "map_back": "inverse warp of each geometric step, bilinear; comparison restricted to original pixels the augmented image shows",
            "target": target_text(opts),
            "top_k": opts.top_k,
            "ssim": describe_ssim(&opts.ssim),
            "split": facts.split,
            "images": facts.images,
            "models": facts.models,
            "methods": facts.methods,
            "method_options": method_options_json(&opts.inputs.method_options),
            "maps": "one plane per map as relevance explain draws it: signed maps summed over channels, sensitivity maps max_c |v|, CAMs as they are",
            "table": "mean ± SD over images and models",
        }),
        headline: headline.to_vec(),
        table: Table {
            columns: vec![
                "method".into(),
                "augmentation".into(),
                "Pearson".into(),
                "Spearman".into(),
                "SSIM".into(),
                format!("top-{}% IoU", opts.top_k * 100.0),
                "prediction flips".into(),
            ],
            rows: summary_rows(opts, rows, &facts.methods),
        },
        tests: if tests.is_empty() {
            Table::default()
        } else {
            Table::new(&paired::TEST_COLUMNS, tests)
        },
        work: json!({"computed": facts.computed, "reused": facts.reused}),
    };
    summary.write(&opts.inputs.out)
}
