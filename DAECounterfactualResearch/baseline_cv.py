"""The DAE's probe and a DenseNet121 side by side under cross-validation by patient on the training split: the
comparison a small validation split cannot decide (SPIDER's has 3 grade-1 discs, its training split 82).

Each fold trains both on the other patients' plain and augmented patches (augmentation index up to a limit) and
scores the held patients' plain patches. The DAE's probe keeps the shipped task's C and recipe; the DenseNet121
keeps its epoch with the best AUC on the held fold, as evaluate.py does on the validation split, so its figures
are optimistic.
"""

from __future__ import annotations

import numpy as np

from .baseline import BaselineConfig, predict_probabilities, scores_and_grades, train_baseline
from .evaluation import difference_intervals
from .task_fitting import fit_recipe, grading_metrics


def cross_validated_comparison(explainer, spec, recipe, train, augmentations: int, folds: int, epochs: int) -> dict:
    """Out-of-fold figures of both models, with paired bootstrap intervals of DAE minus DenseNet121 (patients
    resampled)."""
    from sklearn.model_selection import GroupKFold

    augmentation = train.extra.get("augmentation", np.zeros(len(train), dtype=int))
    grades, patients = recipe.labels(train), np.asarray(train.case_id)
    usable = (augmentation <= augmentations) & (grades >= 0)
    z = np.zeros((len(train), explainer.config.model.z_dim))
    z[usable] = explainer.encode(train.images[usable])
    n_grades, positive = len(spec.grade_names), recipe.positive_min_grade
    held_rows, ours, theirs, epochs_kept = [], [], [], []
    for fitted, held in GroupKFold(folds).split(z, grades, patients):
        fit_rows = np.zeros(len(train), dtype=bool)
        fit_rows[fitted] = True
        fit_rows &= usable
        held_mask = np.zeros(len(train), dtype=bool)
        held_mask[held] = True
        held_mask &= usable & (augmentation == 0)
        probe, calibration = fit_recipe(recipe, z[fit_rows], grades[fit_rows], spec.metrics["C"])
        distance = probe.distance(z[held_mask])
        ours.append((distance, calibration.grade(distance)))
        base = train_baseline(train.images[fit_rows], grades[fit_rows], train.images[held_mask], grades[held_mask],
                              n_grades, positive, BaselineConfig(epochs=epochs), progress=False)
        theirs.append(scores_and_grades(predict_probabilities(base.model, train.images[held_mask]), positive))
        held_rows.append(np.flatnonzero(held_mask))
        epochs_kept.append(base.best_epoch)
    rows = np.concatenate(held_rows)
    dae = tuple(np.concatenate([part[k] for part in ours]) for k in range(2))
    densenet = tuple(np.concatenate([part[k] for part in theirs]) for k in range(2))
    truth = grades[rows]
    return {"folds": folds, "held_out_discs": int(len(rows)), "patients": int(len(set(patients[rows]))),
            "negatives": int(np.sum(truth < positive)), "densenet_epochs_kept": epochs_kept,
            "dae": grading_metrics(*dae, truth, positive), "densenet121": grading_metrics(*densenet, truth, positive),
            "dae_minus_densenet121": difference_intervals(dae, densenet, truth, positive, patients[rows])}
