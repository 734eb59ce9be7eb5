"""ExplanationLogic: the module's requests (extract, grade, explain, score) on MRML nodes, Qt-free.

The Slicer module's ``ScriptedLoadableModuleLogic`` mixes this class in; tests and scripts use it directly with a
slicer-core scene. Every request reads its inputs into arrays (copies, world RAS), runs ``inference.explainer.Explainer`` and
writes new nodes; input nodes are never modified. One request runs at a time: a second one while the first is
still running (another thread, or a progress callback calling back in) is refused with ``BusyError``.
A request that raises, or is cancelled, removes every node it added (``scene.SceneChanges``).

MRML is not thread-safe: inside Slicer, run requests on the main thread and keep the GUI alive from the
``progress`` callback (e.g. ``slicer.app.processEvents()``); the lock then refuses clicks that arrive meanwhile.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Callable, NamedTuple

import numpy as np

from . import scene as mrml
from ..bundle.registry import resolve_bundle
from ..bundle.spec import Bundle
from ..bundle.store import load_bundle
from ..errors import BusyError, Cancelled, InputError
from ..inference.centring import Centring, centre_on_body, centred_position
from ..inference.geometry import Patch
from ..inference.panel_labels import panel_note
from ..inference.patches import check_positions_inside, cut_patch, to_model_input, volume_value_range
from ..inference.scores import grade_row, position_rows
from ..inference.screening import screen_volume
from ..inference.spine_axis import patch_tilts
from ..io.volumes import LABELS_BY_LEVEL, Volume, VertebraPosition, positions_from_mask

WARNING_ATTRIBUTE = "DAECounterfactual.warning"  # on a scores table whose image raised a screening warning
MAX_SWEEP = 64  # sweep images per explanation
Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


class PointPatch(NamedTuple):
    """One control point read for a request: the image, the point, what to call it, and its patch."""

    volume: Volume
    ras: np.ndarray
    name: str          # the level if the point label names one, else the label
    level: str | None  # a known vertebral level, or None
    patch: Patch
    warning: str       # from screening the image ("" if none): raises the OOD flag of every grade
    centring: Centring  # where the patch was cut: the point, or where ``centre`` moved it
    value_range: tuple[float, float]  # the volume's intensity range (MRI: its percentiles), computed once


def _default_scene():
    import slicer

    return slicer.mrmlScene


class ExplanationLogic:
    """Requests on one scene with one bundle (loaded on first use). ``bundle``: a name, a folder or a Bundle."""

    def __init__(self, scene=None, bundle: str | os.PathLike | Bundle | None = None, device: str = "cpu"):
        self.scene = scene if scene is not None else _default_scene()
        self.device = device
        self._bundle_source = bundle
        self._explainer = None
        self._lock = threading.Lock()

    # -- bundle -------------------------------------------------------------------------------------------------

    def set_bundle(self, bundle: str | os.PathLike | Bundle) -> None:
        """Choose another bundle; it is loaded on the next request."""
        with self._request("change the model bundle"):
            self._bundle_source = bundle
            self._explainer = None

    @property
    def explainer(self):
        if self._explainer is None:
            from ..inference.explainer import Explainer

            if self._bundle_source is None:
                raise InputError("no model bundle chosen")
            source = self._bundle_source
            bundle = source if isinstance(source, Bundle) else load_bundle(resolve_bundle(source))
            self._explainer = Explainer(bundle, device=self.device)
        return self._explainer

    @property
    def bundle(self) -> Bundle:
        return self.explainer.bundle

    # -- locking ------------------------------------------------------------------------------------------------

    @contextmanager
    def _request(self, what: str):
        if not self._lock.acquire(blocking=False):
            raise BusyError(f"cannot {what}: another request is still running; wait for it or cancel it")
        try:
            yield
        finally:
            self._lock.release()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    # -- shared steps -------------------------------------------------------------------------------------------

    def _read_point(self, volume_node, markups_node, index: int, centre: bool) -> PointPatch:
        volume = mrml.volume_from_node(volume_node)
        warning = screen_volume(self.bundle.config, volume)
        ras = mrml.point_from_markups(markups_node, index)
        name = mrml.point_name(markups_node, index)
        value_range = volume_value_range(self.bundle.config, volume)
        tilt = patch_tilts(self.bundle.config, _markups_positions(markups_node), [index])[index]
        centring = (centre_on_body(self.explainer, volume, ras, value_range, tilt_deg=tilt) if centre
                    else Centring(ras, 0.0))
        return PointPatch(volume, ras, name, mrml.level_from_text(name),
                          cut_patch(self.bundle.config, volume, centring.ras, tilt_deg=tilt), warning, centring,
                          value_range)

    def _grade_row(self, grades, point: PointPatch, grade_names) -> dict:
        """The grade's read-out, its level, and where the patch was cut if centring moved it."""
        return {**grade_row(grades, 0, grade_names, point.warning, self.bundle.config.outside(point.level)),
                "level": point.level, "moved_mm": point.centring.moved_mm, "centring": point.centring.describe()}

    # -- requests -----------------------------------------------------------------------------------------------

    def extract(self, volume_node, markups_node, index: int = 0, centre: bool = False):
        """The sagittal patch through a control point as a one-slice volume node on that plane (input units);
        with ``centre``, moved along the spine as ``inference.centring`` does (the point itself is not changed)."""
        with self._request("extract a patch"):
            point = self._read_point(volume_node, markups_node, index, centre)
            return mrml.add_patch_node(self.scene, point.patch.pixels, point.patch.patch_to_ras,
                                       f"{point.name} patch", point.value_range)

    def grade(self, volume_node, markups_node, task: str, index: int = 0, progress: Progress | None = None,
              cancel: CancelCheck | None = None, centre: bool = False) -> dict:
        """Grade the vertebra at a control point: distance, probability, score, grade, grade name, OOD, level, and
        ``moved_mm`` / ``centring``: with ``centre`` the patch is cut where ``inference.centring`` moves the
        point along the spine (a click a few mm above a body's centre reads as height loss; the point itself is
        not changed).

        ``progress(i, 2)``: once the patch is cut (loading the model first, when needed), once graded; ``cancel``
        is checked between the two."""
        with self._request("grade"):
            point = self._read_point(volume_node, markups_node, index, centre)
            if progress is not None:
                progress(1, 2)
            _check_cancel(cancel)
            grades = self.explainer.grade(to_model_input(self.bundle.config, [point.patch], point.value_range), task)
            if progress is not None:
                progress(2, 2)
            return self._grade_row(grades, point, self.bundle.task(task).grade_names)

    def explain(self, volume_node, markups_node, task: str, preset: str = "fast", sweep_count: int = 9,
                progress: Progress | None = None, cancel: CancelCheck | None = None, index: int = 0,
                centre: bool = False):
        """Counterfactuals at every grade, the reflection, differences and a sweep as nodes on the patch plane
        (with ``centre``, the patch where ``grade`` with ``centre`` cuts it).

        ``progress(i, n)`` is called between diffusion steps; ``cancel()`` returning True stops the request with
        ``Cancelled`` and the scene is left exactly as before. Returns ``scene.ExplanationNodes``.
        """
        with self._request("explain"), mrml.SceneChanges(self.scene):
            spec = self.bundle.task(task)
            preset = self.bundle.config.preset(preset)  # unknown name or too many steps: refused before any work
            _check_sweep_count(sweep_count)
            point = self._read_point(volume_node, markups_node, index, centre)
            patch, value_range, prefix = point.patch, point.value_range, f"{point.name} {spec.name}"
            original = mrml.add_patch_node(self.scene, patch.pixels, patch.patch_to_ras, f"{prefix} original",
                                           value_range)
            _check_cancel(cancel)
            explanation = self.explainer.explain(to_model_input(self.bundle.config, [patch], value_range)[0], spec, preset,
                                                 sweep_count, _step_callback(progress, cancel))
            _check_cancel(cancel)
            nodes = mrml.add_explanation_nodes(self.scene, explanation, patch.patch_to_ras,
                                               self.bundle.config.preprocessing, value_range, prefix, original)
            nodes.grades = {**self._grade_row(explanation.grades, point, spec.grade_names),
                            "panel_note": panel_note(explanation)}
            return nodes

    def score(self, volume_node, positions, task: str, progress: Progress | None = None,
              cancel: CancelCheck | None = None, table_name: str | None = None, centre: bool = False):
        """Grade many vertebrae at once into a table node (columns ``scene.SCORE_COLUMNS``).

        ``positions``: a markups node (one row per control point), a label-map (or segmentation) node of
        vertebra ids (one row per label at its body's centroid, ``positions_from_mask``; VerSe ids give level
        names) or a list of ``VertebraPosition``. All patches are graded in one batched call. A position outside
        the volume is an ``InputError`` naming every such position, raised before anything is added to the scene
        (one bad point means the positions belong to another image; a partial table would hide that). With
        ``centre``, the points of a markups node are centred as ``grade`` centres one, and each row's R, A, S say
        where its patch was cut (a label map's or segmentation's points are the bodies' centroids already: never
        moved).
        ``progress(i, n)``: one step per patch cut, a last one when the table is written.
        """
        with self._request("score"), mrml.SceneChanges(self.scene):
            spec = self.bundle.task(task)
            volume = mrml.volume_from_node(volume_node)
            warning = screen_volume(self.bundle.config, volume)
            points = self._positions(positions)
            check_positions_inside(volume, points)
            clicked = centre and not isinstance(positions, (list, tuple)) and positions.IsA("vtkMRMLMarkupsNode")
            tilts = patch_tilts(self.bundle.config, points)
            value_range = volume_value_range(self.bundle.config, volume)
            patches = []
            for number, (point, tilt) in enumerate(zip(points, tilts), start=1):
                _check_cancel(cancel)
                if clicked:
                    points[number - 1] = point = centred_position(self.explainer, volume, point, value_range, tilt)
                patches.append(cut_patch(self.bundle.config, volume, point.ras, tilt_deg=tilt))
                if progress is not None:
                    progress(number, len(points) + 1)
            grades = self.explainer.grade(to_model_input(self.bundle.config, patches, value_range), spec)
            _check_cancel(cancel)
            rows = position_rows(self.bundle.config, grades, spec.grade_names, points, warning)
            table = mrml.add_scores_table(self.scene, rows, table_name or f"{volume_node.GetName()} {spec.name} "
                                                                          "scores")
            if warning:
                table.SetAttribute(WARNING_ATTRIBUTE, warning)
            if progress is not None:
                progress(len(points) + 1, len(points) + 1)
            return table

    # -- positions ----------------------------------------------------------------------------------------------

    def _positions(self, positions) -> list[VertebraPosition]:
        if isinstance(positions, (list, tuple)):
            if not positions or not all(isinstance(p, VertebraPosition) for p in positions):
                raise InputError("positions must be a non-empty list of VertebraPosition")
            return list(positions)
        if positions is not None and positions.IsA("vtkMRMLMarkupsNode"):
            return _markups_positions(positions)
        if positions is not None and positions.IsA("vtkMRMLSegmentationNode"):
            return positions_from_mask(_segmentation_mask(positions))
        if positions is not None and positions.IsA("vtkMRMLVolumeNode"):
            return positions_from_mask(mrml.mask_from_node(positions))
        raise InputError(f"{mrml.node_label(positions)}: positions must be a point list, a label map, a "
                         "segmentation or a list of VertebraPosition")


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def _check_cancel(cancel: CancelCheck | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled("cancelled; nothing was added to the scene")


def _check_sweep_count(count: int) -> None:
    """Each sweep image is decoded along with the counterfactuals: an absurd count would exhaust memory."""
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or not 0 <= count <= MAX_SWEEP:
        raise InputError(f"sweep_count must be an integer in [0, {MAX_SWEEP}], got {count!r}")


def _step_callback(progress: Progress | None, cancel: CancelCheck | None):
    """Diffusion-step callback: cancellation first (raising aborts the diffusion loop), then progress."""
    def callback(i: int, n: int) -> None:
        _check_cancel(cancel)
        if progress is not None:
            progress(i, n)

    return callback


def _markups_positions(markups_node) -> list[VertebraPosition]:
    """One position per control point; a label naming a level gives its VerSe id, others get their number."""
    count = markups_node.GetNumberOfControlPoints()
    if count == 0:
        raise InputError(f"{mrml.node_label(markups_node)}: the point list is empty")
    positions = []
    for index in range(count):
        name = mrml.point_name(markups_node, index)
        label = LABELS_BY_LEVEL.get(mrml.level_from_text(name) or "", index + 1)
        positions.append(VertebraPosition(label, name, mrml.point_from_markups(markups_node, index)))
    return positions


def _segment_label(segmentation_node, name: str) -> int:
    level = mrml.level_from_text(name)
    if level:
        return LABELS_BY_LEVEL[level]
    if name.strip().isdigit():
        return int(name)
    raise InputError(f"{mrml.node_label(segmentation_node)}: segment {name!r} names no vertebral level "
                     "(expected e.g. 'L1' or 'vertebrae_L1', or a VerSe id)")


def _segmentation_mask(segmentation_node) -> Volume:
    """A segmentation as an instance mask in world RAS: each segment's id is the VerSe id of the level its name
    gives (or its integer name); segments naming neither are refused, so levels are never guessed."""
    import slicer

    segmentation = segmentation_node.GetSegmentation()
    count = segmentation.GetNumberOfSegments()
    if count == 0:
        raise InputError(f"{mrml.node_label(segmentation_node)}: the segmentation has no segments")
    lookup = np.zeros(count + 1, dtype=np.int32)  # exported label n + 1 is the n-th segment
    lookup[1:] = [_segment_label(segmentation_node, segmentation.GetNthSegment(n).GetName()) for n in range(count)]
    scratch = slicer.vtkMRMLScene()  # the export needs a node in a scene; keep the user's scene untouched
    labelmap = scratch.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    if not slicer.vtkSlicerSegmentationsModuleLogic.ExportAllSegmentsToLabelmapNode(
            segmentation_node, labelmap, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY):
        raise InputError(f"{mrml.node_label(segmentation_node)}: the segments could not be exported as a mask")
    exported = mrml.mask_from_node(labelmap)
    matrix = mrml.world_matrix(segmentation_node) @ exported.ijk_to_ras
    return Volume(lookup[exported.array.astype(np.int64)], matrix, name=segmentation_node.GetName())
