"""Issue 23's candidate OOD scores: each catches what it is meant to catch on latents whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualLib.model.ood import LatentStats
from DAECounterfactualResearch.ood_detectors import (CANDIDATES, NearestNeighbours, fit_mahalanobis,
                                                     fit_nearest_neighbours)
from DAECounterfactualResearch.ood_evaluation import auroc


def correlated(n: int, seed: int = 0) -> np.ndarray:
    """Latents whose first two dimensions move together (correlation 0.98); six independent others."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=n)
    return np.column_stack([shared + 0.1 * rng.normal(size=n), shared + 0.1 * rng.normal(size=n),
                            rng.normal(size=(n, 6))])


def against_the_correlation(n: int, seed: int = 1) -> np.ndarray:
    """Within one sd in every dimension, but the first two of opposite sign: unlike any training latent."""
    z = correlated(n, seed)
    rng = np.random.default_rng(seed)
    z[:, 0] = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.0, n)
    z[:, 1] = -z[:, 0]
    return z


def test_mahalanobis_sees_a_broken_correlation_that_the_per_dimension_score_misses():
    train, held, shifted = correlated(2000), correlated(300, seed=2), against_the_correlation(300)
    mahalanobis, zscore = fit_mahalanobis(train), LatentStats.from_latents(train)
    assert auroc(mahalanobis.ood_score(held), mahalanobis.ood_score(shifted)) > 0.95
    assert auroc(zscore.ood_score(held), zscore.ood_score(shifted)) < 0.75


def test_mahalanobis_in_principal_directions_ignores_the_rest():
    train = correlated(2000)
    restricted = fit_mahalanobis(train, components=2)
    assert restricted.basis.shape == (2, 8)
    np.testing.assert_allclose(restricted.basis @ restricted.basis.T, np.eye(2), atol=1e-10)
    z = correlated(5, seed=3)
    moved = z.copy()
    moved[:, 2:] += 50.0  # along directions outside the two kept (nearly: the basis holds little of them)
    outside = np.eye(8) - restricted.basis.T @ restricted.basis
    np.testing.assert_allclose(restricted.ood_score(z + 50.0 * np.ones(8) @ outside), restricted.ood_score(z), atol=1e-8)


def test_the_shrunk_covariance_is_invertible_with_fewer_latents_than_dimensions():
    train = np.random.default_rng(0).normal(size=(20, 64))
    detector = fit_mahalanobis(train)
    assert np.all(np.isfinite(detector.ood_score(train))) and np.all(detector.ood_score(train) >= 0)


def test_nearest_neighbour_score_is_the_distance_to_the_kth_reference():
    reference = np.array([[0.0], [1.0], [3.0], [6.0]])
    detector = NearestNeighbours(reference, mean=np.zeros(1), std=np.ones(1), k=2)
    np.testing.assert_allclose(detector.ood_score(np.array([[0.0], [10.0], [2.0]])), [1.0, 7.0, 1.0])
    np.testing.assert_allclose(detector.ood_score(np.array([[0.0]]), chunk=1), [1.0])


def test_nearest_neighbours_are_measured_in_the_training_z_scores():
    train = np.column_stack([np.linspace(-100, 100, 50), np.linspace(-0.01, 0.01, 50)])
    detector = fit_nearest_neighbours(train, k=1)
    far_in_the_small_dimension = detector.ood_score(np.array([[0.0, 0.05]]))
    near_in_the_large_dimension = detector.ood_score(np.array([[20.0, 0.0]]))
    assert far_in_the_small_dimension > near_in_the_large_dimension


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_every_candidate_scores_a_distant_cluster_above_held_out_latents(name):
    train, held = correlated(600), correlated(100, seed=4)
    detector = CANDIDATES[name][1](train)
    assert auroc(detector.ood_score(held), detector.ood_score(held + 6.0)) > 0.99
