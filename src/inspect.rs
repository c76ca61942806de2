//! What a user needs to know about a model before explaining it (`relevance inspect`): input and
//! output shapes, the layout and normalisation the card implies, operator and parameter counts,
//! the CAM layers, the LRP rule of every node under each composite, and the ONNX operators the
//! importer lacks.
//!
//! Everything is read from the same code the other commands run: the model loaders (with their
//! checks of hostile files), one forward pass for the shapes, [`cam::default_cam_layer`] (the
//! default `explain` uses) and [`LrpModel::new`] (the rules `explain` binds). Inspection lives
//! here, above `graph` and `methods`, because it needs both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::graph::card::{Layout, Normalization, ResizeMode};
use crate::graph::import::onnx;
use crate::graph::import::{Format, ImportError};
use crate::graph::{Graph, LoadOptions, Model, ModelCard, Op};
use crate::methods::MethodError;
use crate::methods::cam;
use crate::methods::lrp::model::{LrpModel, LrpOptions};
use crate::methods::lrp::{Composite, skip::SkipMode};
use crate::methods::pass::forward_all;
use crate::tensor::{from_vec, numel};

/// Seed of the weights drawn for a built-in architecture inspected without a weights file (the
/// weights change no shape, count or rule).
const FRESH_WEIGHTS_SEED: u64 = 0;

/// Why a model cannot be inspected; messages start with the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InspectError {
    /// The loaders refused the file or card.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The model loaded but its forward pass failed.
    #[error("{path}: {problem}")]
    Model {
        /// The weights file (or the architecture name).
        path: PathBuf,
        /// What failed.
        problem: MethodError,
    },
    /// Neither a weights file nor an architecture was given.
    #[error("inspect what? give a model file, or --arch for a built-in architecture")]
    NothingToInspect,
}

/// The whole inspection of one model.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Inspection {
    /// The weights file, or the architecture's name for a built-in one without weights.
    pub source: String,
    /// `onnx`, `safetensors`, `torch` or `built-in` (freshly initialised weights).
    pub format: String,
    /// The built-in architecture, if any.
    pub arch: Option<String>,
    /// For ONNX files: every operator of the file (before import) with its count.
    pub onnx_operators: BTreeMap<String, usize>,
    /// ONNX operators the importer lacks, with counts, all at once. When this is not empty the
    /// model cannot be imported (`predict` and `explain` refuse it) and `model` is `None`.
    pub unsupported: BTreeMap<String, usize>,
    /// The imported model, when it can be imported.
    pub model: Option<ModelSummary>,
}

/// The imported graph as the explaining commands see it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ModelSummary {
    /// What the model reads.
    pub input: InputSummary,
    /// What it outputs.
    pub output: OutputSummary,
    /// Nodes of the graph by op kind ([`Op::kind`]), input node included.
    pub operators: BTreeMap<String, usize>,
    /// Parameter values and tensors (BatchNorm running statistics and constants included: the
    /// sum over the weights the file holds).
    pub parameters: ParameterSummary,
    /// The layers CAM methods can read.
    pub cam: CamSummary,
    /// The LRP rule of each node per composite.
    pub lrp: LrpSummary,
}

/// The input the card and the model imply.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct InputSummary {
    /// `[1, C, H, W]`: the tensor the graph reads (importers convert NHWC models to NCHW).
    pub shape: [usize; 4],
    /// The original model's layout.
    pub layout: Layout,
    /// The original model's input shape in that layout.
    pub original_shape: [usize; 4],
    /// Pixel normalisation.
    pub normalization: Normalization,
    /// Per channel `(scale, shift)`: input = pixel·scale + shift, pixels in `0..=255`.
    pub pixel_affine: Vec<(f32, f32)>,
    /// How images of other sizes are brought to `H × W`.
    pub resize: ResizeMode,
}

/// The model's output.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct OutputSummary {
    /// The node producing the logits (a trailing softmax is stripped, as the methods do).
    pub logits_node: String,
    /// `[1, K]`.
    pub shape: [usize; 2],
    /// Whether a softmax follows the logits in the graph.
    pub softmax: bool,
    /// Class names from the card (empty: classes are numbered).
    pub class_names: Vec<String>,
}

/// Parameter totals.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ParameterSummary {
    /// Number of values over all parameter tensors.
    pub count: usize,
    /// Number of parameter tensors.
    pub tensors: usize,
    /// Values the optimiser would train (all but buffers such as BatchNorm running
    /// statistics).
    pub trainable: usize,
}

/// The CAM layers.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CamSummary {
    /// The layer `explain` reads when no `--layer` is given ([`cam::default_cam_layer`]);
    /// `None` if the model has no spatial layer before its classifier.
    pub default_layer: Option<String>,
    /// Every node with a spatial output (`H·W > 1`), in graph order, with its output shape:
    /// the names `--layer` accepts.
    pub candidates: Vec<LayerShape>,
}

/// A node and the shape of its output for the inspected input size.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LayerShape {
    /// Node name.
    pub name: String,
    /// Op kind.
    pub op: String,
    /// `[1, C, H, W]`.
    pub shape: [usize; 4],
}

/// Rules of every composite, on the graph LRP runs on (BatchNorm folded into the layers
/// before it, so folded BatchNorm nodes do not appear).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LrpSummary {
    /// Treatment of residual sums (the default of `explain`).
    pub skip: String,
    /// Composite names, in column order.
    pub composites: Vec<String>,
    /// One row per node of the folded graph, empty if `error` is set.
    pub nodes: Vec<NodeRules>,
    /// Why LRP cannot be prepared for this model, if it cannot.
    pub error: Option<String>,
}

/// The rules one node gets.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct NodeRules {
    /// Node name in the folded graph.
    pub name: String,
    /// Op kind.
    pub op: String,
    /// Rule name per composite name (`zplus`, `epsilon(0.000001)`, `pass`, `gradient`, …).
    pub rules: BTreeMap<String, String>,
}

/// Inspects the model file `path` (or, without one, the built-in architecture of `opts`
/// with freshly drawn weights), loading it as `predict` does. An ONNX file with operators the
/// importer lacks is not an error: the inspection lists them and has no `model`.
pub(crate) fn inspect_file(
    path: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Inspection, InspectError> {
    let Some(path) = path else {
        return inspect_builtin(opts);
    };
    let format = Format::of(path)?;
    let mut onnx_operators = BTreeMap::new();
    if format == Format::Onnx && path.is_file() {
        let census = onnx::census(path)?;
        if !census.unsupported.is_empty() {
            return Ok(Inspection {
                source: path.display().to_string(),
                format: format_name(format).into(),
                arch: None,
                onnx_operators: census.operators,
                unsupported: census.unsupported,
                model: None,
            });
        }
        onnx_operators = census.operators;
    }
    let model = Model::load(path, opts)?;
    let summary = summarise(&model).map_err(|problem| InspectError::Model {
        path: path.to_path_buf(),
        problem,
    })?;
    Ok(Inspection {
        source: path.display().to_string(),
        format: format_name(format).into(),
        arch: model.card.arch.clone(),
        onnx_operators,
        unsupported: BTreeMap::new(),
        model: Some(summary),
    })
}

/// A built-in architecture with fresh weights, its card from `opts.card` if given.
fn inspect_builtin(opts: &LoadOptions) -> Result<Inspection, InspectError> {
    let card = match &opts.card {
        Some(p) => ModelCard::load(p).map_err(|e| ImportError::file(p, e.to_string()))?,
        None => ModelCard::default(),
    };
    let arch = opts
        .arch
        .clone()
        .or_else(|| card.arch.clone())
        .ok_or(InspectError::NothingToInspect)?;
    let source = PathBuf::from(&arch);
    let as_error = |problem: MethodError| InspectError::Model {
        path: source.clone(),
        problem,
    };
    let model = Model::init(&arch, card, FRESH_WEIGHTS_SEED)
        .map_err(|e| as_error(MethodError::Graph(e)))?;
    let summary = summarise(&model).map_err(as_error)?;
    Ok(Inspection {
        source: source.display().to_string(),
        format: "built-in".into(),
        arch: Some(arch),
        onnx_operators: BTreeMap::new(),
        unsupported: BTreeMap::new(),
        model: Some(summary),
    })
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Onnx => "onnx",
        Format::Safetensors => "safetensors",
        Format::Torch => "torch",
    }
}

/// Inspects a loaded model: one forward pass on a zero input of the card's size gives every
/// node's output shape.
pub(crate) fn summarise(model: &Model) -> Result<ModelSummary, MethodError> {
    let card = &model.card;
    let [h, w] = card.input_size;
    let shape = [1, card.channels, h, w];
    let acts = forward_all(model, &from_vec(vec![0.0; numel(&shape)], shape))?;
    let graph = &model.graph;
    let logits = graph.logits();
    let [_, classes, _, _] = acts.get(logits)?.dims();
    let candidates = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(id, node)| *id != graph.input() && !matches!(node.op, Op::Constant(_)))
        .filter_map(|(id, node)| {
            let dims = acts.get(id).ok()?.dims();
            (dims[2] * dims[3] > 1).then(|| LayerShape {
                name: node.name.clone(),
                op: node.op.kind().into(),
                shape: dims,
            })
        })
        .collect();
    Ok(ModelSummary {
        input: InputSummary {
            shape,
            layout: card.layout,
            original_shape: match card.layout {
                Layout::Nchw => shape,
                Layout::Nhwc => [1, h, w, card.channels],
            },
            normalization: card.normalization.clone(),
            pixel_affine: card.normalization.affine(card.channels),
            resize: card.resize.clone(),
        },
        output: OutputSummary {
            logits_node: graph.nodes[logits].name.clone(),
            shape: [1, classes],
            softmax: logits != graph.output,
            class_names: card.classes.clone(),
        },
        operators: operator_counts(graph),
        parameters: {
            let counts = model.parameter_counts();
            ParameterSummary {
                count: counts.total,
                tensors: counts.tensors,
                trainable: counts.trainable,
            }
        },
        cam: CamSummary {
            default_layer: cam::default_cam_layer(graph, &acts)
                .map(|id| graph.nodes[id].name.clone()),
            candidates,
        },
        lrp: lrp_rules(model),
    })
}

/// Nodes by op kind.
pub(crate) fn operator_counts(graph: &Graph) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for node in &graph.nodes {
        *counts.entry(node.op.kind().to_string()).or_default() += 1;
    }
    counts
}

/// The rules `explain` binds under each composite, with its default options.
fn lrp_rules(model: &Model) -> LrpSummary {
    let options = LrpOptions::default();
    let mut summary = LrpSummary {
        skip: SkipMode::default().to_string(),
        composites: Composite::presets()
            .iter()
            .map(|c| c.name().into())
            .collect(),
        nodes: Vec::new(),
        error: None,
    };
    for composite in Composite::presets() {
        let prepared = match LrpModel::new(model, composite.clone(), &options) {
            Ok(p) => p,
            Err(e) => {
                summary.nodes.clear();
                summary.error = Some(e.to_string());
                return summary;
            }
        };
        if summary.nodes.is_empty() {
            summary.nodes = prepared
                .canon
                .graph
                .nodes
                .iter()
                .map(|n| NodeRules {
                    name: n.name.clone(),
                    op: n.op.kind().into(),
                    rules: BTreeMap::new(),
                })
                .collect();
        }
        for (row, (_, rule)) in summary.nodes.iter_mut().zip(prepared.assignment) {
            row.rules.insert(composite.name().into(), rule);
        }
    }
    summary
}
