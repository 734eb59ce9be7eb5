"""The centring detector's arithmetic and checks: a crop nearer the centred Gaussian than the off-centre one scores
lower, what it stores reads back the same, and malformed parts are refused."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualLib.model.centring_detector import CENTRED_VS_OFF, CentringDetector


def two_gaussians(dim: int = 4, z_dim: int = 6) -> CentringDetector:
    """Gaussians in the first ``dim`` of ``z_dim`` latent dimensions, about a mean of 1 in every dimension."""
    return CentringDetector(np.ones(z_dim), np.eye(dim, z_dim), np.zeros(dim), np.eye(dim), np.full(dim, 2.0),
                            0.5 * np.eye(dim), off_mm=3.0)


def test_the_score_is_the_centred_distance_less_the_off_centre_one_in_the_basis():
    detector = two_gaussians()
    u = np.array([[0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0], [1.0, 0.0, 0.0, 1.0]])
    z = np.hstack([u, np.random.default_rng(0).normal(size=(3, 2))]) + 1.0  # the last two dimensions are ignored
    expected = (np.sum(u ** 2, axis=1) - 0.5 * np.sum((u - 2.0) ** 2, axis=1)) / 4
    np.testing.assert_allclose(detector.score(z), expected, atol=1e-12)
    assert detector.score(z[0])[0] < detector.score(z[1])[0]  # one latent as a row


def test_what_it_stores_reads_back_the_same():
    detector = two_gaussians()
    data = detector.to_dict()
    assert data["kind"] == CENTRED_VS_OFF and data["z_dim"] == 6 and data["components"] == 4 and data["off_mm"] == 3.0
    assert "fitted_on" not in data
    again = CentringDetector.from_parts(data, detector.arrays())
    z = np.random.default_rng(1).normal(size=(6, 6))
    np.testing.assert_array_equal(again.score(z), detector.score(z))


@pytest.mark.parametrize("change, message", [
    (dict(off_mean=np.zeros(3), off_precision=np.eye(3)), "have 4 and 3 dimensions, the basis 4"),
    (dict(basis=np.eye(4, 5)), r"basis \(4, 5\) must be \(k, d\) for a mean of shape \(d,\)"),
    (dict(off_mm=0.0), "off_mm must be positive"),
    (dict(centred_precision=np.triu(np.ones((4, 4)))), "must be symmetric"),
    (dict(off_mean=np.full(4, np.nan)), "must be finite"),
])
def test_malformed_detectors_are_refused(change, message):
    detector = two_gaussians()
    parts = dict(mean=detector.mean, basis=detector.basis, centred_mean=detector.centred_mean,
                 centred_precision=detector.centred_precision, off_mean=detector.off_mean,
                 off_precision=detector.off_precision, off_mm=3.0) | change
    with pytest.raises(ValueError, match=message):
        CentringDetector(**parts)


def test_parts_of_another_kind_or_with_other_arrays_are_refused():
    detector = two_gaussians()
    with pytest.raises(ValueError, match="unknown centring detector kind"):
        CentringDetector.from_parts(detector.to_dict() | {"kind": "mahalanobis_ledoit_wolf"}, detector.arrays())
    arrays = detector.arrays()
    del arrays["off_mean"]
    with pytest.raises(ValueError, match="arrays must be"):
        CentringDetector.from_parts(detector.to_dict(), arrays)
