"""Quickstart: explain four brain MRIs with Grad-CAM and LRP, measure insertion/deletion of
both maps, save an overlay.

    export RELEVANCE_DATA=$(tools/fetch-data.sh)   # the brain-MRI VGG16 and 17 MRIs
    python examples/python/quickstart.py [OUT_DIR]
"""

import os
import sys
from pathlib import Path

import numpy as np

import relevance

data = Path(os.environ.get("RELEVANCE_DATA", ".cache/data")) / "brain-mri"
out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-output")
out.mkdir(parents=True, exist_ok=True)

model = relevance.load(data / "vgg16.onnx")  # the card beside it: 240², /255, NHWC export
scans = [data / "images" / f"Te-{n}.jpg" for n in ("gl_0010", "me_0016", "no_0021", "pi_0014")]
probs = model.predict(scans)
for scan, p in zip(scans, probs):
    print(f"{scan.name}: {model.classes[p.argmax()]} ({p.max():.3f})")

# model, method, target -> array (as the CLI's .npy files)
cam = model.explain(scans, "grad-cam", target="pred")             # [4, 240, 240] in [0, 1]
lrp = model.explain(scans, "lrp:epsilon-plus-flat", target="pred")  # [4, 3, 240, 240]
print("grad-cam", cam.shape, "lrp", lrp.shape)

# insertion / deletion (RISE's conventions with 10 % steps, to stay quick): area under the
# predicted class's probability as pixels are inserted into a blurred image / set to 0, most
# relevant first
for name, maps in (("grad-cam", cam), ("lrp", lrp)):
    style = "unit" if name == "grad-cam" else "signed"
    scores = relevance.metrics.insertion_deletion(model, scans, maps, style=style, step="0.1")
    print(f"{name}: insertion AUC {np.mean(scores['insertion']):.3f}, "
          f"deletion AUC {np.mean(scores['deletion']):.3f}")

pictures = model.input_images(scans)
drawn = relevance.render.overlay(pictures[0], lrp[0], style="signed")
np.save(out / "overlay.npy", drawn)
try:
    from PIL import Image
    Image.fromarray(drawn).save(out / "overlay.png")
    print("wrote", out / "overlay.png")
except ImportError:
    print("wrote", out / "overlay.npy", "(pip install pillow to get a PNG)")
