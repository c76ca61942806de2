"""`relevance.metrics` against a NumPy reference of the stated conventions."""

import numpy as np
import pytest

import relevance
from conftest import FIXTURES

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"
X = np.load(FIXTURES / "import" / "tiny_resnet.input.npy").astype(np.float32)


def reference_curve(model, image, plane, cls, step, start, source):
    """Pixels in decreasing map order (ties in row-major order), `step` at a time copied from
    `source` into `start`; the softmax of `cls` after each step; AUC by the trapezoid rule."""
    order = np.argsort(-plane.ravel(), kind="stable")
    n = plane.size
    ends = list(range(0, n, step)) + [n]
    rows, current = [], start.copy()
    flat_current = current.reshape(current.shape[0], -1)
    flat_source = source.reshape(source.shape[0], -1)
    done = 0
    for end in ends:
        idx = order[done:end]
        flat_current[:, idx] = flat_source[:, idx]
        done = end
        rows.append(current.copy())
    scores = model.predict(np.stack(rows))[:, cls]
    fractions = np.array(ends, dtype=np.float64) / n
    return np.trapz(scores.astype(np.float64), fractions) if hasattr(np, "trapz") else \
        np.trapezoid(scores.astype(np.float64), fractions), scores


def test_insertion_deletion_follow_their_stated_conventions():
    model = relevance.load(TINY_RESNET)
    maps = np.random.default_rng(7).random((2, 12, 12), dtype=np.float32)
    maps[0, :3, :3] = 0.5  # ties, kept in row-major order
    got = relevance.metrics.insertion_deletion(model, X, maps, style="unit", step="16px",
                                               insertion_substrate="zero",
                                               deletion_substrate="zero")
    predicted = model.predict(X).argmax(axis=1)
    assert got["classes"] == list(predicted)
    assert got["conventions"]["step"] == "16px"
    assert got["conventions"]["ties"] == "stable"
    for r in range(2):
        zeros = np.zeros_like(X[r])
        ins, ins_scores = reference_curve(model, X[r], maps[r], predicted[r], 16, zeros, X[r])
        dele, del_scores = reference_curve(model, X[r], maps[r], predicted[r], 16, X[r], zeros)
        np.testing.assert_allclose(got["insertion_curves"][r][1], ins_scores, rtol=1e-5)
        np.testing.assert_allclose(got["deletion_curves"][r][1], del_scores, rtol=1e-5)
        assert got["insertion"][r] == pytest.approx(ins, rel=1e-5)
        assert got["deletion"][r] == pytest.approx(dele, rel=1e-5)
        assert got["id"][r] == pytest.approx(ins - dele, rel=1e-5, abs=1e-7)
        assert got["insertion_curves"][r][0] == pytest.approx(np.r_[0:144:16, 144] / 144)


def test_signed_maps_are_reduced_by_the_channel_sum():
    model = relevance.load(TINY_RESNET)
    maps = np.random.default_rng(3).standard_normal((2, 3, 12, 12)).astype(np.float32)
    a = relevance.metrics.insertion_deletion(model, X, maps, style="signed", step="0.1")
    b = relevance.metrics.insertion_deletion(model, X, maps.sum(axis=1), style="unit",
                                             step="0.1")
    assert a["insertion"] == b["insertion"] and a["deletion"] == b["deletion"]


def test_bad_conventions_and_shapes_are_input_errors():
    model = relevance.load(TINY_RESNET)
    maps = np.zeros((2, 12, 12), np.float32)
    with pytest.raises(relevance.InputError, match="bad substrate"):
        relevance.metrics.insertion_deletion(model, X, maps, deletion_substrate="purple")
    with pytest.raises(relevance.InputError, match="unknown preset"):
        relevance.metrics.insertion_deletion(model, X, maps, preset="nope")
    with pytest.raises(relevance.InputError, match=r"maps must be"):
        relevance.metrics.insertion_deletion(model, X, maps[:1])
