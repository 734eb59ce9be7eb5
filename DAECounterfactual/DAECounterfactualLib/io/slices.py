"""2D sagittal slices with point targets (e.g. SPIDER disc centres): pixel spacing and patch cutting.

A slice is shown upright, superior up and anterior left, the same convention as the sagittal patches cut from
volumes (``geometry``), so a patch from a slice and one from a volume look alike to a model.

Pixel spacing follows one stated rule. Where a table marks its spacing ``ok``, the DICOM spacing is used. Where it
marks it ``suspect`` (exports that were resampled anisotropically, so the listed spacing is wrong), the pixels are
first made square by undoing a vertical stretch of height/width, then scaled so that the median distance between
adjacent lumbar disc centres of that image equals ``REFERENCE_DISC_PITCH_MM``, the mean of the slices whose spacing
is trustworthy (docs/RESULTS.md states how it was measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

REFERENCE_DISC_PITCH_MM = 35.4
SPACING_CHECKS = ("ok", "suspect")


@dataclass(frozen=True)
class SliceSpacing:
    """Millimetres per pixel along rows (vertical) and columns (horizontal)."""

    row_mm: float
    column_mm: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.row_mm) and np.isfinite(self.column_mm) and self.row_mm > 0 and self.column_mm > 0):
            raise InputError(f"pixel spacing must be positive millimetres, got {self.row_mm}, {self.column_mm}")


def median_pitch_px(centres_xy: np.ndarray, vertical_scale: float = 1.0) -> float:
    """Median distance in pixels between consecutive centres (sorted top to bottom), rows scaled by
    ``vertical_scale``."""
    centres = np.asarray(centres_xy, dtype=np.float64).reshape(-1, 2)
    if len(centres) < 2:
        raise InputError("estimating the scale of a slice needs at least two disc centres")
    centres = centres[np.argsort(centres[:, 1])] * [1.0, vertical_scale]
    return float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1)))


def slice_spacing(check: str, row_mm: float, column_mm: float, width_px: int, height_px: int,
                  lumbar_centres_xy: np.ndarray | None = None) -> SliceSpacing:
    """The spacing to cut patches with, by the rule in this module's docstring. ``lumbar_centres_xy`` are the
    image's lumbar disc centres (pixels), needed only for ``suspect`` spacing."""
    if check not in SPACING_CHECKS:
        raise InputError(f"spacing check must be one of {SPACING_CHECKS}, got {check!r}")
    if check == "ok":
        return SliceSpacing(float(row_mm), float(column_mm))
    if lumbar_centres_xy is None:
        raise InputError("a slice with suspect spacing needs its disc centres to estimate its scale")
    stretch = height_px / width_px
    column = REFERENCE_DISC_PITCH_MM / median_pitch_px(lumbar_centres_xy, vertical_scale=1.0 / stretch)
    return SliceSpacing(column / stretch, column)


def slice_patch(image: np.ndarray, centre_xy, spacing: SliceSpacing, size_px: int, spacing_mm: float,
                angle_deg: float = 0.0, scale: float = 1.0, shift_mm=(0.0, 0.0)) -> np.ndarray:
    """A ``size_px`` square patch at ``spacing_mm`` centred on ``centre_xy`` (pixels, x right, y down), sampled
    bilinearly; pixels beyond the slice take its minimum. ``angle_deg``, ``scale`` and ``shift_mm`` (x, y) rotate,
    zoom and move the sampling grid, for augmentation."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise InputError(f"a slice must be a 2D greyscale image, got shape {image.shape}")
    from scipy.ndimage import map_coordinates

    offsets = (np.arange(size_px) - (size_px - 1) / 2) * spacing_mm / scale
    down, right = np.meshgrid(offsets, offsets, indexing="ij")
    angle = np.deg2rad(angle_deg)
    x_mm = np.cos(angle) * right - np.sin(angle) * down + shift_mm[0]
    y_mm = np.sin(angle) * right + np.cos(angle) * down + shift_mm[1]
    rows = centre_xy[1] + y_mm / spacing.row_mm
    columns = centre_xy[0] + x_mm / spacing.column_mm
    return map_coordinates(image, [rows, columns], order=1, mode="constant", cval=float(image.min()))
