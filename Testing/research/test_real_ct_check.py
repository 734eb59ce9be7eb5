"""The helpers of scripts/studies/real_ct_check.py: out-of-fold AUC by group, and the pixel change of a simulation."""

import numpy as np
import pytest

from DAECounterfactualResearch.evaluation import grouped_auc, pixel_change


def _mean_difference(x, y):
    direction = x[y].mean(axis=0) - x[~y].mean(axis=0)
    return lambda held: held @ direction


def test_grouped_auc_scores_each_group_with_a_model_that_did_not_see_it():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(10), 20)
    labels = rng.random(200) < 0.5
    informative = rng.normal(size=(200, 3)) + labels[:, None]
    assert grouped_auc(informative, labels, groups, _mean_difference) > 0.8
    # a feature that only names the group says nothing about a group held out
    per_group = rng.normal(size=(10, 3))[groups]
    labels_by_group = (groups % 2 == 0)
    assert grouped_auc(per_group, labels_by_group, groups, _mean_difference) < 0.8


def test_pixel_change_compares_each_simulation_with_its_own_intact_patch():
    images = np.zeros((4, 1, 2, 2), np.float32)
    images[1] += 0.5   # simulated, fractured: body a
    images[2] += 9.0   # intact body b: must not be compared with body a's simulation
    images[3] += 9.25  # simulated, fractured: body b
    keys = np.array(["a", "a", "b", "b"])
    simulated = np.array([False, True, False, True])
    fractured = np.array([False, True, False, True])
    assert pixel_change(images, keys, simulated, fractured) == pytest.approx(0.375)
