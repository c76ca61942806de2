#!/usr/bin/env python3
"""Times two `relevance` binaries (before / after a change) side by side with `relevance bench`.

The two binaries run alternately, round after round (before, after, after, before, …, so neither
side always runs first), each round one `relevance bench --json` call per binary over the same
architectures, workloads and batch sizes. For every row the table gives each side's per-round
medians, the ratio of the fastest rounds (after / before: the fastest round is the one least
disturbed by anything else on the machine) and the ratio of the rounds' medians. Release builds only; keep other work off the cores.

    python3 tools/bench_before_after.py BEFORE AFTER [--rounds 4] [--arch resnet50,vgg16] \
        [--workload forward,grad-cam,lrp] [--batch 1,8] [--repeat 3] [--threads 2] [--json OUT]
    python3 tools/bench_before_after.py - - --table-from OUT   # the table of an earlier run
"""

import argparse
import json
import os
import statistics
import subprocess
import sys


def bench(binary, args):
    """One `relevance bench --json` call: {(arch, workload, batch): ms per image}."""
    cmd = [
        binary,
        "bench",
        "--arch",
        args.arch,
        "--workload",
        args.workload,
        "--batch",
        args.batch,
        "--repeat",
        str(args.repeat),
        "--warmup",
        "1",
        "--threads",
        str(args.threads),
        "--json",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        rows[(row["arch"], row["workload"], int(row["batch"]))] = float(row["ms_per_image"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--arch", default="resnet50,vgg16")
    parser.add_argument("--workload", default="forward,grad-cam,lrp")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write every round's rows here")
    parser.add_argument("--before-name", default="before")
    parser.add_argument("--after-name", default="after")
    parser.add_argument("--table-from", help="print the table of a --json file written earlier, run nothing")
    args = parser.parse_args()

    if args.table_from:
        with open(args.table_from) as f:
            saved = json.load(f)
        times = {
            s: {(k.split("|")[0], k.split("|")[1], int(k.split("|")[2])): v for k, v in t.items()}
            for s, t in saved.items()
        }
    else:
        times = run_rounds(args)
    print_table(args, times)


def run_rounds(args):
    """`args.rounds` rounds of both binaries, alternating which runs first."""
    times = {"before": {}, "after": {}}
    for r in range(args.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for side in order:
            binary = args.before if side == "before" else args.after
            for key, ms in bench(binary, args).items():
                times[side].setdefault(key, []).append(ms)
            print(f"round {r + 1} {side} done", file=sys.stderr, flush=True)
    if args.json:
        # Written beside the target and renamed over it, so a killed run leaves no half file.
        tmp = f"{args.json}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({s: {"|".join(map(str, k)): v for k, v in t.items()} for s, t in times.items()}, f, indent=1)
        os.replace(tmp, args.json)
    return times


def print_table(args, times):
    """One row per (model, workload, batch): each side's rounds and the two ratios."""
    print(
        f"| model | workload | batch | {args.before_name} (ms/image, per round) "
        f"| {args.after_name} (ms/image, per round) | after / before (fastest) | after / before (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    ratios, median_ratios = [], []
    for key in times["before"]:
        before, after = times["before"][key], times["after"].get(key)
        if not after:
            continue
        ratio = min(after) / min(before)
        median_ratio = statistics.median(after) / statistics.median(before)
        ratios.append(ratio)
        median_ratios.append(median_ratio)
        fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {fmt(before)} | {fmt(after)} "
            f"| {ratio:.3f} | {median_ratio:.3f} |"
        )
    for name, rs in (("fastest-run", ratios), ("median-of-rounds", median_ratios)):
        if rs:
            print(
                f"\n{name} ratio after / before: median {statistics.median(rs):.3f} "
                f"(range {min(rs):.3f}–{max(rs):.3f}, {len(rs)} rows)"
            )


if __name__ == "__main__":
    main()
