"""How issue 21's acceptance figures grow with the number of real training patients: with few patients (CT has
4), a model whose latent holds the fracture can still miss a target, and this tells that apart from a model that
cannot meet it."""

from __future__ import annotations

import numpy as np

from .real_acceptance import RealPatches, figures, healthy_and_fractured, linear_scorer
from .task_fitting import TaskRecipe, fit_recipe

FIGURES = ("healthy_g0", "fracture_auc", "within_one_grade", "pixels_auc", "latent_auc")
PERCENTILES = (10, 50, 90)


def enough_to_fit(patches: RealPatches, recipe: TaskRecipe, train_groups) -> bool:
    """A draw whose patients give the probe no more patches than its principal components, or one class only, is
    left out (one small series alone can)."""
    rows = (np.isin(patches.group, train_groups) & ~np.isin(patches.grade, recipe.exclude_from_probe)
            & (patches.grade >= 0))
    positive = patches.grade[rows] >= recipe.positive_min_grade
    return rows.sum() > recipe.probe_components and 0 < positive.sum() < rows.sum()


def draw_figures(z: np.ndarray, patches: RealPatches, recipe: TaskRecipe, C: float, train_groups) -> dict:
    """The acceptance's figures on every patient not in ``train_groups``, from the task's probe and calibration
    fitted on those patients alone, and the AUCs of a linear model on their pixels and on their latents."""
    from sklearn.metrics import roc_auc_score

    train = np.isin(patches.group, train_groups) & (patches.grade >= 0)
    held = ~np.isin(patches.group, train_groups)
    probe, calibration = fit_recipe(recipe, z[train], patches.grade[train], C)
    distance = probe.distance(z)
    result = figures(np.stack([distance, calibration.grade(distance)], axis=1), patches, np.flatnonzero(held),
                     recipe.positive_min_grade)
    healthy, fractured = healthy_and_fractured(patches, recipe.positive_min_grade)
    fit_rows, test_rows = train & (healthy | fractured), held & (healthy | fractured)
    for space, features in (("pixels", patches.images.reshape(len(z), -1)), ("latent", z)):
        score = linear_scorer(features[fit_rows], fractured[fit_rows].astype(int))
        result[f"{space}_auc"] = float(roc_auc_score(fractured[test_rows], score(features[test_rows])))
    return result


def by_training_patients(z: np.ndarray, patches: RealPatches, recipe: TaskRecipe, C: float, counts, draws: int,
                         seed: int = 0) -> dict[str, dict]:
    """Per count n (below the number of patients): ``draws`` random sets of n training patients, each scored on all
    the others; the 10th, 50th and 90th percentile of each figure over the draws that could be fitted."""
    groups = np.unique(patches.group)
    rng = np.random.default_rng(seed)
    result = {}
    for n in counts:
        if n >= len(groups):
            continue
        drawn = [rng.choice(groups, n, replace=False) for _ in range(draws)]
        runs = [draw_figures(z, patches, recipe, C, g) for g in drawn if enough_to_fit(patches, recipe, g)]
        if runs:
            result[str(n)] = {"draws": len(runs)} | {
                name: [float(np.nanpercentile([r[name] for r in runs], q)) for q in PERCENTILES] for name in FIGURES}
    return result
