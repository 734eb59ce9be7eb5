"""Fractures simulated on a real vertebra of a volume, in the sagittal patch a model sees.

When the spine above follows the collapse (``synthesis.simulate_fracture(spine_follows=True)``), rows from above
the patch move into it; so the patch, its body mask and the other bodies' mask are cut taller than asked, the
fracture is simulated there, and the result is cropped back to the patch (same centre, same pixels when nothing
moves).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from DAECounterfactualLib.inference.geometry import extract_sagittal_patch
from DAECounterfactualLib.io.volumes import Volume

from .synthesis import Fracture, simulate_fracture

HEADROOM_MM = 24.0  # above and below the patch: more than the largest drop (0.6 x a 35 mm body)


def body_masks(instance_mask: Volume, label: int) -> tuple[Volume, Volume]:
    """(this body, every other body) of an instance mask, as float volumes for resampling."""
    labels = instance_mask.array
    this, others = labels == label, (labels > 0) & (labels != label)
    return (Volume(this.astype(np.float32), instance_mask.ijk_to_ras),
            Volume(others.astype(np.float32), instance_mask.ijk_to_ras))


def whole_in_patch(body_mask: np.ndarray) -> bool:
    """The body lies whole in the patch: present, and clear of every edge (a cut body cannot be measured)."""
    return bool(body_mask.any()) and not (body_mask[[0, -1], :].any() or body_mask[:, [0, -1]].any())


def fracture_in_patch(volume: Volume, body: Volume, others: Volume, ras, size_px: int, spacing_mm: float,
                      lateral_offset_mm: float, height_loss: float, kind: str, spine_follows: bool = True,
                      tilt_deg: float = 0.0) -> Fracture:
    """The fracture of the body at ``ras`` in the (size_px x size_px) sagittal patch, its rows tilted by
    ``tilt_deg`` (the fracture moves the endplate along the rows); InputError as ``simulate_fracture`` when the body
    cannot take it."""
    pad = math.ceil(HEADROOM_MM / spacing_mm)
    tall = (size_px + 2 * pad, size_px)

    def cut(source: Volume, fill: float | None = None) -> np.ndarray:
        return extract_sagittal_patch(source, ras, tall, spacing_mm, lateral_offset_mm, fill, tilt_deg).pixels

    fracture = simulate_fracture(cut(volume), cut(body, 0.0) >= 0.5, height_loss, kind, spacing_mm,
                                 neighbours_2d=cut(others, 0.0) >= 0.5, spine_follows=spine_follows)
    crop = slice(pad, pad + size_px)
    return replace(fracture, image=fracture.image[crop], mask=fracture.mask[crop],
                   source_rows=fracture.source_rows[crop] - pad)
