"""Shared pieces of the headless MRML tests: a tiny CT bundle, a fresh slicer-core scene, node builders."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualLib.scene import add_points, add_volume_node  # noqa: F401  (re-exported for the tests)

PATCH_PX = 16        # the tiny model's image size
PATCH_SPACING = 3.0  # mm: 48 mm fields of view hold a phantom lumbar body
GRADE_NAMES = ("G0", "G1", "G2", "G3")
CT_WINDOW = (-200.0, 800.0)


def write_ct_bundle(model, images: np.ndarray, tiny_config, folder):
    """``model`` as a CT bundle with a 'genant' task whose probe is fitted on the latents of four images."""
    from DAECounterfactualLib.bundle import BundleConfig, LatentStats, StepPreset, TaskSpec, write_bundle
    from DAECounterfactualLib.pipeline import encode_images
    from DAECounterfactualLib.preprocessing import Preprocessing
    from DAECounterfactualLib.probe import fit_calibration, fit_probe

    z = encode_images(model, images)
    grades = np.array([1, 3, 0, 2])
    probe = fit_probe(z, grades >= 2, standardize=False, C=10.0)
    task = TaskSpec(name="genant", description="test grades", grade_names=GRADE_NAMES, positive_min_grade=2,
                    probe=probe, calibration=fit_calibration(probe.distance(z), grades, "linear", grade_range=(0, 3)))
    config = BundleConfig(name="tinyct", modality="CT", model=tiny_config,
                          preprocessing=Preprocessing("ct_window", *CT_WINDOW), patch_size_px=PATCH_PX,
                          patch_spacing_mm=PATCH_SPACING,
                          presets={"fast": StepPreset(2, 2), "standard": StepPreset(3, 4)})
    stats = LatentStats.from_latents(np.concatenate([z + 0.01 * np.random.default_rng(i).normal(size=z.shape)
                                                     for i in range(50)]))
    return write_bundle(folder / "tinyct", config, model, stats, [task], "test bundle", fp16=False)


@pytest.fixture(scope="session")
def ct_bundle_path(tiny_config, tmp_path_factory):
    """A bundle around an untrained, seeded tiny DAE. The MRML tests check geometry, units, node bookkeeping and
    consistency with the pipeline, never image quality, so they skip the session's training fixture (minutes on
    a busy 2-core machine) and stay fast when run alone."""
    import torch

    from DAECounterfactualLib.networks import make_model

    torch.manual_seed(0)
    model = make_model(tiny_config).eval()
    images = np.random.default_rng(0).uniform(-1, 1, size=(4, 1, PATCH_PX, PATCH_PX)).astype(np.float32)
    return write_ct_bundle(model, images, tiny_config, tmp_path_factory.mktemp("ctbundle"))


@pytest.fixture()
def scene():
    """A fresh scene, also installed as ``slicer.mrmlScene`` for the duration of the test."""
    import slicer

    from DAECounterfactualLib.scene import new_scene

    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = new_scene()
    yield slicer.mrmlScene
    slicer.mrmlScene = previous


@pytest.fixture(scope="session")
def phantom():
    from DAECounterfactualLib.synthesis import make_spine_phantom

    return make_spine_phantom(seed=1, shape=(64, 40, 40), spacing=(2.0, 2.0, 2.0), noise_hu=0.0)


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
    from DAECounterfactualLib.scene import _hierarchy_items, node_ids

    return node_ids(scene), sorted(_hierarchy_items(scene))


def rotation_z(degrees: float, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    angle = np.radians(degrees)
    matrix = np.eye(4)
    matrix[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    matrix[:3, 3] = translation
    return matrix
