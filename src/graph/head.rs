//! What a model's outputs mean: the output head. A classifier's last layer gives one score per
//! class; the head says how scores become probabilities and which classes an image has.
//!
//! - `softmax` (the default): one class per image, `p_k = exp z_k / Σ_j exp z_j`.
//! - `sigmoid` (multi-label): every class independently, `p_k = σ(z_k) = 1 / (1 + e^{−z_k})`;
//!   an image has every class with `p_k ≥ 0.5`.
//! - `binary-logit`: one output `z` for a two-class problem, `p(positive) = σ(z)`. The model is
//!   presented as two outputs `[−z, z]` (negative class first), so that every method, target and
//!   study treats it as a two-class model: explaining the negative class explains `−z`, the
//!   logit of `1 − σ(z)` (`σ(−z) = 1 − σ(z)`), and the prediction is the positive class
//!   exactly when `z > 0`. Softmax over one output would be the constant 1.

use serde::{Deserialize, Serialize};

use super::{Graph, GraphError, Linear, ModelCard, Node, NodeId, Op, ParamSpec, ParamStore};

/// How a model's output scores become class probabilities (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// One class per image: softmax over the outputs.
    #[default]
    Softmax,
    /// Multi-label: an independent sigmoid per output.
    Sigmoid,
    /// One logit for two classes, presented as the two outputs `[−z, z]`.
    BinaryLogit,
}

/// Name of the node that turns a binary logit `z` into `[−z, z]`.
pub const BINARY_HEAD_NODE: &str = "relevance.binary_logit";

impl Head {
    /// Names a model card accepts.
    pub const NAMES: &'static [&'static str] = &["softmax", "sigmoid", "binary-logit"];

    /// The head of a model whose graph is `graph` with `outputs` scores: the card's, where it
    /// states one (`sigmoid` on one output is a binary logit), otherwise read off the graph —
    /// a trailing sigmoid means per-class probabilities, a single output a binary logit.
    pub fn resolve(stated: Option<Head>, graph: &Graph, outputs: usize) -> Result<Head, String> {
        let ends_in_sigmoid = matches!(graph.nodes[graph.output].op, Op::Sigmoid);
        match (stated, outputs) {
            (Some(Head::BinaryLogit), n) if n != 1 => Err(format!(
                "model card field `head`: binary-logit needs a model with one output, this one has {n}"
            )),
            (Some(Head::Softmax), 1) => Err(
                "model card field `head`: softmax over a single output is always 1; \
                 use binary-logit (or leave `head` out)"
                    .into(),
            ),
            (Some(Head::Sigmoid) | Some(Head::BinaryLogit), 1) | (None, 1) => Ok(Head::BinaryLogit),
            (Some(head), _) => Ok(head),
            (None, _) if ends_in_sigmoid => Ok(Head::Sigmoid),
            (None, _) => Ok(Head::Softmax),
        }
    }

    /// Class probabilities of one row of output scores (logits; for a binary logit the
    /// presented pair `[−z, z]`, whose sigmoids are `[1 − σ(z), σ(z)]`). Softmax subtracts the
    /// maximum and sums in f64, so large logits neither overflow nor lose the small classes.
    pub fn probabilities(self, scores: &[f32]) -> Vec<f32> {
        match self {
            Head::Softmax => {
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = scores.iter().map(|&z| f64::from(z - max).exp()).sum();
                scores
                    .iter()
                    .map(|&z| (f64::from(z - max).exp() / sum) as f32)
                    .collect()
            }
            Head::Sigmoid | Head::BinaryLogit => scores.iter().map(|&z| sigmoid(z)).collect(),
        }
    }

    /// [`Head::probabilities`] of every row of a row-major `[rows, classes]` matrix.
    pub fn probabilities_rows(self, scores: &[f32], classes: usize) -> Vec<f32> {
        scores
            .chunks(classes.max(1))
            .flat_map(|row| self.probabilities(row))
            .collect()
    }

    /// Whether an image can have several classes at once (its labels are every class with
    /// probability ≥ 0.5).
    pub fn multi_label(self) -> bool {
        self == Head::Sigmoid
    }
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Head::Softmax => "softmax",
            Head::Sigmoid => "sigmoid",
            Head::BinaryLogit => "binary-logit",
        })
    }
}

/// `σ(z) = 1 / (1 + e^{−z})`, computed from `e^{−|z|}` so it neither overflows nor loses
/// precision for large `|z|`.
pub fn sigmoid(z: f32) -> f32 {
    let e = (-z.abs()).exp();
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// Fits a loaded model to its head: resolves the head (stored in the card), and for a binary
/// logit appends the node that presents `z` as `[−z, z]` and names the two classes. `outputs`
/// is the width of the model's logits.
pub fn attach(
    graph: &mut Graph,
    params: &mut ParamStore,
    card: &mut ModelCard,
    outputs: usize,
) -> Result<(), String> {
    let head = Head::resolve(card.head, graph, outputs)?;
    card.head = Some(head);
    if head != Head::BinaryLogit {
        return Ok(());
    }
    card.classes = binary_class_names(&card.classes)?;
    card.num_classes = 2;
    append_negation_pair(graph, params).map_err(|e| e.to_string())
}

/// The names of `[negative, positive]`: as given when the card names both, `not <positive>`
/// for the negative one when it names only the positive class, none (numbers) when it names
/// none.
fn binary_class_names(names: &[String]) -> Result<Vec<String>, String> {
    match names {
        [] => Ok(Vec::new()),
        [positive] => Ok(vec![format!("not {positive}"), positive.clone()]),
        [negative, positive] => Ok(vec![negative.clone(), positive.clone()]),
        more => Err(format!(
            "model card field `classes`: a binary-logit model has two classes (negative, positive), \
             the card names {}",
            more.len()
        )),
    }
}

/// Appends `Linear(1 → 2)` with weights `[−1, 1]` after the logits and makes it the output; a
/// trailing sigmoid the model applied to `z` is bypassed, since the head now gives the
/// probabilities.
fn append_negation_pair(graph: &mut Graph, params: &mut ParamStore) -> Result<(), GraphError> {
    let logits: NodeId = match graph.nodes[graph.output].op {
        Op::Sigmoid => graph.nodes[graph.output].inputs[0],
        _ => graph.logits(),
    };
    let weight = format!("{BINARY_HEAD_NODE}.weight");
    params.insert_values(weight.clone(), vec![-1.0, 1.0], vec![2, 1])?;
    graph.param_specs.push(ParamSpec {
        key: weight.clone(),
        shape: vec![2, 1],
        init: super::Init::Zeros,
        trainable: false,
    });
    graph.nodes.push(Node {
        name: BINARY_HEAD_NODE.to_string(),
        op: Op::Linear(Linear { weight, bias: None }),
        inputs: vec![logits],
    });
    graph.output = graph.nodes.len() - 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_and_symmetric() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-7);
        assert!((sigmoid(-3.0) + sigmoid(3.0) - 1.0).abs() < 1e-7);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(sigmoid(-200.0) >= 0.0 && sigmoid(-200.0) < 1e-30);
    }

    #[test]
    fn probabilities_follow_the_head() {
        let z = [1.0f32, 2.0, 3.0];
        let p = Head::Softmax.probabilities(&z);
        let denom: f32 = z.iter().map(|v| v.exp()).sum();
        for (pi, zi) in p.iter().zip(z) {
            assert!((pi - zi.exp() / denom).abs() < 1e-6);
        }
        let q = Head::Sigmoid.probabilities(&z);
        assert!((q[2] - 1.0 / (1.0 + (-3.0f32).exp())).abs() < 1e-7);
        // The presented pair [−z, z] gives [1 − σ(z), σ(z)].
        let pair = Head::BinaryLogit.probabilities(&[-0.7, 0.7]);
        assert!((pair[0] + pair[1] - 1.0).abs() < 1e-7);
        assert!((pair[1] - sigmoid(0.7)).abs() < 1e-7);
    }

    #[test]
    fn binary_names() {
        assert_eq!(
            binary_class_names(&["tumour".into()]).unwrap(),
            vec!["not tumour".to_string(), "tumour".to_string()]
        );
        assert!(binary_class_names(&["a".into(), "b".into(), "c".into()]).is_err());
    }
}
