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
