"""Reference values for `relevance::metrics`, computed by Quantus 0.6, scipy and scikit-image.

Writes `tests/fixtures/metrics/*.json` (read by `tests/metrics_*.rs`). Run from the repository root:

    python3 tools/fixtures_metrics.py

Everything is small: a tiny one-channel CNN (weights by the shared reference formula of
`tools/reference_weights.py`, so no weights are committed), two 16x16 images, random maps.
Quantus' own random draws (subsets, noise, the random class, re-initialised layers) are replayed
from the same seeds and stored, so the Rust side can use exactly the same ones; every replay is
checked here against Quantus' output before it is written.

Quantus conventions are set explicitly: `normalise=False` everywhere (its default normalises by the
maximum over the *whole batch*), `abs` as stated per metric.
"""
import json
import os
import sys
import warnings

import numpy as np
import scipy.ndimage
import scipy.stats
import skimage.filters
import skimage.metrics
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from reference_weights import load_reference_weights  # noqa: E402

warnings.filterwarnings("ignore")
import quantus  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "metrics")
H = W = 16


class Tiny(nn.Module):
    """conv1 (1→4, 3x3, pad 1) → ReLU → conv2 (4→8, 3x3, stride 2, pad 1) → ReLU → flatten → fc (512→3).
    Twin of `tiny_model()` in `tests/common_metrics/mod.rs`."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 3)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


def f32list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def f64list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def grad_explain(model, inputs, targets, **kwargs):
    """Gradient of the target logit with respect to the input (the explainer on both sides)."""
    x = torch.tensor(np.asarray(inputs), dtype=torch.float32, requires_grad=True)
    out = model(x)
    out[torch.arange(len(targets)), torch.as_tensor(np.asarray(targets))].sum().backward()
    return x.grad.detach().numpy()


def inputs():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    blob = np.exp(-((yy - 5.0) ** 2 + (xx - 10.0) ** 2) / 12.0)
    x = np.stack([blob + 0.3 * rng.random((H, W)), 1.0 - blob + 0.3 * rng.random((H, W))])
    x = x[:, None].astype(np.float32)  # (2, 1, 16, 16)
    a = rng.standard_normal((2, 1, H, W)).astype(np.float32)
    s = np.zeros((2, 1, H, W), dtype=bool)
    s[0, 0, 2:8, 7:13] = True
    s[1, 0, 9:15, 1:6] = True
    return x, a, s


def model_metrics(model, x, y, a):
    out = {}
    xs = torch.from_numpy(x)
    with torch.no_grad():
        out["logits"] = f32list(model(xs))

    # Pixel flipping: MoRF, 8 elements per step, baseline "black" (image minimum), softmax.
    pf = quantus.PixelFlipping(features_in_step=8, abs=False, normalise=False, perturb_baseline="black",
                               disable_warnings=True)
    out["pixel_flipping"] = f32list(pf(model=model, x_batch=x, y_batch=y, a_batch=a, softmax=True))

    # Region perturbation: 5x5 patches on the centred grid, 20 regions, MoRF and LeRF.
    for order in ["morf", "lerf"]:
        rp = quantus.RegionPerturbation(patch_size=5, regions_evaluation=20, order=order, abs=False,
                                        normalise=False, perturb_baseline="black", disable_warnings=True)
        out[f"region_{order}"] = f32list(rp(model=model, x_batch=x, y_batch=y, a_batch=a, softmax=True))

    # Faithfulness correlation: 20 runs of 32-pixel subsets, logits; subsets replayed from the seed.
    np.random.seed(7)
    fc = quantus.FaithfulnessCorrelation(nr_runs=20, subset_size=32, abs=False, normalise=False,
                                         perturb_baseline="black", return_aggregate=False,
                                         disable_warnings=True)
    out["faithfulness_correlation"] = f64list(fc(model=model, x_batch=x, y_batch=y, a_batch=a, softmax=False))
    np.random.seed(7)
    subsets = []
    for _ in range(20):
        subsets.append([np.random.choice(H * W, 32, replace=False) for _ in range(len(x))])
        # Quantus' baseline lookup draws a "uniform" baseline on every call, used or not.
        np.random.uniform(low=0.0, high=1.0, size=len(x))
    out["faithfulness_subsets"] = [[[int(i) for i in s] for s in run] for run in subsets]
    # replay check: recompute the correlation from the stored subsets
    with torch.no_grad():
        y0 = model(xs)[np.arange(len(x)), y].numpy()
        for b in range(len(x)):
            sums, drops = [], []
            for run in subsets:
                xp = x[b].reshape(-1).copy()
                xp[run[b]] = x[b].min()
                yp = model(torch.from_numpy(xp.reshape(1, 1, H, W)))[0, y[b]].item()
                sums.append(a[b].reshape(-1)[run[b]].sum())
                drops.append(y0[b] - yp)
            r = scipy.stats.pearsonr(sums, drops)[0]
            assert abs(r - out["faithfulness_correlation"][b]) < 1e-5, (r, out["faithfulness_correlation"][b])

    # Sensitivity: 10 uniform draws in [-0.1, 0.1], gradient explanations, relative to |Φ(x)|.
    a_grad = grad_explain(model, x, y)
    out["gradient_maps"] = f32list(a_grad)
    for name, cls in [("max_sensitivity", quantus.MaxSensitivity), ("avg_sensitivity", quantus.AvgSensitivity)]:
        np.random.seed(11)
        m = cls(nr_samples=10, lower_bound=0.1, abs=False, normalise=False, disable_warnings=True)
        out[name] = f64list(m(model=model, x_batch=x, y_batch=y, a_batch=a_grad, explain_func=grad_explain,
                              softmax=False))
    np.random.seed(11)
    noise = [np.random.uniform(low=-0.1, high=0.1, size=(len(x), H * W)) for _ in range(10)]
    out["sensitivity_noise"] = [[f32list(n[b]) for b in range(len(x))] for n in noise]
    # replay check (noise is float64 in Quantus; the fixture stores it as float32, close enough)
    for b in range(len(x)):
        vals = []
        for n in noise:
            xp = (x[b].reshape(-1) + n[b]).astype(np.float32).reshape(1, 1, H, W)
            d = grad_explain(model, xp, y[b:b + 1]).reshape(-1) - a_grad[b].reshape(-1)
            vals.append(np.linalg.norm(d) / np.linalg.norm(a_grad[b]))
        assert abs(max(vals) - out["max_sensitivity"][b]) < 1e-5 * max(1, max(vals))
        assert abs(np.mean(vals) - out["avg_sensitivity"][b]) < 1e-5 * max(1, np.mean(vals))

    # Random logit: Spearman between the target's gradient and another class's; the class replayed.
    rl = quantus.RandomLogit(num_classes=3, similarity_func=quantus.similarity_func.correlation_spearman,
                             seed=42, abs=False, normalise=False, disable_warnings=True)
    out["random_logit"] = f64list(rl(model=model, x_batch=x, y_batch=y, a_batch=a_grad, explain_func=grad_explain,
                                     softmax=False))
    np.random.seed(42)
    classes = np.stack([np.arange(3) for _ in range(len(x))])
    keep = np.ones_like(classes)
    keep[np.arange(len(x)), y] = 0
    idx = np.random.randint(0, 2, len(x))
    others = classes[keep.astype(bool)].reshape(len(x), -1)[np.arange(len(x)), idx]
    out["random_logit_classes"] = [int(c) for c in others]
    for b in range(len(x)):
        other = grad_explain(model, x[b:b + 1], others[b:b + 1]).reshape(-1)
        r = scipy.stats.spearmanr(a_grad[b].reshape(-1), other)[0]
        assert abs(r - out["random_logit"][b]) < 1e-6

    # Model-parameter randomisation: cascading top-down, |maps| by Spearman; fresh layers replayed.
    mprt = quantus.MPRT(similarity_func=quantus.similarity_func.correlation_spearman, layer_order="top_down",
                        seed=42, abs=True, normalise=False, disable_warnings=True)
    scores = mprt(model=model, x_batch=x, y_batch=y, a_batch=a_grad, explain_func=grad_explain, softmax=False)
    out["mprt"] = {k: f64list(v) for k, v in scores.items() if k != "original"}
    out["mprt_layers"] = [k for k in scores if k != "original"]
    fresh = {}
    torch_model = Tiny()
    torch_model.load_state_dict(model.state_dict())
    modules = [m for m in torch_model.named_modules() if hasattr(m[1], "reset_parameters")][::-1]
    for name, module in modules:
        torch.manual_seed(42 + 1)
        module.reset_parameters()
        for key, value in module.state_dict().items():
            fresh[f"{name}.{key}"] = {"shape": list(value.shape), "values": f32list(value)}
    out["mprt_fresh"] = fresh
    return out


def map_metrics(a, s):
    out = {}
    x = np.zeros((len(a), 1, H, W), dtype=np.float32)
    out["sparseness"] = f64list(quantus.Sparseness(abs=True, normalise=False, disable_warnings=True)(
        model=None, x_batch=x, y_batch=None, a_batch=a.copy()))
    out["complexity"] = f64list(quantus.Complexity(abs=True, normalise=False, disable_warnings=True)(
        model=None, x_batch=x, y_batch=None, a_batch=a.copy()))
    kw = dict(model=None, x_batch=x, y_batch=None, a_batch=a.copy(), s_batch=s.astype(np.float32))
    out["pointing_game"] = [bool(v) for v in quantus.PointingGame(abs=False, normalise=False,
                                                                   disable_warnings=True)(**kw)]
    out["relevance_mass_accuracy"] = f64list(quantus.RelevanceMassAccuracy(abs=False, normalise=False,
                                                                           disable_warnings=True)(**kw))
    out["relevance_rank_accuracy"] = f64list(quantus.RelevanceRankAccuracy(abs=False, normalise=False,
                                                                           disable_warnings=True)(**kw))
    # The pointing game must also hit somewhere: move image 1's maximum into its mask.
    b = a.copy()
    b[1, 0, 12, 3] = b.max() + 1.0
    out["maps_hit"] = f32list(b)
    out["pointing_game_hit"] = [bool(v) for v in quantus.PointingGame(abs=False, normalise=False,
                                                                       disable_warnings=True)(
        model=None, x_batch=x, y_batch=None, a_batch=b, s_batch=s.astype(np.float32))]
    return out


def similarity_metrics():
    """scipy and scikit-image on pairs of maps (float64 arithmetic on float32-representable values)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 24)).astype(np.float32)
    b = (0.6 * a + 0.8 * rng.standard_normal((20, 24))).astype(np.float32)
    # ties: quantise b to 6 levels
    ties = np.round(b * 2.0).astype(np.float32) / 2.0
    valid = np.ones((20, 24), dtype=bool)
    valid[:, 18:] = False
    valid[15:, :] = False
    a64, b64, t64 = a.astype(np.float64), b.astype(np.float64), ties.astype(np.float64)
    out = {"shape": [20, 24], "a": f32list(a), "b": f32list(b), "ties": f32list(ties),
           "valid": [bool(v) for v in valid.reshape(-1)]}
    out["pearson"] = float(scipy.stats.pearsonr(a64.ravel(), b64.ravel())[0])
    out["spearman"] = float(scipy.stats.spearmanr(a64.ravel(), b64.ravel())[0])
    out["spearman_ties"] = float(scipy.stats.spearmanr(a64.ravel(), t64.ravel())[0])
    out["pearson_valid"] = float(scipy.stats.pearsonr(a64[valid], b64[valid])[0])
    out["spearman_valid"] = float(scipy.stats.spearmanr(a64[valid], t64[valid])[0])
    rng_ = float(max(a64.max(), b64.max()) - min(a64.min(), b64.min()))
    out["ssim_gaussian"] = float(skimage.metrics.structural_similarity(
        a64, b64, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=rng_))
    out["ssim_uniform"] = float(skimage.metrics.structural_similarity(a64, b64, data_range=rng_))
    out["ssim_fixed_range"] = float(skimage.metrics.structural_similarity(
        a64, b64, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0))
    # Quantus' ssim wrapper (uniform 7x7, range of both) on 2-D maps equals skimage's default call
    out["ssim_quantus"] = float(quantus.similarity_func.ssim(a64, b64))
    # masked: skimage's SSIM map averaged where the whole 11x11 window is valid
    va, vb = a64[valid], b64[valid]
    rng_v = float(max(va.max(), vb.max()) - min(va.min(), vb.min()))
    _, smap = skimage.metrics.structural_similarity(a64, b64, gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=False, data_range=rng_v, full=True)
    eroded = scipy.ndimage.binary_erosion(valid, structure=np.ones((11, 11)), border_value=0)
    out["ssim_valid"] = float(smap[eroded].mean())
    out["otsu_a"] = float(skimage.filters.threshold_otsu(a64))
    out["otsu_b"] = float(skimage.filters.threshold_otsu(b64))
    return out


def rise_blur():
    """RISE's blur substrate (Petsiuk et al. 2018, `gkern(11, 5)` + `conv2d(padding=5)`)."""
    klen, nsig = 11, 5
    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = scipy.ndimage.gaussian_filter(inp, nsig)
    kern = np.zeros((3, 3, klen, klen))
    for c in range(3):
        kern[c, c] = k
    kern = torch.from_numpy(kern.astype("float32"))
    rng = np.random.default_rng(5)
    img = rng.standard_normal((1, 3, 14, 18)).astype(np.float32)
    blurred = F.conv2d(torch.from_numpy(img), kern, padding=klen // 2)
    return {"kernel": f64list(k), "image": f32list(img), "shape": [3, 14, 18], "blurred": f32list(blurred)}


def main():
    torch.manual_seed(0)
    model = load_reference_weights(Tiny())
    x, a, s = inputs()
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    y = np.array([pred[0], (pred[1] + 1) % 3])  # one predicted class, one not
    fixture = {"x": f32list(x), "maps": f32list(a), "masks": [bool(v) for v in s.reshape(-1)],
               "y": [int(v) for v in y], "shape": [2, 1, H, W]}
    fixture.update(model_metrics(model, x, y, a))
    fixture.update(map_metrics(a, s))
    write("quantus.json", fixture)
    write("similarity.json", similarity_metrics())
    write("rise_blur.json", rise_blur())


if __name__ == "__main__":
    main()
