"""Candidate out-of-distribution scores on z_sem, fitted on a bundle's training latents (issue 23), to be compared on
the shift sets: the shipped mean squared z-score (per-dimension statistics, blind to how dimensions vary
together), a Mahalanobis distance under a Ledoit-Wolf shrunk covariance (all of z_sem, or its top principal
directions), and the distance to the k-th nearest training latent. Each scores (N, z_dim) latents with
``ood_score``, as the runtime's scores do; higher = less like the training set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from DAECounterfactualLib.model.ood import LatentStats, squared_mahalanobis


class Detector(Protocol):
    def ood_score(self, z: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Mahalanobis:
    """Squared Mahalanobis distance per dimension, optionally within the span of ``basis`` (rows orthonormal)."""

    mean: np.ndarray
    precision: np.ndarray
    basis: np.ndarray | None = None

    def ood_score(self, z: np.ndarray) -> np.ndarray:
        centred = np.atleast_2d(np.asarray(z, dtype=np.float64)) - self.mean
        return squared_mahalanobis(centred if self.basis is None else centred @ self.basis.T, self.precision)


@dataclass(frozen=True)
class NearestNeighbours:
    """Distance to the k-th nearest reference latent, in z-scores of the reference's per-dimension statistics."""

    reference: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    k: int

    def ood_score(self, z: np.ndarray, chunk: int = 512) -> np.ndarray:
        query = (np.atleast_2d(np.asarray(z, dtype=np.float64)) - self.mean) / self.std
        squared_reference = np.sum(self.reference ** 2, axis=1)
        out = []
        for start in range(0, len(query), chunk):
            part = query[start:start + chunk]
            squared = np.sum(part ** 2, axis=1)[:, None] + squared_reference[None] - 2 * part @ self.reference.T
            out.append(np.sqrt(np.maximum(np.partition(squared, self.k - 1, axis=1)[:, self.k - 1], 0.0)))
        return np.concatenate(out) if out else np.zeros(0)


def fit_mahalanobis(z: np.ndarray, components: int | None = None) -> Mahalanobis:
    """Mean and Ledoit-Wolf shrunk precision of the training latents, in the top ``components`` principal
    directions when given (the rest of z_sem is then ignored)."""
    from sklearn.covariance import LedoitWolf

    z = np.asarray(z, dtype=np.float64)
    mean = z.mean(axis=0)
    centred, basis = z - mean, None
    if components is not None:
        basis = np.linalg.svd(centred, full_matrices=False)[2][:components]
        centred = centred @ basis.T
    covariance = LedoitWolf(assume_centered=True).fit(centred).covariance_
    return Mahalanobis(mean, np.linalg.inv(covariance), basis)


def fit_nearest_neighbours(z: np.ndarray, k: int = 10) -> NearestNeighbours:
    z = np.asarray(z, dtype=np.float64)
    mean, std = z.mean(axis=0), np.maximum(z.std(axis=0), 1e-6)
    return NearestNeighbours((z - mean) / std, mean, std, k)


CANDIDATES = {
    "zscore_refit": ("mean squared z-score, statistics of this fit set", lambda z: LatentStats.from_latents(z)),
    "mahalanobis": ("Mahalanobis, Ledoit-Wolf covariance of all 512 dimensions", fit_mahalanobis),
    "mahalanobis_pca32": ("Mahalanobis, Ledoit-Wolf, top 32 principal directions",
                          lambda z: fit_mahalanobis(z, 32)),
    "knn10": ("distance to the 10th nearest training latent (z-scores)", fit_nearest_neighbours),
}

