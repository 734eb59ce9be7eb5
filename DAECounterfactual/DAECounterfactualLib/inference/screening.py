"""Screening of an image before it is graded: what the geometry checks of ``Volume`` cannot see.

A ``Volume`` is any valid 3D grid, masks and one-slice patches included. An image that is to be graded must also
extend over more than one voxel along every axis, hold intensities (not label ids, no overflowed values), look like
the bundle's modality, and each point must lie on tissue rather than in air. Refusals raise ``InputError``. A
modality mismatch (an MRI given to a CT bundle) only warns: the model still grades, but it never saw such images,
so the rows carry the OOD flag and the warning instead of a silent grade.

The checks look at intensities only, so they run the same in the CLI, the Logic and the scripts.
"""

from __future__ import annotations

import numpy as np

from ..bundle.spec import BundleConfig
from ..errors import InputError
from .geometry import Patch
from ..io.volumes import Volume

MAX_INTENSITY = 1e7          # CT numbers and scanner MRI magnitudes fit in 16 bits; far beyond that means overflow
MAX_LABEL_IDS = 64           # an image of fewer distinct non-negative integers is a label map (vertebrae: <= 28)
SAMPLE_VOXELS = 1_000_000    # strided sample for the distinct-value count (np.unique sorts)
CT_SOFT_TISSUE_HU = -50.0    # CT images hold fat (-100 HU) or air (-1000 HU) below this
CT_MIN_LOW_FRACTION = 1e-3   # ... in at least this fraction of voxels; MRI magnitudes are never that negative
CT_AIR_VALUE = -500.0        # an "MRI" with 1 % of its voxels below this is a CT in HU
MRI_MAX_AIR_FRACTION = 0.01
CENTRE_FRACTION = 0.25       # side of the patch centre that must not be air, as a fraction of the patch side
AIR_FRACTION = 0.9           # ... "air": at least this share of it at the bottom of the intensity window
WINDOW_BOTTOM = -0.98        # model range: -1 is the bottom of the bundle's intensity window


def screen_volume(config: BundleConfig, volume: Volume) -> str:
    """Refuse an image that cannot be graded (InputError); return a warning ("" if none) for one that can be
    graded but does not look like the bundle's training images."""
    _check_extent(volume)
    _check_magnitude(volume)
    _check_not_a_label_map(volume)
    return _modality_warning(config, volume)


def _check_extent(volume: Volume) -> None:
    flat = [axis for axis, n in zip("ijk", volume.shape_ijk) if n < 2]
    if flat:
        raise InputError(f"{volume.label}: the image is a single slice (size {list(volume.shape_ijk)}, one voxel "
                         f"along {', '.join(flat)}); a 3D volume is needed to cut a sagittal patch")


def _check_magnitude(volume: Volume) -> None:
    if volume.array.dtype == np.bool_:
        return
    low, high = float(np.min(volume.array)), float(np.max(volume.array))
    if max(abs(low), abs(high)) > MAX_INTENSITY:
        raise InputError(f"{volume.label}: voxel values span {low:.6g}..{high:.6g}, far beyond any CT or MRI "
                         "intensity; integer overflow or a wrong rescale slope/intercept in the file?")


def _sample(volume: Volume) -> np.ndarray:
    flat = volume.array.reshape(-1)
    return flat[:: max(1, flat.size // SAMPLE_VOXELS)]


def _check_not_a_label_map(volume: Volume) -> None:
    """Label maps hold few non-negative integer ids; no CT (negative HU) or MRI (hundreds of grey values) does."""
    sample = _sample(volume)
    if sample.dtype != np.bool_ and (np.min(sample) < 0 or not np.array_equal(sample, np.round(sample))):
        return
    values = np.unique(sample)
    if len(values) <= MAX_LABEL_IDS:
        raise InputError(f"{volume.label}: looks like a label map, not an image (only {len(values)} distinct "
                         f"integer values, {values.min():g}..{values.max():g}); give the CT or MRI image and pass "
                         "the mask as positions")


def _modality_warning(config: BundleConfig, volume: Volume) -> str:
    kind = config.preprocessing.kind
    if kind == "ct_window":
        low = float(np.mean(volume.array < CT_SOFT_TISSUE_HU))
        if low < CT_MIN_LOW_FRACTION:
            return (f"{volume.label}: intensities {_range(volume)} do not look like CT in Hounsfield units "
                    f"({low:.2%} of voxels below {CT_SOFT_TISSUE_HU:g} HU: no fat or air); an MRI or an "
                    f"unrescaled CT? bundle {config.name!r} expects CT, so its grades are flagged out of "
                    "distribution")
    elif kind == "percentile":
        air = float(np.mean(volume.array < CT_AIR_VALUE))
        if air > MRI_MAX_AIR_FRACTION:
            return (f"{volume.label}: {air:.1%} of voxels are below {CT_AIR_VALUE:g}, like air in a CT; bundle "
                    f"{config.name!r} expects {config.modality}, so its grades are flagged out of distribution")
    return ""


def _range(volume: Volume) -> str:
    return f"{float(np.min(volume.array)):g}..{float(np.max(volume.array)):g}"


def check_on_tissue(patch: Patch, model_image: np.ndarray, value_range: tuple[float, float]) -> None:
    """Refuse a point in air or background: the centre of its patch lies at the bottom of the intensity window.
    (A model fed air grades air; the number it returns means nothing.)"""
    height, width = model_image.shape[-2:]
    half_h, half_w = max(1, round(height * CENTRE_FRACTION / 2)), max(1, round(width * CENTRE_FRACTION / 2))
    centre = model_image[..., height // 2 - half_h:height // 2 + half_h, width // 2 - half_w:width // 2 + half_w]
    if np.mean(centre <= WINDOW_BOTTOM) >= AIR_FRACTION:
        raise InputError(f"point at RAS {np.round(patch.centre_ras, 1).tolist()} lies in air or background: the "
                         f"centre of its patch is below the bundle's intensity window (<= {value_range[0]:g}); "
                         "place the point on a vertebra")
