"""Reference values for ROAD (Rong et al. 2022), `relevance::metrics::road`, from the two
implementations users compare with: pytorch-grad-cam (pip `grad-cam` 1.5.4,
`pytorch_grad_cam.metrics.road`, the authors' imputer) and Quantus 0.6.0 (`quantus.ROAD`).

Writes `tests/fixtures/metrics/road.json` (read by `tests/metrics/metrics_road.rs`). Run from the
repository root in a virtual environment with torch, scipy, grad-cam==1.5.4 and quantus==0.6.0:

    python3 tools/fixtures_road.py

Both implementations add `noise * randn` to every imputed value from their own generator (torch's,
numpy's global one), which no other implementation can replay; so every reference value here is
computed with noise 0, where the imputation is the exact solution of the linear system. The Rust
tests check the noise separately by its distribution (mean 0, the given SD, independent per value).

Contents:
- `imputation`: a 3-channel 7x9 image (not square, so rows and columns cannot be swapped unseen),
  a mask of removed pixels, and the noiseless imputation by both implementations (checked equal
  here to 1e-6).
- `model`: the tiny one-channel CNN of `tools/fixtures_metrics.py` (reference weights) on eight
  16x16 images with random tie-free maps:
  - `gradcam_morf[p]` / `gradcam_lerf[p]`: pytorch-grad-cam's `RemoveMostRelevantFirst(p)` /
    `RemoveLeastRelevantFirst(p)` with a noiseless imputer inside `PerturbationConfidenceMetric`,
    target `ClassifierOutputTarget(y)` (the logit), i.e. logit after imputation minus before, for
    every image and p in 10..90 (`p` is the percentile *kept*: p % of the pixels stay);
  - `gradcam_removed_*`: the pixels it removed, per p a string of 0/1 over images × pixels (to
    check the selection by itself);
  - `quantus_accuracy`: Quantus' ROAD (MoRF, noise 0, `normalise=False`) accuracy per removed
    percentage, and `quantus_predicted`: the class predicted per image and percentage, replayed
    here from Quantus' own imputation function and checked against its accuracies.
"""
import json
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixtures_metrics import H, W, Tiny, f32list, write  # noqa: E402
from reference_weights import load_reference_weights  # noqa: E402

warnings.filterwarnings("ignore")
import quantus  # noqa: E402
from pytorch_grad_cam.metrics.perturbation_confidence import (  # noqa: E402
    PerturbationConfidenceMetric, RemoveLeastRelevantFirst, RemoveMostRelevantFirst)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from quantus.functions.perturb_func import noisy_linear_imputation  # noqa: E402

PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90]
QUANTUS_PERCENTAGES = [5, 15, 35, 55, 75, 95]
IMAGES = 8


def imputation_case():
    rng = np.random.default_rng(11)
    c, h, w = 3, 7, 9
    img = rng.standard_normal((c, h, w)).astype(np.float32)
    keep = (rng.random((h, w)) > 0.45).astype(np.float32)
    keep[2:5, 3:7] = 0.0  # a hole with no known pixel inside
    keep[0, 0] = 0.0  # a corner, whose neighbours are partly outside the image
    gradcam = NoisyLinearImputer(noise=0.0)(torch.from_numpy(img), torch.from_numpy(keep)).numpy()
    removed = np.flatnonzero(keep.reshape(-1) == 0)
    quantus_out = noisy_linear_imputation(arr=img, indices=removed, noise=0.0)
    assert np.abs(gradcam - quantus_out).max() < 1e-6, np.abs(gradcam - quantus_out).max()
    return {"shape": [c, h, w], "image": f32list(img), "removed": [bool(v) for v in keep.reshape(-1) == 0],
            "gradcam": f32list(gradcam), "quantus": f32list(quantus_out)}


def model_inputs():
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:H, 0:W]
    xs, maps = [], []
    for i in range(IMAGES):
        cy, cx = rng.uniform(3, 12, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 10.0)
        xs.append(blob + 0.3 * rng.random((H, W)) if i % 2 == 0 else 1.0 - blob + 0.3 * rng.random((H, W)))
        maps.append(blob + 0.2 * rng.standard_normal((H, W)))
    return (np.asarray(xs, dtype=np.float32)[:, None], np.asarray(maps, dtype=np.float32))


def gradcam_scores(model, x, maps, y, remover):
    metric = PerturbationConfidenceMetric(remover)
    targets = [ClassifierOutputTarget(int(k)) for k in y]
    return metric(torch.from_numpy(x), maps, targets, model)


def quantus_case(model, x, maps, y):
    road = quantus.ROAD(percentages=QUANTUS_PERCENTAGES, noise=0.0, abs=False, normalise=False,
                        disable_warnings=True)
    road(model=model, x_batch=x, y_batch=y, a_batch=maps[:, None], device="cpu")
    accuracy = [float(road.evaluation_scores[p]) for p in QUANTUS_PERCENTAGES]
    # Replay: the same imputation (Quantus' own function) and the model's arg-max.
    predicted = []
    for b in range(len(x)):
        order = np.argsort(-maps[b].reshape(-1))
        row = []
        for p in QUANTUS_PERCENTAGES:
            xp = noisy_linear_imputation(arr=x[b], indices=order[: int(H * W * p / 100)], noise=0.0)
            with torch.no_grad():
                row.append(int(model(torch.from_numpy(xp[None].astype(np.float32))).argmax(1)[0]))
        predicted.append(row)
    replayed = (np.asarray(predicted) == y[:, None]).mean(0)
    assert np.allclose(replayed, accuracy), (replayed, accuracy)
    return accuracy, predicted


def main():
    torch.manual_seed(0)
    model = load_reference_weights(Tiny()).eval()
    x, maps = model_inputs()
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    y = logits.argmax(1).numpy()
    out = {"x": f32list(x), "maps": f32list(maps), "y": [int(v) for v in y], "shape": [IMAGES, 1, H, W],
           "logits": f32list(logits), "percentiles": PERCENTILES}
    for name, cls in [("morf", RemoveMostRelevantFirst), ("lerf", RemoveLeastRelevantFirst)]:
        diffs, removed = [], []
        for p in PERCENTILES:
            remover = cls(p, NoisyLinearImputer(noise=0.0))
            diffs.append(f32list(gradcam_scores(model, x, maps, y, remover)))
            cams = torch.from_numpy(maps if name == "morf" else 1 - maps)
            keep = [(c < np.percentile(c.numpy(), p)).numpy() for c in cams]
            removed.append("".join("1" if v else "0" for k in keep for v in (~k).reshape(-1)))
        out[f"gradcam_{name}"] = diffs
        out[f"gradcam_removed_{name}"] = removed
    accuracy, predicted = quantus_case(model, x, maps, y)
    out["quantus_percentages"] = QUANTUS_PERCENTAGES
    out["quantus_accuracy"] = accuracy
    out["quantus_predicted"] = predicted
    out["imputation"] = imputation_case()
    write("road.json", out)


if __name__ == "__main__":
    main()
