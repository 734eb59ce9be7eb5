"""``daecf score-cohort``: a study folder (or a pairs CSV) into one scores CSV, in one process, in worker processes
(``--workers``) or on torchrun ranks (started by torchrun), with a progress bar over the cases."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError


class CohortProgress:
    """The progress bar over cases (stderr); a line for each case not graded and each screening warning once."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.warned = quiet, None, set()

    def __call__(self, done: int, total: int, case, outcome) -> None:
        from tqdm import tqdm

        from .commands import warn_once

        if self.bar is None:
            self.bar = tqdm(total=total, initial=done, unit="case", file=sys.stderr, disable=self.quiet,
                            desc="scoring cases")
            return
        self.bar.update(1)
        if isinstance(outcome, str):
            tqdm.write(f"daecf: {case.case_id} not graded: {outcome}", file=sys.stderr)
        else:
            warn_once(outcome, self.warned)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_score_cohort(args: argparse.Namespace, device: str) -> int:
    from ..bundle.registry import resolve_bundle
    from ..bundle.store import load_bundle
    from ..inference.cohort import CaseScorer, default_targets, failures_path, score_cohort
    from ..inference.cohort_ranks import rank_device, score_cohort_on_ranks, torchrun_world
    from ..inference.cohort_workers import WorkerPool
    from ..inference.scores import check_writable
    from ..io.cohort import find_cases, read_pairs
    from .commands import warn_flagged

    if (args.dataset is None) == (args.pairs is None):
        raise InputError("give the study folder or --pairs PAIRS.csv (one of them)")
    check_writable(args.out)  # before any work: the model, the cases
    failures = failures_path(args.out, args.failures)
    cases = read_pairs(args.pairs) if args.pairs else find_cases(args.dataset)
    rank, world = torchrun_world()
    bundle = resolve_bundle(args.bundle)
    loaded = load_bundle(bundle, load_weights=args.workers == 1)  # with workers, each loads the weights itself
    loaded.task(args.task)  # checked before any work
    targets = args.targets or default_targets(loaded.config)
    if args.workers > 1:
        scorer = WorkerPool(bundle, rank_device(device), args.task, args.workers, targets)
    else:
        from ..inference.explainer import Explainer

        scorer = CaseScorer(Explainer(loaded, device=rank_device(device)), args.task, targets)
    progress = CohortProgress(quiet=args.no_progress or rank != 0)
    run = score_cohort_on_ranks if world > 1 else score_cohort
    try:
        summary = run(cases, args.out, scorer, failures, args.resume, progress)
    except KeyboardInterrupt:
        progress.close()
        print(f"daecf: interrupted; the cases scored so far are in {args.out}"
              f"{' and its part files' if world > 1 else ''}: run the same command with --resume to continue",
              file=sys.stderr)
        raise
    progress.close()
    if rank == 0:
        print(f"{summary.rows} rows of {summary.scored} cases written to {args.out} (task {args.task})"
              + (f"; {summary.skipped} cases were there already" if summary.skipped else "")
              + (f"; {summary.flagged} rows flagged out of distribution" if summary.flagged else "")
              + f"; {len(summary.failures)} of {summary.cases} cases not graded"
              + (f" (reasons in {failures})" if summary.failures else ""))
        warn_flagged(summary.flagged, summary.rows)
    return 0
