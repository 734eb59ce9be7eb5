"""Augmentations that real CT scanners vary in: an HU offset (calibration, contrast phase), noise (dose), blur along
the rows (slice thickness: a sagittal patch's rows run along z) and a small in-plane tilt.

One draw is applied identically to an intact patch and to every fracture simulated on it, so that within a pair
the only difference is the fracture (issue 21). Draws are seeded by the body, so a rebuild repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

HU_OFFSET = 30.0      # ± HU
NOISE_SD = (0.0, 20.0)  # HU
BLUR_ROWS = (0.0, 1.2)  # Gaussian sigma along the rows, in pixels
TILT_DEG = 5.0        # ± degrees in the sagittal plane


@dataclass(frozen=True)
class ScannerAugmentation:
    hu_offset: float = 0.0
    noise_sd: float = 0.0
    blur_rows: float = 0.0
    tilt_deg: float = 0.0
    noise_seed: int = 0

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """The augmented copy of an (H, W) patch in HU (the input is not modified)."""
        image = np.asarray(pixels, dtype=np.float32)
        if self.tilt_deg:
            image = ndimage.rotate(image, self.tilt_deg, reshape=False, order=1, mode="nearest")
        if self.blur_rows:
            image = ndimage.gaussian_filter1d(image, self.blur_rows, axis=0, mode="nearest")
        if self.noise_sd:
            image = image + np.random.default_rng(self.noise_seed).normal(0.0, self.noise_sd, image.shape)
        return (image + self.hu_offset).astype(np.float32)


def draw_augmentations(count: int, key: list[int]) -> list[ScannerAugmentation]:
    """The identity, then ``count`` random draws seeded by ``key`` (e.g. the dataset seed, label and offset)."""
    rng = np.random.default_rng(key)
    draws = [ScannerAugmentation()]
    for _ in range(count):
        draws.append(ScannerAugmentation(
            hu_offset=float(rng.uniform(-HU_OFFSET, HU_OFFSET)), noise_sd=float(rng.uniform(*NOISE_SD)),
            blur_rows=float(rng.uniform(*BLUR_ROWS)), tilt_deg=float(rng.uniform(-TILT_DEG, TILT_DEG)),
            noise_seed=int(rng.integers(2**31))))
    return draws
