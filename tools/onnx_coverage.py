#!/usr/bin/env python3
"""ONNX coverage of torchvision's classification CNNs: export, import, compare logits.

For each architecture and exporter: build the torchvision model with random weights (seeded)
and randomised BatchNorm statistics, export it with torch.onnx at 224² into a temporary folder,
run `relevance predict --logits` on a fixed input (.npy, NCHW), and compare to torch's logits
(max |difference| / max |logit|). Prints a markdown table (architecture, exporter, imported?,
error, unsupported operators). Nothing exported is kept.

Usage:
  python3 tools/onnx_coverage.py [--relevance target/release/relevance]
                                 [--exporters opset13,opset17,dynamo] [ARCH ...]
  python3 tools/onnx_coverage.py --export ARCH OPSET OUT.onnx    (one model, plus OUT.input.npy
                                                                 and OUT.logits.npy)
Needs torch, torchvision, onnx (and onnxscript for dynamo=True).
"""
import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision

# Every torchvision classification CNN the coverage table lists, smallest first per family.
ARCHS = [
    "alexnet",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "googlenet", "inception_v3", "squeezenet1_0", "squeezenet1_1",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
    "regnet_x_400mf", "regnet_y_400mf", "regnet_x_1_6gf", "regnet_y_1_6gf",
    "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
]
EXPORTERS = {"opset13": 13, "opset17": 17, "dynamo": 18}
SIZE = 224


def build(arch, seed=0):
    """The architecture with seeded random weights and BatchNorm statistics away from 0/1."""
    torch.manual_seed(seed)
    kwargs = {"aux_logits": False, "init_weights": True} if arch in ("googlenet", "inception_v3") else {}
    model = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
                m.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
            # ConvNeXt's layer scale starts at 1e-6, which would hide every block.
            if hasattr(m, "layer_scale"):
                m.layer_scale.copy_(0.2 + 0.3 * torch.rand(m.layer_scale.shape, generator=g))
    return model


def fixed_input(seed=7):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, SIZE, SIZE, generator=g)


def export(model, x, path, exporter):
    """torch.onnx.export with the TorchScript exporter at an opset, or the dynamo exporter."""
    if exporter == "dynamo":
        torch.onnx.export(model, (x,), path, dynamo=True, external_data=False)
    else:
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=EXPORTERS[exporter],
                          input_names=["input"], output_names=["logits"])


def relevance_logits(binary, onnx_path, npy_path):
    """relevance's logits, or the one-line error it printed."""
    run = subprocess.run([binary, "predict", "--model", onnx_path, "--logits", npy_path],
                         capture_output=True, text=True)
    if run.returncode != 0:
        return None, (run.stderr.strip().splitlines() or ["(no message)"])[-1]
    return np.array(json.loads(run.stdout.strip().splitlines()[-1])["logits"], dtype=np.float64), None


def unsupported_ops(message):
    m = re.search(r"cannot import: (.*?) \(supported", message)
    return m.group(1) if m else ""


def short(message):
    """The error without its `error: <file>: ` prefix, fit for a table cell."""
    return re.sub(r"^error: [^:]+: ", "", message).replace("|", "/")[:160]


def check(binary, arch, exporter, folder):
    model = build(arch)
    x = fixed_input()
    with torch.no_grad():
        want = model(x).double().numpy().ravel()
    onnx_path = os.path.join(folder, f"{arch}.{exporter}.onnx")
    npy_path = os.path.join(folder, "input.npy")
    np.save(npy_path, x.numpy())
    try:
        # The dynamo exporter reports progress on stdout, which holds the table.
        with contextlib.redirect_stdout(sys.stderr):
            export(model, x, onnx_path, exporter)
    except Exception as e:  # noqa: BLE001 - the exporter's failure is a table cell
        return {"imported": "export failed", "error": "", "ops": type(e).__name__}
    got, message = relevance_logits(binary, onnx_path, npy_path)
    os.remove(onnx_path)
    if got is None:
        return {"imported": "no", "error": "", "ops": unsupported_ops(message) or short(message)}
    err = float(np.abs(got - want).max() / np.abs(want).max())
    return {"imported": "yes", "error": f"{err:.1e}", "ops": ""}


def export_one(arch, opset, out):
    model = build(arch)
    x = fixed_input()
    with torch.no_grad():
        want = model(x)
    export(model, x, out, "dynamo" if opset == "dynamo" else f"opset{opset}")
    base = out[: -len(".onnx")]
    np.save(base + ".input.npy", x.numpy())
    np.save(base + ".logits.npy", want.numpy())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--relevance", default="target/release/relevance")
    p.add_argument("--exporters", default="opset13,opset17,dynamo")
    p.add_argument("--export", nargs=3, metavar=("ARCH", "OPSET", "OUT"))
    p.add_argument("archs", nargs="*")
    a = p.parse_args()
    if a.export:
        export_one(*a.export)
        return
    archs = a.archs or ARCHS
    exporters = a.exporters.split(",")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {SIZE}², random "
          "weights, BatchNorm statistics randomised; error = max|Δlogit| / max|logit|\n")
    print("| architecture | exporter | imported | error | unsupported / message |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for arch in archs:
            for exporter in exporters:
                r = check(a.relevance, arch, exporter, folder)
                print(f"| {arch} | {exporter} | {r['imported']} | {r['error']} | {r['ops']} |",
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
