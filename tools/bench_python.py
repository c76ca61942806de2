"""Overhead of calling the engine through Python: `relevance bench`'s LRP workload
(epsilon-plus-flat, class 0, standard-normal batch, fresh weights) against the same call through
the `relevance` package (`Model.explain`, the method prepared once and cached), alternating the
two sides over rounds on the same machine.

    python tools/bench_python.py --bin target/release/relevance --arch resnet50 --batch 8
(the package installed in that Python: `maturin develop --release` in python/, or the wheel).
"""
import argparse
import json
import statistics
import subprocess
import time

import numpy as np

import relevance


def rust_ms_per_image(binary, arch, batch, repeat, threads):
    cmd = [binary, "bench", "--arch", arch, "--batch", str(batch), "--workload", "lrp",
           "--repeat", str(repeat), "--warmup", "1", "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return rows[0]["ms_per_image"]


def python_ms_per_image(model, x, repeat):
    model.explain(x, "lrp:epsilon-plus-flat", target=0)  # warm-up: prepares and caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        model.explain(x, "lrp:epsilon-plus-flat", target=0)
        times.append(time.perf_counter() - start)
    # the median, as `relevance bench` reports it
    return statistics.median(times) * 1000 / x.shape[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/relevance")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int)
    a = p.parse_args()
    model = relevance.init(a.arch, num_classes=1000)
    x = np.random.default_rng(0).standard_normal((a.batch, 3, 224, 224)).astype(np.float32)
    ratios = []
    for r in range(a.rounds):
        ours = rust_ms_per_image(a.bin, a.arch, a.batch, a.repeat, a.threads)
        py = python_ms_per_image(model, x, a.repeat)
        ratios.append(py / ours)
        print(f"round {r + 1}: rust {ours:.1f} ms/image, python {py:.1f} ms/image, "
              f"overhead {100 * (py / ours - 1):+.1f} %", flush=True)
    print(f"median overhead {100 * (statistics.median(ratios) - 1):+.1f} % "
          f"({a.arch} LRP epsilon-plus-flat, batch {a.batch})")


if __name__ == "__main__":
    main()
