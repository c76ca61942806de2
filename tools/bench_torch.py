"""The `relevance bench` workloads in PyTorch, printed as the same table.

  forward   logits of the batch under torch.no_grad(), model in eval mode
  gradient  forward with an input that requires grad, then logits[i, 0].sum().backward(): the
            input gradient of one logit per image; parameters do not require grad, so autograd
            computes no weight gradients (what an explanation needs, and torch's fastest way)

Per-image time = median over --repeat timed runs (after --warmup untimed ones) / batch size.
Peak MiB = VmHWM of /proc/self/status after resetting it (/proc/self/clear_refs) at the row's
start: the whole process, Python and torch's libraries (~300 MiB) included.

  python3 tools/bench_torch.py --arch resnet50,vgg16 --batch 1,8 --size 224 --repeat 5
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_zoo import build  # noqa: E402


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mib():
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return None


def forward(model, x):
    with torch.no_grad():
        model(x)


def gradient(model, x):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    logits[:, 0].sum().backward()


WORKLOADS = {"forward": forward, "gradient": gradient}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet50,vgg16")
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--workload", default="forward,gradient")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.json:
        print(
            f"torch {torch.__version__} · torchvision {torchvision.__version__} · {torch.get_num_threads()} threads"
            f" · input {args.size}×{args.size} · median of {args.repeat} runs after {args.warmup} warm-up"
        )
        print(f"{'arch':<16} {'workload':<9} {'batch':>5} {'ms/image':>12} {'min ms/img':>12} {'peak MiB':>10}")
    for arch in args.arch.split(","):
        model = build(arch, args.classes).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        for batch in map(int, args.batch.split(",")):
            x = torch.randn(batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
            for name in args.workload.split(","):
                run = WORKLOADS[name]
                tracked = reset_peak()
                for _ in range(args.warmup):
                    run(model, x)
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    run(model, x)
                    times.append((time.perf_counter() - start) * 1e3 / batch)
                peak = peak_mib() if tracked else None
                row = {
                    "arch": arch,
                    "workload": name,
                    "batch": batch,
                    "size": args.size,
                    "ms_per_image": statistics.median(times),
                    "min_ms_per_image": min(times),
                    "repeat": args.repeat,
                    "peak_rss_mib": peak,
                }
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    peak_s = f"{peak:.0f}" if peak is not None else "-"
                    print(
                        f"{arch:<16} {name:<9} {batch:>5} {row['ms_per_image']:>12.2f} "
                        f"{row['min_ms_per_image']:>12.2f} {peak_s:>10}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
