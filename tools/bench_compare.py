"""One run, both sides: `relevance bench` and the same workloads in PyTorch / pytorch-grad-cam / zennit / zennit-crp,
printed as one table with the ratios (ours / theirs; below 1 means we are faster).

Workloads per image at --size (default 224), class 0 explained, random input, fresh torchvision weights on both sides
(speed does not depend on them):
  forward   logits under no_grad                         (torch: model(x))
  gradient  forward + backward of logit 0 to the input   (torch autograd, parameters frozen)
  grad-cam  Grad-CAM at the default CAM layer             (pytorch-grad-cam GradCAM, ClassifierOutputTarget(0))
  lrp       LRP epsilon-plus-flat to the input            (zennit EpsilonPlusFlat + ResNetCanonizer /
                                                           SequentialMergeBatchNorm, registered once)
  crp32     32 single-channel conditional heatmaps        (zennit-crp CondAttribution, one call per image)
Peak memory: the process's VmHWM after resetting it (/proc/self/clear_refs) before each row, in both programs; the
torch figure includes Python and torch's libraries.

Run (release build first):
  cargo build --release
  python3 tools/bench_compare.py --arch resnet50,vgg16 --batch 1 --repeat 3 --threads 2
With --rounds K both sides run K times, alternating (ours, theirs, ours, ...): on a shared machine whose speed drifts
over minutes, each round's ratio compares the two under the same conditions. The table then gives the median time of
each side over the rounds and the median and range of the per-round ratios.
The Python packages are needed only here (never by the build or the tests).

On a GPU (tools/gpu-bench.sh runs this on a machine with one): --device cuda runs the Python side on CUDA (model,
input and every workload; timings end with torch.cuda.synchronize(), peak memory is torch's
max_memory_allocated) and relevance with --device gpu (its wgpu backend, a binary built with --features gpu).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torchvision

DEVICE = torch.device("cpu")
CRP_LAYER = {"resnet50": "layer3.0.conv2", "vgg16": "features.21"}
WORKLOADS = ["forward", "gradient", "grad-cam", "lrp", "crp32"]


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cam_layer(arch, model):
    if arch.startswith("resnet"):
        return model.layer4[-1]
    if arch.startswith("vgg"):
        return model.features[-1]
    raise SystemExit(f"no Grad-CAM layer known for {arch}")


def canonizer(arch):
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer

    return ResNetCanonizer() if arch.startswith("resnet") else SequentialMergeBatchNorm()


def sync():
    """Waits for queued CUDA work, so a timing covers it (nothing to wait for on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def torch_workload(name, arch, model, x):
    """A function running `name` once on batch x."""
    n = x.shape[0]
    if name == "forward":
        def run():
            with torch.no_grad():
                model(x)
        return run, None
    if name == "gradient":
        def run():
            xi = x.clone().requires_grad_(True)
            model(xi)[:, 0].sum().backward()
        return run, None
    if name == "grad-cam":
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        # As users run it: parameters trainable (pytorch-grad-cam back-propagates from the output
        # through the whole graph, weight gradients included).
        for p in model.parameters():
            p.requires_grad_(True)
        cam = GradCAM(model=model, target_layers=[cam_layer(arch, model)])
        targets = [ClassifierOutputTarget(0)] * n

        def frozen_again():
            for p in model.parameters():
                p.requires_grad_(False)
        return (lambda: cam(input_tensor=x, targets=targets)), frozen_again
    if name == "lrp":
        from zennit.composites import EpsilonPlusFlat

        composite = EpsilonPlusFlat(canonizers=[canonizer(arch)])
        context = composite.context(model)
        modified = context.__enter__()

        def run():
            xi = x.clone().requires_grad_(True)
            out = modified(xi)
            seed = torch.zeros_like(out)
            seed[:, 0] = out[:, 0]
            torch.autograd.grad(out, xi, grad_outputs=seed.detach())
        return run, lambda: context.__exit__(None, None, None)
    if name == "crp32":
        from crp.attribution import CondAttribution
        from zennit.composites import EpsilonPlusFlat

        attribution = CondAttribution(model)
        layer = CRP_LAYER[arch]
        conditions = [{layer: [c], "y": [0]} for c in range(32)]

        def run():
            for i in range(n):
                attribution(x[i:i + 1].clone().requires_grad_(True), conditions,
                            EpsilonPlusFlat(canonizers=[canonizer(arch)]))
        return run, None
    raise SystemExit(f"unknown workload {name}")


def torch_rows(args):
    torch.set_num_threads(args.threads)
    rows = {}
    for arch in args.arch:
        model = getattr(torchvision.models, arch)(num_classes=1000).eval().to(DEVICE)
        for p in model.parameters():
            p.requires_grad_(False)
        for batch in args.batch:
            x = torch.randn(batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(DEVICE)
            for w in args.workload:
                tracked = reset_peak()
                if DEVICE.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                run, cleanup = torch_workload(w, arch, model, x)
                repeat = args.repeat if w != "crp32" else max(1, args.repeat // 2)
                run()
                sync()
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    run()
                    sync()
                    times.append((time.perf_counter() - t0) * 1e3 / batch)
                if cleanup:
                    cleanup()
                if DEVICE.type == "cuda":
                    peak = torch.cuda.max_memory_allocated() / 2**20
                else:
                    peak = peak_mib() if tracked else float("nan")
                rows[(arch, w, batch)] = (statistics.median(times), peak)
                print(f"  torch {arch} {w} batch {batch}: {rows[(arch, w, batch)][0]:.1f} ms/image", file=sys.stderr)
    return rows


def rust_rows(args):
    cmd = [args.binary, "bench", "--json", "--arch", ",".join(args.arch), "--batch", ",".join(map(str, args.batch)),
           "--workload", ",".join(args.workload), "--size", str(args.size), "--repeat", str(args.repeat),
           "--threads", str(args.threads)] + [f"--winograd={args.winograd}"]
    if DEVICE.type == "cuda":
        cmd += ["--device", "gpu"]
    print("  " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            rows[(r["arch"], r["workload"], r["batch"])] = (r["ms_per_image"], r.get("peak_rss_mib") or float("nan"))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50,vgg16", type=lambda s: s.split(","))
    p.add_argument("--batch", default="1", type=lambda s: [int(b) for b in s.split(",")])
    p.add_argument("--workload", default=",".join(WORKLOADS), type=lambda s: s.split(","))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--winograd", choices=["off", "relevance", "on"], default="relevance",
                   help="where relevance runs 3x3 convolutions by Winograd (relevance --winograd=SCOPE)")
    p.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "relevance"))
    p.add_argument("--rounds", type=int, default=1,
                   help="run both sides this many times, alternating, and report per-round ratios")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: PyTorch, zennit and pytorch-grad-cam on CUDA, relevance with --device gpu")
    args = p.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    rounds = []
    for r in range(max(1, args.rounds)):
        if args.rounds > 1:
            print(f"round {r + 1} of {args.rounds}", file=sys.stderr)
        rounds.append((rust_rows(args), torch_rows(args)))
    cpu = os.cpu_count()
    nan = (float("nan"), float("nan"))
    if len(rounds) == 1:
        ours, theirs = rounds[0]
        print(f"| arch | workload | batch | relevance ms/image | Python ms/image | ratio | relevance peak MiB | Python peak MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for key in sorted(ours, key=lambda k: (k[0], k[2], WORKLOADS.index(k[1]))):
            a, w, b = key
            o, om = ours[key]
            t, tm = theirs.get(key, nan)
            print(f"| {a} | {w} | {b} | {o:.1f} | {t:.1f} | {o / t:.2f} | {om:.0f} | {tm:.0f} |")
    else:
        # Peaks from the first round: the Python process lives through every round, so its later resets start from
        # the memory earlier rounds left resident.
        print(f"| arch | workload | batch | relevance ms/image | Python ms/image | ratio (median of {len(rounds)} rounds) "
              f"| ratio range | relevance peak MiB (round 1) | Python peak MiB (round 1) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for key in sorted(rounds[0][0], key=lambda k: (k[0], k[2], WORKLOADS.index(k[1]))):
            a, w, b = key
            o = [ours[key] for ours, _ in rounds]
            t = [theirs.get(key, nan) for _, theirs in rounds]
            ratios = [oi[0] / ti[0] for oi, ti in zip(o, t)]
            med = statistics.median
            print(f"| {a} | {w} | {b} | {med(x[0] for x in o):.1f} | {med(x[0] for x in t):.1f} | {med(ratios):.2f} "
                  f"| {min(ratios):.2f}–{max(ratios):.2f} | {o[0][1]:.0f} | {t[0][1]:.0f} |")
    print(f"\n{args.threads} threads on both sides, {cpu} logical CPUs, torch {torch.__version__}, input {args.size}².")
    if DEVICE.type == "cuda":
        print(f"Device: {torch.cuda.get_device_name()} (PyTorch on CUDA, relevance --device gpu through wgpu); "
              "peak MiB: relevance's host RSS, torch's CUDA max_memory_allocated.")


if __name__ == "__main__":
    main()
