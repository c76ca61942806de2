"""`relevance.from_torch` against the ONNX file of the same module (tools/fixtures_python.py)."""

import sys

import numpy as np
import pytest

import relevance
from conftest import FIXTURES, REPO

FIXTURE = FIXTURES / "python"


def test_onnx_export_of_a_conv_bn_relu_network_matches_pytorch_logits():
    """Needs no PyTorch: the fixture holds PyTorch's logits for its input."""
    model = relevance.load(FIXTURE / "small_bn.onnx")
    x = np.load(FIXTURE / "small_bn.input.npy")
    np.testing.assert_allclose(model.logits(x), np.load(FIXTURE / "small_bn.logits.npy"),
                               rtol=1e-5, atol=1e-6)


def test_from_torch_round_trips_the_module_of_the_fixture():
    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        # Not under RELEVANCE_PY_NO_SKIP: CI has no PyTorch (its CPU wheels are off PyPI's
        # reach here and the CUDA ones are gigabytes); the fixture test covers the network.
        pytest.skip("PyTorch with onnx is not installed here: from_torch is checked where it is "
             "(pip install torch onnx); the fixture test above covers the same network")
    sys.path.insert(0, str(REPO / "tools"))
    from fixtures_python import example_input, small_module

    module, x = small_module(), example_input()
    from_torch = relevance.from_torch(module, x[:1])
    from_file = relevance.load(FIXTURE / "small_bn.onnx")
    xs = x.numpy()
    with torch.no_grad():
        np.testing.assert_allclose(from_torch.logits(xs), module(x).numpy(), rtol=1e-5,
                                   atol=1e-6)
    assert np.array_equal(from_torch.logits(xs), from_file.logits(xs))
    for method in ("lrp:epsilon-plus", "grad-cam"):
        assert np.array_equal(from_torch.explain(xs, method), from_file.explain(xs, method))
    assert module.training is False


def test_from_torch_without_torch_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    try:
        relevance.from_torch(object(), None)
    except relevance.Error as e:
        assert "needs PyTorch" in str(e)
    else:
        raise AssertionError("from_torch did not raise")
