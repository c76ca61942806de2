"""Reference timings for `examples/bench_lrp.rs`: zennit 0.4.6 EpsilonPlusFlat and zennit-crp 0.6 conditional heatmaps
on torchvision resnet50 and vgg16 at 224x224, batch 1, CPU, torch.set_num_threads(2).

Per image: forward + LRP backward to the input with the composite registered once beforehand (zennit's Gradient
attributor does exactly this; starting relevance one-hot x logit). CRP: CondAttribution on one image with 32 single-channel concepts at one layer in one call
(zennit-crp repeats the image 32 times, one concept per row; it registers the composite inside every call, which is
part of its cost). Prints the median of `--repeats` runs after one warm-up.

Run: python3 tools/bench_lrp_torch.py [--repeats 5]
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torchvision
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer
from crp.attribution import CondAttribution

sys.path.insert(0, os.path.dirname(__file__))
from reference_weights import load_reference_weights  # noqa: E402


def timed(fn, repeats):
    """Median wall time and median CPU time (user + system of this process) after one warm-up; on a shared machine
    the CPU time measures the work done whatever the wall clock says."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def lrp_once(modified, x):
    """Forward + LRP backward with the composite already registered on `modified` (zennit's usual use: one
    registration, many images)."""
    x = x.clone().requires_grad_(True)
    out = modified(x)
    target = out.argmax(1)
    seed = torch.zeros_like(out)
    seed[0, target] = out[0, target]
    (rel,) = torch.autograd.grad(out, x, grad_outputs=seed.detach())
    return rel


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for name, make, canonizer, crp_layer in [
        ("resnet50", torchvision.models.resnet50, ResNetCanonizer, "layer3.0.conv2"),
        ("vgg16", torchvision.models.vgg16, SequentialMergeBatchNorm, "features.21"),
    ]:
        model = load_reference_weights(make()).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            fwd = timed(lambda: model(x), args.repeats)
        with EpsilonPlusFlat(canonizers=[canonizer()]).context(model) as modified:
            lrp = timed(lambda: lrp_once(modified, x), args.repeats)
        with torch.no_grad():
            target = int(model(x).argmax())
        attribution = CondAttribution(model)
        conditions = [{crp_layer: [c], "y": [target]} for c in range(32)]

        def crp():
            attribution(x.clone().requires_grad_(True), conditions, EpsilonPlusFlat(canonizers=[canonizer()]))

        crp_time = timed(crp, max(1, args.repeats // 2))
        print(f"{name}: wall / CPU time: forward {fwd[0]:.0f} / {fwd[1]:.0f} ms, "
              f"zennit EpsilonPlusFlat {lrp[0]:.0f} / {lrp[1]:.0f} ms per image, "
              f"zennit-crp 32 concepts at {crp_layer} {crp_time[0]:.0f} / {crp_time[1]:.0f} ms")


if __name__ == "__main__":
    main()
