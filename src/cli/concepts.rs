//! `relevance concepts`: for each input, the channels of a layer ranked by their relevance for
//! the prediction, their conditional heatmaps (`.npy` and `.png`), and optionally each top
//! concept's attribution graph. One JSON line per input on stdout.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::data::{expand_inputs, image::load_input, npy::write_npy};
use crate::graph::{LoadOptions, Model};
use crate::io::{child_path, safe_component, unique_name, write_atomic};
use crate::methods::crp::graph::attribution_graph;
use crate::methods::crp::render::heatmap_png;
use crate::methods::crp::{conditional_relevance, rank_channels};
use crate::methods::lrp::{Composite, LrpModel, LrpOptions, SkipMode, StartRelevance};
use crate::records::{
    ConceptHeatmap, ConceptsRecord, RankedConceptRecord, SCHEMA_VERSION, write_record,
};
use crate::report::heatmap::{input_image, write_png};
use crate::tensor::to_vec;

/// Arguments of `relevance concepts`.
#[derive(clap::Args, Debug)]
pub struct ConceptsArgs {
    /// Weights: .safetensors, .pth/.pt (with --arch or a card) or .onnx.
    #[arg(long)]
    pub model: PathBuf,
    /// Built-in architecture of a state dict.
    #[arg(long)]
    pub arch: Option<String>,
    /// Model card (JSON/TOML); by default one beside the weights is used.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Layer whose channels are the concepts (node name, e.g. features.28 or layer4.1).
    #[arg(long)]
    pub layer: String,
    /// Number of top concepts to report and draw.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Extra concepts to draw: channel sets such as `12` or `3,40` (repeatable).
    #[arg(long = "concept")]
    pub concepts: Vec<String>,
    /// LRP composite.
    #[arg(long, default_value = "epsilon-plus-flat")]
    pub composite: Composite,
    /// ResNet skip connections: zennit, split or symmetric.
    #[arg(long, default_value = "zennit")]
    pub resnet_skip: SkipMode,
    /// Starting relevance: logit, probability or one.
    #[arg(long, default_value = "logit")]
    pub start: StartRelevance,
    /// Class to explain (name or index); the predicted class by default.
    #[arg(long)]
    pub target: Option<String>,
    /// Also decompose each top concept into lower-layer concepts, with these widths per level.
    #[arg(long, value_delimiter = ',')]
    pub graph: Vec<usize>,
    /// Concepts per backward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Output folder: `<input>/<layer>_<channels>.npy|png` per input and `concepts.json`;
    /// the input and layer parts are made file-name safe (only `A-Za-z0-9-_.`, not starting
    /// with `.` or `-`, with a short hash of the original when changed), so every file stays inside this folder.
    #[arg(long, default_value = "relevance-concepts")]
    pub out: PathBuf,
    /// Print nothing on stdout (`concepts.json` in --out holds the same records).
    #[arg(long)]
    pub quiet: bool,
    /// Images, .npy tensors or folders of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Runs the command.
pub fn run(args: ConceptsArgs) -> Result<()> {
    let model = Model::load(
        &args.model,
        &LoadOptions {
            arch: args.arch.clone(),
            card: args.card.clone(),
        },
    )?;
    let options = LrpOptions {
        skip: args.resnet_skip,
        start: args.start,
        zbox: None,
    };
    let lrp = LrpModel::new(&model, args.composite.clone(), &options)?;
    let layer = lrp.find(&args.layer)?;
    let extra: Vec<Vec<usize>> = args
        .concepts
        .iter()
        .map(|s| {
            s.split(',')
                .map(|c| c.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--concept '{s}' is not a list of channel numbers"))
        })
        .collect::<Result<_>>()?;
    // The layer is looked up by its own name (ONNX names such as `/features/features.0/Conv`
    // included) and recorded as given; only the output file names use the safe form.
    let layer_file = safe_component(&args.layer);
    let mut stems = HashSet::new();
    let mut lines = Vec::new();
    for file in expand_inputs(&args.inputs)? {
        let x = load_input(&file, &model.card)?;
        let acts = lrp.forward(x.clone())?;
        let logits = to_vec(acts.get(lrp.logits_node())?);
        let target = match &args.target {
            Some(t) => model
                .card
                .class_index(t)
                .with_context(|| format!("--target '{t}'"))?,
            None => (0..logits.len())
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                .unwrap_or(0),
        };
        let (seed, explained) = lrp.start_relevance(&acts, &[target])?;
        let at_layer = lrp
            .propagate(&acts, lrp.logits_node(), seed, &[layer])?
            .remove(0);
        let ranking = rank_channels(&at_layer, args.top);
        let mut sets: Vec<Vec<usize>> = ranking.iter().map(|r| vec![r.channel]).collect();
        sets.extend(extra.iter().cloned());
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "input".into());
        let dir = child_path(&args.out, &unique_name(safe_component(&stem), &mut stems))?;
        // The image as the model saw it, inside --out: the report shows only files inside the
        // run folder, and the input itself usually lies elsewhere.
        let input_png = dir.join("input.png");
        let [_, c, h, w] = x.dims();
        let seen = input_image(&to_vec(&x), c, h as u32, w as u32, &model.card);
        write_png(&input_png, &seen).with_context(|| input_png.display().to_string())?;
        let mut drawn = Vec::new();
        if !sets.is_empty() {
            let result = conditional_relevance(&lrp, &x, target, layer, &sets, args.batch)?;
            let heat = result.heatmaps();
            let [k, h, w] = heat.dims();
            let values = to_vec(&heat);
            for (i, set) in sets.iter().enumerate().take(k) {
                let map = &values[i * h * w..(i + 1) * h * w];
                let name = set
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join("+");
                let npy = child_path(&dir, &format!("{layer_file}_{name}.npy"))?;
                let png = child_path(&dir, &format!("{layer_file}_{name}.png"))?;
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
        }
        let mut line = ConceptsRecord {
            schema_version: SCHEMA_VERSION,
            input: file.display().to_string(),
            input_png: Some(input_png),
            class: model.class_name(target),
            target,
            layer: args.layer.clone(),
            composite: args.composite.name().to_string(),
            resnet_skip: args.resnet_skip.to_string(),
            start: args.start.to_string(),
            explained: f64::from(explained[0]),
            concepts: ranking
                .iter()
                .map(|r| RankedConceptRecord {
                    channel: r.channel,
                    relevance: f64::from(r.relevance),
                    raw: f64::from(r.raw),
                })
                .collect(),
            heatmaps: drawn,
            graphs: None,
        };
        if !args.graph.is_empty() {
            let graphs = ranking
                .iter()
                .map(|r| {
                    attribution_graph(&lrp, &x, Some(target), &args.layer, r.channel, &args.graph)
                })
                .collect::<Result<Vec<_>, _>>()?;
            line.graphs = Some(serde_json::to_value(graphs)?);
        }
        if !args.quiet {
            outln!("{}", serde_json::to_string(&line)?)?;
        }
        lines.push(line);
    }
    // The same records as one file, so a report can be built from the output folder later.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create output folder", args.out.display()))?;
    let path = args.out.join("concepts.json");
    write_record(&path, &lines)?;
    Ok(())
}
