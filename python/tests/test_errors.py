"""Bad input raises the right `relevance.Error` subclass with the command line's message."""

import numpy as np
import pytest

import relevance
from conftest import FIXTURES, cli_error

TINY_RESNET = FIXTURES / "import" / "tiny_resnet.onnx"
X = np.load(FIXTURES / "import" / "tiny_resnet.input.npy").astype(np.float32)


def test_missing_model_is_a_model_error_with_the_cli_message(tmp_path):
    missing = tmp_path / "nothing.onnx"
    with pytest.raises(relevance.ModelError) as e:
        relevance.load(missing)
    row = tmp_path / "row.npy"
    np.save(row, X[0])
    assert str(e.value) == cli_error("explain", "--model", missing, "--method", "saliency",
                                     "--out", tmp_path / "out", row)


def test_unsupported_onnx_is_a_model_error():
    with pytest.raises(relevance.ModelError, match="unsupported.onnx"):
        relevance.load(FIXTURES / "import" / "unsupported.onnx")


def test_unknown_method_and_bad_layer_are_method_errors_with_the_cli_message(tmp_path):
    model = relevance.load(TINY_RESNET)
    row = tmp_path / "row.npy"
    np.save(row, X[0])
    for method, extra in [("no-such-method", []), ("grad-cam", ["--layer", "nope"])]:
        with pytest.raises(relevance.MethodError) as e:
            model.explain(X, method, layer=extra[1] if extra else None) if extra else \
                model.explain(X, method)
        assert str(e.value) == cli_error("explain", "--model", TINY_RESNET, "--method", method,
                                         *extra, "--out", tmp_path / "out", row)
    assert all(issubclass(c, relevance.Error) for c in
               (relevance.ModelError, relevance.MethodError, relevance.InputError))


def test_bad_option_and_target_are_method_errors():
    model = relevance.load(TINY_RESNET)
    with pytest.raises(relevance.MethodError, match="steps"):
        model.explain(X, "integrated-gradients", steps="many")
    with pytest.raises(relevance.MethodError, match="no_such_option|no-such-option"):
        model.explain(X, "saliency", no_such_option=1)
    with pytest.raises(relevance.MethodError, match="target class 99 does not exist"):
        model.explain(X, "saliency", target=99)


def test_wrong_dtype_layout_and_shape_say_how_to_fix():
    model = relevance.load(TINY_RESNET)
    with pytest.raises(relevance.InputError, match=r"astype\(numpy.float32\)"):
        model.explain(X.astype(np.float64), "saliency")
    with pytest.raises(relevance.InputError, match=r"transpose\(0, 3, 1, 2\)"):
        model.explain(np.ascontiguousarray(X.transpose(0, 2, 3, 1)), "saliency")
    with pytest.raises(relevance.InputError, match=r"x\[None\]"):
        model.explain(X[0], "saliency")
    with pytest.raises(relevance.InputError, match=r"the model takes \[3, 12, 12\]"):
        model.explain(np.zeros((1, 3, 10, 12), np.float32), "saliency")
    with pytest.raises(relevance.InputError, match="image paths"):
        model.explain([1.5], "saliency")


def test_non_contiguous_float32_is_read_once_correctly():
    model = relevance.load(TINY_RESNET)
    strided = np.asfortranarray(X)
    assert not strided.flags.c_contiguous
    assert np.array_equal(model.explain(strided, "saliency"), model.explain(X, "saliency"))


def test_unreadable_image_is_an_input_error_with_the_cli_message(tmp_path):
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    model = relevance.load(TINY_RESNET)
    with pytest.raises(relevance.InputError) as e:
        model.explain([bad], "saliency")
    assert str(e.value) == cli_error("explain", "--model", TINY_RESNET, "--method", "saliency",
                                     "--out", tmp_path / "out", bad)
