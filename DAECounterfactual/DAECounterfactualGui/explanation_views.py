"""The explanation in the view layout: the volume in a sagittal Red view beside the severity sweep, and below them
the original patch, its reconstruction and one view per grade, linked so they pan and zoom together.

Every view shows one image alone (no foreground blend), so a counterfactual's difference is seen at full
contrast. View properties are set both at creation (``default``) and on every relayout, so Red turns sagittal
and the labels follow the current task's grade names (a panel the model reads as another grade says so).
"""

import slicer

from DAECounterfactualLib.inference.panel_labels import panel_names

LAYOUT_ID = 50500
VIEW_PREFIX = "DAECF"
SWEEP_VIEW = f"{VIEW_PREFIX}Sweep"
VIEW_GROUP = 1


def _properties(**values) -> str:
    return "".join(f'<property name="{name}" action="{action}">{value}</property>'
                   for name, value in values.items() for action in ("default", "relayout"))


def _sliceView(tag: str, **values) -> str:
    return f'<item><view class="vtkMRMLSliceNode" singletontag="{tag}">{_properties(**values)}</view></item>'


def explanationLayout(names: list[str]) -> str:
    """Red and the sweep on top; one view per image in ``names`` below, all sagittal."""
    row = "".join(_sliceView(f"{VIEW_PREFIX}{i}", orientation="Sagittal", viewlabel=name, viewgroup=VIEW_GROUP)
                  for i, name in enumerate(names))
    top = (_sliceView("Red", orientation="Sagittal")
           + _sliceView(SWEEP_VIEW, orientation="Sagittal", viewlabel="Sweep", viewgroup=VIEW_GROUP))
    return (f'<layout type="vertical"><item><layout type="horizontal">{top}</layout></item>'
            f'<item><layout type="horizontal">{row}</layout></item></layout>')


def _showAlone(sliceWidget, node) -> None:
    composite = sliceWidget.mrmlSliceCompositeNode()
    composite.SetBackgroundVolumeID(node.GetID() if node is not None else None)
    composite.SetForegroundVolumeID(None)
    composite.SetLabelVolumeID(None)
    composite.SetLinkedControl(True)
    sliceWidget.sliceLogic().FitSliceToAll()


def showExplanation(result, inputVolume, pointRAS=None) -> None:
    """Switch to the explanation layout and put each of ``result``'s images in its view."""
    images = [result.original, result.reconstruction, *result.counterfactuals]
    names = ["Original", "Reconstruction", *panel_names(result.explanation)]
    layoutManager = slicer.app.layoutManager()
    layoutNode = layoutManager.layoutLogic().GetLayoutNode()
    if layoutNode.IsLayoutDescription(LAYOUT_ID):
        layoutNode.SetLayoutDescription(LAYOUT_ID, explanationLayout(names))
    else:
        layoutNode.AddLayoutDescription(LAYOUT_ID, explanationLayout(names))
    layoutManager.setLayout(LAYOUT_ID)

    red = layoutManager.sliceWidget("Red")
    red.mrmlSliceCompositeNode().SetBackgroundVolumeID(inputVolume.GetID())
    red.mrmlSliceCompositeNode().SetForegroundVolumeID(None)
    if pointRAS is not None:
        red.mrmlSliceNode().JumpSliceByCentering(*pointRAS)
    for i, node in enumerate(images):
        _showAlone(layoutManager.sliceWidget(f"{VIEW_PREFIX}{i}"), node)
    sweep = result.sweep_browser.GetProxyNode(result.sweep_sequence) if result.sweep_browser is not None else None
    _showAlone(layoutManager.sliceWidget(SWEEP_VIEW), sweep)
