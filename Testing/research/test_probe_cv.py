"""scripts/studies/probe_cv.py's rows: every table row cross-validated on the training split, cases kept within one
fold (DAECounterfactualResearch.evaluation.cross_validated_rows)."""

import numpy as np

import DAECounterfactualResearch.evaluation as evaluation
from DAECounterfactualResearch.task_fitting import TaskRecipe


def test_cross_validated_rows_cover_the_table_and_keep_cases_together(monkeypatch):
    rng = np.random.default_rng(0)
    grades = np.repeat(rng.integers(0, 4, 100), 3)  # 100 cases of three images each, one grade per case
    z = rng.normal(size=(300, 6))
    z[:, 0] += 2 * grades
    cases = np.repeat(np.arange(100), 3).astype(str)
    case_of_row = {row.tobytes(): case for row, case in zip(z, cases)}
    folds = []
    table = evaluation.probe_table

    def spy(recipe, z_train, g_train, z_eval, g_eval, c, strata=None):
        folds.append(({case_of_row[row.tobytes()] for row in z_train}, [case_of_row[row.tobytes()] for row in z_eval]))
        return table(recipe, z_train, g_train, z_eval, g_eval, c, strata)

    monkeypatch.setattr(evaluation, "probe_table", spy)
    recipe = TaskRecipe(name="g", grade_names=("0", "1", "2", "3"), positive_min_grade=2)
    rows = evaluation.cross_validated_rows(recipe, z, grades, 1.0, 5, cases)
    assert [(r["probe"], r["calibration"]) for r in rows] == [
        (p, c) for p in ("svm", "logistic") for c in ("linear", "extremes", "poly3")]
    held = [case for _, held_cases in folds for case in held_cases]
    assert sorted(held) == sorted(cases)  # every image held out once
    assert all(not trained & set(held_cases) for trained, held_cases in folds)  # a case is never split over folds
    assert all(r["auc"] > 0.9 for r in rows)
