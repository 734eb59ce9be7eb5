"""Cases split over torchrun ranks, on one machine or several that share the study and output folders.

Rank r scores every world_size-th case into its own part file beside the output (``scores.part1-of-4.csv``),
resumable like the one-process CSV. When every rank is done (a gloo collective, so CPU-only nodes work), rank 0
merges the parts, in case order, into the one CSV and removes them, and writes failures.csv: the result is the
same as a one-process run's. ``resume`` also keeps the cases already in the merged CSV of an earlier run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from ..io.cohort import CohortCase
from .cohort import (COHORT_COLUMNS, CohortSummary, Progress, Scorer, done_cases, failures_path, open_scores,
                     score_into, write_failures)
from .scores import read_scores_csv, write_scores_csv

RANK_WAIT = timedelta(days=2)  # how long rank 0 waits for the slowest rank's share of the cases


def torchrun_world() -> tuple[int, int]:
    """(rank, world size) that torchrun gives this process; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def rank_device(device: str) -> str:
    """The GPU of this rank on its node (LOCAL_RANK) when the device is CUDA."""
    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if device == "cuda" else device


def part_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.stem}.part{rank}-of-{world}{out.suffix}")


def score_cohort_on_ranks(cases: Sequence[CohortCase], out: str | Path, scorer: Scorer,
                          failures: str | Path | None = None, resume: bool = False,
                          progress: Progress | None = None) -> CohortSummary:
    """This rank's share of ``score_cohort``; rank 0 returns the summary of all ranks, the others their own."""
    import torch.distributed as dist

    rank, world = torchrun_world()
    out = Path(out)
    failures = failures_path(out, failures)
    earlier = open_scores(out, resume=True) if resume and out.is_file() else None  # read, never written here
    sink = open_scores(part_path(out, rank, world), resume)
    dist.init_process_group("gloo", timeout=RANK_WAIT)
    try:
        summary = score_into(sink, cases[rank::world], scorer, progress, done_cases(earlier) if earlier else ())
        summaries = [None] * world if rank == 0 else None
        dist.gather_object(summary, summaries, dst=0)
        if rank == 0:
            summary = sum(summaries[1:], summaries[0])
            summary.cases = len(cases)
            _merge(cases, out, [part_path(out, r, world) for r in range(world)], earlier.done.values() if earlier else ())
            write_failures(summary, failures, cases)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return summary


def _merge(cases: Sequence[CohortCase], out: Path, parts: list[Path], earlier_rows) -> None:
    """The rows of every case in case order, from its rank's part or else from the earlier merged CSV; the parts
    are removed once the CSV is in place."""
    def by_case(rows) -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for row in rows:
            grouped.setdefault(row["case"], []).append(row)
        return grouped

    earlier = by_case(earlier_rows)
    scored = by_case(row for part in parts if part.is_file() for row in read_scores_csv(part, COHORT_COLUMNS))
    rows = [row for case in cases for row in scored.get(case.case_id, earlier.get(case.case_id, ()))]
    write_scores_csv(rows, out, COHORT_COLUMNS)
    for part in parts:
        part.unlink(missing_ok=True)
