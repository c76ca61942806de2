//! The `relevance concepts` pipeline: for each input, the channels of a layer ranked by their
//! relevance for the explained class, their conditional heatmaps (`.npy` and `.png`), and
//! optionally each top concept's attribution graph; one [`ConceptsRecord`] per input, all of
//! them in `concepts.json`. `relevance concepts` is a thin parser around [`run`].
//!
//! Phases: load the model → bind the LRP rules and find the layer → parse the extra channel
//! sets → per input: target → relevance at the layer → ranking → files → record → write
//! `concepts.json`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

pub use crate::records::{ConceptHeatmap, ConceptsRecord, RankedConceptRecord};

use crate::data::shard::{SampleId, ShardSet};
use crate::data::{expand_input_files, image::load_input, npy::write_npy};
use crate::explain::{PlannedInput, shard_inputs};
use crate::graph::{LoadOptions, Model, NodeId};
use crate::io::{child_path, safe_component, unique_name, write_atomic};
use crate::methods::Target;
use crate::methods::crp::graph::attribution_graph;
use crate::methods::crp::render::heatmap_png;
use crate::methods::crp::{RankedConcept, channel_relevance, conditional_relevance, rank_channels};
use crate::methods::lrp::{Composite, LrpModel, LrpOptions, SkipMode, StartRelevance};
use crate::records::{SCHEMA_VERSION, write_record};
use crate::report::heatmap::{input_image, write_png};
use crate::tensor::{T4, to_vec};

/// What to explain and how (the flags of `relevance concepts`).
#[derive(Clone, Debug)]
pub struct ConceptsOptions {
    /// Weights: .safetensors, .pth/.pt (with an architecture or card) or .onnx.
    pub model: PathBuf,
    /// Architecture and card of the weights.
    pub load: LoadOptions,
    /// Layer whose channels are the concepts (node name), recorded as given.
    pub layer: String,
    /// Number of top concepts to report and draw.
    pub top: usize,
    /// Extra channel sets to draw, as written on the command line (`12`, `3,40`); they are
    /// parsed after the model and layer are found, and named `--concept` in errors.
    pub concepts: Vec<String>,
    /// LRP composite.
    pub composite: Composite,
    /// ResNet skip connections.
    pub skip: SkipMode,
    /// Starting relevance.
    pub start: StartRelevance,
    /// Class to explain (name or index); the predicted class when `None`. Named `--target` in
    /// errors.
    pub target: Option<String>,
    /// Widths per level of each top concept's attribution graph; no graphs when empty.
    pub graph: Vec<usize>,
    /// Concepts per backward pass.
    pub batch: usize,
    /// Output folder.
    pub out: PathBuf,
    /// Images, .npy tensors, folders of them or .csv lists.
    pub inputs: Vec<PathBuf>,
    /// Only the inputs of these shards ([`crate::data::shard`]); `None`: all.
    pub shards: Option<ShardSet>,
}

/// Runs the pipeline. `on_record` sees each input's record as soon as it is made (the CLI
/// prints it, so output streams and an error on a later input leaves the earlier lines);
/// returns all records, which are also written to `<out>/concepts.json`.
pub fn run(
    opts: &ConceptsOptions,
    mut on_record: impl FnMut(&ConceptsRecord) -> Result<()>,
) -> Result<Vec<ConceptsRecord>> {
    let model = Model::load(&opts.model, &opts.load)?;
    let lrp = LrpModel::new(
        &model,
        opts.composite.clone(),
        &LrpOptions {
            skip: opts.skip,
            start: opts.start,
            zbox: None,
        },
    )?;
    let layer = lrp.find(&opts.layer)?;
    let extra = parse_channel_sets(&opts.concepts)?;
    let run = ConceptsRun {
        opts,
        model: &model,
        lrp: &lrp,
        layer,
        extra,
        // The layer is looked up by its own name (ONNX names such as
        // `/features/features.0/Conv` included) and recorded as given; only the output file
        // names use the safe form.
        layer_file: safe_component(&opts.layer),
    };
    let mut records = Vec::new();
    for input in shard_inputs(plan_inputs(&opts.inputs)?, opts.shards.as_ref()) {
        let record = run.explain_input(&input)?;
        on_record(&record)?;
        records.push(record);
    }
    write_concepts_json(&opts.out, &records)?;
    Ok(records)
}

/// The `--concept` channel sets (`12`, `3,40`) as lists of channel numbers.
pub fn parse_channel_sets(specs: &[String]) -> Result<Vec<Vec<usize>>> {
    specs
        .iter()
        .map(|s| {
            s.split(',')
                .map(|c| c.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--concept '{s}' is not a list of channel numbers"))
        })
        .collect()
}

/// What every input of a run shares: the options, the model with its bound LRP rules, the
/// layer and the extra channel sets.
struct ConceptsRun<'a> {
    opts: &'a ConceptsOptions,
    model: &'a Model,
    lrp: &'a LrpModel,
    layer: NodeId,
    extra: Vec<Vec<usize>>,
    /// The layer's name made file-name safe.
    layer_file: String,
}

impl ConceptsRun<'_> {
    /// Explains one input: ranks the layer's channels, writes its folder (input picture and
    /// heatmaps, in the folder named by its planned stem) and returns its record.
    fn explain_input(&self, input: &PlannedInput) -> Result<ConceptsRecord> {
        let file = input.path.as_path();
        let x = load_input(file, &self.model.card)?;
        let request = ConceptRequest {
            top: self.opts.top,
            extra: self.extra.clone(),
            target: self.opts.target.clone(),
            batch: self.opts.batch,
        };
        let found = concepts_of(self.model, self.lrp, self.layer, &x, &request)?;
        let dir = child_path(&self.opts.out, &input.stem)?;
        let input_png = self.write_input_png(&x, &dir)?;
        let heatmaps = self.write_heatmaps(&found, &dir)?;
        let mut record = self.record(file, found.target, found.explained, &found.ranking);
        record.input_png = Some(input_png);
        record.heatmaps = heatmaps;
        if !self.opts.graph.is_empty() {
            record.graphs = Some(self.graphs(&x, found.target, &found.ranking)?);
        }
        Ok(record)
    }

    /// Writes `input.png`, the image as the model saw it, inside the run folder: the report
    /// shows only files inside it, and the input itself usually lies elsewhere.
    fn write_input_png(&self, x: &T4, dir: &Path) -> Result<PathBuf> {
        let input_png = dir.join("input.png");
        let [_, c, h, w] = x.dims();
        let seen = input_image(&to_vec(x), c, h as u32, w as u32, &self.model.card);
        write_png(&input_png, &seen).with_context(|| input_png.display().to_string())?;
        Ok(input_png)
    }

    /// Writes the conditional heatmap of every channel set of `found` as
    /// `<layer>_<channels>.npy` and `.png` into `dir`.
    fn write_heatmaps(&self, found: &InputConcepts, dir: &Path) -> Result<Vec<ConceptHeatmap>> {
        let [h, w] = found.size;
        let mut drawn = Vec::new();
        for (i, set) in found.sets.iter().enumerate() {
            let map = &found.heatmaps[i * h * w..(i + 1) * h * w];
            let name = set
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("+");
            let npy = child_path(dir, &format!("{}_{name}.npy", self.layer_file))?;
            let png = child_path(dir, &format!("{}_{name}.png", self.layer_file))?;
            write_npy(&npy, &[h, w], map)?;
            write_atomic(&png, &heatmap_png(map, h, w)?)
                .with_context(|| png.display().to_string())?;
            drawn.push(ConceptHeatmap {
                channels: set.clone(),
                npy,
                png,
                relevance: map.iter().map(|&v| v as f64).sum::<f64>(),
            });
        }
        Ok(drawn)
    }

    /// The record of one input, without its files and graphs.
    fn record(
        &self,
        file: &Path,
        target: usize,
        explained: f32,
        ranking: &[RankedConcept],
    ) -> ConceptsRecord {
        ConceptsRecord {
            schema_version: SCHEMA_VERSION,
            input: file.display().to_string(),
            input_png: None,
            class: self.model.class_name(target),
            target,
            layer: self.opts.layer.clone(),
            composite: self.opts.composite.name().to_string(),
            resnet_skip: self.opts.skip.to_string(),
            start: self.opts.start.to_string(),
            explained: f64::from(explained),
            concepts: ranking
                .iter()
                .map(|r| RankedConceptRecord {
                    channel: r.channel,
                    relevance: f64::from(r.relevance),
                    raw: f64::from(r.raw),
                })
                .collect(),
            heatmaps: Vec::new(),
            graphs: None,
        }
    }

    /// The attribution graph of every top concept, as JSON.
    fn graphs(&self, x: &T4, target: usize, ranking: &[RankedConcept]) -> Result<Value> {
        let graphs = ranking
            .iter()
            .map(|r| {
                attribution_graph(
                    self.lrp,
                    x,
                    Some(target),
                    &self.opts.layer,
                    r.channel,
                    &self.opts.graph,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serde_json::to_value(graphs)?)
    }
}

/// What [`concepts_of`] computes for one input besides the ranking's length.
#[derive(Clone, Debug)]
pub struct ConceptRequest {
    /// Number of top channels to rank and draw.
    pub top: usize,
    /// Extra channel sets to draw after the top channels.
    pub extra: Vec<Vec<usize>>,
    /// Class to explain (name, index or `neg:<class>`); the predicted class when `None`.
    /// Named `--target` in errors.
    pub target: Option<String>,
    /// Concepts per backward pass.
    pub batch: usize,
}

/// The concepts of one input at one layer (zennit-crp 0.6's `CondAttribution` with
/// `ChannelConcept`, Achtibat et al. 2023).
#[derive(Clone, Debug)]
pub struct InputConcepts {
    /// The explained class.
    pub target: usize,
    /// The starting relevance (the explained output).
    pub explained: f32,
    /// `R_c`: the layer's relevance summed over the positions of each channel, for every channel.
    pub channel_relevance: Vec<f32>,
    /// The top channels by `R_c`, largest first, with their shares `R_c / (Σ|R| + 10⁻¹⁰)`.
    pub ranking: Vec<RankedConcept>,
    /// The channel sets drawn: each top channel alone, then the extra sets.
    pub sets: Vec<Vec<usize>>,
    /// One conditional heatmap per set (input relevance with the layer's relevance masked to
    /// the set, summed over input channels), `[sets, H, W]` row-major; empty without sets.
    pub heatmaps: Vec<f32>,
    /// `[H, W]` of each heatmap.
    pub size: [usize; 2],
}

/// The concepts of the preprocessed input `x` (`[1, C, H, W]`) at `layer` of `lrp` (bound on
/// `model`): the target, the relevance per channel, the ranking and the conditional heatmaps of
/// the top channels and the extra sets. `relevance concepts` writes exactly these numbers.
pub fn concepts_of(
    model: &Model,
    lrp: &LrpModel,
    layer: NodeId,
    x: &T4,
    request: &ConceptRequest,
) -> Result<InputConcepts> {
    let acts = lrp.forward(x.clone())?;
    let logits = to_vec(acts.get(lrp.logits_node())?);
    let target = resolve_target(model, request.target.as_deref(), &logits)?;
    let (seed, explained) = lrp.start_relevance(&acts, &[target])?;
    let at_layer = lrp
        .propagate(&acts, lrp.logits_node(), seed, &[layer])?
        .remove(0);
    let channel_relevance = channel_relevance(&at_layer, false).remove(0);
    let ranking = rank_channels(&at_layer, request.top);
    let mut sets: Vec<Vec<usize>> = ranking.iter().map(|r| vec![r.channel]).collect();
    sets.extend(request.extra.iter().cloned());
    let [_, _, h, w] = x.dims();
    let heatmaps = if sets.is_empty() {
        Vec::new()
    } else {
        let result = conditional_relevance(lrp, x, target, layer, &sets, request.batch)?;
        to_vec(&result.heatmaps())
    };
    Ok(InputConcepts {
        target,
        explained: explained[0],
        channel_relevance,
        ranking,
        sets,
        heatmaps,
        size: [h, w],
    })
}

/// The class to explain: the requested one, else the one with the highest logit.
fn resolve_target(model: &Model, requested: Option<&str>, logits: &[f32]) -> Result<usize> {
    let target: Target = match requested {
        Some(t) => t.parse().with_context(|| format!("--target '{t}'"))?,
        None => Target::Predicted,
    };
    if target == Target::All {
        anyhow::bail!("--target all: concepts explain one class per run; name the class");
    }
    let resolved = target
        .resolve(logits, logits.len(), &model.card)
        .with_context(|| format!("--target '{target}'"))?;
    Ok(resolved[0][0])
}

/// Every input of an unsharded run of `inputs`, in its order, with the name of its folder:
/// its file stem made safe and unique within the whole run (so a shard names its folders as
/// the unsharded run does), and its identity for the shard partition.
pub fn plan_inputs(inputs: &[PathBuf]) -> Result<Vec<PlannedInput>> {
    let mut stems = HashSet::new();
    Ok(expand_input_files(inputs)?
        .into_iter()
        .map(|f| {
            let stem = f
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "input".into());
            let stem = unique_name(safe_component(&stem), &mut stems);
            let id = SampleId {
                class: f.class,
                name: f.path.display().to_string(),
            };
            PlannedInput {
                path: f.path,
                stem,
                id,
            }
        })
        .collect())
}

/// Writes all records as `<out>/concepts.json`, so a report can be built from the output
/// folder later.
fn write_concepts_json(out: &Path, records: &[ConceptsRecord]) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create output folder", out.display()))?;
    write_record(&out.join("concepts.json"), &records)?;
    Ok(())
}
