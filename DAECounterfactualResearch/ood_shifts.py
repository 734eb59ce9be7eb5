"""Shift sets for out-of-distribution detection (issue 23): inputs a bundle was not trained on, cut and scaled the
way the bundle cuts and scales what it is given, so that an OOD score can be measured on them.

A shift is either another kind of image (another modality, spine region, target, metal, a fundus photograph) or a
transformation of a volume the bundle could have been given (other intensity units, a bone mask, a crop that cuts
the vertebra, heavy noise or blur, a fracture beyond the training range). Transformations act on the volume, so
percentile scaling, fill beyond the scan and the fracture simulation all see what inference would see. Each set
names the set it was derived from (``source``): its AUROC against that set measures the shift alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable

import numpy as np
from scipy import ndimage

from DAECounterfactualLib.io.volumes import Volume, VertebraPosition

from .dataset_building import Settings, SpineCase, case_samples

NOISE_FRACTION = 0.10  # noise sd, as a share of the volume's 1-99 % intensity range
BLUR_FRACTION = 0.05   # Gaussian blur sd, as a share of the patch's field of view
CROP_FRACTION = 0.30   # a crop keeps this share of the field of view on each side of the vertebra
MIN_FILL = 0.30        # crop-cut patches with less of their area beyond the scan are left out


@dataclass
class PatchSet:
    """Model inputs of one set: images (N, C, H, W) in the model range, the case of each (a case stays in one fold
    when thresholds are cross-fitted), and where it came from."""

    name: str
    description: str
    images: np.ndarray
    groups: np.ndarray
    source: str = "id"     # the set this one was derived from, or "id"
    counted: bool = True   # False: reported, but not a shift a detector must catch (e.g. the intended use)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        self.groups = np.asarray(self.groups, dtype=str)
        if len(self.images) != len(self.groups):
            raise ValueError(f"set {self.name}: {len(self.images)} images but {len(self.groups)} groups")

    def __len__(self) -> int:
        return len(self.images)

    def record(self) -> dict:
        return {"name": self.name, "description": self.description, "n": len(self), "cases": len(set(self.groups)),
                "source": self.source, "counted": self.counted}


def samples_set(name: str, description: str, samples: Iterable[dict], **fields) -> PatchSet:
    """A set of ``case_samples`` dicts (image, case_id)."""
    samples = list(samples)
    if not samples:
        raise ValueError(f"set {name}: no patch could be cut")
    return PatchSet(name, description, np.stack([s["image"] for s in samples]),
                    np.array([s["case_id"] for s in samples]), **fields)


def cut_cases(cases: Iterable[SpineCase], settings: Settings, keep: Callable[[dict], bool] = lambda s: True
              ) -> list[dict]:
    """Every patch ``case_samples`` cuts of the cases that ``keep`` accepts."""
    return [s for case in cases for s in case_samples(case, settings, []) if keep(s)]


# ----------------------------------------------------------------------------------------------------------------
# Positions


def disc_positions(positions: list[VertebraPosition]) -> list[VertebraPosition]:
    """Midpoints of vertebrae adjacent in label order (VerSe ids or ranks): where a disc lies, for cases whose mask
    holds vertebrae only. The disc takes the upper vertebra's label plus 100, as in TPTBox masks."""
    ordered = sorted(positions, key=lambda p: p.label)
    return [VertebraPosition(a.label + 100, f"{a.level}-{b.level}", (np.asarray(a.ras) + np.asarray(b.ras)) / 2)
            for a, b in zip(ordered, ordered[1:]) if b.label == a.label + 1]


def at_discs(case: SpineCase) -> SpineCase:
    """The case with its disc midpoints as positions (no grades, no body mask: nothing is simulated there)."""
    return replace(case, positions=disc_positions(case.positions), grades={}, body_mask=None)


def only_labels(case: SpineCase, keep: Callable[[int], bool]) -> SpineCase:
    return replace(case, positions=[p for p in case.positions if keep(p.label)])


# ----------------------------------------------------------------------------------------------------------------
# Volume transformations


def rescaled(volume: Volume, gain: float, offset: float) -> Volume:
    """Other intensity units: gain * value + offset (e.g. a CT stored without its rescale intercept)."""
    return replace(volume, array=np.asarray(volume.array, dtype=np.float32) * gain + offset)


def masked(volume: Volume, mask: Volume) -> Volume:
    """Everything outside the mask set to the volume's minimum, as in a bone-masked export."""
    array = np.asarray(volume.array, dtype=np.float32)
    return replace(volume, array=np.where(np.asarray(mask.array) > 0, array, array.min()))


def noisy(volume: Volume, seed: int, fraction: float = NOISE_FRACTION) -> Volume:
    """Gaussian noise with sd ``fraction`` of the 1-99 % intensity range."""
    array = np.asarray(volume.array, dtype=np.float32)
    low, high = np.percentile(array, [1, 99])
    noise = np.random.default_rng(seed).normal(0.0, fraction * (high - low), array.shape)
    return replace(volume, array=(array + noise).astype(np.float32))


def blurred(volume: Volume, sigma_mm: float) -> Volume:
    """Gaussian blur of ``sigma_mm`` along every axis (the array is stored k, j, i)."""
    sigma = sigma_mm / np.asarray(volume.spacing, dtype=np.float64)[::-1]
    return replace(volume, array=ndimage.gaussian_filter(np.asarray(volume.array, dtype=np.float32), sigma))


def cropped(volume: Volume, ras, half_mm: float) -> Volume:
    """The box of voxels within ``half_mm`` of a point along each voxel axis: a scan that ends close to it."""
    centre = volume.ras_to_ijk_points(np.asarray(ras, dtype=np.float64)[None])[0]
    half = half_mm / np.asarray(volume.spacing, dtype=np.float64)
    low = np.clip(np.floor(centre - half), 0, None).astype(int)
    high = np.minimum(np.ceil(centre + half).astype(int) + 1, volume.shape_ijk)
    (i0, j0, k0), (i1, j1, k1) = low, high
    shift = np.eye(4)
    shift[:3, 3] = low
    return Volume(np.asarray(volume.array)[k0:k1, j0:j1, i0:i1], volume.ijk_to_ras @ shift, name=volume.name)


def transformed(case: SpineCase, change: Callable[[Volume], Volume]) -> SpineCase:
    return replace(case, volume=change(case.volume))


def crop_cut_cases(case: SpineCase, field_mm: float, fraction: float = CROP_FRACTION) -> list[SpineCase]:
    """One case per vertebra, its volume (and body mask) cropped to ``fraction`` of the field of view around it."""
    out = []
    for position in case.positions:
        half = fraction * field_mm
        mask = case.body_mask and cropped(case.body_mask, position.ras, half)
        out.append(replace(case, volume=cropped(case.volume, position.ras, half), body_mask=mask,
                           positions=[position]))
    return out


def is_crop_cut(sample: dict, minimum: float = MIN_FILL) -> bool:
    return sample["fill_fraction"] >= minimum


# ----------------------------------------------------------------------------------------------------------------
# Images that are not spine patches, and spine patches for an image bundle


LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def as_model_input(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Model-range images (N, C, H, W) of another bundle as inputs of this one: grey (the luminance of a colour
    image), resampled to ``size`` and repeated in ``channels`` channels."""
    images = np.asarray(images, dtype=np.float32)
    grey = np.tensordot(images, LUMA, axes=([1], [0])) if images.shape[1] == 3 else images[:, 0]
    zoom = (1.0, size / grey.shape[1], size / grey.shape[2])
    resized = np.clip(ndimage.zoom(grey, zoom, order=1), -1.0, 1.0)
    return np.repeat(resized[:, None], channels, axis=1).astype(np.float32)


def photo_noise(images: np.ndarray, seed: int, fraction: float = NOISE_FRACTION) -> np.ndarray:
    """Model-range images with Gaussian noise of sd ``fraction`` of the full range, clipped as preprocessing clips."""
    noise = np.random.default_rng(seed).normal(0.0, 2.0 * fraction, images.shape)
    return np.clip(images + noise, -1, 1).astype(np.float32)


def photo_blur(images: np.ndarray, sigma_px: float) -> np.ndarray:
    return ndimage.gaussian_filter(np.asarray(images, dtype=np.float32), (0, 0, sigma_px, sigma_px))


def photo_gain(images: np.ndarray, gain: float) -> np.ndarray:
    """A darker (gain < 1) photograph: 8-bit values times ``gain``, in the model range."""
    return ((np.asarray(images, dtype=np.float32) + 1.0) * gain - 1.0).astype(np.float32)


def photo_cut(images: np.ndarray, keep_fraction: float) -> np.ndarray:
    """Only the top ``keep_fraction`` of rows imaged, the rest black (value 0, model -1), as beyond a crop."""
    out = np.array(images, dtype=np.float32)
    out[:, :, int(round(keep_fraction * out.shape[2])):, :] = -1.0
    return out
