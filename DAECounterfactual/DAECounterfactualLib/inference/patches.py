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


def cut_patch(config: BundleConfig, volume: Volume, ras, lateral_offset_mm: float = 0.0) -> Patch:
    """The bundle's patch at ``ras``. A bundle whose rows follow the spine (a research geometry, trained by
    ``build_dataset.py --along-spine``) needs the neighbouring vertebrae of every point, which the panel and the CLI
    do not gather yet: refused by name rather than cut along RAS -z, which would grade a patch unlike its training
    set's."""
    if config.patch_rows != "axial":
        raise InputError(f"bundle {config.name!r} cuts its patches along the spine (patch rows {config.patch_rows!r}); "
                         "this version grades and explains only bundles whose rows run superior-inferior (research "
                         "scripts such as real_acceptance.py place such patches from a body mask)")
    return extract_sagittal_patch(volume, ras, config.patch_size_px, config.patch_spacing_mm, lateral_offset_mm)


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


def model_input(config: BundleConfig, volume: Volume, ras, value_range: tuple[float, float] | None = None
                ) -> tuple[Patch, np.ndarray]:
    """The patch (original units, with geometry) and the model input (1, H, W) for one point."""
    patch = cut_patch(config, volume, ras)
    return patch, to_model_input(config, [patch], value_range or volume_value_range(config, volume))[0]


def check_positions_inside(volume: Volume, positions: Sequence[VertebraPosition]) -> None:
    """One InputError naming every position outside the volume, before any work: one bad point means the
    positions belong to another image, and a partial table or CSV would hide that."""
    ras = np.array([p.ras for p in positions], dtype=np.float64).reshape(-1, 3)
    outside = [p for p, inside in zip(positions, volume.contains_ijk(volume.ras_to_ijk_points(ras))) if not inside]
    if outside:
        listed = ", ".join(f"{p.level} at RAS {np.round(p.ras, 1).tolist()}" for p in outside)
        raise InputError(f"{len(outside)} position(s) lie outside the volume {volume.label}: {listed}")
