"""Parity fixtures for the built-in model zoo (tests/graph/zoo_parity.rs).

For every zoo architecture this script builds torchvision 0.29's model (small_cnn: the plain
PyTorch network below, the twin of src/graph/zoo/small_cnn.rs), and writes

  tests/fixtures/zoo/shapes.json        {arch: {state-dict key: shape}} for every architecture
                                        (1000 classes, num_batches_tracked left out);
  tests/fixtures/zoo/init_stats.json    {arch: {key: [mean, std]}} of torchvision's own random
                                        initialisation (tensors of >= 1024 elements);
  tests/fixtures/zoo/<arch>.safetensors for the architectures run in the test: `input`
                                        [2, 3, 64, 64], `logits` [2, 10] and `grad`, the gradient
                                        of logit `targets[i]` (the (i+1)-th largest) of image i with
                                        respect to its input (torch autograd), and `cam`, the
                                        first 8 channels of the usual class-activation layer's
                                        output (CAM_LAYER below); computed in float64 (see
                                        `parity`) and stored as float32, in eval mode, with
                                        the hashed reference weights of
                                        tools/reference_weights.py
                                        (`load_random_reference_weights`: with the sine
                                        formula there, deep networks' outputs barely depend
                                        on their input; see its comment).

Run from the repository root:  python3 tools/fixtures_zoo.py
"""
import json
import os
import sys

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_weights import load_random_reference_weights  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "zoo")
NUM_CLASSES = 10
INPUT_SHAPE = (2, 3, 64, 64)


def small_cnn(num_classes: int, in_channels: int = 3) -> nn.Module:
    """4 x [conv3x3 (no bias) - BN - ReLU], 2x2 max pool after the first three, global average
    pool, flatten, dropout 0.2, linear; names as src/graph/zoo/small_cnn.rs."""
    layers = []
    c = in_channels
    for i, w in enumerate([16, 32, 64, 128]):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        if i < 3:
            layers.append(nn.MaxPool2d(2, 2))
        c = w
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(c, num_classes))
    model.forward = lambda x: model.classifier(torch.flatten(model.avgpool(model.features(x)), 1))
    return model


def build(arch: str, num_classes: int) -> nn.Module:
    if arch == "small_cnn":
        return small_cnn(num_classes)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


ALL = ["small_cnn", "vgg11", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50"] + [
    f"efficientnet_b{i}" for i in range(8)
] + ["densenet121", "mobilenet_v2"]

# Run end to end in the test (the other EfficientNets share their code with b0 and b3).
RUN = [a for a in ALL if not a.startswith("efficientnet_b") or a in ("efficientnet_b0", "efficientnet_b3")]


# The module pytorch-grad-cam users target, by its path; DenseNet's is the ReLU that
# DenseNet.forward applies to `features` (functional, so it is hooked at `features`).
CAM_LAYER = {
    "small_cnn": "features.14",
    "vgg11": "features.19",
    "vgg16": "features.29",
    "vgg16_bn": "features.42",
    "resnet18": "layer4.1",
    "resnet34": "layer4.2",
    "resnet50": "layer4.2",
    "efficientnet_b0": "features.8",
    "efficientnet_b3": "features.8",
    "densenet121": "features",
    "mobilenet_v2": "features.18",
}


def shapes() -> dict:
    out = {}
    for arch in ALL:
        with torch.device("meta"):
            model = build(arch, 1000)
        out[arch] = {
            k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
        }
    return out


def init_stats() -> dict:
    """{arch: {key: [mean, std]}} of torchvision's own initialisation, for every tensor of at
    least 1024 elements of the architectures run in the test (10 classes; not vgg16 and
    vgg16_bn, whose 120M classifier weights take long to draw and share vgg11's code)."""
    torch.manual_seed(0)
    out = {}
    for arch in RUN:
        if arch in ("vgg16", "vgg16_bn"):
            continue
        model = build(arch, NUM_CLASSES)
        out[arch] = {
            k: [round(v.double().mean().item(), 6), round(v.double().std().item(), 6)]
            for k, v in model.state_dict().items()
            if v.numel() >= 1024 and v.is_floating_point()
        }
    return out


def run(model: nn.Module, arch: str, x: torch.Tensor, targets=None):
    """Logits, CAM-layer activation (first 8 channels), targets and input gradient."""
    x = x.clone().requires_grad_(True)
    seen = {}

    def keep(_module, _inputs, out):  # returns None, so the output stays as it is
        seen["cam"] = out.detach().clone()

    hook = model.get_submodule(CAM_LAYER[arch]).register_forward_hook(keep)
    logits = model(x)
    hook.remove()
    cam = seen["cam"][:, :8]
    if arch == "densenet121":
        cam = torch.relu(cam)
    if targets is None:
        # Image i explains its (i+1)-th most likely class, so that the images' targets differ.
        order = logits.detach().argsort(dim=1, descending=True)
        targets = order[torch.arange(x.shape[0]), torch.arange(x.shape[0])]
    logits[torch.arange(x.shape[0]), targets].sum().backward()
    return logits.detach(), cam, targets, x.grad.detach()


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def parity(arch: str) -> dict:
    """The reference is computed in float64: the weights and the input are float32 values, so
    this is the exact result of the float32-specified model, which any float32 implementation
    (torch's own included) approximates to ~1e-6.

    One thing float32 cannot approximate is a ReLU (ReLU6, max-pool) decision within rounding of
    its kink: a pre-activation of -1.5e-6 in float64 may come out +2e-7 in float32 (measured on
    densenet121 with input seed 0, in torch float32 and in ours alike), which switches that
    unit's gradient path and moves the input gradient by 5e-3 (relative L2). Such inputs are
    skipped: the input is the first seed's for which torch's float32 gradient agrees with the
    float64 one to 1e-5, i.e. no decision of torch's float32 pass is on the wrong side."""
    model = load_random_reference_weights(build(arch, NUM_CLASSES))
    for seed in range(20):
        x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(seed))
        logits, cam, targets, grad = run(model.double(), arch, x.double())
        grad32 = run(model.float(), arch, x, targets)[3]
        if rel_l2(grad32, grad) < 1e-5:
            break
        print(f"{arch}: seed {seed} skipped, torch float32 gradient {rel_l2(grad32, grad):.1e} off float64")
    print(
        f"{arch:16s} seed {seed}  max|logit| {logits.abs().max().item():10.4g}  "
        f"|grad| {grad.norm().item():10.4g}  targets {targets.tolist()}"
    )
    f32 = lambda t: t.detach().float().contiguous()  # noqa: E731
    return {
        "input": x.contiguous(),
        "logits": f32(logits),
        "grad": f32(grad),
        "targets": targets.to(torch.int64).contiguous(),
        "cam": f32(cam),
    }


def main() -> None:
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "shapes.json"), "w") as f:
        json.dump(shapes(), f, separators=(",", ":"))
    with open(os.path.join(OUT, "init_stats.json"), "w") as f:
        json.dump(init_stats(), f, separators=(",", ":"))
    only = sys.argv[1:]
    for arch in RUN:
        if only and arch not in only:
            continue
        tensors = parity(arch)
        save_file(tensors, os.path.join(OUT, f"{arch}.safetensors"), metadata={"torchvision": torchvision.__version__})


if __name__ == "__main__":
    main()
