"""Stand-in for ``slicer.app.coreIOManager()``: what ``slicer.util.loadVolume``/``loadLabelVolume``/
``loadNodeFromFile`` reach. Volumes are read by the real vtkSlicerVolumesLogic exactly as qSlicerVolumesReader::load
does (name from the file's base name, loading-option bits, colour node, propagating the selection to the slice
views); any other file type raises NotImplementedError.
"""

from __future__ import annotations

import os

import vtk

from . import qt
from .qt import QObject

qt.register_standin_module(__name__)

def _flag(properties, key, bit):
    return bit if properties.get(key) else 0


class qSlicerCoreIOManager(QObject):
    def __init__(self, volumes_logic):
        super().__init__(None)
        self._volumes_logic = volumes_logic

    def loadNodes(self, file_type, properties, loaded_nodes=None, user_messages=None):
        if file_type != "VolumeFile":
            raise NotImplementedError(f"reading {file_type!r} files is not stood in (only VolumeFile)")
        file_name = str(properties["fileName"])
        name = properties.get("name") or os.path.basename(file_name).split(".")[0]  # QFileInfo::baseName
        options = (_flag(properties, "labelmap", 0x1) | _flag(properties, "center", 0x2)
                   | _flag(properties, "singleFile", 0x4) | _flag(properties, "autoWindowLevel", 0x8)
                   | _flag(properties, "discardOrientation", 0x10))
        file_list = None
        if properties.get("fileNames"):
            file_list = vtk.vtkStringArray()
            for each in properties["fileNames"]:
                file_list.InsertNextValue(str(each))
        if file_list is not None or user_messages is not None:
            node = self._volumes_logic.AddArchetypeVolume(file_name, name, options, file_list, user_messages)
        else:
            node = self._volumes_logic.AddArchetypeVolume(file_name, name, options)
        if node is None:
            return False
        color_id = properties.get("colorNodeID")
        if color_id and node.GetVolumeDisplayNode() is not None:
            node.GetVolumeDisplayNode().SetAndObserveColorNodeID(str(color_id))
        if properties.get("show", True):
            application_logic = self._volumes_logic.GetApplicationLogic()
            selection = application_logic.GetSelectionNode() if application_logic is not None else None
            if selection is not None:
                if node.IsA("vtkMRMLLabelMapVolumeNode"):
                    selection.SetActiveLabelVolumeID(node.GetID())
                else:
                    selection.SetActiveVolumeID(node.GetID())
                application_logic.PropagateVolumeSelection()
        if loaded_nodes is not None:
            loaded_nodes.AddItem(node)
        return True
