"""Reference outputs for the explanation methods, written to tests/fixtures/methods/.

Models: torchvision resnet18 and vgg11 (10 classes) with the deterministic reference weights of
tools/reference_weights.py (Rust twin: relevance::graph::init::reference_params), on inputs given by
`reference_input` below (Rust twin in tests/methods_common/mod.rs), so neither weights nor inputs are
committed. References:

* CAM family: pytorch-grad-cam 1.5.7 itself (GradCAM, GradCAMPlusPlus, HiResCAM, XGradCAM, LayerCAM,
  ScoreCAM, EigenCAM with the sign-corrected projection, see below), targets ClassifierOutputTarget.
* Original CAM: sum_c W[t, c] A_c through pytorch-grad-cam's own ReLU + scale_cam_image.
* Guided backprop: pytorch-grad-cam's GuidedBackpropReLUModel (one image at a time, as it only
  explains batch row 0); Guided Grad-CAM: its product with the Grad-CAM map, as in the library's example.
* Gradient (in float64), Input x Gradient, Deconvnet (ReLUs replaced by an autograd Function whose backward is
  relu(grad)), Integrated Gradients (Captum's Gauss-Legendre rule, written out with torch autograd),
  Occlusion (a naive loop with Captum's window placement and averaging).
* The gradient-family parity test runs on reference_input + GRADIENT_INPUT_OFFSET, where no ReLU input
  is within float32 rounding of zero (see gradient_fixtures).
* Resizing: cv2.resize INTER_LINEAR and torch's UpsamplingBilinear2d on small random maps.
* Colormaps: matplotlib's viridis / inferno LUTs and zennit's bwr / coldnhot palettes.

Run: python3 tools/fixtures_methods.py   (a few seconds; needs torch, torchvision, grad-cam, zennit,
matplotlib, opencv — never needed at build or test time).
"""
import json
import os
import sys

import cv2
import matplotlib
import numpy as np
import torch
import torchvision
from pytorch_grad_cam import (EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM,
                              XGradCAM)
from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection, get_2d_projection_with_sign_correction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_weights import load_reference_weights  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "methods")
torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)


def reference_input(n, c, h, w):
    """x[i,ch,y,x] = 1.2 sin(0.11 y + 0.07 x (1 + 0.3 ch) + 1.3 i) + 0.6 cos(0.05 (y - x) + 0.9 ch + i),
    computed in float64 and rounded to float32."""
    i, ch, y, x = np.meshgrid(np.arange(n), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    v = 1.2 * np.sin(0.11 * y + 0.07 * x * (1 + 0.3 * ch) + 1.3 * i) + 0.6 * np.cos(0.05 * (y - x) + 0.9 * ch + i)
    return v.astype(np.float32)


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array, dtype=np.float32))


class SignCorrectedEigenCAM(EigenCAM):
    """EigenCAM whose SVD projection gets the library's own sign correction (Seg-Eigen-CAM, Eq. 13):
    plain EigenCAM keeps whatever sign LAPACK returns, which no other implementation can reproduce."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        return get_2d_projection_with_sign_correction(activations)


CAMS = {
    "grad-cam": GradCAM,
    "grad-cam-plus-plus": GradCAMPlusPlus,
    "hires-cam": HiResCAM,
    "xgrad-cam": XGradCAM,
    "layer-cam": LayerCAM,
    "eigen-cam": SignCorrectedEigenCAM,
}


def module_at(model, path):
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


@torch.no_grad()
def activation(model, x, layer):
    acts = []

    def hook(module, inputs, output):
        acts.append(output.detach().numpy().copy())

    handle = module_at(model, layer).register_forward_hook(hook)
    model(x)
    handle.remove()
    return acts[0]


def cams(prefix, model, x, targets, layer, names, meta):
    for name in names:
        cls = ScoreCAM if name == "score-cam" else CAMS[name]
        with cls(model=model, target_layers=[module_at(model, layer)]) as cam:
            if name == "score-cam":
                cam.batch_size = 64
            out = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
        save(f"{prefix}.{layer}.{name}", out)
    if "eigen-cam" in names:
        # Record how often LAPACK's sign agrees with the corrected one (for the report, not tested).
        a = activation(model, x, layer)
        plain = get_2d_projection(a)
        fixed = get_2d_projection_with_sign_correction(a)
        meta.setdefault("eigen_cam_lapack_sign_agrees", {})[f"{prefix}.{layer}"] = [
            bool(np.allclose(p, f)) for p, f in zip(plain, fixed)]


def original_cam(prefix, model, x, targets, layer, fc):
    a = activation(model, x, layer)
    w = module_at(model, fc).weight.detach().numpy()
    cam = np.einsum("nc,nchw->nhw", w[targets], a)
    cam = np.maximum(cam, 0)
    out = scale_cam_image(scale_cam_image(cam, (x.shape[-1], x.shape[-2])))
    save(f"{prefix}.{layer}.cam", out)


def target_logits(model, x, targets):
    out = model(x)
    return out[torch.arange(len(targets)), torch.tensor(targets)].sum()


def input_gradient(model, x, targets):
    x = x.clone().requires_grad_(True)
    target_logits(model, x, targets).backward()
    return x.grad.detach().numpy()


class DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


class DeconvReLUModule(torch.nn.Module):
    def forward(self, x):
        return DeconvReLU.apply(x)


def replace_relus(module, make):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, make())
        else:
            replace_relus(child, make)


def guided(prefix, model, x, targets, gradcam):
    rows = []
    for i, t in enumerate(targets):
        gb = GuidedBackpropReLUModel(model=model, device="cpu")(x[i:i + 1].clone(), target_category=t)
        rows.append(gb.transpose(2, 0, 1))
    gb = np.stack(rows)
    save(f"{prefix}.guided-backprop", gb)
    # pytorch-grad-cam's example: cam_mask = cv2.merge([grayscale_cam] * 3); cam_gb = cam_mask * gb.
    save(f"{prefix}.guided-grad-cam", gradcam[:, None, :, :] * gb)


def deconvnet(prefix, model, x, targets):
    import copy
    m = copy.deepcopy(model)
    replace_relus(m, DeconvReLUModule)
    save(f"{prefix}.deconvnet", input_gradient(m, x, targets))


def integrated_gradients(prefix, model, x, targets, steps):
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, step = 0.5 * (1 + nodes), 0.5 * weights  # Captum's gausslegendre on [0, 1]
    baseline = torch.zeros_like(x)
    total = torch.zeros_like(x)
    for a, w in zip(alphas, step):
        xs = (baseline + float(a) * (x - baseline)).requires_grad_(True)
        target_logits(model, xs, targets).backward()
        total += float(w) * xs.grad
    save(f"{prefix}.integrated-gradients", ((x - baseline) * total).numpy())


@torch.no_grad()
def occlusion(prefix, model, x, targets, window, stride):
    """Captum's Occlusion written out: windows start at k*stride for k < ceil((H - window)/stride) + 1,
    truncated at the border; each pixel gets the mean logit drop over the windows covering it."""
    n, c, hh, ww = x.shape
    base = model(x)[torch.arange(n), torch.tensor(targets)]
    total = torch.zeros_like(x)
    count = torch.zeros_like(x)
    ky = int(np.ceil((hh - window) / stride)) + 1
    kx = int(np.ceil((ww - window) / stride)) + 1
    for a in range(ky):
        for b in range(kx):
            mask = torch.zeros_like(x)
            mask[:, :, a * stride:a * stride + window, b * stride:b * stride + window] = 1
            out = model(x * (1 - mask))[torch.arange(n), torch.tensor(targets)]
            total += (base - out)[:, None, None, None] * mask
            count += mask
    save(f"{prefix}.occlusion", (total / count).numpy())


def model_fixtures(prefix, model, x, meta, layers, score_layer, first_target):
    with torch.no_grad():
        logits = model(x).numpy()
    preds = logits.argmax(1).tolist()
    # Image 0 explains `first_target` (chosen so that no CAM is all zero), the others their prediction.
    targets = [first_target] + preds[1:]
    meta[prefix] = {"shape": list(x.shape), "logits": logits.tolist(), "targets": targets,
                    "predicted": preds}
    names = list(CAMS)
    for layer in layers:
        cams(prefix, model, x, targets, layer, names, meta)
    if score_layer:
        cams(prefix, model, x, targets, score_layer, ["score-cam"], meta)
    # The plain gradient in float64: for VGG-11 with these weights the gradient is a small residual
    # of large cancellations, and torch's own float32 gradient is ~2% (relative L2) away from it.
    # That float32 noise floor is recorded so the test can tell imprecision from error.
    import copy
    g64 = input_gradient(copy.deepcopy(model).double(), x.double(), targets)
    g32 = input_gradient(model, x, targets)
    meta[prefix]["torch_f32_gradient_rel_l2"] = float(np.linalg.norm(g32 - g64) / np.linalg.norm(g64))
    save(f"{prefix}.gradient", g64)
    return targets


# Brightness offset of the input for the gradient-family parity fixtures ("resnet18.offset.*").
# A gradient through ReLUs is only defined where no ReLU input is zero, and float32 rounding
# (summation order: ~1e-7 here) decides the mask of any unit within that distance of zero: on
# reference_input itself four of the 565k ReLU inputs lie below 1e-6 in float64, and the smallest
# (-1.0e-7) flips with the summation order. With this offset the smallest is 1.46e-6, >10x the
# rounding, so every float32 implementation must agree on every mask; the margin is recorded.
GRADIENT_INPUT_OFFSET = 0.05


def min_relu_input(model, x):
    """Smallest |ReLU input| over a float64 forward pass (ReLUs made non-inplace for the hooks)."""
    import copy
    m = copy.deepcopy(model).double()
    seen = []
    for mod in m.modules():
        if isinstance(mod, torch.nn.ReLU):
            mod.inplace = False
            mod.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].abs().min().item()))
    with torch.no_grad():
        m(x.double())
    return min(seen)


def gradient_fixtures(prefix, model, x, meta, first_target, cam_layer):
    """Gradient, Input x Gradient, Deconvnet, Guided Backprop and Guided Grad-CAM on a well-conditioned input."""
    import copy
    margin = min_relu_input(model, x)
    assert margin > 1e-6, f"{prefix}: a ReLU input lies {margin:.1e} from zero; pick another offset"
    with torch.no_grad():
        preds = model(x).argmax(1).tolist()
    targets = [first_target] + preds[1:]
    meta[prefix] = {"shape": list(x.shape), "targets": targets, "offset": GRADIENT_INPUT_OFFSET,
                    "min_relu_input_f64": margin}
    save(f"{prefix}.gradient", input_gradient(copy.deepcopy(model).double(), x.double(), targets))
    save(f"{prefix}.input-x-gradient", x.numpy() * input_gradient(model, x, targets))
    deconvnet(prefix, model, x, targets)
    with GradCAM(model=model, target_layers=[module_at(model, cam_layer)]) as cam:
        gradcam = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    guided(prefix, model, x, targets, gradcam)


def resize_fixtures():
    rng = np.random.default_rng(5)
    for (sh, sw), (dh, dw) in [((3, 4), (64, 96)), ((4, 5), (72, 88)), ((7, 7), (50, 33)), ((5, 6), (5, 6))]:
        src = rng.random((sh, sw), dtype=np.float32)
        save(f"resize.src.{sh}x{sw}", src)
        save(f"resize.cv2.{sh}x{sw}-{dh}x{dw}", cv2.resize(src, (dw, dh)))
        up = torch.nn.UpsamplingBilinear2d(size=(dh, dw))(torch.from_numpy(src)[None, None])[0, 0]
        save(f"resize.align.{sh}x{sw}-{dh}x{dw}", up.numpy())


def colormap_fixtures():
    from zennit.image import palette
    for name in ["viridis", "inferno"]:
        save(f"cmap.{name}", np.round(matplotlib.colormaps[name](np.arange(256))[:, :3] * 255))
    for name in ["bwr", "coldnhot"]:
        save(f"cmap.{name}", palette(name).astype(np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = {}
    torch.manual_seed(0)

    resnet = load_reference_weights(torchvision.models.resnet18(num_classes=10))
    x = torch.from_numpy(reference_input(2, 3, 64, 96))
    targets = model_fixtures("resnet18", resnet, x, meta, ["layer4.1", "layer3.1"], "layer1.1", 3)
    original_cam("resnet18", resnet, x, targets, "layer4.1", "fc")
    save("resnet18.input-x-gradient", x.numpy() * input_gradient(resnet, x, targets))
    integrated_gradients("resnet18", resnet, x, targets, steps=16)
    occlusion("resnet18", resnet, x, targets, window=20, stride=12)
    deconvnet("resnet18", resnet, x, targets)
    gradcam = np.load(os.path.join(OUT, "resnet18.layer4.1.grad-cam.npy"))
    guided("resnet18", resnet, x, targets, gradcam)
    x_offset = torch.from_numpy(reference_input(2, 3, 64, 96) + np.float32(GRADIENT_INPUT_OFFSET))
    gradient_fixtures("resnet18.offset", resnet, x_offset, meta, 3, "layer4.1")

    vgg = load_reference_weights(torchvision.models.vgg11(num_classes=10))
    xv = torch.from_numpy(reference_input(1, 3, 72, 88))
    model_fixtures("vgg11", vgg, xv, meta, ["features.20", "features.19"], None, 9)

    resize_fixtures()
    colormap_fixtures()
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
