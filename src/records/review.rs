//! `review.json`: what `relevance review summary` found in a review database — the thesis's
//! table of correct explanations per model × method × class, the agreement between raters and
//! the most common tags.

use serde::{Deserialize, Serialize};

use super::is_unversioned;

/// `review.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewSummary {
    /// Record layout ([`super::SCHEMA_VERSION`] when written now).
    #[serde(skip_serializing_if = "is_unversioned")]
    pub schema_version: u32,
    /// The database summarised, as given.
    pub db: String,
    /// Rater names, sorted.
    pub raters: Vec<String>,
    /// Items with at least one answer.
    pub items: usize,
    /// Answers counted (the latest of each rater per item).
    pub answers: usize,
    /// How the numbers are counted, in words.
    pub conventions: Vec<String>,
    /// One row per model × method × class.
    pub rows: Vec<ReviewRow>,
    /// Agreement over all items, then per model × method.
    pub agreement: Vec<AgreementRecord>,
    /// The most common tags per model × method.
    pub tags: Vec<TagRecord>,
    /// `relevance` version that wrote it.
    pub version: String,
}

/// Counts of one model × method × class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewRow {
    /// Weights file.
    pub model: String,
    /// Method.
    pub method: String,
    /// Class explained.
    pub class: String,
    /// Answers.
    pub n: usize,
    /// `correct` answers.
    pub correct: usize,
    /// `partly` answers.
    pub partly: usize,
    /// `wrong` answers.
    pub wrong: usize,
    /// `unsure` answers.
    pub unsure: usize,
    /// `correct / n` in percent.
    pub pct_correct: Option<f64>,
    /// Wilson 95 % interval of the share correct, lower end, in percent.
    pub wilson_low: Option<f64>,
    /// Upper end, in percent.
    pub wilson_high: Option<f64>,
}

/// Agreement between raters over a set of items.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgreementRecord {
    /// `all`, or the model.
    pub model: String,
    /// `all`, or the method.
    pub method: String,
    /// Raters with answers in scope.
    pub raters: usize,
    /// Items rated by at least two raters.
    pub items: usize,
    /// Cohen's κ, when exactly two raters answered (over the items both rated).
    pub cohen_kappa: Option<f64>,
    /// Fleiss' κ over the items every rater in scope answered.
    pub fleiss_kappa: Option<f64>,
    /// Krippendorff's α (nominal) over all items with two answers or more.
    pub krippendorff_alpha: Option<f64>,
}

/// A tag and how often raters gave it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagRecord {
    /// Weights file.
    pub model: String,
    /// Method.
    pub method: String,
    /// The tag (trimmed, lower case).
    pub tag: String,
    /// Answers carrying it.
    pub count: usize,
    /// A few items carrying it: `<input> (<class>)`.
    pub examples: Vec<String>,
    /// The ids of those items, in the same order.
    pub example_items: Vec<String>,
    /// Their overlays copied beside the record (`examples/<id>.png`), when the summary was
    /// given the run folders; in the order of `example_items`, those found only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pictures: Vec<String>,
}
