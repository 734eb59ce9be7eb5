"""Linear probes on z_sem, distance-to-grade calibration, and the latent edits that make counterfactuals.

The probe owns its standardisation: distances, probabilities and edits are all computed in the standardised
space u = (z - mean) / scale that the classifier was fitted in, and edits are mapped back to z afterwards. (The
public reference code fitted in one normalisation and edited in another, and left the bias undivided by ||n||.)
Everything here is plain numpy, so probes load from JSON without scikit-learn.
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


def principal_basis(u: np.ndarray, components: int) -> np.ndarray:
    """Orthonormal columns spanning the top ``components`` principal directions of ``u``; (dim, components)."""
    if not 0 < components <= min(u.shape):
        raise ValueError(f"probe components must be in 1..{min(u.shape)} for {u.shape[0]} latents of "
                         f"{u.shape[1]} dimensions, got {components}")
    return np.linalg.svd(u - u.mean(axis=0), full_matrices=False)[2][:components].T


def balanced_weights(labels: np.ndarray, strata: np.ndarray | None = None) -> np.ndarray:
    """Sample weights giving each stratum's positives and negatives equal total weight (mean weight 1).

    Without strata this is scikit-learn's class_weight="balanced". With strata (say real CT vs phantom) a trait
    that marks one stratum cannot predict the label, even where the stratum's fracture rate differs: the
    probe is not taught that 'looks like a real scan' means 'fractured'."""
    y = np.asarray(labels).astype(int).ravel()
    strata = np.zeros(len(y), dtype=int) if strata is None else np.asarray(strata).ravel()
    if len(strata) != len(y):
        raise ValueError(f"{len(strata)} strata for {len(y)} labels")
    cells = {(s, c): np.flatnonzero((strata == s) & (y == c)) for s in np.unique(strata) for c in (0, 1)}
    present = {key: rows for key, rows in cells.items() if len(rows)}
    weights = np.zeros(len(y))
    for rows in present.values():
        weights[rows] = len(y) / (len(present) * len(rows))
    return weights


def fit_probe(z: np.ndarray, labels: np.ndarray, kind: ProbeKind = "svm", standardize: bool = True,
              C: float = 1.0, seed: int = 0, components: int = 0, strata: np.ndarray | None = None,
              edit_components: int = 0) -> LinearProbe:
    """Fit a linear SVM or logistic regression for a binary label (1 = pathology) on latents z.

    ``components`` > 0 restricts the normal to the top principal directions of the (standardised) latents. A
    DAE decoder renders steps along the directions its latents vary in and all but ignores the rest, so a
    normal in that subspace gives counterfactuals that change the image; the probe is still a hyperplane on
    all of z (0: no restriction, the paper's probe). ``edit_components`` > 0 keeps the normal for grading and
    moves counterfactual edits along its projection on the top ``edit_components`` directions instead: a wider
    probe grades better, a narrower edit is drawn. Classes are weighted to balance, within each of the
    ``strata`` when given (``balanced_weights``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    z = _as_2d(z)
    y = np.asarray(labels).astype(int).ravel()
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"{z.shape[0]} latents but {y.shape[0]} labels")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"binary labels 0/1 with both classes present are required, got {sorted(set(y))}")
    mean = z.mean(axis=0) if standardize else np.zeros(z.shape[1])
    scale = z.std(axis=0) if standardize else np.ones(z.shape[1])
    scale = np.where(scale > 1e-8, scale, 1.0)
    u = (z - mean) / scale
    basis = principal_basis(u, components) if components else None
    if kind == "svm":
        clf = LinearSVC(C=C, dual="auto", max_iter=20000, random_state=seed)
    elif kind == "logistic":
        clf = LogisticRegression(C=C, max_iter=5000)
    else:
        raise ValueError(f"unknown probe kind {kind!r} (svm or logistic)")
    clf.fit(u if basis is None else u @ basis, y, sample_weight=balanced_weights(y, strata))
    normal, bias = clf.coef_.ravel().astype(np.float64), float(clf.intercept_[0])
    if basis is not None:  # n·(Bᵀu) = (Bn)·u: the same hyperplane, written on all of u
        normal = basis @ normal
    probe = LinearProbe(normal=normal, bias=bias, mean=mean, scale=scale, kind=kind)
    if kind == "logistic":
        slope, intercept = float(np.linalg.norm(normal)), 0.0  # sigmoid(n·u + b) = sigmoid(||n|| · dist)
    else:
        slope, intercept = _platt_scaling(probe.distance(z), y)
    edit = None
    if edit_components:
        edit_basis = principal_basis(u, edit_components)
        edit = edit_basis @ (edit_basis.T @ probe.unit_normal)
    return LinearProbe(normal=normal, bias=bias, mean=mean, scale=scale, kind=kind,
                       prob_slope=slope, prob_intercept=intercept, edit_direction=edit)


def _platt_scaling(distance: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e6, max_iter=5000).fit(distance[:, None], y)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


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


def fit_calibration(distance: np.ndarray, grades: np.ndarray, method: CalibrationMethod = "linear",
                    degree: int = 3, grade_range: tuple[int, int] | None = None) -> Calibration:
    """Regress grade on signed distance.

    ``linear``: least squares on all labelled samples; ``extremes``: the line through the mean distances of the
    lowest and highest grade; ``poly``: least squares of the given degree.
    """
    d = np.asarray(distance, dtype=np.float64).ravel()
    g = np.asarray(grades, dtype=np.float64).ravel()
    if d.shape != g.shape or d.size < 2:
        raise ValueError(f"need matching distances and grades (at least 2), got {d.shape} and {g.shape}")
    lo, hi = grade_range if grade_range is not None else (int(g.min()), int(g.max()))
    if method == "extremes":
        d_lo, d_hi = d[g == g.min()].mean(), d[g == g.max()].mean()
        if np.isclose(d_lo, d_hi):
            raise ValueError("lowest and highest grade have the same mean distance")
        slope = (g.max() - g.min()) / (d_hi - d_lo)
        coefficients = (g.min() - slope * d_lo, slope)
    elif method in ("linear", "poly"):
        deg = 1 if method == "linear" else int(degree)
        if len(np.unique(d)) <= deg:
            raise ValueError(f"need more than {deg} distinct distances for degree {deg}")
        coefficients = tuple(Polynomial.fit(d, g, deg).convert().coef)
    else:
        raise ValueError(f"unknown calibration method {method!r}")
    return Calibration(coefficients=coefficients, min_grade=lo, max_grade=hi, anchor=float(np.median(d)),
                       method=method)


def sweep_distances(start: float, stop: float, count: int) -> np.ndarray:
    """Evenly spaced signed distances for a continuous interpolation strip."""
    if count < 2:
        raise ValueError("a sweep needs at least 2 points")
    return np.linspace(start, stop, count)
