"""Out-of-distribution scores of z_sem: the training set's mean and spread per dimension (a latent's mean squared
z-score; every bundle has it) and, where a bundle carries one, the Mahalanobis distance under the training latents'
shrunk covariance, which replaces it. Either flags an image whose score exceeds its threshold: one the model has not
seen the like of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatentStats:
    """Training-set statistics of z_sem. OOD score: mean squared z-score over dimensions."""

    mean: np.ndarray
    std: np.ndarray
    ood_threshold: float
    ood_quantile: float = 0.995

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", np.asarray(self.mean, dtype=np.float64))
        object.__setattr__(self, "std", np.asarray(self.std, dtype=np.float64))
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape or not np.all(self.std > 0):
            raise ValueError("latent mean/std must be 1-D of equal length with std > 0")
        if not np.isfinite(self.ood_threshold) or self.ood_threshold <= 0:
            raise ValueError(f"ood_threshold must be positive, got {self.ood_threshold}")
        if not 0 < self.ood_quantile < 1:
            raise ValueError(f"ood_quantile must lie in (0, 1), got {self.ood_quantile}")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std))):
            raise ValueError("latent mean/std must be finite")

    def ood_score(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        return np.mean(((z - self.mean) / self.std) ** 2, axis=1)

    def is_ood(self, z: np.ndarray) -> np.ndarray:
        return self.ood_score(z) > self.ood_threshold

    @classmethod
    def from_latents(cls, z: np.ndarray, quantile: float = 0.995) -> "LatentStats":
        """Threshold = the given quantile of the training latents' own scores."""
        z = np.asarray(z, dtype=np.float64)
        mean, std = z.mean(axis=0), np.maximum(z.std(axis=0), 1e-6)
        scores = np.mean(((z - mean) / std) ** 2, axis=1)
        return cls(mean=mean, std=std, ood_threshold=float(np.quantile(scores, quantile)), ood_quantile=quantile)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "ood_threshold": self.ood_threshold,
                "ood_quantile": self.ood_quantile,
                "ood_score": "mean over dimensions of ((z - mean) / std)^2"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LatentStats":
        return cls(mean=data["mean"], std=data["std"], ood_threshold=float(data["ood_threshold"]),
                   ood_quantile=float(data.get("ood_quantile", 0.995)))


MAHALANOBIS = "mahalanobis_ledoit_wolf"


def squared_mahalanobis(centred: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """c . precision . c per row of ``centred``, divided by its dimensions. z_sem of a training set spans fewer
    dimensions than it has, so typical latents score well below 1 and those off that span far above."""
    return np.einsum("ij,ij->i", centred @ precision, centred) / len(precision)  # BLAS, unlike a three-way einsum


def gaussian_as_stored(mean, precision) -> tuple[np.ndarray, np.ndarray]:
    """A mean and precision matrix as float32 arrays hold them (the precision a bundle stores), in float64, checked:
    (d,) and (d, d), finite, the precision symmetric. ValueError otherwise."""
    mean = np.asarray(mean, dtype=np.float32).astype(np.float64)
    precision = np.asarray(precision, dtype=np.float32).astype(np.float64)
    if mean.ndim != 1 or precision.shape != (len(mean), len(mean)):
        raise ValueError(f"Mahalanobis mean {mean.shape} and precision {precision.shape} must be (d,) and (d, d)")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(precision))):
        raise ValueError("Mahalanobis mean and precision must be finite")
    if not np.allclose(precision, precision.T, rtol=1e-4, atol=1e-6 * np.abs(precision).max()):
        raise ValueError("the Mahalanobis precision matrix must be symmetric")
    return mean, precision


def check_stored_kind(data: dict[str, Any], arrays: dict[str, np.ndarray], kind: str, names: tuple[str, ...],
                      what: str) -> None:
    """A stored detector's JSON names ``kind`` and its safetensors hold exactly the arrays ``names``."""
    if data.get("kind") != kind:
        raise ValueError(f"unknown {what} kind {data.get('kind')!r}; expected {kind!r}")
    if set(arrays) != set(names):
        raise ValueError(f"the {what}'s arrays must be {' and '.join(repr(n) for n in names)}, got {sorted(arrays)}")


def check_stored_z_dim(data: dict[str, Any], detector):
    """``detector``, if the z_dim its JSON states (where it states one) is its arrays' length."""
    if int(data.get("z_dim", len(detector.mean))) != len(detector.mean):
        raise ValueError(f"z_dim {data['z_dim']} but the arrays have {len(detector.mean)} dimensions")
    return detector


@dataclass(frozen=True)
class MahalanobisDetector:
    """Squared Mahalanobis distance of z_sem from the training latents' mean under their Ledoit-Wolf shrunk
    covariance, divided by z_dim; the threshold is a quantile of held-out in-distribution scores. Chosen over the
    per-dimension z-score on issue 23's shift sets (docs/RESULTS.md): an image of another modality, region or target
    can look ordinary in every dimension alone and still break how the dimensions vary together.

    The arrays are held as they are stored (float32), so that the threshold fitted on them is the one that applies.
    ``fitted_on`` names the latents' images for the flag's reason ("" = the training images): a detector fitted on
    the exams a bundle's grades were validated on flags its training images of other sources too."""

    mean: np.ndarray
    precision: np.ndarray
    ood_threshold: float
    ood_quantile: float = 0.995
    fitted_on: str = ""

    def __post_init__(self) -> None:
        mean, precision = gaussian_as_stored(self.mean, self.precision)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "precision", precision)
        if not np.isfinite(self.ood_threshold) or self.ood_threshold <= 0:
            raise ValueError(f"ood_threshold must be positive, got {self.ood_threshold}")
        if not 0 < self.ood_quantile < 1:
            raise ValueError(f"ood_quantile must lie in (0, 1), got {self.ood_quantile}")

    def ood_score(self, z: np.ndarray) -> np.ndarray:
        return squared_mahalanobis(np.atleast_2d(np.asarray(z, dtype=np.float64)) - self.mean, self.precision)

    def is_ood(self, z: np.ndarray) -> np.ndarray:
        return self.ood_score(z) > self.ood_threshold

    def arrays(self) -> dict[str, np.ndarray]:
        """What the bundle stores in safetensors."""
        return {"mean": self.mean.astype(np.float32), "precision": self.precision.astype(np.float32)}

    def to_dict(self) -> dict[str, Any]:
        """What the bundle stores as JSON beside the arrays."""
        return {"kind": MAHALANOBIS, "z_dim": len(self.mean), "ood_threshold": self.ood_threshold,
                "ood_quantile": self.ood_quantile,
                "ood_score": "(z - mean) . precision . (z - mean) / z_dim; precision: inverse Ledoit-Wolf "
                             "covariance of the training latents; threshold: ood_quantile of held-out scores",
                **({"fitted_on": self.fitted_on} if self.fitted_on else {})}

    @classmethod
    def from_parts(cls, data: dict[str, Any], arrays: dict[str, np.ndarray]) -> "MahalanobisDetector":
        check_stored_kind(data, arrays, MAHALANOBIS, ("mean", "precision"), "OOD detector")
        return check_stored_z_dim(data, cls(arrays["mean"], arrays["precision"], float(data["ood_threshold"]),
                                            float(data.get("ood_quantile", 0.995)), str(data.get("fitted_on", ""))))
