"""Intensity preprocessing named in a bundle config, applied identically at training and at inference.

Three kinds: a fixed CT window in HU, robust percentile scaling for MRI (percentiles taken over the whole volume
when one is given, so every patch of a scan is scaled alike), and a fixed value range (8-bit photographs).
All map to the model's range [-1, 1] and clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("ct_window", "percentile", "fixed_range")


@dataclass(frozen=True)
class Preprocessing:
    kind: str = "ct_window"
    low: float = -1000.0   # HU for ct_window, percent for percentile, value for fixed_range
    high: float = 1500.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown preprocessing kind {self.kind!r}; expected one of {KINDS}")
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"preprocessing needs finite low < high, got {self.low}, {self.high}")
        if self.kind == "percentile" and not 0 <= self.low < self.high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.low}, {self.high}")

    def intensity_range(self, reference: np.ndarray | None = None) -> tuple[float, float]:
        """The input values that map to -1 and +1. Percentile scaling needs the reference (volume or patch)."""
        if self.kind != "percentile":
            return float(self.low), float(self.high)
        if reference is None:
            raise ValueError("percentile preprocessing needs the image (or volume) it is computed from")
        values = np.asarray(reference, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ValueError("cannot compute percentiles of an image without finite values")
        lo, hi = np.percentile(values, [self.low, self.high])
        return (float(lo), float(hi)) if hi > lo else (float(lo), float(lo) + 1.0)

    def volume_range(self, volume: np.ndarray) -> tuple[float, float]:
        """The range every patch of one volume is scaled with: fixed, or percentiles over the whole volume (so all
        vertebrae of a scan are scaled alike, at training and at inference)."""
        return self.intensity_range(volume if self.kind == "percentile" else None)

    def apply(self, image: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
        """Map to [-1, 1] float32. ``value_range`` defaults to ``intensity_range(image)``."""
        lo, hi = value_range if value_range is not None else self.intensity_range(image)
        scaled = 2.0 * (np.asarray(image, dtype=np.float64) - lo) / (hi - lo) - 1.0
        return np.clip(scaled, -1.0, 1.0).astype(np.float32)

    def invert(self, model_values: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
        """Back from [-1, 1] to input units (HU for CT), for display next to the original."""
        lo, hi = value_range
        return ((np.asarray(model_values, dtype=np.float64) + 1.0) * 0.5 * (hi - lo) + lo).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": float(self.low), "high": float(self.high)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(kind=str(data["kind"]), low=float(data["low"]), high=float(data["high"]))
