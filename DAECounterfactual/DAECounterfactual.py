"""3D Slicer scripted module: counterfactual explanations of pathology grades with a diffusion autoencoder.

All real work happens in the Qt-free ``DAECounterfactualLib`` package (tested headless with slicer-core); the
panel's Slicer-side helpers are in ``DAECounterfactualGui``. This file is glue, laid out as Slicer's template: the
module description, the parameter node, a thin widget, a Logic for Slicer's Python console, and a self-test.
Opening the module needs no torch: models and tasks are listed from their JSON files, and torch is checked (and
installed with the user's consent) when the user first asks for a result.
"""

import logging
import traceback
from typing import Annotated, Optional, Union

import qt
import slicer
import vtk
from slicer import (vtkMRMLLabelMapVolumeNode, vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode,
                    vtkMRMLSegmentationNode)
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from DAECounterfactualGui.dependencies import dependenciesPresent, ensureDependencies, missingRequirements
from DAECounterfactualGui.explanation_views import showExplanation
from DAECounterfactualGui.sample_data import loadSampleCT, registerSampleData
from DAECounterfactualLib.errors import BusyError, Cancelled, DAECFError

PRESETS = ["fast", "standard", "reference"]
DEVICES = ["auto", "cpu", "cuda"]


class DAECounterfactual(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DAE Counterfactual"
        self.parent.categories = ["Quantification"]
        self.parent.dependencies = []
        self.parent.contributors = ["DAECounterfactual developers (DAECounterfactual project)"]
        self.parent.helpText = (
            "Place a point on a vertebra or an intervertebral disc: the module cuts a sagittal patch, grades it from "
            "a diffusion autoencoder's semantic latent with a linear probe, and shows the same anatomy as the model "
            "imagines it at every grade. Not for clinical use.")
        self.parent.acknowledgementText = (
            "Method: diffusion autoencoder counterfactuals for pathology grading (Preechakul et al. 2022 DAE; "
            "hyperplane-distance grading and calibrated counterfactuals).")
        slicer.app.connect("startupCompleted()", registerSampleData)


# ---------------------------------------------------------------------------------------------------------------
# Parameter node


@parameterNodeWrapper
class DAECounterfactualParameterNode:
    inputVolume: Optional[vtkMRMLScalarVolumeNode]
    points: Optional[vtkMRMLMarkupsFiducialNode]
    vertebraLabels: Optional[Union[vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode]]
    bundle: str = "vcf-ct"
    task: str = "genant"
    preset: Annotated[str, Choice(PRESETS)] = "fast"
    device: Annotated[str, Choice(DEVICES)] = "auto"
    centrePoints: bool = True


# ---------------------------------------------------------------------------------------------------------------
# Widget


class DAECounterfactualWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedPoints = None
        self._placedIndex = None
        self._busy = False

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DAECounterfactual.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = DAECounterfactualLogic()

        self.ui.gradeButton.connect("clicked(bool)", self.onGrade)
        self.ui.explainButton.connect("clicked(bool)", self.onExplain)
        self.ui.scoreButton.connect("clicked(bool)", self.onScore)
        self.ui.loadBundleButton.connect("clicked(bool)", self.onLoadBundleFolder)
        self.ui.bundleSelector.connect("currentIndexChanged(int)", self.onBundleChanged)
        self.ui.taskSelector.connect("currentIndexChanged(int)", self.onTaskChanged)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self.refreshBundles()
        if not dependenciesPresent():
            self.ui.statusLabel.text = ("PyTorch is not installed yet: the first Grade or Explain offers to install "
                                        f"{', '.join(missingRequirements())}.")

    def cleanup(self):
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        p = self._parameterNode
        if not p.inputVolume:
            p.inputVolume = firstNode("vtkMRMLScalarVolumeNode", exclude="vtkMRMLLabelMapVolumeNode")
        if not p.points:
            p.points = firstNode("vtkMRMLMarkupsFiducialNode")

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._selectCombo(self.ui.bundleSelector, self._parameterNode.bundle)
        self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None):
        self._observePoints(self._parameterNode.points if self._parameterNode else None)
        self._checkCanApply()

    def _checkCanApply(self):
        """Enable each action once its inputs are there (and none while a request runs), saying why not."""
        p = self._parameterNode
        point = bool(p and p.inputVolume and p.points and p.points.GetNumberOfDefinedControlPoints() > 0)
        task = bool(self.ui.taskSelector.currentText)
        positions = bool(p and p.inputVolume and (p.vertebraLabels or point))
        why = "" if (p and p.inputVolume) else "Select a volume first."
        why = why or ("" if point else "Place a point on a vertebra or disc first.")
        why = why or ("" if task else "Choose a model with at least one task.")
        for button, ready in ((self.ui.gradeButton, point and task), (self.ui.explainButton, point and task),
                              (self.ui.scoreButton, positions and task)):
            button.enabled = ready and not self._busy
        self.ui.gradeButton.toolTip = why or "Grade the anatomy at the point just placed"
        self.ui.explainButton.toolTip = why or "Grade it and show it at every grade"
        for widget in (self.ui.inputsCollapsibleButton, self.ui.modelCollapsibleButton):
            widget.enabled = not self._busy

    # -- the point list: a new point is graded at once ---------------------------------------------------------

    def _observePoints(self, points):
        if points is self._observedPoints:
            return
        if self._observedPoints is not None:
            self.removeObserver(self._observedPoints, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
                                self.onPointPlaced)
        self._observedPoints, self._placedIndex = points, None
        if points is not None:
            self.addObserver(points, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self.onPointPlaced)

    @vtk.calldata_type(vtk.VTK_INT)
    def onPointPlaced(self, caller, event, index):
        self._placedIndex = index
        self._checkCanApply()
        if self._busy or not self.ui.gradeButton.enabled:
            return
        if not dependenciesPresent():
            self.ui.statusLabel.text = "Point placed. PyTorch is not installed yet: press Grade to install it."
            return
        self.onGrade()

    def _pointIndex(self) -> int:
        """The point just placed if it still exists, else the last one in the list."""
        count = self._parameterNode.points.GetNumberOfControlPoints()
        return self._placedIndex if self._placedIndex is not None and self._placedIndex < count else count - 1

    # -- model and task selection ------------------------------------------------------------------------------

    def refreshBundles(self):
        with blockedSignals(self.ui.bundleSelector):
            self.ui.bundleSelector.clear()
            for name, path in self.logic.availableBundles().items():
                self.ui.bundleSelector.addItem(name, path)
            if self._parameterNode:
                self._selectCombo(self.ui.bundleSelector, self._parameterNode.bundle)
        if not self.ui.bundleSelector.count:
            self.ui.statusLabel.text = "No bundled model found: load a bundle folder."
        self.onBundleChanged()

    @staticmethod
    def _selectCombo(combo, text):
        index = combo.findText(text)
        if index >= 0:
            combo.currentIndex = index

    def onLoadBundleFolder(self):
        folder = qt.QFileDialog.getExistingDirectory(None, "Model bundle folder")
        if not folder:
            return
        try:
            self.logic.bundleTasks(folder)
        except DAECFError as exc:
            self._showExpectedError(exc)
            return
        with blockedSignals(self.ui.bundleSelector):
            self.ui.bundleSelector.addItem(folder, folder)
            self.ui.bundleSelector.currentIndex = self.ui.bundleSelector.count - 1
        self.onBundleChanged()

    def onBundleChanged(self, *_):
        """List the bundle's tasks (no torch needed); the model itself is loaded by the first request."""
        path = self.ui.bundleSelector.itemData(self.ui.bundleSelector.currentIndex)
        p = self._parameterNode
        with blockedSignals(self.ui.taskSelector):
            self.ui.taskSelector.clear()
            if path:
                try:
                    tasks = self.logic.bundleTasks(path)
                except DAECFError as exc:
                    self._showExpectedError(exc)
                    tasks = {}
                for task in sorted(tasks):
                    self.ui.taskSelector.addItem(task)
                if p:
                    self._selectCombo(self.ui.taskSelector, p.task)
        if path and p:
            p.bundle = self.ui.bundleSelector.currentText
            self.logic.setBundle(path)
            self.onTaskChanged()
        self._checkCanApply()

    def onTaskChanged(self, *_):
        if self._parameterNode and self.ui.taskSelector.currentText:
            self._parameterNode.task = self.ui.taskSelector.currentText

    # -- requests -----------------------------------------------------------------------------------------------

    def _run(self, what, function):
        """Run one request: inputs disabled, a modal progress dialog (with Cancel), expected errors as a status
        message, a cancel as a status message, anything else as an error box with its traceback."""
        if self._busy:
            return None
        if not ensureDependencies():
            self.ui.statusLabel.text = f"{what} needs {', '.join(missingRequirements())}: not installed."
            return None
        p = self._parameterNode
        self._busy = True
        self._checkCanApply()
        dialog = slicer.util.createProgressDialog(labelText=f"{what}…", windowTitle="DAE Counterfactual", maximum=0)
        cancelled = []
        dialog.connect("canceled()", lambda: cancelled.append(True))

        def progress(done, total):
            dialog.maximum, dialog.value = total, done
            slicer.app.processEvents()

        try:
            self.logic.setDevice(p.device)
            result = function(progress, lambda: bool(cancelled))
            self.ui.statusLabel.text = ""
            return result
        except Cancelled:
            self.ui.statusLabel.text = f"{what} cancelled: the scene is as it was."
        except DAECFError as exc:
            self._showExpectedError(exc)
        except Exception as exc:  # a bug: say so, with the traceback for the report
            logging.exception(f"{what} failed")
            slicer.util.errorDisplay(f"{what} failed: {exc}", detailedText=traceback.format_exc())
        finally:
            dialog.close()
            self._busy = False
            self._checkCanApply()
        return None

    def _showExpectedError(self, exc):
        self.ui.statusLabel.text = str(exc)
        slicer.util.showStatusMessage(str(exc), 10000)

    def onGrade(self):
        p = self._parameterNode
        index = self._pointIndex()
        grades = self._run("Grading", lambda progress, cancel: self.logic.grade(
            p.inputVolume, p.points, p.task, index=index, progress=progress, cancel=cancel, centre=p.centrePoints))
        if grades:
            self.ui.resultLabel.text = describeGrade(grades)

    def onExplain(self):
        p = self._parameterNode
        index = self._pointIndex()
        result = self._run("Explaining", lambda progress, cancel: self.logic.explain(
            p.inputVolume, p.points, p.task, preset=p.preset, index=index, progress=progress, cancel=cancel,
            centre=p.centrePoints))
        if result:
            self.ui.resultLabel.text = describeGrade(result.grades)
            position = [0.0, 0.0, 0.0]
            p.points.GetNthControlPointPositionWorld(index, position)
            showExplanation(result, p.inputVolume, position)
            self.ui.sweepSeekWidget.setMRMLSequenceBrowserNode(result.sweep_browser)

    def onScore(self):
        p = self._parameterNode
        positions = p.vertebraLabels or p.points
        table = self._run("Scoring", lambda progress, cancel: self.logic.score(
            p.inputVolume, positions, p.task, progress=progress, cancel=cancel, centre=p.centrePoints))
        if table is None:
            return
        if table.GetAttribute("DAECounterfactual.warning"):
            slicer.util.warningDisplay(table.GetAttribute("DAECounterfactual.warning"), windowTitle="Scores flagged")
        self.ui.resultLabel.text = describeScores(table)
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(table.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()


class blockedSignals:
    """``with blockedSignals(widget):`` fill or reset a widget without firing its change handlers."""

    def __init__(self, widget):
        self.widget = widget

    def __enter__(self):
        self.previous = self.widget.blockSignals(True)

    def __exit__(self, *exc):
        self.widget.blockSignals(self.previous)


def firstNode(className, exclude=None):
    """The scene's first node of a class (leaving out a subclass, e.g. label maps among scalar volumes)."""
    for node in slicer.util.getNodesByClass(className):
        if not (exclude and node.IsA(exclude)):
            return node
    return None


def describeGrade(grades):
    """The result line; a flagged grade carries its reason (``ood_reason``) and the warning not to trust it, and a
    task that missed its targets on real patients its caution; after Explain it also names the panels the model
    does not read as their grade (``panel_note``); a point centred along the spine says how far it moved."""
    reason = grades.get("ood_reason") or ("the model has not seen images like this" if grades.get("ood") else "")
    ood = f" — OUT OF DISTRIBUTION: {reason} — do not trust this grade" if reason else ""
    caution = f" — CAUTION: {grades['caution']}" if grades.get("caution") else ""
    panels = f" — {grades['panel_note']}" if grades.get("panel_note") else ""
    level = f"{grades['level']}: " if grades.get("level") else ""
    centring = f", {grades['centring']}" if grades.get("centring") else ""
    return (f"{level}{grades['grade_name']} (score {grades['score']:.2f}, P(pathology) {grades['probability']:.2f}, "
            f"distance {grades['distance']:+.2f}{centring}){ood}{caution}{panels}")


def describeScores(table):
    """The result line of Score all: how many rows are flagged, and where their reasons are; the task's caution
    (the same on every row)."""
    flags = table.GetTable().GetColumnByName("ood")
    rows = table.GetNumberOfRows()
    flagged = sum(int(flags.GetValue(row)) for row in range(rows))
    text = f"{rows} targets graded into table '{table.GetName()}'"
    if flagged:
        text += (f" — {flagged} OUT OF DISTRIBUTION: do not trust their grades (the table's ood_reason column "
                 "says why)")
    caution = table.GetTable().GetColumnByName("caution")
    if rows and caution is not None and str(caution.GetValue(0)):
        text += f" — CAUTION: {caution.GetValue(0)}"
    return text


# ---------------------------------------------------------------------------------------------------------------
# Logic


class DAECounterfactualLogic(ScriptedLoadableModuleLogic):
    """Slicer-side entry points; the work is done by DAECounterfactualLib.mrml.logic.ExplanationLogic, built on the
    first request (so creating this logic needs no torch).

    From Slicer's Python console (batch scoring; this does not open the module's panel):
        import DAECounterfactual
        logic = DAECounterfactual.DAECounterfactualLogic()
        logic.setBundle("vcf-ct")
        table = logic.score(volumeNode, vertebraLabelMapNode, "genant")
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._core = None
        self._bundle = "vcf-ct"
        self._device = "auto"

    def getParameterNode(self):
        return DAECounterfactualParameterNode(super().getParameterNode())

    # -- models, without torch --------------------------------------------------------------------------------

    @staticmethod
    def availableBundles():
        """Bundled model name -> folder."""
        from DAECounterfactualLib.bundle.registry import available_bundles

        return {name: str(path) for name, path in sorted(available_bundles().items())}

    @staticmethod
    def bundleTasks(nameOrPath):
        """Task name -> grade names of a bundle, read and verified without loading its weights."""
        from DAECounterfactualLib.bundle.registry import resolve_bundle
        from DAECounterfactualLib.bundle.store import load_bundle

        bundle = load_bundle(resolve_bundle(nameOrPath), load_weights=False)
        return {name: list(task.grade_names) for name, task in bundle.tasks.items()}

    def setBundle(self, nameOrPath):
        self._bundle = nameOrPath
        if self._core is not None:
            self._core.set_bundle(nameOrPath)

    def setDevice(self, device):
        """Takes effect on the next request; refused while one runs (the model would move under it)."""
        if device == self._device:
            return
        if self.busy:
            raise BusyError("cannot change the device while a request is running")
        self._device = device
        self._core = None

    @property
    def busy(self):
        return self._core is not None and self._core.busy

    # -- requests (need torch) ---------------------------------------------------------------------------------

    @property
    def core(self):
        if self._core is None:
            from DAECounterfactualLib.model.device import resolve_device
            from DAECounterfactualLib.mrml.logic import ExplanationLogic

            self._core = ExplanationLogic(slicer.mrmlScene, bundle=self._bundle, device=resolve_device(self._device))
        return self._core

    @property
    def bundle(self):
        return self.core.bundle

    def extract(self, volumeNode, pointsNode, index=0, centre=False):
        return self.core.extract(volumeNode, pointsNode, index, centre=centre)

    def grade(self, volumeNode, pointsNode, task, index=0, progress=None, cancel=None, centre=False):
        return self.core.grade(volumeNode, pointsNode, task, index, progress=progress, cancel=cancel, centre=centre)

    def explain(self, volumeNode, pointsNode, task, preset="fast", index=0, progress=None, cancel=None, centre=False):
        return self.core.explain(volumeNode, pointsNode, task, preset=preset, index=index, progress=progress,
                                 cancel=cancel, centre=centre)

    def score(self, volumeNode, positions, task, progress=None, cancel=None, centre=False):
        return self.core.score(volumeNode, positions, task, progress=progress, cancel=cancel, centre=centre)


# ---------------------------------------------------------------------------------------------------------------
# Test


class DAECounterfactualTest(ScriptedLoadableModuleTest):
    """Runs the Logic on the sample CT inside Slicer (the headless pytest suite covers the library and, through
    Slicer's own Python layer, the widget). Skips, and never installs anything, when torch or the sample is
    missing: a build machine's test must not change its Python environment."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_explain_sample_ct()

    def test_explain_sample_ct(self):
        if not dependenciesPresent():
            self.skipTest(f"not installed: {', '.join(missingRequirements())} (the module offers to install them)")
        from DAECounterfactualLib.io.volumes import positions_from_mask, read_volume

        try:
            volumeNode, labelsNode = loadSampleCT()
        except Exception as exc:  # no network on this machine and no cached wheel
            self.skipTest(f"sample CT not available: {exc}")
        files = labelsNode.GetStorageNode().GetFileName()
        l3 = [p for p in positions_from_mask(read_volume(files)) if p.level == "L3"][0]
        points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "L3")
        points.AddControlPoint(vtk.vtkVector3d(*l3.ras), "L3")
        logic = DAECounterfactualLogic()
        logic.setBundle("vcf-ct")
        before = slicer.mrmlScene.GetNumberOfNodes()
        result = logic.explain(volumeNode, points, "genant", preset="fast")
        self.assertEqual(len(result.counterfactuals), len(logic.bundle.task("genant").grade_names))
        self.assertGreater(slicer.mrmlScene.GetNumberOfNodes(), before)
        logging.info(describeGrade(result.grades))
        self.delayDisplay("Explanation of the sample CT's L3 done")
