"""Fixtures of the headless MRML tests: the tiny CT bundle loaded, a fresh slicer-core scene, a phantom spine in it."""

from __future__ import annotations

import pytest

from scene_fixtures import LEVELS, add_points, add_volume_node


@pytest.fixture(scope="module")
def ct_bundle(ct_bundle_path):
    from DAECounterfactualLib.bundle.store import load_bundle

    return load_bundle(ct_bundle_path)


@pytest.fixture()
def logic(scene, ct_bundle):
    from DAECounterfactualLib.mrml.logic import ExplanationLogic

    return ExplanationLogic(scene, ct_bundle)


@pytest.fixture()
def spine(scene, phantom):
    """(volume node, point list with one point per vertebra labelled by level)."""
    volume = add_volume_node(scene, phantom.volume, name="spine")
    points = add_points(scene, [(level, p.ras) for level, p in zip(LEVELS, phantom.positions)], "vertebrae")
    return volume, points


@pytest.fixture()
def scene():
    """A fresh scene, also installed as ``slicer.mrmlScene`` for the duration of the test."""
    import slicer

    from DAECounterfactualLib.mrml.scene import new_scene

    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = new_scene()
    yield slicer.mrmlScene
    slicer.mrmlScene = previous


@pytest.fixture(scope="session")
def phantom():
    from DAECounterfactualResearch.synthesis import make_spine_phantom

    return make_spine_phantom(seed=1, shape=(64, 40, 40), spacing=(2.0, 2.0, 2.0), noise_hu=0.0)
