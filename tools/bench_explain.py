"""Per-image timings of pytorch-grad-cam's Grad-CAM and of a torch input gradient on ResNet-50 at
224x224 (CPU, 2 threads), to set beside `cargo bench --bench explain` (benches/explain.rs).

Run: python3 tools/bench_explain.py [--repeats 10] [--threads 2]
(torch's OpenMP threads spin at barriers: on a machine shared with other jobs, timings with 2 threads
suffer far more than with 1; compare both with RAYON_NUM_THREADS=1/2 on our side.)
"""
import argparse
import statistics
import time

import torch
import torchvision
from pytorch_grad_cam import GradCAM



def median_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)

    with torch.no_grad():
        fwd = median_ms(lambda: model(x), args.repeats)
    cam = GradCAM(model=model, target_layers=[model.layer4[-1]])
    gradcam = median_ms(lambda: cam(input_tensor=x, targets=None), args.repeats)

    def input_gradient():
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out[0, out[0].argmax()].backward()
        return xi.grad

    grad = median_ms(input_gradient, args.repeats)
    for p in model.parameters():
        p.requires_grad_(False)
    grad_frozen = median_ms(input_gradient, args.repeats)
    print(f"torch {torch.__version__}, {args.threads} threads, resnet50 224x224, batch 1 (median / min ms)")
    print(f"forward                        {fwd[0]:8.1f} {fwd[1]:8.1f}")
    print(f"grad-cam (pytorch-grad-cam)    {gradcam[0]:8.1f} {gradcam[1]:8.1f}")
    print(f"input gradient                 {grad[0]:8.1f} {grad[1]:8.1f}")
    print(f"input gradient, frozen weights {grad_frozen[0]:8.1f} {grad_frozen[1]:8.1f}")


if __name__ == "__main__":
    main()
