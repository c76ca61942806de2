//! The report's "Expert review" section, from the `review.json` that `relevance review
//! summary` writes: the share of explanations experts judged correct per model × method ×
//! class, the agreement between raters and the most common tags with example items.

use super::html::{Block, Picture, Section, Tone};
use crate::records::ReviewSummary;

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0} %"))
}

fn coefficient(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.3}"))
}

/// The section for one summary; `label` names its file relative to the run folder;
/// `pictures[t]` are the example overlays of tag `t` (may be empty).
pub fn review_section(
    label: &str,
    summary: &ReviewSummary,
    pictures: Vec<Vec<Picture>>,
    index: usize,
) -> Section {
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
    if let Some(grid) = tag_grid(summary, pictures) {
        s.push(grid);
    }
    s.push(Block::List(summary.conventions.clone()));
    s
}

/// The file name of a recorded weights path (the table above gives it whole).
fn short_name(model: &str) -> String {
    std::path::Path::new(model)
        .file_name()
        .map_or(model.into(), |n| n.to_string_lossy().into_owned())
}

/// The example overlays of each tag, one row per tag that has any.
fn tag_grid(summary: &ReviewSummary, pictures: Vec<Vec<Picture>>) -> Option<Block> {
    let columns = pictures.iter().map(Vec::len).max().filter(|&n| n > 0)?;
    let rows = summary
        .tags
        .iter()
        .zip(pictures)
        .filter(|(_, pics)| !pics.is_empty())
        .map(|(tag, pics)| {
            let mut cells: Vec<Option<Picture>> = pics.into_iter().map(Some).collect();
            cells.resize_with(columns, || None);
            (
                format!(
                    "{} · {}: {} ({})",
                    short_name(&tag.model),
                    tag.method,
                    tag.tag,
                    tag.count
                ),
                cells,
            )
        })
        .collect();
    Some(Block::Grid {
        columns: (1..=columns).map(|i| format!("example {i}")).collect(),
        rows,
        caption: "Explanations raters tagged, as they saw them (the overlays of the examples \
                  in the table above, copied by `relevance review summary --runs`)."
            .into(),
        cell: 140,
    })
}
