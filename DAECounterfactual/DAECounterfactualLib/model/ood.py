"""Out-of-distribution statistics: mean and spread of z_sem over a training set, and the threshold above which a
latent's mean squared z-score flags an image the model has not seen the like of."""

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
