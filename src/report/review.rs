//! The report's "Expert review" section, from the `review.json` that `relevance review
//! summary` writes: the share of explanations experts judged correct per model × method ×
//! class, the agreement between raters and the most common tags with example items.

use super::html::{Block, Section, Tone};
use crate::records::ReviewSummary;

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0} %"))
}

fn coefficient(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.3}"))
}

/// The section for one summary; `label` names its file relative to the run folder.
pub fn review_section(label: &str, summary: &ReviewSummary, index: usize) -> Section {
    let mut s = Section::new(&format!("review-{index}"), "Expert review");
    s.push(Block::Callout {
        tone: Tone::Info,
        title: "What experts said".into(),
        text: format!(
            "{} raters gave {} answers on {} explanations ({}).",
            summary.raters.len(),
            summary.answers,
            summary.items,
            label
        ),
    });
    s.push(Block::Table {
        caption: "Explanations judged correct (Wilson 95 % interval)".into(),
        headers: [
            "model",
            "method",
            "class",
            "n",
            "correct",
            "partly",
            "wrong",
            "unsure",
            "% correct",
            "95 % interval",
        ]
        .map(String::from)
        .to_vec(),
        rows: summary
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.model.clone(),
                    r.method.clone(),
                    r.class.clone(),
                    r.n.to_string(),
                    r.correct.to_string(),
                    r.partly.to_string(),
                    r.wrong.to_string(),
                    r.unsure.to_string(),
                    pct(r.pct_correct),
                    format!("{} – {}", pct(r.wilson_low), pct(r.wilson_high)),
                ]
            })
            .collect(),
    });
    s.push(Block::Table {
        caption: "Agreement between raters".into(),
        headers: [
            "model",
            "method",
            "raters",
            "items",
            "Cohen's κ",
            "Fleiss' κ",
            "Krippendorff's α",
        ]
        .map(String::from)
        .to_vec(),
        rows: summary
            .agreement
            .iter()
            .map(|a| {
                vec![
                    a.model.clone(),
                    a.method.clone(),
                    a.raters.to_string(),
                    a.items.to_string(),
                    coefficient(a.cohen_kappa),
                    coefficient(a.fleiss_kappa),
                    coefficient(a.krippendorff_alpha),
                ]
            })
            .collect(),
    });
    if !summary.tags.is_empty() {
        s.push(Block::Table {
            caption: "Most common tags, with example items".into(),
            headers: ["model", "method", "tag", "answers", "examples"]
                .map(String::from)
                .to_vec(),
            rows: summary
                .tags
                .iter()
                .map(|t| {
                    vec![
                        t.model.clone(),
                        t.method.clone(),
                        t.tag.clone(),
                        t.count.to_string(),
                        t.examples.join("; "),
                    ]
                })
                .collect(),
        });
    }
    s.push(Block::List(summary.conventions.clone()));
    s
}
