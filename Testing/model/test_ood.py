"""OOD scores of z_sem: the Mahalanobis detector that bundles may carry (issue 23) beside the z-score statistics."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualLib.model.ood import MAHALANOBIS, LatentStats, MahalanobisDetector, squared_mahalanobis


def detector(dim: int = 4, threshold: float = 2.0, seed: int = 0) -> MahalanobisDetector:
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return MahalanobisDetector(np.arange(dim, dtype=float), a @ a.T + np.eye(dim), threshold)


def test_the_score_is_the_squared_distance_per_dimension():
    d = detector()
    z = np.random.default_rng(1).normal(size=(5, 4))
    expected = [(row - d.mean) @ d.precision @ (row - d.mean) / 4 for row in z]
    np.testing.assert_allclose(d.ood_score(z), expected)
    np.testing.assert_allclose(d.ood_score(z[0]), expected[:1])
    assert list(d.is_ood(z)) == [s > 2.0 for s in expected]


def test_with_the_identity_precision_it_is_the_mean_squared_z_score():
    z = np.random.default_rng(2).normal(size=(6, 3))
    stats = LatentStats(np.zeros(3), np.ones(3), ood_threshold=1.0)
    np.testing.assert_allclose(squared_mahalanobis(z, np.eye(3)), stats.ood_score(z))


def test_it_holds_exactly_what_it_stores():
    d = detector()
    stored = d.arrays()
    assert stored["mean"].dtype == np.float32 and stored["precision"].dtype == np.float32
    again = MahalanobisDetector.from_parts(d.to_dict(), stored)
    np.testing.assert_array_equal(again.precision, d.precision)
    z = np.random.default_rng(3).normal(size=(4, 4))
    np.testing.assert_array_equal(again.ood_score(z), d.ood_score(z))
    assert d.to_dict()["kind"] == MAHALANOBIS and d.to_dict()["z_dim"] == 4


@pytest.mark.parametrize("change, message", [
    (lambda data, arrays: data.update(kind="knn"), "unknown OOD detector kind 'knn'"),
    (lambda data, arrays: arrays.pop("precision"), "arrays must be 'mean' and 'precision'"),
    (lambda data, arrays: data.update(z_dim=5), "z_dim 5 but the arrays have 4 dimensions"),
    (lambda data, arrays: arrays.update(precision=np.triu(arrays["precision"]) + 1.0), "must be symmetric"),
    (lambda data, arrays: arrays.update(mean=np.zeros(3, np.float32)), r"must be \(d,\) and \(d, d\)"),
    (lambda data, arrays: arrays["mean"].__setitem__(0, np.nan), "must be finite"),
    (lambda data, arrays: data.update(ood_threshold=0.0), "ood_threshold must be positive"),
    (lambda data, arrays: data.update(ood_quantile=99.5), r"ood_quantile must lie in \(0, 1\)"),
])
def test_a_bad_detector_is_refused(change, message):
    d = detector()
    data, arrays = d.to_dict(), d.arrays()
    change(data, arrays)
    with pytest.raises(ValueError, match=message):
        MahalanobisDetector.from_parts(data, arrays)


def test_what_its_latents_are_of_travels_with_it():
    plain = detector()
    assert plain.fitted_on == "" and "fitted_on" not in plain.to_dict()
    named = MahalanobisDetector(plain.mean, plain.precision, plain.ood_threshold, fitted_on="validated exams")
    assert MahalanobisDetector.from_parts(named.to_dict(), named.arrays()).fitted_on == "validated exams"
