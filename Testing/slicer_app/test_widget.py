"""The module's panel run through Slicer 5.12.3's own Python layer (parameterNodeWrapper, ScriptedLoadableModule,
util, packaging, SampleData, PyTorchUtils), real MRML from slicer-core and Qt stand-ins (``harness.py``).

What this cannot see: real Qt event handling, PythonQt conversions and rendering (see README.md here).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from slicer_app.harness import requires_slicer_layer, slicer_session

pytestmark = requires_slicer_layer

REPO = Path(__file__).resolve().parents[2]
MODULE_FILE = REPO / "DAECounterfactual" / "DAECounterfactual.py"
UI_FILE = REPO / "DAECounterfactual" / "Resources" / "UI" / "DAECounterfactual.ui"
TINY = "tinyct"  # the test bundle's folder name (bundle_fixtures.write_ct_bundle)


@pytest.fixture(scope="module")
def phantom():
    from DAECounterfactualResearch.synthesis import make_spine_phantom

    return make_spine_phantom(seed=1, shape=(64, 40, 40), spacing=(2.0, 2.0, 2.0), noise_hu=0.0)


@pytest.fixture()
def models(ct_bundle_path, monkeypatch):
    """The tiny CT bundle listed beside the bundled models (fast enough for a widget test on 2 cores)."""
    monkeypatch.setenv("DAECF_MODELS", str(ct_bundle_path.parent))
    return ct_bundle_path


def open_module(session):
    """What Slicer does: load the module at startup, emit startupCompleted, build the panel when first shown."""
    session.load_module(MODULE_FILE)
    session.app.startupCompleted()
    widget = session.create_widget("DAECounterfactual")
    session.enter(widget)
    return widget


def add_spine(session, phantom, levels=("L1", "L2", "L3")):
    from DAECounterfactualLib.mrml.scene import add_volume_node

    volume = add_volume_node(session.scene, phantom.volume, name="spine")
    points = session.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "vertebrae")
    for level, position in zip(levels, phantom.positions):
        points.AddControlPoint(*[float(v) for v in position.ras], level)
    return volume, points


def choose(combo, text):
    index = combo.findText(text)
    assert index >= 0, f"{text!r} not offered in {combo.name}"
    combo.currentIndex = index


def node_ids(scene):
    return sorted(scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes()))


def errors(session):
    return [d for d in session.dialogs if d.kind == "error"]


# ---------------------------------------------------------------------------------------------------------------
# Opening the module


def test_the_panel_opens_without_torch_and_lists_models_and_tasks():
    with slicer_session(hide_modules=("torch", "safetensors")) as s:
        widget = open_module(s)
        offered = [widget.ui.bundleSelector.itemText(i) for i in range(widget.ui.bundleSelector.count)]
        assert {"vcf-ct", "disc-mri"} <= set(offered)
        assert widget.ui.taskSelector.currentText == "genant"
        assert "torch" not in sys.modules
        assert "PyTorch is not installed" in widget.ui.statusLabel.text
        assert s.dialogs == []


def test_the_parameter_node_is_connected_to_every_widget_the_ui_names(phantom):
    named = {w.get("name"): p.find("string").text for w in ElementTree.parse(UI_FILE).iter("widget")
             for p in w.findall("property") if p.get("name") == "SlicerParameterName"}
    assert set(named.values()) == {"inputVolume", "points", "vertebraLabels", "preset", "device", "centrePoints"}
    with slicer_session() as s:
        widget = open_module(s)
        volume, points = add_spine(s, phantom)
        labels = s.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "vertebra labels")
        p = widget._parameterNode
        widget.ui.inputVolumeSelector.setCurrentNode(volume)
        widget.ui.pointsWidget.setCurrentNode(points)
        widget.ui.labelMapSelector.setCurrentNode(labels)
        choose(widget.ui.presetSelector, "reference")
        choose(widget.ui.deviceSelector, "cpu")
        assert (p.inputVolume, p.points, p.vertebraLabels, p.preset, p.device) == \
            (volume, points, labels, "reference", "cpu")
        p.preset = "standard"  # and back: the parameter node drives the widgets
        assert widget.ui.presetSelector.currentText == "standard"
        assert p.centrePoints is True and widget.ui.centrePointsCheckBox.checked  # clicks are centred by default
        widget.ui.centrePointsCheckBox.click()
        assert p.centrePoints is False


def test_the_volume_selector_leaves_out_label_maps(phantom):
    from DAECounterfactualLib.mrml.scene import add_volume_node

    with slicer_session() as s:
        add_volume_node(s.scene, phantom.volume, "vtkMRMLLabelMapVolumeNode", name="labels first")
        volume = add_volume_node(s.scene, phantom.volume, name="spine")
        widget = open_module(s)
        assert widget._parameterNode.inputVolume is volume
        assert [n.GetName() for n in widget.ui.inputVolumeSelector.nodes()] == ["spine"]


def test_the_sample_ct_is_registered_in_sample_data_and_loads_without_torch():
    from DAECounterfactualLib.errors import DAECFError
    from DAECounterfactualLib.io.sampledata import verified_wheel

    try:
        verified_wheel()
    except DAECFError as exc:
        pytest.skip(f"the sample wheel is not cached ({exc})")
    with slicer_session(hide_modules=("torch", "safetensors")) as s:
        open_module(s)
        sources = s.slicer.modules.sampleDataSources["DAE Counterfactual"]
        source = next(source for source in sources if source.sampleName == "DAECF spine CT")
        assert Path(source.thumbnailFileName).is_file()
        volume, labels = source.customDownloader(source)
        assert volume.IsA("vtkMRMLScalarVolumeNode") and not volume.IsA("vtkMRMLLabelMapVolumeNode")
        assert labels.IsA("vtkMRMLLabelMapVolumeNode")
        assert "torch" not in sys.modules and errors(s) == []


# ---------------------------------------------------------------------------------------------------------------
# Dependencies: the path a 5.12 session takes


def test_the_first_request_without_torch_asks_the_pytorch_extension_and_declining_leaves_the_scene(phantom, models):
    with slicer_session(hide_modules=("torch", "safetensors")) as s:
        widget = open_module(s)
        add_spine(s, phantom)
        widget.initializeParameterNode()
        import PyTorchUtils

        calls = []
        install = PyTorchUtils.PyTorchUtilsLogic.installTorch

        def spy(self, *args, **kwargs):
            calls.append(kwargs)
            return install(self, *args, **kwargs)

        PyTorchUtils.PyTorchUtilsLogic.installTorch = spy
        s.answer_confirm(False)
        before = node_ids(s.scene)
        widget.ui.gradeButton.click()
        assert calls == [{"askConfirmation": True, "torchVersionRequirement": ">=2.2"}]
        assert [d.kind for d in s.dialogs] == ["question"] and "light-the-torch" in s.dialogs[0].text
        assert "not installed" in widget.ui.statusLabel.text and widget.ui.resultLabel.text == ""
        assert node_ids(s.scene) == before and widget.ui.gradeButton.enabled


def test_other_packages_come_through_slicer_packaging_and_declining_is_handled(phantom, models):
    with slicer_session(hide_modules=("safetensors",)) as s:
        widget = open_module(s)
        add_spine(s, phantom)
        widget.initializeParameterNode()
        s.answer_confirm(False)
        widget.ui.gradeButton.click()
        assert "slicer.packaging" in sys.modules  # imported explicitly: a fresh 5.12 session does not have it
        assert [d.title for d in s.dialogs] == ["DAE Counterfactual - Install Python Packages"]
        assert "safetensors>=0.4" in s.dialogs[0].detailedText
        assert "safetensors" in widget.ui.statusLabel.text and errors(s) == []


# ---------------------------------------------------------------------------------------------------------------
# The click a radiologist expects


def ready_panel(s, phantom, models):
    widget = open_module(s)
    volume, points = add_spine(s, phantom, levels=())
    widget.initializeParameterNode()
    choose(widget.ui.bundleSelector, TINY)
    choose(widget.ui.deviceSelector, "cpu")
    return widget, volume, points


def test_placing_a_point_grades_it_at_once(phantom, models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        assert not widget.ui.gradeButton.enabled  # no point yet
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        assert widget.ui.resultLabel.text.startswith("L2: G")
        assert widget.ui.gradeButton.enabled and errors(s) == []


def test_the_result_line_grades_the_centred_patch_unless_centring_is_switched_off(phantom, models):
    with slicer_session() as s:
        widget, volume, points = ready_panel(s, phantom, models)
        module = sys.modules[type(widget).__module__]
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras + [0.0, 0.0, 4.5]], "L2")
        centred = widget.logic.grade(volume, points, "genant", centre=True)
        assert widget.ui.resultLabel.text == module.describeGrade(centred)
        assert (", centred " in widget.ui.resultLabel.text) == (centred["moved_mm"] != 0)
        widget.ui.centrePointsCheckBox.click()
        widget.ui.gradeButton.click()
        assert widget.ui.resultLabel.text == module.describeGrade(widget.logic.grade(volume, points, "genant"))
        assert errors(s) == []


def test_a_point_named_outside_the_trained_levels_says_why_not_to_trust_its_grade(phantom, models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "C5")
        text = widget.ui.resultLabel.text
        assert text.startswith("C5: G") and "OUT OF DISTRIBUTION: level C5 lies outside the trained levels L1–L3" in text
        assert text.endswith("do not trust this grade") and errors(s) == []


def test_score_all_says_how_many_rows_are_flagged_and_where_the_reasons_are(phantom, models):
    from DAECounterfactualLib.mrml.scene import rows_from_table

    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        for level, position in zip(("C5", "L2", "L4-L5"), phantom.positions):
            points.AddControlPoint(*[float(v) for v in position.ras], level)
        widget.ui.scoreButton.click()
        table = s.scene.GetFirstNodeByClass("vtkMRMLTableNode")
        rows = rows_from_table(table)
        assert [bool(row["ood_reason"]) for row in rows][::2] == [True, True] and errors(s) == []
        flagged = sum(row["ood"] for row in rows)
        assert widget.ui.resultLabel.text == (f"3 targets graded into table '{table.GetName()}' — {flagged} OUT OF "
                                              "DISTRIBUTION: do not trust their grades (the table's ood_reason "
                                              "column says why)")


@pytest.fixture()
def cautioned_models(ct_bundle_path, tmp_path, monkeypatch):
    """The tiny CT bundle with a task that missed its targets on real patients (``RealDataCheck``)."""
    import shutil

    from DAECounterfactualLib.bundle.real_data import RealDataCheck
    from DAECounterfactualLib.bundle.store import set_real_data

    path = tmp_path / TINY
    shutil.copytree(ct_bundle_path, path)
    targets = {"healthy_g0": 0.9, "fracture_auc": 0.95}
    check = RealDataCheck("24 healthy vertebrae of 5 real CT series", {"healthy_g0": 0.0, "fracture_auc": 0.47},
                          targets)
    set_real_data(path, "genant", check)
    monkeypatch.setenv("DAECF_MODELS", str(tmp_path))
    return check


def test_a_task_that_failed_on_real_patients_cautions_every_grade_and_score_all(phantom, cautioned_models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, cautioned_models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        text = widget.ui.resultLabel.text
        assert text.startswith("L2: G") and f"CAUTION: {cautioned_models.caution}" in text
        assert errors(s) == []
        widget.ui.scoreButton.click()
        assert widget.ui.resultLabel.text.endswith(f"— CAUTION: {cautioned_models.caution}")


def test_grade_uses_the_point_just_placed_not_the_first(phantom, models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        for level, position in zip(("L1", "L2", "L3"), phantom.positions):
            points.AddControlPoint(*[float(v) for v in position.ras], level)
        assert widget.ui.resultLabel.text.startswith("L3: ")
        widget.ui.resultLabel.text = ""
        widget.ui.gradeButton.click()
        assert widget.ui.resultLabel.text.startswith("L3: ")


def test_explain_lays_out_one_unblended_view_per_image_with_the_current_grade_names(phantom, models):
    with slicer_session() as s:
        widget, volume, points = ready_panel(s, phantom, models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        widget.ui.explainButton.click()
        assert errors(s) == []
        manager = s.app.layoutManager()
        names = ["Original", "Reconstruction", "G0", "G1", "G2", "G3"]
        missed = []
        for i, name in enumerate(names):
            view = manager.sliceWidget(f"DAECF{i}")
            label = view.mrmlSliceNode().GetLayoutLabel()
            assert label == name or (i >= 2 and label.startswith(f"{name} (reads G"))
            missed += [name] if label != name else []
            assert view.mrmlSliceNode().GetOrientation() == "Sagittal"
            composite = view.mrmlSliceCompositeNode()
            assert composite.GetForegroundVolumeID() is None and composite.GetLinkedControl()
            background = s.scene.GetNodeByID(composite.GetBackgroundVolumeID())
            assert background.GetName().startswith("L2 genant")
        assert manager.sliceWidget("Red").mrmlSliceNode().GetOrientation() == "Sagittal"
        assert manager.sliceWidget("Red").mrmlSliceCompositeNode().GetBackgroundVolumeID() == volume.GetID()
        backgrounds = {manager.sliceWidget(f"DAECF{i}").mrmlSliceCompositeNode().GetBackgroundVolumeID()
                       for i in range(len(names))}
        assert len(backgrounds) == len(names)  # each view its own image
        # a panel the (untrained) model reads as another grade is labelled so, and the result line names it
        assert ("cannot draw" in widget.ui.resultLabel.text) == bool(missed)
        assert all(f"{name} reads as" in widget.ui.resultLabel.text for name in missed)


def test_the_sweep_is_shown_and_steps_with_the_slider(phantom, models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        widget.ui.explainButton.click()
        browser = widget.ui.sweepSeekWidget.mrmlSequenceBrowserNode()
        assert browser is not None and browser.GetName().endswith("sweep browser")
        sweep_view = s.app.layoutManager().sliceWidget("DAECFSweep").mrmlSliceCompositeNode()
        proxy = browser.GetProxyNode(browser.GetMasterSequenceNode())
        assert sweep_view.GetBackgroundVolumeID() == proxy.GetID()


def test_a_second_explain_relabels_the_views_for_another_task(phantom, models):
    """Views that already exist take the new grade names (layout properties apply on relayout, not only at
    creation)."""
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        s.app.layoutManager().sliceWidget("Red").mrmlSliceNode().SetOrientation("Axial")
        widget.ui.explainButton.click()
        red = s.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
        assert red.GetOrientation() == "Sagittal"
        from DAECounterfactualGui.explanation_views import LAYOUT_ID, explanationLayout

        layout_node = s.app.layoutManager().layoutLogic().GetLayoutNode()
        layout_node.SetLayoutDescription(LAYOUT_ID, explanationLayout(["Original", "Reconstruction", "P1", "P2"]))
        assert s.app.layoutManager().sliceWidget("DAECF2").mrmlSliceNode().GetLayoutLabel() == "P1"


def test_cancel_leaves_the_scene_unchanged_without_an_error_box(phantom, models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        before = node_ids(s.scene)
        original_set = s.qt.QProgressDialog.setValue

        def cancel_after_first_step(dialog, value):
            original_set(dialog, value)
            if value >= 1:
                dialog.cancel()

        s.qt.QProgressDialog.setValue = cancel_after_first_step
        widget.ui.explainButton.click()
        assert node_ids(s.scene) == before
        assert errors(s) == [] and "cancelled" in widget.ui.statusLabel.text
        assert widget.ui.explainButton.enabled and s.app.override_cursor_depth == 0


def test_expected_errors_are_a_status_message_not_an_error_box(phantom, models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        points.AddControlPoint(500.0, 500.0, 500.0, "far away")
        assert errors(s) == []
        assert "outside" in widget.ui.statusLabel.text


def test_inputs_are_disabled_while_a_request_runs(phantom, models):
    with slicer_session() as s:
        widget, _, points = ready_panel(s, phantom, models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        seen = []
        grade = widget.logic.grade

        def watching(*args, **kwargs):
            seen.append((widget.ui.gradeButton.enabled, widget.ui.explainButton.enabled,
                         widget.ui.scoreButton.enabled, widget.ui.modelCollapsibleButton.enabled))
            return grade(*args, **kwargs)

        widget.logic.grade = watching
        widget.ui.gradeButton.click()
        assert seen == [(False, False, False, False)]
        assert widget.ui.gradeButton.enabled


def test_score_uses_the_chosen_device(phantom, models):
    with slicer_session() as s:
        widget, volume, points = ready_panel(s, phantom, models)
        points.AddControlPoint(*[float(v) for v in phantom.positions[1].ras], "L2")
        choose(widget.ui.deviceSelector, "auto")
        widget.logic.setDevice("cuda-was-here")  # a stale device the request must replace
        widget.ui.scoreButton.click()
        assert widget.logic._device == "auto" and errors(s) == []


def test_the_saved_task_survives_filling_the_task_list(models):
    with slicer_session() as s:
        widget = open_module(s)
        choose(widget.ui.bundleSelector, "disc-mri")
        choose(widget.ui.taskSelector, "modic")
        widget.refreshBundles()
        assert widget._parameterNode.task == "modic"
        assert widget.ui.taskSelector.currentText == "modic"


def test_the_self_test_skips_without_torch_and_installs_nothing():
    import unittest

    with slicer_session(hide_modules=("torch", "safetensors")) as s:
        _, module = s.load_module(MODULE_FILE)
        result = unittest.TestResult()
        module.DAECounterfactualTest("test_explain_sample_ct").run(result)
        assert [reason for _, reason in result.skipped] and not result.failures and not result.errors
        assert "torch" in result.skipped[0][1] and s.dialogs == []


def test_the_console_logic_needs_no_panel():
    with slicer_session(hide_modules=("torch", "safetensors")) as s:
        _, module = s.load_module(MODULE_FILE)
        logic = module.DAECounterfactualLogic()
        assert "genant" in logic.bundleTasks("vcf-ct")
        assert not hasattr(s.slicer.modules, "DAECounterfactualWidget")
