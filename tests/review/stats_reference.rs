//! The agreement coefficients and the Wilson interval against statsmodels and the
//! `krippendorff` package (fixtures from tools/fixtures_review.py), and Krippendorff's own
//! worked example (α = 0.743).

use relevance::review::stats::{
    Z95, cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal, wilson,
};
use serde_json::Value;

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/review/agreement.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Raters × items, `None` for a missing answer.
fn ratings(case: &Value) -> Vec<Vec<Option<usize>>> {
    case["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().map(|v| v as usize))
                .collect()
        })
        .collect()
}

fn close(ours: Option<f64>, reference: &Value, what: &str) {
    let reference = reference
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no reference"));
    let ours = ours.unwrap_or_else(|| panic!("{what}: undefined, reference {reference}"));
    assert!(
        (ours - reference).abs() < 1e-12,
        "{what}: {ours} vs {reference}"
    );
}

#[test]
fn agreement_coefficients_match_statsmodels_and_krippendorff() {
    let fixtures = fixtures();
    let cases = fixtures["agreement"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let k = case["categories"].as_u64().unwrap() as usize;
        let rows = ratings(case);
        let items = rows[0].len();
        let units: Vec<Vec<usize>> = (0..items)
            .map(|i| rows.iter().filter_map(|r| r[i]).collect())
            .collect();
        close(
            krippendorff_alpha_nominal(&units, k),
            &case["krippendorff_alpha"],
            &format!("{name}: alpha"),
        );
        let complete: Vec<Vec<usize>> = units
            .iter()
            .filter(|u| u.len() == rows.len())
            .map(|u| {
                let mut counts = vec![0; k];
                u.iter().for_each(|&c| counts[c] += 1);
                counts
            })
            .collect();
        close(
            fleiss_kappa(&complete),
            &case["fleiss_kappa"],
            &format!("{name}: Fleiss"),
        );
        if rows.len() == 2 {
            let pairs: Vec<(usize, usize)> = (0..items)
                .filter_map(|i| Some((rows[0][i]?, rows[1][i]?)))
                .collect();
            close(
                cohen_kappa(&pairs, k),
                &case["cohen_kappa"],
                &format!("{name}: Cohen"),
            );
        }
    }
}

#[test]
fn krippendorffs_worked_example_gives_0_743() {
    let fixtures = fixtures();
    let case = fixtures["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("Krippendorff 2011"))
        .unwrap();
    let rows = ratings(case);
    let units: Vec<Vec<usize>> = (0..rows[0].len())
        .map(|i| rows.iter().filter_map(|r| r[i]).collect())
        .collect();
    let alpha = krippendorff_alpha_nominal(&units, 5).unwrap();
    // The paper prints 0.743; exactly 1 − 10 · 4 / 153.33… = 0.74342…
    assert!((alpha - 0.743).abs() < 5e-4, "{alpha}");
}

#[test]
fn wilson_intervals_match_statsmodels() {
    let fixtures = fixtures();
    for case in fixtures["wilson"].as_array().unwrap() {
        let k = case["k"].as_u64().unwrap() as usize;
        let n = case["n"].as_u64().unwrap() as usize;
        let (low, high) = wilson(k, n, Z95).unwrap();
        let (rl, rh) = (
            case["low"].as_f64().unwrap(),
            case["high"].as_f64().unwrap(),
        );
        assert!(
            (low - rl).abs() < 1e-12 && (high - rh).abs() < 1e-12,
            "{k}/{n}: ({low}, {high}) vs ({rl}, {rh})"
        );
    }
    assert_eq!(wilson(0, 0, Z95), None);
}

#[test]
fn coefficients_are_undefined_where_chance_agreement_is_total() {
    // Both raters always say "correct": p_e = 1, κ is 0/0.
    assert_eq!(cohen_kappa(&[(0, 0), (0, 0)], 4), None);
    assert_eq!(fleiss_kappa(&[vec![2, 0, 0, 0], vec![2, 0, 0, 0]]), None);
    assert_eq!(
        krippendorff_alpha_nominal(&[vec![0, 0], vec![0, 0]], 4),
        None
    );
    // Items rated by different numbers of raters are not Fleiss' design.
    assert_eq!(fleiss_kappa(&[vec![2, 0, 0, 0], vec![1, 2, 0, 0]]), None);
    // One answer per item: nothing to pair.
    assert_eq!(krippendorff_alpha_nominal(&[vec![0], vec![1]], 4), None);
}
