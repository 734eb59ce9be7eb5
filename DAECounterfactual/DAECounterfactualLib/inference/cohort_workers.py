"""Cases scored by worker processes on one machine (``daecf score-cohort --workers N``), each loading the model once.

Workers are spawned, not forked (a forked torch can hang in its thread pool), share the machine's cores evenly,
and ignore Ctrl-C: the parent stops, cases not started are cancelled, and the CSV keeps the whole cases written so
far. Outcomes come back in the cases' order, so the CSV is the same as a one-process run's. A worker that dies
(killed, out of memory) stops the run with an error rather than a hang (``concurrent.futures`` notices it).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..io.cohort import CohortCase
from .cohort import CaseScorer, Outcome

_scorer: CaseScorer | BaseException | None = None  # of this worker process


def _start(bundle: str, device: str, task: str, targets: str, threads: int) -> None:
    global _scorer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import torch

        from ..bundle.store import load_bundle
        from .explainer import Explainer

        torch.set_num_threads(threads)
        _scorer = CaseScorer(Explainer(load_bundle(bundle), device=device), task, targets)
    except BaseException as error:  # raised with the first case it is given, in the parent
        _scorer = error


def _score(case: CohortCase) -> Outcome:
    if isinstance(_scorer, BaseException):
        raise _scorer
    return next(iter(_scorer([case])))


class WorkerPool:
    """A ``Scorer`` over ``workers`` processes; ``bundle`` is a bundle folder (each worker loads it)."""

    def __init__(self, bundle: str | Path, device: str, task: str, workers: int, targets: str = "all"):
        self.bundle, self.device, self.task, self.workers, self.targets = str(bundle), device, task, workers, targets

    def __call__(self, cases: Sequence[CohortCase]) -> Iterator[Outcome]:
        if not cases:
            return
        workers = min(self.workers, len(cases))
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _start,
                                   (self.bundle, self.device, self.task, self.targets, threads))
        try:
            yield from pool.map(_score, cases)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
