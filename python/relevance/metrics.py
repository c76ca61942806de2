"""Measures of explanations, computed by the engine with their conventions stated beside the
numbers (the same functions the ``relevance faithfulness`` study runs)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import Model


def insertion_deletion(model: Model, x: Any, maps: np.ndarray, style: str = "signed",
                       target: Union[int, Sequence[int], None] = None, preset: str = "default",
                       step: Optional[str] = None, ties: Optional[str] = None,
                       score: Optional[str] = None, insertion_substrate: Optional[str] = None,
                       deletion_substrate: Optional[str] = None) -> Dict[str, Any]:
    """Insertion and deletion curves (Petsiuk et al. 2018, RISE) of ``maps`` on ``x``.

    Pixels are ordered by the map (one plane per image by ``style``, as the overlays reduce it:
    ``signed`` sums channels, ``magnitude`` takes max_c |v|, ``unit`` uses it as is; ties keep
    row-major order), then a step at a time inserted into the insertion substrate (default a
    blur, kernel 11, σ 5) or replaced by the deletion substrate (default 0 in the model's input
    space), reading the target class's score (softmax by default). Each AUC is the trapezoid
    over the fraction of pixels changed; ``id = insertion − deletion``.

    ``preset``: ``default`` (RISE with 2 % steps), ``rise``, ``resnet-lrp``, ``xplique``;
    ``step`` (``0.02``, ``1/224``, ``500px``), ``ties`` (``stable``, ``quantise:8``), ``score``
    (``softmax``, ``logit``) and the substrates (``zero``, ``black``, ``white``, ``pixel:V``,
    ``mean``, ``blur``, ``blur:K:SIGMA``) override it, as ``relevance faithfulness`` takes them.
    ``target``: None follows the predicted class.

    Returns a dict: ``insertion``, ``deletion``, ``id`` (one AUC per image), ``classes``,
    ``insertion_curves`` / ``deletion_curves`` (``(fractions, scores)`` per image) and
    ``conventions``.
    """
    return _native.insertion_deletion(model, x, np.asarray(maps, dtype=np.float32), style,
                                      target, preset, step, ties, score, insertion_substrate,
                                      deletion_substrate)
