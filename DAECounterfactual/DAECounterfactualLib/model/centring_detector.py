"""Which crop along the spine is cut at a body's centre, as the bundle's latents tell it.

Centring a click (``inference.centring``) picks one of the crops within reach along the spine. The OOD detector can
only say how typical a crop is of everything the bundle was fitted on; on patients the DAE never saw it moves a
well-placed click off the centre often enough to cost healthy grades (docs/RESULTS.md, "Does a grade hold when the
click is off the centre?"). This detector holds two Gaussians of z_sem fitted on the training patients' crops: those
cut at the centroid, and those cut ``off_mm`` or more above or below it, both in the crops' leading principal
directions (``basis``, about their mean ``mean``), which keeps the arrays small enough to ship. A crop's score is
its squared Mahalanobis distance from the first less that from the second, lower for a centred crop: a quadratic
discriminant, because where a crop sits is not linear in z_sem (a linear regression of the offset, tried, could
not place it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .ood import check_stored_kind, check_stored_z_dim, gaussian_as_stored, squared_mahalanobis

CENTRED_VS_OFF = "centred_vs_off_gaussians"
ARRAYS = ("mean", "basis", "centred_mean", "centred_precision", "off_mean", "off_precision")


@dataclass(frozen=True)
class CentringDetector:
    """Gaussians of the latents of centred crops and of crops ``off_mm`` or more off the centre along the spine, in
    the coordinates u = (z - mean) @ basis.T (``basis``: orthonormal rows). ``fitted_on`` names the crops' images in
    words (e.g. which patients)."""

    mean: np.ndarray
    basis: np.ndarray
    centred_mean: np.ndarray
    centred_precision: np.ndarray
    off_mean: np.ndarray
    off_precision: np.ndarray
    off_mm: float
    fitted_on: str = ""

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float32).astype(np.float64)
        basis = np.asarray(self.basis, dtype=np.float32).astype(np.float64)
        if mean.ndim != 1 or basis.ndim != 2 or basis.shape[1] != len(mean) or not basis.shape[0]:
            raise ValueError(f"the centring basis {basis.shape} must be (k, d) for a mean of shape (d,), {mean.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(basis))):
            raise ValueError("the centring mean and basis must be finite")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "basis", basis)
        for kind in ("centred", "off"):
            mean, precision = gaussian_as_stored(getattr(self, f"{kind}_mean"), getattr(self, f"{kind}_precision"))
            object.__setattr__(self, f"{kind}_mean", mean)
            object.__setattr__(self, f"{kind}_precision", precision)
        if not len(self.centred_mean) == len(self.off_mean) == len(self.basis):
            raise ValueError(f"the centred and off-centre Gaussians have {len(self.centred_mean)} and "
                             f"{len(self.off_mean)} dimensions, the basis {len(self.basis)}")
        if not np.isfinite(self.off_mm) or self.off_mm <= 0:
            raise ValueError(f"off_mm must be positive, got {self.off_mm}")

    def score(self, z: np.ndarray) -> np.ndarray:
        """Per latent: lower where the crop looks cut at the centre rather than off it."""
        u = (np.atleast_2d(np.asarray(z, dtype=np.float64)) - self.mean) @ self.basis.T
        return (squared_mahalanobis(u - self.centred_mean, self.centred_precision)
                - squared_mahalanobis(u - self.off_mean, self.off_precision))

    def arrays(self) -> dict[str, np.ndarray]:
        """What the bundle stores in safetensors."""
        return {name: getattr(self, name).astype(np.float32) for name in ARRAYS}

    def to_dict(self) -> dict[str, Any]:
        """What the bundle stores as JSON beside the arrays."""
        return {"kind": CENTRED_VS_OFF, "z_dim": len(self.mean), "components": len(self.basis),
                "off_mm": self.off_mm,
                "score": "u = (z - mean) @ basis.T; squared Mahalanobis distance per dimension of u from the centred "
                         "crops' Gaussian less that from the off-centre crops' (Ledoit-Wolf covariances); the crop "
                         "scoring lowest is centred",
                **({"fitted_on": self.fitted_on} if self.fitted_on else {})}

    @classmethod
    def from_parts(cls, data: dict[str, Any], arrays: dict[str, np.ndarray]) -> "CentringDetector":
        check_stored_kind(data, arrays, CENTRED_VS_OFF, ARRAYS, "centring detector")
        return check_stored_z_dim(data, cls(**arrays, off_mm=float(data["off_mm"]),
                                            fitted_on=str(data.get("fitted_on", ""))))
