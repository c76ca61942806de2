"""Training throughput of PyTorch on the shapes of `examples/bench_train.rs`: full training steps
(train-mode forward, cross-entropy, backward, SGD with momentum) on random batches, 2 threads.

Run: python3 tools/bench_train_torch.py [arch ...] [--batch 32] [--size 64] [--steps 10]
"""
import argparse
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from fixtures_train import small_cnn  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("archs", nargs="*", default=["small_cnn", "resnet18"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    for arch in a.archs:
        model = small_cnn(10) if arch == "small_cnn" else getattr(torchvision.models, arch)(num_classes=10)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        labels = torch.arange(a.batch) % 10
        times = []
        for step in range(a.steps + 2):
            x = torch.randn(a.batch, 3, a.size, a.size)
            t = time.perf_counter()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), labels)
            loss.backward()
            opt.step()
            if step >= 2:
                times.append(time.perf_counter() - t)
        times.sort()
        med = times[len(times) // 2]
        print(f"torch {arch}: batch {a.batch} at {a.size}x{a.size}: {med * 1e3:.1f} ms/step "
              f"(median of {a.steps}), {a.batch / med:.0f} images/s")


if __name__ == "__main__":
    main()
