//! A runnable model: graph, parameters and card, loaded from a weights file.

use std::path::{Path, PathBuf};

use super::import::onnx::{self, InputHint};
use super::import::{Format, ImportError, NamedTensor, read_state_dict};
use super::{Graph, GraphError, ModelCard, Op, ParamStore, card, head, init::init_params, zoo};

/// A graph with its parameters and the card describing its inputs and classes.
#[derive(Clone, Debug)]
pub struct Model {
    /// The computation.
    pub graph: Graph,
    /// Its weights.
    pub params: ParamStore,
    /// Inputs, normalisation, classes.
    pub card: ModelCard,
    /// Where the weights came from (empty for freshly initialised models).
    pub source: PathBuf,
}

/// What the user says about a model besides the weights file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Built-in architecture (overrides the card's).
    pub arch: Option<String>,
    /// Explicit card file (otherwise one beside the weights is used, if any).
    pub card: Option<PathBuf>,
}

impl Model {
    /// Moves the parameters to `device` (e.g. [`crate::tensor::device`] after
    /// [`crate::device::use_device`] chose a GPU); the graph and card stay as they are.
    pub fn to_device(&mut self, device: &burn::prelude::Device) {
        for (_, param) in self.params.iter_mut() {
            param.data = param.data.clone().to_device(device);
        }
    }

    /// A built-in architecture with freshly drawn weights.
    pub fn init(arch: &str, card: ModelCard, seed: u64) -> Result<Model, GraphError> {
        let mut graph = zoo::build(arch, card.num_classes, card.channels)?;
        let mut params = init_params(&graph, seed)?;
        let mut card = ModelCard {
            arch: Some(arch.to_string()),
            ..card
        };
        let outputs = card.num_classes;
        head::attach(&mut graph, &mut params, &mut card, outputs).map_err(GraphError::Invalid)?;
        Ok(Model {
            graph,
            params,
            card,
            source: PathBuf::new(),
        })
    }

    /// Loads a model from `path` with the card beside it or given in `opts`, by extension:
    /// `.safetensors` and `torch.save` files (`.pth`, `.pt`, `.bin`, `.ckpt`) are state dicts
    /// for a built-in architecture (from `--arch` or the card); `.onnx` files are whole graphs.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model, ImportError> {
        if path.is_dir() {
            return Err(ImportError::file(path, "is a folder, not a file"));
        }
        if !path.is_file() {
            return Err(ImportError::file(path, "no such file"));
        }
        let format = Format::of(path)?;
        let card_path = opts
            .card
            .as_deref()
            .map(Path::to_path_buf)
            .or_else(|| ModelCard::beside(path));
        let mut card = match &card_path {
            Some(p) => ModelCard::load(p).map_err(|e| ImportError::file(p, e.to_string()))?,
            None => ModelCard::default(),
        };
        if format == Format::Onnx {
            if let Some(a) = &opts.arch {
                return Err(ImportError::file(
                    path,
                    format!("an ONNX file carries its own graph; --arch {a} does not apply"),
                ));
            }
            return Self::from_onnx(path, card, card_path.as_deref()).and_then(refuse_non_finite);
        }
        if let Some(a) = &opts.arch {
            card.arch = Some(a.clone());
        }
        let arch = card.arch.clone().ok_or_else(|| {
            ImportError::file(
                path,
                format!(
                    "which architecture? pass --arch (one of: {}) or a model card",
                    zoo::ARCHS.join(", ")
                ),
            )
        })?;
        let tensors = read_state_dict(path)?;
        Self::from_state_dict(path, &arch, card, tensors).and_then(refuse_non_finite)
    }

    /// Loads an ONNX model from memory as [`Model::load`] loads an ONNX file: with the card at
    /// `card` (if any) and refusing non-finite weights; `name` stands for the file in messages.
    pub fn load_onnx_bytes(
        bytes: &[u8],
        name: &Path,
        card: Option<&Path>,
    ) -> Result<Model, ImportError> {
        let loaded = match card {
            Some(p) => ModelCard::load(p).map_err(|e| ImportError::file(p, e.to_string()))?,
            None => ModelCard::default(),
        };
        Self::from_onnx_bytes(bytes, name, loaded, card).and_then(refuse_non_finite)
    }

    /// Imports an ONNX graph. The model's input shape fills the card's `input_size`,
    /// `channels` and `layout` (a card value that contradicts a fixed model dimension is an
    /// error; the card decides dimensions the model leaves open) and its output width
    /// `num_classes`.
    pub fn from_onnx(
        path: &Path,
        card: ModelCard,
        card_path: Option<&Path>,
    ) -> Result<Model, ImportError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ImportError::file(path, format!("cannot read: {e}")))?;
        Self::from_onnx_bytes(&bytes, path, card, card_path)
    }

    /// [`Model::from_onnx`] of an ONNX model held in memory (an export that never touched the
    /// disk); `name` stands for its file in messages and as [`Model::source`].
    pub fn from_onnx_bytes(
        bytes: &[u8],
        name: &Path,
        mut card: ModelCard,
        card_path: Option<&Path>,
    ) -> Result<Model, ImportError> {
        let path = name;
        let stated = card_path.map(card::stated_fields).unwrap_or_default();
        let says = |field: &str| stated.iter().any(|f| f == field);
        let hint = InputHint {
            input_size: says("input_size").then_some(card.input_size),
            channels: says("channels").then_some(card.channels),
            layout: says("layout").then_some(card.layout),
            fallback_size: card.input_size,
        };
        let imported =
            onnx::import_bytes(bytes, &hint).map_err(|reason| ImportError::file(path, reason))?;
        if imported.channels != 1 && imported.channels != 3 {
            return Err(ImportError::file(
                path,
                format!(
                    "the model takes {} input channels; relevance feeds images with 1 or 3",
                    imported.channels
                ),
            ));
        }
        if imported.num_classes == 0 {
            return Err(ImportError::file(path, "the model has 0 outputs"));
        }
        check_class_names(path, &card, imported.num_classes)?;
        card.arch = None;
        card.input_size = imported.input_size;
        card.channels = imported.channels;
        card.layout = imported.layout;
        card.num_classes = imported.num_classes;
        let (mut graph, mut params) = (imported.graph, imported.params);
        graph
            .check_params(&params)
            .map_err(|problem| ImportError::Mismatch {
                path: path.to_path_buf(),
                problem,
            })?;
        head::attach(&mut graph, &mut params, &mut card, imported.num_classes)
            .map_err(|e| ImportError::file(path, e))?;
        Ok(Model {
            graph,
            params,
            card,
            source: path.to_path_buf(),
        })
    }

    /// Builds `arch` and fills it from a state dict, inferring class count and input channels
    /// from the tensors when the card does not fix them.
    pub fn from_state_dict(
        path: &Path,
        arch: &str,
        mut card: ModelCard,
        tensors: Vec<NamedTensor>,
    ) -> Result<Model, ImportError> {
        let mismatch = |problem: GraphError| ImportError::Mismatch {
            path: path.to_path_buf(),
            problem,
        };
        let tensors: Vec<NamedTensor> = tensors
            .into_iter()
            .filter(|t| !t.key.ends_with("num_batches_tracked"))
            .map(|t| match t.key.strip_prefix("module.") {
                Some(k) => NamedTensor {
                    key: k.to_string(),
                    ..t
                },
                None => t,
            })
            .map(|t| match zoo::rename_legacy_key(&t.key) {
                Some(key) => NamedTensor { key, ..t },
                None => t,
            })
            .collect();
        // Probe the architecture once to learn which keys carry the class count and channels.
        let probe = zoo::build(arch, 1, 3).map_err(mismatch)?;
        let shape_of = |key: &str| {
            tensors
                .iter()
                .find(|t| t.key == key)
                .map(|t| t.shape.clone())
        };
        if let Some(Op::Linear(l)) = probe
            .nodes
            .iter()
            .rev()
            .map(|n| &n.op)
            .find(|op| matches!(op, Op::Linear(_)))
            && let Some(s) = shape_of(&l.weight)
        {
            card.num_classes = classifier_outputs(&l.weight, &s).map_err(mismatch)?;
        }
        if let Some(Op::Conv2d(c)) = probe
            .nodes
            .iter()
            .map(|n| &n.op)
            .find(|op| matches!(op, Op::Conv2d(_)))
            && let Some(s) = shape_of(&c.weight)
        {
            check_rank(&c.weight, &s, 4, "[out, in, kh, kw]").map_err(mismatch)?;
            if s[1] == 1 || s[1] == 3 {
                card.channels = s[1];
            }
        }
        check_class_names(path, &card, card.num_classes)?;
        if card.num_classes == 0 {
            return Err(ImportError::file(path, "the model has 0 classes"));
        }
        card.arch = Some(arch.to_string());
        let mut graph = zoo::build(arch, card.num_classes, card.channels).map_err(mismatch)?;
        let mut params = ParamStore::new();
        let unexpected: Vec<&str> = tensors
            .iter()
            .filter(|t| graph.spec(&t.key).is_none())
            .map(|t| t.key.as_str())
            .collect();
        if !unexpected.is_empty() {
            return Err(mismatch(GraphError::Invalid(format!(
                "{} key(s) that {arch} does not have, first '{}'",
                unexpected.len(),
                unexpected[0]
            ))));
        }
        for t in tensors {
            params
                .insert_values(t.key, t.values, t.shape)
                .map_err(mismatch)?;
        }
        graph.check_params(&params).map_err(mismatch)?;
        let outputs = card.num_classes;
        head::attach(&mut graph, &mut params, &mut card, outputs)
            .map_err(|e| ImportError::file(path, e))?;
        Ok(Model {
            graph,
            params,
            card,
            source: path.to_path_buf(),
        })
    }

    /// Class name of output `index`.
    pub fn class_name(&self, index: usize) -> String {
        self.card.class_name(index)
    }

    /// Numbers of parameter values: all of them (Keras' "total params") and those an optimiser
    /// trains (PyTorch's `requires_grad` ones: all but buffers such as BatchNorm running
    /// statistics). The fixed `[−1, 1]` of a binary-logit head ([`head`]) is not the model's
    /// and is not counted.
    pub fn parameter_counts(&self) -> ParameterCounts {
        let own = self
            .params
            .iter()
            .filter(|(key, _)| !key.starts_with(head::BINARY_HEAD_NODE));
        let mut counts = ParameterCounts::default();
        for (key, p) in own {
            let n: usize = p.shape.iter().product();
            counts.total += n;
            counts.tensors += 1;
            if self.graph.spec(key).is_none_or(|s| s.trainable) {
                counts.trainable += n;
            }
        }
        counts
    }
}

/// Parameter totals of a model (see [`Model::parameter_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParameterCounts {
    /// Values over all parameter tensors, buffers included.
    pub total: usize,
    /// Values an optimiser trains.
    pub trainable: usize,
    /// Parameter tensors.
    pub tensors: usize,
}

/// The class count a classifier weight `[classes, features]` stored under `key` gives; a
/// weight of another rank or with no rows is refused (a model must have at least one class).
fn classifier_outputs(key: &str, shape: &[usize]) -> Result<usize, GraphError> {
    check_rank(key, shape, 2, "[classes, features]")?;
    if shape[0] == 0 {
        return Err(GraphError::Invalid(format!(
            "parameter '{key}' has shape {shape:?}: a classifier needs at least one class"
        )));
    }
    Ok(shape[0])
}

/// Refuses a parameter `key` whose shape does not have `rank` dimensions (`layout` names them).
fn check_rank(key: &str, shape: &[usize], rank: usize, layout: &str) -> Result<(), GraphError> {
    if shape.len() != rank {
        return Err(GraphError::Invalid(format!(
            "parameter '{key}' has shape {shape:?}, the architecture expects rank {rank} {layout}"
        )));
    }
    Ok(())
}

/// Checks the card's class names against the output width the weights fix; the message names
/// the card field and both numbers.
fn check_class_names(path: &Path, card: &ModelCard, outputs: usize) -> Result<(), ImportError> {
    // One output is a binary logit, whose two classes the card may name (see `graph::head`).
    let binary_names = outputs == 1 && card.classes.len() == 2;
    if card.classes.is_empty() || card.classes.len() == outputs || binary_names {
        return Ok(());
    }
    Err(ImportError::file(
        path,
        format!(
            "model card field `classes`: {} class names, but the weights have {outputs} outputs",
            card.classes.len()
        ),
    ))
}

/// Refuses a model with a NaN or infinite parameter, naming it: every output it computes would
/// be NaN (`"prob": null` in the JSON) with no hint why. Checked once at load time, so a model
/// that loads has finite weights; outputs that overflow from finite weights are still possible.
fn refuse_non_finite(model: Model) -> Result<Model, ImportError> {
    let bad = model
        .params
        .iter()
        .find(|(_, p)| p.values().iter().any(|v| !v.is_finite()))
        .map(|(key, _)| key.clone());
    match bad {
        Some(key) => Err(ImportError::file(
            &model.source,
            format!("parameter '{key}' holds NaN or infinite values"),
        )),
        None => Ok(model),
    }
}
