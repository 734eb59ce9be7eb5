"""3D Slicer scripted module: counterfactual explanations of pathology grades with a diffusion autoencoder.

All real work happens in the Qt-free ``DAECounterfactualLib`` package; this file is glue: the module
description, a thin widget, a Logic that Slicer's Python console can use, and a self-test.
"""

import logging

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from DAECounterfactualLib.errors import DAECFError


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


class DAECounterfactualWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DAECounterfactual.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = DAECounterfactualLogic()
        for name in self.logic.availableBundles():
            self.ui.bundleSelector.addItem(name)
        if not self.ui.bundleSelector.count:
            self.ui.statusLabel.text = "No bundled model found."


class DAECounterfactualLogic(ScriptedLoadableModuleLogic):
    """Entry points for the widget and for Slicer's Python console."""

    def availableBundles(self):
        from DAECounterfactualLib.bundle import available_bundles

        return sorted(available_bundles())

    def loadBundle(self, nameOrPath):
        from DAECounterfactualLib.bundle import load_bundle, resolve_bundle

        return load_bundle(resolve_bundle(nameOrPath))


class DAECounterfactualTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_bundles_load()

    def test_bundles_load(self):
        logic = DAECounterfactualLogic()
        for name in logic.availableBundles():
            try:
                bundle = logic.loadBundle(name)
            except DAECFError as exc:
                self.fail(f"bundled model {name} does not load: {exc}")
            logging.info(f"{bundle.bundle_id}: tasks {sorted(bundle.tasks)}")
        self.delayDisplay("Bundled models verified")
