"""How the acceptance figures grow with the number of training patients (scripts/studies/acceptance_by_patients.py)."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualResearch.acceptance_by_patients import by_training_patients, draw_figures, enough_to_fit
from DAECounterfactualResearch.real_acceptance import RealPatches
from DAECounterfactualResearch.task_fitting import TaskRecipe

RECIPE = TaskRecipe(name="genant", grade_names=("G0", "G1", "G2", "G3"), positive_min_grade=2,
                    exclude_from_probe=(1,), calibration="linear")


def patients(count=6, bodies=5, latent_sees=True, seed=0) -> tuple[np.ndarray, RealPatches]:
    """Intact bodies with simulated G1-G3 fractures; the pixels always show the grade, the latent only when
    ``latent_sees``."""
    rng = np.random.default_rng(seed)
    z, images, group, vertebra, grade = [], [], [], [], []
    for p in range(count):
        for b in range(bodies):
            for g in range(4):
                pixel = rng.normal(0, 0.1, (1, 2, 2))
                pixel[0, 0, 0] += g
                latent = rng.normal(0, 0.1, 8)
                latent[0] += g if latent_sees else 0.0
                z.append(latent), images.append(pixel), group.append(f"p{p}"), vertebra.append(f"p{p}:b{b}")
                grade.append(g)
    grade = np.array(grade)
    return np.stack(z), RealPatches(
        images=np.stack(images).astype(np.float32), case=np.array(group), group=np.array(group),
        vertebra=np.array(vertebra), grade=grade, simulated=grade > 0, whole=np.ones(len(grade), bool))


def test_only_patients_outside_the_draw_are_scored():
    z, patches = patients()
    result = draw_figures(z, patches, RECIPE, 1.0, np.array(["p0", "p1"]))
    assert result["healthy_n"] == 4 * 5 and result["fractures_n"] == 4 * 5 * 3
    assert result["fracture_auc"] > 0.98 and result["latent_auc"] > 0.98


def test_a_latent_blind_to_the_fracture_is_told_from_pixels_that_show_it():
    z, patches = patients(latent_sees=False)
    result = draw_figures(z, patches, RECIPE, 1.0, np.array(["p0", "p1", "p2"]))
    assert result["pixels_auc"] > 0.95
    assert result["latent_auc"] < 0.75 and result["fracture_auc"] < 0.75


def test_draws_too_small_for_the_probe_are_left_out_and_counts_stop_below_the_patients():
    z, patches = patients(count=4, bodies=1)
    components = RECIPE.__class__(**{**vars(RECIPE), "probe_components": 4})
    assert not enough_to_fit(patches, components, ["p0"])  # 3 patches for the probe (G1 left out)
    assert enough_to_fit(patches, components, ["p0", "p1"])
    curve = by_training_patients(z, patches, components, 1.0, counts=[1, 2, 4], draws=3)
    assert set(curve) == {"2"}
    assert curve["2"]["draws"] == 3
    low, median, high = curve["2"]["latent_auc"]
    assert low <= median <= high
