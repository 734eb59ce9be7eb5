"""Bad input, cancellation and geometry through the ExplanationLogic on a slicer-core scene: one clear
InputError (or BundleError), the scene and the input nodes exactly as before."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (a test extra) is needed for MRML scenes")

from DAECounterfactualLib.errors import BundleError, Cancelled, InputError  # noqa: E402
from DAECounterfactualLib.mrml.logic import WARNING_ATTRIBUTE  # noqa: E402
from DAECounterfactualLib.io.volumes import Volume  # noqa: E402
from scene_fixtures import add_points, add_volume_node, scene_state  # noqa: E402
from bundle_fixtures import EXTENT_MM, FIELD_OFFSET, GRADIENT, field_model_input  # noqa: E402
from spine_testdata import centred_field_volume, rotation  # noqa: E402


def refused_without_changes(scene, request, match, error=InputError):
    """The request raises ``error`` matching ``match`` and leaves every node and hierarchy item as it was."""
    before = scene_state(scene)
    with pytest.raises(error, match=match):
        request()
    assert scene_state(scene) == before


def test_cancelling_a_batch_score_midway_leaves_the_scene_as_before(scene, logic, spine):
    volume, points = spine
    seen = []
    refused_without_changes(scene, lambda: logic.score(volume, points, "genant", progress=lambda i, n: seen.append(i),
                                                       cancel=lambda: len(seen) >= 2), "cancelled", Cancelled)
    assert seen == [1, 2]  # stopped between two patches, before grading
    assert not logic.busy


def test_a_point_in_air_is_refused_by_every_request(scene, logic, spine, phantom):
    volume, _ = spine
    corner = phantom.volume.ijk_to_ras_points([[0.0, 0.0, 32.0]])[0]  # right anterior edge: outside the body
    air = add_points(scene, [("L5", corner)], "air")
    for request in (lambda: logic.grade(volume, air, "genant"), lambda: logic.explain(volume, air, "genant"),
                    lambda: logic.score(volume, air, "genant")):
        refused_without_changes(scene, request, "lies in air or background")


@pytest.mark.parametrize("make, message", [
    (lambda v: Volume(v.array[:, :, 20:21], v.ijk_to_ras, name="thin"), "'thin': the image is a single slice"),
    (lambda v: Volume((v.array > 0).astype(np.int16) * 20, v.ijk_to_ras, name="ids"), "'ids': looks like a label map"),
    (lambda v: Volume(np.where(v.array > 0, 2.0e9, v.array), v.ijk_to_ras, name="big"), "integer overflow"),
])
def test_images_that_cannot_be_graded_are_refused(scene, logic, spine, phantom, make, message):
    _, points = spine
    node = add_volume_node(scene, make(phantom.volume))
    for request in (lambda: logic.grade(node, points, "genant"), lambda: logic.score(node, points, "genant")):
        refused_without_changes(scene, request, message)


def test_nan_voxels_in_a_node_are_refused(scene, logic, spine, phantom):
    _, points = spine
    node = add_volume_node(scene, Volume(phantom.volume.array, phantom.volume.ijk_to_ras, name="holes"))
    slicer.util.arrayFromVolume(node)[0, 0, 0] = np.nan  # as a faulty reader or filter would leave it
    slicer.util.arrayFromVolumeModified(node)
    refused_without_changes(scene, lambda: logic.grade(node, points, "genant"), "'holes': the image contains NaN")


def test_an_mri_given_to_a_ct_bundle_is_graded_flagged_and_explained(scene, logic, spine, phantom):
    _, points = spine
    noise = np.random.default_rng(0).normal(0.0, 20.0, phantom.volume.array.shape)  # scanner noise: many grey values
    mri = add_volume_node(scene, Volume(np.clip(phantom.volume.array + 1024 + noise, 0, None).astype(np.uint16),
                                        phantom.volume.ijk_to_ras, name="t2"))
    grades = logic.grade(mri, points, "genant")
    assert grades["ood"] and "do not look like CT in Hounsfield units" in grades["warning"]
    table = logic.score(mri, points, "genant")
    assert table.GetAttribute(WARNING_ATTRIBUTE) == grades["warning"]
    assert [table.GetTable().GetValueByName(r, "ood").ToInt() for r in range(3)] == [1, 1, 1]
    assert logic.explain(mri, points, "genant", sweep_count=0).grades["warning"] == grades["warning"]


@pytest.mark.parametrize("kwargs, message, error", [
    ({"task": "size"}, "has no task 'size'", BundleError),
    ({"preset": "best"}, "unknown quality preset 'best'", InputError),
    ({"sweep_count": 10**6}, r"sweep_count must be an integer in \[0, 64\]", InputError),
    ({"sweep_count": -1}, r"sweep_count must be an integer in \[0, 64\]", InputError),
])
def test_bad_request_arguments_are_refused_before_any_work(scene, logic, spine, kwargs, message, error):
    volume, points = spine
    arguments = {"task": "genant", **kwargs}
    refused_without_changes(scene, lambda: logic.explain(volume, points, **arguments), message, error)


@pytest.mark.parametrize("spacing, angles, mirror", [
    ((0.3, 0.3, 6.0), (0.0, 0.0, 0.0), False),
    ((0.3, 0.3, 6.0), (20.0, -35.0, 110.0), True),
    ((6.0, 0.4, 0.3), (-70.0, 15.0, 45.0), True),
])
def test_anisotropic_oblique_and_left_handed_nodes_grade_like_the_field_they_hold(scene, logic, spacing, angles,
                                                                                 mirror):
    direction = rotation(angles) @ np.diag([1.0, 1.0, -1.0 if mirror else 1.0])
    node = add_volume_node(scene, centred_field_volume(EXTENT_MM, spacing, direction, GRADIENT, FIELD_OFFSET))
    point = np.array([2.0, -3.0, 1.5])
    grades = logic.grade(node, add_points(scene, [("L2", point)]), "genant")
    expected = logic.explainer.grade(field_model_input(point), "genant")
    np.testing.assert_allclose(grades["distance"], expected.distance[0], atol=2e-3)


def test_repeated_scoring_leaks_no_nodes_once_results_are_removed(scene, logic, spine, phantom):
    """What scripts/studies/soak_score.py does 20 times: add a CT, score, remove table and CT with their display and
    storage nodes; the scene ends as it began (scene.RemoveNode alone would orphan the display node)."""
    from DAECounterfactualLib.mrml.scene import remove_node

    before = scene_state(scene)
    for _ in range(3):
        volume = add_volume_node(scene, phantom.volume, name="scan")
        table = logic.score(volume, list(phantom.positions), "genant")
        for node in (table, volume):
            remove_node(scene, node)
        assert scene_state(scene) == before
