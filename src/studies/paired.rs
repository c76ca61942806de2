//! Paired comparisons on the same images — of methods (for every model, every pair of methods)
//! and of models (for every method, every pair of models): the per-image differences of a
//! score, their mean with a bootstrap confidence interval, the two-sided Wilcoxon signed-rank
//! test and the paired t-test, and Holm's adjustment of the Wilcoxon p-values over all pairs of
//! the run — so "A is more faithful than B" or "model A's maps lie more on the object than model
//! B's" comes with how sure it is ([`super::stats`] holds the statistics, checked against scipy).

use std::path::Path;

use serde_json::{Value, json};

use super::StudyError;
use super::stats::{CiMethod, bootstrap_mean_ci, holm, paired_t, wilcoxon_signed_rank};
use super::toolkit::{RunFacts, num, write_csv};

/// Bootstrap resamples of each mean difference.
const RESAMPLES: usize = 2000;
/// Confidence level of the intervals.
const LEVEL: f64 = 0.95;
/// Seed of the bootstrap draws (fixed, so a table is reproducible).
const SEED: u64 = 0;
/// Family-wise error rate under which a Holm-adjusted difference is called significant.
pub const ALPHA: f64 = 0.05;

/// One score of one image under one model and method.
pub struct Scored<'a> {
    /// Model label.
    pub model: &'a str,
    /// Method label.
    pub method: &'a str,
    /// Image key (the pairing).
    pub image: &'a str,
    /// The score.
    pub value: f64,
}

/// `a` against `b` on the same images: two methods under one model ([`compare_methods`]), or
/// two models under one method ([`compare_models`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The model both sides share (method comparisons); empty for model comparisons.
    pub model: String,
    /// The method both sides share (model comparisons); empty for method comparisons.
    pub method: String,
    /// First method (or model).
    pub a: String,
    /// Second method (or model).
    pub b: String,
    /// Images scored under both.
    pub n: usize,
    /// Mean of `score(a) − score(b)` over those images.
    pub mean_difference: f64,
    /// BCa bootstrap interval of that mean ([`LEVEL`], [`RESAMPLES`] resamples).
    pub ci: (f64, f64),
    /// Two-sided Wilcoxon signed-rank p-value (scipy's defaults).
    pub p_value: f64,
    /// Two-sided paired t-test p-value (scipy's `ttest_rel`).
    pub t_p_value: f64,
    /// Holm-adjusted Wilcoxon p-value over every comparison of the run.
    pub p_holm: f64,
}

impl Comparison {
    /// True when the Holm-adjusted Wilcoxon p-value is under [`ALPHA`].
    pub fn significant(&self) -> bool {
        self.p_holm < ALPHA
    }
}

/// Every pair of `methods` (in the given order, `a` before `b`) on each model's images that
/// both scored, with Holm's adjustment over all of them.
pub fn compare_methods(
    scores: &[Scored],
    models: &[String],
    methods: &[String],
) -> Vec<Comparison> {
    let mut out = Vec::new();
    for model in models {
        for (i, a) in methods.iter().enumerate() {
            for b in &methods[i + 1..] {
                let side = |method: &str| {
                    let method = method.to_string();
                    move |s: &Scored| s.model == model && s.method == method
                };
                let mut c = compare_sides(scores, side(a), side(b));
                c.model = model.clone();
                (c.a, c.b) = (a.clone(), b.clone());
                out.push(c);
            }
        }
    }
    with_holm(out)
}

/// Every pair of `models` (in the given order, `a` before `b`) under each method, on the
/// images both models scored, with Holm's adjustment over all of them.
pub fn compare_models(scores: &[Scored], models: &[String], methods: &[String]) -> Vec<Comparison> {
    let mut out = Vec::new();
    for method in methods {
        for (i, a) in models.iter().enumerate() {
            for b in &models[i + 1..] {
                let side = |model: &str| {
                    let model = model.to_string();
                    move |s: &Scored| s.method == method && s.model == model
                };
                let mut c = compare_sides(scores, side(a), side(b));
                c.method = method.clone();
                (c.a, c.b) = (a.clone(), b.clone());
                out.push(c);
            }
        }
    }
    with_holm(out)
}

fn with_holm(mut out: Vec<Comparison>) -> Vec<Comparison> {
    let adjusted = holm(&out.iter().map(|c| c.p_value).collect::<Vec<_>>());
    for (c, p) in out.iter_mut().zip(adjusted) {
        c.p_holm = p;
    }
    out
}

/// The scores picked by `a` against those picked by `b`, paired by image (labels and Holm's
/// adjustment filled in by the caller). Images scored on one side only are left out; a
/// non-finite score leaves its image out of the pair.
fn compare_sides(
    scores: &[Scored],
    a: impl Fn(&Scored) -> bool,
    b: impl Fn(&Scored) -> bool,
) -> Comparison {
    let ys: std::collections::HashMap<&str, f64> = scores
        .iter()
        .filter(|s| b(s))
        .map(|s| (s.image, s.value))
        .collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for s in scores.iter().filter(|s| a(s)) {
        if let Some(&t) = ys.get(s.image)
            && s.value.is_finite()
            && t.is_finite()
        {
            x.push(s.value);
            y.push(t);
        }
    }
    let differences: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p - q).collect();
    let ci = bootstrap_mean_ci(&differences, LEVEL, RESAMPLES, SEED, CiMethod::Bca);
    let (p_value, t_p_value) = if x.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (
            wilcoxon_signed_rank(&x, &y).p_value,
            paired_t(&x, &y).p_value,
        )
    };
    Comparison {
        model: String::new(),
        method: String::new(),
        a: String::new(),
        b: String::new(),
        n: x.len(),
        mean_difference: ci.estimate,
        ci: (ci.low, ci.high),
        p_value,
        t_p_value,
        p_holm: f64::NAN,
    }
}

/// Writes method comparisons as CSV, one row per measure × model × pair (Holm's adjustment is
/// within each measure's comparisons).
pub fn write_comparisons(
    path: &Path,
    measures: &[(&str, Vec<Comparison>)],
) -> Result<(), StudyError> {
    write_rows(path, ["model", "method_a", "method_b"], measures, |c| {
        &c.model
    })
}

/// Writes model comparisons as CSV, one row per measure × method × pair of models.
pub fn write_model_comparisons(
    path: &Path,
    measures: &[(&str, Vec<Comparison>)],
) -> Result<(), StudyError> {
    write_rows(path, ["method", "model_a", "model_b"], measures, |c| {
        &c.method
    })
}

fn write_rows(
    path: &Path,
    keys: [&str; 3],
    measures: &[(&str, Vec<Comparison>)],
    shared: impl Fn(&Comparison) -> &String,
) -> Result<(), StudyError> {
    let mut header = vec!["measure"];
    header.extend(keys);
    header.extend([
        "n",
        "difference",
        "ci_low",
        "ci_high",
        "wilcoxon_p",
        "paired_t_p",
        "holm_p",
        "significant",
    ]);
    let rows: Vec<Vec<String>> = measures
        .iter()
        .flat_map(|(measure, comparisons)| comparisons.iter().map(move |c| (*measure, c)))
        .map(|(measure, c)| {
            vec![
                measure.to_string(),
                shared(c).clone(),
                c.a.clone(),
                c.b.clone(),
                c.n.to_string(),
                num(c.mean_difference),
                num(c.ci.0),
                num(c.ci.1),
                format!("{:.3e}", c.p_value),
                format!("{:.3e}", c.t_p_value),
                format!("{:.3e}", c.p_holm),
                if c.significant() { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    write_csv(path, &header, &rows)
}

/// Comparisons of one kind (method pairs or model pairs) for each named measure: `scores_of(k)`
/// gives every per-image score of measure `k`.
pub type ByMeasure<'m> = Vec<(&'m str, Vec<Comparison>)>;

/// [`compare_methods`] or [`compare_models`]: scores, models, methods → comparisons.
pub type Compare = fn(&[Scored], &[String], &[String]) -> Vec<Comparison>;

/// One kind of comparison for each named measure: `compare` is [`compare_methods`] or
/// [`compare_models`], run on `scores_of(k)` — every per-image score of measure `k` — with
/// Holm within the measure.
pub fn by_measure<'m, 's>(
    measures: &[&'m str],
    scores_of: impl Fn(usize) -> Vec<Scored<'s>>,
    compare: Compare,
    facts: &RunFacts,
) -> ByMeasure<'m> {
    measures
        .iter()
        .enumerate()
        .map(|(k, measure)| {
            let tests = compare(&scores_of(k), &facts.models, &facts.methods);
            (*measure, tests)
        })
        .collect()
}

/// The comparison with the smallest finite Holm-adjusted p-value among those with images.
pub fn strongest(tests: &[Comparison]) -> Option<&Comparison> {
    tests
        .iter()
        .filter(|c| c.n > 0 && c.p_holm.is_finite())
        .min_by(|x, y| x.p_holm.total_cmp(&y.p_holm))
}

/// The one model finding a study's headline states: of the first measure with a finite test,
/// the pair with the smallest Holm-adjusted p-value, worded by [`model_sentence`] (a direction
/// only when that difference is significant).
pub fn model_finding(by_model: &ByMeasure) -> Option<String> {
    by_model
        .iter()
        .find_map(|(measure, tests)| strongest(tests).map(|c| model_sentence(measure, c)))
}

/// `method_tests.csv` for every measure and, with several models, `model_tests.csv`; returns
/// the rows of the summary's tests table (both kinds, [`TEST_COLUMNS`]) and the model finding.
pub fn write_tests<'s>(
    out: &Path,
    measures: &[&str],
    scores_of: impl Fn(usize) -> Vec<Scored<'s>>,
    facts: &RunFacts,
) -> Result<(Vec<Vec<Value>>, Vec<String>), StudyError> {
    let by_method = by_measure(measures, &scores_of, compare_methods, facts);
    write_comparisons(&out.join("method_tests.csv"), &by_method)?;
    let mut table = test_rows(&by_method);
    let mut findings = Vec::new();
    if facts.models.len() > 1 {
        let by_model = by_measure(measures, &scores_of, compare_models, facts);
        write_model_comparisons(&out.join("model_tests.csv"), &by_model)?;
        table.extend(test_rows(&by_model));
        findings.extend(model_finding(&by_model));
    }
    Ok((table, findings))
}

/// Columns of a summary's tests table.
pub const TEST_COLUMNS: [&str; 9] = [
    "measure",
    "within",
    "a",
    "b",
    "pairs",
    "difference a − b [95 % CI]",
    "Wilcoxon p",
    "Holm p",
    "significant",
];

/// One summary row per comparison ([`TEST_COLUMNS`]): `within` is the shared model (method
/// pairs) or method (model pairs).
pub fn test_rows(measures: &[(&str, Vec<Comparison>)]) -> Vec<Vec<Value>> {
    measures
        .iter()
        .flat_map(|(measure, tests)| tests.iter().map(move |c| (*measure, c)))
        .map(|(measure, c)| {
            let within = if c.model.is_empty() {
                &c.method
            } else {
                &c.model
            };
            vec![
                json!(measure),
                json!(within),
                json!(c.a),
                json!(c.b),
                json!(c.n),
                json!(format!(
                    "{:.3} [{:.3}, {:.3}]",
                    c.mean_difference, c.ci.0, c.ci.1
                )),
                json!(format!("{:.2e}", c.p_value)),
                json!(format!("{:.2e}", c.p_holm)),
                json!(if c.significant() { "yes" } else { "no" }),
            ]
        })
        .collect()
}

/// The finding one model comparison supports: which model scores higher, with its interval
/// and tests, when the Holm-adjusted difference is significant; otherwise that the data shows
/// no significant difference (never a direction).
pub fn model_sentence(score: &str, c: &Comparison) -> String {
    if !c.significant() {
        return format!(
            "{}: {} and {} do not differ significantly in {score} (mean difference {:.3}, {:.0} % CI {:.3} to {:.3}; Wilcoxon p = {:.1e}, Holm {:.1e}; {} images).",
            c.method,
            c.a,
            c.b,
            c.mean_difference,
            100.0 * LEVEL,
            c.ci.0,
            c.ci.1,
            c.p_value,
            c.p_holm,
            c.n
        );
    }
    let (winner, loser, d, (low, high)) = if c.mean_difference >= 0.0 {
        (&c.a, &c.b, c.mean_difference, c.ci)
    } else {
        (&c.b, &c.a, -c.mean_difference, (-c.ci.1, -c.ci.0))
    };
    format!(
        "{}: {winner} scores higher than {loser} in {score} by {d:.3} ({:.0} % CI {low:.3} to {high:.3}; Wilcoxon p = {:.1e}, paired t p = {:.1e}, Holm {:.1e}; {} images).",
        c.method,
        100.0 * LEVEL,
        c.p_value,
        c.t_p_value,
        c.p_holm,
        c.n
    )
}

/// One sentence on the comparison of `best` with `other`, as a headline:
/// "… ID higher by 0.014 (95 % CI 0.009 to 0.020; Wilcoxon p = 5.4e-7, Holm 1.1e-6; 60 images)".
pub fn sentence(score: &str, c: &Comparison, best: &str) -> String {
    let (winner, loser, sign) = if c.a == best {
        (&c.a, &c.b, 1.0)
    } else {
        (&c.b, &c.a, -1.0)
    };
    let d = sign * c.mean_difference;
    let (low, high) = if sign > 0.0 { c.ci } else { (-c.ci.1, -c.ci.0) };
    format!(
        "{winner} vs {loser}{}: {score} {} by {:.3} ({:.0} % CI {low:.3} to {high:.3}; Wilcoxon p = {:.1e}, Holm {:.1e}; {} images).",
        if c.model.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.model)
        },
        if d >= 0.0 { "higher" } else { "lower" },
        d.abs(),
        100.0 * LEVEL,
        c.p_value,
        c.p_holm,
        c.n
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored<'a>(method: &'a str, values: &[f64], images: &'a [&'a str]) -> Vec<Scored<'a>> {
        images
            .iter()
            .zip(values)
            .map(|(image, &value)| Scored {
                model: "m",
                method,
                image,
                value,
            })
            .collect()
    }

    #[test]
    fn pairs_by_image_tests_and_adjusts() {
        let images = ["i1", "i2", "i3", "i4", "i5"];
        let mut scores = scored("a", &[2.0, 4.0, 6.0, 8.0, 10.0], &images);
        // b lower by 1..5 on the same images, listed in another order: pairing is by image.
        let b = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut rev: Vec<Scored> = scored("b", &b, &images);
        rev.reverse();
        scores.extend(rev);
        scores.extend(scored("c", &[2.0, 4.0, 6.0, 8.0, 10.0], &images));
        let methods = ["a".to_string(), "b".into(), "c".into()];
        let out = compare_methods(&scores, &["m".into()], &methods);
        assert_eq!(out.len(), 3);
        let ab = &out[0];
        assert_eq!((ab.a.as_str(), ab.b.as_str(), ab.n), ("a", "b", 5));
        assert!((ab.mean_difference - 3.0).abs() < 1e-12);
        // Exact Wilcoxon, five positive differences without ties: 2 · 1/32.
        assert!((ab.p_value - 0.0625).abs() < 1e-12, "{}", ab.p_value);
        assert!(ab.ci.0 <= 3.0 && 3.0 <= ab.ci.1);
        // a vs c: no differences at all (NaN statistic from an empty test is kept as such).
        let ac = &out[1];
        assert_eq!(ac.mean_difference, 0.0);
        // Holm over the three p-values, as stats::holm computes it.
        let adjusted = holm(&out.iter().map(|c| c.p_value).collect::<Vec<_>>());
        for (c, p) in out.iter().zip(adjusted) {
            assert!(c.p_holm == p || (c.p_holm.is_nan() && p.is_nan()));
        }
    }

    #[test]
    fn the_sentence_reads_from_the_better_method() {
        let c = Comparison {
            model: String::new(),
            method: String::new(),
            a: "zennit".into(),
            b: "split".into(),
            n: 60,
            mean_difference: -0.014,
            ci: (-0.02, -0.009),
            p_value: 5.4e-7,
            t_p_value: 2.0e-7,
            p_holm: 1.1e-6,
        };
        let s = sentence("ID", &c, "split");
        assert!(
            s.starts_with("split vs zennit: ID higher by 0.014 (95 % CI 0.009 to 0.020;"),
            "{s}"
        );
        assert!(s.ends_with("60 images)."), "{s}");
    }
}
