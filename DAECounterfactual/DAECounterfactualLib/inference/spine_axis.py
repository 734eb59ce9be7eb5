"""The spine's local axis at each vertebra, from the centres of its neighbours, as the tilt of a sagittal patch.

A sagittal patch cut along RAS -z sees a lordotic L5 or a kyphotic T12 tilted by up to 20 degrees (the cervical
spine by 40), so the same fracture moves its endplate along a different direction in every patch. Cutting the rows
along the line from the vertebra above to the vertebra below gives every body the same pose. Neighbours are found by
place, not by label, so that unnamed clicks in any order work as label maps do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..bundle.spec import BundleConfig
from ..errors import InputError
from ..io.volumes import VertebraPosition, is_disc_label
from .geometry import along_spine_tilt

MAX_NEIGHBOUR_GAP_MM = 60.0  # further than a lumbar level (about 40 mm): a gap in the spine, not a neighbour
MIN_NEIGHBOUR_GAP_MM = 10.0  # nearer than a cervical level (about 15 mm): the same body clicked twice


def tilts_along_spine(positions: Sequence[VertebraPosition], max_gap_mm: float = MAX_NEIGHBOUR_GAP_MM
                      ) -> list[float | None]:
    """Per position, the tilt (degrees) of the line from the nearest vertebra above to the nearest below (or from
    itself to its only neighbour), each 10 to ``max_gap_mm`` away; None for a disc or a vertebra without one."""
    vertebrae = [n for n, p in enumerate(positions) if not is_disc_label(p.label)]
    centres = np.array([positions[n].ras for n in vertebrae], dtype=np.float64).reshape(-1, 3)
    tilts: list[float | None] = [None] * len(positions)
    for row, n in enumerate(vertebrae):
        offsets = centres - centres[row]
        distance = np.linalg.norm(offsets, axis=1)
        near = (distance >= MIN_NEIGHBOUR_GAP_MM) & (distance <= max_gap_mm)
        above, below = (_nearest(distance, near & side) for side in (offsets[:, 2] > 0, offsets[:, 2] < 0))
        if above is None and below is None:
            continue
        top = centres[row] if above is None else centres[above]
        bottom = centres[row] if below is None else centres[below]
        tilts[n] = along_spine_tilt(bottom - top)
    return tilts


def _nearest(distance: np.ndarray, allowed: np.ndarray) -> int | None:
    return int(np.flatnonzero(allowed)[np.argmin(distance[allowed])]) if allowed.any() else None


def patch_tilts(config: BundleConfig, positions: Sequence[VertebraPosition],
                needed: Sequence[int] | None = None) -> list[float | None]:
    """The tilt of each position's patch in the bundle's geometry: 0 where its rows run along RAS -z; along the
    spine otherwise, where a ``needed`` position (default: all) without a neighbouring vertebra is an InputError
    naming every such one (its patch would be cut in a pose the model never saw); the others may be None."""
    if config.patch_rows == "axial":
        return [0.0] * len(positions)
    tilts = tilts_along_spine(positions)
    needed = range(len(positions)) if needed is None else needed
    lonely = [positions[n] for n in needed if tilts[n] is None]
    if lonely:
        raise InputError(f"bundle {config.name!r} cuts each patch along the spine, through the neighbouring "
                         f"vertebrae: place a point on the vertebra above or below (10-{MAX_NEIGHBOUR_GAP_MM:g} mm "
                         f"away) of {', '.join(p.level or str(p.label) for p in lonely)}, or give a label map")
    return tilts
