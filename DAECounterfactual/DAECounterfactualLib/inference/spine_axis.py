"""The spine's local axis at each vertebra, from the centres of its neighbours, as the tilt of a sagittal patch.

A sagittal patch cut along RAS -z sees a lordotic L5 or a kyphotic T12 tilted by up to 20 degrees (the cervical
spine by 40), so the same fracture moves its endplate along a different direction in every patch. Cutting the rows
along the line from the vertebra above to the vertebra below gives every body the same pose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..io.volumes import VertebraPosition, is_disc_label
from .geometry import along_spine_tilt

MAX_NEIGHBOUR_GAP_MM = 60.0  # further than a lumbar level (about 40 mm): a gap in the labels, not a neighbour


def tilts_along_spine(positions: Sequence[VertebraPosition], max_gap_mm: float = MAX_NEIGHBOUR_GAP_MM
                      ) -> dict[int, float]:
    """{label: tilt in degrees} of every vertebra with a labelled neighbour (label +-1) within ``max_gap_mm``: the
    direction from the one above to the one below (or from itself to its only neighbour). Vertebrae without one are
    left out; discs are not vertebrae."""
    centres = {p.label: np.asarray(p.ras, dtype=np.float64) for p in positions if not is_disc_label(p.label)}
    tilts = {}
    for label, centre in centres.items():
        above, below = (_neighbour(centres, label, step, max_gap_mm) for step in (-1, 1))
        if above is None and below is None:
            continue
        top = centre if above is None else above
        bottom = centre if below is None else below
        tilts[label] = along_spine_tilt(bottom - top)
    return tilts


def _neighbour(centres: dict[int, np.ndarray], label: int, step: int, max_gap_mm: float) -> np.ndarray | None:
    other = centres.get(label + step)
    if other is None or np.linalg.norm(other - centres[label]) > max_gap_mm:
        return None
    return other
