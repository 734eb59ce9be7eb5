"""Stand-ins for Slicer's own Qt widget classes (``slicer.qMRML*``/``slicer.qSlicer*``), built on the qt/ctk
stand-ins and backed by the real MRML scene of the session.

The node combo box follows qMRMLNodeComboBox.cxx of Slicer 5.x (defaults, filtering, what happens to the
selection when a scene is set, a node added or removed) on top of QComboBox's row semantics; the markups place
widget drives the real interaction and selection nodes; the slice widget owns a real vtkMRMLSliceLogic. Unknown
``slicer.q*`` names resolve to a generic qMRMLWidget-based class (see ``generic_slicer_class``).
"""

from __future__ import annotations

import vtk

from . import ctk, qt
from .qt import QWidget, Signal, qproperty

qt.register_standin_module(__name__)

NONE_ITEM = object()  # the "None" row of a node combo box


def _node_callback(function):
    """A VTK observer that receives the event's node (call data)."""

    def callback(caller, event, calldata):
        function(calldata)

    callback.CallDataType = vtk.VTK_OBJECT
    return callback


class _MRMLScene:
    """What qMRMLWidget and the MRML-aware CTK widgets add: ``setMRMLScene(scene)`` stores the scene and emits
    mrmlSceneChanged(vtkMRMLScene*) when it changes."""

    mrmlSceneChanged = Signal("vtkMRMLScene*")
    _mrml_scene = None

    def setMRMLScene(self, scene):
        if scene is not self._mrml_scene:
            self._mrml_scene = scene
            self._emit("mrmlSceneChanged(vtkMRMLScene*)", scene)

    def mrmlScene(self):
        return self._mrml_scene


class qMRMLWidget(_MRMLScene, QWidget):
    pass


class qSlicerWidget(qMRMLWidget):
    """qSlicerWidget is a QWidget + qSlicerObject in Slicer; the scene handling is the same as qMRMLWidget's."""


class _GenericMRMLWidget(qMRMLWidget, qt._GenericWidget):
    pass


def generic_slicer_class(name: str):
    return qt.generic_class(name, __name__, _GenericMRMLWidget)


# ---------------------------------------------------------------------------------------------------------------
# Node combo box


class _RowOption(qproperty):
    """A qMRMLNodeComboBox property the rows depend on (node types, hidden nodes, extra items): a new value makes the
    combo box observe the scene's nodes and compute its rows again."""

    def __set__(self, obj, value):
        before = getattr(obj, self.storage)
        super().__set__(obj, value)
        if getattr(obj, self.storage) != before:
            obj._rewatch()
            obj._refresh()


def _type_names(types):
    return tuple(str(t) for t in types if t)


class qMRMLNodeComboBox(QWidget):
    """The node selector. Rows are [None item] + matching nodes in scene order + action items ("separator",
    "Create new ...", "Delete current ...") when add/remove/rename are enabled, as in Slicer; the selection
    follows QComboBox's rules on these rows:

    - setting a scene selects the first row: the None item, else the first node (never an action item);
    - a node added to an *empty* combo box (no None item, no action items, no other node) is selected;
    - when the current node goes away, the row that takes its place is selected (the next node, else the last
      node, else None).

    Defaults as in qMRMLNodeComboBox.cxx: noneEnabled False, addEnabled True, removeEnabled True, renameEnabled
    False, showHidden False, showChildNodeTypes True, selectNodeUponCreation True. The scene is set once: a
    combo box changing scenes, or asked for a node before it has one, is not stood in.
    """

    currentNodeChanged = Signal("vtkMRMLNode*", "bool")
    currentNodeIDChanged = Signal("QString")
    nodeAdded = Signal("vtkMRMLNode*")
    nodeAboutToBeRemoved = Signal("vtkMRMLNode*")
    nodeAddedByUser = Signal("vtkMRMLNode*")

    nodeTypes = _RowOption((), _type_names)
    hideChildNodeTypes = _RowOption((), _type_names)
    noneEnabled = _RowOption(False, bool)
    addEnabled = _RowOption(True, bool)
    removeEnabled = _RowOption(True, bool)
    renameEnabled = _RowOption(False, bool)
    showHidden = _RowOption(False, bool)
    showChildNodeTypes = _RowOption(True, bool)
    selectNodeUponCreation = qproperty(True, bool)

    _scene = None
    _current = None  # the current row's item: a node, NONE_ITEM, an action string, or None (index -1)
    _in_batch = False

    def __init__(self, parent=None):
        super().__init__(parent)
        self._attribute_filters: dict[str, dict[str, object]] = {}
        self._rows: list = []
        self._node_tags: dict = {}
        self.enabled = False  # Slicer disables the selector until it has a scene

    # -- rows ------------------------------------------------------------------------------------------------------
    def _accepts(self, node) -> bool:
        if (not self.showHidden and node.GetHideFromEditors()) or any(node.IsA(t) for t in self.hideChildNodeTypes):
            return False
        for node_type in self.nodeTypes:
            if node.IsA(node_type) if self.showChildNodeTypes else node.GetClassName() == node_type:
                filters = self._attribute_filters.get(node_type, {})
                if all(node.GetAttribute(name) is not None if value is None else node.GetAttribute(name) == str(value)
                       for name, value in filters.items()):
                    return True
        return False

    def _action_items(self):
        label = self.nodeTypeLabel(self.nodeTypes[0] if len(self.nodeTypes) == 1 else "")
        items = ["separator"] if (self.addEnabled or self.removeEnabled or self.renameEnabled) else []
        if self.renameEnabled:
            items.append(f"Rename current {label}")
        if self.addEnabled:
            for node_type in self.nodeTypes:
                items.append(f"Create new {self.nodeTypeLabel(node_type)}")
                if self.renameEnabled:
                    items.append(f"Create new {self.nodeTypeLabel(node_type)} as...")
        if self.removeEnabled:
            items.append(f"Delete current {label}")
        return items

    def _compute_rows(self):
        if self._scene is None:
            return []
        nodes = [self._scene.GetNthNode(i) for i in range(self._scene.GetNumberOfNodes())]
        return [NONE_ITEM] * self.noneEnabled + [n for n in nodes if self._accepts(n)] + self._action_items()

    def _index_of(self, item):
        return next((i for i, row in enumerate(self._rows) if row is item or (isinstance(item, str) and row == item)),
                    -1)

    def _set_current_index(self, index):
        """QComboBox::setCurrentIndex, then qMRMLNodeComboBox::emitCurrentNodeChanged."""
        item = self._rows[index] if 0 <= index < len(self._rows) else None
        if item is self._current and (item is None or self._index_of(item) == index):
            return
        self._current = item
        self._emit_current_node_changed()

    def _emit_current_node_changed(self):
        index = self._index_of(self._current) if self._current is not None else -1
        node = self.currentNode()
        if node is None and index != (0 if self.noneEnabled else -1):
            if self.nodes():
                self.setCurrentNode(self.nodes()[-1])
            return
        self._emit("currentNodeChanged(vtkMRMLNode*)", node)
        self._emit("currentNodeChanged(bool)", node is not None)
        self._emit("currentNodeIDChanged(QString)", node.GetID() if node is not None else "")

    @staticmethod
    def _is_node(item):
        return item is not None and item is not NONE_ITEM and not isinstance(item, str)

    def _refresh(self):
        """The model changed (nodes added/removed/modified, filters or extra items changed)."""
        old_rows, old_current = self._rows, self._current
        old_index = self._index_of(old_current) if old_current is not None else -1
        self._rows = self._compute_rows()
        if old_current is not None and self._index_of(old_current) < 0:  # the current row is gone
            if self._rows:
                self._set_current_index(min(len(self._rows) - 1, max(old_index, 0)))
            else:
                self._current = None
                self._emit_current_node_changed()
            if self.currentNode() is None:  # refreshIfCurrentNodeHidden
                self.setCurrentNodeID("")
        elif old_current is None and not old_rows and self._rows:
            self._set_current_index(0)  # QComboBox selects the first row inserted into an empty combo box
        for node in self._rows:
            if self._is_node(node) and not any(node is old for old in old_rows):
                self._emit("nodeAdded(vtkMRMLNode*)", node)

    # -- scene -----------------------------------------------------------------------------------------------------
    def _watch(self, node):
        if any(node.IsA(node_type) for node_type in self.nodeTypes):
            self._node_tags[node] = node.AddObserver(vtk.vtkCommand.ModifiedEvent, self._on_node_modified)

    def _rewatch(self):
        for node, tag in self._node_tags.items():
            node.RemoveObserver(tag)
        self._node_tags = {}
        for index in range(self._scene.GetNumberOfNodes() if self._scene is not None else 0):
            self._watch(self._scene.GetNthNode(index))

    def _on_node_added(self, node):
        self._watch(node)
        if not self._in_batch:
            self._refresh()

    def _on_node_about_to_be_removed(self, node):
        if any(node is row for row in self._rows):
            self._emit("nodeAboutToBeRemoved(vtkMRMLNode*)", node)

    def _on_node_removed(self, node):
        tag = self._node_tags.pop(node, None)
        if tag is not None:
            node.RemoveObserver(tag)
        self._on_node_modified()

    def _on_node_modified(self, *event):
        if not self._in_batch:
            self._refresh()

    def _set_batch(self, in_batch):
        self._in_batch = in_batch
        self._on_node_modified()

    def setMRMLScene(self, scene):
        if scene is self._scene:
            return
        if self._scene is not None or scene is None:
            raise NotImplementedError("a node combo box changing or leaving its scene is not stood in")
        self._scene = scene
        scene.AddObserver(scene.NodeAddedEvent, _node_callback(self._on_node_added))
        scene.AddObserver(scene.NodeAboutToBeRemovedEvent, _node_callback(self._on_node_about_to_be_removed))
        scene.AddObserver(scene.NodeRemovedEvent, _node_callback(self._on_node_removed))
        scene.AddObserver(scene.StartBatchProcessEvent, lambda caller, event: self._set_batch(True))
        scene.AddObserver(scene.EndBatchProcessEvent, lambda caller, event: self._set_batch(False))
        self._rewatch()
        self._in_batch = bool(scene.IsBatchProcessing())
        self._rows = self._compute_rows()
        self._set_current_index(0)  # QComboBox::setRootModelIndex
        self.setCurrentNodeID(self.currentNodeID)
        self.enabled = True

    def mrmlScene(self):
        return self._scene

    # -- current node ----------------------------------------------------------------------------------------------
    def currentNode(self):
        return self._current if self._is_node(self._current) else None

    currentNodeID = qproperty(get=lambda self: self.currentNode().GetID() if self.currentNode() else "",
                              set="setCurrentNodeID")

    def setCurrentNodeID(self, node_id):
        if self._scene is None:
            raise NotImplementedError("selecting a node before the node combo box has a scene is not stood in")
        for index, row in enumerate(self._rows):
            if self._is_node(row) and row.GetID() == node_id:
                self._set_current_index(index)
                return
        self._set_current_index(0 if self.noneEnabled else -1)

    def setCurrentNode(self, node):
        self.setCurrentNodeID(node.GetID() if node is not None else "")

    def nodes(self):
        return [row for row in self._rows if self._is_node(row)]

    def addNode(self):
        """"Create new ..." for the first node type: a node named after the type's tag, with the attribute
        filters' values, selected if ``selectNodeUponCreation``."""
        node = self._scene.CreateNodeByClass(self.nodeTypes[0])
        node.UnRegister(None)
        node.SetName(self._scene.GenerateUniqueName(self._scene.GetTagByClassName(self.nodeTypes[0])))
        for filters in self._attribute_filters.values():
            for name, value in filters.items():
                node.SetAttribute(name, "" if value is None else str(value))
        self._scene.AddNode(node)
        if self.selectNodeUponCreation:
            self.setCurrentNode(node)
        self._emit("nodeAddedByUser(vtkMRMLNode*)", node)
        return node

    # -- filters ---------------------------------------------------------------------------------------------------
    def nodeTypeLabel(self, node_type):
        label = self._scene.GetTagByClassName(node_type) if self._scene is not None and node_type else ""
        return label or ("Volume" if node_type == "vtkMRMLVolumeNode" else "node")

    def addAttribute(self, node_type, name, value=None):
        if node_type == "vtkMRMLScalarVolumeNode" and name == "LabelMap":
            print("vtkMRMLScalarVolumeNode does not have a LabelMap attribute anymore.")
            return
        self._attribute_filters.setdefault(str(node_type), {})[str(name)] = value
        self._refresh()


# ---------------------------------------------------------------------------------------------------------------
# Markups


class qSlicerMarkupsPlaceWidget(qSlicerWidget):
    """Place mode through the real singleton interaction and selection nodes, as qSlicerMarkupsPlaceWidget does:
    enabling it makes the current markups node the active place node and switches the interaction mode to Place."""

    activeMarkupsPlaceModeChanged = Signal("bool")
    activeMarkupsFiducialPlaceModeChanged = Signal("bool")

    ForcePlaceSingleMarkup, ForcePlaceMultipleMarkups, ShowPlaceMultipleMarkupsOption = 0, 1, 2
    placeMultipleMarkups = qproperty(ShowPlaceMultipleMarkupsOption)
    _node = None

    def _singleton(self, class_name):
        scene = self.mrmlScene()
        return scene.GetSingletonNode("Singleton", class_name) if scene is not None else None

    def setCurrentNode(self, node):
        self._node = node

    def _place_mode_enabled(self):
        interaction = self._singleton("vtkMRMLInteractionNode")
        selection = self._singleton("vtkMRMLSelectionNode")
        if interaction is None or selection is None or self._node is None:
            return False
        return (interaction.GetCurrentInteractionMode() == interaction.Place
                and selection.GetActivePlaceNodeID() == self._node.GetID())

    placeModeEnabled = qproperty(get=_place_mode_enabled, set="setPlaceModeEnabled")

    def setPlaceModeEnabled(self, enable):
        interaction = self._singleton("vtkMRMLInteractionNode")
        if interaction is None:
            print("qSlicerMarkupsPlaceWidget::setPlaceModeEnabled failed: invalid interaction node")
            return
        before = self.placeModeEnabled
        if enable:
            selection = self._singleton("vtkMRMLSelectionNode")
            if self._node is not None and selection is not None:
                selection.SetReferenceActivePlaceNodeClassName(self._node.GetClassName())
                selection.SetActivePlaceNodeID(self._node.GetID())
            interaction.SetPlaceModePersistence(
                1 if self.placeMultipleMarkups == qSlicerMarkupsPlaceWidget.ForcePlaceMultipleMarkups else 0)
            interaction.SetCurrentInteractionMode(interaction.Place)
        elif interaction.GetCurrentInteractionMode() == interaction.Place:
            interaction.SetCurrentInteractionMode(interaction.ViewTransform)
        if self.placeModeEnabled != before:
            _emit_place_mode(self, self.placeModeEnabled)


def _emit_place_mode(widget, enabled):
    widget._emit("activeMarkupsPlaceModeChanged(bool)", enabled)
    widget._emit("activeMarkupsFiducialPlaceModeChanged(bool)", enabled)


class qSlicerSimpleMarkupsWidget(qSlicerWidget):
    """A markups node selector (nodeTypes vtkMRMLMarkupsFiducialNode, None/add/remove/rename enabled, hidden
    nodes shown, as in its .ui) with a place widget; changing the node emits markupsNodeChanged() and, with
    ``enterPlaceModeOnNodeChange`` (default True), enters place mode for the new node."""

    markupsNodeChanged = Signal("")
    markupsFiducialNodeChanged = Signal("")
    activeMarkupsPlaceModeChanged = Signal("bool")
    activeMarkupsFiducialPlaceModeChanged = Signal("bool")
    enterPlaceModeOnNodeChange = qproperty(True, bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._combo = qMRMLNodeComboBox(self)
        self._combo.nodeTypes = ["vtkMRMLMarkupsFiducialNode"]
        self._combo.showHidden = True
        self._combo.noneEnabled = True
        self._combo.renameEnabled = True
        self._place = qSlicerMarkupsPlaceWidget(self)
        self.connect("mrmlSceneChanged(vtkMRMLScene*)", self._combo, "setMRMLScene(vtkMRMLScene*)")
        self.connect("mrmlSceneChanged(vtkMRMLScene*)", self._place, "setMRMLScene(vtkMRMLScene*)")
        self._combo.connect("currentNodeChanged(vtkMRMLNode*)", self._on_node_changed)
        self._place.connect("activeMarkupsPlaceModeChanged(bool)", lambda enabled: _emit_place_mode(self, enabled))

    def _on_node_changed(self, node):
        self._place.setCurrentNode(node)
        if self.enterPlaceModeOnNodeChange:
            self._place.setPlaceModeEnabled(node is not None)
        self._emit("markupsNodeChanged()")
        self._emit("markupsFiducialNodeChanged()")

    def markupsSelectorComboBox(self):
        return self._combo

    def markupsPlaceWidget(self):
        return self._place

    def currentNode(self):
        return self._combo.currentNode()

    def setCurrentNode(self, node):
        self._combo.setCurrentNode(node)


# ---------------------------------------------------------------------------------------------------------------
# Sequences and MRML-aware value widgets


class qMRMLSequenceBrowserSeekWidget(qMRMLWidget):
    """Holds the browser node."""

    _browser = None

    def setMRMLSequenceBrowserNode(self, node):
        self._browser = node

    def mrmlSequenceBrowserNode(self):
        return self._browser


class qMRMLSliderWidget(_MRMLScene, ctk.ctkSliderWidget):
    quantity = qproperty("", str)


class qMRMLSpinBox(_MRMLScene, ctk.ctkDoubleSpinBox):
    quantity = qproperty("", str)


class qMRMLRangeWidget(_MRMLScene, ctk.ctkRangeWidget):
    quantity = qproperty("", str)


# ---------------------------------------------------------------------------------------------------------------
# Views (created by the layout manager, one per view node, as qMRMLLayoutViewFactory does): nothing is rendered


class qMRMLSliceWidget(qMRMLWidget):
    """A slice view: the slice node and its real vtkMRMLSliceLogic (SetMRMLApplicationLogic, SetMRMLScene,
    SetSliceNode, which creates the composite node)."""

    def _setup(self, scene, application_logic, slice_node):
        import slicer  # the session's slicer package: the same VTK classes as slicer-core's

        self._logic = slicer.vtkMRMLSliceLogic()
        self._logic.SetMRMLApplicationLogic(application_logic)
        self.setMRMLScene(scene)
        self._logic.SetMRMLScene(scene)
        self._logic.SetSliceNode(slice_node)

    def sliceLogic(self):
        return self._logic

    def mrmlSliceNode(self):
        return self._logic.GetSliceNode()

    def mrmlSliceCompositeNode(self):
        return self._logic.GetSliceCompositeNode()


class qMRMLThreeDWidget(qMRMLWidget):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Module representation


class qSlicerAbstractModuleWidget(qSlicerWidget):
    """The widget Slicer hands to a scripted module's Widget class as ``parent``; ``isEntered`` is set by the
    session on enter/exit and ``self()`` returns the Python widget object, as in Slicer."""

    isEntered = False
    _python_widget = None

    def self(self):
        return self._python_widget


class qSlicerScriptedLoadableModuleWidget(qSlicerAbstractModuleWidget):
    pass
