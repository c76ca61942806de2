#!/usr/bin/env python3
"""Saliency maps written by `relevance explain --method saliency` against torch in float64.

The ONNX model is converted with onnx2torch, its final Softmax replaced by the identity (relevance
explains the pre-softmax logit), cast to float64, and the gradient of the predicted class's logit
with respect to the input is compared with each `<stem>.saliency.npy` in the given map folders
(relative L2 error), beside torch's own float32 gradient for scale. Use inputs already at the model's input size (e.g. PNGs resized beforehand),
so both sides see the same pixels; the input is NHWC with values in [0, 1] (`"normalization":
{"kind": "unit"}` in the card).

    pip install torch onnx onnx2torch pillow numpy
    python3 tools/check_saliency_f64.py --model vgg16.onnx --images png/ --maps maps-a maps-b
"""
import argparse
import glob
import os

import numpy as np
import onnx
import onnx2torch
import torch
from PIL import Image


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True, help="folder of images at the model's input size")
    ap.add_argument("--maps", nargs="+", required=True, help="folders written by relevance explain")
    args = ap.parse_args()
    def load():
        model = onnx2torch.convert(onnx.load(args.model)).eval()
        for name, module in list(model.named_modules()):
            if type(module).__name__ == "Softmax":
                setattr(model, name, torch.nn.Identity())
        return model

    model, model32 = load().double(), load().float()
    for path in sorted(glob.glob(os.path.join(args.images, "*"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        x = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
        t = torch.tensor(x[None], requires_grad=True)
        logits = model(t)
        cls = int(logits.argmax())
        logits[0, cls].backward()
        ref = t.grad[0].numpy().transpose(2, 0, 1)
        t32 = torch.tensor(x[None], dtype=torch.float32, requires_grad=True)
        model32(t32)[0, cls].backward()
        g32 = t32.grad[0].numpy().astype(np.float64).transpose(2, 0, 1)
        errs = [f"torch float32: {np.linalg.norm(g32 - ref) / np.linalg.norm(ref):.2e}"]
        for folder in args.maps:
            ours = np.load(os.path.join(folder, f"{stem}.saliency.npy")).astype(np.float64)
            errs.append(f"{folder}: {np.linalg.norm(ours - ref) / np.linalg.norm(ref):.2e}")
        print(f"{stem} (class {cls}) rel. L2 vs float64: " + ", ".join(errs))


if __name__ == "__main__":
    main()
