"""scripts/probe_cv.py: every table row cross-validated on the training split, cases kept within one fold."""

import numpy as np
import pytest

from DAECounterfactualResearch.task_fitting import TaskRecipe
from script_loader import load_script


def test_cross_validated_rows_cover_the_table_and_keep_cases_together(monkeypatch):
    cv = load_script("probe_cv")
    rng = np.random.default_rng(0)
    grades = np.repeat(rng.integers(0, 4, 100), 3)  # 100 cases of three images each, one grade per case
    z = rng.normal(size=(300, 6))
    z[:, 0] += 2 * grades
    cases = np.repeat(np.arange(100), 3).astype(str)
    held_cases = []
    table = cv.probe_table

    def spy(recipe, z_train, g_train, z_eval, g_eval, c, strata=None):
        held_cases.append(len(z_eval))
        return table(recipe, z_train, g_train, z_eval, g_eval, c, strata)

    monkeypatch.setattr(cv, "probe_table", spy)
    recipe = TaskRecipe(name="g", grade_names=("0", "1", "2", "3"), positive_min_grade=2)
    rows = cv.cross_validated_rows(recipe, z, grades, 1.0, 5, cases)
    assert [(r["probe"], r["calibration"]) for r in rows] == [
        (p, c) for p in ("svm", "logistic") for c in ("linear", "extremes", "poly3")]
    assert sum(held_cases) == 300 and all(n % 3 == 0 for n in held_cases)  # a case is never split over folds
    assert all(r["auc"] > 0.9 for r in rows)
