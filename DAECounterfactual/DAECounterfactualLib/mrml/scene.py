"""MRML side of the extension: input nodes to arrays, results to nodes, scenes to and from .mrb.

Qt-free: needs only slicer-core (``vtkMRMLScene`` and the module logics), so it runs inside Slicer and in plain
Python alike. Geometry is always world RAS: parent transforms of input nodes are applied when reading, and every
result node is created without a parent transform, with the patch's ``patch_to_ras`` as its IJK-to-RAS matrix, so
it overlays the CT exactly in a sagittal slice view.

Nodes are always looked up by ID or by exact name, never with ``slicer.util.getFirstNodeByName`` (a prefix match).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np
import vtk

import slicer

from ..errors import DAECFError, InputError
from ..inference.scores import SCORE_COLUMNS
from ..io.volumes import LABELS_BY_LEVEL, Volume
from ..model.preprocessing import Preprocessing

if TYPE_CHECKING:  # the scene helpers themselves need no torch
    from ..inference.explainer import Explanation

_COLUMN_TYPES = {"id": "int", "level": "string", "kind": "string", "grade": "int", "grade_name": "string", "ood": "int",
                 "ood_reason": "string", "caution": "string"}
DIFFERENCE_COLOR_ID = "vtkMRMLColorTableNodeFileDivergingBlueRed.txt"  # present in a full Slicer scene only


# ----------------------------------------------------------------------------------------------------------------
# Scene set-up (what Slicer's application does at start-up, for plain Python)


def ensure_scene_support(scene) -> None:
    """Register what this module's nodes need in a bare slicer-core scene: the sequences logic (browser node class
    and proxy-node updates) and a cache/IO manager (``ReadFromMRB`` extracts into the cache directory).

    Inside Slicer both exist already and nothing is changed. The logic is kept alive as an attribute of the scene;
    the cache folder is removed with the scene (or at exit), not left in the temp folder by every headless run.
    """
    if not scene.IsNodeClassRegistered("vtkMRMLSequenceBrowserNode"):
        sequences_logic = slicer.vtkSlicerSequencesLogic()
        sequences_logic.SetMRMLScene(scene)
        scene._daecf_sequences_logic = sequences_logic
    if scene.GetDataIOManager() is None or scene.GetCacheManager() is None:
        cache = slicer.vtkCacheManager()
        folder = tempfile.mkdtemp(prefix="daecf-mrml-cache-")
        weakref.finalize(scene, shutil.rmtree, folder, ignore_errors=True)
        cache.SetRemoteCacheDirectory(folder)
        io_manager = slicer.vtkDataIOManager()
        io_manager.SetCacheManager(cache)
        scene.SetCacheManager(cache)
        scene.SetDataIOManager(io_manager)


def new_scene():
    """A bare scene ready for this module (tests, scripts, the CLI)."""
    scene = slicer.vtkMRMLScene()
    ensure_scene_support(scene)
    return scene


# ----------------------------------------------------------------------------------------------------------------
# Reading input nodes


def node_label(node) -> str:
    return f"'{node.GetName()}'" if node is not None else "<no node>"


def world_matrix(node) -> np.ndarray:
    """4x4 node-to-world matrix of a transformable node; InputError when its transform chain is not linear."""
    transform = node.GetParentTransformNode()
    if transform is None:
        return np.eye(4)
    if not transform.IsTransformToWorldLinear():
        raise InputError(f"{node_label(node)} is under the non-linear transform {node_label(transform)}; harden "
                         "the transform (Data module) or remove it first")
    matrix = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def _ijk_to_ras(volume_node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def _node_volume(volume_node, what: str) -> Volume:
    if volume_node is None or not volume_node.IsA("vtkMRMLVolumeNode"):
        raise InputError(f"{node_label(volume_node)}: a {what} volume node is needed")
    if volume_node.GetImageData() is None:
        raise InputError(f"{node_label(volume_node)}: the volume has no voxels loaded")
    array = np.array(slicer.util.arrayFromVolume(volume_node), copy=True)  # never alias the node's memory
    matrix = world_matrix(volume_node) @ _ijk_to_ras(volume_node)
    return Volume(array, matrix, name=volume_node.GetName(), source=f"volume {node_label(volume_node)}")


def volume_from_node(volume_node) -> Volume:
    """The image (CT/MRI) of a scalar volume node in world RAS. Label maps and vector (colour) volumes are refused,
    because grading a mask or an RGB image as if it were CT gives meaningless numbers."""
    if volume_node is not None and volume_node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"{node_label(volume_node)} is a label map; select the image volume (CT or MRI) instead")
    if volume_node is not None and (volume_node.IsA("vtkMRMLVectorVolumeNode")
                                    or volume_node.IsA("vtkMRMLDiffusionTensorVolumeNode")):
        raise InputError(f"{node_label(volume_node)} is a vector/tensor volume; select a scalar image volume")
    return _node_volume(volume_node, "scalar image")


def mask_from_node(volume_node) -> Volume:
    """An instance mask (label map, or scalar volume holding integer ids) in world RAS."""
    return _node_volume(volume_node, "label map")


def point_from_markups(markups_node, index: int = 0) -> np.ndarray:
    """World RAS of one control point. Parent transforms are applied, non-linear ones too: a point, unlike a
    voxel grid, maps exactly through any transform."""
    if markups_node is None or not markups_node.IsA("vtkMRMLMarkupsNode"):
        raise InputError(f"{node_label(markups_node)}: a markups point list is needed")
    count = markups_node.GetNumberOfControlPoints()
    if count == 0:
        raise InputError(f"{node_label(markups_node)}: the point list is empty; place a point on the vertebra")
    if not 0 <= index < count:
        raise InputError(f"{node_label(markups_node)}: no point {index} (the list has {count} points)")
    position = [0.0, 0.0, 0.0]
    markups_node.GetNthControlPointPositionWorld(index, position)
    return np.asarray(position, dtype=np.float64)


def level_from_text(text: str) -> str | None:
    """A vertebral level or disc named in a point or segment label ('L3', 'vertebrae_L3', 'L3 fracture', 'L4-L5',
    'disc L4/L5'), else None."""
    for above, below in re.findall(r"([CTLS]\d{1,2})\s*[-/]\s*([CTLS]\d{1,2})", str(text).upper()):
        if f"{above}-{below}" in LABELS_BY_LEVEL:
            return f"{above}-{below}"
    for token in str(text).replace("_", " ").replace("-", " ").split():
        if token.upper() in LABELS_BY_LEVEL:
            return token.upper()
    return None


def point_name(markups_node, index: int) -> str:
    """What result nodes of this point are called: its level if the label names one, else its label."""
    label = markups_node.GetNthControlPointLabel(index) or f"point {index + 1}"
    return level_from_text(label) or label


# ----------------------------------------------------------------------------------------------------------------
# Writing result nodes


def _image_channels(image: np.ndarray) -> np.ndarray:
    """(H, W) or (C, H, W) -> (C, H, W) float32 with C in (1, 3)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise InputError(f"a result image must be (H, W), (1, H, W) or (3, H, W), got shape {image.shape}")
    return image


def _fill_volume_node(node, image: np.ndarray, patch_to_ras: np.ndarray) -> None:
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(np.asarray(patch_to_ras, dtype=np.float64)))
    channels = _image_channels(image)
    array = channels[0][None] if channels.shape[0] == 1 else np.moveaxis(channels, 0, -1)[None]
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))


def _set_window(node, window: tuple[float, float] | None, color_node_id: str | None = None) -> None:
    display = node.GetDisplayNode()
    if display is None:
        return
    if window is not None and hasattr(display, "SetWindowLevelMinMax"):
        lo, hi = float(window[0]), float(window[1])
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(lo, hi if hi > lo else lo + 1.0)
    if color_node_id and node.GetScene().GetNodeByID(color_node_id) is not None:
        display.SetAndObserveColorNodeID(color_node_id)


def add_volume_node(scene, volume: Volume, class_name: str = "vtkMRMLScalarVolumeNode", name: str | None = None):
    """A volume (or label map) node holding a copy of ``volume`` with its geometry."""
    node = scene.AddNewNodeByClass(class_name, name or volume.name or "volume")
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(volume.array))
    if not node.IsA("vtkMRMLLabelMapVolumeNode") or scene.GetNodeByID("vtkMRMLColorTableNodeLabels"):
        node.CreateDefaultDisplayNodes()  # a bare scene has no label colour table: Slicer adds the display later
    return node


def add_points(scene, points, name: str = "points"):
    """A point list from [(label, (r, a, s)), ...]."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    for label, ras in points:
        node.AddControlPoint(*[float(v) for v in ras], label)
    return node


def add_patch_node(scene, image: np.ndarray, patch_to_ras: np.ndarray, name: str,
                   window: tuple[float, float] | None = None, color_node_id: str | None = None):
    """A one-slice volume node (array (1, H, W)) with IJK-to-RAS = ``patch_to_ras``: a scalar volume for a
    1-channel image, a vector volume for 3 channels. ``window`` (min, max) defaults to the image's range."""
    channels = _image_channels(image)
    class_name = "vtkMRMLScalarVolumeNode" if channels.shape[0] == 1 else "vtkMRMLVectorVolumeNode"
    node = scene.AddNewNodeByClass(class_name, name)
    _fill_volume_node(node, channels, patch_to_ras)
    node.CreateDefaultDisplayNodes()
    _set_window(node, window if window is not None else (float(channels.min()), float(channels.max())),
                color_node_id)
    return node


def add_image_sequence(scene, images: Sequence[np.ndarray], patch_to_ras: np.ndarray, name: str,
                       index_name: str, index_values: Sequence, window: tuple[float, float] | None = None):
    """Images of one plane as a sequence with a browser: one slider steps through them in a slice view.

    Numeric ``index_values`` make a numeric index (e.g. signed distance), strings a text index (grade names).
    Returns (sequence node, browser node); the browser's proxy node shows the selected item.
    """
    ensure_scene_support(scene)
    if len(images) != len(index_values) or len(images) == 0:
        raise InputError(f"sequence {name!r}: {len(images)} images for {len(index_values)} index values")
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in index_values)
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName(index_name)
    sequence.SetIndexType(sequence.NumericIndex if numeric else sequence.TextIndex)
    sequence.SetIndexUnit("mm" if numeric and index_name == "distance" else "")
    channels = _image_channels(images[0]).shape[0]
    for image, value in zip(images, index_values):
        item = slicer.vtkMRMLScalarVolumeNode() if channels == 1 else slicer.vtkMRMLVectorVolumeNode()
        _fill_volume_node(item, image, patch_to_ras)
        sequence.SetDataNodeAtValue(item, f"{float(value):.6g}" if numeric else str(value))
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{name} browser")
    browser.AddSynchronizedSequenceNode(sequence)
    browser.SetOverwriteProxyName(sequence, False)
    browser.SetSelectedItemNumber(0)
    proxy = browser.GetProxyNode(sequence)
    if proxy is not None:  # named apart from the sequence so exact-name look-ups find one node each
        proxy.SetName(f"{name} frame")
        proxy.CreateDefaultDisplayNodes()
        _set_window(proxy, window)
    return sequence, browser


# ----------------------------------------------------------------------------------------------------------------
# Subject hierarchy


def subject_hierarchy(scene):
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def add_folder(scene, name: str, nodes: Iterable) -> int:
    """A subject-hierarchy folder under the scene holding ``nodes``; returns its item ID."""
    hierarchy = subject_hierarchy(scene)
    folder = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), name)
    for node in nodes:
        item = hierarchy.GetItemByDataNode(node)
        if item:
            hierarchy.SetItemParent(item, folder)
        else:  # a bare scene has no subject-hierarchy logic adding items for new nodes
            hierarchy.CreateItem(folder, node)
    return folder


# ----------------------------------------------------------------------------------------------------------------
# Explanation -> nodes


@dataclass
class ExplanationNodes:
    """Every node one explanation created, by role; ``folder`` is the subject-hierarchy item holding them."""

    name: str
    original: object
    reconstruction: object
    counterfactuals: list
    reflection: object
    differences: list
    grade_sequence: object
    grade_browser: object
    sweep_sequence: object | None
    sweep_browser: object | None
    folder: int = 0
    explanation: Explanation | None = None
    grades: dict = field(default_factory=dict)

    def nodes(self) -> list:
        """The data nodes (not display, storage or proxy nodes) in display order."""
        listed = [self.original, self.reconstruction, *self.counterfactuals, self.reflection, *self.differences,
                  self.grade_sequence, self.grade_browser, self.sweep_sequence, self.sweep_browser]
        return [node for node in listed if node is not None]


def _difference_window(differences: np.ndarray) -> tuple[float, float]:
    """Symmetric around 0 and shared by all grades, so their maps compare at a glance."""
    largest = float(np.abs(differences).max()) if differences.size else 0.0
    largest = largest if largest > 0 else 1.0
    return -largest, largest


def add_explanation_nodes(scene, explanation: Explanation, patch_to_ras: np.ndarray, preprocessing: Preprocessing,
                          value_range: tuple[float, float], name: str, original_node) -> ExplanationNodes:
    """Result nodes of one explanation on the patch plane, in input units (HU for CT), grouped in a folder.

    ``original_node`` is the already-added patch node the explanation was computed from.
    """
    def units(images: np.ndarray) -> np.ndarray:
        return preprocessing.invert(images, value_range)

    def image(array: np.ndarray, suffix: str, window=value_range, color=None):
        return add_patch_node(scene, array, patch_to_ras, f"{name} {suffix}", window, color)

    grade_names = list(explanation.grade_names)
    reconstruction = units(explanation.reconstruction)
    counterfactuals = units(explanation.counterfactuals)
    differences = counterfactuals - reconstruction[None]
    diff_window = _difference_window(differences)
    nodes = ExplanationNodes(
        name=name, original=original_node,
        reconstruction=image(reconstruction, "reconstruction"),
        counterfactuals=[image(cf, f"{g} counterfactual") for g, cf in zip(grade_names, counterfactuals)],
        reflection=image(units(explanation.reflection), "reflection"),
        differences=[image(d, f"{g} difference", diff_window, DIFFERENCE_COLOR_ID)
                     for g, d in zip(grade_names, differences)],
        grade_sequence=None, grade_browser=None, sweep_sequence=None, sweep_browser=None,
        explanation=explanation)
    nodes.grade_sequence, nodes.grade_browser = add_image_sequence(
        scene, list(counterfactuals), patch_to_ras, f"{name} grades", "grade", grade_names, value_range)
    if len(explanation.sweep):
        nodes.sweep_sequence, nodes.sweep_browser = add_image_sequence(
            scene, list(units(explanation.sweep)), patch_to_ras, f"{name} sweep", "distance",
            [float(d) for d in explanation.sweep_distances], value_range)
    nodes.folder = add_folder(scene, f"{name} explanation", nodes.nodes() + _proxies(nodes))
    return nodes


def _proxies(nodes: ExplanationNodes) -> list:
    pairs = [(nodes.grade_browser, nodes.grade_sequence), (nodes.sweep_browser, nodes.sweep_sequence)]
    return [browser.GetProxyNode(seq) for browser, seq in pairs
            if browser is not None and browser.GetProxyNode(seq) is not None]


# ----------------------------------------------------------------------------------------------------------------
# Scores table and CSV


def _vtk_column(name: str):
    kind = _COLUMN_TYPES.get(name, "double")
    column = {"int": vtk.vtkIntArray, "string": vtk.vtkStringArray, "double": vtk.vtkDoubleArray}[kind]()
    column.SetName(name)
    return column


def _cell(row: Mapping, name: str):
    value = row.get(name)
    kind = _COLUMN_TYPES.get(name, "double")
    if kind == "string":
        return "" if value is None else str(value)
    if kind == "int":
        return int(value) if value is not None else 0
    return float(value) if value is not None else float("nan")


def add_scores_table(scene, rows: Sequence[Mapping], name: str):
    """A table node with the ``SCORE_COLUMNS`` (typed columns, so they survive saving as .tsv + schema)."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    columns = [_vtk_column(column) for column in SCORE_COLUMNS]
    for column in columns:
        table.AddColumn(column)
    for row in rows:
        for column_name, column in zip(SCORE_COLUMNS, columns):
            value = _cell(row, column_name)
            column.InsertNextValue(value)
    table.Modified()
    return node


def rows_from_table(table_node) -> list[dict]:
    """The rows of a scores table node as dicts, values read from the typed columns (not the display text, which
    is rounded to 6 digits)."""
    table = table_node.GetTable()
    columns = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for column in columns:
            name, value = column.GetName(), column.GetValue(r)
            kind = _COLUMN_TYPES.get(name, "double")
            row[name] = str(value) if kind == "string" else int(value) if kind == "int" else float(value)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Saving and loading scenes


def save_scene(scene, path: str | Path) -> Path:
    """Write the whole scene with its data as a MRML bundle (.mrb); storage nodes are added where missing."""
    path = Path(path)
    if path.suffix.lower() != ".mrb":
        raise InputError(f"{path}: scene bundles must end in .mrb")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not scene.WriteToMRB(str(path)):
        raise DAECFError(f"{path}: the scene could not be written")
    return path


def load_scene(path: str | Path, scene=None, clear: bool = True):
    """Read a .mrb into ``scene`` (a new scene by default); returns the scene."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such scene file")
    scene = scene if scene is not None else new_scene()
    ensure_scene_support(scene)
    if not scene.ReadFromMRB(str(path), clear):
        raise InputError(f"{path}: cannot be read as a MRML scene bundle")
    return scene


# ----------------------------------------------------------------------------------------------------------------
# Removing and rolling back


def remove_node(scene, node) -> None:
    """Remove a node with its display and storage nodes: ``scene.RemoveNode`` alone leaves them behind, and a
    volume's orphaned display node keeps the voxels alive (4.5 MiB per phantom CT in scripts/studies/soak_score.py)."""
    owned = []
    for getter, count in (("GetNthDisplayNode", "GetNumberOfDisplayNodes"),
                          ("GetNthStorageNode", "GetNumberOfStorageNodes")):
        if hasattr(node, count):
            owned += [getattr(node, getter)(n) for n in range(getattr(node, count)())]
    scene.RemoveNode(node)
    for item in owned:
        if item is not None and scene.GetNodeByID(item.GetID()) is not None:
            scene.RemoveNode(item)


def node_ids(scene) -> list[str]:
    return [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]


def _hierarchy_items(scene) -> set[int]:
    """Subject-hierarchy item IDs, read without creating the hierarchy node when the scene has none."""
    hierarchy = scene.GetFirstNodeByClass("vtkMRMLSubjectHierarchyNode")
    if hierarchy is None:
        return set()
    ids = vtk.vtkIdList()
    hierarchy.GetItemChildren(hierarchy.GetSceneItemID(), ids, True)
    return {ids.GetId(i) for i in range(ids.GetNumberOfIds())}


class SceneChanges:
    """Context manager: if the block raises (``Cancelled``, an error), every node and subject-hierarchy item added
    since entry is removed, so the scene holds exactly the nodes it held before. Nodes present at entry are never
    touched. ``added()`` lists the nodes added so far."""

    def __init__(self, scene):
        self.scene = scene
        self._before: set[str] = set()
        self._items_before: set[int] = set()

    def __enter__(self) -> "SceneChanges":
        self._before = set(node_ids(self.scene))
        self._items_before = _hierarchy_items(self.scene)
        return self

    def added(self) -> list:
        return [self.scene.GetNodeByID(i) for i in node_ids(self.scene) if i not in self._before]

    def rollback(self) -> None:
        added = list(reversed(self.added()))
        # browsers first: a browser that outlives its proxy node would make the sequences logic create a new one
        for node in sorted(added, key=lambda n: not n.IsA("vtkMRMLSequenceBrowserNode")):
            if self.scene.GetNodeByID(node.GetID()) is not None:
                self.scene.RemoveNode(node)
        hierarchy = self.scene.GetFirstNodeByClass("vtkMRMLSubjectHierarchyNode")
        if hierarchy is not None:  # folders (items without a node) and items the node removals left behind
            new_items = _hierarchy_items(self.scene) - self._items_before
            while new_items:  # each removal takes an item and its children: recompute what is left
                if not hierarchy.RemoveItem(min(new_items), False, True):
                    break
                new_items = _hierarchy_items(self.scene) - self._items_before

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is not None:
            self.rollback()
        return False
