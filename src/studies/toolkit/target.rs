//! Which class a study's maps explain and its scores follow: one rule for every study (the
//! explained class itself is [`crate::methods::Target`] in `relevance explain`).

use serde::Serialize;

use crate::graph::Head;

/// The class each image is explained for, per model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetRule {
    /// The model's prediction on the unperturbed image (RISE; each model its own).
    Predicted,
    /// The image's true class (the same target for every model, so maps are comparable; the
    /// ResNet-LRP paper's curves).
    True,
}

impl TargetRule {
    /// The class of an image with true class `label` whose class scores are `scores`.
    pub fn class_of(self, label: usize, scores: &[f32]) -> usize {
        match self {
            TargetRule::True => label,
            TargetRule::Predicted => crate::metrics::scorer::argmax(scores),
        }
    }
}

/// Whether a model with output head `head` gives an image whose class probabilities are
/// `probs` the class `class`: its most probable class (a softmax or binary-logit head: one
/// class per image), or — a multi-label (`sigmoid`) head — any class with `p ≥ 0.5`, the
/// head's own rule ([`crate::graph::Head`]). Every study's `correct` and accuracy use it, so an
/// image of several true classes (one study row per image × true class) is correct for each
/// class the model gives it.
pub fn has_class(head: Head, probs: &[f32], class: usize) -> bool {
    if head.multi_label() {
        probs.get(class).is_some_and(|&p| p >= 0.5)
    } else {
        crate::metrics::scorer::argmax(probs) == class
    }
}

impl std::str::FromStr for TargetRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "predicted" | "pred" => Ok(TargetRule::Predicted),
            "true" | "label" => Ok(TargetRule::True),
            other => Err(format!("unknown target '{other}'; use predicted or true")),
        }
    }
}

impl TargetRule {
    /// The class each image of `chunk` is explained for by model `m`, given the model's
    /// predictions on the chunk (`(class, probabilities)` per image); an image whose class the
    /// model does not have is an error under `--target true`.
    pub fn classes_for(
        self,
        m: &super::StudyModel,
        chunk: &[&super::StudyImage],
        preds: &[(usize, Vec<f32>)],
    ) -> Result<Vec<usize>, super::super::StudyError> {
        match self {
            TargetRule::Predicted => Ok(preds.iter().map(|p| p.0).collect()),
            TargetRule::True => chunk
                .iter()
                .map(|img| {
                    super::model_label(img, &m.model.card).ok_or_else(|| {
                        super::super::StudyError::file(
                            &img.path,
                            format!(
                                "class '{}' is not a class of model {} (needed by --target true)",
                                img.class, m.label
                            ),
                        )
                    })
                })
                .collect(),
        }
    }

    /// [`Self::classes_for`] with the predictions from one forward pass of `batch` (the chunk's
    /// images as the model takes them).
    pub fn classes_for_batch(
        self,
        m: &super::StudyModel,
        chunk: &[&super::StudyImage],
        batch: &crate::tensor::T4,
    ) -> Result<Vec<usize>, super::super::StudyError> {
        let acts = crate::methods::pass::forward_all(&m.model, batch)?;
        let preds = super::predictions(&m.model, &acts, chunk.len())?;
        self.classes_for(m, chunk, &preds)
    }
}
