#!/usr/bin/env python3
"""ONNX coverage of the Keras applications: export with tf2onnx, import, compare logits.

For each application: build it with seeded random weights (`weights=None`, no classifier
softmax, so the comparison is on logits) and randomised BatchNormalization statistics, export
it as a SavedModel and convert that with tf2onnx (NHWC input 1×224×224×3) at each opset,
run `relevance predict --logits` on a fixed input (.npy, NCHW: the importer turns tf2onnx's
NHWC input and its transpose into an NCHW graph input), and compare to Keras's logits
(max |difference| / max |logit|). Prints a markdown table. Nothing exported is kept, except
with --keep DIR.

Usage:
  python3 tools/keras_coverage.py [--relevance target/release/relevance] [--opsets 13,17]
                                  [--keep DIR] [APP ...]
Needs tensorflow (or tensorflow-cpu), keras, tf2onnx and onnx from PyPI.
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

APPS = ["VGG16", "ResNet50", "ResNet50V2", "Xception", "InceptionV3", "DenseNet121",
        "MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny"]
SIZE = 224


def build(name, seed=0):
    """The application with seeded random weights and BatchNorm statistics away from 0/1."""
    keras.utils.set_random_seed(seed)
    kwargs = {"weights": None, "classifier_activation": None, "input_shape": (SIZE, SIZE, 3)}
    if name.startswith(("MobileNetV3", "EfficientNetV2", "ConvNeXt")):
        # Preprocessing inside the model (EfficientNet V1 always has it), as users load them.
        kwargs["include_preprocessing"] = True
    model = getattr(keras.applications, name)(**kwargs)
    rng = np.random.default_rng(seed + 1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(0.1 * rng.standard_normal(c).astype("float32"))
            layer.moving_variance.assign((0.5 + rng.random(c)).astype("float32"))
            if layer.gamma is not None:
                layer.gamma.assign((0.8 + 0.4 * rng.random(c)).astype("float32"))
            if layer.beta is not None:
                layer.beta.assign(0.1 * rng.standard_normal(c).astype("float32"))
        # ConvNeXt's layer scale starts at 1e-6, which would hide every block.
        if "layer_scale" in layer.name and layer.weights:
            w = layer.weights[0]
            w.assign((0.2 + 0.3 * rng.random(w.shape)).astype("float32"))
    return model


def fixed_input(seed=7):
    """NHWC pixels in [0, 255] (what the applications with built-in preprocessing expect;
    the others see large but harmless values)."""
    rng = np.random.default_rng(seed)
    return (255 * rng.random((1, SIZE, SIZE, 3))).astype("float32")


def export(model, path, opset, folder):
    """Keras 3's documented route: `model.export` as a SavedModel, then tf2onnx's converter.
    (tf2onnx's `from_function` leaves the Normalization layers' constants as extra graph inputs,
    and `from_keras` does not accept Keras 3 models.)"""
    saved = os.path.join(folder, "saved_model")
    with contextlib.redirect_stdout(sys.stderr):
        model.export(saved, format="tf_saved_model", verbose=False)
    run = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved,
                          "--opset", str(opset), "--output", path],
                         capture_output=True, text=True)
    shutil.rmtree(saved, ignore_errors=True)
    if run.returncode != 0 or not os.path.exists(path):
        raise RuntimeError(f"tf2onnx exit {run.returncode}")


def relevance_logits(binary, onnx_path, npy_path):
    """relevance's logits, or the one-line error it printed."""
    run = subprocess.run([binary, "predict", "--model", onnx_path, "--logits", npy_path],
                         capture_output=True, text=True)
    if run.returncode != 0:
        return None, (run.stderr.strip().splitlines() or ["(no message)"])[-1]
    return np.array(json.loads(run.stdout.strip().splitlines()[-1])["logits"], dtype=np.float64), None


def short(message):
    """The error without its `error: <file>: ` prefix, fit for a table cell."""
    m = re.search(r"cannot import: (.*?) \(supported", message)
    return (m.group(1) if m else re.sub(r"^error: [^:]+: ", "", message)).replace("|", "/")[:200]


def check(binary, name, opsets, folder, keep):
    model = build(name)
    x = fixed_input()
    want = np.asarray(model(x, training=False), dtype=np.float64).ravel()
    npy_path = os.path.join(folder, "input.npy")
    np.save(npy_path, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    rows = []
    for opset in opsets:
        onnx_path = os.path.join(keep or folder, f"{name}.opset{opset}.onnx")
        try:
            export(model, onnx_path, opset, folder)
        except Exception as e:  # noqa: BLE001 - the exporter's failure is a table cell
            rows.append((opset, "export failed", "", str(e) or type(e).__name__))
            continue
        got, message = relevance_logits(binary, onnx_path, npy_path)
        if not keep:
            os.remove(onnx_path)
        if got is None:
            rows.append((opset, "no", "", short(message)))
            continue
        if got.shape != want.shape:
            rows.append((opset, "no", "", f"{got.size} logits for Keras's {want.size}"))
            continue
        err = float(np.abs(got - want).max() / np.abs(want).max())
        rows.append((opset, "yes", f"{err:.1e}", ""))
    if keep:
        np.save(os.path.join(keep, f"{name}.input.npy"), np.load(npy_path))
        np.save(os.path.join(keep, f"{name}.logits.npy"), want.astype("float32"))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--relevance", default="target/release/relevance")
    p.add_argument("--opsets", default="13,17")
    p.add_argument("--keep", metavar="DIR", help="keep the exported models and inputs here")
    p.add_argument("apps", nargs="*")
    a = p.parse_args()
    opsets = [int(o) for o in a.opsets.split(",")]
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, tf2onnx {tf2onnx.__version__}, "
          f"{SIZE}², random weights, BatchNorm statistics randomised, no classifier softmax; "
          "error = max|Δlogit| / max|logit|\n")
    print("| application | opset | imported | error | unsupported / message |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in a.apps or APPS:
            for opset, imported, err, message in check(a.relevance, name, opsets, folder, a.keep):
                print(f"| {name} | {opset} | {imported} | {err} | {message} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
