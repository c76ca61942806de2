"""LRP parity of `relevance` on the imported torchvision ResNet-50 against zennit 1.0.0 (not run in CI: the model
is 100 MB and the reference takes a minute).

Builds torchvision's resnet50 (1000 classes) with the hashed reference weights of tools/reference_weights.py
(`load_random_reference_weights`: BatchNorm statistics pseudo-random), exports it with `torch.onnx.export` (opset 17),
and computes zennit 1.0.0's input relevance for the four composites (ResNetCanonizer; starting relevance one-hot ×
logit) on one 224² normal input, in float32 and float64. Then runs `examples/lrp_parity.rs` on the ONNX file, which
prints, per composite, max |ours − zennit| / max |zennit| and ΣR of ours and zennit's beside the logit.

Run: /tmp/z1venv/bin/python tools/parity_resnet50.py OUT_DIR   (OUT_DIR gets resnet50.onnx and resnet50_z1.safetensors)
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision
from safetensors.numpy import save_file
from zennit.version import __version__ as ZENNIT_VERSION

sys.path.insert(0, os.path.dirname(__file__))
from reference_weights import load_random_reference_weights  # noqa: E402
from fixtures_lrp import HIGH, LOW, lrp  # noqa: E402
from fixtures_lrp_zennit1 import composites, resnet_canonizer  # noqa: E402

assert ZENNIT_VERSION == "1.0.0", f"needs zennit 1.0.0, found {ZENNIT_VERSION}"


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = load_random_reference_weights(torchvision.models.resnet50()).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(50))
    onnx_path = os.path.join(out_dir, "resnet50.onnx")
    torch.onnx.export(model, x, onnx_path, opset_version=17, input_names=["input"], output_names=["logits"],
                      dynamo=False)
    with torch.no_grad():
        logits = model(x)
    targets = logits.argmax(1)
    out = {"input": x.numpy(), "logits": logits.numpy(), "targets": targets.float().numpy(),
           "zbox_low": LOW, "zbox_high": HIGH}
    for name, comp in composites(resnet_canonizer).items():
        out[f"lrp/{name}"] = lrp(model, comp, x, targets).numpy()
    model64 = load_random_reference_weights(torchvision.models.resnet50()).double().eval()
    for name, comp in composites(resnet_canonizer, torch.float64).items():
        out[f"lrp64/{name}"] = lrp(model64, comp, x.double(), targets).numpy()
        a, b = out[f"lrp/{name}"], out[f"lrp64/{name}"]
        print(f"zennit {name}: float32 vs float64 max rel {np.abs(a - b).max() / np.abs(b).max():.2e}, "
              f"sum R {b.sum():.6g} for logit {logits[0, targets[0]].item():.6g}")
    path = os.path.join(out_dir, "resnet50_z1.safetensors")
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}, path,
              metadata={"generator": "tools/parity_resnet50.py", "zennit": ZENNIT_VERSION})
    root = os.path.join(os.path.dirname(__file__), "..")
    subprocess.run(["cargo", "run", "--example", "lrp_parity", "--", onnx_path, path], cwd=root,
                   check=True)


if __name__ == "__main__":
    main()
