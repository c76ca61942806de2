"""Fixtures of the Python package's tests: for python/tests/test_from_torch.py a small
conv/BatchNorm/ReLU network with seeded random weights and BatchNorm statistics, exported to
ONNX with torch.onnx.export, one input and PyTorch's logits for it; for
python/tests/test_metrics_quantus.py the tiny CNN of tools/fixtures_metrics.py (the model
tests/fixtures/metrics/quantus.json was computed on, with the shared reference weights of
tools/reference_weights.py) exported to ONNX, so the package can load it.

    python tools/fixtures_python.py   # (torch and onnx) writes tests/fixtures/python/
"""

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "python"


def small_module():
    """Conv-BN-ReLU ×2, max pool, conv-BN-ReLU, global average pool, linear (seed 0, eval)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def tiny_metrics_cnn():
    """The `Tiny` network of tools/fixtures_metrics.py (conv1 1→4 3×3 pad 1 → ReLU → conv2
    4→8 3×3 stride 2 pad 1 → ReLU → flatten → fc 512→3) with the reference weights."""
    import sys

    import torch
    from torch import nn
    import torch.nn.functional as F

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_weights import load_reference_weights

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
            self.fc = nn.Linear(8 * 8 * 8, 3)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.relu(self.conv2(x))
            return self.fc(torch.flatten(x, 1))

    return load_reference_weights(Tiny())


def example_input():
    import torch

    return torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 16, 16))
                            .astype(np.float32))


def main():
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    net, x = small_module(), example_input()
    torch.onnx.export(net, (x[:1],), str(OUT / "small_bn.onnx"), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    np.save(OUT / "small_bn.input.npy", x.numpy())
    with torch.no_grad():
        np.save(OUT / "small_bn.logits.npy", net(x).numpy())
    tiny = tiny_metrics_cnn()
    torch.onnx.export(tiny, (torch.zeros(1, 1, 16, 16),), str(OUT / "tiny_metrics.onnx"),
                      input_names=["input"], output_names=["logits"], opset_version=17,
                      dynamo=False, dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    print("wrote", OUT)


if __name__ == "__main__":
    main()
