"""Reference numbers for the review statistics (src/review/stats.rs).

Writes tests/fixtures/review/agreement.json: rating matrices (raters x items, category index
or null for a missing answer) with Cohen's kappa (statsmodels.stats.inter_rater.cohens_kappa
on the two raters' contingency table), Fleiss' kappa (statsmodels fleiss_kappa, method
"fleiss", over the items every rater answered) and Krippendorff's alpha (the `krippendorff`
package, nominal), plus Wilson intervals (statsmodels proportion_confint, method "wilson").

Run with a venv holding statsmodels and krippendorff:
    python -m venv /tmp/reviewvenv && /tmp/reviewvenv/bin/pip install statsmodels krippendorff
    /tmp/reviewvenv/bin/python tools/fixtures_review.py
"""

import importlib.metadata
import json
import pathlib

import krippendorff
import numpy as np
import statsmodels
from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/review/agreement.json"
CATEGORIES = 4


def random_ratings(rng, raters, items, agree, missing, categories=CATEGORIES):
    """Raters who copy a per-item truth with probability `agree`, else answer at random."""
    truth = rng.integers(0, categories, items)
    ratings = []
    for _ in range(raters):
        row = np.where(rng.random(items) < agree, truth, rng.integers(0, categories, items))
        row = [int(v) if rng.random() >= missing else None for v in row]
        ratings.append(row)
    return ratings


def references(ratings, categories):
    data = np.array([[np.nan if v is None else v for v in row] for row in ratings], dtype=float)
    case = {"ratings": ratings, "categories": categories}
    case["krippendorff_alpha"] = float(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal",
                           value_domain=list(range(categories))))
    complete = ~np.isnan(data).any(axis=0)
    if len(ratings) == 2:
        a, b = data[0, complete].astype(int), data[1, complete].astype(int)
        table = np.zeros((categories, categories))
        for x, y in zip(a, b):
            table[x, y] += 1
        case["cohen_kappa"] = float(cohens_kappa(table).kappa)
    if complete.any():
        counts = np.zeros((int(complete.sum()), categories))
        for j, column in enumerate(data[:, complete].T):
            for v in column:
                counts[j, int(v)] += 1
        case["fleiss_kappa"] = float(fleiss_kappa(counts, method="fleiss"))
    return case


def main():
    rng = np.random.default_rng(33)
    cases = []
    for name, raters, items, agree, missing in [
        ("two raters, high agreement", 2, 40, 0.8, 0.0),
        ("two raters, chance", 2, 60, 0.0, 0.0),
        ("two raters, missing answers", 2, 50, 0.6, 0.15),
        ("three raters", 3, 30, 0.7, 0.0),
        ("five raters, missing answers", 5, 45, 0.5, 0.2),
    ]:
        case = references(random_ratings(rng, raters, items, agree, missing), CATEGORIES)
        case["name"] = name
        cases.append(case)
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the nominal example
    # of 4 coders x 12 units (values 1..5 as 0..4): alpha = 0.743.
    book = [
        [0, 1, 2, 2, 1, 0, 3, 0, 1, None, None, None],
        [0, 1, 2, 2, 1, 1, 3, 0, 1, 4, None, 2],
        [None, 2, 2, 2, 1, 2, 3, 1, 1, 4, 0, None],
        [0, 1, 2, 2, 1, 3, 3, 0, 1, 4, 0, None],
    ]
    case = references(book, 5)
    case["name"] = "Krippendorff 2011 nominal example"
    cases.append(case)
    wilson = []
    for k, n in [(0, 10), (10, 10), (454, 483), (7, 20), (1, 1), (50, 100), (3, 7), (3, 6), (2, 6)]:
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        wilson.append({"k": k, "n": n, "low": float(low), "high": float(high)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "generator": "tools/fixtures_review.py",
        "statsmodels": statsmodels.__version__,
        "krippendorff": importlib.metadata.version("krippendorff"),
        "agreement": cases,
        "wilson": wilson,
    }, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
