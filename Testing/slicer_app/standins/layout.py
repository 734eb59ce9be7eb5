"""Stand-in for ``slicer.app.layoutManager()`` on top of the real vtkMRMLLayoutLogic.

What the Qt layout manager and its view factories do, reproduced with the real MRML logics:

- one view widget per view node of the scene (not only those in the current layout), created when the node is
  added (or at the end of a batch), as qMRMLLayoutViewFactory does; a slice widget owns a real vtkMRMLSliceLogic
  (which creates the slice composite node) and the logics are the application logic's slice logics;
- setting a layout sets the layout node's view arrangement; the real layout logic creates the view nodes, and the
  "relayout" properties of the description are applied again once the views exist (Qt's createViewFromXML does
  ``ApplyProperties(..., "relayout")``, which Python cannot call, so the layout node is modified once more to let
  the real logic apply them); views in the layout are MappedInLayout, the others are not;
- ``sliceWidget(name)``/``sliceViewNames()`` cover every slice view that has a widget, as in Slicer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import vtk

from . import qt
from .qt import QObject, QWidget, Signal, qproperty
from .widgets import _node_callback, qMRMLSliceWidget, qMRMLThreeDWidget

qt.register_standin_module(__name__)


class qSlicerLayoutManager(QObject):
    layoutChanged = Signal("int")

    def __init__(self, scene, application_logic, layout_logic):
        super().__init__(None)
        self._scene = scene
        self._application_logic = application_logic
        self._layout_logic = layout_logic
        self._slice_widgets: dict = {}  # slice node -> widget, in creation order
        self._threed_widgets: dict = {}
        self._slice_logics = vtk.vtkCollection()
        self._viewport = QWidget()
        self._applying = False
        self._applied = None
        application_logic.SetSliceLogics(self._slice_logics)
        scene.AddObserver(scene.NodeAddedEvent, _node_callback(self._on_node_added))
        scene.AddObserver(scene.NodeRemovedEvent, _node_callback(self._on_node_removed))
        scene.AddObserver(scene.EndBatchProcessEvent, lambda caller, event: self._create_missing_views())
        scene.AddObserver(scene.EndCloseEvent, self._on_scene_closed)
        self._layout_node().AddObserver(vtk.vtkCommand.ModifiedEvent, self._on_layout_node_modified, -10.0)
        self._create_missing_views()

    # -- view factory ------------------------------------------------------------------------------------------
    def _layout_node(self):
        return self._layout_logic.GetLayoutNode()

    def _on_node_added(self, node):
        if not self._scene.IsBatchProcessing():
            self._create_view(node)

    def _create_missing_views(self):
        for index in range(self._scene.GetNumberOfNodesByClass("vtkMRMLAbstractViewNode")):
            self._create_view(self._scene.GetNthNodeByClass(index, "vtkMRMLAbstractViewNode"))

    def _create_view(self, node):
        if node is None or not node.IsA("vtkMRMLAbstractViewNode") or node.GetParentLayoutNode() is not None:
            return
        if node.IsA("vtkMRMLSliceNode") and node not in self._slice_widgets:
            widget = qMRMLSliceWidget(self._viewport)
            widget._setup(self._scene, self._application_logic, node)
            widget.setVisible(False)
            self._slice_widgets[node] = widget
            self._slice_logics.AddItem(widget.sliceLogic())
        elif node.IsA("vtkMRMLViewNode") and node not in self._threed_widgets:
            widget = qMRMLThreeDWidget(self._viewport)
            widget.setMRMLScene(self._scene)
            widget.setVisible(False)
            self._threed_widgets[node] = widget

    def _on_node_removed(self, node):
        widget = self._slice_widgets.pop(node, None)
        if widget is not None:
            self._slice_logics.RemoveItem(widget.sliceLogic())
            widget.sliceLogic().SetMRMLScene(None)
            widget.setMRMLScene(None)
        self._threed_widgets.pop(node, None)

    def _on_scene_closed(self, caller, event):
        """Closing resets the singleton view nodes; Qt's layout manager sets the layout up again."""
        self._applied = None
        self._on_layout_node_modified(None, None)

    # -- layout ------------------------------------------------------------------------------------------------
    def _views_in_layout(self):
        """(class, singleton tag) of each view of the current layout description, in document order."""
        description = self._layout_node().GetCurrentLayoutDescription()
        if not description:
            return []
        root = ElementTree.fromstring(description)
        return [(view.get("class"), view.get("singletontag")) for view in root.iter("view")]

    def _on_layout_node_modified(self, caller, event):
        if self._applying:
            return
        node = self._layout_node()
        state = (node.GetViewArrangement(), node.GetCurrentLayoutDescription())
        if state == self._applied:
            return
        self._applying = True
        try:
            node.Modified()  # let the real layout logic apply the "relayout" properties to the now existing views
            self._create_missing_views()
            in_layout = set()
            for class_name, tag in self._views_in_layout():
                view = self._scene.GetSingletonNode(tag, class_name) if tag else None
                if view is None and class_name == "vtkMRMLViewNode" and not tag:
                    view = self._scene.GetSingletonNode("1", class_name)
                if view is not None:
                    in_layout.add(view)
            for view, widget in [*self._slice_widgets.items(), *self._threed_widgets.items()]:
                view.SetMappedInLayout(1 if view in in_layout else 0)
                widget.setVisible(bool(view.IsViewVisibleInLayout()))
            self._applied = state
        finally:
            self._applying = False
        self._emit("layoutChanged(int)", state[0])

    layout = qproperty(get=lambda self: self._layout_node().GetViewArrangement(),
                       set=lambda self, layout: self._layout_node().SetViewArrangement(int(layout)))

    def layoutLogic(self):
        return self._layout_logic

    def sliceViewNames(self):
        return [node.GetName() for node in self._slice_widgets]

    def sliceWidget(self, name):
        for node, widget in self._slice_widgets.items():
            if node.GetName() == name:
                return widget
        return None

    def slice_views_in_layout(self):
        """Harness helper (not Slicer API): slice view names of the current layout, in description order."""
        return [tag for class_name, tag in self._views_in_layout() if class_name == "vtkMRMLSliceNode"]
