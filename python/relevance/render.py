"""Drawing maps for notebooks, as ``relevance explain`` draws its overlays."""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _native


def overlay(image: np.ndarray, map: np.ndarray, style: str = "signed", alpha: float = 0.7,
            colormap: Optional[str] = None) -> np.ndarray:
    """``map`` drawn over ``image`` as an RGB uint8 array ``[H, W, 3]``.

    ``image`` is uint8 ``[H, W]`` or ``[H, W, 3]`` (``Model.input_images`` gives the picture the
    model saw); ``map`` is ``[H, W]`` or ``[C, H, W]`` float32. ``style``: ``signed`` (channels
    summed, scaled symmetrically about 0 by the 99.5th percentile of |v|, diverging colormap
    ``bwr``), ``magnitude`` (max over channels of |v|, as Simonyan et al. 2014) or ``unit``
    (values already in [0, 1], CAMs). Each pixel blends image and colour by ``alpha · strength``
    (strength = normalised value, or |2v − 1| for signed maps).
    """
    return _native.overlay(np.ascontiguousarray(image, dtype=np.uint8),
                           np.asarray(map, dtype=np.float32), style, alpha, colormap)
