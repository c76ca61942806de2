"""Measures of explanations, computed by the engine with their conventions stated beside the
numbers: the functions of ``relevance::metrics`` the studies run (``faithfulness``: insertion /
deletion; ``compare``: localisation; ``stability``: similarity; ``sanity``: randomisation), on
NumPy maps ``[N, H, W]`` or ``[N, C, H, W]`` (reduced to one plane per image by ``style`` as the
overlays are: ``signed`` sums channels, ``magnitude`` takes max_c |v|, ``unit`` the first)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

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


def _maps(maps: Any) -> np.ndarray:
    return np.asarray(maps, dtype=np.float32)


def _masks(masks: Any) -> np.ndarray:
    return np.asarray(masks, dtype=bool)


def pixel_flipping(model: Model, x: Any, maps: np.ndarray, pixels_per_step: int = 0,
                   order: str = "morf", baseline: str = "min",
                   target: Union[int, Sequence[int], None] = None, score: str = "softmax",
                   style: str = "signed") -> Dict[str, Any]:
    """Pixel flipping (Bach et al. 2015) of ``maps`` on ``x``, as Quantus 0.6's
    ``PixelFlipping``.

    Pixels are taken in the order of the map (one plane per image by ``style``; ``morf``: most
    relevant first, ``lerf``: least; stable sort), ``pixels_per_step`` at a time (0: 1 % of the
    pixels, rounded up), and replaced with all their channels by ``baseline`` (``min``: the
    image minimum, Quantus' ``"black"``; ``max``; ``mean``; ``channel-mean``; ``zero``;
    ``blur``; ``blur:K:SIGMA``), cumulatively; the followed class's score (``softmax`` or
    ``logit``) is read after each step.

    Returns ``curves`` (``(fractions, scores)`` per image, point 0 unperturbed), ``aopc``
    (``1/(L+1) Σ_k (f(x⁰) − f(xᵏ))``), ``auc_quantus`` (``trapz(scores[1:], dx=1)``),
    ``classes`` and ``conventions``. ``target``: None follows the predicted class.
    """
    return _native.pixel_flipping(model, x, _maps(maps), pixels_per_step, order, baseline,
                                  target, score, style)


def region_perturbation(model: Model, x: Any, maps: np.ndarray, patch: int = 8,
                        regions: int = 100, order: str = "morf", baseline: str = "min",
                        target: Union[int, Sequence[int], None] = None, score: str = "softmax",
                        style: str = "signed") -> Dict[str, Any]:
    """Region perturbation (Samek et al. 2017) on Quantus 0.6's centred grid of
    ``patch × patch`` patches: the ``regions`` patches with the highest (``morf``) or lowest
    (``lerf``) summed relevance are replaced by ``baseline`` one after another, cumulatively.
    Returns what :func:`pixel_flipping` returns; Quantus' ``RegionPerturbation`` curve is
    ``scores[0] − scores[1:]``.
    """
    return _native.region_perturbation(model, x, _maps(maps), patch, regions, order, baseline,
                                       target, score, style)


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: float = 0.0,
                  style: str = "signed") -> Dict[str, list]:
    """The pointing game (Zhang et al. 2018): per image, whether the map's maximum lies on the
    object mask (``[N, H, W]`` booleans) or within ``tolerance`` pixels (Euclidean) of it.
    Returns ``hit``, ``location`` (the first maximal pixel, row-major) and ``maxima`` (how many
    pixels share the maximum); ``None`` for an empty mask.
    """
    return _native.pointing_game(_maps(maps), _masks(masks), tolerance, style)


def relevance_mass_accuracy(maps: np.ndarray, masks: np.ndarray, positive_only: bool = False,
                            style: str = "signed") -> List[Optional[float]]:
    """Relevance mass accuracy (Arras et al. 2022) per image: ``Σ_{i∈mask} R_i / Σ_i R_i``
    (``R = max(R, 0)`` with ``positive_only``; signed as Quantus 0.6 otherwise); NaN when the
    total is 0, None for an empty mask."""
    return _native.relevance_mass_accuracy(_maps(maps), _masks(masks), positive_only, style)


def relevance_rank_accuracy(maps: np.ndarray, masks: np.ndarray,
                            style: str = "signed") -> List[Optional[float]]:
    """Relevance rank accuracy (Arras et al. 2022) per image: the fraction of the
    ``K = |mask|`` highest-ranked pixels that lie on the object; None for an empty mask."""
    return _native.relevance_rank_accuracy(_maps(maps), _masks(masks), style)


def similarity(a: np.ndarray, b: np.ndarray, valid: Optional[np.ndarray] = None,
               top_fraction: float = 0.1, style: str = "signed") -> Dict[str, List[float]]:
    """Similarity of two sets of maps, image by image, on the pixels where ``valid`` is true
    (all by default): ``pearson``, ``spearman`` (average ranks for ties, as scipy),
    ``top_k_iou`` (IoU of the top ``top_fraction`` pixels of each map, ties by pixel index) and
    ``ssim`` (Wang et al. 2004: Gaussian window σ = 1.5, K₁ = 0.01, K₂ = 0.03, the joint
    value range of both maps, as skimage's ``structural_similarity`` with
    ``gaussian_weights=True``)."""
    return _native.similarity(_maps(a), _maps(b), None if valid is None else _masks(valid),
                              top_fraction, style)


def sparseness(maps: np.ndarray, epsilon: float = 1e-7, style: str = "signed") -> List[float]:
    """Sparseness (Chalasani et al. 2020) per image: the Gini index of ``|R| + epsilon``,
    ``Σ_k (2k − n − 1) a_(k) / (n Σ a)`` over the sorted values (Quantus 0.6's
    ``Sparseness``); 0 for a uniform map, higher is sparser."""
    return _native.sparseness(_maps(maps), epsilon, style)


def complexity(maps: np.ndarray, epsilon: float = 1e-12, style: str = "signed") -> List[float]:
    """Complexity (Bhatt et al. 2020) per image: the entropy ``−Σ P_i ln(P_i + epsilon)`` of
    ``P_i = |R_i| / Σ|R|`` (Quantus 0.6's ``Complexity``); ``ln n`` for a uniform map."""
    return _native.complexity(_maps(maps), epsilon, style)


def model_parameter_randomisation(model: Model, x: Any, method: str,
                                  target: Union[int, Sequence[int], None] = None,
                                  cascade: str = "top-down", include_batchnorm: bool = True,
                                  seed: int = 0, signed: bool = False, top_fraction: float = 0.1,
                                  fresh: Optional[Dict[str, np.ndarray]] = None,
                                  **options: Any) -> Dict[str, Any]:
    """Model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"),
    as the ``relevance sanity`` study runs it on each chunk of images.

    From the output layer down, each layer's parameters are replaced by fresh ones — keeping
    the earlier replacements (``cascade="top-down"``) or one layer alone
    (``"independent"``) — and the maps of ``method`` (a ``--method`` spec; ``options`` its
    flags) on the randomised model are compared with the original maps, image by image: Spearman
    rank correlation, SSIM and top-k IoU, of ``|maps|`` unless ``signed``. Fresh parameters are
    drawn from ``seed`` by the model's initialiser, or given as ``fresh`` (parameter name →
    array). Returns ``layers`` (in randomisation order), ``classes`` and ``spearman``, ``ssim``,
    ``top_k_iou`` as ``[layer][image]`` lists.
    """
    if fresh is not None:
        fresh = {k: np.asarray(v, dtype=np.float32) for k, v in fresh.items()}
    return _native.model_parameter_randomisation(
        model, x, method, target, cascade, include_batchnorm, seed, signed, top_fraction, fresh,
        **options)
