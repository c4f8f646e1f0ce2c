#!/usr/bin/env python3
"""Tail ratio of bench/drain runs: how much slower the last 10 % of the records drained than
the 50-90 % stretch of the same run (1 for an even drain). A ratio within one run, so a shared
machine's load moves it much less than the drain time (docs/benchmarks.md, "Pods (issue 17)").

Usage: bench/drain_tail.py RUN.json...
Each RUN.json is `bench/drain --json` stdout; its stderr (the "N s: delivered D/T" progress lines,
every 5 s) must be beside it as RUN.err. Runs named LABEL-N.json are summarised per LABEL.
"""
import collections
import json
import re
import statistics
import sys


def at(points, goal):
    for (t0, d0), (t1, d1) in zip(points, points[1:]):
        if d1 >= goal:
            return t0 + (t1 - t0) * (goal - d0) / max(d1 - d0, 1)
    return None


def main(paths):
    if not paths:
        sys.exit(__doc__)
    by_label = collections.defaultdict(list)
    for path in paths:
        try:
            run = json.load(open(path))
        except ValueError:
            print(f"{path}: not a finished run")
            continue
        err = open(re.sub(r"\.json$", ".err", path)).read()
        points = [(0.0, 0)] + [(float(t), int(d)) for t, d in
                               re.findall(r"drain: (\d+) s: delivered (\d+)/", err)]
        total, end = run["records"], run["drain_delivered_s"]
        t50, t90 = at(points, 0.5 * total), at(points, 0.9 * total)
        if t50 is None or t90 is None or t90 <= t50:
            print(f"{path}: too few progress lines")
            continue
        tail = (end - t90) / ((t90 - t50) / 4)
        by_label[re.sub(r"-\d+\.json$", "", path.split("/")[-1])].append((tail, t50))
        print(f"{path}: 50 % at {t50:.1f} s, 90 % at {t90:.1f} s, all delivered at {end:.1f} s, "
              f"tail ratio {tail:.2f}")
    for label, runs in by_label.items():
        tails = [t for t, _ in runs]
        print(f"{label}: {len(runs)} runs, tail ratio median {statistics.median(tails):.2f} "
              f"({min(tails):.2f}-{max(tails):.2f}), 50 % at median "
              f"{statistics.median(h for _, h in runs):.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
