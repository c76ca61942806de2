//! Which class a study's maps explain and its scores follow: one rule for every study (the
//! explained class itself is [`crate::methods::Target`] in `relevance explain`).

use serde::Serialize;

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
