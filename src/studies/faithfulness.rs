//! `relevance faithfulness`: insertion, deletion and their difference (ID score, Petsiuk et al.
//! 2018) for every method × model × image, aggregated as mean ± SD per method and model, with
//! mean curves per method and a table in the form of the ResNet-LRP paper (Otsuki et al. 2024:
//! methods as rows, insertion ↑, deletion ↓, ID ↑).
//!
//! Insertion/deletion numbers are only comparable under the same conventions, so every one is
//! an option ([`IdConventions`]) and every output states them: `metrics.csv` carries them as
//! columns, `summary.json` under `conventions`. Presets reproduce RISE, the ResNet-LRP paper and
//! Xplique; the default is RISE's conventions with a coarser step (2 % of the pixels, 50 steps)
//! so a study of many images stays fast.
//!
//! Outputs in `out/`: `metrics.csv`, `per_image.csv`, `id_tests.csv` (every pair of methods on
//! each model's images, paired by image: [`super::paired`]), with several models
//! `model_tests.csv` (every pair of models under each method on the same images, for ID,
//! insertion, deletion and, with `--road`, the ROAD scores), `summary.json` (its tests table
//! holds both, with the significance column), `figures.json`,
//! `insertion_curves.{png,svg}`, `deletion_curves.{png,svg}`, `id_scores.{png,svg}`, and per image
//! `per_image/<model>/<method>/<stem>.json` (both curves, AUCs, target class) — the resume
//! unit: a re-run with the same conventions and method options skips images already there.
//!
//! With [`FaithfulnessOptions::road`] (`--road`), every image × method is also scored by ROAD
//! (Rong et al. 2022, [`crate::metrics::road`]): MoRF and LeRF with noisy linear imputation, the
//! same score and target as the curves. Extra outputs: `road.csv` (per model × method: mean score
//! change of MoRF ↓ and LeRF ↑ with bootstrap 95 % intervals, pytorch-grad-cam's combined
//! `(LeRF − MoRF)/2` ↑, and the share of images still predicted as the followed class), ROAD
//! columns in `per_image.csv` and the report table, and `road_curves.{png,svg}` (that share
//! against the percentage removed, Rong et al.'s figure).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::maps::{saved_maps_dir, saved_maps_note, write_probs};
use super::toolkit::{
    Figure, PreparedMethod, ScoredRun, StudyImage, StudyInputs, StudyMethod, StudyModel, Summary,
    Table, create_dir, enlarge, explain_planes, load_models, mean_sd, method_options_json,
    model_label, num, overlay_tile, per_image_dir, predictions, progress_bar, resume, save_plot,
    write_csv, write_grid, write_json,
};
use super::{StudyError, StudyOutcome, paired};
use crate::data::npy::write_npy;
use crate::methods::pass::forward_all;
use crate::methods::spec::label_file_key;
use crate::metrics::insertion::{InsertionOptions, insertion_deletion};
use crate::metrics::order::{Step, Ties};
use crate::metrics::perturbation::Order;
use crate::metrics::road::{RoadOptions, RoadResult, RoadSelection, road};
use crate::metrics::scorer::{FollowedClass, ModelScorer, ScoreKind};
use crate::metrics::{ImageView, MapView, Substrate};
use crate::report::plots::{Chart, Plot, Series};
use crate::tensor::T4;

/// What perturbed pixels become, stated so it can be resolved per model (a pixel-space value
/// depends on the model card's normalisation).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SubstrateSpec {
    /// 0 in the model's input space (RISE's deletion; mean grey under ImageNet normalisation).
    Zero,
    /// A pixel-space value 0–255 (e.g. 0 = black, as the ResNet-LRP paper), through the card's
    /// normalisation.
    Pixel {
        /// The value.
        value: f32,
    },
    /// Each channel's mean over the image.
    ChannelMean,
    /// RISE's blur (kernel `k`, σ), zero padding.
    Blur {
        /// Kernel side (odd).
        kernel: usize,
        /// Standard deviation in pixels.
        sigma: f32,
    },
}

impl SubstrateSpec {
    /// The substrate for a model with `card`.
    pub fn resolve(&self, card: &crate::graph::ModelCard) -> Substrate {
        match self {
            SubstrateSpec::Zero => Substrate::Zero,
            SubstrateSpec::Pixel { value } => {
                Substrate::pixel_value(*value, &card.normalization, card.channels)
            }
            SubstrateSpec::ChannelMean => Substrate::ChannelMean,
            SubstrateSpec::Blur { kernel, sigma } => Substrate::Blur {
                kernel: *kernel,
                sigma: *sigma,
            },
        }
    }

    /// Short text for CSV columns, e.g. `blur:11:5`.
    pub fn describe(&self) -> String {
        match self {
            SubstrateSpec::Zero => "zero".into(),
            SubstrateSpec::Pixel { value } if *value == 0.0 => "black".into(),
            SubstrateSpec::Pixel { value } => format!("pixel:{value}"),
            SubstrateSpec::ChannelMean => "mean".into(),
            SubstrateSpec::Blur { kernel, sigma } => format!("blur:{kernel}:{sigma}"),
        }
    }
}

impl std::str::FromStr for SubstrateSpec {
    type Err = String;
    /// `zero`, `black`, `white`, `pixel:V`, `mean`, `blur` (RISE's 11, 5) or `blur:K:SIGMA`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "bad substrate '{s}': use zero, black, white, pixel:V, mean, blur or blur:K:SIGMA"
            )
        };
        let parts: Vec<&str> = s.split(':').collect();
        Ok(match parts.as_slice() {
            ["zero"] => SubstrateSpec::Zero,
            ["black"] => SubstrateSpec::Pixel { value: 0.0 },
            ["white"] => SubstrateSpec::Pixel { value: 255.0 },
            ["pixel", v] => SubstrateSpec::Pixel {
                value: v.parse().map_err(|_| bad())?,
            },
            ["mean"] => SubstrateSpec::ChannelMean,
            ["blur"] => SubstrateSpec::Blur {
                kernel: 11,
                sigma: 5.0,
            },
            ["blur", k, sigma] => SubstrateSpec::Blur {
                kernel: k.parse().map_err(|_| bad())?,
                sigma: sigma.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        })
    }
}

use super::toolkit::TargetRule;

/// Every convention insertion/deletion numbers depend on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdConventions {
    /// Pixels per step (ignored by quantised ties, which change one level per step).
    pub step: Step,
    /// Tie handling: stable order, or quantise to `L` levels and change a level per step.
    pub ties: Ties,
    /// Softmax probability or logit of the target class.
    pub score: ScoreKind,
    /// Predicted or true class.
    pub target: TargetRule,
    /// What insertion starts from.
    pub insertion_substrate: SubstrateSpec,
    /// What deletion replaces pixels with.
    pub deletion_substrate: SubstrateSpec,
}

impl IdConventions {
    /// RISE (Petsiuk et al. 2018): 224 steps on 224² (`1/224` of the pixels a step), stable
    /// order, softmax of the predicted class, insertion into blur (11, σ 5), deletion to zero in
    /// the normalised space.
    pub fn rise() -> Self {
        IdConventions {
            step: Step::Fraction(1.0 / 224.0),
            ties: Ties::Stable,
            score: ScoreKind::Softmax,
            target: TargetRule::Predicted,
            insertion_substrate: SubstrateSpec::Blur {
                kernel: 11,
                sigma: 5.0,
            },
            deletion_substrate: SubstrateSpec::Zero,
        }
    }

    /// The ResNet-LRP paper (Otsuki et al. 2024): black in pixel space for both curves, the
    /// ground-truth class's softmax, maps quantised to 8 levels with each level changed at once
    /// (their 500 pixels a step only splits levels further; recorded as the step).
    pub fn resnet_lrp() -> Self {
        IdConventions {
            step: Step::Pixels(500),
            ties: Ties::Quantise { levels: 8 },
            score: ScoreKind::Softmax,
            target: TargetRule::True,
            insertion_substrate: SubstrateSpec::Pixel { value: 0.0 },
            deletion_substrate: SubstrateSpec::Pixel { value: 0.0 },
        }
    }

    /// Xplique's defaults: logits, 10 steps, baseline 0 (input space), predicted class.
    pub fn xplique() -> Self {
        IdConventions {
            step: Step::Fraction(0.1),
            ties: Ties::Stable,
            score: ScoreKind::Logit,
            target: TargetRule::Predicted,
            insertion_substrate: SubstrateSpec::Zero,
            deletion_substrate: SubstrateSpec::Zero,
        }
    }

    /// A preset by name: `default`, `rise`, `resnet-lrp`, `xplique`.
    pub fn preset(name: &str) -> Result<Self, String> {
        match name {
            "default" => Ok(IdConventions::default()),
            "rise" => Ok(IdConventions::rise()),
            "resnet-lrp" => Ok(IdConventions::resnet_lrp()),
            "xplique" => Ok(IdConventions::xplique()),
            other => Err(format!(
                "unknown preset '{other}'; use default, rise, resnet-lrp or xplique"
            )),
        }
    }

    /// `(column, value)` pairs written into `metrics.csv`.
    pub fn columns(&self) -> Vec<(&'static str, String)> {
        vec![
            ("step", describe_step(self.step)),
            ("ties", describe_ties(self.ties)),
            (
                "score",
                match self.score {
                    ScoreKind::Softmax => "softmax",
                    ScoreKind::Logit => "logit",
                    ScoreKind::Other => "other",
                }
                .into(),
            ),
            (
                "target",
                match self.target {
                    TargetRule::Predicted => "predicted",
                    TargetRule::True => "true",
                }
                .into(),
            ),
            ("insertion_substrate", self.insertion_substrate.describe()),
            ("deletion_substrate", self.deletion_substrate.describe()),
            (
                "auc",
                "trapezoid over the fraction of pixels changed".into(),
            ),
        ]
    }
}

impl Default for IdConventions {
    /// RISE's conventions with 2 % of the pixels a step (50 steps): see [`IdConventions::rise`].
    fn default() -> Self {
        IdConventions {
            step: Step::Fraction(0.02),
            ..IdConventions::rise()
        }
    }
}

/// `0.02` for fractions, `500px` for pixel counts.
pub fn describe_step(step: Step) -> String {
    match step {
        Step::Fraction(f) => format!("{f}"),
        Step::Pixels(k) => format!("{k}px"),
    }
}

/// `stable` or `quantise:L`.
pub fn describe_ties(ties: Ties) -> String {
    match ties {
        Ties::Stable => "stable".into(),
        Ties::Quantise { levels } => format!("quantise:{levels}"),
    }
}

/// Parses a step: a fraction (`0.02`, `1/224`) or a pixel count (`500px`).
pub fn parse_step(s: &str) -> Result<Step, String> {
    let bad =
        || format!("bad step '{s}': use a fraction such as 0.02 or 1/224, or pixels as 500px");
    let step = if let Some(px) = s.strip_suffix("px") {
        Step::Pixels(px.trim().parse().map_err(|_| bad())?)
    } else if let Some((a, b)) = s.split_once('/') {
        let (a, b): (f32, f32) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        Step::Fraction(a / b)
    } else {
        Step::Fraction(s.trim().parse().map_err(|_| bad())?)
    };
    step.pixels(1 << 20).map_err(|_| bad())?;
    Ok(step)
}

/// Parses ties: `stable` or `quantise:L` (`quantise` alone is 8 levels).
pub fn parse_ties(s: &str) -> Result<Ties, String> {
    match s.split_once(':') {
        None if s == "stable" => Ok(Ties::Stable),
        None if s == "quantise" || s == "quantize" => Ok(Ties::Quantise { levels: 8 }),
        Some(("quantise" | "quantize", l)) => l
            .parse()
            .ok()
            .filter(|&l: &usize| l >= 2)
            .map(|levels| Ties::Quantise { levels })
            .ok_or_else(|| format!("bad ties '{s}': levels must be a number ≥ 2")),
        _ => Err(format!("bad ties '{s}': use stable or quantise:L")),
    }
}

/// Options of the faithfulness study.
#[derive(Clone, Debug)]
pub struct FaithfulnessOptions {
    /// Models, data, images, methods (default [`DEFAULT_METHODS`]), batch (default 32: images
    /// per explanation pass, and the least number of perturbed copies per scoring pass — more
    /// on small inputs, up to 128), output.
    pub inputs: StudyInputs,
    /// Insertion/deletion conventions (default: [`IdConventions::default`]).
    pub conventions: IdConventions,
    /// Also write each map as `maps/<model>/<method>/<stem>.npy`, with the image's class
    /// probabilities and the model's `source.json` beside them (reviewable by `relevance review`).
    pub save_maps: bool,
    /// Also score ROAD with these settings (`None`: not).
    pub road: Option<RoadSettings>,
}

/// The ROAD conventions a study sets; the score and target are the curves' ones.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoadSettings {
    /// Percentages of the pixels removed (each in `(0, 100)`).
    pub percentages: Vec<f64>,
    /// Rank (Quantus) or percentile (pytorch-grad-cam) selection.
    pub selection: RoadSelection,
    /// SD of the imputation noise.
    pub noise: f32,
    /// Seed of the noise (the same draws for every image).
    pub seed: u64,
}

impl Default for RoadSettings {
    /// [`RoadOptions::default`]: 10, 20, …, 90 %, rank selection, noise 0.01, seed 0.
    fn default() -> Self {
        let d = RoadOptions::default();
        RoadSettings {
            percentages: d.percentages,
            selection: d.selection,
            noise: d.noise,
            seed: d.seed,
        }
    }
}

impl RoadSettings {
    /// The metric's options for one order and class.
    fn options(&self, order: Order, class: usize) -> RoadOptions {
        RoadOptions {
            percentages: self.percentages.clone(),
            order,
            selection: self.selection,
            noise: self.noise,
            seed: self.seed,
            target: FollowedClass::Class(class),
        }
    }

    /// `(column, value)` pairs written into `road.csv`.
    fn columns(&self) -> Vec<(&'static str, String)> {
        let percentages: Vec<String> = self.percentages.iter().map(|p| format!("{p}")).collect();
        vec![
            ("percentages", percentages.join(" ")),
            (
                "selection",
                match self.selection {
                    RoadSelection::Rank => "rank",
                    RoadSelection::Percentile => "percentile",
                }
                .into(),
            ),
            ("noise", format!("{}", self.noise)),
            ("seed", self.seed.to_string()),
        ]
    }
}

/// Parses ROAD percentages: comma-separated numbers strictly between 0 and 100.
pub fn parse_road_percentages(s: &str) -> Result<Vec<f64>, String> {
    let values: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad ROAD percentages '{s}': use numbers such as 10,20,50"))?;
    if values.is_empty()
        || values
            .iter()
            .any(|p| !(p.is_finite() && *p > 0.0 && *p < 100.0))
    {
        return Err(format!(
            "bad ROAD percentages '{s}': each must lie strictly between 0 and 100"
        ));
    }
    Ok(values)
}

impl FaithfulnessOptions {
    /// Defaults for the given models, data and output: test split, no limit, batch 32, methods
    /// `saliency, input-x-gradient, grad-cam, lrp-epsilon-plus, random`, default conventions.
    pub fn new(models: Vec<PathBuf>, data: PathBuf, out: PathBuf) -> Self {
        Self::with_inputs(StudyInputs::new(models, data, out, 32, DEFAULT_METHODS))
    }

    /// The study's options with its defaults on `inputs`.
    pub fn with_inputs(inputs: StudyInputs) -> Self {
        FaithfulnessOptions {
            inputs,
            conventions: IdConventions::default(),
            save_maps: false,
            road: None,
        }
    }
}

/// Methods compared when none are named.
pub const DEFAULT_METHODS: &[&str] = &[
    "saliency",
    "input-x-gradient",
    "grad-cam",
    "lrp-epsilon-plus",
    "random",
];

/// Input values per scoring batch that [`evaluate_chunk`] aims at.
const SCORE_VALUES: usize = 1 << 22;

/// Points of the common fraction grid the mean curves are drawn on.
const GRID: usize = 101;

/// One image × method × model result.
#[derive(Clone, Debug)]
struct Row {
    model: String,
    method: String,
    image: String,
    label: String,
    class: usize,
    predicted: usize,
    insertion: f64,
    deletion: f64,
    id: f64,
    ins_curve: (Vec<f64>, Vec<f64>),
    del_curve: (Vec<f64>, Vec<f64>),
    road: Option<RoadRow>,
}

/// ROAD of one image: MoRF and LeRF.
#[derive(Clone, Debug)]
struct RoadRow {
    morf: RoadSide,
    lerf: RoadSide,
}

/// One order of ROAD: mean score change, and per percentage whether the class is kept.
#[derive(Clone, Debug)]
struct RoadSide {
    change: f64,
    kept: Vec<bool>,
}

impl RoadSide {
    fn of(r: &RoadResult) -> Self {
        RoadSide {
            change: r.mean_change,
            kept: r.predicted.iter().map(|&k| k == r.class).collect(),
        }
    }

    fn json(&self) -> Value {
        json!({"mean_change": self.change, "kept": self.kept})
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(RoadSide {
            change: v.get("mean_change")?.as_f64()?,
            kept: v
                .get("kept")?
                .as_array()?
                .iter()
                .map(Value::as_bool)
                .collect::<Option<_>>()?,
        })
    }
}

impl Row {
    /// A ROAD score of this image; NaN (left out of a paired test) without ROAD.
    fn road_score(&self, score: impl Fn(&RoadRow) -> f64) -> f64 {
        self.road.as_ref().map_or(f64::NAN, score)
    }
}

impl RoadRow {
    fn morf(&self) -> &RoadSide {
        &self.morf
    }

    fn lerf(&self) -> &RoadSide {
        &self.lerf
    }

    /// pytorch-grad-cam's `ROADCombined`: `(LeRF − MoRF)/2` of the mean changes.
    fn combined(&self) -> f64 {
        (self.lerf.change - self.morf.change) / 2.0
    }
}

fn key_of(opts: &FaithfulnessOptions) -> String {
    format!(
        "{}|{:?}|{}",
        serde_json::to_string(&opts.conventions).unwrap_or_default(),
        opts.inputs.method_options,
        serde_json::to_string(&opts.road).unwrap_or_default()
    )
}

fn curve_of(v: &Value, name: &str) -> Option<(Vec<f64>, Vec<f64>)> {
    let c = v.get(name)?;
    let f = |k: &str| -> Option<Vec<f64>> {
        c.get(k)?
            .as_array()?
            .iter()
            .map(|x| x.as_f64())
            .collect::<Option<Vec<f64>>>()
    };
    Some((f("fractions")?, f("scores")?))
}

fn row_from_json(v: &Value, key: &str, model: &str, method: &str) -> Option<Row> {
    if v.get("key")?.as_str()? != key {
        return None;
    }
    Some(Row {
        model: model.into(),
        method: method.into(),
        image: v.get("image")?.as_str()?.into(),
        label: v.get("label")?.as_str()?.into(),
        class: v.get("class")?.as_u64()? as usize,
        predicted: v.get("predicted")?.as_u64()? as usize,
        insertion: v.get("insertion_auc")?.as_f64()?,
        deletion: v.get("deletion_auc")?.as_f64()?,
        id: v.get("id")?.as_f64()?,
        ins_curve: curve_of(v, "insertion")?,
        del_curve: curve_of(v, "deletion")?,
        road: match v.get("road") {
            None | Some(Value::Null) => None,
            Some(r) => Some(RoadRow {
                morf: RoadSide::from_json(r.get("morf")?)?,
                lerf: RoadSide::from_json(r.get("lerf")?)?,
            }),
        },
    })
}

/// Linear interpolation of a curve onto `GRID` equally spaced fractions.
fn on_grid((x, y): &(Vec<f64>, Vec<f64>)) -> Vec<f64> {
    (0..GRID)
        .map(|i| {
            let t = i as f64 / (GRID - 1) as f64;
            let j = x.partition_point(|&v| v < t);
            if j == 0 {
                y[0]
            } else if j >= x.len() {
                y[y.len() - 1]
            } else {
                let (x0, x1) = (x[j - 1], x[j]);
                let w = if x1 > x0 { (t - x0) / (x1 - x0) } else { 1.0 };
                y[j - 1] * (1.0 - w) + y[j] * w
            }
        })
        .collect()
}

/// Runs the study; see the module documentation for what it writes.
pub fn run(opts: &FaithfulnessOptions, progress: bool) -> Result<StudyOutcome, StudyError> {
    let models = load_models(&opts.inputs.models)?;
    run_with_models(opts, &models, progress)
}

/// [`run`] on models already loaded (`opts.inputs.models` is ignored): for callers that hold models
/// in memory, such as `relevance demo` and tests. Phases: select → maps and scores (per chunk
/// of images, resumable) → tables → figures → summary.
pub fn run_with_models(
    opts: &FaithfulnessOptions,
    models: &[StudyModel],
    progress: bool,
) -> Result<StudyOutcome, StudyError> {
    let ScoredRun {
        methods,
        images,
        rows,
        facts,
    } = opts.inputs.select_and_score(
        models,
        saved_maps_note(
            opts.save_maps,
            &opts.inputs,
            models,
            opts.conventions.target,
        ),
        |m, name, method, images, rows| scores(opts, m, name, method, images, progress, rows),
    )?;
    let grid = example_grid(opts, &models[0], &methods, &images)?;
    write_outputs(opts, &rows, &facts, grid)
}

/// Maps and scores of one model × method: rows an earlier run stored under
/// `per_image/<model>/<method>/` with the same key are read back, the rest computed in chunks.
/// Returns how many rows were computed and how many reused.
fn scores(
    opts: &FaithfulnessOptions,
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
    let (done, todo) = resume(&dir, images, |v| row_from_json(v, &key, &m.label, name));
    rows.extend(done);
    bar.inc((images.len() - todo.len()) as u64);
    let method = method.prepare(&m.model)?;
    for chunk in todo.chunks(opts.inputs.batch.max(1)) {
        let new = evaluate_chunk(opts, m, name, &method, chunk, &dir, &key)?;
        bar.inc(new.len() as u64);
        rows.extend(new);
    }
    bar.finish_and_clear();
    Ok((todo.len(), images.len() - todo.len()))
}

/// Images shown in the example grid.
const GRID_IMAGES: usize = 4;

/// The first images with every method's map (first model), as a grid figure.
fn example_grid(
    opts: &FaithfulnessOptions,
    m: &StudyModel,
    methods: &[(String, StudyMethod)],
    images: &[StudyImage],
) -> Result<Figure, StudyError> {
    let card = &m.model.card;
    let shown = &images[..images.len().min(GRID_IMAGES)];
    let mut inputs = Vec::new();
    for img in shown {
        inputs.push(img.input(card)?);
    }
    let x: T4 = burn::Tensor::cat(inputs, 0);
    let [n, c, h, w] = x.dims();
    let acts = forward_all(&m.model, &x)?;
    let preds = predictions(&m.model, &acts, n)?;
    let targets: Vec<usize> = match opts.conventions.target {
        TargetRule::Predicted => preds.iter().map(|p| p.0).collect(),
        TargetRule::True => shown
            .iter()
            .zip(&preds)
            .map(|(img, p)| model_label(img, card).unwrap_or(p.0))
            .collect(),
    };
    let keys: Vec<String> = shown.iter().map(|i| i.stem.clone()).collect();
    let values = crate::tensor::to_vec(&x);
    let per = c * h * w;
    let bases: Vec<image::RgbImage> = (0..n)
        .map(|r| {
            crate::report::heatmap::input_image(
                &values[r * per..(r + 1) * per],
                c,
                h as u32,
                w as u32,
                card,
            )
        })
        .collect();
    let mut rows: Vec<Vec<image::RgbImage>> = bases.iter().map(enlarge).map(|t| vec![t]).collect();
    for (_, method) in methods {
        let prepared = method.prepare(&m.model)?;
        let planes = explain_planes(&prepared, &x, &acts, &targets, &keys, false)?.planes;
        for r in 0..n {
            rows[r].push(overlay_tile(&bases[r], &planes[r], method.style()));
        }
    }
    let names: Vec<&str> = methods.iter().map(|(n, _)| n.as_str()).collect();
    let stems: Vec<&str> = shown.iter().map(|i| i.stem.as_str()).collect();
    write_grid(
        &opts.inputs.out,
        "examples",
        &rows,
        &format!("Maps of model {} on the first images", m.label),
        &format!(
            "Rows: images {}. Columns: the input, then the map of {} for the class the curves              follow, laid over the input. Each map is scaled on its own (signed maps blue–white–red              around zero, others dark to bright), so compare where relevance sits, not how strong              it is across tiles.",
            stems.join(", "),
            names.join(", ")
        ),
    )
}

/// A chunk of images explained by one method: the inputs, predictions, targets and planes.
struct Explained {
    values: Vec<f32>,
    dims: [usize; 4],
    preds: Vec<(usize, Vec<f32>)>,
    targets: Vec<usize>,
    planes: Vec<Vec<f32>>,
}

/// The class the curves follow for each image of `chunk` (`--target`).
fn chunk_targets(
    opts: &FaithfulnessOptions,
    m: &StudyModel,
    chunk: &[&StudyImage],
    preds: &[(usize, Vec<f32>)],
) -> Result<Vec<usize>, StudyError> {
    opts.conventions.target.classes_for(m, chunk, preds)
}

/// Maps of a chunk: one forward pass, then the method's planes for the followed classes.
fn explain_chunk(
    opts: &FaithfulnessOptions,
    m: &StudyModel,
    method: &PreparedMethod,
    chunk: &[&StudyImage],
) -> Result<Explained, StudyError> {
    let mut inputs = Vec::with_capacity(chunk.len());
    for img in chunk {
        inputs.push(img.input(&m.model.card)?);
    }
    let x: T4 = burn::Tensor::cat(inputs, 0);
    let acts = forward_all(&m.model, &x)?;
    let preds = predictions(&m.model, &acts, chunk.len())?;
    let targets = chunk_targets(opts, m, chunk, &preds)?;
    let keys: Vec<String> = chunk.iter().map(|i| i.stem.clone()).collect();
    let planes = explain_planes(method, &x, &acts, &targets, &keys, false)?.planes;
    Ok(Explained {
        values: crate::tensor::to_vec(&x),
        dims: x.dims(),
        preds,
        targets,
        planes,
    })
}

/// Explains a chunk of images with one method and runs both curves for each.
fn evaluate_chunk(
    opts: &FaithfulnessOptions,
    m: &StudyModel,
    name: &str,
    method: &PreparedMethod,
    chunk: &[&StudyImage],
    dir: &Path,
    key: &str,
) -> Result<Vec<Row>, StudyError> {
    let card = &m.model.card;
    let e = explain_chunk(opts, m, method, chunk)?;
    let [_, c, h, w] = e.dims;
    // Perturbed copies are cheap to score in large batches on small inputs; the cap keeps a
    // batch near 4 M input values (about 128 images of 64×64×3, `--batch` at 224×224).
    let score_batch = opts
        .inputs
        .batch
        .max((SCORE_VALUES / (c * h * w).max(1)).min(128));
    let scorer = ModelScorer::new(&m.model, opts.conventions.score)?.with_batch_size(score_batch);
    let per = c * h * w;
    let mut out = Vec::with_capacity(chunk.len());
    for (r, img) in chunk.iter().enumerate() {
        let image = ImageView::new(&e.values[r * per..(r + 1) * per], [c, h, w])?;
        let map = MapView::new(&e.planes[r], [h, w])?;
        let id = insertion_deletion(
            &scorer,
            &image,
            &map,
            &InsertionOptions {
                step: opts.conventions.step,
                ties: opts.conventions.ties,
                target: FollowedClass::Class(e.targets[r]),
                insertion_substrate: opts.conventions.insertion_substrate.resolve(card),
                deletion_substrate: opts.conventions.deletion_substrate.resolve(card),
            },
        )?;
        let road = match &opts.road {
            None => None,
            Some(settings) => {
                let side = |order| -> Result<RoadSide, StudyError> {
                    let options = settings.options(order, e.targets[r]);
                    Ok(RoadSide::of(&road(&scorer, &image, &map, &options)?))
                };
                Some(RoadRow {
                    morf: side(Order::Morf)?,
                    lerf: side(Order::Lerf)?,
                })
            }
        };
        let curve = |cr: &crate::metrics::insertion::CurveResult| {
            let scores = cr.curve.scores.iter().map(|&s| s as f64).collect();
            (cr.curve.fractions.clone(), scores)
        };
        let row = Row {
            model: m.label.clone(),
            method: name.into(),
            image: img.stem.clone(),
            label: img.class.clone(),
            class: e.targets[r],
            predicted: e.preds[r].0,
            insertion: id.insertion.curve.auc,
            deletion: id.deletion.curve.auc,
            id: id.id_score,
            ins_curve: curve(&id.insertion),
            del_curve: curve(&id.deletion),
            road,
        };
        if opts.save_maps {
            let models_dir = saved_maps_dir(&opts.inputs.out, m);
            let map_dir = models_dir.join(label_file_key(name));
            create_dir(&map_dir)?;
            write_npy(
                &map_dir.join(format!("{}.npy", img.stem)),
                &[h, w],
                &e.planes[r],
            )?;
            write_probs(&models_dir, &img.stem, &e.preds[r].1)?;
        }
        save_row(dir, key, img, &row, &id)?;
        out.push(row);
    }
    Ok(out)
}

/// Writes one image's result as `<stem>.json`, the resume unit.
fn save_row(
    dir: &Path,
    key: &str,
    img: &StudyImage,
    row: &Row,
    id: &crate::metrics::insertion::InsertionDeletion,
) -> Result<(), StudyError> {
    write_json(
        &dir.join(format!("{}.json", img.stem)),
        &json!({
            "key": key,
            "image": row.image,
            "path": img.path.display().to_string(),
            "label": row.label,
            "class": row.class,
            "predicted": row.predicted,
            "insertion_auc": row.insertion,
            "deletion_auc": row.deletion,
            "id": row.id,
            "insertion": {"fractions": row.ins_curve.0, "scores": row.ins_curve.1,
                          "conventions": id.insertion.conventions},
            "deletion": {"fractions": row.del_curve.0, "scores": row.del_curve.1,
                         "conventions": id.deletion.conventions},
            "road": row.road.as_ref().map(|r| json!({"morf": r.morf.json(), "lerf": r.lerf.json()})),
        }),
    )
}

/// Mean ± SD of one metric over rows.
fn stat(rows: &[&Row], f: impl Fn(&Row) -> f64) -> (f64, f64) {
    mean_sd(&rows.iter().map(|r| f(r)).collect::<Vec<_>>())
}

/// Per method: mean ± SD of insertion, deletion and ID — over models (of the per-model means)
/// when there are several, else over images.
type MethodStats = (String, [(f64, f64); 3]);

/// Tables → figures → summary of the rows.
fn write_outputs(
    opts: &FaithfulnessOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
    grid: Figure,
) -> Result<StudyOutcome, StudyError> {
    per_image_table(&opts.inputs.out, rows)?;
    let stats = metrics_table(opts, rows, facts)?;
    let tests = id_tests(&opts.inputs.out, rows, facts)?;
    let mut test_table = paired::test_rows(&[("id", tests.clone())]);
    let mut findings = Vec::new();
    if facts.models.len() > 1 {
        let by_model = model_tests(opts, rows, facts)?;
        test_table.extend(paired::test_rows(&by_model));
        findings.extend(paired::model_finding(&by_model));
    }
    let road_stats = match &opts.road {
        Some(settings) => Some(road_table(opts, settings, rows, facts)?),
        None => None,
    };
    let mut figures = figures(opts, rows, facts)?;
    if let Some(settings) = &opts.road {
        figures.push(road_figure(opts, settings, rows, facts)?);
    }
    figures.push(grid);
    write_json(&opts.inputs.out.join("figures.json"), &figures)?;
    let mut headline = headline(opts, &stats, facts);
    if let Some(sentence) = best_against_runner_up(&stats, &tests) {
        headline.insert(headline.len().min(1), sentence);
    }
    headline.extend(findings);
    if let Some(road) = &road_stats {
        headline.extend(road_headline(road));
    }
    summary(
        opts,
        &stats,
        road_stats.as_deref(),
        facts,
        &headline,
        test_table,
    )?;
    Ok(StudyOutcome {
        out: opts.inputs.out.clone(),
        headline,
    })
}

/// `id_tests.csv`: every pair of methods on each model's images — mean ID difference with a
/// bootstrap interval, Wilcoxon p-value and Holm's adjustment ([`super::paired`]).
fn id_tests(
    out: &Path,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Vec<paired::Comparison>, StudyError> {
    let scores: Vec<paired::Scored> = rows
        .iter()
        .map(|r| paired::Scored {
            model: &r.model,
            method: &r.method,
            image: &r.image,
            value: r.id,
        })
        .collect();
    let tests = paired::compare_methods(&scores, &facts.models, &facts.methods);
    paired::write_comparisons(&out.join("id_tests.csv"), &[("id", tests.clone())])?;
    Ok(tests)
}

/// One per-image score of a row.
type RowScore = fn(&Row) -> f64;

/// The scores models are compared on: ID first (the headline finding's measure), insertion,
/// deletion and, with `--road`, ROAD's MoRF and LeRF changes and their combination.
fn model_measures(opts: &FaithfulnessOptions) -> Vec<(&'static str, RowScore)> {
    let mut measures: Vec<(&'static str, RowScore)> = vec![
        ("id", |r| r.id),
        ("insertion", |r| r.insertion),
        ("deletion", |r| r.deletion),
    ];
    if opts.road.is_some() {
        measures.extend([
            ("road_morf", |r| r.road_score(|x| x.morf().change)),
            ("road_lerf", |r| r.road_score(|x| x.lerf().change)),
            ("road_combined", |r| r.road_score(RoadRow::combined)),
        ] as [(&'static str, RowScore); 3]);
    }
    measures
}

/// `model_tests.csv`: every pair of models under each method on the same images, for every
/// score of [`model_measures`] ([`super::paired`]: mean difference with a bootstrap interval,
/// Wilcoxon and paired t p-values, Holm within the measure).
fn model_tests<'m>(
    opts: &FaithfulnessOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<paired::ByMeasure<'m>, StudyError> {
    let measures = model_measures(opts);
    let names: Vec<&'static str> = measures.iter().map(|(n, _)| *n).collect();
    let scores_of = |k: usize| -> Vec<paired::Scored> {
        rows.iter()
            .map(|r| paired::Scored {
                model: &r.model,
                method: &r.method,
                image: &r.image,
                value: measures[k].1(r),
            })
            .collect()
    };
    let by_model = paired::by_measure(&names, scores_of, paired::compare_models, facts);
    paired::write_model_comparisons(&opts.inputs.out.join("model_tests.csv"), &by_model)?;
    Ok(by_model)
}

/// The headline comparison: the method with the highest mean ID against the next best (the
/// random control aside), on a single model's images.
fn best_against_runner_up(stats: &[MethodStats], tests: &[paired::Comparison]) -> Option<String> {
    let mut ranked: Vec<&MethodStats> = stats
        .iter()
        .filter(|(m, s)| m != super::toolkit::RANDOM_METHOD && s[2].0.is_finite())
        .collect();
    ranked.sort_by(|x, y| y.1[2].0.total_cmp(&x.1[2].0));
    let (best, second) = (ranked.first()?.0.as_str(), ranked.get(1)?.0.as_str());
    let models: Vec<&str> = tests.iter().map(|c| c.model.as_str()).collect();
    if models.iter().any(|m| *m != models[0]) {
        return None; // several models: the per-model tests are in id_tests.csv
    }
    let c = tests
        .iter()
        .find(|c| (c.a == best && c.b == second) || (c.a == second && c.b == best))?;
    Some(paired::sentence(
        "ID",
        &paired::Comparison {
            model: String::new(),
            ..c.clone()
        },
        best,
    ))
}

/// `per_image.csv`: one row per image × method × model.
fn per_image_table(out: &Path, rows: &[Row]) -> Result<(), StudyError> {
    let per_image: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                r.method.clone(),
                r.image.clone(),
                r.label.clone(),
                r.class.to_string(),
                r.predicted.to_string(),
                num(r.insertion),
                num(r.deletion),
                num(r.id),
                r.road
                    .as_ref()
                    .map_or(String::new(), |x| num(x.morf.change)),
                r.road
                    .as_ref()
                    .map_or(String::new(), |x| num(x.lerf.change)),
            ]
        })
        .collect();
    write_csv(
        &out.join("per_image.csv"),
        &[
            "model",
            "method",
            "image",
            "label",
            "target_class",
            "predicted",
            "insertion_auc",
            "deletion_auc",
            "id",
            "road_morf_change",
            "road_lerf_change",
        ],
        &per_image,
    )
}

/// One row of `metrics.csv`: mean and SD of the three scores, then the conventions.
fn metrics_row(
    model: &str,
    method: &str,
    n: usize,
    s: &[(f64, f64); 3],
    over: &str,
    conv: &[String],
) -> Vec<String> {
    let mut row = vec![model.to_string(), method.to_string(), n.to_string()];
    for (m, sd) in s {
        row.extend([num(*m), num(*sd)]);
    }
    row.push(over.into());
    row.extend(conv.iter().cloned());
    row
}

/// `metrics.csv`: per model × method, then the ensemble (mean over models of per-model means,
/// SD across models) when there are several models. Returns the per-method statistics the
/// report table shows.
fn metrics_table(
    opts: &FaithfulnessOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Vec<MethodStats>, StudyError> {
    let (methods, models) = (&facts.methods, &facts.models);
    let conv = opts.conventions.columns();
    let mut header = vec![
        "model",
        "method",
        "n",
        "insertion_mean",
        "insertion_sd",
        "deletion_mean",
        "deletion_sd",
        "id_mean",
        "id_sd",
        "sd_over",
    ];
    header.extend(conv.iter().map(|(k, _)| *k));
    let conv_values: Vec<String> = conv.iter().map(|(_, v)| v.clone()).collect();
    let three = |sel: &[&Row]| {
        [
            stat(sel, |r| r.insertion),
            stat(sel, |r| r.deletion),
            stat(sel, |r| r.id),
        ]
    };
    let mut metrics = Vec::new();
    let mut per_model_means: Vec<Vec<[f64; 3]>> = vec![Vec::new(); methods.len()];
    for model in models {
        for (mi, method) in methods.iter().enumerate() {
            let sel: Vec<&Row> = rows
                .iter()
                .filter(|r| &r.model == model && &r.method == method)
                .collect();
            let s = three(&sel);
            per_model_means[mi].push([s[0].0, s[1].0, s[2].0]);
            metrics.push(metrics_row(
                model,
                method,
                sel.len(),
                &s,
                "images",
                &conv_values,
            ));
        }
    }
    let ensemble = models.len() > 1;
    let mut stats = Vec::new();
    for (mi, method) in methods.iter().enumerate() {
        let s: [(f64, f64); 3] = if ensemble {
            let col =
                |k: usize| mean_sd(&per_model_means[mi].iter().map(|v| v[k]).collect::<Vec<_>>());
            [col(0), col(1), col(2)]
        } else {
            three(
                &rows
                    .iter()
                    .filter(|r| &r.method == method)
                    .collect::<Vec<_>>(),
            )
        };
        if ensemble {
            let row = metrics_row(
                "ensemble-mean",
                method,
                models.len(),
                &s,
                "models",
                &conv_values,
            );
            metrics.push(row);
        }
        stats.push((method.clone(), s));
    }
    write_csv(&opts.inputs.out.join("metrics.csv"), &header, &metrics)?;
    Ok(stats)
}

/// The mean curve of `method` on the common grid.
fn mean_curve(rows: &[Row], method: &str, insertion: bool) -> Vec<(f64, f64)> {
    let curves: Vec<Vec<f64>> = rows
        .iter()
        .filter(|r| r.method == method)
        .map(|r| {
            on_grid(if insertion {
                &r.ins_curve
            } else {
                &r.del_curve
            })
        })
        .collect();
    (0..GRID)
        .map(|i| {
            let t = i as f64 / (GRID - 1) as f64;
            let v = curves.iter().map(|c| c[i]).sum::<f64>() / curves.len().max(1) as f64;
            (t, v)
        })
        .collect()
}

/// Figures: the mean insertion and deletion curves and the ID box plot.
fn figures(
    opts: &FaithfulnessOptions,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Vec<Figure>, StudyError> {
    let out = &opts.inputs.out;
    let conv: Vec<String> = opts
        .conventions
        .columns()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut figures: Vec<Figure> = Vec::new();
    for (which, stem, better) in [
        ("insertion", "insertion_curves", "higher"),
        ("deletion", "deletion_curves", "lower"),
    ] {
        let series: Vec<Series> = facts
            .methods
            .iter()
            .map(|method| Series {
                label: method.clone(),
                points: mean_curve(rows, method, which == "insertion"),
            })
            .collect();
        let plot = Plot::new(
            &format!("Mean {which} curve per method"),
            "fraction of pixels changed",
            &format!("{} of the target class", conv[2]),
            Chart::Lines {
                series,
                y_range: None,
            },
        );
        let caption = format!(
            "Mean {which} curve of each method over all images and models ({} images × {} \
             models); each curve is interpolated onto 101 equally spaced fractions before \
             averaging. The area under a curve is its AUC: {better} is better. Conventions: \
             step {}, ties {}, score {}, target {}, insertion substrate {}, deletion substrate {}.",
            facts.images,
            facts.models.len(),
            conv[0],
            conv[1],
            conv[2],
            conv[3],
            conv[4],
            conv[5]
        );
        figures.push(save_plot(out, stem, &plot, &caption)?);
    }
    let groups: Vec<(String, Vec<f64>)> = facts
        .methods
        .iter()
        .map(|method| {
            let ids = rows.iter().filter(|r| &r.method == method).map(|r| r.id);
            (method.clone(), ids.collect())
        })
        .collect();
    let plot = Plot::new(
        "ID score (insertion AUC − deletion AUC) per method",
        "method",
        "ID score",
        Chart::Boxes { groups },
    );
    figures.push(save_plot(
        out,
        "id_scores",
        &plot,
        "Distribution of the ID score over images (and models) per method: box = quartiles, \
         line = median, whiskers = 1.5 IQR. Higher is better; a method whose box sits at or \
         below the random control's does not rank pixels better than chance.",
    )?);
    Ok(figures)
}

/// The headline: the best method, how many beat the random control, the conventions.
fn headline(
    opts: &FaithfulnessOptions,
    stats: &[MethodStats],
    facts: &super::toolkit::RunFacts,
) -> Vec<String> {
    let mut headline = Vec::new();
    let ensemble = facts.models.len() > 1;
    let finite = |v: f64| if v.is_finite() { v } else { f64::NEG_INFINITY };
    let others: Vec<&MethodStats> = stats
        .iter()
        .filter(|(m, _)| m != super::toolkit::RANDOM_METHOD)
        .collect();
    if let Some((best, s)) = others
        .iter()
        .max_by(|a, b| finite(a.1[2].0).total_cmp(&finite(b.1[2].0)))
    {
        headline.push(format!(
            "Highest ID score: {best} ({:.3}; insertion {:.3}, deletion {:.3}){}.",
            s[2].0,
            s[0].0,
            s[1].0,
            if ensemble {
                format!(", mean over {} models", facts.models.len())
            } else {
                String::new()
            }
        ));
    }
    if let Some((_, rnd)) = stats
        .iter()
        .find(|(m, _)| m == super::toolkit::RANDOM_METHOD)
    {
        let (beat, not): (Vec<&MethodStats>, Vec<&MethodStats>) =
            others.iter().partition(|(_, s)| s[2].0 > rnd[2].0);
        let not: Vec<&str> = not.iter().map(|(m, _)| m.as_str()).collect();
        headline.push(format!(
            "{} of {} methods beat the random control's ID score ({:.3}){}.",
            beat.len(),
            others.len(),
            rnd[2].0,
            if not.is_empty() {
                String::new()
            } else {
                format!("; not: {}", not.join(", "))
            }
        ));
    }
    let conv: Vec<String> = opts
        .conventions
        .columns()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    headline.push(format!(
        "Conventions: step {}, ties {}, {} of the {} class, insertion from {}, deletion to {} \
         ({} images: {}).",
        conv[0], conv[1], conv[2], conv[3], conv[4], conv[5], facts.images, facts.split
    ));
    headline
}

/// Summary: `summary.json` with the conventions, the headline, the table and the work done.
fn summary(
    opts: &FaithfulnessOptions,
    stats: &[MethodStats],
    road: Option<&[RoadStats]>,
    facts: &super::toolkit::RunFacts,
    headline: &[String],
    tests: Vec<Vec<Value>>,
) -> Result<(), StudyError> {
    let spread = if facts.models.len() > 1 {
        "mean ± SD over models"
    } else {
        "mean ± SD over images"
    };
    let cell = |(m, s): (f64, f64)| -> Value {
        if s.is_finite() {
            json!(format!("{m:.3} ± {s:.3}"))
        } else {
            json!(format!("{m:.3}"))
        }
    };
    let rows = stats
        .iter()
        .map(|(method, s)| {
            let mut row = vec![json!(method), cell(s[0]), cell(s[1]), cell(s[2])];
            if let Some(r) = road.and_then(|r| r.iter().find(|r| &r.method == method)) {
                row.extend([
                    json!(r.morf.cell()),
                    json!(r.lerf.cell()),
                    json!(r.combined.cell()),
                ]);
            }
            row
        })
        .collect();
    let mut columns = vec![
        "method".into(),
        format!("insertion ↑ ({spread})"),
        format!("deletion ↓ ({spread})"),
        format!("ID ↑ ({spread})"),
    ];
    if road.is_some() {
        columns.extend([
            "ROAD MoRF change ↓ (mean [95 % CI] over images)".to_string(),
            "ROAD LeRF change ↑ (mean [95 % CI])".to_string(),
            "ROAD (LeRF − MoRF)/2 ↑ (mean [95 % CI])".to_string(),
        ]);
    }
    let conv = opts.conventions.columns();
    let summary = Summary {
        study: "faithfulness".into(),
        command: opts.inputs.command.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        conventions: json!({
            "insertion_deletion": opts.conventions,
            "columns": conv.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "split": facts.split,
            "images": facts.images,
            "models": facts.models,
            "methods": facts.methods,
            "method_options": method_options_json(&opts.inputs.method_options),
            "road": opts.road,
            "maps": "one plane per map as relevance explain draws it: signed maps summed over channels, sensitivity maps max_c |v|, CAMs as they are; ranked most relevant first",
            "table": spread,
            "tests": "id_tests.csv: methods compared per model on ID; model_tests.csv (several models): models compared per method on ID, insertion, deletion and ROAD; paired by image: mean difference with a 95 % BCa bootstrap interval, two-sided Wilcoxon signed-rank (scipy defaults) and paired t p-values, Holm over the measure's pairs; significant = Holm p < 0.05",
        }),
        headline: headline.to_vec(),
        table: Table { columns, rows },
        tests: Table::new(&paired::TEST_COLUMNS, tests),
        work: json!({"computed": facts.computed, "reused": facts.reused}),
    };
    summary.write(&opts.inputs.out)
}

/// A mean over images with its bootstrap interval.
#[derive(Clone, Copy, Debug)]
struct MeanCi {
    mean: f64,
    low: f64,
    high: f64,
}

impl MeanCi {
    /// Mean and percentile-bootstrap 95 % interval (2000 resamples, seed 0).
    fn of(values: &[f64]) -> Self {
        let ci = super::stats::bootstrap_mean_ci(
            values,
            0.95,
            2000,
            0,
            super::stats::CiMethod::Percentile,
        );
        MeanCi {
            mean: ci.estimate,
            low: ci.low,
            high: ci.high,
        }
    }

    /// `0.123 [0.100, 0.150]`, or the mean alone when there is no interval.
    fn cell(&self) -> String {
        if self.low.is_finite() {
            format!("{:.3} [{:.3}, {:.3}]", self.mean, self.low, self.high)
        } else {
            format!("{:.3}", self.mean)
        }
    }
}

/// ROAD of one method over all models' images.
#[derive(Clone, Debug)]
struct RoadStats {
    method: String,
    morf: MeanCi,
    lerf: MeanCi,
    combined: MeanCi,
}

/// `road.csv`: per model × method (then per method over all models when there are several),
/// the mean score changes with their intervals, the combined score and the share of
/// (image, percentage) pairs whose prediction stays the followed class.
fn road_table(
    opts: &FaithfulnessOptions,
    settings: &RoadSettings,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Vec<RoadStats>, StudyError> {
    let conv = settings.columns();
    let mut header = vec![
        "model",
        "method",
        "n",
        "morf_change_mean",
        "morf_change_low",
        "morf_change_high",
        "lerf_change_mean",
        "lerf_change_low",
        "lerf_change_high",
        "combined_mean",
        "combined_low",
        "combined_high",
        "morf_kept",
        "lerf_kept",
    ];
    header.extend(conv.iter().map(|(k, _)| *k));
    let mut table = Vec::new();
    let mut stats = Vec::new();
    let mut groups: Vec<(String, Option<&String>)> = Vec::new();
    for model in &facts.models {
        for method in &facts.methods {
            groups.push((method.clone(), Some(model)));
        }
    }
    for method in &facts.methods {
        groups.push((method.clone(), None));
    }
    for (method, model) in groups {
        let sel: Vec<&RoadRow> = rows
            .iter()
            .filter(|r| r.method == method && model.is_none_or(|m| &r.model == m))
            .filter_map(|r| r.road.as_ref())
            .collect();
        let of = |f: fn(&RoadRow) -> f64| MeanCi::of(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
        let (morf, lerf, combined) = (
            of(|r| r.morf.change),
            of(|r| r.lerf.change),
            of(RoadRow::combined),
        );
        let kept = |side: fn(&RoadRow) -> &RoadSide| {
            let all: Vec<bool> = sel.iter().flat_map(|r| side(r).kept.clone()).collect();
            all.iter().filter(|&&k| k).count() as f64 / all.len().max(1) as f64
        };
        let overall = model.is_none();
        if overall && facts.models.len() < 2 {
            stats.push(RoadStats {
                method,
                morf,
                lerf,
                combined,
            });
            continue;
        }
        let mut row = vec![
            model.cloned().unwrap_or_else(|| "all-models".into()),
            method.clone(),
            sel.len().to_string(),
        ];
        for m in [morf, lerf, combined] {
            row.extend([num(m.mean), num(m.low), num(m.high)]);
        }
        row.extend([num(kept(RoadRow::morf)), num(kept(RoadRow::lerf))]);
        row.extend(conv.iter().map(|(_, v)| v.clone()));
        table.push(row);
        if overall {
            stats.push(RoadStats {
                method,
                morf,
                lerf,
                combined,
            });
        }
    }
    write_csv(&opts.inputs.out.join("road.csv"), &header, &table)?;
    Ok(stats)
}

/// `road_curves`: per method, the share of images whose prediction stays the followed class
/// against the percentage removed, MoRF and LeRF (Rong et al. 2022, Fig. 4 style).
fn road_figure(
    opts: &FaithfulnessOptions,
    settings: &RoadSettings,
    rows: &[Row],
    facts: &super::toolkit::RunFacts,
) -> Result<Figure, StudyError> {
    let mut series = Vec::new();
    for method in &facts.methods {
        for (order, pick) in [
            ("MoRF", RoadRow::morf as fn(&RoadRow) -> &RoadSide),
            ("LeRF", RoadRow::lerf),
        ] {
            let sel: Vec<&RoadSide> = rows
                .iter()
                .filter(|r| &r.method == method)
                .filter_map(|r| r.road.as_ref().map(pick))
                .collect();
            let points = settings
                .percentages
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let kept = sel.iter().filter(|s| s.kept.get(i) == Some(&true)).count();
                    (p, kept as f64 / sel.len().max(1) as f64)
                })
                .collect();
            series.push(Series {
                label: format!("{method} {order}"),
                points,
            });
        }
    }
    let plot = Plot::new(
        "ROAD: prediction kept after removing and imputing pixels",
        "% of pixels removed",
        "share of images still predicted as the followed class",
        Chart::Lines {
            series,
            y_range: Some((0.0, 1.0)),
        },
    );
    let conv = settings.columns();
    save_plot(
        &opts.inputs.out,
        "road_curves",
        &plot,
        &format!(
            "ROAD (Rong et al. 2022) over {} images × {} models: the pixels each method ranks \
             most relevant (MoRF) or least relevant (LeRF) are removed and filled by noisy \
             linear imputation, each percentage from the unperturbed image. A faithful map makes \
             MoRF fall fast and LeRF stay high. Percentages {}, selection {}, noise SD {}, seed {}.",
            facts.images,
            facts.models.len(),
            conv[0].1,
            conv[1].1,
            conv[2].1,
            conv[3].1
        ),
    )
}

/// The ROAD headline: the method with the highest combined score, and how many methods' MoRF
/// change interval lies below their LeRF one.
fn road_headline(stats: &[RoadStats]) -> Vec<String> {
    let finite = |v: f64| if v.is_finite() { v } else { f64::NEG_INFINITY };
    let mut out = Vec::new();
    if let Some(best) = stats
        .iter()
        .max_by(|a, b| finite(a.combined.mean).total_cmp(&finite(b.combined.mean)))
    {
        out.push(format!(
            "Highest ROAD score (LeRF − MoRF)/2: {} ({}).",
            best.method,
            best.combined.cell()
        ));
    }
    let separated: Vec<&str> = stats
        .iter()
        .filter(|s| s.morf.high < s.lerf.low)
        .map(|s| s.method.as_str())
        .collect();
    out.push(format!(
        "ROAD MoRF falls below LeRF with non-overlapping 95 % intervals for {} of {} methods{}.",
        separated.len(),
        stats.len(),
        if separated.is_empty() {
            String::new()
        } else {
            format!(" ({})", separated.join(", "))
        }
    ));
    out
}
