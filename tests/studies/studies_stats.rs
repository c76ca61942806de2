//! `studies::stats` against scipy and statsmodels (`tools/fixtures_stats.py` writes
//! `tests/fixtures/stats/*.json`). Tolerances are relative: 1e-10 where the computation is
//! exact arithmetic (rank sums, enumerated p-values, Holm, least squares, quantiles), 1e-7 where
//! a special function enters (normal and t tails and quantiles). Each test prints its largest
//! differences (`cargo test --test studies stats -- --nocapture`).

use std::path::PathBuf;

use relevance::studies::stats::{
    CiMethod, TestMethod, acceleration, bca_levels, bootstrap_interval, holm, jackknife_means,
    paired_t, polyfit_with_band, wilcoxon_signed_rank,
};
use serde_json::Value;

const EXACT: f64 = 1e-10;
const SPECIAL: f64 = 1e-7;

fn fixture_cases(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stats")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tools/fixtures_stats.py)", path.display()));
    let fixture: Value = serde_json::from_str(&text).unwrap();
    fixture["cases"].as_array().unwrap().clone()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Largest relative difference seen per quantity, each checked against its tolerance.
#[derive(Default)]
struct Parity {
    worst: Vec<(&'static str, f64, f64)>,
}

impl Parity {
    fn check(&mut self, what: &'static str, ours: f64, reference: f64, tol: f64, case: &str) {
        let diff = (ours - reference).abs() / reference.abs().max(f64::MIN_POSITIVE);
        let diff = if ours == reference { 0.0 } else { diff };
        assert!(
            diff <= tol,
            "{case}: {what} = {ours}, reference {reference} (relative difference {diff:e})"
        );
        match self.worst.iter_mut().find(|w| w.0 == what) {
            Some(w) => w.1 = w.1.max(diff),
            None => self.worst.push((what, diff, tol)),
        }
    }

    fn report(&self, test: &str) {
        for (what, diff, tol) in &self.worst {
            eprintln!("{test}: {what}: largest relative difference {diff:.2e} (tolerance {tol:e})");
        }
    }
}

#[test]
fn wilcoxon_matches_scipy() {
    let mut parity = Parity::default();
    for case in fixture_cases("wilcoxon.json") {
        let name = case["name"].as_str().unwrap();
        let r = wilcoxon_signed_rank(&f64s(&case["x"]), &f64s(&case["y"]));
        let method = match case["method"].as_str().unwrap() {
            "exact" => TestMethod::Exact,
            "permutation" => TestMethod::Permutation,
            _ => TestMethod::Normal,
        };
        assert_eq!(r.method, method, "{name}");
        assert_eq!(r.n_used as u64, case["n_used"].as_u64().unwrap(), "{name}");
        parity.check(
            "statistic",
            r.statistic,
            num(&case["statistic"]),
            EXACT,
            name,
        );
        if method == TestMethod::Normal {
            parity.check(
                "p (normal)",
                r.p_value,
                num(&case["p_value"]),
                SPECIAL,
                name,
            );
        } else {
            parity.check(
                "p (enumerated)",
                r.p_value,
                num(&case["p_value"]),
                EXACT,
                name,
            );
        }
    }
    parity.report("wilcoxon");
}

#[test]
fn paired_t_matches_scipy() {
    let mut parity = Parity::default();
    for case in fixture_cases("ttest.json") {
        let name = case["name"].as_str().unwrap();
        let r = paired_t(&f64s(&case["x"]), &f64s(&case["y"]));
        assert_eq!(r.method, TestMethod::StudentT);
        parity.check("t", r.statistic, num(&case["statistic"]), EXACT, name);
        parity.check("p", r.p_value, num(&case["p_value"]), SPECIAL, name);
    }
    parity.report("paired t");
}

#[test]
fn holm_matches_statsmodels() {
    let mut parity = Parity::default();
    for case in fixture_cases("holm.json") {
        let adjusted = holm(&f64s(&case["p_values"]));
        for (ours, reference) in adjusted.iter().zip(f64s(&case["adjusted"])) {
            parity.check("adjusted p", *ours, reference, EXACT, "holm");
        }
    }
    parity.report("holm");
}

#[test]
fn polynomial_fits_match_statsmodels_ols() {
    let mut parity = Parity::default();
    for case in fixture_cases("polyfit.json") {
        let name = case["name"].as_str().unwrap();
        let degree = case["degree"].as_u64().unwrap() as usize;
        let fit = polyfit_with_band(
            &f64s(&case["x"]),
            &f64s(&case["y"]),
            degree,
            num(&case["level"]),
        )
        .unwrap();
        let vectors = [
            ("coefficient", &fit.coefficients, "coefficients", EXACT),
            (
                "standard error",
                &fit.standard_errors,
                "standard_errors",
                EXACT,
            ),
            ("t value", &fit.t_values, "t_values", EXACT),
            ("p value", &fit.p_values, "p_values", SPECIAL),
        ];
        for (what, ours, key, tol) in vectors {
            let reference = f64s(&case[key]);
            assert_eq!(ours.len(), reference.len(), "{name}: {what}");
            for (o, r) in ours.iter().zip(reference) {
                parity.check(what, *o, r, tol, name);
            }
        }
        parity.check("R²", fit.r2, num(&case["r2"]), EXACT, name);
        parity.check("σ̂²", fit.sigma2, num(&case["sigma2"]), EXACT, name);
        let band = fit.band(&f64s(&case["grid"]));
        let lows = f64s(&case["band_low"]);
        let highs = f64s(&case["band_high"]);
        for ((low, high), (ref_low, ref_high)) in band.iter().zip(lows.into_iter().zip(highs)) {
            parity.check("band end", *low, ref_low, SPECIAL, name);
            parity.check("band end", *high, ref_high, SPECIAL, name);
        }
        let quadratic_p = case["p_values"].get(2).map(num);
        assert_eq!(
            fit.quadratic_term_significant(),
            quadratic_p.is_some_and(|p| p < 0.05),
            "{name}"
        );
    }
    parity.report("polyfit");
}

#[test]
fn bootstrap_intervals_match_scipy_on_a_given_distribution() {
    let mut parity = Parity::default();
    for case in fixture_cases("bootstrap.json") {
        let name = case["name"].as_str().unwrap();
        let data = f64s(&case["data"]);
        let resampled = f64s(&case["resampled"]);
        let (estimate, level) = (num(&case["estimate"]), num(&case["level"]));
        let jackknife = jackknife_means(&data);
        parity.check(
            "acceleration",
            acceleration(&jackknife),
            num(&case["acceleration"]),
            EXACT,
            name,
        );
        let (alpha_1, alpha_2) = bca_levels(estimate, &resampled, &jackknife, (1.0 - level) / 2.0);
        let levels = f64s(&case["bca_levels"]);
        parity.check("BCa level", alpha_1, levels[0], SPECIAL, name);
        parity.check("BCa level", alpha_2, levels[1], SPECIAL, name);
        for (method, key, what, tol) in [
            (CiMethod::Percentile, "percentile", "percentile end", EXACT),
            (CiMethod::Bca, "BCa", "BCa end", SPECIAL),
        ] {
            let ci = bootstrap_interval(estimate, &resampled, &jackknife, level, method);
            assert_eq!(ci.estimate, estimate);
            parity.check(what, ci.low, num(&case[key]["low"]), tol, name);
            parity.check(what, ci.high, num(&case[key]["high"]), tol, name);
        }
    }
    parity.report("bootstrap");
}

// Models compared on the same images (`studies::paired::compare_models`), by hand and scipy.

use relevance::studies::paired;

#[test]
fn models_pair_by_image_under_each_method() {
    let images = ["i1", "i2", "i3", "i4", "i5"];
    let score = |model: &'static str, method: &'static str, values: [f64; 5]| {
        images
            .iter()
            .zip(values)
            .map(move |(image, value)| paired::Scored {
                model,
                method,
                image,
                value,
            })
            .collect::<Vec<_>>()
    };
    let mut scores = score("A", "m", [2.0, 4.0, 6.0, 8.0, 10.0]);
    // B lower by 1, 2, 3, 4, 5 on the same images, listed in reverse; an undefined score
    // (NaN) of image i5 under method k leaves that image out of k's pair.
    let mut b = score("B", "m", [1.0, 2.0, 3.0, 4.0, 5.0]);
    b.reverse();
    scores.extend(b);
    scores.extend(score("A", "k", [1.0, 1.0, 1.0, 1.0, f64::NAN]));
    scores.extend(score("B", "k", [0.0, 2.0, 0.5, 3.0, 9.0]));
    let out = paired::compare_models(
        &scores,
        &["A".into(), "B".into()],
        &["m".into(), "k".into()],
    );
    assert_eq!(out.len(), 2);
    let m = &out[0];
    assert_eq!(
        (m.method.as_str(), m.a.as_str(), m.b.as_str()),
        ("m", "A", "B")
    );
    assert!(m.model.is_empty());
    assert_eq!(m.n, 5);
    assert!((m.mean_difference - 3.0).abs() < 1e-12);
    assert!((m.p_value - 0.0625).abs() < 1e-12, "{}", m.p_value);
    // Paired t by hand: d = 1..5, mean 3, sd √2.5, t = 3/(√2.5/√5) = 3√2 ≈ 4.2426 on 4 df:
    // scipy.stats.ttest_rel gives p = 0.013236.
    assert!((m.t_p_value - 0.013236).abs() < 1e-5, "{}", m.t_p_value);
    let k = &out[1];
    assert_eq!(k.n, 4);
    // d = 1, −1, 0.5, −2: mean −0.375.
    assert!((k.mean_difference + 0.375).abs() < 1e-12);
    // Holm over two p-values: the smaller doubled, the larger kept (at least the first).
    let (lo, hi) = (m.p_value.min(k.p_value), m.p_value.max(k.p_value));
    let adjusted = [2.0 * lo, hi.max(2.0 * lo).min(1.0)];
    let (pm, pk) = if m.p_value <= k.p_value {
        (adjusted[0], adjusted[1])
    } else {
        (adjusted[1], adjusted[0])
    };
    assert!((m.p_holm - pm).abs() < 1e-12 && (k.p_holm - pk).abs() < 1e-12);
    assert!(!m.significant());
    let s = paired::model_sentence("object mass", m);
    assert!(
        s.starts_with("m: A and B do not differ significantly in object mass"),
        "{s}"
    );
}

#[test]
fn a_significant_model_difference_names_the_higher_model() {
    let c = paired::Comparison {
        model: String::new(),
        method: "grad-cam".into(),
        a: "vgg".into(),
        b: "resnet".into(),
        n: 40,
        mean_difference: -0.12,
        ci: (-0.2, -0.05),
        p_value: 1e-4,
        t_p_value: 2e-4,
        p_holm: 3e-4,
    };
    let s = paired::model_sentence("object mass", &c);
    assert!(
        s.starts_with("grad-cam: resnet scores higher than vgg in object mass by 0.120 (95 % CI 0.050 to 0.200;"),
        "{s}"
    );
}
