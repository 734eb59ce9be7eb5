#!/usr/bin/env python
"""Long-run soak: batch-score many phantom patches through the ExplanationLogic in one process, on one slicer-core
MRML scene, and print what a leak would show: resident memory (RSS) after warm-up and at intervals, and the MRML
node count before and after.

    python scripts/studies/soak_score.py --bundle vcf-ct --task genant --patches 1000

Each round adds a fresh phantom CT as a volume node, scores ``--per-round`` positions on it (its vertebra
centroids, then the same shifted by up to 4 mm) into a table node, reads the table, and removes both nodes again,
as a user scoring scan after scan would. It prints measurements; it asserts nothing (see docs/ROBUSTNESS.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np

from DAECounterfactualLib.io.volumes import VertebraPosition
from DAECounterfactualLib.mrml import scene as mrml
from DAECounterfactualLib.mrml.logic import ExplanationLogic
from DAECounterfactualResearch.synthesis import make_spine_phantom


def rss_mib() -> float:
    """Current resident set size (Linux /proc); elsewhere the peak, which can only grow."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def positions(phantom, count: int, rng) -> list[VertebraPosition]:
    """The phantom's centroids, then shifted copies (up to 4 mm per axis) until there are ``count``."""
    base = list(phantom.positions)
    shifted = [VertebraPosition(100 + n, f"shift {n}", base[n % len(base)].ras + rng.uniform(-4, 4, 3))
               for n in range(count - len(base))]
    return (base + shifted)[:count]


def run(args: argparse.Namespace) -> None:
    scene = mrml.new_scene()
    logic = ExplanationLogic(scene, bundle=args.bundle, device="cpu")
    rng = np.random.default_rng(0)
    nodes_before = scene.GetNumberOfNodes()
    rounds = -(-args.patches // args.per_round)
    print(f"bundle {logic.bundle.bundle_id}, task {args.task}: {rounds} rounds x {args.per_round} patches, "
          f"warm-up {args.warmup} rounds; MRML nodes before: {nodes_before}")
    print(f"{'round':>5} {'patches':>8} {'RSS MiB':>8} {'vs warm-up':>10} {'nodes':>6} {'s/round':>8}")
    baseline, scored = None, 0
    for number in range(1, rounds + 1):
        start = time.perf_counter()
        phantom = make_spine_phantom(seed=number, case=f"soak_{number:04d}")
        volume = mrml.add_volume_node(scene, phantom.volume, name=phantom.case)
        table = logic.score(volume, positions(phantom, args.per_round, rng), args.task)
        scored += len(mrml.rows_from_table(table))
        for node in (table, volume):
            mrml.remove_node(scene, node)
        seconds = time.perf_counter() - start
        rss = rss_mib()
        if number == args.warmup:
            baseline = rss
        if number == args.warmup or number == rounds or (baseline is not None and number % args.every == 0):
            delta = f"{rss - baseline:+.1f}" if baseline is not None else ""
            print(f"{number:>5} {scored:>8} {rss:>8.1f} {delta:>10} {scene.GetNumberOfNodes():>6} {seconds:>8.2f}")
    print(f"patches scored: {scored}; MRML nodes after: {scene.GetNumberOfNodes()} (before: {nodes_before}); "
          f"RSS growth after warm-up: {rss_mib() - baseline:+.1f} MiB; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default="vcf-ct", help="bundled model name or bundle folder")
    parser.add_argument("--task", default="genant")
    parser.add_argument("--patches", type=int, default=1000, help="patches to score in all")
    parser.add_argument("--per-round", type=int, default=50, help="patches per phantom (one score request)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds before the RSS baseline is taken")
    parser.add_argument("--every", type=int, default=2, help="print a row every this many rounds")
    args = parser.parse_args()
    if args.patches < 1 or args.per_round < 1 or not 1 <= args.warmup <= -(-args.patches // args.per_round):
        parser.error("--patches and --per-round must be positive, --warmup between 1 and the number of rounds")
    run(args)


if __name__ == "__main__":
    main()
