"""3D Slicer scripted module: counterfactual explanations of pathology grades with a diffusion autoencoder.

All real work happens in the Qt-free ``DAECounterfactualLib`` package (tested headless with slicer-core); this
file is glue: the module description, a thin widget, a Logic for Slicer's Python console, and a self-test.
torch and the other dependencies are imported only after the user agreed to install them, so the module loads
(and can offer the installation) on a fresh Slicer.
"""

import logging
import os
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from DAECounterfactualLib.errors import DAECFError

MODULE_DIR = os.path.dirname(__file__)
REQUIREMENTS_FILE = os.path.join(MODULE_DIR, "Resources", "requirements-slicer.txt")
IMPORT_NAMES = ("torch", "safetensors")
LAYOUT_ID = 50500
VIEW_PREFIX = "DAECF"


class DAECounterfactual(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DAE Counterfactual"
        self.parent.categories = ["Explainability"]
        self.parent.dependencies = []
        self.parent.contributors = ["DAECounterfactual developers"]
        self.parent.helpText = (
            "Click a vertebra: the module cuts a sagittal patch, grades it from a diffusion autoencoder's semantic "
            "latent with a linear probe, and shows the same vertebra as the model imagines it at every grade. "
            "Not for clinical use.")
        self.parent.acknowledgementText = (
            "Method: diffusion autoencoder counterfactuals for pathology grading (Preechakul et al. 2022 DAE; "
            "hyperplane-distance grading and calibrated counterfactuals).")
        slicer.app.connect("startupCompleted()", registerSampleData)


def loadSampleCT(source=None):
    """Sample data loader: the lumbar CT (L2-L4) and its vertebra labels from the pinned tptbox wheel on PyPI,
    downloaded with pip (sha256-checked) the first time the user asks for it."""
    if not ensureDependencies():
        return []
    from DAECounterfactualLib.io.sampledata import fetch_sample_wheel, sample_files

    with slicer.util.tryWithErrorDisplay("Could not get the sample CT.", waitCursor=True):
        fetch_sample_wheel()
        files = sample_files("spine-ct")
        volume = slicer.util.loadVolume(str(files["image"]), {"name": "DAECF sample CT"})
        labels = slicer.util.loadLabelVolume(str(files["vertebra_mask"]), {"name": "DAECF sample CT vertebrae"})
        return [volume, labels]
    return []


def registerSampleData():
    """List the sample CT in the Sample Data module (category DAE Counterfactual)."""
    try:
        import SampleData

        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="DAE Counterfactual", sampleName="DAECF spine CT",
            thumbnailFileName=os.path.join(MODULE_DIR, "Resources", "Icons", "DAECounterfactual.png"),
            customDownloader=loadSampleCT)
    except Exception as exc:  # a Sample Data module without custom downloaders must not break module loading
        logging.warning(f"DAE Counterfactual: sample data not registered ({exc})")


# ---------------------------------------------------------------------------------------------------------------
# Dependencies


def dependenciesPresent():
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in IMPORT_NAMES)


def requirements():
    with open(REQUIREMENTS_FILE, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def ensureDependencies():
    """Install the Python dependencies after the user agrees; True when they are importable.

    Slicer 5.12+: slicer.packaging.pip_ensure asks, installs with progress and offers a restart. Before that, torch
    comes from the PyTorch extension (it picks the build matching the GPU) and the rest from pip_install."""
    if dependenciesPresent():
        return True
    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(requirements(), requester="DAE Counterfactual")
        return dependenciesPresent()
    if not slicer.util.confirmOkCancelDisplay(
            "DAE Counterfactual needs PyTorch and a few Python packages "
            f"({', '.join(r for r in requirements() if not r.startswith('torch'))}). Install them now?"):
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        import PyTorchUtils

        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
            return False
    slicer.util.pip_install([r for r in requirements() if not r.startswith("torch")])
    return dependenciesPresent()


# ---------------------------------------------------------------------------------------------------------------
# Parameter node


@parameterNodeWrapper
class DAECounterfactualParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    points: vtkMRMLMarkupsFiducialNode
    vertebraLabels: slicer.vtkMRMLNode
    bundle: str = "vcf-ct"
    task: str = "genant"
    preset: Annotated[str, Choice(["fast", "standard", "reference"])] = "fast"
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"


# ---------------------------------------------------------------------------------------------------------------
# Widget


class DAECounterfactualWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._cancelRequested = False

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
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.loadBundleButton.connect("clicked(bool)", self.onLoadBundleFolder)
        self.ui.bundleSelector.connect("currentIndexChanged(int)", self.onBundleChanged)
        self.ui.taskSelector.connect("currentIndexChanged(int)", self.onTaskChanged)
        self.ui.cancelButton.enabled = False
        self.ui.progressBar.hide()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.refreshBundles()
        self.initializeParameterNode()

    def cleanup(self):
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode and self._parameterNodeGuiTag:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode and self._parameterNodeGuiTag:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.ui.pointsPlaceWidget.setCurrentNode(self._parameterNode.points)
            self._selectCombo(self.ui.bundleSelector, self._parameterNode.bundle)

    # -- model and task selection ------------------------------------------------------------------------------

    def refreshBundles(self):
        self.ui.bundleSelector.blockSignals(True)
        self.ui.bundleSelector.clear()
        for name, path in self.logic.availableBundles().items():
            self.ui.bundleSelector.addItem(name, path)
        self.ui.bundleSelector.blockSignals(False)
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
        if folder:
            name = os.path.basename(folder.rstrip("/\\"))
            self.ui.bundleSelector.addItem(name, folder)
            self.ui.bundleSelector.currentIndex = self.ui.bundleSelector.count - 1

    def onBundleChanged(self, *_):
        path = self.ui.bundleSelector.currentData
        self.ui.taskSelector.clear()
        if not path or not ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay("Could not load the model bundle.", waitCursor=True):
            self.logic.setBundle(path)
            for task in sorted(self.logic.bundle.tasks):
                self.ui.taskSelector.addItem(task)
            if self._parameterNode:
                self._parameterNode.bundle = self.ui.bundleSelector.currentText
                self._selectCombo(self.ui.taskSelector, self._parameterNode.task)
            self.ui.statusLabel.text = f"Model {self.logic.bundle.bundle_id}"

    def onTaskChanged(self, *_):
        if self._parameterNode and self.ui.taskSelector.currentText:
            self._parameterNode.task = self.ui.taskSelector.currentText

    # -- requests -----------------------------------------------------------------------------------------------

    def _ready(self):
        p = self._parameterNode
        if not ensureDependencies():
            return False
        if not p.inputVolume or not p.points or p.points.GetNumberOfControlPoints() == 0:
            slicer.util.errorDisplay("Select a volume and place a point on a vertebra first.")
            return False
        self.logic.setDevice(p.device)
        return True

    def _progress(self, done, total):
        self.ui.progressBar.maximum = total
        self.ui.progressBar.value = done
        slicer.app.processEvents()  # lets the Cancel button be clicked between diffusion steps

    def _run(self, message, function):
        """Run a long request with the progress bar and Cancel enabled; expected errors become a message box."""
        self._cancelRequested = False
        self.ui.progressBar.show()
        self.ui.cancelButton.enabled = True
        try:
            with slicer.util.tryWithErrorDisplay(message, waitCursor=True):
                return function()
        finally:
            self.ui.progressBar.hide()
            self.ui.cancelButton.enabled = False

    def onCancel(self):
        self._cancelRequested = True

    def onGrade(self):
        if not self._ready():
            return
        p = self._parameterNode
        result = self._run("Grading failed.", lambda: self.logic.grade(p.inputVolume, p.points, p.task))
        if result:
            self.ui.resultLabel.text = describeGrade(result)

    def onExplain(self):
        if not self._ready():
            return
        p = self._parameterNode
        result = self._run("Explanation failed.", lambda: self.logic.explain(
            p.inputVolume, p.points, p.task, preset=p.preset, progress=self._progress,
            cancel=lambda: self._cancelRequested))
        if result:
            self.ui.resultLabel.text = describeGrade(result.grades)
            showExplanation(result, p.inputVolume)
            if result.sweep_browser:
                self.ui.sweepSeekWidget.setMRMLSequenceBrowserNode(result.sweep_browser)

    def onScore(self):
        if not ensureDependencies():
            return
        p = self._parameterNode
        positions = p.vertebraLabels or p.points
        if not p.inputVolume or not positions:
            slicer.util.errorDisplay("Select a volume and points or a vertebra label map first.")
            return
        table = self._run("Scoring failed.", lambda: self.logic.score(
            p.inputVolume, positions, p.task, progress=self._progress, cancel=lambda: self._cancelRequested))
        if table and table.GetAttribute("DAECounterfactual.warning"):
            slicer.util.warningDisplay(table.GetAttribute("DAECounterfactual.warning"), windowTitle="Scores flagged")
        if table:
            slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(table.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()


def describeGrade(grades):
    ood = " — OUT OF DISTRIBUTION: the model has not seen images like this" if grades.get("ood") else ""
    ood += f" ({grades['warning']})" if grades.get("warning") else ""
    level = f"{grades['level']}: " if grades.get("level") else ""
    return (f"{level}{grades['grade_name']} (score {grades['score']:.2f}, P(pathology) {grades['probability']:.2f}, "
            f"distance {grades['distance']:+.2f}){ood}")


def explanationLayout(names):
    """One sagittal view per image, in a row under the main sagittal view."""
    views = "".join(
        f'<item><view class="vtkMRMLSliceNode" singletontag="{VIEW_PREFIX}{i}">'
        f'<property name="orientation" action="default">Sagittal</property>'
        f'<property name="viewlabel" action="default">{name}</property>'
        f'<property name="viewgroup" action="default">1</property></view></item>' for i, name in enumerate(names))
    return ('<layout type="vertical"><item><view class="vtkMRMLSliceNode" singletontag="Red">'
            '<property name="orientation" action="default">Sagittal</property></view></item>'
            f'<item><layout type="horizontal">{views}</layout></item></layout>')


def showExplanation(result, inputVolume):
    """Original, reconstruction and one view per grade side by side, linked so they pan and zoom together."""
    images = [result.original, result.reconstruction, *result.counterfactuals]
    names = ["Original", "Reconstruction", *result.explanation.grade_names]
    layoutManager = slicer.app.layoutManager()
    layoutNode = layoutManager.layoutLogic().GetLayoutNode()
    if layoutNode.IsLayoutDescription(LAYOUT_ID):
        layoutNode.SetLayoutDescription(LAYOUT_ID, explanationLayout(names))
    else:
        layoutNode.AddLayoutDescription(LAYOUT_ID, explanationLayout(names))
    layoutManager.setLayout(LAYOUT_ID)
    slicer.util.setSliceViewerLayers(background=inputVolume, foreground=result.original, foregroundOpacity=0.5)
    for i, node in enumerate(images):
        widget = layoutManager.sliceWidget(f"{VIEW_PREFIX}{i}")
        if widget is None:
            continue
        composite = widget.mrmlSliceCompositeNode()
        composite.SetBackgroundVolumeID(node.GetID())
        composite.SetLinkedControl(True)
        widget.sliceLogic().FitSliceToAll()


# ---------------------------------------------------------------------------------------------------------------
# Logic


class DAECounterfactualLogic(ScriptedLoadableModuleLogic):
    """Slicer-side entry points; the work is done by DAECounterfactualLib.mrml.logic.ExplanationLogic.

    From Slicer's Python console (batch scoring):
        logic = slicer.util.getModuleLogic("DAECounterfactual")
        logic.setBundle("vcf-ct")
        table = logic.score(volumeNode, vertebraLabelMapNode, "genant")
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._core = None
        self._bundle = None
        self._device = "auto"

    def getParameterNode(self):
        return DAECounterfactualParameterNode(super().getParameterNode())

    @property
    def core(self):
        if self._core is None:
            from DAECounterfactualLib.mrml.logic import ExplanationLogic

            self._core = ExplanationLogic(slicer.mrmlScene, bundle=self._bundle, device=self._resolvedDevice())
        return self._core

    def _resolvedDevice(self):
        from DAECounterfactualLib.model.device import resolve_device

        return resolve_device(self._device)

    def availableBundles(self):
        from DAECounterfactualLib.bundle.registry import available_bundles

        return {name: str(path) for name, path in sorted(available_bundles().items())}

    def setBundle(self, nameOrPath):
        self._bundle = nameOrPath
        self.core.set_bundle(nameOrPath)

    def setDevice(self, device):
        if device != self._device:
            self._device = device
            self._core = None  # rebuilt on the next request, on the new device

    @property
    def bundle(self):
        return self.core.bundle

    def extract(self, volumeNode, pointsNode, index=0):
        return self.core.extract(volumeNode, pointsNode, index)

    def grade(self, volumeNode, pointsNode, task, index=0):
        return self.core.grade(volumeNode, pointsNode, task, index)

    def explain(self, volumeNode, pointsNode, task, preset="fast", progress=None, cancel=None):
        return self.core.explain(volumeNode, pointsNode, task, preset=preset, progress=progress, cancel=cancel)

    def score(self, volumeNode, positions, task, progress=None, cancel=None):
        return self.core.score(volumeNode, positions, task, progress=progress, cancel=cancel)


# ---------------------------------------------------------------------------------------------------------------
# Test


class DAECounterfactualTest(ScriptedLoadableModuleTest):
    """Runs the Logic on the sample CT inside Slicer (the headless pytest suite covers the library itself)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_explain_sample_ct()

    def test_explain_sample_ct(self):
        self.assertTrue(ensureDependencies(), "dependencies are not installed")
        from DAECounterfactualLib.io.sampledata import sample_files
        from DAECounterfactualLib.io.volumes import centroids_from_mask, read_volume

        try:
            files = sample_files("spine-ct")
        except DAECFError as exc:
            self.skipTest(str(exc))
        volumeNode = slicer.util.loadVolume(str(files["image"]))
        l3 = [p for p in centroids_from_mask(read_volume(files["vertebra_mask"])) if p.level == "L3"][0]
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
