//! The explain pipeline: maps (`.npy`) and overlays (`.png`) for every input × target × method,
//! a grid of all overlays and `explain.json` ([`ExplainRecord`]) describing the run. `relevance
//! explain` is a thin parser around [`run`].
//!
//! Phases: parse the method specs → load the model → prepare every method (layers checked) →
//! read every input (one unreadable input stops the run before anything is written) → explain
//! the inputs in chunks, writing each row's files → write the grid and the record.

mod batch;
pub mod concepts;
mod rows;

pub use batch::{Pass, Predictions, explain_batch};

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

pub use crate::records::ExplainRecord;

use crate::data::shard::{SampleId, ShardSet, keep};
use crate::data::{expand_input_files, image::load_input};
use crate::graph::{LoadOptions, Model};
use crate::io::{safe_component, unique_name};
use crate::methods::{MethodOptions, MethodSpec, Prepared, Target};
use crate::records::{GridRecord, LrpRecord, MethodRecord, OutputRecord};
use crate::records::{SCHEMA_VERSION, write_record};
use crate::report::Colormap;
use crate::tensor::T4;
use rows::{RowScores, RunWriter};

/// Images per forward pass (also the rows per pass with `Target::All`).
pub const IMAGES_PER_PASS: usize = 8;

/// What to explain and how.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// Weights: .safetensors, .pth/.pt (with an architecture or card) or .onnx.
    pub model: PathBuf,
    /// Architecture and card of the weights.
    pub load: LoadOptions,
    /// Method specs ([`MethodSpec`]); repeats are dropped.
    pub methods: Vec<String>,
    /// Options the specs' parameters override (the command's flags).
    pub method_options: MethodOptions,
    /// The class to explain per input.
    pub target: Target,
    /// Output folder.
    pub out: PathBuf,
    /// Opacity of the heatmap in the overlays, in `[0, 1]` ([`crate::report::heatmap::DEFAULT_ALPHA`] unless asked).
    pub alpha: f32,
    /// Colormap of unsigned maps (signed maps always use a diverging one).
    pub colormap: Option<Colormap>,
    /// Images, `.npy` tensors or folders of them.
    pub inputs: Vec<PathBuf>,
    /// Only the inputs of these shards ([`crate::data::shard`]); `None`: all.
    pub shards: Option<ShardSet>,
}

/// An input of the unsharded run, in its order, with its unique output stem.
#[derive(Clone, Debug)]
pub struct PlannedInput {
    /// The file.
    pub path: PathBuf,
    /// The unique stem its outputs are named by.
    pub stem: String,
    /// Its identity for the shard partition: its class (the label of its row in a CSV list,
    /// else the folder it lies in, its class in an ImageFolder) and its path.
    pub id: SampleId,
}

/// Every input of an unsharded run of `inputs`, in the order the run explains them, with the
/// stems it gives them. A shard names its outputs by these stems (decided on the whole list,
/// so a repeated stem gets the same `-2` in every shard) and explains those of its shard.
pub fn plan_inputs(inputs: &[PathBuf]) -> Result<Vec<PlannedInput>> {
    let files = expand_input_files(inputs)?;
    let classes: Vec<String> = files.iter().map(|f| f.class.clone()).collect();
    Ok(unique_stems(files.into_iter().map(|f| f.path).collect())
        .into_iter()
        .zip(classes)
        .map(|(Input { path, stem }, class)| {
            let id = SampleId {
                class,
                name: path.display().to_string(),
            };
            PlannedInput { path, stem, id }
        })
        .collect())
}

/// The planned inputs of `shards` (all of them when `None`).
pub fn shard_inputs(planned: Vec<PlannedInput>, shards: Option<&ShardSet>) -> Vec<PlannedInput> {
    match shards {
        Some(set) => keep(planned, set, |p| p.id.clone()),
        None => planned,
    }
}

/// One image to explain.
pub(crate) struct Input {
    pub(crate) path: PathBuf,
    pub(crate) stem: String,
}

/// Runs the pipeline and returns the record it wrote to `OUT/explain.json`.
pub fn run(opts: &ExplainOptions) -> Result<ExplainRecord> {
    check_drawing(opts)?;
    let specs = MethodSpec::parse_list(&opts.methods, &opts.method_options)?;
    if specs.is_empty() {
        bail!("no methods given");
    }
    let model = Model::load(&opts.model, &opts.load)?;
    let methods = specs
        .iter()
        .map(|s| s.prepare(&model).with_context(|| format!("method {s}")))
        .collect::<Result<Vec<_>>>()?;
    for warning in methods.iter().flat_map(Prepared::warnings) {
        eprintln!("warning: {warning}");
    }
    let inputs: Vec<Input> = shard_inputs(plan_inputs(&opts.inputs)?, opts.shards.as_ref())
        .into_iter()
        .map(|p| Input {
            path: p.path,
            stem: p.stem,
        })
        .collect();
    check_inputs(&inputs, &model)?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("{}: cannot create output folder", opts.out.display()))?;
    let mut writer = RunWriter::new(opts, &model, &methods);
    for chunk in inputs.chunks(IMAGES_PER_PASS) {
        explain_chunk(&mut writer, &model, chunk, &opts.target)?;
    }
    let grid = writer.write_grid()?;
    let record = run_record(opts, &model, &methods, writer.into_outputs(), grid);
    write_record(&opts.out.join("explain.json"), &record).map_err(|e| anyhow::anyhow!(e))?;
    Ok(record)
}

/// Checks the drawing options before any work.
fn check_drawing(opts: &ExplainOptions) -> Result<()> {
    if opts.colormap.is_some_and(Colormap::is_diverging) {
        bail!("--colormap sets the colormap of unsigned maps; use viridis, inferno or gray");
    }
    if !(0.0..=1.0).contains(&opts.alpha) {
        bail!("--alpha must lie in [0, 1], got {}", opts.alpha);
    }
    Ok(())
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

/// Explains one chunk of inputs ([`explain_batch`]), writing each pass's rows.
fn explain_chunk(
    writer: &mut RunWriter,
    model: &Model,
    chunk: &[Input],
    target: &Target,
) -> Result<()> {
    let xs = chunk
        .iter()
        .map(|i| load_input(&i.path, &model.card))
        .collect::<Result<Vec<_>, _>>()?;
    let x = T4::cat(xs, 0);
    let all_targets = *target == Target::All;
    let methods = writer.methods();
    explain_batch(model, methods, &x, target, true, |predictions, pass| {
        let owners: Vec<&Input> = pass.inputs.iter().map(|&i| &chunk[i]).collect();
        let probs: Vec<Vec<f32>> = pass
            .inputs
            .iter()
            .map(|&i| predictions.probs[i].clone())
            .collect();
        let scores = RowScores { probs: &probs };
        writer.write_rows(&pass, &owners, scores, all_targets)
    })?;
    Ok(())
}

/// The record of the whole run.
fn run_record(
    opts: &ExplainOptions,
    model: &Model,
    methods: &[Prepared],
    outputs: Vec<OutputRecord>,
    grid: Option<GridRecord>,
) -> ExplainRecord {
    let lrp = &opts.method_options.lrp;
    ExplainRecord {
        schema_version: SCHEMA_VERSION,
        model: opts.model.display().to_string(),
        arch: model.card.arch.clone(),
        classes: (0..model.card.num_classes)
            .map(|i| model.class_name(i))
            .collect(),
        target: opts.target.to_string(),
        layers: methods
            .iter()
            .filter_map(|m| Some((m.label(), m.layer()?.to_string())))
            .collect(),
        methods: methods.iter().map(method_record).collect(),
        outputs,
        grid,
        lrp: LrpRecord {
            resnet_skip: lrp.skip.to_string(),
            relevance_start: lrp.start.to_string(),
            conservation_error:
                "|sum of input relevance - starting relevance| / |starting relevance|".into(),
        },
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

fn method_record(m: &Prepared) -> MethodRecord {
    let params = m.params();
    MethodRecord {
        name: m.label(),
        method: Some(params.method.to_string()),
        map: m.kind().describe().into(),
        style: m.style().name().into(),
        params: params.options,
    }
}
