//! ONNX models (opsets 11–18) as whole graphs in the crate's IR.
//!
//! The file is decoded with hand-written `prost` messages ([`proto`]); every node is then either
//! folded into a constant (initialisers, `Constant`, and the shape arithmetic exporters emit:
//! `Shape`, `Gather`, `Slice`, `Concat`, `Cast`, `Unsqueeze`, `Squeeze`, `ConstantOfShape`,
//! evaluated for the fixed input size) or mapped to IR ops ([`convert`]). Transposes are tracked
//! as a layout of each value rather than executed, so tf2onnx's NHWC input followed by
//! `Transpose(0, 3, 1, 2)` becomes an NCHW graph input with no op at all, and a later transpose
//! back to NHWC before a flatten becomes one [`Op::Permute`](crate::graph::Op::Permute) where
//! the layout matters. Rank-2 values `[N, F]` are `[N, F, 1, 1]` in the IR. Node names are the
//! ONNX node names (made unique); parameter keys are initialiser names.
//!
//! Shape arithmetic is folded with batch size 1 (a dynamic batch stays dynamic in the IR, whose
//! ops all keep dimension 0 as the batch), so a folded `Reshape` target must keep its first
//! dimension as the batch.

pub mod convert;
mod elementwise;
mod fuse;
mod modern;
mod ops;
pub mod proto;
mod resize;
pub mod tensor;

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use super::ImportError;
use crate::graph::card::Layout;
use crate::graph::{Graph, ParamStore};

/// What the user's model card states explicitly about the input (it wins where the model
/// leaves a dimension open, and must agree where the model fixes it).
#[derive(Clone, Debug, Default)]
pub struct InputHint {
    /// `[H, W]` from the card.
    pub input_size: Option<[usize; 2]>,
    /// Channels from the card.
    pub channels: Option<usize>,
    /// Layout from the card.
    pub layout: Option<Layout>,
    /// Size used when neither the model nor the card fixes it.
    pub fallback_size: [usize; 2],
}

/// An imported ONNX model and what it says about its input and output.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The graph (NCHW input, node 0).
    pub graph: Graph,
    /// Its parameters, keyed by initialiser names.
    pub params: ParamStore,
    /// Input `[H, W]` the graph was built for.
    pub input_size: [usize; 2],
    /// Input channels.
    pub channels: usize,
    /// The original model's input layout (`Nhwc` when an NHWC input was turned into NCHW).
    pub layout: Layout,
    /// Width of the output (class count for a classifier).
    pub num_classes: usize,
    /// Opset of the default domain.
    pub opset: i64,
    /// Tool that wrote the file.
    pub producer: String,
}

/// ONNX operators the importer maps or folds.
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LayerNormalization",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Pow",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "Selu",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Upsample",
    "Where",
];

/// Imports the ONNX file at `path`.
pub fn import(path: &Path, hint: &InputHint) -> Result<OnnxModel, ImportError> {
    let bytes =
        std::fs::read(path).map_err(|e| ImportError::file(path, format!("cannot read: {e}")))?;
    import_bytes(&bytes, hint).map_err(|reason| ImportError::file(path, reason))
}

/// Imports an ONNX model from its bytes; errors are one-line messages.
pub fn import_bytes(bytes: &[u8], hint: &InputHint) -> Result<OnnxModel, String> {
    let model = decode(bytes)?;
    let graph = model.graph.as_ref().expect("decode checks the graph");
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1);
    if opset < 7 {
        return Err(format!(
            "ONNX opset {opset} is too old (relevance imports opsets 7–18, tested on 11–18)"
        ));
    }
    check_supported(graph)?;
    let mut out = convert::convert(graph, opset, hint)?;
    out.producer = model.producer_name.clone();
    Ok(out)
}

/// Decodes a model that has a graph.
fn decode(bytes: &[u8]) -> Result<proto::ModelProto, String> {
    let model =
        proto::ModelProto::decode(bytes).map_err(|e| format!("not a readable ONNX model: {e}"))?;
    if model.graph.is_none() {
        return Err("not a readable ONNX model: it has no graph".into());
    }
    Ok(model)
}

/// The operators of an ONNX file by name (`domain.Op` outside the standard domain), with how
/// often each occurs: all of them, and those the importer lacks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorCensus {
    /// Every operator the graph uses.
    pub operators: BTreeMap<String, usize>,
    /// The subset [`import`] refuses (not in [`SUPPORTED_OPS`], or from another domain).
    pub unsupported: BTreeMap<String, usize>,
}

/// Counts the operators of the ONNX file at `path` without importing it, so that a model the
/// importer refuses can still be described.
pub fn census(path: &Path) -> Result<OperatorCensus, ImportError> {
    let bytes =
        std::fs::read(path).map_err(|e| ImportError::file(path, format!("cannot read: {e}")))?;
    let model = decode(&bytes).map_err(|reason| ImportError::file(path, reason))?;
    Ok(census_of(
        model.graph.as_ref().expect("decode checks the graph"),
    ))
}

fn census_of(graph: &proto::GraphProto) -> OperatorCensus {
    let mut census = OperatorCensus::default();
    for node in &graph.node {
        let standard = node.domain.is_empty() || node.domain == "ai.onnx";
        let name = if standard {
            node.op_type.clone()
        } else {
            format!("{}.{}", node.domain, node.op_type)
        };
        if !standard || !SUPPORTED_OPS.contains(&node.op_type.as_str()) {
            *census.unsupported.entry(name.clone()).or_default() += 1;
        }
        *census.operators.entry(name).or_default() += 1;
    }
    census
}

/// Fails with one message that lists every operator the graph uses and the importer lacks,
/// with how often each occurs.
fn check_supported(graph: &proto::GraphProto) -> Result<(), String> {
    let missing = census_of(graph).unsupported;
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing
        .iter()
        .map(|(op, n)| format!("{op} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(format!(
        "the model uses ONNX operators relevance cannot import: {list} (supported: {})",
        SUPPORTED_OPS.join(", ")
    ))
}
