"""Exact sagittal patch extraction from a volume at a RAS point, and its inverse.

Patch convention (used by the whole project): the plane's normal is the patient left-right axis (RAS x);
columns run anterior -> posterior (RAS -y), rows run superior -> inferior (RAS -z); the requested point lies at
the pixel centre ((W - 1) / 2, (H - 1) / 2). Displayed with row 0 at the top, superior is up and anterior left,
as in Slicer's sagittal view.

A patch may be tilted in the sagittal plane (``tilt_deg``) so that its rows follow the spine's local axis rather
than RAS -z: the row direction is then (0, -sin t, -cos t), i.e. positive tilts turn "down" posteriorly, and the
columns stay perpendicular to it (``along_spine_tilt`` gives the tilt of a direction down the spine).

``patch_to_ras`` maps homogeneous (column, row, 0, 1) to RAS mm. Its third column is the plane normal (+x) scaled
by the column spacing, so the matrix is invertible and serves directly as the IJKToRAS matrix of a one-slice
volume whose array has shape (1, H, W).

Sampling is trilinear (``scipy.ndimage.map_coordinates``, order 1) at each pixel's continuous voxel index.
Pixels whose index falls outside the voxel extent [-0.5, n - 0.5] of the volume take ``fill_value``, which
defaults to the volume's minimum (air for CT, background for MRI); inside that extent but beyond the last voxel
centre the edge voxel is repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..errors import InputError
from ..io.volumes import Volume

COLUMN_DIRECTION = np.array([0.0, -1.0, 0.0])  # anterior -> posterior
ROW_DIRECTION = np.array([0.0, 0.0, -1.0])  # superior -> inferior
NORMAL_DIRECTION = np.cross(COLUMN_DIRECTION, ROW_DIRECTION)  # +x, patient right (RAS)


@dataclass
class Patch:
    pixels: np.ndarray  # float32 (H, W)
    patch_to_ras: np.ndarray  # 4x4 float64

    @property
    def spacing_mm(self) -> tuple[float, float]:
        """(row spacing, column spacing) in mm."""
        return float(np.linalg.norm(self.patch_to_ras[:3, 1])), float(np.linalg.norm(self.patch_to_ras[:3, 0]))

    @property
    def centre_ras(self) -> np.ndarray:
        height, width = self.pixels.shape
        return patch_pixel_to_ras(self.patch_to_ras, [[(width - 1) / 2, (height - 1) / 2]])[0]


def _size(size_px: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size_px, size_px) if np.isscalar(size_px) else tuple(size_px)
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise InputError(f"patch size must be positive whole pixels, got {size_px}")
    return int(height), int(width)


def _spacing(spacing_mm: float | tuple[float, float]) -> tuple[float, float]:
    row, column = (spacing_mm, spacing_mm) if np.isscalar(spacing_mm) else tuple(spacing_mm)
    if not (np.isfinite(row) and np.isfinite(column) and row > 0 and column > 0):
        raise InputError(f"patch spacing must be positive millimetres, got {spacing_mm}")
    return float(row), float(column)


def tilted_directions(tilt_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) unit directions of a sagittal patch tilted by ``tilt_deg`` about the left-right axis."""
    if not np.isfinite(tilt_deg) or abs(tilt_deg) >= 90.0:
        raise InputError(f"a patch's tilt must lie within (-90, 90) degrees, got {tilt_deg}")
    sine, cosine = np.sin(np.radians(tilt_deg)), np.cos(np.radians(tilt_deg))
    return np.array([0.0, -cosine, sine]), np.array([0.0, -sine, -cosine])


def along_spine_tilt(direction_down) -> float:
    """The tilt whose rows run along ``direction_down`` (RAS, superior to inferior) as seen in the sagittal plane."""
    direction = np.asarray(direction_down, dtype=np.float64)
    if not np.all(np.isfinite(direction)) or np.hypot(direction[1], direction[2]) == 0.0:
        raise InputError(f"a direction down the spine needs an anterior-posterior or superior-inferior part, got "
                         f"{direction.tolist()}")
    return float(np.degrees(np.arctan2(-direction[1], -direction[2])))


def sagittal_patch_to_ras(
    ras_point, size_px: int | tuple[int, int], spacing_mm: float | tuple[float, float], lateral_offset_mm: float = 0.0,
    tilt_deg: float = 0.0,
) -> np.ndarray:
    """The 4x4 patch->RAS matrix of a sagittal patch centred on ``ras_point`` shifted by ``lateral_offset_mm``
    along +x (towards the patient's right), its rows tilted by ``tilt_deg`` (module docstring)."""
    height, width = _size(size_px)
    row_mm, column_mm = _spacing(spacing_mm)
    column_direction, row_direction = (COLUMN_DIRECTION, ROW_DIRECTION) if tilt_deg == 0 else tilted_directions(tilt_deg)
    centre = np.asarray(ras_point, dtype=np.float64) + lateral_offset_mm * NORMAL_DIRECTION
    matrix = np.eye(4)
    matrix[:3, 0] = column_mm * column_direction
    matrix[:3, 1] = row_mm * row_direction
    matrix[:3, 2] = column_mm * NORMAL_DIRECTION
    matrix[:3, 3] = centre - matrix[:3, 0] * (width - 1) / 2 - matrix[:3, 1] * (height - 1) / 2
    return matrix


def patch_pixel_to_ras(patch_to_ras: np.ndarray, column_row: np.ndarray) -> np.ndarray:
    """(N, 2) pixel (column, row) -> (N, 3) RAS mm."""
    column_row = np.asarray(column_row, dtype=np.float64)
    return column_row @ patch_to_ras[:3, :2].T + patch_to_ras[:3, 3]


def fill_fraction(volume: Volume, patch: Patch) -> float:
    """Share of a patch's pixels that lie beyond the scanned volume (filled, not imaged): a large fill region is a
    scan border a model can learn instead of anatomy."""
    height, width = patch.pixels.shape
    rows, columns = np.mgrid[0:height, 0:width]
    ras = patch_pixel_to_ras(patch.patch_to_ras, np.stack([columns.ravel(), rows.ravel()], axis=1))
    return float(np.mean(~volume.contains_ijk(volume.ras_to_ijk_points(ras))))


def ras_to_patch_pixel(patch_to_ras: np.ndarray, ras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of the patch geometry: (N, 3) RAS -> ((N, 2) pixel (column, row), (N,) signed distance in mm
    from the patch plane along +x). Use it to place a RAS point (e.g. a centroid) on a patch or result image."""
    ras = np.atleast_2d(np.asarray(ras, dtype=np.float64))
    local = (ras - patch_to_ras[:3, 3]) @ np.linalg.inv(patch_to_ras[:3, :3]).T
    thickness = np.linalg.norm(patch_to_ras[:3, 2])
    return local[:, :2], local[:, 2] * thickness


def _check_inside(volume: Volume, ras: np.ndarray, what: str) -> None:
    ijk = volume.ras_to_ijk_points(ras)
    if not bool(volume.contains_ijk(ijk)[0]):
        raise InputError(
            f"{what} at RAS {np.round(ras, 2).tolist()} (voxel {np.round(ijk, 2).tolist()}) lies outside the volume "
            f"{volume.label} (size {list(volume.shape_ijk)})"
        )


def sample_plane(volume: Volume, patch_to_ras: np.ndarray, shape: tuple[int, int], fill_value: float) -> np.ndarray:
    """Trilinear samples of ``volume`` at every pixel centre of a (H, W) plane."""
    from scipy import ndimage

    height, width = shape
    rows, columns = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    ras = patch_pixel_to_ras(patch_to_ras, np.stack([columns.ravel(), rows.ravel()], axis=1))
    ijk = volume.ras_to_ijk_points(ras)
    # Sample the array as stored: a float copy of the whole volume per patch cost more than the sampling itself.
    array = volume.array.view(np.uint8) if volume.array.dtype == np.bool_ else volume.array
    values = ndimage.map_coordinates(array, ijk[:, ::-1].T, order=1, mode="nearest", prefilter=False, output=np.float32)
    values[~volume.contains_ijk(ijk)] = fill_value
    return values.reshape(height, width).astype(np.float32)


def extract_sagittal_patch(
    volume: Volume,
    ras_point,
    size_px: int | tuple[int, int],
    spacing_mm: float | tuple[float, float],
    lateral_offset_mm: float = 0.0,
    fill_value: float | None = None,
    tilt_deg: float = 0.0,
) -> Patch:
    """Resample the sagittal plane through ``ras_point`` (+ ``lateral_offset_mm`` along +x) into a (H, W) patch,
    its rows tilted by ``tilt_deg``.

    ``size_px``: int or (H, W); ``spacing_mm``: float or (row, column) mm. The patch centre must lie inside
    the volume (InputError otherwise); pixels beyond the volume take ``fill_value`` (default: volume minimum).
    """
    ras_point = np.asarray(ras_point, dtype=np.float64)
    if ras_point.shape != (3,) or not np.all(np.isfinite(ras_point)):
        raise InputError(f"patch centre must be 3 finite RAS coordinates, got {ras_point.tolist()}")
    shape = _size(size_px)
    matrix = sagittal_patch_to_ras(ras_point, shape, spacing_mm, lateral_offset_mm, tilt_deg)
    what = "patch centre" if lateral_offset_mm == 0 else f"patch centre (lateral offset {lateral_offset_mm} mm)"
    _check_inside(volume, matrix[:3, 3] + matrix[:3, :2] @ [(shape[1] - 1) / 2, (shape[0] - 1) / 2], what)
    fill = float(np.min(volume.array)) if fill_value is None else float(fill_value)
    return Patch(sample_plane(volume, matrix, shape, fill), matrix)


def extract_sagittal_patches(
    volume: Volume,
    ras_point,
    size_px: int | tuple[int, int],
    spacing_mm: float | tuple[float, float],
    lateral_offsets_mm: Iterable[float],
    fill_value: float | None = None,
    tilt_deg: float = 0.0,
) -> list[Patch]:
    """Several parallel sagittal patches, one per lateral offset (mm along +x), e.g. for augmentation."""
    return [
        extract_sagittal_patch(volume, ras_point, size_px, spacing_mm, float(offset), fill_value, tilt_deg)
        for offset in lateral_offsets_mm
    ]


def patch_as_volume(patch: Patch, name: str = "patch") -> Volume:
    """The patch as a one-slice volume (array (1, H, W)) with ``patch_to_ras`` as its IJK-to-RAS matrix."""
    return Volume(patch.pixels[None], patch.patch_to_ras, name=name)
