//! `relevance explain`: maps (`.npy`) and overlays (`.png`) for every input × target × method,
//! a grid of all overlays and `explain.json` describing the run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::data::{expand_inputs, image::load_input, npy::write_npy};
use crate::engine::Activations;
use crate::graph::{LoadOptions, Model};
use crate::io::{safe_component, unique_name};
use crate::methods::lrp::{Conservation, LrpOptions, SkipMode, StartRelevance};
use crate::methods::pass::{forward_all, logits, repeat_rows, row};
use crate::methods::{
    Baseline, Explainer, MapKind, MapStyle, MethodOptions, Quadrature, Target, by_name, cam,
};
use crate::report::heatmap::{
    default_colormap, grid, input_image, normalise, overlay, plane, write_png,
};
use crate::report::{Colormap, Scale};
use crate::tensor::{T4, to_vec};

/// Images per forward pass (also the rows per pass with `--target all`).
const IMAGES_PER_PASS: usize = 8;
/// The overview grid is written only up to this many rows (input × target).
const MAX_GRID_ROWS: usize = 32;

/// Arguments of `relevance explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Weights: .safetensors, .pth/.pt (with --arch or a card) or .onnx.
    #[arg(long)]
    pub model: PathBuf,
    /// Built-in architecture of a state dict.
    #[arg(long)]
    pub arch: Option<String>,
    /// Model card (JSON/TOML); by default one beside the weights is used.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Methods, comma-separated: saliency, input-x-gradient, smoothgrad, integrated-gradients,
    /// occlusion, guided-backprop, deconvnet, cam, grad-cam, grad-cam-plus-plus, hires-cam,
    /// xgrad-cam, layer-cam, score-cam, eigen-cam, guided-grad-cam, lrp-epsilon-plus,
    /// lrp-epsilon-plus-flat, lrp-epsilon-gamma-box, lrp-epsilon-alpha2-beta1.
    #[arg(long, value_delimiter = ',', required = true)]
    pub method: Vec<String>,
    /// Class to explain: pred (the predicted class), a class index, a class name, or all.
    #[arg(long, default_value = "pred")]
    pub target: String,
    /// CAM target layer (a node name); default: the last spatial layer before the classifier.
    #[arg(long)]
    pub layer: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "explanations")]
    pub out: PathBuf,
    /// Integrated Gradients: points on the path.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Integrated Gradients: gauss-legendre, riemann-right, riemann-left, riemann-middle or
    /// riemann-trapezoid.
    #[arg(long, default_value = "gauss-legendre")]
    pub integration: String,
    /// SmoothGrad: noisy samples per image.
    #[arg(long, default_value_t = 25)]
    pub samples: usize,
    /// SmoothGrad: noise σ as a fraction of the image's value range.
    #[arg(long, default_value_t = 0.15)]
    pub noise: f32,
    /// Occlusion: window side in pixels.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Occlusion: step between windows in pixels.
    #[arg(long, default_value_t = 8)]
    pub stride: usize,
    /// Integrated Gradients / Occlusion reference: zero, black, blur, blur:SIGMA or a number.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Seed of random draws (SmoothGrad).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows per forward pass for methods that evaluate many copies of an input.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// LRP: treatment of ResNet skip connections: zennit (signed split, as zennit's canonizer),
    /// split (Relevance Splitting, Otsuki et al. 2024) or symmetric (R/2 to each branch).
    #[arg(long, default_value = "zennit")]
    pub resnet_skip: SkipMode,
    /// LRP: starting relevance at the target: logit (zennit), probability (softmax, as the
    /// Relevance Splitting paper) or one.
    #[arg(long, default_value = "logit")]
    pub relevance_start: StartRelevance,
    /// LRP: print each map's conservation error |Σ R_input − R_start| / |R_start| and fail when
    /// one exceeds --conservation-tol.
    #[arg(long)]
    pub check_conservation: bool,
    /// Largest conservation error --check-conservation accepts.
    #[arg(long, default_value_t = 1e-3)]
    pub conservation_tol: f64,
    /// Opacity of the heatmap in the overlays (0–1).
    #[arg(long, default_value_t = 0.7)]
    pub alpha: f32,
    /// Colormap of unsigned maps (viridis, inferno, gray); signed maps use bwr or coldnhot.
    #[arg(long)]
    pub colormap: Option<String>,
    /// Images, .npy tensors or folders of them. All are read before the first map is written:
    /// one unreadable input stops the run with nothing written.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Method options from the flags.
fn method_options(args: &ExplainArgs) -> Result<MethodOptions> {
    Ok(MethodOptions {
        layer: args.layer.clone(),
        steps: args.steps,
        quadrature: args.integration.parse::<Quadrature>()?,
        samples: args.samples,
        noise: args.noise,
        window: args.window,
        stride: args.stride,
        baseline: args
            .baseline
            .as_deref()
            .map(str::parse::<Baseline>)
            .transpose()?,
        seed: args.seed,
        batch: args.batch.max(1),
        lrp: LrpOptions {
            skip: args.resnet_skip,
            start: args.relevance_start,
            zbox: None,
        },
    })
}

/// One image to explain.
struct Input {
    path: PathBuf,
    stem: String,
}

/// Unique stems: a repeated stem gets `-2`, `-3`, … so no output overwrites another.
fn unique_stems(files: Vec<PathBuf>) -> Vec<Input> {
    let mut seen = HashSet::new();
    files
        .into_iter()
        .map(|path| {
            let base = safe_component(&path.file_stem().unwrap_or_default().to_string_lossy());
            let stem = unique_name(base, &mut seen);
            Input { path, stem }
        })
        .collect()
}

/// Everything the run writes, gathered for `explain.json` and the grid.
struct Run<'a> {
    args: &'a ExplainArgs,
    model: &'a Model,
    methods: Vec<Box<dyn Explainer>>,
    unsigned: Option<Colormap>,
    records: Vec<Value>,
    grid_rows: Vec<Vec<image::RgbImage>>,
    grid_labels: Vec<String>,
    rows_done: usize,
    /// `(output prefix, conservation error)` of every LRP map.
    conservation: Vec<(String, f64)>,
}

/// Class probabilities and logits of each row being explained.
struct RowScores<'a> {
    probs: &'a [Vec<f32>],
    logits: &'a [Vec<f32>],
}

/// Softmax of one row of logits.
fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

impl Run<'_> {
    /// Explains rows `x` (one image repeated or several images) for `targets`, writing files for
    /// each row; `owners[r]` is the input of row `r` and `probs[r]` its class probabilities.
    fn explain_rows(
        &mut self,
        x: &T4,
        acts: &Activations,
        targets: &[usize],
        owners: &[&Input],
        scores: RowScores,
        all_targets: bool,
    ) -> Result<()> {
        let RowScores {
            probs,
            logits: logits_rows,
        } = scores;
        let [_, c, h, w] = x.dims();
        let card = &self.model.card;
        let mut maps = Vec::with_capacity(self.methods.len());
        for m in &self.methods {
            let map = m
                .explain_forward(self.model, x, acts, targets)
                .with_context(|| format!("method {}", m.name()))?;
            maps.push(to_vec(&map));
        }
        for (r, (&target, input)) in targets.iter().zip(owners).enumerate() {
            let class = self.model.class_name(target);
            let prefix = if all_targets {
                format!("{}.{}", input.stem, safe_component(&class))
            } else {
                input.stem.clone()
            };
            let base = input_image(&row(x, r), c, h as u32, w as u32, card);
            // The image as the model saw it, inside --out: the report shows only files inside
            // the run folder, and the input itself usually lies elsewhere.
            let input_png = self.args.out.join(format!("{prefix}.input.png"));
            write_png(&input_png, &base).with_context(|| input_png.display().to_string())?;
            let mut tiles = vec![base.clone()];
            let mut files = serde_json::Map::new();
            for (m, map) in self.methods.iter().zip(&maps) {
                let channels = match m.kind() {
                    MapKind::Input => c,
                    MapKind::Cam => 1,
                };
                let per = channels * h * w;
                let values = &map[r * per..(r + 1) * per];
                let npy = self.args.out.join(format!("{prefix}.{}.npy", m.name()));
                let shape: Vec<usize> = match m.kind() {
                    MapKind::Input => vec![c, h, w],
                    MapKind::Cam => vec![h, w],
                };
                write_npy(&npy, &shape, values)?;
                if m.name().starts_with("lrp-") {
                    let record = conservation_record(
                        values,
                        &probs[r],
                        logits_rows[r][target],
                        target,
                        self.args.relevance_start,
                    );
                    self.conservation.push((
                        format!("{prefix}.{}", m.name()),
                        record["error"].as_f64().unwrap_or(f64::NAN),
                    ));
                    files.insert(format!("{}.conservation", m.name()), record);
                }
                let style = m.style();
                let cmap = match (style, self.unsigned) {
                    (MapStyle::Signed, _) | (_, None) => default_colormap(style),
                    (_, Some(cm)) => cm,
                };
                let plane = plane(values, channels, style);
                let norm = normalise(&plane, style, Scale::default());
                let picture = overlay(&base, &norm, style, cmap, self.args.alpha);
                let png = self.args.out.join(format!("{prefix}.{}.png", m.name()));
                write_png(&png, &picture).with_context(|| png.display().to_string())?;
                files.insert(
                    m.name().to_string(),
                    json!({"npy": file_name(&npy), "png": file_name(&png)}),
                );
                tiles.push(picture);
            }
            if self.rows_done < MAX_GRID_ROWS {
                self.grid_rows.push(tiles);
                self.grid_labels.push(format!("{}: {class}", input.stem));
            }
            self.rows_done += 1;
            self.records.push(json!({
                "input": input.path.display().to_string(),
                "input_png": file_name(&input_png),
                "stem": input.stem,
                "target": {"index": target, "name": class, "prob": probs[r][target]},
                "files": files,
            }));
        }
        Ok(())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Runs the command.
pub fn run(args: ExplainArgs) -> Result<()> {
    let opts = method_options(&args)?;
    let target: Target = args.target.parse()?;
    let unsigned = args
        .colormap
        .as_deref()
        .map(|s| s.parse::<Colormap>().map_err(anyhow::Error::msg))
        .transpose()?;
    if unsigned.is_some_and(Colormap::is_diverging) {
        bail!("--colormap sets the colormap of unsigned maps; use viridis, inferno or gray");
    }
    if !(0.0..=1.0).contains(&args.alpha) {
        bail!("--alpha must lie in [0, 1], got {}", args.alpha);
    }
    let mut names: Vec<String> = Vec::new();
    for m in &args.method {
        let m = m.trim().to_string();
        if !m.is_empty() && !names.contains(&m) {
            names.push(m);
        }
    }
    let methods = names
        .iter()
        .map(|n| by_name(n, &opts))
        .collect::<Result<Vec<_>, _>>()?;
    let model = Model::load(
        &args.model,
        &LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
    )?;
    let inputs = unique_stems(expand_inputs(&args.inputs)?);
    check_inputs(&inputs, &model)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create output folder", args.out.display()))?;
    let mut run = Run {
        args: &args,
        model: &model,
        methods,
        unsigned,
        records: Vec::new(),
        grid_rows: Vec::new(),
        grid_labels: Vec::new(),
        rows_done: 0,
        conservation: Vec::new(),
    };
    let mut layers: Option<Value> = None;
    for chunk in inputs.chunks(IMAGES_PER_PASS) {
        let xs = chunk
            .iter()
            .map(|i| load_input(&i.path, &model.card))
            .collect::<Result<Vec<_>, _>>()?;
        let x = T4::cat(xs, 0);
        let acts = forward_all(&model, &x)?;
        let k = acts.get(model.graph.logits())?.dims()[1];
        let all_logits = logits(&model, &acts)?;
        let probs: Vec<Vec<f32>> = all_logits.chunks(k).map(softmax).collect();
        let logit_rows: Vec<Vec<f32>> = all_logits.chunks(k).map(<[f32]>::to_vec).collect();
        if layers.is_none() {
            layers = Some(resolved_layers(&run, &acts, &opts)?);
        }
        let per_image = target.resolve(&all_logits, k, &model.card)?;
        if target != Target::All {
            let targets: Vec<usize> = per_image.iter().map(|t| t[0]).collect();
            let owners: Vec<&Input> = chunk.iter().collect();
            let scores = RowScores {
                probs: &probs,
                logits: &logit_rows,
            };
            run.explain_rows(&x, &acts, &targets, &owners, scores, false)?;
            continue;
        }
        for (i, input) in chunk.iter().enumerate() {
            let image = x.clone().narrow(0, i, 1);
            for classes in per_image[i].chunks(IMAGES_PER_PASS) {
                let rows = repeat_rows(&image, classes.len());
                let acts = forward_all(&model, &rows)?;
                let owners = vec![input; classes.len()];
                let row_probs = vec![probs[i].clone(); classes.len()];
                let row_logits = vec![logit_rows[i].clone(); classes.len()];
                let scores = RowScores {
                    probs: &row_probs,
                    logits: &row_logits,
                };
                run.explain_rows(&rows, &acts, classes, &owners, scores, true)?;
            }
        }
    }
    let mut grid_record = json!(null);
    if !run.grid_rows.is_empty() {
        let path = args.out.join("grid.png");
        write_png(&path, &grid(&run.grid_rows, 4)).with_context(|| path.display().to_string())?;
        let mut columns = vec!["input".to_string()];
        columns.extend(names.iter().cloned());
        grid_record = json!({
            "file": "grid.png",
            "rows": run.grid_labels,
            "columns": columns,
            "complete": run.rows_done <= MAX_GRID_ROWS,
        });
    }
    let methods: Vec<Value> = run
        .methods
        .iter()
        .map(|m| {
            json!({
                "name": m.name(),
                "map": match m.kind() { MapKind::Input => "[C,H,W] input space", MapKind::Cam => "[H,W] in [0,1]" },
                "style": format!("{:?}", m.style()).to_lowercase(),
                "params": m.params(),
            })
        })
        .collect();
    let record = json!({
        "model": args.model.display().to_string(),
        "arch": model.card.arch,
        "classes": (0..model.card.num_classes).map(|i| model.class_name(i)).collect::<Vec<_>>(),
        "target": args.target,
        "layers": layers,
        "methods": methods,
        "outputs": run.records,
        "grid": grid_record,
        "lrp": {
            "resnet_skip": args.resnet_skip.to_string(),
            "relevance_start": format!("{:?}", args.relevance_start).to_lowercase(),
            "conservation_error": "|sum of input relevance - starting relevance| / |starting relevance|",
        },
        "version": env!("CARGO_PKG_VERSION"),
    });
    let path = args.out.join("explain.json");
    crate::io::write_text_atomic(&path, &serde_json::to_string_pretty(&record)?)
        .with_context(|| path.display().to_string())?;
    if args.check_conservation {
        report_conservation(&run.conservation, args.conservation_tol)?;
    }
    eprintln!(
        "wrote {} map(s) for {} input(s) to {}",
        run.rows_done * run.methods.len(),
        inputs.len(),
        args.out.display()
    );
    Ok(())
}

/// Reads and preprocesses every input once before the first map is written, so a file that
/// cannot be read (an empty PNG, a truncated JPEG, a tensor of the wrong shape) stops the run
/// with one error naming it and nothing in `--out`, instead of failing half-way with maps
/// written and no `explain.json`. Costs one extra decode per image, small next to any method.
fn check_inputs(inputs: &[Input], model: &Model) -> Result<()> {
    for input in inputs {
        load_input(&input.path, &model.card)?;
    }
    Ok(())
}

/// The layer each CAM-based method uses (checked before any map is computed, so a bad `--layer`
/// fails early with the list of valid names).
fn resolved_layers(run: &Run, acts: &Activations, opts: &MethodOptions) -> Result<Value> {
    let mut out = serde_json::Map::new();
    for m in &run.methods {
        if let Some(id) = cam::method_layer(m.name(), run.model, acts, opts.layer.as_deref())? {
            out.insert(
                m.name().to_string(),
                json!(run.model.graph.nodes[id].name.clone()),
            );
        }
    }
    Ok(Value::Object(out))
}

/// Conservation of one LRP map: the relevance it started from (the target's logit, probability
/// or 1, as the starting relevance says) against the sum of the map, accumulated in f64.
fn conservation_record(
    map: &[f32],
    probs: &[f32],
    logit: f32,
    target: usize,
    start: StartRelevance,
) -> Value {
    let explained = match start {
        StartRelevance::Logit => logit as f64,
        StartRelevance::Probability => probs[target] as f64,
        StartRelevance::One => 1.0,
    };
    let total: f64 = map.iter().map(|&v| v as f64).sum();
    json!(Conservation::of(total, explained))
}

/// `--check-conservation`: prints every LRP map's conservation error and fails when one exceeds
/// `tol`, naming them.
fn report_conservation(rows: &[(String, f64)], tol: f64) -> Result<()> {
    if rows.is_empty() {
        bail!("--check-conservation needs at least one lrp-* method");
    }
    outln!("map\tconservation_error")?;
    for (name, error) in rows {
        outln!("{name}\t{error:.3e}")?;
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|(_, e)| e.is_nan() || *e > tol)
        .map(|(n, e)| format!("{n} ({e:.3e})"))
        .collect();
    if !bad.is_empty() {
        bail!(
            "conservation error above {tol:e} in {} of {} map(s): {}",
            bad.len(),
            rows.len(),
            bad.join(", ")
        );
    }
    Ok(())
}
