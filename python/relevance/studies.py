"""The studies as functions: each runs ``relevance <study>`` in this process (the same parser,
options and pipeline as the command), writes the study's folder and returns its
``summary.json`` as a dict.

Keyword options are the command's flags with ``_`` for ``-``: ``limit=8`` is ``--limit 8``,
``save_maps=True`` is ``--save-maps``, ``methods=["grad-cam", "lrp:epsilon-plus"]`` is
``--methods grad-cam --methods lrp:epsilon-plus``; ``None`` and ``False`` leave a flag out.
The GIL is released while the study runs; Ctrl-C stops it before its next chunk of images
(its resume caches keep what was done, so calling again with the same ``out`` resumes) and
raises ``KeyboardInterrupt``. See ``relevance <study> --help`` for every flag and
docs/reference.md for what each study measures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Sequence, Union

from . import _native

PathLike = Union[str, os.PathLike]

__all__ = ["compare", "faithfulness", "quality", "sanity", "stability", "variability"]


def command(study: str, models: Union[PathLike, Sequence[PathLike]], data: PathLike,
            out: PathLike, **options: Any) -> list:
    """The ``relevance`` command line (without the program name) of ``study`` with these
    arguments, as the study functions run it."""
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    argv = [study, "--models", *map(os.fspath, models), "--data", os.fspath(data),
            "--out", os.fspath(out)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [flag, _text(item)]
        else:
            argv += [flag, _text(value)]
    return argv


def _text(value: Any) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _run(study: str, models, data, out, options) -> Dict[str, Any]:
    _native.run_command(command(study, models, data, out, **options))
    return json.loads((Path(out) / "summary.json").read_text())


def faithfulness(models, data, out: PathLike = "faithfulness", **options: Any) -> Dict[str, Any]:
    """Insertion and deletion (Petsiuk et al. 2018, RISE) of each method × model over a data
    set, with the ID score ``insertion − deletion``, the conventions stated (``preset``,
    ``step``, ``ties``, ``score``, ``target``, the substrates) and optionally ROAD (Rong et al.
    2022, ``road=True``). ``relevance faithfulness``."""
    return _run("faithfulness", models, data, out, options)


def stability(models, data, out: PathLike = "stability", **options: Any) -> Dict[str, Any]:
    """Stability: maps of augmented images (``augment``) mapped back by the inverse warp and
    compared with the original image's map (Spearman, SSIM, IoU of the top ``top_k``
    fraction). ``relevance stability``."""
    return _run("stability", models, data, out, options)


def variability(models, data, out: PathLike = "variability", **options: Any) -> Dict[str, Any]:
    """Ensemble variability: per-image SD of predictions and of maps across models (the seeds
    of an ensemble), their fits and clusters (``clusters``, ``examples``).
    ``relevance variability``."""
    return _run("variability", models, data, out, options)


def compare(models, data, out: PathLike = "compare", **options: Any) -> Dict[str, Any]:
    """Methods × models compared on the same images: centres of mass, the IoU matrix of
    thresholded maps (``threshold``), agreement with object masks and confounder markers
    (``tolerance``, ``correct_mass``), paired tests between models. ``relevance compare``."""
    return _run("compare", models, data, out, options)


def sanity(models, data, out: PathLike = "sanity", **options: Any) -> Dict[str, Any]:
    """Sanity checks (Adebayo et al. 2018): model-parameter randomisation, cascading and
    independent, and random logit (Sixt et al. 2020), with methods whose maps stay similar
    (mean Spearman ≥ ``threshold``) flagged. ``relevance sanity``."""
    return _run("sanity", models, data, out, options)


def quality(models, data, out: PathLike = "quality", **options: Any) -> Dict[str, Any]:
    """Quality of the maps per model × method, each with its Quantus-matching convention:
    checkerboard score against white noise of the map's size, sparseness (Gini; Chalasani et
    al. 2020), complexity (entropy; Bhatt et al. 2020), pixel-flipping and region-perturbation
    AOPC (Bach et al. 2015; Samek et al. 2017), faithfulness correlation (Bhatt et al. 2020) and
    max/avg-sensitivity (Yeh et al. 2019), as mean [95 % bootstrap CI]. ``relevance quality``."""
    return _run("quality", models, data, out, options)
