"""The DAE's probe and a DenseNet121 side by side under cross-validation by patient on the training split: the
comparison a small validation split cannot decide (SPIDER's has 3 grade-1 discs, its training split 82).

Each fold trains both on the other patients' plain and augmented patches (augmentation index up to a limit) and
scores the held patients' plain patches. The DAE's probes (one per recipe, e.g. per probe width) keep the shipped
task's C; the DenseNet121 keeps its epoch with the best AUC on the held fold, as evaluate.py does on the
validation split, so its figures are optimistic. The out-of-fold scores are returned too, so another probe can be
compared later without training the DenseNet121 again (``earlier``).
"""

from __future__ import annotations

import numpy as np

from DAECounterfactualLib.errors import InputError

from .baseline import BaselineConfig, predict_probabilities, scores_and_grades, train_baseline
from .evaluation import difference_intervals
from .task_fitting import TaskRecipe, fit_recipe, grading_metrics


def cross_validated_comparison(explainer, spec, recipes: dict[str, TaskRecipe], train, augmentations: int,
                               folds: int, epochs: int, C: float | None = None, earlier: dict | None = None) -> dict:
    """Out-of-fold figures of each DAE probe (``recipes``: label -> recipe, each fitted with ``C``, default the
    shipped task's) and of the DenseNet121, with paired bootstrap intervals of each probe minus the DenseNet121
    (patients resampled). ``earlier``: the report of an earlier run on the same training split and folds, whose
    DenseNet121 out-of-fold scores are used instead of training it again."""
    from sklearn.model_selection import GroupKFold

    first = next(iter(recipes.values()))
    augmentation = train.extra.get("augmentation", np.zeros(len(train), dtype=int))
    grades, patients = first.labels(train), np.asarray(train.case_id)
    usable = (augmentation <= augmentations) & (grades >= 0)
    z = np.zeros((len(train), explainer.config.model.z_dim))
    z[usable] = explainer.encode(train.images[usable])
    n_grades, positive = len(spec.grade_names), first.positive_min_grade
    C = spec.metrics["C"] if C is None else C
    held_rows, theirs, epochs_kept = [], [], []
    ours: dict[str, list] = {label: [] for label in recipes}
    for fitted, held in GroupKFold(folds).split(z, grades, patients):
        fit_rows = np.zeros(len(train), dtype=bool)
        fit_rows[fitted] = True
        fit_rows &= usable
        held_mask = np.zeros(len(train), dtype=bool)
        held_mask[held] = True
        held_mask &= usable & (augmentation == 0)
        for label, recipe in recipes.items():
            probe, calibration = fit_recipe(recipe, z[fit_rows], grades[fit_rows], C)
            distance = probe.distance(z[held_mask])
            ours[label].append((distance, calibration.grade(distance)))
        held_rows.append(np.flatnonzero(held_mask))
        if earlier is None:
            base = train_baseline(train.images[fit_rows], grades[fit_rows], train.images[held_mask],
                                  grades[held_mask], n_grades, positive, BaselineConfig(epochs=epochs), progress=False)
            theirs.append(scores_and_grades(predict_probabilities(base.model, train.images[held_mask]), positive))
            epochs_kept.append(base.best_epoch)
    rows = np.concatenate(held_rows)
    truth = grades[rows]
    if earlier is None:
        densenet = _joined(theirs)
    else:
        densenet, epochs_kept = _earlier_densenet(earlier, rows, truth, patients[rows])
    dae = {label: _joined(parts) for label, parts in ours.items()}
    return {"folds": folds, "held_out_discs": int(len(rows)), "patients": int(len(set(patients[rows]))),
            "negatives": int(np.sum(truth < positive)), "densenet_epochs_kept": epochs_kept,
            "dae": {label: grading_metrics(*scores, truth, positive) for label, scores in dae.items()},
            "densenet121": grading_metrics(*densenet, truth, positive),
            "dae_minus_densenet121": {label: difference_intervals(scores, densenet, truth, positive, patients[rows])
                                      for label, scores in dae.items()},
            "out_of_fold": {"row": rows.tolist(), "patient": patients[rows].tolist(), "grade": truth.tolist(),
                            "densenet121": _listed(densenet), "dae": {k: _listed(v) for k, v in dae.items()}}}


def _earlier_densenet(earlier: dict, rows: np.ndarray, truth: np.ndarray,
                      patients: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], list]:
    """An earlier report's DenseNet121 out-of-fold (score, grade), checked to be of the same held-out discs."""
    held = earlier["out_of_fold"]
    if held["row"] != rows.tolist() or held["grade"] != truth.tolist() or held["patient"] != patients.tolist():
        raise InputError("the earlier report's DenseNet121 was scored on other held-out discs (training split, "
                         "augmentations or folds differ): train it again instead")
    scores = held["densenet121"]
    return (np.asarray(scores["score"]), np.asarray(scores["grade"])), earlier["densenet_epochs_kept"]


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold (score, grade) pairs as one pair of arrays in held-out order."""
    return tuple(np.concatenate([part[k] for part in parts]) for k in range(2))


def _listed(scores: tuple[np.ndarray, np.ndarray]) -> dict[str, list]:
    return {"score": np.round(scores[0].astype(float), 6).tolist(), "grade": scores[1].astype(int).tolist()}
