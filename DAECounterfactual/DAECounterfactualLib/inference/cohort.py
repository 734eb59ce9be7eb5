"""Score every target of every case of a study into one CSV: one row per vertebra (or disc) with its case id.

Each case's rows are appended at once to a ``ScoresFile`` grouped by case, so an interrupted run keeps whole cases
and ``resume`` skips them (the last case in the file is scored again: the interruption may have cut it). A case
that cannot be read or scored, or whose file name gives another modality than the bundle's, is not graded: it is
listed with its reason in ``failures.csv`` and the run goes on. Who scores the cases is passed in: ``CaseScorer``
in this process (the CLI with one worker, Slicer's Python console) or worker processes (``cohort_workers``);
``cohort_ranks`` splits the cases over torchrun ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ..errors import DAECFError, InputError
from ..io.cohort import CohortCase
from ..bundle.spec import BundleConfig
from ..io.volumes import VertebraPosition, is_disc_label
from .scores import SCORE_COLUMNS, ScoresFile, check_writable, iter_volume_rows, write_scores_csv

if TYPE_CHECKING:  # the CSV side needs no torch; the explainer passed in brings it
    from .explainer import Explainer

COHORT_COLUMNS = ("case", *SCORE_COLUMNS)
FAILURE_COLUMNS = ("case", "image", "positions", "reason")
FAILURES_NAME = "failures.csv"
Outcome = Union[list[dict], str]  # the case's rows, or why it was not graded
Scorer = Callable[[Sequence[CohortCase]], Iterable[Outcome]]  # one outcome per case, in the cases' order
Progress = Callable[[int, int, Union[CohortCase, None], Union[Outcome, None]], None]  # (done, total, case, outcome)
# Which of a case's positions are graded. A TPTBox mask holds vertebrae and discs: a disc bundle takes "discs", a
# vertebra bundle "vertebrae" (``default_targets``); "all" grades what the file holds.
TARGETS = {"all": lambda label: True, "vertebrae": lambda label: not is_disc_label(label), "discs": is_disc_label}


def default_targets(config: BundleConfig) -> str:
    """The targets a bundle grades, from what it was trained on ("all" for a bundle that does not say)."""
    kind = config.trained_on.target_kind if config.trained_on else None
    return {"vertebra": "vertebrae", "disc": "discs"}.get(kind, "all")


def check_modality(bundle_modality: str, case: CohortCase) -> None:
    if case.modality is not None and case.modality != bundle_modality:
        raise InputError(f"{case.image}: modality {case.modality} (by its file name), but the bundle grades "
                         f"{bundle_modality}; not graded")


def score_case(explainer: Explainer, case: CohortCase, task: str, targets: str = "all") -> list[dict]:
    """Rows of every target of one case, each with the case id; a DAECFError says why it cannot be graded."""
    check_modality(explainer.config.modality, case)
    volume, positions = case.read()
    batches = iter_volume_rows(explainer, volume, _chosen(case, positions, targets), task)
    return [{"case": case.case_id, **row} for batch in batches for row in batch]


def _chosen(case: CohortCase, positions: list[VertebraPosition], targets: str) -> list[VertebraPosition]:
    chosen = [p for p in positions if TARGETS[targets](p.label)]
    if not chosen:
        raise InputError(f"{case.positions}: no {targets} among its targets ({', '.join(p.level for p in positions)})")
    return chosen


def case_outcome(explainer: Explainer, case: CohortCase, task: str, targets: str = "all") -> Outcome:
    try:
        return score_case(explainer, case, task, targets)
    except DAECFError as error:
        return str(error)


class CaseScorer:
    """Scores cases one after another in this process with one loaded explainer."""

    def __init__(self, explainer: Explainer, task: str, targets: str = "all"):
        explainer.bundle.task(task)  # an unknown task fails before any case
        self.explainer, self.task, self.targets = explainer, task, targets

    def __call__(self, cases: Sequence[CohortCase]) -> Iterator[Outcome]:
        return (case_outcome(self.explainer, case, self.task, self.targets) for case in cases)


@dataclass
class CohortSummary:
    cases: int = 0
    skipped: int = 0  # already in the CSV of a resumed run
    scored: int = 0
    rows: int = 0
    flagged: int = 0  # rows flagged out of distribution
    failures: list[dict] = field(default_factory=list)

    def __add__(self, other: "CohortSummary") -> "CohortSummary":
        return CohortSummary(self.cases + other.cases, self.skipped + other.skipped, self.scored + other.scored,
                             self.rows + other.rows, self.flagged + other.flagged, self.failures + other.failures)


def failures_path(out: Path, failures: str | Path | None) -> Path:
    """``failures`` or failures.csv beside the scores CSV; refused when it would be the scores CSV itself."""
    path = Path(failures) if failures else Path(out).with_name(FAILURES_NAME)
    if path.resolve() == Path(out).resolve():
        raise InputError(f"{out}: the scores CSV and the failures CSV would be one file; name another with --failures")
    check_writable(path)
    return path


def open_scores(path: str | Path, resume: bool) -> ScoresFile:
    return ScoresFile(path, resume, COHORT_COLUMNS, key=("case", "id"), group="case")


def done_cases(sink: ScoresFile) -> set[str]:
    return {case for case, _id in sink.done}


def score_into(sink: ScoresFile, cases: Sequence[CohortCase], scorer: Scorer, progress: Progress | None = None,
               skip: Iterable[str] = ()) -> CohortSummary:
    """Score the cases that are neither in ``sink`` nor in ``skip``, one append per case."""
    done = done_cases(sink) | set(skip)
    todo = [case for case in cases if case.case_id not in done]
    summary = CohortSummary(cases=len(cases), skipped=len(cases) - len(todo))
    if progress is not None:
        progress(summary.skipped, len(cases), None, None)
    with sink:
        for number, (case, outcome) in enumerate(zip(todo, scorer(todo)), start=summary.skipped + 1):
            if isinstance(outcome, str):
                summary.failures.append({"case": case.case_id, "image": str(case.image),
                                         "positions": str(case.positions or ""), "reason": outcome})
            else:
                sink.append(outcome)
                summary.scored += 1
                summary.rows += len(outcome)
                summary.flagged += sum(bool(row["ood"]) for row in outcome)
            if progress is not None:
                progress(number, len(cases), case, outcome)
    return summary


def write_failures(summary: CohortSummary, path: Path, cases: Sequence[CohortCase]) -> None:
    """The failures in case order (a header alone when there are none): every case of the run is then either in
    the scores CSV or here."""
    order = {case.case_id: n for n, case in enumerate(cases)}
    write_scores_csv(sorted(summary.failures, key=lambda row: order[row["case"]]), path, FAILURE_COLUMNS)


def score_cohort(cases: Sequence[CohortCase], out: str | Path, scorer: Scorer, failures: str | Path | None = None,
                 resume: bool = False, progress: Progress | None = None) -> CohortSummary:
    """Score ``cases`` (``io.cohort.find_cases`` or ``read_pairs``) into the CSV ``out`` and list those that
    could not be graded in ``failures`` (default failures.csv beside it). Unwritable outputs are refused before
    any case is read; ``resume`` keeps the cases already in ``out``. ``progress(done, total, case, outcome)`` is
    called before the first case (case None) and after each."""
    path = failures_path(Path(out), failures)
    summary = score_into(open_scores(out, resume), cases, scorer, progress)
    write_failures(summary, path, cases)
    return summary
