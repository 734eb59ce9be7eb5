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
from .qt import QObject, QWidget, Signal

qt.register_standin_module(__name__)

NONE_ITEM = object()  # the "None" row of a node combo box


def _node_callback(function):
    """A VTK observer that receives the event's node (call data)."""

    def callback(caller, event, calldata):
        function(calldata)

    callback.CallDataType = vtk.VTK_OBJECT
    return callback


class qMRMLWidget(QWidget):
    """``setMRMLScene(scene)`` stores the scene and emits mrmlSceneChanged(vtkMRMLScene*) when it changes."""

    mrmlSceneChanged = Signal("vtkMRMLScene*")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._mrml_scene = None

    def setMRMLScene(self, scene):
        if scene is self._mrml_scene:
            return
        self._mrml_scene = scene
        self._emit("mrmlSceneChanged(vtkMRMLScene*)", scene)

    def mrmlScene(self):
        return self._mrml_scene


class qSlicerWidget(qMRMLWidget):
    """qSlicerWidget is a QWidget + qSlicerObject in Slicer; the scene handling is the same as qMRMLWidget's."""


class _GenericMRMLWidget(qMRMLWidget):
    _accepts_any_signal = True

    def __init__(self, *args, **kwargs):
        super().__init__(next((a for a in args if isinstance(a, QObject)), None))


def generic_slicer_class(name: str):
    return type(name, (_GenericMRMLWidget,), {"__module__": __name__, "__doc__": f"generic stand-in for {name}"})


# ---------------------------------------------------------------------------------------------------------------
# Node combo box


class qMRMLNodeComboBox(QWidget):
    """The node selector. Rows are [None item] + matching nodes in scene order + action items ("separator",
    "Create new ...", "Delete current ...") when add/remove/rename/edit are enabled, as in Slicer; the selection
    follows QComboBox's rules on these rows:

    - setting a scene selects the first row: the None item, else the first node (never an action item);
    - a node added to an *empty* combo box (no None item, no action items, no other node) is selected;
    - when the current node goes away, the row that takes its place is selected (the next node, else the last
      node, else None).

    Defaults as in qMRMLNodeComboBox.cxx: noneEnabled False, addEnabled True, removeEnabled True, renameEnabled
    False, editEnabled False, showHidden False, showChildNodeTypes True, selectNodeUponCreation True.
    """

    currentNodeChanged = Signal("vtkMRMLNode*", "bool")
    currentNodeIDChanged = Signal("QString")
    nodeAdded = Signal("vtkMRMLNode*")
    nodeAboutToBeRemoved = Signal("vtkMRMLNode*")
    nodeAddedByUser = Signal("vtkMRMLNode*")
    nodeActivated = Signal("vtkMRMLNode*")
    nodeAboutToBeEdited = Signal("vtkMRMLNode*")
    currentNodeRenamed = Signal("QString")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scene = None
        self._types: list[str] = []
        self._hide_child_types: list[str] = []
        self._show_child_types = True
        self._show_hidden = False
        self._none_enabled = False
        self._add_enabled = True
        self._remove_enabled = True
        self._edit_enabled = False
        self._rename_enabled = False
        self._select_upon_creation = True
        self._none_display = "None"
        self._attribute_filters: dict[str, dict[str, object]] = {}
        self._base_names: dict[str, str] = {}
        self._rows: list = []
        self._current = None  # the current row's item: a node, NONE_ITEM, an action string, or None (index -1)
        self._requested = None
        self._scene_tags: list[int] = []
        self._node_tags: dict = {}
        self._in_batch = False
        self.enabled = False  # Slicer disables the selector until it has a scene

    # -- rows ------------------------------------------------------------------------------------------------------
    def _accepts(self, node) -> bool:
        if not self._types:
            return False
        if not self._show_hidden and node.GetHideFromEditors():
            return False
        class_name = node.GetClassName()
        for hidden in self._hide_child_types:
            if node.IsA(hidden):
                return False
        for node_type in self._types:
            if self._show_child_types:
                if not node.IsA(node_type):
                    continue
            elif class_name != node_type:
                continue
            filters = self._attribute_filters.get(node_type, {})
            if all(node.GetAttribute(name) is not None if value is None else node.GetAttribute(name) == str(value)
                   for name, value in filters.items()):
                return True
        return False

    def _matching_nodes(self):
        if self._scene is None:
            return []
        nodes = []
        for index in range(self._scene.GetNumberOfNodes()):
            node = self._scene.GetNthNode(index)
            if node is not None and self._accepts(node):
                nodes.append(node)
        return nodes

    def _action_items(self):
        if self._scene is None:
            return []
        label = self.nodeTypeLabel(self._types[0] if len(self._types) == 1 else "")
        items = []
        if self._add_enabled or self._remove_enabled or self._edit_enabled or self._rename_enabled:
            items.append("separator")
        if self._rename_enabled:
            items.append(f"Rename current {label}")
        if self._edit_enabled:
            items.append(f"Edit current {label}")
        if self._add_enabled:
            for node_type in self._types:
                items.append(f"Create new {self.nodeTypeLabel(node_type)}")
                if self._rename_enabled:
                    items.append(f"Create new {self.nodeTypeLabel(node_type)} as...")
        if self._remove_enabled:
            items.append(f"Delete current {label}")
        return items

    def _compute_rows(self):
        rows = [NONE_ITEM] if (self._none_enabled and self._scene is not None) else []
        return rows + self._matching_nodes() + self._action_items()

    def _index_of(self, item):
        for index, row in enumerate(self._rows):
            if row is item or (isinstance(item, str) and row == item):
                return index
        return -1

    def _set_current_index(self, index):
        """QComboBox::setCurrentIndex, then qMRMLNodeComboBox::emitCurrentNodeChanged."""
        item = self._rows[index] if 0 <= index < len(self._rows) else None
        if item is self._current and (item is None or self._index_of(item) == index):
            return
        self._current = item
        self._emit_current_node_changed()

    def _emit_current_node_changed(self):
        index = self._index_of(self._current) if self._current is not None else -1
        node = self._current if self._is_node(self._current) else None
        if node is None and ((not self._none_enabled and index != -1) or (self._none_enabled and index != 0)):
            nodes = self.nodes()
            if nodes:
                self.setCurrentNode(nodes[-1])
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
        current_gone = old_current is not None and self._index_of(old_current) < 0
        if current_gone:
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
    def _observe(self, scene):
        for tag in self._scene_tags:
            if self._scene is not None:
                self._scene.RemoveObserver(tag)
        self._scene_tags = []
        for node, tag in self._node_tags.items():
            node.RemoveObserver(tag)
        self._node_tags = {}
        if scene is None:
            return
        self._scene_tags = [
            scene.AddObserver(scene.NodeAddedEvent, _node_callback(self._on_node_added)),
            scene.AddObserver(scene.NodeAboutToBeRemovedEvent, _node_callback(self._on_node_about_to_be_removed)),
            scene.AddObserver(scene.NodeRemovedEvent, _node_callback(self._on_node_removed)),
            scene.AddObserver(scene.StartBatchProcessEvent, self._on_start_batch),
            scene.AddObserver(scene.EndBatchProcessEvent, self._on_end_batch),
        ]
        for index in range(scene.GetNumberOfNodes()):
            self._watch(scene.GetNthNode(index))

    def _watch(self, node):
        if node is None or node in self._node_tags:
            return
        if any(node.IsA(node_type) for node_type in self._types):
            self._node_tags[node] = node.AddObserver(vtk.vtkCommand.ModifiedEvent, self._on_node_modified)

    def _rewatch(self):
        if self._scene is not None:
            self._observe_nodes_again()

    def _observe_nodes_again(self):
        for node, tag in self._node_tags.items():
            node.RemoveObserver(tag)
        self._node_tags = {}
        for index in range(self._scene.GetNumberOfNodes()):
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
        if not self._in_batch:
            self._refresh()

    def _on_node_modified(self, caller, event):
        if not self._in_batch:
            self._refresh()

    def _on_start_batch(self, caller, event):
        self._in_batch = True

    def _on_end_batch(self, caller, event):
        self._in_batch = False
        self._refresh()

    def setMRMLScene(self, scene):
        if scene is self._scene:
            return
        old_id = self.currentNodeID
        previous_scene_was_valid = self.nodeCount() > 0
        self._observe(scene)
        self._scene = scene
        self._in_batch = bool(scene is not None and scene.IsBatchProcessing())
        self._rows = self._compute_rows()
        if self._current is not None:
            self._current = object()  # the root index changed: whatever was current is gone
        self._set_current_index(0)  # QComboBox::setRootModelIndex
        if previous_scene_was_valid:
            self.setCurrentNodeID(old_id)
        else:
            new_id = self.currentNodeID
            if isinstance(self._requested, str) and self._requested:
                new_id = self._requested
            elif self._requested is not None and not isinstance(self._requested, str) and self._requested.GetID():
                new_id = self._requested.GetID()
            self.setCurrentNodeID(new_id)
        self._requested = None
        self.enabled = scene is not None

    def mrmlScene(self):
        return self._scene

    # -- current node ----------------------------------------------------------------------------------------------
    def currentNode(self):
        return self._current if self._is_node(self._current) else None

    @property
    def currentNodeID(self):
        node = self.currentNode()
        return node.GetID() if node is not None else ""

    @currentNodeID.setter
    def currentNodeID(self, node_id):
        self.setCurrentNodeID(node_id)

    def currentNodeId(self):
        return self.currentNodeID

    def setCurrentNodeID(self, node_id):
        if self._scene is None:
            self._requested = node_id or ""
        for index, row in enumerate(self._rows):
            if self._is_node(row) and row.GetID() == node_id:
                self._set_current_index(index)
                return
        self._set_current_index(0 if self._none_enabled else -1)

    def setCurrentNode(self, node):
        if isinstance(node, str):
            self.setCurrentNodeID(node)
            return
        if self._scene is None:
            self._requested = node
        self.setCurrentNodeID(node.GetID() if node is not None else "")

    def setCurrentNodeIndex(self, index):
        if index >= self.nodeCount():
            index = -1
        if self._none_enabled:
            index += 1
        self._set_current_index(index)

    def nodes(self):
        return [row for row in self._rows if self._is_node(row)]

    def nodeCount(self):
        return len(self.nodes()) if self._scene is not None else 0

    def nodeFromIndex(self, index):
        nodes = self.nodes()
        return nodes[index] if 0 <= index < len(nodes) else None

    def addNode(self, node_type=None):
        if node_type is None:
            if not self._types:
                return None
            node_type = self._types[0]
        if node_type not in self._types:
            print(f"qMRMLNodeComboBox::addNode() attempted with node type {node_type}, which is not among the "
                  "allowed node types")
            return None
        node = self._scene.CreateNodeByClass(node_type)
        node.UnRegister(None)
        base_name = self._base_names.get(node_type) or self._scene.GetTagByClassName(node_type)
        node.SetName(self._scene.GenerateUniqueName(base_name))
        for filters in self._attribute_filters.values():
            for name, value in filters.items():
                node.SetAttribute(name, "" if value is None else str(value))
        self._scene.AddNode(node)
        if self._select_upon_creation:
            self.setCurrentNode(node)
        self._emit("nodeAddedByUser(vtkMRMLNode*)", node)
        return node

    def removeCurrentNode(self):
        self._scene.RemoveNode(self.currentNode())

    def renameCurrentNode(self):
        raise NotImplementedError("renaming asks the user for a name (QInputDialog); set the node's name directly")

    # -- filters and options ---------------------------------------------------------------------------------------
    def nodeTypeLabel(self, node_type):
        if self._scene is not None and node_type:
            label = self._scene.GetTagByClassName(node_type)
            if label:
                return label
        return "Volume" if node_type == "vtkMRMLVolumeNode" else "node"

    @property
    def nodeTypes(self):
        return tuple(self._types)

    @nodeTypes.setter
    def nodeTypes(self, types):
        self._types = [str(t) for t in types if t]
        self._rewatch()
        self._refresh()

    def setNodeTypes(self, types):
        self.nodeTypes = types

    @property
    def hideChildNodeTypes(self):
        return tuple(self._hide_child_types)

    @hideChildNodeTypes.setter
    def hideChildNodeTypes(self, types):
        self._hide_child_types = [str(t) for t in types if t]
        self._refresh()

    def setHideChildNodeTypes(self, types):
        self.hideChildNodeTypes = types

    def addAttribute(self, node_type, name, value=None):
        if node_type == "vtkMRMLScalarVolumeNode" and name == "LabelMap":
            print("vtkMRMLScalarVolumeNode does not have a LabelMap attribute anymore.")
            return
        self._attribute_filters.setdefault(str(node_type), {})[str(name)] = value
        self._refresh()

    def removeAttribute(self, node_type, name):
        self._attribute_filters.get(str(node_type), {}).pop(str(name), None)
        self._refresh()

    def _bool_option(attribute):
        def getter(self):
            return getattr(self, attribute)

        def setter(self, value):
            if bool(value) != getattr(self, attribute):
                setattr(self, attribute, bool(value))
                self._refresh()

        return property(getter, setter)

    noneEnabled = _bool_option("_none_enabled")
    addEnabled = _bool_option("_add_enabled")
    removeEnabled = _bool_option("_remove_enabled")
    editEnabled = _bool_option("_edit_enabled")
    renameEnabled = _bool_option("_rename_enabled")
    showHidden = _bool_option("_show_hidden")
    showChildNodeTypes = _bool_option("_show_child_types")
    del _bool_option

    def setNoneEnabled(self, value):
        self.noneEnabled = value

    def setAddEnabled(self, value):
        self.addEnabled = value

    def setRemoveEnabled(self, value):
        self.removeEnabled = value

    def setEditEnabled(self, value):
        self.editEnabled = value

    def setRenameEnabled(self, value):
        self.renameEnabled = value

    def setShowHidden(self, value):
        self.showHidden = value

    def setShowChildNodeTypes(self, value):
        self.showChildNodeTypes = value

    @property
    def selectNodeUponCreation(self):
        return self._select_upon_creation

    @selectNodeUponCreation.setter
    def selectNodeUponCreation(self, value):
        self._select_upon_creation = bool(value)

    def setSelectNodeUponCreation(self, value):
        self.selectNodeUponCreation = value

    @property
    def noneDisplay(self):
        return self._none_display

    @noneDisplay.setter
    def noneDisplay(self, value):
        self._none_display = str(value)

    def setNoneDisplay(self, value):
        self.noneDisplay = value

    @property
    def baseName(self):
        return self._base_names.get(self._types[0], "") if self._types else ""

    @baseName.setter
    def baseName(self, value):
        self.setBaseName(value)

    def setBaseName(self, value, node_type=""):
        for each in [node_type] if node_type else self._types:
            self._base_names[each] = str(value)

    def _keep(self, *args):
        pass

    setSizeAdjustPolicy = setInteractionNodeSingletonTag = addMenuAction = setNodeTypeLabel = _keep


# ---------------------------------------------------------------------------------------------------------------
# Markups


class qSlicerMarkupsPlaceWidget(qSlicerWidget):
    """Place mode through the real singleton interaction and selection nodes, as qSlicerMarkupsPlaceWidget does:
    enabling it makes the current markups node the active place node and switches the interaction mode to Place."""

    activeMarkupsPlaceModeChanged = Signal("bool")
    activeMarkupsFiducialPlaceModeChanged = Signal("bool")

    ForcePlaceSingleMarkup, ForcePlaceMultipleMarkups, ShowPlaceMultipleMarkupsOption = 0, 1, 2

    def __init__(self, parent=None):
        super().__init__(parent)
        self._node = None
        self.placeMultipleMarkups = qSlicerMarkupsPlaceWidget.ShowPlaceMultipleMarkupsOption
        self.buttonsVisible = True
        self.deleteAllControlPointsOptionVisible = True
        self.unsetLastControlPointOptionVisible = True
        self.unsetAllControlPointsOptionVisible = True
        self.lockedStateOptionVisible = True

    def _singleton(self, class_name):
        scene = self.mrmlScene()
        return scene.GetSingletonNode("Singleton", class_name) if scene is not None else None

    def setCurrentNode(self, node):
        self._node = node

    def currentNode(self):
        return self._node

    currentMarkupsNode = currentNode

    def setPlaceMultipleMarkups(self, value):
        self.placeMultipleMarkups = value

    def setButtonsVisible(self, value):
        self.buttonsVisible = bool(value)

    @property
    def placeModeEnabled(self):
        interaction = self._singleton("vtkMRMLInteractionNode")
        selection = self._singleton("vtkMRMLSelectionNode")
        if interaction is None or selection is None or self._node is None:
            return False
        return (interaction.GetCurrentInteractionMode() == interaction.Place
                and selection.GetActivePlaceNodeID() == self._node.GetID())

    @placeModeEnabled.setter
    def placeModeEnabled(self, enable):
        self.setPlaceModeEnabled(enable)

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
            self._emit("activeMarkupsPlaceModeChanged(bool)", self.placeModeEnabled)
            self._emit("activeMarkupsFiducialPlaceModeChanged(bool)", self.placeModeEnabled)

    def placeButton(self):
        raise NotImplementedError("the place button of qSlicerMarkupsPlaceWidget is not stood in; use placeModeEnabled")


class qSlicerSimpleMarkupsWidget(qSlicerWidget):
    """A markups node selector (nodeTypes vtkMRMLMarkupsFiducialNode, None/add/remove/rename enabled, hidden
    nodes shown, as in its .ui) with a place widget; changing the node emits markupsNodeChanged() and, with
    ``enterPlaceModeOnNodeChange`` (default True), enters place mode for the new node."""

    markupsNodeChanged = Signal("")
    markupsFiducialNodeChanged = Signal("")
    activeMarkupsPlaceModeChanged = Signal("bool")
    activeMarkupsFiducialPlaceModeChanged = Signal("bool")
    currentMarkupsControlPointSelectionChanged = Signal("int")
    updateFinished = Signal("")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._combo = qMRMLNodeComboBox(self)
        self._combo.nodeTypes = ["vtkMRMLMarkupsFiducialNode"]
        self._combo.showHidden = True
        self._combo.noneEnabled = True
        self._combo.renameEnabled = True
        self._place = qSlicerMarkupsPlaceWidget(self)
        self._table = qt.QTableWidget(self)
        self.enterPlaceModeOnNodeChange = True
        self.jumpToSliceEnabled = False
        self.nodeSelectorVisible = True
        self.optionsVisible = True
        self.defaultNodeColor = qt.QColor()
        self.connect("mrmlSceneChanged(vtkMRMLScene*)", self._combo, "setMRMLScene(vtkMRMLScene*)")
        self.connect("mrmlSceneChanged(vtkMRMLScene*)", self._place, "setMRMLScene(vtkMRMLScene*)")
        self._combo.connect("currentNodeChanged(vtkMRMLNode*)", self._on_node_changed)
        self._place.connect("activeMarkupsPlaceModeChanged(bool)", self._on_place_mode_changed)

    def _on_node_changed(self, node):
        self._place.setCurrentNode(node)
        if self.enterPlaceModeOnNodeChange:
            self._place.setPlaceModeEnabled(node is not None)
        self._emit("markupsNodeChanged()")
        self._emit("markupsFiducialNodeChanged()")

    def _on_place_mode_changed(self, enabled):
        self._emit("activeMarkupsPlaceModeChanged(bool)", enabled)
        self._emit("activeMarkupsFiducialPlaceModeChanged(bool)", enabled)

    def markupsSelectorComboBox(self):
        return self._combo

    def markupsPlaceWidget(self):
        return self._place

    def tableWidget(self):
        return self._table

    def currentNode(self):
        return self._combo.currentNode()

    currentMarkupsNode = currentNode

    def setCurrentNode(self, node):
        self._combo.setCurrentNode(node)

    def setEnterPlaceModeOnNodeChange(self, value):
        self.enterPlaceModeOnNodeChange = bool(value)

    def setJumpToSliceEnabled(self, value):
        self.jumpToSliceEnabled = bool(value)

    def setNodeSelectorVisible(self, value):
        self.nodeSelectorVisible = bool(value)

    def setOptionsVisible(self, value):
        self.optionsVisible = bool(value)

    def setNodeBaseName(self, name):
        self._combo.setBaseName(name)

    def setDefaultNodeColor(self, color):
        self.defaultNodeColor = color


# ---------------------------------------------------------------------------------------------------------------
# Sequences


class qMRMLSequenceBrowserSeekWidget(qMRMLWidget):
    """Holds the browser node; ``setSelectedItemNumber`` forwards to it, as the real slot does."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._browser = None

    def setMRMLSequenceBrowserNode(self, node):
        self._browser = node

    def mrmlSequenceBrowserNode(self):
        return self._browser

    def setSelectedItemNumber(self, number):
        if self._browser is not None:
            self._browser.SetSelectedItemNumber(int(number))


class qMRMLSequenceBrowserPlayWidget(qMRMLWidget):
    """Holds the browser node; the VCR and playback slots forward to it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._browser = None

    def setMRMLSequenceBrowserNode(self, node):
        self._browser = node

    def mrmlSequenceBrowserNode(self):
        return self._browser

    def _call(self, method, *args):
        if self._browser is not None:
            getattr(self._browser, method)(*args)

    def onVcrFirst(self):
        self._call("SelectFirstItem")

    def onVcrLast(self):
        self._call("SelectLastItem")

    def onVcrNext(self):
        self._call("SelectNextItem")

    def onVcrPrevious(self):
        self._call("SelectNextItem", -1)

    def setPlaybackEnabled(self, enabled):
        self._call("SetPlaybackActive", bool(enabled))

    def setPlaybackLoopEnabled(self, enabled):
        self._call("SetPlaybackLooped", bool(enabled))

    def setPlaybackRateFps(self, fps):
        self._call("SetPlaybackRateFps", float(fps))


class qMRMLSequenceBrowserToolBar(_GenericMRMLWidget):
    pass


# ---------------------------------------------------------------------------------------------------------------
# MRML-aware value widgets


class qMRMLSliderWidget(ctk.ctkSliderWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._mrml_scene = None
        self.quantity = ""

    setMRMLScene = qMRMLWidget.setMRMLScene
    mrmlScene = qMRMLWidget.mrmlScene
    mrmlSceneChanged = Signal("vtkMRMLScene*")


class qMRMLSpinBox(ctk.ctkDoubleSpinBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._mrml_scene = None
        self.quantity = ""

    setMRMLScene = qMRMLWidget.setMRMLScene
    mrmlScene = qMRMLWidget.mrmlScene
    mrmlSceneChanged = Signal("vtkMRMLScene*")


class qMRMLRangeWidget(ctk.ctkRangeWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._mrml_scene = None
        self.quantity = ""

    setMRMLScene = qMRMLWidget.setMRMLScene
    mrmlScene = qMRMLWidget.mrmlScene
    mrmlSceneChanged = Signal("vtkMRMLScene*")


# ---------------------------------------------------------------------------------------------------------------
# Views (created by the layout manager, one per view node, as qMRMLLayoutViewFactory does)


class qMRMLSliceView(QWidget):
    """Nothing is rendered; render requests are accepted and do nothing."""

    def forceRender(self):
        pass

    scheduleRender = forceRender

    def renderWindow(self):
        raise NotImplementedError("no render window: nothing is rendered in the harness")


class qMRMLSliceControllerWidget(QWidget):
    """The controller slots that only drive MRML, forwarded to the real slice logic/node."""

    def __init__(self, slice_widget):
        super().__init__(slice_widget)
        self._slice_widget = slice_widget

    def fitSliceToBackground(self):
        self._slice_widget.sliceLogic().FitSliceToBackground()

    def setSliceVisible(self, visible):
        self._slice_widget.mrmlSliceNode().SetSliceVisible(bool(visible))

    def setSliceOffsetValue(self, offset):
        self._slice_widget.sliceLogic().SetSliceOffset(float(offset))

    def sliceOffsetValue(self):
        return self._slice_widget.sliceLogic().GetSliceOffset()

    def setLinkedControl(self, linked):
        self._slice_widget.mrmlSliceCompositeNode().SetLinkedControl(bool(linked))

    def setSliceViewLabel(self, label):
        self._slice_widget.mrmlSliceNode().SetLayoutLabel(str(label))


class qMRMLSliceWidget(qMRMLWidget):
    """A slice view: the slice node, its real vtkMRMLSliceLogic (SetMRMLApplicationLogic, SetMRMLScene,
    SetSliceNode, which creates the composite node), a controller and a view that does not render."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._logic = None
        self._controller = qMRMLSliceControllerWidget(self)
        self._view = qMRMLSliceView(self)

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

    def sliceController(self):
        return self._controller

    def sliceView(self):
        return self._view

    def sliceOrientation(self):
        return self.mrmlSliceNode().GetOrientation()

    def setSliceOrientation(self, orientation):
        self.mrmlSliceNode().SetOrientation(str(orientation))

    def fitSliceToBackground(self):
        self._logic.FitSliceToBackground()


class qMRMLThreeDView(QWidget):
    def forceRender(self):
        pass

    scheduleRender = resetFocalPoint = forceRender

    def resetCamera(self, *args):
        pass

    def renderWindow(self):
        raise NotImplementedError("no render window: nothing is rendered in the harness")


class qMRMLThreeDWidget(qMRMLWidget):
    def __init__(self, view_node, parent=None):
        super().__init__(parent)
        self._view_node = view_node
        self._view = qMRMLThreeDView(self)

    def mrmlViewNode(self):
        return self._view_node

    def threeDView(self):
        return self._view


# ---------------------------------------------------------------------------------------------------------------
# Module representation


class qSlicerAbstractModuleWidget(qSlicerWidget):
    """The widget Slicer hands to a scripted module's Widget class as ``parent``; ``isEntered`` is set by the
    session on enter/exit and ``self()`` returns the Python widget object, as in Slicer."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.isEntered = False
        self._python_widget = None
        self._module = None

    def self(self):
        return self._python_widget

    def module(self):
        return self._module

    def reload(self):
        raise NotImplementedError("module reloading is not stood in; start a new session instead")


class qSlicerScriptedLoadableModuleWidget(qSlicerAbstractModuleWidget):
    pass


class qMRMLScreenShotDialog(QWidget):
    FullLayout, ThreeD, Red, Yellow, Green = 0, 1, 2, 3, 4
