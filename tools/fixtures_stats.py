"""Reference values for `relevance::studies::stats`, computed by scipy and statsmodels.

Writes `tests/fixtures/stats/*.json` (read by `tests/studies/studies_stats.rs`). Run from the
repository root:

    python3 tools/fixtures_stats.py

Versions used for the committed fixtures are recorded in each file (`"versions"`); the Wilcoxon
`method` labels replicate scipy 1.17's `method='auto'` rule (below), which scipy does not report.

* `wilcoxon.json`: `scipy.stats.wilcoxon(x, y)` with its defaults (`zero_method='wilcox'`,
  `correction=False`, `method='auto'`).
* `ttest.json`: `scipy.stats.ttest_rel(x, y)` (two-sided).
* `holm.json`: `statsmodels.stats.multitest.multipletests(p, method='holm')`.
* `polyfit.json`: `statsmodels.OLS` on the design `[1, x, ..., x^d]`: params, bse, tvalues,
  pvalues, rsquared, scale, and `get_prediction(...).conf_int(alpha)` (mean-response band).
* `bootstrap.json`: a sample, a bootstrap distribution of its mean drawn here with numpy, and
  the intervals `scipy.stats.bootstrap` reads off *that* distribution (`n_resamples=0` with
  `bootstrap_result`, the documented way to reuse a distribution), plus the BCa levels and the
  acceleration from scipy's `_bca_interval`. The Rust side cannot replay numpy's draws, so it
  checks its interval arithmetic on the same distribution.
"""
import json
import os
import types

import numpy as np
import scipy
import scipy.stats
import statsmodels
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "stats")
VERSIONS = {
    "numpy": np.__version__, "scipy": scipy.__version__, "statsmodels": statsmodels.__version__,
}


def write(name, cases):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump({"versions": VERSIONS, "cases": cases}, f, indent=1)
        f.write("\n")


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=float).ravel()]


# ---------------------------------------------------------------------------------------------
# Wilcoxon signed-rank


def wilcoxon_method(x, y):
    """scipy 1.17 `_wilcoxon_nd`, `method='auto'`: n > 50 -> asymptotic; else no ties and no
    zeros -> exact; else n <= 13 -> exhaustive permutation test; else asymptotic."""
    d = np.asarray(x) - np.asarray(y)
    nz = np.abs(d[d != 0])
    has_ties = len(np.unique(nz)) < len(nz)
    if len(d) > 50:
        return "normal"
    if not has_ties and not np.any(d == 0):
        return "exact"
    return "permutation" if len(d) <= 13 else "normal"


def wilcoxon_cases(rng):
    cases = []

    def add(name, x, y):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        res = scipy.stats.wilcoxon(x, y)
        d = x - y
        cases.append({
            "name": name, "x": floats(x), "y": floats(y),
            "statistic": float(res.statistic), "p_value": float(res.pvalue),
            "n_used": int(np.count_nonzero(d)), "method": wilcoxon_method(x, y),
        })

    def continuous(n, shift):
        y = np.round(rng.normal(0.5, 0.2, n), 6)
        x = np.round(y + rng.normal(shift, 0.1, n), 6)
        return x, y

    for name, n, shift in [("exact n=8", 8, 0.03), ("exact n=12", 12, 0.05),
                           ("exact n=20", 20, 0.04), ("exact n=50", 50, 0.02),
                           ("normal n=60", 60, 0.03), ("normal n=60 strong", 60, 0.1)]:
        x, y = continuous(n, shift)
        assert ("exact" in name) == (wilcoxon_method(x, y) == "exact"), name
        add(name, x, y)
    add("exact all positive n=8", np.arange(1, 9) * 0.1 + 1, np.ones(8))
    # Integer differences: ties and zeros.
    for name, n in [("ties n=10 permutation", 10), ("ties and zeros n=12 permutation", 12),
                    ("ties and zeros n=30 normal", 30), ("ties n=60 normal", 60)]:
        d = rng.integers(-3, 7, n).astype(float)
        if "zeros" not in name:
            d[d == 0] = 7.0
        else:
            d[:2] = 0.0
        y = np.round(rng.uniform(0, 1, n), 2)
        add(name, y + d, y)
    return cases


# ---------------------------------------------------------------------------------------------
# Paired t


def ttest_cases(rng):
    cases = []
    for name, n, shift, sd in [("n=5", 5, 0.2, 0.3), ("n=12", 12, 0.05, 0.2),
                               ("n=30 strong", 30, 0.5, 0.3), ("n=60 null", 60, 0.0, 1.0),
                               ("n=40 very strong", 40, 1.0, 0.4)]:
        y = np.round(rng.normal(0, 1, n), 4)
        x = np.round(y + rng.normal(shift, sd, n), 4)
        res = scipy.stats.ttest_rel(x, y)
        cases.append({"name": name, "x": floats(x), "y": floats(y),
                      "statistic": float(res.statistic), "p_value": float(res.pvalue)})
    return cases


# ---------------------------------------------------------------------------------------------
# Holm


def holm_cases(rng):
    inputs = [
        [0.01, 0.04, 0.03, 0.005],
        [0.2, 0.2, 0.01, 0.5, 0.9],
        [1e-8, 0.049, 0.051, 0.3, 0.02, 0.02],
        floats(rng.uniform(0, 0.2, 15)),
        [0.7],
    ]
    return [{"p_values": floats(p),
             "adjusted": floats(multipletests(p, method="holm")[1])} for p in inputs]


# ---------------------------------------------------------------------------------------------
# Polynomial fits


def polyfit_cases(rng):
    cases = []
    specs = [
        ("linear", 1, np.linspace(0, 1, 15), lambda x: 0.3 + 0.8 * x, 0.1, 0.95),
        ("quadratic significant", 2, np.linspace(0, 1, 20),
         lambda x: 0.2 + x - 1.5 * x**2, 0.05, 0.95),
        ("quadratic not significant", 2, np.linspace(0, 1, 12), lambda x: 0.5 + 0.2 * x, 0.2, 0.95),
        ("quadratic off-centre x", 2, np.linspace(10, 20, 16),
         lambda x: 3 - 0.2 * x + 0.01 * x**2, 0.05, 0.9),
        ("cubic", 3, np.linspace(-1, 2, 25), lambda x: 1 - x + 0.5 * x**3, 0.3, 0.95),
    ]
    for name, degree, x, f, noise, level in specs:
        x = np.round(x, 6)
        y = np.round(f(x) + rng.normal(0, noise, len(x)), 5)
        design = np.vander(x, degree + 1, increasing=True)
        res = sm.OLS(y, design).fit()
        grid = np.round(np.linspace(x.min() - 0.1 * np.ptp(x), x.max(), 5), 6)
        prediction = res.get_prediction(np.vander(grid, degree + 1, increasing=True))
        band = prediction.conf_int(alpha=1 - level)
        cases.append({
            "name": name, "degree": degree, "level": level, "x": floats(x), "y": floats(y),
            "coefficients": floats(res.params), "standard_errors": floats(res.bse),
            "t_values": floats(res.tvalues), "p_values": floats(res.pvalues),
            "r2": float(res.rsquared), "sigma2": float(res.scale),
            "grid": floats(grid), "band_low": floats(band[:, 0]), "band_high": floats(band[:, 1]),
        })
    return cases


# ---------------------------------------------------------------------------------------------
# Bootstrap intervals from a given bootstrap distribution


def bootstrap_cases(rng):
    from scipy.stats._resampling import _bca_interval  # private; the formula BCa uses

    cases = []
    for name, data, resamples, level in [
        ("skewed n=15", np.round(rng.exponential(1.0, 15), 4), 999, 0.95),
        ("skewed n=30 level 0.9", np.round(rng.lognormal(0, 0.8, 30), 4), 1000, 0.9),
        ("symmetric n=20", np.round(rng.normal(0.5, 0.1, 20), 4), 500, 0.95),
    ]:
        idx = rng.integers(0, len(data), (resamples, len(data)))
        theta_b = data[idx].mean(axis=1)
        given = types.SimpleNamespace(bootstrap_distribution=theta_b)
        case = {"name": name, "data": floats(data), "level": level,
                "estimate": float(np.mean(data)), "resampled": floats(theta_b)}
        for method in ["percentile", "BCa"]:
            res = scipy.stats.bootstrap((data,), np.mean, n_resamples=0, bootstrap_result=given,
                                        method=method, confidence_level=level)
            ci = res.confidence_interval
            case[method] = {"low": float(ci.low), "high": float(ci.high)}
        alpha_1, alpha_2, a_hat = _bca_interval((data,), np.mean, axis=-1, alpha=(1 - level) / 2,
                                                theta_hat_b=theta_b, batch=None, xp=np)
        case["bca_levels"] = [float(alpha_1), float(alpha_2)]
        case["acceleration"] = float(a_hat)
        cases.append(case)
    return cases


def main():
    rng = np.random.default_rng(20261206)
    write("wilcoxon.json", wilcoxon_cases(rng))
    write("ttest.json", ttest_cases(rng))
    write("holm.json", holm_cases(rng))
    write("polyfit.json", polyfit_cases(rng))
    write("bootstrap.json", bootstrap_cases(rng))


if __name__ == "__main__":
    main()
