"""Centring a clicked point along the spine where the training patches were centred.

The bundles' patches were cut at each body's centroid, and a grade reads where the endplates fall in the patch: a
click a few millimetres above a healthy body's centre reads as height loss (docs/RESULTS.md, "Does a grade hold
when the click is off the centre?"). Among the crops within ``reach_mm`` of the click along the superior-inferior
axis, the one the bundle's centring detector finds most centred is taken, in whole patch pixels (a parabola's vertex
between two pixels was tried and graded no better). A bundle without that detector falls back on its OOD detector:
the crop most typical of what it was fitted on, which moves more well-placed clicks off the centre.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..io.volumes import Volume, VertebraPosition
from .geometry import extract_sagittal_patch
from .patches import volume_value_range

REACH_MM = 9.0  # a third of a lumbar body's height: a click on the body stays on it


@dataclass(frozen=True)
class Centring:
    """Where a point was moved to: ``ras``, and ``moved_mm`` along the superior axis (negative: inferior)."""

    ras: np.ndarray
    moved_mm: float

    def describe(self) -> str:
        """The move in words, for a result line ("" when the point stayed, to the 0.1 mm it is given in)."""
        if abs(self.moved_mm) < 0.05:
            return ""
        return f"centred {abs(self.moved_mm):.1f} mm {'superior' if self.moved_mm > 0 else 'inferior'} of the click"


def crops_along_rows(tall: np.ndarray, size: int) -> np.ndarray:
    """Every ``size``-row crop of ``tall`` ((size + 2k, W), model range), top to bottom: (2k + 1, 1, size, W)."""
    reach = (tall.shape[0] - size) // 2
    if tall.shape[0] != size + 2 * reach:
        raise ValueError(f"a patch of {tall.shape[0]} rows has no middle crop of {size} rows")
    return np.stack([tall[r:r + size][None] for r in range(2 * reach + 1)]).astype(np.float32)


def centring_scores(bundle, z: np.ndarray) -> np.ndarray:
    """Per latent, lower for a crop more like one cut at a body's centre: the bundle's centring detector, else its
    OOD score."""
    detector = bundle.centring_detector
    return np.asarray(bundle.ood.ood_score(z) if detector is None else detector.score(z), dtype=np.float64)


def best_row(scores: np.ndarray) -> int:
    """Offset in rows (positive: inferior) from the middle of the crops ``scores`` rank, top to bottom; ties go to
    the crop nearest the middle."""
    offsets = np.arange(len(scores)) - len(scores) // 2
    return int(offsets[np.lexsort((np.abs(offsets), scores))[0]])


def centred_row(explainer, tall: np.ndarray, size: int) -> int:
    """Offset in rows (positive: inferior) from the middle of ``tall`` ((size + 2k, W), model range) of the
    ``size``-row crop the bundle finds most centred."""
    crops = crops_along_rows(tall, size)
    return best_row(centring_scores(explainer.bundle, explainer.encode(crops)))


def centre_on_body(explainer, volume: Volume, ras, value_range: tuple[float, float] | None = None,
                   reach_mm: float = REACH_MM, tilt_deg: float = 0.0) -> Centring:
    """The point moved along the patch's rows, i.e. superior-inferior or, tilted by ``tilt_deg``, along the spine
    (by whole patch pixels, at most ``reach_mm``) to where the bundle's patch looks cut at a body's centre."""
    config = explainer.bundle.config
    size, spacing = config.patch_size_px, config.patch_spacing_mm
    reach = int(round(reach_mm / spacing))
    ras = np.asarray(ras, dtype=np.float64)
    if reach < 1:
        return Centring(ras, 0.0)
    tall = extract_sagittal_patch(volume, ras, (size + 2 * reach, size), spacing, tilt_deg=tilt_deg)
    image = config.preprocessing.apply(tall.pixels, value_range or volume_value_range(config, volume))
    rows = centred_row(explainer, image, size)
    return Centring(ras + rows * tall.patch_to_ras[:3, 1], -rows * spacing)


def centred_position(explainer, volume: Volume, position: VertebraPosition,
                     value_range: tuple[float, float] | None = None, tilt_deg: float = 0.0) -> VertebraPosition:
    """A position moved as ``centre_on_body`` moves a click, its label and level kept."""
    return replace(position, ras=centre_on_body(explainer, volume, position.ras, value_range,
                                                tilt_deg=tilt_deg).ras)
