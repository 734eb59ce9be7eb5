"""A small phantom cohort in the BIDS layout, sized for the tiny CT bundle, and how cohort CSVs are compared."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

CASES = 4
PHANTOM = {"shape": (64, 40, 40), "spacing": (2.0, 2.0, 2.0)}  # 128 x 80 x 80 mm: holds the 48 mm patches
EXACT = ("case", "id", "level", "r", "a", "s", "grade", "grade_name", "ood")
# Scores of one case are computed in the same batches in every mode; only the thread count of the process (1 per
# worker or rank, 2 here) moves the last bits of a convolution (seen: 7e-9 in distance, 5e-7 in ood_score).
TOLERANCE = {"distance": 1e-6, "probability": 1e-7, "score": 1e-5, "ood_score": 1e-4}


def write_cohort(folder: Path, cases: int = CASES) -> Path:
    from DAECounterfactualResearch.phantom_cohort import export_phantom_cohort

    export_phantom_cohort(folder, cases, seed=10, **PHANTOM)
    return folder


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_same_scores(path: Path, reference: Path) -> None:
    """The same rows in the same order with the same grades; scores equal to ``TOLERANCE``."""
    got, expected = rows(path), rows(reference)
    assert [[r[k] for k in EXACT] for r in got] == [[r[k] for k in EXACT] for r in expected]
    for column, tolerance in TOLERANCE.items():
        np.testing.assert_allclose([float(r[column]) for r in got], [float(r[column]) for r in expected],
                                   rtol=0, atol=tolerance, err_msg=column)
