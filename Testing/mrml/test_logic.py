"""ExplanationLogic on a slicer-core scene with a tiny CT bundle: extract, grade, explain, score; cancellation
rollback, untouched inputs, one request at a time, clear errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from DAECounterfactualLib.inference.scores import write_scores_csv

slicer = pytest.importorskip("slicer")

from DAECounterfactualLib.mrml import scene as mrml  # noqa: E402
from DAECounterfactualLib.errors import Cancelled, InputError  # noqa: E402
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch, patch_pixel_to_ras  # noqa: E402
from DAECounterfactualLib.errors import BusyError  # noqa: E402
from DAECounterfactualLib.mrml.logic import ExplanationLogic  # noqa: E402
from DAECounterfactualLib.io.volumes import Volume, VertebraPosition  # noqa: E402
from scene_fixtures import (  # noqa: E402
    CT_WINDOW, GRADE_NAMES, LEVELS, PATCH_PX, PATCH_SPACING, add_linear_transform, add_points, add_volume_node,
    ijk_to_ras_of, rotation_z, scene_state)

def names_of(nodes) -> list[str]:
    return [node.GetName() for node in nodes]


def class_counts(nodes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.GetClassName()] = counts.get(node.GetClassName(), 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------------------------
# extract / grade


def test_extract_cuts_the_world_plane_through_the_point_with_transforms_honoured(scene, logic):
    """A linear intensity field is reproduced exactly, so every pixel proves its own world position."""
    gradient, offset = np.array([2.0, -3.0, 5.0]), 100.0
    local = rotation_z(8.0) @ np.diag([2.0, 2.0, 2.0, 1.0])
    local[:3, 3] = -local[:3, :3] @ (np.array([12, 36, 40]) - 1) / 2  # volume centred on the local origin
    k, j, i = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in (40, 36, 12)], indexing="ij")
    ras = np.stack([i, j, k], -1) @ local[:3, :3].T + local[:3, 3]
    node = add_volume_node(scene, Volume(ras @ gradient + offset, local, name="field"))
    volume_transform = rotation_z(10.0, (5.0, -4.0, 3.0))
    node.SetAndObserveTransformNodeID(add_linear_transform(scene, volume_transform, "volume pose").GetID())
    points = add_points(scene, [("L4", (2.0, -3.0, 4.0))])
    points.SetAndObserveTransformNodeID(add_linear_transform(scene, rotation_z(0.0, (1.0, 1.0, -2.0))).GetID())

    patch_node = logic.extract(node, points)
    assert patch_node.GetName() == "L4 patch" and patch_node.GetParentTransformNode() is None
    matrix = ijk_to_ras_of(patch_node)
    rows, cols = np.mgrid[0:PATCH_PX, 0:PATCH_PX]
    world = patch_pixel_to_ras(matrix, np.stack([cols.ravel(), rows.ravel()], 1))
    centre = patch_pixel_to_ras(matrix, [[(PATCH_PX - 1) / 2, (PATCH_PX - 1) / 2]])[0]
    np.testing.assert_allclose(centre, [3.0, -2.0, 2.0], atol=1e-9)  # the point in world RAS
    np.testing.assert_allclose(world[:, 0], 3.0, atol=1e-9)  # one sagittal plane
    np.testing.assert_allclose(np.linalg.norm(matrix[:3, :2], axis=0), PATCH_SPACING)
    in_local = (world - volume_transform[:3, 3]) @ volume_transform[:3, :3]  # inverse rigid transform
    expected = in_local @ gradient + offset
    np.testing.assert_allclose(slicer.util.arrayFromVolume(patch_node)[0].ravel(), expected, atol=1e-3)


def test_extracted_patch_keeps_input_units(logic, spine, phantom):
    volume, points = spine
    node = logic.extract(volume, points, index=1)
    expected = extract_sagittal_patch(phantom.volume, phantom.positions[1].ras, PATCH_PX, PATCH_SPACING).pixels
    np.testing.assert_allclose(slicer.util.arrayFromVolume(node)[0], expected, atol=1e-4)
    assert expected.max() > 100  # HU, not the model's [-1, 1]
    assert node.GetName() == "L2 patch"
    assert node.GetDisplayNode().GetWindowLevelMin() == pytest.approx(CT_WINDOW[0])


def test_grade_reads_out_every_field_and_matches_the_pipeline(logic, spine, phantom, ct_bundle):
    volume, points = spine
    result = logic.grade(volume, points, "genant", index=2)
    assert set(result) == {"distance", "probability", "score", "grade", "grade_name", "ood", "ood_score",
                           "ood_reason", "caution", "level", "warning", "moved_mm", "centring"}
    assert result["caution"] == ""  # the task has no real-patient record
    assert result["moved_mm"] == 0.0 and result["centring"] == ""  # not centred unless asked
    assert result["level"] == "L3" and result["grade_name"] == GRADE_NAMES[result["grade"]]
    patch = extract_sagittal_patch(phantom.volume, phantom.positions[2].ras, PATCH_PX, PATCH_SPACING)
    direct = logic.explainer.grade(ct_bundle.config.preprocessing.apply(patch.pixels)[None, None], "genant")
    assert result["distance"] == pytest.approx(float(direct.distance[0]), abs=1e-6)
    assert result["ood_score"] == pytest.approx(float(direct.ood_score[0]), rel=1e-6)
    assert 0 < result["probability"] < 1


def test_grade_reports_progress_and_can_be_cancelled_before_the_model_runs(scene, logic, spine):
    volume, points = spine
    seen = []
    logic.grade(volume, points, "genant", progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 2), (2, 2)]
    before = scene_state(scene)
    with pytest.raises(Cancelled):
        logic.grade(volume, points, "genant", cancel=lambda: True)
    assert scene_state(scene) == before and not logic.busy


def test_unknown_point_labels_give_no_level(scene, logic, spine, phantom):
    volume, _ = spine
    points = add_points(scene, [("F-1", phantom.positions[0].ras)])
    assert logic.grade(volume, points, "genant")["level"] is None
    assert logic.extract(volume, points).GetName() == "F-1 patch"


def test_a_point_named_outside_the_trained_levels_is_flagged_with_the_reason_an_unnamed_one_is_not(
        scene, logic, spine, phantom):
    """The test bundle was trained on L1-L3: a click named C5 (or a disc) is outside it, whatever its latent."""
    volume, _ = spine
    ras = phantom.positions[1].ras
    points = add_points(scene, [("C5", ras), ("L4-L5", ras), ("F-1", ras), ("L2", ras)])
    reasons = [logic.grade(volume, points, "genant", index=n)["ood_reason"] for n in range(4)]
    assert reasons[0].startswith("level C5 lies outside the trained levels L1–L3")
    assert reasons[1].startswith("L4-L5 is a disc; this model grades vertebrae")
    assert reasons[2] == reasons[3] and "level" not in reasons[2]  # same patch: only its latent can flag it
    table = logic.score(volume, points, "genant")
    assert [row["ood_reason"] for row in mrml.rows_from_table(table)] == reasons
    assert [row["ood"] for row in mrml.rows_from_table(table)][:2] == [1, 1]


# ---------------------------------------------------------------------------------------------------------------
# explain


def test_explain_creates_every_result_node_on_the_patch_plane(scene, logic, spine):
    volume, points = spine
    before = set(mrml.node_ids(scene))
    seen = []
    result = logic.explain(volume, points, "genant", preset="fast", sweep_count=3, index=1,
                           progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 2 inversion + 2 decoding steps
    added = [scene.GetNodeByID(i) for i in mrml.node_ids(scene) if i not in before]
    counts = class_counts(added)
    assert (counts["vtkMRMLScalarVolumeNode"], counts["vtkMRMLSequenceNode"],
            counts["vtkMRMLSequenceBrowserNode"]) == (11 + 2, 2, 2)  # 11 images + 2 proxies
    assert names_of(result.counterfactuals) == [f"L2 genant {g} counterfactual" for g in GRADE_NAMES]
    assert names_of(result.differences) == [f"L2 genant {g} difference" for g in GRADE_NAMES]
    plane = ijk_to_ras_of(result.original)
    for node in [result.reconstruction, *result.counterfactuals, result.reflection, *result.differences]:
        np.testing.assert_allclose(ijk_to_ras_of(node), plane, atol=1e-9)
    recon = slicer.util.arrayFromVolume(result.reconstruction)
    np.testing.assert_allclose(recon[0], (result.explanation.reconstruction[0] + 1) / 2 * np.ptp(CT_WINDOW)
                               + CT_WINDOW[0], atol=1e-3)  # back in HU
    np.testing.assert_allclose(slicer.util.arrayFromVolume(result.differences[3]),
                               slicer.util.arrayFromVolume(result.counterfactuals[3]) - recon, atol=1e-3)
    assert result.sweep_sequence.GetNumberOfDataNodes() == 3
    assert result.grade_sequence.GetNumberOfDataNodes() == 4
    assert result.grades["level"] == "L2" and result.grades["grade_name"] in GRADE_NAMES
    assert mrml.subject_hierarchy(scene).GetItemName(result.folder) == "L2 genant explanation"


def test_cancelling_leaves_the_scene_exactly_as_before(scene, logic, spine):
    volume, points = spine
    logic.extract(volume, points)  # something of ours already in the scene must survive
    before = scene_state(scene)
    seen = []
    with pytest.raises(Cancelled, match="cancelled"):
        logic.explain(volume, points, "genant", preset="standard", sweep_count=3,
                      progress=lambda i, n: seen.append(i), cancel=lambda: len(seen) >= 2)
    assert seen == [1, 2]  # stopped between diffusion steps
    assert scene_state(scene) == before
    with pytest.raises(Cancelled):
        logic.explain(volume, points, "genant", cancel=lambda: True)  # before any diffusion step
    assert scene_state(scene) == before


def test_a_failure_while_writing_nodes_rolls_back_too(scene, logic, spine, monkeypatch):
    volume, points = spine
    before = scene_state(scene)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mrml, "add_image_sequence", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        logic.explain(volume, points, "genant", sweep_count=2)
    assert scene_state(scene) == before


# ---------------------------------------------------------------------------------------------------------------
# score


def test_score_grades_every_point_in_one_batch(logic, spine, phantom, monkeypatch):
    volume, points = spine
    single = [logic.grade(volume, points, "genant", index=n) for n in range(3)]
    calls = []
    original = logic.explainer.grade
    monkeypatch.setattr(logic.explainer, "grade", lambda images, task: calls.append(len(images)) or
                        original(images, task))
    table = logic.score(volume, points, "genant")
    assert calls == [3]
    rows = mrml.rows_from_table(table)
    assert [r["level"] for r in rows] == list(LEVELS) and [r["id"] for r in rows] == [20, 21, 22]
    np.testing.assert_allclose([[r["r"], r["a"], r["s"]] for r in rows], [p.ras for p in phantom.positions])
    np.testing.assert_allclose([r["distance"] for r in rows], [s["distance"] for s in single], atol=1e-5)
    assert [r["grade_name"] for r in rows] == [s["grade_name"] for s in single]
    assert table.GetName() == "spine genant scores"


def test_points_naming_a_disc_are_disc_rows(scene, logic, spine, phantom):
    """Issue 22: a point labelled 'L4-L5' (or 'disc L4/L5') is the disc below L4, not vertebra L4."""
    volume, _ = spine
    points = add_points(scene, [("L2", phantom.positions[0].ras), ("disc l4/l5", phantom.positions[1].ras)])
    rows = mrml.rows_from_table(logic.score(volume, points, "genant"))
    assert [(r["id"], r["level"], r["kind"]) for r in rows] == [(21, "L2", "vertebra"), (123, "L4-L5", "disc")]


def test_score_takes_label_maps_and_position_lists(scene, logic, spine, phantom):
    volume, points = spine
    from_points = mrml.rows_from_table(logic.score(volume, points, "genant"))
    mask = add_volume_node(scene, phantom.mask, "vtkMRMLLabelMapVolumeNode", "vert_msk")
    from_mask = mrml.rows_from_table(logic.score(volume, mask, "genant"))
    from_list = mrml.rows_from_table(logic.score(volume, list(phantom.positions), "genant"))
    assert from_mask == from_list
    assert [r["level"] for r in from_mask] == list(LEVELS)
    np.testing.assert_allclose([r["distance"] for r in from_mask], [r["distance"] for r in from_points], atol=1e-5)


def test_centred_points_are_graded_where_centring_moves_them_and_the_points_stay(scene, logic, spine, phantom):
    from DAECounterfactualLib.inference.centring import centre_on_body

    volume, _ = spine
    clicks = [p.ras + [0.0, 0.0, 4.0] for p in phantom.positions]  # 4 mm above each centre
    points = add_points(scene, list(zip(LEVELS, clicks)))
    centred = [centre_on_body(logic.explainer, phantom.volume, click) for click in clicks]
    for index, centring in enumerate(centred):
        result = logic.grade(volume, points, "genant", index=index, centre=True)
        assert result["moved_mm"] == pytest.approx(centring.moved_mm) and result["centring"] == centring.describe()
        patch = extract_sagittal_patch(phantom.volume, centring.ras, PATCH_PX, PATCH_SPACING)
        direct = logic.explainer.grade(logic.bundle.config.preprocessing.apply(patch.pixels)[None, None], "genant")
        assert result["distance"] == pytest.approx(float(direct.distance[0]), abs=1e-6)
    np.testing.assert_allclose(slicer.util.arrayFromMarkupsControlPoints(points), clicks)  # the points stay
    rows = mrml.rows_from_table(logic.score(volume, points, "genant", centre=True))
    np.testing.assert_allclose([[r["r"], r["a"], r["s"]] for r in rows], [c.ras for c in centred], atol=1e-6)
    # centroids of a label map are where training patches were cut: never moved
    mask = add_volume_node(scene, phantom.mask, "vtkMRMLLabelMapVolumeNode", "vert_msk")
    assert mrml.rows_from_table(logic.score(volume, mask, "genant", centre=True)) == \
        mrml.rows_from_table(logic.score(volume, mask, "genant"))


def test_score_takes_segmentations_named_by_level(scene, logic, spine, phantom):
    volume, _ = spine
    mask = add_volume_node(scene, phantom.mask, "vtkMRMLLabelMapVolumeNode", "vert_msk")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "vertebrae")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(mask, segmentation)
    segments = segmentation.GetSegmentation()
    for n, level in enumerate(LEVELS):  # segment order follows the label values 20, 21, 22
        segments.GetNthSegment(n).SetName(f"vertebrae_{level}")
    rows = mrml.rows_from_table(logic.score(volume, segmentation, "genant"))
    assert [r["level"] for r in rows] == list(LEVELS) and [r["id"] for r in rows] == [20, 21, 22]
    np.testing.assert_allclose([[r["r"], r["a"], r["s"]] for r in rows], [p.ras for p in phantom.positions],
                               atol=1e-6)
    segments.GetNthSegment(0).SetName("Segment_1")
    with pytest.raises(InputError, match="segment 'Segment_1' names no vertebral level"):
        logic.score(volume, segmentation, "genant")


def test_score_refuses_positions_outside_the_volume_before_adding_anything(scene, logic, spine, phantom):
    volume, _ = spine
    before = scene_state(scene)
    far = VertebraPosition(23, "L4", np.array([0.0, 0.0, -500.0]))
    with pytest.raises(InputError, match=r"1 position\(s\) lie outside the volume .*L4 at RAS \[0.0, 0.0, -500.0\]"):
        logic.score(volume, [*phantom.positions, far], "genant")
    assert scene_state(scene) == before


def test_scores_write_to_csv_with_the_table_columns(logic, spine, tmp_path):
    volume, points = spine
    rows = mrml.rows_from_table(logic.score(volume, points, "genant"))
    text = write_scores_csv(rows, tmp_path / "scores.csv").read_text().splitlines()
    assert text[0] == ",".join(mrml.SCORE_COLUMNS) and len(text) == 4 and text[2].startswith("21,L2,")


# ---------------------------------------------------------------------------------------------------------------
# inputs, concurrency, errors


def test_requests_never_modify_their_input_nodes(scene, logic, spine):
    volume, points = spine
    mask = add_volume_node(scene, Volume(np.zeros((4, 4, 4), np.uint8) + 20, np.eye(4)), "vtkMRMLLabelMapVolumeNode")
    watched = [volume, points, mask]
    array, matrix = slicer.util.arrayFromVolume(volume).copy(), ijk_to_ras_of(volume)
    positions = slicer.util.arrayFromMarkupsControlPoints(points).copy()
    times = [node.GetMTime() for node in watched] + [volume.GetImageData().GetMTime()]
    logic.extract(volume, points)
    logic.grade(volume, points, "genant")
    logic.explain(volume, points, "genant", sweep_count=2)
    logic.score(volume, points, "genant")
    logic.score(volume, mask, "genant")
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), array)
    np.testing.assert_array_equal(ijk_to_ras_of(volume), matrix)
    np.testing.assert_array_equal(slicer.util.arrayFromMarkupsControlPoints(points), positions)
    assert [node.GetMTime() for node in watched] + [volume.GetImageData().GetMTime()] == times


def test_a_second_request_while_one_runs_is_refused(logic, spine):
    volume, points = spine
    refused = []

    def calls_back_in(i, n):
        if i == 1:
            try:
                logic.grade(volume, points, "genant")
            except BusyError as error:
                refused.append(str(error))

    logic.explain(volume, points, "genant", sweep_count=0, progress=calls_back_in)
    assert refused == ["cannot grade: another request is still running; wait for it or cancel it"]
    assert logic.grade(volume, points, "genant")["level"] == "L1"  # the lock was released

    started, release = threading.Event(), threading.Event()

    def wait(i, n):
        started.set()
        release.wait(30)

    worker = threading.Thread(target=lambda: logic.explain(volume, points, "genant", sweep_count=0, progress=wait))
    worker.start()
    try:
        assert started.wait(30) and logic.busy
        with pytest.raises(BusyError, match="cannot score: another request is still running"):
            logic.score(volume, points, "genant")
    finally:
        release.set()
        worker.join(60)
    assert not logic.busy


def test_bad_inputs_are_clear_errors(scene, logic, spine, phantom):
    volume, points = spine
    mask = add_volume_node(scene, phantom.mask, "vtkMRMLLabelMapVolumeNode", "vert_msk")
    with pytest.raises(InputError, match="'vert_msk' is a label map; select the image volume"):
        logic.grade(mask, points, "genant")
    with pytest.raises(InputError, match="'empty': the point list is empty"):
        logic.explain(volume, add_points(scene, [], "empty"), "genant")
    outside = add_points(scene, [("L5", (0.0, 0.0, 400.0))])
    with pytest.raises(InputError, match=r"patch centre at RAS \[0.0, 0.0, 400.0\] .* lies outside the volume"):
        logic.extract(volume, outside)
    with pytest.raises(InputError, match="positions must be a point list, a label map"):
        logic.score(volume, scene.AddNewNodeByClass("vtkMRMLTableNode", "t"), "genant")
    with pytest.raises(InputError, match="non-empty list of VertebraPosition"):
        logic.score(volume, [], "genant")
    with pytest.raises(InputError, match="no model bundle chosen"):
        ExplanationLogic(scene).grade(volume, points, "genant")


def test_bundles_load_lazily_by_path_or_name_and_default_to_slicer_scene(scene, ct_bundle_path, spine,
                                                                         monkeypatch):
    logic = ExplanationLogic(bundle=str(ct_bundle_path))
    assert logic.scene is scene and logic._explainer is None
    volume, points = spine
    assert logic.grade(volume, points, "genant")["level"] == "L1"
    assert logic.bundle.config.name == "tinyct" and str(logic.explainer.device) == "cpu"
    monkeypatch.setenv("DAECF_MODELS", str(ct_bundle_path.parent))
    logic.set_bundle("tinyct")
    assert logic._explainer is None  # reloaded on the next request, by name this time
    assert logic.grade(volume, points, "genant")["level"] == "L1" and logic.bundle.path == ct_bundle_path


def test_results_survive_a_scene_round_trip(scene, logic, spine, tmp_path):
    volume, points = spine
    result = logic.explain(volume, points, "genant", sweep_count=3)
    table = logic.score(volume, points, "genant")
    loaded = mrml.load_scene(mrml.save_scene(scene, tmp_path / "session.mrb"))
    names = {loaded.GetNthNode(i).GetName() for i in range(loaded.GetNumberOfNodes())}
    assert set(names_of(result.nodes())) | {table.GetName(), "spine", "vertebrae"} <= names
    sweep = loaded.GetNodeByID(result.sweep_sequence.GetID())
    assert sweep.GetNumberOfDataNodes() == 3
    copy = loaded.GetNodeByID(result.counterfactuals[2].GetID())
    np.testing.assert_allclose(slicer.util.arrayFromVolume(copy),
                               slicer.util.arrayFromVolume(result.counterfactuals[2]), atol=1e-4)
    # the .tsv inside the .mrb keeps 6 significant digits (vtkDelimitedTextWriter); CSV exports keep all
    reloaded, rows = mrml.rows_from_table(loaded.GetNodeByID(table.GetID())), mrml.rows_from_table(table)
    assert [(r["id"], r["level"], r["grade_name"], r["ood"]) for r in reloaded] == \
        [(r["id"], r["level"], r["grade_name"], r["ood"]) for r in rows]
    for column in ("r", "a", "s", "distance", "probability", "score"):
        np.testing.assert_allclose([r[column] for r in reloaded], [r[column] for r in rows], rtol=1e-5, atol=1e-12)


def test_an_explicit_scene_is_the_only_one_touched(scene, logic, spine, monkeypatch):
    other = mrml.new_scene()
    monkeypatch.setattr(slicer, "mrmlScene", other)
    volume, points = spine
    logic.explain(volume, points, "genant", sweep_count=2)
    logic.score(volume, points, "genant")
    assert other.GetNumberOfNodes() == 0 and scene.GetNumberOfNodes() > 20


def test_a_bundle_cut_along_the_spine_grades_each_point_in_the_pose_of_its_neighbours(scene, ct_bundle, phantom):
    """A spine tilted 15 degrees in the scanner: every click, every label-map centroid and every centred click is cut
    with its rows along the line through its neighbours, as the training patches of such a bundle were."""
    from dataclasses import replace

    from DAECounterfactualLib.inference.centring import centre_on_body
    from DAECounterfactualLib.inference.spine_axis import tilts_along_spine

    bundle = replace(ct_bundle, config=replace(ct_bundle.config, patch_rows="spine"))
    logic = ExplanationLogic(scene, bundle)
    angle = np.radians(15.0)
    turn = np.eye(4)
    turn[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    tilted = Volume(phantom.volume.array, turn @ phantom.volume.ijk_to_ras)
    positions = [VertebraPosition(p.label, p.level, turn[:3, :3] @ p.ras) for p in phantom.positions]
    tilts = tilts_along_spine(positions)
    assert all(abs(t + 15.0) < 5.0 for t in tilts)  # the upright phantom's spine is nearly vertical
    volume = add_volume_node(scene, tilted, name="tilted spine")
    points = add_points(scene, [(p.level, p.ras) for p in positions], "vertebrae")

    def direct(ras, tilt) -> float:
        patch = extract_sagittal_patch(tilted, ras, PATCH_PX, PATCH_SPACING, tilt_deg=tilt)
        return float(logic.explainer.grade(bundle.config.preprocessing.apply(patch.pixels)[None, None],
                                           "genant").distance[0])

    expected = [direct(p.ras, t) for p, t in zip(positions, tilts)]
    graded = [logic.grade(volume, points, "genant", index=n)["distance"] for n in range(len(positions))]
    np.testing.assert_allclose(graded, expected, atol=1e-5)
    assert abs(direct(positions[1].ras, 0.0) - expected[1]) > 1e-3  # the tilt matters to the grade
    mask = add_volume_node(scene, Volume(phantom.mask.array, turn @ phantom.mask.ijk_to_ras),
                           "vtkMRMLLabelMapVolumeNode", "vert_msk")
    np.testing.assert_allclose([r["distance"] for r in mrml.rows_from_table(logic.score(volume, mask, "genant"))],
                               expected, atol=1e-5)
    centring = centre_on_body(logic.explainer, tilted, positions[1].ras + [0.0, 0.0, 4.0], tilt_deg=tilts[1])
    clicks = add_points(scene, [(p.level, p.ras + ([0.0, 0.0, 4.0] if n == 1 else 0.0))
                                for n, p in enumerate(positions)], "clicks")
    result = logic.grade(volume, clicks, "genant", index=1, centre=True)
    assert result["moved_mm"] == pytest.approx(centring.moved_mm)
    assert result["distance"] == pytest.approx(direct(centring.ras, tilts[1]), abs=1e-5)
    lonely = add_points(scene, [("L2", positions[1].ras)], "one click")
    with pytest.raises(InputError, match="place a point on the vertebra above or below .* of L2"):
        logic.grade(volume, lonely, "genant")
