"""A bundle's OOD detector (issue 23): ood.json and ood.safetensors, schema-checked and manifest-verified; it
replaces the z-score in every grade, and a bundle without one keeps flagging with its z-score statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bundle_fixtures import rewrite_bundle_file
from DAECounterfactualLib.bundle.store import (OOD_ARRAYS, OOD_DETECTOR, _write_manifest, load_bundle,
                                               set_ood_detector)
from DAECounterfactualLib.errors import BundleError
from DAECounterfactualLib.model.ood import MahalanobisDetector


def detector(z_dim: int, threshold: float = 1.5) -> MahalanobisDetector:
    return MahalanobisDetector(np.zeros(z_dim), 2.0 * np.eye(z_dim), threshold)


@pytest.fixture
def with_detector(tmp_path, ct_bundle_path):
    import shutil

    path = shutil.copytree(ct_bundle_path, tmp_path / "bundle")
    z_dim = load_bundle(path, load_weights=False).config.model.z_dim
    set_ood_detector(path, detector(z_dim), model_card="test bundle with a detector")
    return path


def test_a_bundle_without_a_detector_flags_with_its_z_scores(ct_bundle_path):
    bundle = load_bundle(ct_bundle_path, load_weights=False)
    assert bundle.ood_detector is None and bundle.ood is bundle.latent_stats


def test_the_detector_is_listed_loaded_and_grades_with(with_detector):
    from bundle_fixtures import blob_images

    from DAECounterfactualLib.inference.explainer import Explainer

    listed = json.loads((with_detector / "manifest.json").read_text())["files"]
    assert {OOD_DETECTOR, OOD_ARRAYS} <= set(listed)
    bundle = load_bundle(with_detector)
    assert bundle.ood is bundle.ood_detector and bundle.ood.ood_threshold == 1.5
    assert bundle.model_card == "test bundle with a detector"
    explainer = Explainer(bundle)
    images = blob_images()
    z = explainer.encode(images)
    grades = explainer.grade(images, "genant")
    np.testing.assert_allclose(grades.ood_score, 2.0 * np.mean(z ** 2, axis=1))
    np.testing.assert_array_equal(grades.ood, grades.ood_score > 1.5)
    assert not np.allclose(grades.ood_score, bundle.latent_stats.ood_score(z))


def test_a_flag_names_what_the_detector_compared_the_latent_with(with_detector):
    from bundle_fixtures import blob_images

    from DAECounterfactualLib.inference.explainer import Explainer
    from DAECounterfactualLib.inference.scores import grade_row

    z_dim = load_bundle(with_detector, load_weights=False).config.model.z_dim
    names = ("G0", "G1", "G2", "G3")

    def grades_with(fitted_on: str):  # a threshold every latent lies beyond
        set_ood_detector(with_detector, MahalanobisDetector(np.zeros(z_dim), 2.0 * np.eye(z_dim), 1e-9,
                                                            fitted_on=fitted_on))
        return Explainer(load_bundle(with_detector)).grade(blob_images(), "genant")

    plain, named = grades_with(""), grades_with("the exams its grades were validated on")
    assert plain.ood.all() and named.ood.all()
    assert "unlike the training images'" in grade_row(plain, 0, names)["ood_reason"]
    reason = grade_row(named, 0, names)["ood_reason"]
    assert reason.startswith("its latent is unlike those of the exams its grades were validated on (OOD score")
    assert json.loads((with_detector / OOD_DETECTOR).read_text())["fitted_on"] == "the exams its grades were " \
        "validated on"


def test_a_second_detector_replaces_the_first(with_detector):
    z_dim = load_bundle(with_detector, load_weights=False).config.model.z_dim
    set_ood_detector(with_detector, detector(z_dim, threshold=3.0))
    assert load_bundle(with_detector, load_weights=False).ood.ood_threshold == 3.0


def test_half_a_detector_is_refused_naming_the_missing_file(with_detector):
    (with_detector / OOD_ARRAYS).unlink()
    _write_manifest(with_detector)
    with pytest.raises(BundleError, match=r"ood\.safetensors: missing; the OOD detector in ood\.json needs both"):
        load_bundle(with_detector, load_weights=False)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(kind="knn"), r"ood\.json: .*kind must be one of \['mahalanobis_ledoit_wolf'\]"),
    (lambda d: d.update(ood_threshold="2"), r"ood\.json: .*ood_threshold must be a finite number"),
    (lambda d: d.update(ood_threshold=-1.0), r"ood\.json: .*ood_threshold must be positive"),
    (lambda d: d.update(z_dim=3), r"ood\.json: .*z_dim 3 but the arrays have"),
])
def test_schema_violations_are_refused_naming_the_file(with_detector, mutate, message):
    data = json.loads((with_detector / OOD_DETECTOR).read_text())
    mutate(data)
    rewrite_bundle_file(with_detector, OOD_DETECTOR, data)
    with pytest.raises(BundleError, match=message):
        load_bundle(with_detector, load_weights=False)


def test_arrays_of_another_size_or_not_safetensors_are_refused(with_detector):
    from safetensors.numpy import save

    rewrite_bundle_file(with_detector, OOD_ARRAYS, save(detector(3).arrays()))
    rewrite_bundle_file(with_detector, OOD_DETECTOR,
                        json.loads((with_detector / OOD_DETECTOR).read_text()) | {"z_dim": 3})
    with pytest.raises(BundleError, match=r"ood\.json: 3 dimensions, model z_dim is"):
        load_bundle(with_detector, load_weights=False)
    rewrite_bundle_file(with_detector, OOD_ARRAYS, b"\x80\x04not safetensors")
    with pytest.raises(BundleError, match=r"ood\.safetensors: not readable as float32 safetensors"):
        load_bundle(with_detector, load_weights=False)


def test_only_float32_tensors_whose_bytes_fit_their_shape_are_read(with_detector):
    from safetensors.numpy import save

    from DAECounterfactualLib.bundle.store import _float32_tensors

    arrays = detector(4).arrays()
    read = _float32_tensors(save(arrays, metadata={"m": "x"}))
    assert set(read) == {"mean", "precision"} and np.array_equal(read["precision"], arrays["precision"])
    with pytest.raises(ValueError, match="is F64, expected F32"):
        _float32_tensors(save({"mean": np.zeros(3)}))
    truncated = save(arrays)[:-8]
    with pytest.raises(ValueError, match="does not hold shape"):
        _float32_tensors(truncated)


def test_a_detector_of_another_size_is_not_written(with_detector):
    with pytest.raises(BundleError, match="3 dimensions, model z_dim is"):
        set_ood_detector(with_detector, detector(3))
