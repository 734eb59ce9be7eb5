"""Issue 23's round-trip score: each image's DDIM reconstruction error with its own z_sem, on even subsamples."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualResearch.ood_round_trip import round_trip_errors, round_trip_sets, subsample
from DAECounterfactualResearch.ood_sets import BundleSets
from DAECounterfactualResearch.ood_shifts import PatchSet


def test_subsamples_are_even_and_never_larger_than_the_set():
    np.testing.assert_array_equal(subsample(10, 3), [0, 4, 9])  # 4.5 rounds to even
    np.testing.assert_array_equal(subsample(2, 5), [0, 1])
    assert len(subsample(0, 5)) == 0


@pytest.mark.slow
def test_the_images_a_dae_was_trained_on_come_back_better_than_noise(blob_bundle):
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.inference.explainer import Explainer
    from bundle_fixtures import blob_images

    explainer = Explainer(load_bundle(blob_bundle))
    blobs = blob_images()
    noise = np.random.default_rng(0).uniform(-1, 1, blobs.shape).astype(np.float32)
    errors = round_trip_errors(explainer, np.concatenate([blobs, noise]), steps=5, batch_size=3)
    assert errors.shape == (8,) and np.all(errors >= 0)
    assert errors[:4].max() < errors[4:].min()
    sets = BundleSets(PatchSet("fit", "", blobs, np.zeros(4).astype(str)),
                      PatchSet("id", "", blobs, np.arange(4).astype(str)),
                      [PatchSet("noise", "", noise, np.arange(4).astype(str))], {})
    by_set, groups = round_trip_sets(explainer, sets, limit=1)
    assert len(by_set["id"]) == 4 and len(by_set["noise"]) == 1 and list(groups["noise"]) == ["0"]
    np.testing.assert_allclose(by_set["noise"], errors[4:5], rtol=1e-4)
