//! Paired comparisons of methods on the same images: for every model and every pair of methods,
//! the per-image differences of a score, their mean with a bootstrap confidence interval, the
//! two-sided Wilcoxon signed-rank test and Holm's adjustment over all pairs of the run — so
//! "A is more faithful than B" comes with how sure it is ([`super::stats`] holds the statistics,
//! checked against scipy).

use std::path::Path;

use super::StudyError;
use super::stats::{CiMethod, bootstrap_mean_ci, holm, wilcoxon_signed_rank};
use super::toolkit::{num, write_csv};

/// Bootstrap resamples of each mean difference.
const RESAMPLES: usize = 2000;
/// Confidence level of the intervals.
const LEVEL: f64 = 0.95;
/// Seed of the bootstrap draws (fixed, so a table is reproducible).
const SEED: u64 = 0;

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

/// Method `a` against method `b` on one model's images.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Model label.
    pub model: String,
    /// First method.
    pub a: String,
    /// Second method.
    pub b: String,
    /// Images scored under both.
    pub n: usize,
    /// Mean of `score(a) − score(b)` over those images.
    pub mean_difference: f64,
    /// BCa bootstrap interval of that mean ([`LEVEL`], [`RESAMPLES`] resamples).
    pub ci: (f64, f64),
    /// Two-sided Wilcoxon signed-rank p-value (scipy's defaults).
    pub p_value: f64,
    /// Holm-adjusted p-value over every comparison of the run.
    pub p_holm: f64,
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
                out.push(compare_pair(scores, model, a, b));
            }
        }
    }
    let adjusted = holm(&out.iter().map(|c| c.p_value).collect::<Vec<_>>());
    for (c, p) in out.iter_mut().zip(adjusted) {
        c.p_holm = p;
    }
    out
}

/// Method `a` against `b` on `model`'s images (Holm's adjustment filled in by the caller).
fn compare_pair(scores: &[Scored], model: &str, a: &str, b: &str) -> Comparison {
    let of = |method: &str| -> Vec<&Scored> {
        scores
            .iter()
            .filter(|s| s.model == model && s.method == method)
            .collect()
    };
    let (xs, ys) = (of(a), of(b));
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for s in &xs {
        if let Some(t) = ys.iter().find(|t| t.image == s.image) {
            x.push(s.value);
            y.push(t.value);
        }
    }
    let differences: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p - q).collect();
    let ci = bootstrap_mean_ci(&differences, LEVEL, RESAMPLES, SEED, CiMethod::Bca);
    let p_value = if x.is_empty() {
        f64::NAN
    } else {
        wilcoxon_signed_rank(&x, &y).p_value
    };
    Comparison {
        model: model.into(),
        a: a.into(),
        b: b.into(),
        n: x.len(),
        mean_difference: ci.estimate,
        ci: (ci.low, ci.high),
        p_value,
        p_holm: f64::NAN,
    }
}

/// Writes comparisons as CSV, one row per measure × model × pair (Holm's adjustment is within
/// each measure's comparisons).
pub fn write_comparisons(
    path: &Path,
    measures: &[(&str, Vec<Comparison>)],
) -> Result<(), StudyError> {
    let header = [
        "measure",
        "model",
        "method_a",
        "method_b",
        "n",
        "difference",
        "ci_low",
        "ci_high",
        "wilcoxon_p",
        "holm_p",
    ];
    let rows: Vec<Vec<String>> = measures
        .iter()
        .flat_map(|(measure, comparisons)| comparisons.iter().map(move |c| (*measure, c)))
        .map(|(measure, c)| {
            vec![
                measure.to_string(),
                c.model.clone(),
                c.a.clone(),
                c.b.clone(),
                c.n.to_string(),
                num(c.mean_difference),
                num(c.ci.0),
                num(c.ci.1),
                format!("{:.3e}", c.p_value),
                format!("{:.3e}", c.p_holm),
            ]
        })
        .collect();
    write_csv(path, &header, &rows)
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
            a: "zennit".into(),
            b: "split".into(),
            n: 60,
            mean_difference: -0.014,
            ci: (-0.02, -0.009),
            p_value: 5.4e-7,
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
