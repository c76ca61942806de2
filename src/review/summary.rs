//! `relevance review summary`: the answers of a review database as the thesis's table (per
//! model × method × class: counts and % correct with a Wilson 95 % interval), the agreement
//! between raters (Cohen's κ, Fleiss' κ, Krippendorff's α) and the most common tags; written
//! as `review.json` (the record the report reads), `review.csv`, `agreement.csv` and
//! `tags.csv`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::items::{Catalogue, Pictures, discover};
use super::stats::{Z95, cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal, wilson};
use super::store::{AnswerRow, Store, csv_cell};
use super::{ANSWERS, ReviewError};
use crate::records::{
    AgreementRecord, ReviewRow, ReviewSummary, SCHEMA_VERSION, TagRecord, write_record,
};

/// Tags listed per model × method.
const TOP_TAGS: usize = 5;
/// Example items listed per tag.
const TAG_EXAMPLES: usize = 3;
/// Folder (beside `review.json`) of the example items' overlays.
const EXAMPLES_FOLDER: &str = "examples";

/// How the numbers are counted (written into the record).
const CONVENTIONS: [&str; 4] = [
    "each rater's latest answer per item counts; earlier answers to the same item are kept in the database but not counted",
    "% correct = correct / all answers (partly, wrong and unsure count as not correct); Wilson score interval, 95 %",
    "agreement on the four answers as nominal categories: Cohen's kappa for exactly two raters (items both rated), Fleiss' kappa over the items every rater answered, Krippendorff's alpha over items with two answers or more",
    "tags: split at commas, trimmed, lower case; an answer counts a tag once",
];

/// Reads `db` and builds the summary (nothing written).
pub fn summarise(db: &Path) -> Result<ReviewSummary, ReviewError> {
    let answers = latest_answers(Store::open_existing(db)?.answers()?);
    let raters: BTreeSet<&str> = answers.iter().map(|a| a.rater.as_str()).collect();
    let items: BTreeSet<&str> = answers.iter().map(|a| a.item.as_str()).collect();
    Ok(ReviewSummary {
        schema_version: SCHEMA_VERSION,
        db: db.display().to_string(),
        raters: raters.iter().map(|r| r.to_string()).collect(),
        items: items.len(),
        answers: answers.len(),
        conventions: CONVENTIONS.iter().map(|c| c.to_string()).collect(),
        rows: count_rows(&answers),
        agreement: agreements(&answers),
        tags: common_tags(&answers),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Summarises `db` into `out` (`review.json`, `review.csv`, `agreement.csv`, `tags.csv`);
/// with `runs` (the folders the server was given), each tag's example items that are found
/// there get their overlay copied to `out/examples/<id>.png` for the report.
pub fn write_summary(
    db: &Path,
    out: &Path,
    runs: &[PathBuf],
    data: Option<&Path>,
) -> Result<(ReviewSummary, PathBuf), ReviewError> {
    let mut summary = summarise(db)?;
    if !runs.is_empty() {
        copy_example_pictures(&mut summary.tags, &discover(runs, data)?, out)?;
    }
    let json = out.join("review.json");
    write_record(&json, &summary).map_err(|e| ReviewError::file(&json, e.message))?;
    write_csv(&out.join("review.csv"), &rows_csv(&summary.rows))?;
    write_csv(
        &out.join("agreement.csv"),
        &agreement_csv(&summary.agreement),
    )?;
    write_csv(&out.join("tags.csv"), &tags_csv(&summary.tags))?;
    Ok((summary, json))
}

/// Copies the overlay of every tag example found in `catalogue` to `out/examples/<id>.png`
/// (ids are hex digests, so the name is safe) and records the file names.
fn copy_example_pictures(
    tags: &mut [TagRecord],
    catalogue: &Catalogue,
    out: &Path,
) -> Result<(), ReviewError> {
    let folder = out.join(EXAMPLES_FOLDER);
    for tag in tags {
        for id in &tag.example_items {
            let Some(item) = catalogue.get(id) else {
                continue;
            };
            let name = format!("{EXAMPLES_FOLDER}/{id}.png");
            let to = out.join(&name);
            std::fs::create_dir_all(&folder).map_err(|e| ReviewError::file(&folder, e))?;
            match &item.pictures {
                Pictures::Files { overlay_png, .. } => {
                    crate::io::link_or_copy_atomic(overlay_png, &to)
                        .map_err(|e| ReviewError::file(&to, e))?;
                }
                Pictures::Study(_) => {
                    let png = item
                        .overlay_png()
                        .map_err(|e| ReviewError::file(&item.map_npy, e))?;
                    crate::io::write_atomic(&to, &png).map_err(|e| ReviewError::file(&to, e))?;
                }
            }
            tag.pictures.push(name);
        }
    }
    Ok(())
}

fn write_csv(path: &Path, text: &str) -> Result<(), ReviewError> {
    crate::io::write_text_atomic(path, text).map_err(|e| ReviewError::file(path, e))
}

/// The latest answer of each rater per item, in order of arrival.
fn latest_answers(rows: Vec<AnswerRow>) -> Vec<AnswerRow> {
    let mut latest: BTreeMap<(String, String), AnswerRow> = BTreeMap::new();
    for row in rows {
        latest.insert((row.rater.clone(), row.item.clone()), row);
    }
    let mut rows: Vec<AnswerRow> = latest.into_values().collect();
    rows.sort_by_key(|r| r.answer_id);
    rows
}

fn category(answer: &str) -> usize {
    ANSWERS
        .iter()
        .position(|a| *a == answer)
        .unwrap_or(ANSWERS.len() - 1)
}

fn count_rows(answers: &[AnswerRow]) -> Vec<ReviewRow> {
    let mut groups: BTreeMap<(&str, &str, &str), [usize; 4]> = BTreeMap::new();
    for a in answers {
        groups.entry((&a.model, &a.method, &a.class)).or_default()[category(&a.answer)] += 1;
    }
    groups
        .into_iter()
        .map(|((model, method, class), counts)| {
            let n: usize = counts.iter().sum();
            let interval = wilson(counts[0], n, Z95);
            ReviewRow {
                model: model.into(),
                method: method.into(),
                class: class.into(),
                n,
                correct: counts[0],
                partly: counts[1],
                wrong: counts[2],
                unsure: counts[3],
                pct_correct: (n > 0).then(|| 100.0 * counts[0] as f64 / n as f64),
                wilson_low: interval.map(|i| 100.0 * i.0),
                wilson_high: interval.map(|i| 100.0 * i.1),
            }
        })
        .collect()
}

/// Agreement over all answers, then per model × method.
fn agreements(answers: &[AnswerRow]) -> Vec<AgreementRecord> {
    let mut scopes: BTreeMap<(&str, &str), Vec<&AnswerRow>> = BTreeMap::new();
    for a in answers {
        scopes.entry((&a.model, &a.method)).or_default().push(a);
    }
    let mut records = vec![agreement("all", "all", &answers.iter().collect::<Vec<_>>())];
    if scopes.len() > 1 {
        records.extend(
            scopes
                .iter()
                .map(|((model, method), rows)| agreement(model, method, rows)),
        );
    }
    records
}

/// The three coefficients over `answers` (one per rater and item).
pub fn agreement(model: &str, method: &str, answers: &[&AnswerRow]) -> AgreementRecord {
    let raters: BTreeSet<&str> = answers.iter().map(|a| a.rater.as_str()).collect();
    let mut by_item: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for a in answers {
        by_item
            .entry(&a.item)
            .or_default()
            .insert(&a.rater, category(&a.answer));
    }
    let units: Vec<Vec<usize>> = by_item
        .values()
        .map(|ratings| ratings.values().copied().collect())
        .collect();
    let cohen = match raters.iter().collect::<Vec<_>>()[..] {
        [first, second] => {
            let pairs: Vec<(usize, usize)> = by_item
                .values()
                .filter_map(|r| Some((*r.get(first)?, *r.get(second)?)))
                .collect();
            cohen_kappa(&pairs, ANSWERS.len())
        }
        _ => None,
    };
    let complete: Vec<Vec<usize>> = by_item
        .values()
        .filter(|r| raters.len() >= 2 && r.len() == raters.len())
        .map(|r| {
            let mut counts = vec![0; ANSWERS.len()];
            r.values().for_each(|&c| counts[c] += 1);
            counts
        })
        .collect();
    AgreementRecord {
        model: model.into(),
        method: method.into(),
        raters: raters.len(),
        items: units.iter().filter(|u| u.len() >= 2).count(),
        cohen_kappa: cohen,
        fleiss_kappa: fleiss_kappa(&complete),
        krippendorff_alpha: krippendorff_alpha_nominal(&units, ANSWERS.len()),
    }
}

fn common_tags(answers: &[AnswerRow]) -> Vec<TagRecord> {
    let mut scopes: BTreeMap<(&str, &str), BTreeMap<String, Vec<&AnswerRow>>> = BTreeMap::new();
    for a in answers {
        let tags: BTreeSet<String> = a
            .tags
            .split(',')
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        for tag in tags {
            scopes
                .entry((&a.model, &a.method))
                .or_default()
                .entry(tag)
                .or_default()
                .push(a);
        }
    }
    let mut records = Vec::new();
    for ((model, method), tags) in scopes {
        let mut tags: Vec<(String, Vec<&AnswerRow>)> = tags.into_iter().collect();
        // Most common first; ties in alphabetical order (the map's order, kept by a stable sort).
        tags.sort_by_key(|(_, rows)| std::cmp::Reverse(rows.len()));
        for (tag, rows) in tags.into_iter().take(TOP_TAGS) {
            let mut examples: Vec<String> = Vec::new();
            let mut example_items: Vec<String> = Vec::new();
            for r in &rows {
                let example = format!("{} ({})", r.input, r.class);
                if !examples.contains(&example) && examples.len() < TAG_EXAMPLES {
                    examples.push(example);
                    example_items.push(r.item.clone());
                }
            }
            records.push(TagRecord {
                model: model.into(),
                method: method.into(),
                tag,
                count: rows.len(),
                examples,
                example_items,
                pictures: Vec::new(),
            });
        }
    }
    records
}

fn number(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_default()
}

fn rows_csv(rows: &[ReviewRow]) -> String {
    let mut text = String::from(
        "model,method,class,n,correct,partly,wrong,unsure,pct_correct,wilson_low,wilson_high\n",
    );
    for r in rows {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_cell(&r.model),
            csv_cell(&r.method),
            csv_cell(&r.class),
            r.n,
            r.correct,
            r.partly,
            r.wrong,
            r.unsure,
            number(r.pct_correct),
            number(r.wilson_low),
            number(r.wilson_high)
        ));
    }
    text
}

fn agreement_csv(records: &[AgreementRecord]) -> String {
    let mut text =
        String::from("model,method,raters,items,cohen_kappa,fleiss_kappa,krippendorff_alpha\n");
    for a in records {
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            csv_cell(&a.model),
            csv_cell(&a.method),
            a.raters,
            a.items,
            number(a.cohen_kappa),
            number(a.fleiss_kappa),
            number(a.krippendorff_alpha)
        ));
    }
    text
}

fn tags_csv(tags: &[TagRecord]) -> String {
    let mut text = String::from("model,method,tag,count,examples\n");
    for t in tags {
        text.push_str(&format!(
            "{},{},{},{},{}\n",
            csv_cell(&t.model),
            csv_cell(&t.method),
            csv_cell(&t.tag),
            t.count,
            csv_cell(&t.examples.join("; "))
        ));
    }
    text
}
