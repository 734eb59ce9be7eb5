"""From a volume and RAS points to model inputs: the sagittal patch at each point, cut with the bundle's patch size
and spacing, mapped to the model range with the bundle's preprocessing.

Percentile (MRI) scaling takes its percentiles over the whole volume, so every vertebra of one scan is scaled
alike, exactly as the dataset builder does at training time (``Preprocessing.volume_range``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..bundle.spec import BundleConfig
from ..errors import InputError
from ..io.volumes import Volume, VertebraPosition
from .geometry import Patch, extract_sagittal_patch
from .screening import check_on_tissue


def volume_value_range(config: BundleConfig, volume: Volume) -> tuple[float, float]:
    return config.preprocessing.volume_range(volume.array)


def cut_patch(config: BundleConfig, volume: Volume, ras, lateral_offset_mm: float = 0.0,
              tilt_deg: float | None = None) -> Patch:
    """The bundle's patch at ``ras``. ``tilt_deg``: the spine's tilt there (``spine_axis.patch_tilts``), which a
    bundle whose rows follow the spine needs: cut along RAS -z, its patch would lie in a pose it never saw."""
    if tilt_deg is None:
        if config.patch_rows != "axial":
            raise InputError(f"bundle {config.name!r} cuts each patch along the spine, and no tilt was given for the "
                             f"point at RAS {np.round(np.asarray(ras, dtype=float), 1).tolist()} (the neighbouring "
                             "vertebrae give it: spine_axis.patch_tilts)")
        tilt_deg = 0.0
    return extract_sagittal_patch(volume, ras, config.patch_size_px, config.patch_spacing_mm, lateral_offset_mm,
                                  tilt_deg=tilt_deg)


def to_model_input(config: BundleConfig, patches: Sequence[Patch], value_range: tuple[float, float]) -> np.ndarray:
    """(N, 1, H, W) model-range images of volume patches (which have one channel); a patch centred in air is an
    InputError."""
    if config.model.in_channels != 1:
        raise InputError(f"bundle {config.name!r} expects {config.model.in_channels}-channel images; volume "
                         "patches have one channel")
    images = np.stack([config.preprocessing.apply(p.pixels, value_range)[None] for p in patches])
    for patch, image in zip(patches, images):
        check_on_tissue(patch, image, value_range)
    return images


def model_input(config: BundleConfig, volume: Volume, ras, value_range: tuple[float, float] | None = None,
                tilt_deg: float | None = None) -> tuple[Patch, np.ndarray]:
    """The patch (original units, with geometry) and the model input (1, H, W) for one point."""
    patch = cut_patch(config, volume, ras, tilt_deg=tilt_deg)
    return patch, to_model_input(config, [patch], value_range or volume_value_range(config, volume))[0]


def check_positions_inside(volume: Volume, positions: Sequence[VertebraPosition]) -> None:
    """One InputError naming every position outside the volume, before any work: one bad point means the
    positions belong to another image, and a partial table or CSV would hide that."""
    ras = np.array([p.ras for p in positions], dtype=np.float64).reshape(-1, 3)
    outside = [p for p, inside in zip(positions, volume.contains_ijk(volume.ras_to_ijk_points(ras))) if not inside]
    if outside:
        listed = ", ".join(f"{p.level} at RAS {np.round(p.ras, 1).tolist()}" for p in outside)
        raise InputError(f"{len(outside)} position(s) lie outside the volume {volume.label}: {listed}")
