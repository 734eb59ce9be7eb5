"""Linear probes on z_sem, distance-to-grade calibration, and the latent edits that make counterfactuals.

The probe owns its standardisation: distances, probabilities and edits are all computed in the standardised
space u = (z - mean) / scale that the classifier was fitted in, and edits are mapped back to z afterwards. (The
public reference code fitted in one normalisation and edited in another, and left the bias undivided by ||n||.)
Everything here is plain numpy, so probes load from JSON without scikit-learn; fitting them is research
(``DAECounterfactualResearch.probe_fitting``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.polynomial import Polynomial

ProbeKind = Literal["svm", "logistic"]
CalibrationMethod = Literal["linear", "extremes", "poly"]


MIN_EDIT_ALIGNMENT = 0.05  # cos(edit axis, n̂) below this: a unit of distance needs a latent step of over 20


class CalibrationError(ValueError):
    """The calibration cannot be inverted over the grade range."""


def _as_2d(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return z[None] if z.ndim == 1 else z


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass(frozen=True)
class LinearProbe:
    """Hyperplane n·u + b = 0 in the standardised latent space u = (z - mean) / scale.

    ``prob_slope``/``prob_intercept`` map the signed distance to P(positive): exact for logistic regression,
    Platt scaling for the SVM. ``edit_direction`` (unit, in u): the axis counterfactual edits move along when it
    is not n̂ itself, e.g. n̂ projected on the directions the decoder renders (``fit_probe(edit_components=)``).
    """

    normal: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    kind: str = "svm"
    prob_slope: float = 1.0
    prob_intercept: float = 0.0
    edit_direction: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("normal", "mean", "scale"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        dim = self.normal.shape
        if self.normal.ndim != 1 or self.mean.shape != dim or self.scale.shape != dim:
            raise ValueError(f"probe normal, mean and scale must be 1-D of equal length, got "
                             f"{self.normal.shape}, {self.mean.shape}, {self.scale.shape}")
        if not np.all(np.isfinite(self.normal)) or not np.isfinite(self.bias) or np.linalg.norm(self.normal) == 0:
            raise ValueError("probe normal must be finite and non-zero, bias finite")
        if not np.all(self.scale > 0):
            raise ValueError("probe scale must be positive")
        if self.edit_direction is not None:
            self._check_edit_direction()

    def _check_edit_direction(self) -> None:
        direction = np.asarray(self.edit_direction, dtype=np.float64)
        if direction.shape != self.normal.shape or not np.all(np.isfinite(direction)) or not direction.any():
            raise ValueError(f"probe edit direction must be finite, non-zero and of shape {self.normal.shape}, got "
                             f"shape {direction.shape}")
        direction = direction / np.linalg.norm(direction)
        if direction @ self.unit_normal < MIN_EDIT_ALIGNMENT:
            raise ValueError(f"probe edit direction is at cos {direction @ self.unit_normal:.3f} to the normal (at "
                             f"least {MIN_EDIT_ALIGNMENT} needed): steps along it barely move the distance")
        object.__setattr__(self, "edit_direction", direction)

    @property
    def dim(self) -> int:
        return self.normal.shape[0]

    @property
    def unit_normal(self) -> np.ndarray:
        return self.normal / np.linalg.norm(self.normal)

    @property
    def edit_axis(self) -> np.ndarray:
        """Unit axis of counterfactual edits: ``edit_direction``, or n̂ when the probe has none."""
        return self.unit_normal if self.edit_direction is None else self.edit_direction

    def standardize(self, z: np.ndarray) -> np.ndarray:
        z = _as_2d(z)
        if z.shape[1] != self.dim:
            raise ValueError(f"latent has {z.shape[1]} dimensions, probe expects {self.dim}")
        return (z - self.mean) / self.scale

    def unstandardize(self, u: np.ndarray) -> np.ndarray:
        return u * self.scale + self.mean

    def distance(self, z: np.ndarray) -> np.ndarray:
        """Signed distance (n·u + b) / ||n||, positive on the pathology side; shape (N,)."""
        u = self.standardize(z)
        return (u @ self.normal + self.bias) / np.linalg.norm(self.normal)

    def probability(self, z: np.ndarray) -> np.ndarray:
        return _sigmoid(self.prob_slope * self.distance(z) + self.prob_intercept)

    def move_to_distance(self, z: np.ndarray, target: np.ndarray | float, gain: float = 1.0) -> np.ndarray:
        """Shift each latent along the edit axis (in the probe's space) so its signed distance equals ``target``.

        A step s along a unit axis e moves the distance by s·(n̂·e), so the step is (target - dist) / (n̂·e): along
        n̂ itself, the paper's edit. ``gain`` > 1 overshoots by that factor: the task's edit gain, which makes the
        *decoded and re-encoded* image land on ``target`` when the decoder renders only part of a latent step (see
        ``fit_edit_gain``)."""
        u, axis = self.standardize(z), self.edit_axis
        step = gain * (np.asarray(target, dtype=np.float64) - self.distance(z)) / (axis @ self.unit_normal)
        return self.unstandardize(u + step[:, None] * axis)

    def reflect(self, z: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """Binary counterfactual: mirror through the hyperplane, w - 2·dist·n̂ (same |dist|, other side; the step
        runs along the edit axis when the probe has one)."""
        return self.move_to_distance(z, -self.distance(z), gain)

    def sweep(self, z: np.ndarray, distances: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """One latent moved to each of ``distances``; shape (len(distances), dim)."""
        z = _as_2d(z)
        if z.shape[0] != 1:
            raise ValueError("sweep takes a single latent")
        distances = np.asarray(distances, dtype=np.float64)
        return self.move_to_distance(np.repeat(z, len(distances), axis=0), distances, gain)

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind, "normal": self.normal.tolist(), "bias": float(self.bias),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "prob_slope": float(self.prob_slope), "prob_intercept": float(self.prob_intercept)}
        return data if self.edit_direction is None else data | {"edit_direction": self.edit_direction.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LinearProbe":
        return cls(normal=data["normal"], bias=float(data["bias"]), mean=data["mean"], scale=data["scale"],
                   kind=data.get("kind", "svm"), prob_slope=float(data.get("prob_slope", 1.0)),
                   prob_intercept=float(data.get("prob_intercept", 0.0)), edit_direction=data.get("edit_direction"))


@dataclass(frozen=True)
class Calibration:
    """Polynomial map signed distance -> continuous grade, rounded and clipped to [min_grade, max_grade].

    ``anchor`` is a distance inside the fitted data; inversion uses the monotone branch of the polynomial that
    contains it, so a cubic fit can still be inverted where it is monotone over the grade range.
    """

    coefficients: tuple[float, ...]
    min_grade: int
    max_grade: int
    anchor: float = 0.0
    method: str = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficients", tuple(float(c) for c in self.coefficients))
        if self.min_grade >= self.max_grade:
            raise ValueError(f"min_grade {self.min_grade} must be below max_grade {self.max_grade}")
        if not self.coefficients or not all(np.isfinite(self.coefficients)):
            raise ValueError("calibration coefficients must be finite")

    @property
    def polynomial(self) -> Polynomial:
        return Polynomial(self.coefficients)

    def score(self, distance: np.ndarray) -> np.ndarray:
        """Continuous grade."""
        return self.polynomial(np.asarray(distance, dtype=np.float64))

    def grade(self, distance: np.ndarray) -> np.ndarray:
        """Ordinal grade: the continuous score rounded to the nearest grade and clipped to the range."""
        return np.clip(np.rint(self.score(distance)), self.min_grade, self.max_grade).astype(int)

    def monotone_branch(self) -> tuple[float, float]:
        """The interval between critical points of the polynomial that contains the anchor."""
        critical = self.polynomial.deriv().roots()
        critical = np.sort(critical[np.abs(critical.imag) < 1e-9].real) if len(critical) else np.array([])
        lo = max((c for c in critical if c < self.anchor), default=-np.inf)
        hi = min((c for c in critical if c >= self.anchor), default=np.inf)
        return lo, hi

    def inverse(self, grade: float) -> float:
        """Distance whose calibrated score is ``grade``; raises CalibrationError where not invertible."""
        if not self.min_grade <= grade <= self.max_grade:
            raise CalibrationError(f"target grade {grade} outside the calibrated range "
                                   f"[{self.min_grade}, {self.max_grade}]")
        poly = self.polynomial
        if poly.degree() < 1 or poly.deriv()(self.anchor) == 0:
            raise CalibrationError("calibration is flat: the distance does not determine the grade")
        lo, hi = self.monotone_branch()
        roots = (poly - grade).roots()
        roots = [r.real for r in roots if abs(r.imag) < 1e-9 and lo <= r.real <= hi]
        if not roots or not self._covers_grade_range(lo, hi):
            raise CalibrationError(
                f"calibration ({self.method}, coefficients {self.coefficients}) is not monotone over grades "
                f"{self.min_grade}..{self.max_grade} around distance {self.anchor:.3g}; use a lower degree")
        return float(roots[0])

    def _covers_grade_range(self, lo: float, hi: float) -> bool:
        poly = self.polynomial
        for grade in (self.min_grade, self.max_grade):
            roots = (poly - grade).roots()
            if not any(abs(r.imag) < 1e-9 and lo <= r.real <= hi for r in roots):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "coefficients": list(self.coefficients), "min_grade": self.min_grade,
                "max_grade": self.max_grade, "anchor": self.anchor}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        return cls(coefficients=tuple(data["coefficients"]), min_grade=int(data["min_grade"]),
                   max_grade=int(data["max_grade"]), anchor=float(data.get("anchor", 0.0)),
                   method=str(data.get("method", "linear")))


def sweep_distances(start: float, stop: float, count: int) -> np.ndarray:
    """Evenly spaced signed distances for a continuous interpolation strip."""
    if count < 2:
        raise ValueError("a sweep needs at least 2 points")
    return np.linspace(start, stop, count)
