"""The height of a real vertebral body in an image that has no mask of its own (a counterfactual, a simulated
fracture): the endplates a reference image of the same patch shows at its body mask's top and bottom are followed,
column by column, into the other image, and the body between them is measured with ``synthesis.morphometry``.
Thresholding cannot isolate a body on real CT or MRI (docs/RESULTS.md), but the step from disc to endplate can be
followed: its sign and strength are read where the reference's mask says it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import ndimage

from DAECounterfactualLib.errors import InputError

from .synthesis import Heights, morphometry

OUTWARD_MM = 3.0     # how far beyond the reference endplate (into the disc) an endplate is looked for
INWARD = 0.6         # how far into the body, as a fraction of its height in that column
MIN_STEP = 0.5       # an endplate step is at least this fraction of the reference's own, with its sign
INNER = 0.8          # the middle share of the body's columns that is followed (the corners are rounded)
MIN_COLUMNS = 0.6    # of those, the share that must show both endplates
UPSAMPLE = 4         # rows of the moved mask per pixel: edges are found to a fraction of a pixel


@dataclass(frozen=True)
class EndplateRuler:
    """Follows the endplates of ``reference`` (model units, (C, H, W)) at its body ``mask`` (H, W) into other
    images of the same patch; ``spacing_mm`` is the patch's pixel size."""

    reference: np.ndarray
    mask: np.ndarray
    spacing_mm: float
    _columns: np.ndarray = field(init=False, repr=False)  # the followed columns

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask, dtype=bool)
        if mask.ndim != 2 or mask.sum() < 16:
            raise InputError("the endplate ruler needs a 2D body mask of at least 16 pixels")
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "reference", np.asarray(self.reference, dtype=np.float64))
        columns = np.flatnonzero(mask.any(axis=0))
        skip = int(round((1 - INNER) / 2 * len(columns)))
        object.__setattr__(self, "_columns", columns[skip:len(columns) - skip] if len(columns) > 2 * skip + 2
                           else columns)

    def heights(self, image: np.ndarray) -> Heights | None:
        """Heights of the body ``image`` shows between the followed endplates; None where too few columns show
        both."""
        rows = self.endplate_rows(image)
        if rows is None:
            return None
        try:
            return morphometry(self._moved_mask(*rows), (self.spacing_mm / UPSAMPLE, self.spacing_mm))
        except InputError:
            return None

    def height_loss(self, image: np.ndarray) -> float | None:
        """Height ``image`` lost against the reference (``height_loss``), both measured by this ruler; None where
        either cannot be measured."""
        before, after = self._reference_heights, self.heights(image)
        return None if before is None or after is None else height_loss(after, before)

    @cached_property
    def _reference_heights(self) -> Heights | None:
        return self.heights(self.reference)

    @cached_property
    def _reference_steps(self) -> np.ndarray:
        return _steps(self.reference)

    def endplate_rows(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(top, bottom) endplate rows of ``image`` in each followed column, to a fraction of a pixel (the first
        and last body rows); None where fewer than ``MIN_COLUMNS`` of them show both endplates."""
        steps = _steps(np.asarray(image, np.float64))
        found = np.array([self._column(steps, c) for c in self._columns])
        valid = np.isfinite(found).all(axis=1)
        if valid.mean() < MIN_COLUMNS:
            return None
        x = np.arange(len(found))
        smooth = [ndimage.median_filter(np.interp(x, x[valid], found[valid, k]), size=3, mode="nearest")
                  for k in (0, 1)]
        return smooth[0], smooth[1]

    def _column(self, image_steps: np.ndarray, c: int) -> tuple[float, float]:
        rows = np.flatnonzero(self.mask[:, c])
        top, bottom = int(rows[0]), int(rows[-1])
        inward = INWARD * (bottom - top + 1)
        outward = OUTWARD_MM / self.spacing_mm
        reference, steps = self._reference_steps[:, c], image_steps[:, c]
        # step k lies between rows k and k + 1: the top edge is step top - 1, the bottom edge step bottom
        first = _follow(reference, steps, top - 1, top - 1 - outward, top - 1 + inward)
        last = _follow(reference, steps, bottom, bottom + outward, bottom - inward)
        return first + 1.0, last

    def _moved_mask(self, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        """The reference mask with each column's endplates moved as the followed ones moved (``_extended`` into
        the outer columns), on a grid ``UPSAMPLE`` times finer in rows."""
        columns = np.flatnonzero(self.mask.any(axis=0))
        first = np.array([np.flatnonzero(self.mask[:, c])[0] for c in columns], dtype=np.float64)
        last = np.array([np.flatnonzero(self.mask[:, c])[-1] for c in columns], dtype=np.float64)
        mine = np.searchsorted(columns, self._columns)
        top_shift = _extended(columns, self._columns, top - first[mine])
        bottom_shift = _extended(columns, self._columns, bottom - last[mine])
        fine = (np.arange(self.mask.shape[0] * UPSAMPLE) + 0.5) / UPSAMPLE - 0.5  # pixel centres, in rows
        moved = np.zeros((len(fine), self.mask.shape[1]), dtype=bool)
        moved[:, columns] = ((fine[:, None] >= (first + top_shift)[None] - 0.5)
                             & (fine[:, None] <= (last + bottom_shift)[None] + 0.5))
        return moved


def height_loss(after: Heights, before: Heights) -> float:
    """The loss a fracture of any kind shows, as the dataset builder measures each kind (``synthesis.
    achieved_height_loss``) but without knowing the kind: the Genant ratio (a wedge, a biconcave body) or the
    posterior height against the body before (a crush, which keeps the ratios), whichever is larger."""
    return max(after.height_loss, 1.0 - after.hp / before.hp)


def _extended(columns: np.ndarray, followed: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``shift`` of the followed columns at every column: interpolated between them, and beyond them along the line
    through the outermost quarter on that side (a wedge keeps deepening into the corner it lowers)."""
    out = np.interp(columns, followed, shift)
    edge = max(3, len(followed) // 4)
    for beyond, near in ((columns < followed[0], slice(0, edge)), (columns > followed[-1], slice(-edge, None))):
        if beyond.any() and len(followed[near]) >= 2:
            slope, intercept = np.polyfit(followed[near], shift[near], 1)
            out[beyond] = slope * columns[beyond] + intercept
    return out


def _steps(image: np.ndarray) -> np.ndarray:
    """Vertical intensity steps of the first channel, smoothed: row k is image[k + 1] - image[k]."""
    return np.diff(ndimage.gaussian_filter1d(image[0], 1.0, axis=0), axis=0)


def _follow(reference: np.ndarray, steps: np.ndarray, at: int, start: float, stop: float) -> float:
    """The step of ``steps`` that continues the reference's endplate step near index ``at``: the first one from
    ``start`` towards ``stop`` with the reference step's sign and at least ``MIN_STEP`` of its size, refined to
    its peak (a parabola through three steps); nan where there is none."""
    near = np.arange(max(at - 2, 0), min(at + 3, len(reference)))
    if not len(near):
        return float("nan")
    strongest = near[np.argmax(np.abs(reference[near]))]
    sign, size = np.sign(reference[strongest]), abs(reference[strongest])
    if size == 0:
        return float("nan")
    direction = 1 if stop >= start else -1
    low, high = sorted((start, stop))
    inside = np.arange(max(int(np.ceil(low)), 0), min(int(np.floor(high)), len(steps) - 1) + 1)
    order = inside[::direction]
    signed = sign * steps
    above = order[signed[order] >= MIN_STEP * size]
    if not len(above):
        return float("nan")
    k = int(above[0])
    while 0 <= k + direction < len(signed) and signed[k + direction] > signed[k]:  # climb to the peak
        k += direction
    if 0 < k < len(signed) - 1:
        a, b, c = signed[k - 1], signed[k], signed[k + 1]
        bend = a - 2 * b + c
        return k + (0.5 * (a - c) / bend if bend < 0 else 0.0)
    return float(k)
