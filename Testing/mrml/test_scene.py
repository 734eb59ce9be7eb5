"""Headless MRML layer (slicer-core): input nodes in world RAS, result nodes on the patch plane, sequences,
scores table and CSV, .mrb round trip, rollback."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from DAECounterfactualLib.inference.scores import write_scores_csv

slicer = pytest.importorskip("slicer")

from DAECounterfactualLib.mrml import scene as mrml  # noqa: E402
from DAECounterfactualLib.bundle.spec import StepPreset  # noqa: E402
from DAECounterfactualLib.errors import Cancelled, InputError  # noqa: E402
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch, patch_pixel_to_ras  # noqa: E402
from DAECounterfactualLib.inference.explainer import Explanation, Grades  # noqa: E402
from DAECounterfactualLib.model.preprocessing import Preprocessing  # noqa: E402
from DAECounterfactualLib.io.volumes import Volume  # noqa: E402
from bundle_fixtures import read_as  # noqa: E402
from scene_fixtures import (  # noqa: E402
    add_linear_transform, add_nonlinear_transform, add_points, add_volume_node, ijk_to_ras_of, rotation_z, scene_state)

PREP = Preprocessing("ct_window", -200.0, 800.0)
VALUE_RANGE = (-200.0, 800.0)
GRADES = ("G0", "G1", "G2", "G3")


def oblique_volume() -> Volume:
    rng = np.random.default_rng(0)
    matrix = rotation_z(20.0, (5.0, -3.0, 2.0)) @ np.diag([1.5, 2.0, 2.5, 1.0])
    return Volume(rng.normal(size=(6, 7, 8)).astype(np.float32), matrix, name="ct")


def fake_explanation(sweep_count: int = 5, size: int = 16) -> Explanation:
    rng = np.random.default_rng(1)

    def images(n):
        return rng.uniform(-1, 1, size=(n, 1, size, size)).astype(np.float32)

    one = np.zeros(1)
    return Explanation(task="genant", grade_names=GRADES,
                       grades=Grades(one, one + 0.5, one + 1.2, one.astype(int) + 1, one + 0.3, one.astype(bool)),
                       reconstruction=images(1)[0], counterfactuals=images(4), target_distances=np.arange(4.0) - 1.5,
                       reflection=images(1)[0], sweep=images(sweep_count),
                       sweep_distances=np.linspace(-2, 2, sweep_count), preset=StepPreset(2, 2),
                       reencoded=read_as([0, 1, 2, 3, 0]), reencoded_latents=np.zeros((5, 8)))


def add_fake_explanation(scene, phantom, sweep_count=5):
    patch = extract_sagittal_patch(phantom.volume, phantom.positions[1].ras, 16, 3.0)
    original = mrml.add_patch_node(scene, patch.pixels, patch.patch_to_ras, "L2 genant original", VALUE_RANGE)
    explanation = fake_explanation(sweep_count)
    nodes = mrml.add_explanation_nodes(scene, explanation, patch.patch_to_ras, PREP, VALUE_RANGE, "L2 genant",
                                       original)
    return nodes, explanation, patch


# ---------------------------------------------------------------------------------------------------------------
# Reading input nodes


def test_volume_node_reads_as_a_copy_with_its_geometry(scene):
    volume = oblique_volume()
    node = add_volume_node(scene, volume)
    read = mrml.volume_from_node(node)
    np.testing.assert_array_equal(read.array, volume.array)
    np.testing.assert_allclose(read.ijk_to_ras, volume.ijk_to_ras, atol=1e-12)
    read.array[:] = 0  # a copy: the node keeps its voxels
    assert np.abs(slicer.util.arrayFromVolume(node)).max() > 0


def test_parent_transforms_give_world_geometry_for_volumes_and_points(scene):
    volume = oblique_volume()
    node = add_volume_node(scene, volume)
    inner = add_linear_transform(scene, rotation_z(30.0, (10.0, 0.0, -4.0)), "inner")
    outer = add_linear_transform(scene, rotation_z(-12.0, (0.0, 7.0, 1.0)), "outer")
    inner.SetAndObserveTransformNodeID(outer.GetID())
    node.SetAndObserveTransformNodeID(inner.GetID())
    world = rotation_z(-12.0, (0.0, 7.0, 1.0)) @ rotation_z(30.0, (10.0, 0.0, -4.0))
    np.testing.assert_allclose(mrml.volume_from_node(node).ijk_to_ras, world @ volume.ijk_to_ras, atol=1e-9)
    points = add_points(scene, [("L3", (1.0, 2.0, 3.0)), ("x", (4.0, 5.0, 6.0))])
    points.SetAndObserveTransformNodeID(inner.GetID())
    np.testing.assert_allclose(mrml.point_from_markups(points, 1), (world @ [4.0, 5.0, 6.0, 1.0])[:3], atol=1e-9)


def test_non_linear_transforms_are_refused_for_volumes_and_applied_to_points(scene):
    node = add_volume_node(scene, oblique_volume(), name="spine")
    warp = add_nonlinear_transform(scene)
    node.SetAndObserveTransformNodeID(warp.GetID())
    with pytest.raises(InputError, match="'spine' is under the non-linear transform 'warp'; harden"):
        mrml.volume_from_node(node)
    points = add_points(scene, [("L1", (10.0, 20.0, 5.0))], "clicks")
    points.SetAndObserveTransformNodeID(warp.GetID())
    expected = warp.GetTransformToParent().TransformPoint(10.0, 20.0, 5.0)
    assert np.linalg.norm(np.subtract(expected, (10.0, 20.0, 5.0))) > 1.0  # the warp really moves the point
    np.testing.assert_allclose(mrml.point_from_markups(points), expected, atol=1e-6)


def test_label_maps_vectors_empty_lists_and_missing_points_are_clear_errors(scene, phantom):
    mask = add_volume_node(scene, phantom.mask, "vtkMRMLLabelMapVolumeNode", "vert_msk")
    with pytest.raises(InputError, match="'vert_msk' is a label map; select the image volume"):
        mrml.volume_from_node(mask)
    assert mrml.mask_from_node(mask).array.max() == 22  # the same node is fine where a mask is expected
    rgb = mrml.add_patch_node(scene, np.zeros((3, 4, 4)), np.eye(4), "photo")
    with pytest.raises(InputError, match="'photo' is a vector/tensor volume"):
        mrml.volume_from_node(rgb)
    empty = add_points(scene, [], "F")
    with pytest.raises(InputError, match="'F': the point list is empty; place a point"):
        mrml.point_from_markups(empty)
    with pytest.raises(InputError, match=r"no point 3 \(the list has 1 points\)"):
        mrml.point_from_markups(add_points(scene, [("a", (0, 0, 0))]), 3)
    with pytest.raises(InputError, match="a markups point list is needed"):
        mrml.point_from_markups(mask)


def test_level_names_are_read_from_point_labels():
    assert [mrml.level_from_text(t) for t in ("L3", "vertebrae_T12", "l1 fracture", "F-1", "")] == \
        ["L3", "T12", "L1", None, None]
    assert [mrml.level_from_text(t) for t in ("L4-L5", "disc l4/l5", "T12 - L1", "C2-C5")] == \
        ["L4-L5", "L4-L5", "T12-L1", "C2"]  # a pair of levels is a disc only where they are neighbours


# ---------------------------------------------------------------------------------------------------------------
# Result nodes


def test_patch_node_lies_on_the_plane_it_was_cut_from(scene, phantom):
    voxel = np.round(phantom.volume.ras_to_ijk_points(phantom.positions[0].ras[None]))
    # 1.5 mm off a voxel centre: pixel centres lie 1.5 + 3n mm from the patch centre, so every other one is a voxel
    centre = phantom.volume.ijk_to_ras_points(voxel)[0] + [0.0, 1.5, 1.5]
    patch = extract_sagittal_patch(phantom.volume, centre, 16, 3.0)
    node = mrml.add_patch_node(scene, patch.pixels, patch.patch_to_ras, "L1 patch")
    np.testing.assert_allclose(ijk_to_ras_of(node), patch.patch_to_ras, atol=1e-9)
    array = slicer.util.arrayFromVolume(node)
    assert array.shape == (1, 16, 16) and node.IsA("vtkMRMLScalarVolumeNode")
    # every voxel centre of the node maps to a sagittal point whose CT value (nearest voxel) matches it
    rows, cols = np.nonzero(np.ones((16, 16)))
    ras = patch_pixel_to_ras(ijk_to_ras_of(node), np.stack([cols, rows], 1))
    np.testing.assert_allclose(ras[:, 0], centre[0])
    ijk = np.round(phantom.volume.ras_to_ijk_points(ras)).astype(int)
    on_grid = np.all(np.abs(phantom.volume.ras_to_ijk_points(ras) - ijk) < 1e-6, axis=1)
    assert on_grid.sum() >= 64
    ct = phantom.volume.array[ijk[on_grid, 2], ijk[on_grid, 1], ijk[on_grid, 0]]
    np.testing.assert_allclose(array[0][rows[on_grid], cols[on_grid]], ct, atol=1e-3)
    display = node.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == pytest.approx(
        (patch.pixels.max() - patch.pixels.min(), (patch.pixels.max() + patch.pixels.min()) / 2), rel=1e-5)


def test_three_channel_images_become_vector_volumes(scene):
    image = np.random.default_rng(2).uniform(size=(3, 5, 6)).astype(np.float32)
    node = mrml.add_patch_node(scene, image, np.diag([0.5, 0.5, 0.5, 1.0]), "rgb", window=(0.0, 1.0))
    assert node.IsA("vtkMRMLVectorVolumeNode")
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), np.moveaxis(image, 0, -1)[None])
    with pytest.raises(InputError, match=r"got shape \(2, 5, 6\)"):
        mrml.add_patch_node(scene, image[:2], np.eye(4), "two channels")


def test_explanation_nodes_are_named_grouped_on_the_plane_and_in_hu(scene, phantom):
    nodes, explanation, patch = add_fake_explanation(scene, phantom)
    names = [n.GetName() for n in nodes.nodes()]
    assert names == ["L2 genant original", "L2 genant reconstruction",
                     *[f"L2 genant {g} counterfactual" for g in GRADES], "L2 genant reflection",
                     *[f"L2 genant {g} difference" for g in GRADES], "L2 genant grades",
                     "L2 genant grades browser", "L2 genant sweep", "L2 genant sweep browser"]
    for node in nodes.nodes()[:11]:
        np.testing.assert_allclose(ijk_to_ras_of(node), patch.patch_to_ras, atol=1e-9)
    hu = lambda x: (x + 1) / 2 * 1000 - 200  # noqa: E731
    np.testing.assert_allclose(slicer.util.arrayFromVolume(nodes.counterfactuals[2])[0],
                               hu(explanation.counterfactuals[2, 0]), atol=1e-3)
    np.testing.assert_allclose(slicer.util.arrayFromVolume(nodes.differences[3])[0],
                               hu(explanation.counterfactuals[3, 0]) - hu(explanation.reconstruction[0]), atol=1e-3)
    hierarchy = mrml.subject_hierarchy(scene)
    assert hierarchy.GetItemName(nodes.folder) == "L2 genant explanation"
    for node in nodes.nodes():
        assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) == nodes.folder


def test_sequences_step_through_grades_and_signed_distances(scene, phantom):
    nodes, explanation, _ = add_fake_explanation(scene, phantom, sweep_count=5)
    grades, sweep = nodes.grade_sequence, nodes.sweep_sequence
    assert grades.GetNumberOfDataNodes() == 4 and grades.GetIndexType() == grades.TextIndex
    assert [grades.GetNthIndexValue(i) for i in range(4)] == list(GRADES)
    assert sweep.GetIndexName() == "distance" and sweep.GetIndexType() == sweep.NumericIndex
    np.testing.assert_allclose([float(sweep.GetNthIndexValue(i)) for i in range(5)], explanation.sweep_distances)
    browser = nodes.sweep_browser
    browser.SetSelectedItemNumber(3)
    proxy = browser.GetProxyNode(sweep)
    assert proxy.GetName() == "L2 genant sweep frame"
    np.testing.assert_allclose(slicer.util.arrayFromVolume(proxy)[0], PREP.invert(explanation.sweep[3, 0],
                                                                                   VALUE_RANGE), atol=1e-3)


def test_no_sweep_means_no_sweep_sequence(scene, phantom):
    nodes, _, _ = add_fake_explanation(scene, phantom, sweep_count=0)
    assert nodes.sweep_sequence is None and nodes.sweep_browser is None
    assert nodes.grade_sequence.GetNumberOfDataNodes() == 4


# ---------------------------------------------------------------------------------------------------------------
# Scores


ROWS = [{"id": 21, "level": "L2", "kind": "vertebra", "r": 1.5, "a": -2.25, "s": 30.0, "distance": -0.75, "probability": 0.32,
         "score": 0.4, "grade": 0, "grade_name": "G0", "ood": False, "ood_score": 0.8, "ood_reason": "",
         "caution": "not valid on real patients: on 24 healthy vertebrae, ..."},
        {"id": 123, "level": "L4-L5", "kind": "disc", "r": 0.0, "a": 4.0, "s": -9.5, "distance": 1.25, "probability": 0.78,
         "score": 2.6, "grade": 3, "grade_name": "G3", "ood": True, "ood_score": 4.5,
         "ood_reason": "L4-L5 is a disc; this model grades vertebrae",
         "caution": "not valid on real patients: on 24 healthy vertebrae, ..."}]


def test_scores_table_has_typed_columns_and_round_trips(scene):
    table = mrml.add_scores_table(scene, ROWS, "ct genant scores")
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == list(mrml.SCORE_COLUMNS)
    assert table.GetNumberOfRows() == 2
    assert table.GetTable().GetColumnByName("grade").GetClassName() == "vtkIntArray"
    assert mrml.rows_from_table(table) == [{**row, "ood": int(row["ood"])} for row in ROWS]


def test_scores_csv_has_the_table_columns(tmp_path):
    path = write_scores_csv(ROWS, tmp_path / "out" / "scores.csv")
    with path.open(newline="") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == list(mrml.SCORE_COLUMNS)
    assert [r["level"] for r in read] == ["L2", "L4-L5"] and read[1]["ood"] == "1"
    assert [r["kind"] for r in read] == ["vertebra", "disc"]
    assert float(read[0]["a"]) == -2.25 and int(read[1]["grade"]) == 3


# ---------------------------------------------------------------------------------------------------------------
# Saving and loading


def test_mrb_round_trip_restores_every_result(scene, phantom, tmp_path):
    nodes, explanation, patch = add_fake_explanation(scene, phantom)
    mrml.add_scores_table(scene, ROWS, "ct genant scores")
    path = mrml.save_scene(scene, tmp_path / "results.mrb")
    loaded = mrml.load_scene(path)
    assert loaded is not scene

    def by_name(target, name):
        found = [target.GetNthNode(i) for i in range(target.GetNumberOfNodes())
                 if target.GetNthNode(i).GetName() == name]
        assert len(found) == 1, name
        return found[0]

    for node in [nodes.original, nodes.reconstruction, *nodes.counterfactuals, nodes.reflection, *nodes.differences]:
        copy = by_name(loaded, node.GetName())
        np.testing.assert_allclose(slicer.util.arrayFromVolume(copy), slicer.util.arrayFromVolume(node), atol=1e-6)
        np.testing.assert_allclose(ijk_to_ras_of(copy), patch.patch_to_ras, atol=1e-6)
    sweep = by_name(loaded, "L2 genant sweep")
    assert sweep.GetNumberOfDataNodes() == 5 and sweep.GetIndexName() == "distance"
    grades = by_name(loaded, "L2 genant grades")
    assert [grades.GetNthIndexValue(i) for i in range(4)] == list(GRADES)
    browser = by_name(loaded, "L2 genant sweep browser")
    assert browser.IsA("vtkMRMLSequenceBrowserNode") and browser.GetMasterSequenceNode().GetID() == sweep.GetID()
    browser.SetSelectedItemNumber(2)  # the reloaded browser still drives its proxy
    np.testing.assert_allclose(slicer.util.arrayFromVolume(by_name(loaded, "L2 genant sweep frame"))[0],
                               PREP.invert(explanation.sweep[2, 0], VALUE_RANGE), atol=1e-3)
    hierarchy = mrml.subject_hierarchy(loaded)
    folder = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(by_name(loaded, "L2 genant reflection")))
    assert hierarchy.GetItemName(folder) == "L2 genant explanation"
    assert mrml.rows_from_table(by_name(loaded, "ct genant scores")) == mrml.rows_from_table(
        by_name(scene, "ct genant scores"))


def test_saving_needs_an_mrb_name_and_loading_an_existing_file(scene, tmp_path):
    with pytest.raises(InputError, match="must end in .mrb"):
        mrml.save_scene(scene, tmp_path / "scene.zip")
    with pytest.raises(InputError, match="no such scene file"):
        mrml.load_scene(tmp_path / "absent.mrb")


# ---------------------------------------------------------------------------------------------------------------
# Rollback


def test_scene_changes_remove_everything_added_when_the_block_raises(scene, phantom):
    kept = add_volume_node(scene, phantom.volume)
    mrml.add_folder(scene, "existing folder", [kept])
    before = scene_state(scene)
    with pytest.raises(Cancelled):
        with mrml.SceneChanges(scene) as changes:
            add_fake_explanation(scene, phantom)
            assert len(changes.added()) > 10
            raise Cancelled("stop")
    assert scene_state(scene) == before
    assert scene.GetNodeByID(kept.GetID()) is kept


def test_scene_changes_keep_nodes_when_the_block_succeeds(scene, phantom):
    before = scene_state(scene)
    with mrml.SceneChanges(scene):
        nodes, _, _ = add_fake_explanation(scene, phantom)
    assert scene_state(scene) != before
    assert scene.GetNodeByID(nodes.reflection.GetID()) is nodes.reflection


def test_a_headless_scene_leaves_no_cache_folder_behind(tmp_path):
    """Every bare scene needs a cache folder (``ReadFromMRB`` extracts there); it goes with the scene, and at exit
    with any scene still alive, instead of piling up in the temp folder with each CLI run."""
    import gc
    import subprocess
    import sys

    scene = mrml.new_scene()
    folder = Path(scene.GetCacheManager().GetRemoteCacheDirectory())
    assert folder.is_dir()
    reopened = mrml.load_scene(mrml.save_scene(scene, tmp_path / "empty.mrb"))
    del scene, reopened
    gc.collect()
    assert not folder.exists()
    code = ("from DAECounterfactualLib.mrml.scene import new_scene; scene = new_scene(); "
            "print(scene.GetCacheManager().GetRemoteCacheDirectory())")
    kept = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert kept and not Path(kept).exists()
