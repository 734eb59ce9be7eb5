"""Fit one grading task on a trained DAE's latents: probe, calibration, model selection on the validation split.

The probe sees binary labels (grade >= positive_min_grade), as in the paper, or with ``ordinal`` every grade's
order (``fit_ordinal_probe``), optionally without the grades listed in ``exclude_from_probe`` (the paper leaves G1
out for vertebral fractures because those labels are noisy); the calibration then maps the probe's signed
distance to the ordinal grade. The regularisation strength is chosen by validation AUC computed from the
continuous distance, never from hard labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from DAECounterfactualLib.bundle.spec import MAX_EDIT_GAIN, TaskSpec
from DAECounterfactualLib.errors import InputError

from DAECounterfactualLib.model.probe import Calibration, LinearProbe

from .probe_fitting import fit_calibration, fit_ordinal_probe, fit_probe


@dataclass(frozen=True)
class TaskRecipe:
    name: str
    grade_names: tuple[str, ...]
    positive_min_grade: int
    description: str = ""
    probe: str = "svm"
    calibration: str = "linear"
    degree: int = 3
    exclude_from_probe: tuple[int, ...] = ()
    probe_components: int = 0   # > 0: normal restricted to the latents' top principal directions (fit_probe)
    edit_components: int = 0    # > 0: edits along the normal's projection on this many top directions (fit_probe)
    probe_strata: str = ""      # a training-set column (e.g. "origin") within which the probe balances its classes
    label_column: str = ""      # a training-set column holding this task's grades (default: the set's grades)
    ordinal: bool = False       # the probe orders every grade (fit_ordinal_probe), not only positive vs negative
    c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, task: dict[str, Any]) -> "TaskRecipe":
        """A recipe from an experiment config's task entry (JSON lists become the tuples a frozen recipe holds)."""
        return cls(**{**task, "grade_names": tuple(task["grade_names"]),
                      "exclude_from_probe": tuple(task.get("exclude_from_probe", ()))})

    def labels(self, data) -> np.ndarray:
        """This task's grades of a TrainingSet: its ``label_column`` (several tasks on one set of images), codes
        above the last grade counted as the last (a finding coded by type, e.g. Modic 1-3, graded present/absent),
        or the set's own grades."""
        if not self.label_column:
            return data.grades
        if self.label_column not in data.extra:
            raise InputError(f"task {self.name!r}: label_column {self.label_column!r} is not a column of the "
                             f"training set (it has {sorted(data.extra)})")
        values = data.extra[self.label_column].astype(np.int16)
        return np.where(values >= 0, np.minimum(values, len(self.grade_names) - 1), -1).astype(np.int16)

    def strata(self, data) -> np.ndarray | None:
        """The ``probe_strata`` column of a TrainingSet (None when the recipe names none)."""
        if not self.probe_strata:
            return None
        if self.probe_strata not in data.extra:
            raise InputError(f"task {self.name!r}: probe_strata {self.probe_strata!r} is not a column of the "
                             f"training set (it has {sorted(data.extra)})")
        return data.extra[self.probe_strata]


def grading_metrics(scores: np.ndarray, predicted: np.ndarray, grades: np.ndarray,
                    positive_min_grade: int) -> dict[str, float]:
    """Detection AUC from continuous scores; grading MAE, macro-F1 and accuracy from the rounded grades."""
    from sklearn.metrics import f1_score, roc_auc_score

    positive = grades >= positive_min_grade
    auc = float(roc_auc_score(positive, scores)) if 0 < positive.sum() < len(positive) else float("nan")
    return {"auc": auc, "mae": float(np.mean(np.abs(predicted - grades))),
            "macro_f1": float(f1_score(grades, predicted, average="macro")),
            "accuracy": float(np.mean(predicted == grades)), "n": int(len(grades))}


def fit_task(recipe: TaskRecipe, z_train: np.ndarray, grades_train: np.ndarray, z_val: np.ndarray,
             grades_val: np.ndarray, strata_train: np.ndarray | None = None,
             groups_train: np.ndarray | None = None) -> TaskSpec:
    """Probe and calibration fitted on the training split, C chosen and metrics reported on the validation split.
    ``strata_train``: the recipe's probe strata of the training samples (``TaskRecipe.strata``). With no validation
    images (a real-only set whose every patient trains the DAE), C is chosen and the metrics reported on
    out-of-fold grades instead, folds by ``groups_train`` (patients; at most 5 folds)."""
    known = grades_train >= 0
    z_train, grades_train = z_train[known], grades_train[known]
    strata = None if strata_train is None else np.asarray(strata_train)[known]
    if len(z_val) == 0 and groups_train is None:
        raise InputError(f"task {recipe.name!r}: no validation images and no patient groups to cross-validate on")

    def fit(c: float, rows: np.ndarray | slice = slice(None)):
        return fit_recipe(recipe, z_train[rows], grades_train[rows], c, None if strata is None else strata[rows])

    if len(z_val):
        def held_out(c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            probe, calibration = fit(c)
            distance = probe.distance(z_val)
            return distance, calibration.grade(distance), grades_val
        split = "val"
    else:
        groups = np.asarray(groups_train)[known]

        def held_out(c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            from sklearn.model_selection import GroupKFold

            distance, grade = np.zeros(len(z_train)), np.zeros(len(z_train), dtype=int)
            for train, held in GroupKFold(min(5, len(set(groups)))).split(z_train, grades_train, groups):
                probe, calibration = fit(c, train)
                distance[held] = probe.distance(z_train[held])
                grade[held] = calibration.grade(distance[held])
            return distance, grade, grades_train
        split = f"{min(5, len(set(groups)))}-fold cross-validation by patient on the training split"
    scored = {c: held_out(c) for c in recipe.c_grid}
    aucs = {c: grading_metrics(d, g, truth, recipe.positive_min_grade)["auc"] for c, (d, g, truth) in scored.items()}
    c = max(recipe.c_grid, key=lambda value: (np.nan_to_num(aucs[value], nan=-np.inf), -recipe.c_grid.index(value)))
    probe, calibration = fit(c)
    metrics = grading_metrics(*scored[c], recipe.positive_min_grade)
    metrics |= {"split": split, "C": c, "train_n": int(len(grades_train)),
                "probe_train_n": int(np.sum(~np.isin(grades_train, recipe.exclude_from_probe)))}
    return TaskSpec(name=recipe.name, description=recipe.description, grade_names=recipe.grade_names,
                    positive_min_grade=recipe.positive_min_grade, probe=probe, calibration=calibration,
                    metrics=metrics)


def fit_recipe(recipe: TaskRecipe, z: np.ndarray, grades: np.ndarray, C: float,
               strata: np.ndarray | None = None) -> tuple[LinearProbe, Calibration]:
    """A task's probe (``fit_recipe_probe``) and its calibration, on all graded samples: the one fit behind the
    bundled tasks, the real-data acceptance and the baseline comparison."""
    probe = fit_recipe_probe(recipe, z, grades, C, strata)
    calibration = fit_calibration(probe.distance(z), grades, recipe.calibration, recipe.degree,
                                  grade_range=(0, len(recipe.grade_names) - 1))
    return probe, calibration


def fit_recipe_probe(recipe: TaskRecipe, z: np.ndarray, grades: np.ndarray, C: float,
                     strata: np.ndarray | None = None) -> LinearProbe:
    """A task's probe, on the graded samples its recipe uses (``exclude_from_probe`` left out): binary, or ordinal
    when the recipe says so."""
    use = ~np.isin(grades, recipe.exclude_from_probe)
    shared = dict(kind=recipe.probe, C=C, components=recipe.probe_components,
                  strata=None if strata is None else strata[use], edit_components=recipe.edit_components)
    if recipe.ordinal:
        return fit_ordinal_probe(z[use], grades[use], recipe.positive_min_grade, **shared)
    return fit_probe(z[use], grades[use] >= recipe.positive_min_grade, **shared)


MIN_RESPONSE_SLOPE = 0.02        # re-encoded step / requested step below this: the decoder ignores the direction
MIN_RESPONSE_CORRELATION = 0.5


def edit_response(explainer, images: np.ndarray, spec: TaskSpec, preset: str) -> tuple[np.ndarray, np.ndarray]:
    """Requested and achieved distance steps: for each image and grade, target minus the image's distance, and
    the re-encoded counterfactual's distance minus the image's distance."""
    requested, achieved = [], []
    for image in images:
        e = explainer.explain(image, spec, preset=preset, sweep_count=0)
        d0 = e.grades.distance[0]
        requested.append(e.target_distances - d0)
        achieved.append(e.reencoded.distance[:len(e.target_distances)] - d0)
    return np.concatenate(requested), np.concatenate(achieved)


def fit_edit_gain(explainer, images: np.ndarray, spec: TaskSpec, preset: str = "fast",
                  rounds: int = 2) -> tuple[float, dict[str, Any]]:
    """The edit gain that makes decoded-and-re-encoded counterfactuals land on their target distances.

    A DAE decoder renders only part of a latent step along n̂ (re-encoding a counterfactual made with gain 1
    recovered 16 % of the step on dr-retina, with correlation 0.97), so the counterfactual for grade g would
    look like a grade between the input's and g. The response is close to linear; a least-squares slope through
    the origin, refitted ``rounds`` times with the gain applied, gives the factor. Fit on validation images."""
    gain, history = spec.edit_gain, []
    record = {"images": int(len(images)), "preset": preset, "rounds": history}
    for _ in range(rounds):
        requested, achieved = edit_response(explainer, images, replace(spec, edit_gain=gain), preset)
        slope = float(requested @ achieved / max(requested @ requested, 1e-12))
        correlation = float(np.corrcoef(requested, achieved)[0, 1])
        history.append({"gain": gain, "response_slope": slope, "correlation": correlation})
        if not (slope >= MIN_RESPONSE_SLOPE and correlation >= MIN_RESPONSE_CORRELATION):
            # the decoder does not follow this direction: no gain makes valid counterfactuals, so none is used
            return spec.edit_gain, {**record, "no_response": True}
        gain = float(np.clip(gain / slope, 1.0, MAX_EDIT_GAIN))
    return gain, record
