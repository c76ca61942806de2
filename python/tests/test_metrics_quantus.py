"""`relevance.metrics` against the reference values of Quantus 0.6, scipy and scikit-image that
the Rust tests use (tests/fixtures/metrics/*.json, written by tools/fixtures_metrics.py), on the
same tiny CNN (tests/fixtures/python/tiny_metrics.onnx, its ONNX export by
tools/fixtures_python.py)."""

import json

import numpy as np
import pytest

import relevance
from conftest import FIXTURES

QUANTUS = json.loads((FIXTURES / "metrics" / "quantus.json").read_text())
SIMILARITY = json.loads((FIXTURES / "metrics" / "similarity.json").read_text())
TINY = FIXTURES / "python" / "tiny_metrics.onnx"
X = np.array(QUANTUS["x"], np.float32).reshape(2, 1, 16, 16)
MAPS = np.array(QUANTUS["maps"], np.float32).reshape(2, 16, 16)
MASKS = np.array(QUANTUS["masks"], bool).reshape(2, 16, 16)
Y = QUANTUS["y"]


@pytest.fixture(scope="module")
def tiny():
    return relevance.load(TINY)


def test_the_onnx_export_is_the_model_quantus_ran(tiny):
    np.testing.assert_allclose(tiny.logits(X).ravel(), QUANTUS["logits"], atol=1e-5)


def test_pixel_flipping_matches_quantus(tiny):
    got = relevance.metrics.pixel_flipping(tiny, X, MAPS, pixels_per_step=8, baseline="min",
                                           target=Y, style="unit")
    want = np.array(QUANTUS["pixel_flipping"]).reshape(2, -1)
    for b in range(2):
        fractions, scores = got["curves"][b]
        np.testing.assert_allclose(scores[1:], want[b], atol=1e-5)
        assert got["auc_quantus"][b] == pytest.approx(np.trapz(want[b]) if hasattr(np, "trapz")
                                                      else np.trapezoid(want[b]), abs=1e-4)
        assert fractions == pytest.approx(np.arange(0, 257, 8) / 256)
    assert got["classes"] == Y
    assert got["conventions"]["unit"] == 8


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_region_perturbation_matches_quantus(tiny, order):
    want = np.array(QUANTUS[f"region_{order}"]).reshape(2, -1)
    got = relevance.metrics.region_perturbation(tiny, X, MAPS, patch=5, regions=want.shape[1],
                                                order=order, target=Y, style="unit")
    for b in range(2):
        scores = np.array(got["curves"][b][1])
        np.testing.assert_allclose(scores[0] - scores[1:], want[b], atol=1e-5)
        assert got["aopc"][b] == pytest.approx(want[b].sum() / (want.shape[1] + 1), abs=1e-5)


def test_sparseness_and_complexity_match_quantus():
    assert relevance.metrics.sparseness(MAPS) == pytest.approx(QUANTUS["sparseness"], rel=1e-5)
    assert relevance.metrics.complexity(MAPS) == pytest.approx(QUANTUS["complexity"], rel=1e-5)


def test_localisation_matches_quantus():
    hit_maps = np.array(QUANTUS["maps_hit"], np.float32).reshape(2, 16, 16)
    assert relevance.metrics.pointing_game(MAPS, MASKS)["hit"] == QUANTUS["pointing_game"]
    assert relevance.metrics.pointing_game(hit_maps, MASKS)["hit"] == \
        QUANTUS["pointing_game_hit"]
    assert relevance.metrics.relevance_mass_accuracy(MAPS, MASKS) == \
        pytest.approx(QUANTUS["relevance_mass_accuracy"], abs=1e-5)
    assert relevance.metrics.relevance_rank_accuracy(MAPS, MASKS) == \
        pytest.approx(QUANTUS["relevance_rank_accuracy"], abs=1e-12)
    empty = np.zeros_like(MASKS)
    assert relevance.metrics.pointing_game(MAPS, empty)["hit"] == [None, None]


def test_model_parameter_randomisation_matches_quantus(tiny):
    """Quantus' MPRT with the plain gradient, |maps| compared by Spearman, with the fresh
    layers it drew; `saliency` maps are the input gradient, reduced to max_c |g| (one channel
    here, so |g|, which |maps| compares as Quantus does)."""
    fresh = {k: np.array(v["values"], np.float32).reshape(v["shape"])
             for k, v in QUANTUS["mprt_fresh"].items()}
    got = relevance.metrics.model_parameter_randomisation(tiny, X, "saliency", target=Y,
                                                          fresh=fresh)
    # the ONNX export names the nodes /fc/Gemm, /conv2/Conv, /conv1/Conv and keeps the
    # parameter names (fc.weight, …)
    assert got["layers"] == [f"/{l}/{'Gemm' if l == 'fc' else 'Conv'}"
                             for l in QUANTUS["mprt_layers"]]
    for step, layer in enumerate(QUANTUS["mprt_layers"]):
        assert got["spearman"][step] == pytest.approx(QUANTUS["mprt"][layer], abs=1e-6)


def test_similarity_matches_scipy_and_skimage():
    shape = SIMILARITY["shape"]
    a = np.array(SIMILARITY["a"], np.float32).reshape(1, *shape)
    b = np.array(SIMILARITY["b"], np.float32).reshape(1, *shape)
    ties = np.array(SIMILARITY["ties"], np.float32).reshape(1, *shape)
    valid = np.array(SIMILARITY["valid"], bool).reshape(1, *shape)
    got = relevance.metrics.similarity(a, b, top_fraction=0.2)
    assert got["pearson"][0] == pytest.approx(SIMILARITY["pearson"], abs=1e-10)
    assert got["spearman"][0] == pytest.approx(SIMILARITY["spearman"], abs=1e-10)
    assert got["ssim"][0] == pytest.approx(SIMILARITY["ssim_gaussian"], abs=1e-9)
    assert relevance.metrics.similarity(a, ties)["spearman"][0] == \
        pytest.approx(SIMILARITY["spearman_ties"], abs=1e-10)
    masked = relevance.metrics.similarity(a, b, valid=valid)
    assert masked["pearson"][0] == pytest.approx(SIMILARITY["pearson_valid"], abs=1e-10)
    # top-k IoU by its definition: k = round(0.2 n), stable descending order
    k = round(0.2 * a.size)
    top = lambda m: set(np.argsort(-m.ravel(), kind="stable")[:k])
    inter = len(top(a) & top(b))
    assert got["top_k_iou"][0] == pytest.approx(inter / (2 * k - inter))


def test_metric_input_errors():
    with pytest.raises(relevance.InputError, match="masks must be"):
        relevance.metrics.relevance_mass_accuracy(MAPS, MASKS[:1])
    with pytest.raises(relevance.InputError, match="unknown baseline"):
        relevance.metrics.pixel_flipping(relevance.load(TINY), X, MAPS, baseline="purple")
    with pytest.raises(relevance.InputError, match="unknown cascade"):
        relevance.metrics.model_parameter_randomisation(relevance.load(TINY), X, "saliency",
                                                        cascade="sideways")
