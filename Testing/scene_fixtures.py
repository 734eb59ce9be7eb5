"""Shared pieces of the headless MRML tests (their fixtures are in mrml/conftest.py): node builders, scene state."""

from __future__ import annotations

import numpy as np

from bundle_fixtures import CT_WINDOW, GRADE_NAMES, PATCH_PX, PATCH_SPACING  # noqa: F401  (re-exported for the tests)
from DAECounterfactualLib.mrml.scene import add_points, add_volume_node  # noqa: F401  (re-exported for the tests)


LEVELS = ("L1", "L2", "L3")


def add_linear_transform(scene, matrix: np.ndarray, name: str = "transform"):
    import slicer

    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    node.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(np.asarray(matrix, dtype=np.float64)))
    return node


def add_nonlinear_transform(scene, name: str = "warp"):
    """A thin-plate-spline transform (never linear)."""
    import vtk

    source, target = vtk.vtkPoints(), vtk.vtkPoints()
    for point in [(0, 0, 0), (50, 0, 0), (0, 50, 0), (0, 0, 50), (20, 20, 20)]:
        source.InsertNextPoint(point)
        target.InsertNextPoint(point[0] + 3.0, point[1], point[2] + (4.0 if point == (20, 20, 20) else 0.0))
    spline = vtk.vtkThinPlateSplineTransform()
    spline.SetSourceLandmarks(source)
    spline.SetTargetLandmarks(target)
    spline.SetBasisToR()
    node = scene.AddNewNodeByClass("vtkMRMLTransformNode", name)
    node.SetAndObserveTransformToParent(spline)
    return node


def ijk_to_ras_of(node) -> np.ndarray:
    import slicer
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def scene_state(scene) -> tuple[list[str], list[int]]:
    """Node IDs and subject-hierarchy item IDs: equal states mean an identical scene for the rollback tests."""
    from DAECounterfactualLib.mrml.scene import _hierarchy_items, node_ids

    return node_ids(scene), sorted(_hierarchy_items(scene))


def rotation_z(degrees: float, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    angle = np.radians(degrees)
    matrix = np.eye(4)
    matrix[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    matrix[:3, 3] = translation
    return matrix
