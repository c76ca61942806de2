//! `relevance inspect`: the library's [`Inspection`] as text or JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::graph::LoadOptions;
use crate::graph::card::{Layout, Normalization, ResizeMode};
use crate::inspect::{Inspection, LrpSummary, ModelSummary, inspect_file};

/// Arguments of `relevance inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Weights: .safetensors, .pth/.pt (with --arch or a card) or .onnx. Without it, --arch
    /// names a built-in architecture to inspect with freshly drawn weights.
    pub model: Option<PathBuf>,
    /// Built-in architecture (of a state dict, or inspected on its own).
    #[arg(long)]
    pub arch: Option<String>,
    /// Model card (JSON/TOML); by default one beside the weights is used.
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Print the inspection as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command. An ONNX model with operators the importer lacks is described (with the
/// list of them) and exits 0; `predict` and `explain` refuse it.
pub fn run(args: InspectArgs) -> Result<()> {
    let inspection = inspect_file(
        args.model.as_deref(),
        &LoadOptions {
            arch: args.arch,
            card: args.card,
        },
    )?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&inspection)?)?;
    } else {
        outln!("{}", text(&inspection).trim_end())?;
    }
    Ok(())
}

/// Width of the label column.
const LABEL: usize = 13;

/// The readable layout: one labelled line per fact, then the layer and rule tables.
fn text(inspection: &Inspection) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{label:<LABEL$}{value}\n"));
    };
    match (inspection.format.as_str(), &inspection.arch) {
        ("built-in", _) => line(
            "model",
            format!(
                "{} (built-in architecture, freshly drawn weights)",
                inspection.source
            ),
        ),
        (format, Some(arch)) => line(
            "model",
            format!("{} ({format}, architecture {arch})", inspection.source),
        ),
        (format, None) => line("model", format!("{} ({format})", inspection.source)),
    }
    if !inspection.unsupported.is_empty() {
        line(
            "unsupported",
            format!(
                "{} — relevance cannot import these ONNX operators; predict and explain refuse \
                 this model",
                counts(&inspection.unsupported)
            ),
        );
    }
    if !inspection.onnx_operators.is_empty() {
        line("ONNX ops", counts(&inspection.onnx_operators));
    }
    if let Some(model) = &inspection.model {
        model_text(model, &mut line);
        out.push_str(&cam_text(model));
        out.push_str(&lrp_text(&model.lrp));
    }
    out
}

/// Input, output, operators and parameters.
fn model_text(model: &ModelSummary, line: &mut impl FnMut(&str, String)) {
    let input = &model.input;
    let layout = match input.layout {
        Layout::Nchw => "NCHW",
        Layout::Nhwc => "NHWC (converted to NCHW on import)",
    };
    line(
        "input",
        format!(
            "{:?} (N, C, H, W); the original model takes {layout} {:?}",
            input.shape, input.original_shape
        ),
    );
    line("normalise", normalization_text(&input.normalization));
    line(
        "resize",
        match input.resize {
            ResizeMode::Stretch => {
                format!("stretch to {}×{}", input.shape[2], input.shape[3])
            }
            ResizeMode::ShorterSideCrop { size } => format!(
                "shorter side to {size}, then centre crop {}×{}",
                input.shape[2], input.shape[3]
            ),
        },
    );
    let output = &model.output;
    let names = if output.class_names.is_empty() {
        "numbered (the card names none)".to_string()
    } else {
        output.class_names.join(", ")
    };
    line(
        "output",
        format!(
            "logits of '{}' {:?}{}; classes: {names}",
            output.logits_node,
            output.shape,
            if output.softmax {
                " (a softmax follows)"
            } else {
                ""
            }
        ),
    );
    let params = &model.parameters;
    let untrained = if params.trainable == params.count {
        String::new()
    } else {
        format!(
            " ({} trainable; the rest are buffers such as BatchNorm running statistics, and \
             constants)",
            params.trainable
        )
    };
    line(
        "parameters",
        format!(
            "{} values in {} tensors{untrained}",
            params.count, params.tensors
        ),
    );
    line("operators", counts(&model.operators));
}

fn normalization_text(norm: &Normalization) -> String {
    match norm {
        Normalization::Imagenet => {
            "imagenet: (v/255 − mean) / std, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]"
                .into()
        }
        Normalization::Unit => "unit: v/255".into(),
        Normalization::Raw => "raw: v (0–255, unchanged)".into(),
        Normalization::MeanStd { mean, std } => {
            format!("mean-std: (v/255 − mean) / std, mean {mean:?}, std {std:?}")
        }
    }
}

/// The default CAM layer and the other names `--layer` accepts, with their output shapes.
fn cam_text(model: &ModelSummary) -> String {
    let cam = &model.cam;
    let mut out = match &cam.default_layer {
        Some(name) => format!(
            "{:<LABEL$}{name} — what explain's CAM methods read without --layer\n",
            "CAM layer"
        ),
        None => format!(
            "{:<LABEL$}none: no spatial layer before the classifier\n",
            "CAM layer"
        ),
    };
    if cam.candidates.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "{:<LABEL$}layers usable with --layer (output shape):\n",
        ""
    ));
    let width = cam
        .candidates
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let op_width = cam.candidates.iter().map(|c| c.op.len()).max().unwrap_or(0);
    for c in &cam.candidates {
        let mark = if Some(&c.name) == cam.default_layer.as_ref() {
            "  (default)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<LABEL$}  {:<width$}  {:<op_width$}  {:?}{mark}\n",
            "", c.name, c.op, c.shape
        ));
    }
    out
}

/// One row per node of the folded graph, one column per composite.
fn lrp_text(lrp: &LrpSummary) -> String {
    if let Some(e) = &lrp.error {
        return format!("{:<LABEL$}unavailable: {e}\n", "LRP rules");
    }
    let mut out = format!(
        "{:<LABEL$}per composite, on the graph with BatchNorm folded; residual sums: skip mode {}\n",
        "LRP rules", lrp.skip
    );
    let name_width = lrp.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let op_width = lrp.nodes.iter().map(|n| n.op.len()).max().unwrap_or(0);
    let col = lrp.composites.iter().map(String::len).max().unwrap_or(0);
    out.push_str(&format!(
        "{:<LABEL$}  {:<name_width$}  {:<op_width$}",
        "", "node", "op"
    ));
    for c in &lrp.composites {
        out.push_str(&format!("  {c:<col$}"));
    }
    end_row(&mut out);
    for node in &lrp.nodes {
        out.push_str(&format!(
            "{:<LABEL$}  {:<name_width$}  {:<op_width$}",
            "", node.name, node.op
        ));
        for c in &lrp.composites {
            let rule = node.rules.get(c).map(String::as_str).unwrap_or("—");
            out.push_str(&format!("  {rule:<col$}"));
        }
        end_row(&mut out);
    }
    out
}

/// Ends a table row without the padding of its last column.
fn end_row(out: &mut String) {
    out.truncate(out.trim_end().len());
    out.push('\n');
}

/// `name ×count, …` in name order.
fn counts(map: &BTreeMap<String, usize>) -> String {
    map.iter()
        .map(|(op, n)| format!("{op} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
