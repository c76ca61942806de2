"""Explain and audit CNN image classifiers from Python: the ``relevance`` engine (Rust) with
NumPy arrays in and out.

    >>> import relevance
    >>> model = relevance.load("vgg16.onnx")                 # card found beside it
    >>> maps = model.explain(["scan.jpg"], "lrp:epsilon-plus", target="pred")
    >>> maps.shape                                            # [N, C, H, W], as the CLI's .npy
    (1, 3, 240, 240)

Every function computes what the ``relevance`` command computes for the same input; the maps
equal the command's ``.npy`` files bit for bit. See docs/python.md.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Sequence, Union

import numpy as np

from . import _native
from ._native import Error, InputError, MethodError, Model, ModelError, __version__, init
from . import metrics, render, studies

__all__ = [
    "Error",
    "InputError",
    "MethodError",
    "Model",
    "ModelError",
    "from_torch",
    "init",
    "load",
    "metrics",
    "render",
    "studies",
    "__version__",
]


def load(path: Union[str, os.PathLike], card: Union[str, os.PathLike, Dict[str, Any], None] = None,
         arch: Union[str, None] = None) -> Model:
    """Loads a model as ``relevance explain --model PATH [--card CARD] [--arch ARCH]`` does.

    ``path`` is an ONNX file, a ``.safetensors`` or ``.pth`` state dict (with ``arch`` or a
    card naming the architecture); ``card`` a model card — a JSON/TOML file, or a dict with the
    fields of one (``{"num_classes": 4, "classes": [...], "normalization": {...}}``) — by
    default the card beside the weights. Raises :class:`ModelError` with the command's message
    when it cannot load.
    """
    if isinstance(card, dict):
        return _with_card_file(card, lambda file: _native.load(os.fspath(path), file, arch))
    return _native.load(os.fspath(path), None if card is None else os.fspath(card), arch)


def _with_card_file(card: Dict[str, Any], load_with: Any) -> Model:
    """Calls ``load_with(file)`` with ``card`` written as a card file (``model.card.json`` in a
    temporary folder, removed afterwards), so a dict is read exactly as a card file is."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="relevance-card-") as folder:
        file = os.path.join(folder, "model.card.json")
        with open(file, "w", encoding="utf-8") as f:
            json.dump(card, f)
        return load_with(file)


def from_torch(module: Any, example_input: Any,
               card: Union[str, os.PathLike, Dict[str, Any], None] = None,
               opset: int = 17) -> Model:
    """Exports a ``torch.nn.Module`` with ``torch.onnx.export`` (in memory) and loads it.

    ``example_input`` is a tensor ``[1, C, H, W]`` of the size the model takes (it fixes the
    input shape). PyTorch is needed only for this call. The module is exported in eval mode
    (BatchNorm with its running statistics), as ``relevance`` explains it.
    """
    try:
        import torch  # noqa: F401  (only to export)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise Error("relevance.from_torch needs PyTorch (pip install torch); "
                    "or export the model to ONNX yourself and use relevance.load") from e
    import io

    buffer = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        torch.onnx.export(module, (example_input,), buffer, input_names=["input"],
                          output_names=["logits"], opset_version=opset, dynamo=False,
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    finally:
        module.train(was_training)
    if isinstance(card, dict):
        return _with_card_file(card, lambda file: _native.load_onnx_bytes(buffer.getvalue(), file))
    return _native.load_onnx_bytes(buffer.getvalue(), None if card is None else os.fspath(card))
