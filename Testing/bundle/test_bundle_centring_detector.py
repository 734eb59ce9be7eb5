"""A bundle's centring detector: centring.json and centring.safetensors, schema-checked and manifest-verified, loaded
without torch; clicks are centred by it, and a bundle without one centres by its OOD score."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bundle_fixtures import rewrite_bundle_file
from DAECounterfactualLib.bundle.store import (CENTRING_ARRAYS, CENTRING_DETECTOR, _write_manifest, load_bundle,
                                               set_centring_detector)
from DAECounterfactualLib.errors import BundleError
from DAECounterfactualLib.model.centring_detector import CentringDetector


def detector(z_dim: int, off_mean: float = 1.0) -> CentringDetector:
    """Centred latents about 0, off-centre ones about ``off_mean`` in every dimension, unit precision (a basis of
    every dimension)."""
    eye = np.eye(z_dim)
    return CentringDetector(np.zeros(z_dim), eye, np.zeros(z_dim), eye, np.full(z_dim, off_mean), eye, off_mm=3.0,
                            fitted_on="test crops")


@pytest.fixture
def with_centring(tmp_path, ct_bundle_path, tiny_config):
    path = shutil.copytree(ct_bundle_path, tmp_path / "bundle")
    set_centring_detector(path, detector(tiny_config.z_dim), model_card="test bundle with a centring detector")
    return path


def test_a_bundle_without_one_has_none(ct_bundle_path):
    assert load_bundle(ct_bundle_path, load_weights=False).centring_detector is None


def test_it_is_listed_loaded_and_scores_as_written_and_half_of_it_is_refused(with_centring):
    listed = json.loads((with_centring / "manifest.json").read_text())["files"]
    assert {CENTRING_DETECTOR, CENTRING_ARRAYS} <= set(listed)
    bundle = load_bundle(with_centring, load_weights=False)
    loaded = bundle.centring_detector
    assert bundle.model_card == "test bundle with a centring detector"
    assert loaded.off_mm == 3.0 and loaded.fitted_on == "test crops"
    z = np.random.default_rng(0).normal(size=(5, len(loaded.mean)))
    np.testing.assert_allclose(loaded.score(z), detector(len(loaded.mean)).score(z), atol=1e-9)
    assert bundle.ood_detector is None  # the OOD flag is untouched
    (with_centring / CENTRING_DETECTOR).unlink()  # half a detector
    _write_manifest(with_centring)
    with pytest.raises(BundleError, match=r"centring\.json: missing; the centring detector in centring\.safetensors"):
        load_bundle(with_centring, load_weights=False)


@pytest.mark.parametrize("change, message", [
    ({"kind": "mahalanobis_ledoit_wolf"}, r"centring\.json: .*kind must be one of"),
    ({"off_mm": "3"}, r"centring\.json: .*off_mm must be a finite number"),
    ({"off_mm": 0.0}, r"centring\.json: .*off_mm must be positive"),
    ({"z_dim": 3}, r"centring\.json: .*z_dim 3 but the arrays have"),
    ({"z_dim": 3, "arrays of size": 3}, r"centring\.json: 3 dimensions, model z_dim is"),
])
def test_a_bad_detector_is_refused_naming_the_file(with_centring, change, message):
    from safetensors.numpy import save

    if "arrays of size" in change:
        rewrite_bundle_file(with_centring, CENTRING_ARRAYS, save(detector(change.pop("arrays of size")).arrays()))
    rewrite_bundle_file(with_centring, CENTRING_DETECTOR,
                        json.loads((with_centring / CENTRING_DETECTOR).read_text()) | change)
    with pytest.raises(BundleError, match=message):
        load_bundle(with_centring, load_weights=False)


def test_a_detector_of_another_size_is_not_written(with_centring):
    with pytest.raises(BundleError, match="3 dimensions, model z_dim is"):
        set_centring_detector(with_centring, detector(3))


def test_a_click_is_centred_by_the_bundles_detector(with_centring):
    """The crop whose latent lies nearest the centred Gaussian wins, wherever the OOD score would have put it."""
    from DAECounterfactualLib.inference.centring import centring_scores

    bundle = load_bundle(with_centring, load_weights=False)
    z_dim = len(bundle.centring_detector.mean)
    crops = np.stack([np.full(z_dim, v) for v in (0.9, 0.1, 0.5)])
    assert np.argmin(centring_scores(bundle, crops)) == 1
    plain = load_bundle(with_centring, load_weights=False)
    plain.centring_detector = None
    np.testing.assert_allclose(centring_scores(plain, crops), plain.ood.ood_score(crops))
