"""Small synthetic volumes and the location of the shared real data, for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from DAECounterfactualLib.io.volumes import Volume

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_data() -> Path:
    """The shared real data folder, or skip the calling test."""
    if not DATA_ROOT.is_dir():
        pytest.skip("../shared/data is absent: real-data reader tests need it")
    return DATA_ROOT


def rotation(axis_angles_deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix from successive rotations about x, y, z (degrees)."""
    ax, ay, az = np.radians(axis_angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


# An "LPS-stored" direction: i runs towards patient left, j posterior, k superior, then tilted obliquely.
LPS_OBLIQUE = rotation((8.0, -5.0, 12.0)) @ np.diag([-1.0, -1.0, 1.0])


def geometry(direction: np.ndarray, spacing: tuple[float, float, float], origin: tuple[float, float, float]) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(direction) @ np.diag(spacing)
    matrix[:3, 3] = origin
    return matrix


def linear_field_volume(
    shape_kji=(24, 30, 28),
    spacing=(0.9, 1.3, 2.7),
    direction=LPS_OBLIQUE,
    origin=(12.0, -7.0, 30.0),
    gradient=(2.0, -3.0, 5.0),
    offset=100.0,
) -> Volume:
    """Anisotropic oblique volume whose intensity is offset + gradient . RAS (exact under trilinear sampling)."""
    matrix = geometry(direction, spacing, origin)
    per_voxel = np.asarray(gradient) @ matrix[:3, :3]  # the field is linear in i, j, k too: no RAS grid needed
    k, j, i = (np.arange(n, dtype=np.float64) * step for n, step in zip(shape_kji, per_voxel[::-1]))
    values = offset + np.asarray(gradient) @ matrix[:3, 3] + k[:, None, None] + j[None, :, None] + i[None, None, :]
    return Volume(values, matrix, name="linear")


def centred_field_volume(extent_mm: float, spacing, direction, gradient, offset) -> Volume:
    """A linear field volume about ``extent_mm`` wide along every voxel axis, centred on RAS 0."""
    shape_ijk = np.ceil(extent_mm / np.asarray(spacing)).astype(int)
    origin = -np.asarray(direction) @ np.diag(spacing) @ (shape_ijk - 1) / 2
    return linear_field_volume(tuple(shape_ijk[::-1]), spacing, direction, tuple(origin), gradient, offset)


def field_on_sagittal_patch(point, size_px: int, spacing_mm: float, gradient, offset) -> np.ndarray:
    """The linear field's exact values at the pixel centres of the sagittal patch through ``point``."""
    from DAECounterfactualLib.inference.geometry import patch_pixel_to_ras, sagittal_patch_to_ras

    columns, rows = np.meshgrid(np.arange(size_px), np.arange(size_px))
    ras = patch_pixel_to_ras(sagittal_patch_to_ras(point, size_px, spacing_mm),
                             np.stack([columns.ravel(), rows.ravel()], axis=1))
    return (ras @ np.asarray(gradient) + offset).reshape(size_px, size_px)
