"""Fitting the linear probe and its distance-to-grade calibration (scikit-learn), for the runtime's ``LinearProbe``
and ``Calibration`` (``DAECounterfactualLib.model.probe``), which only read and apply them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import Polynomial

from DAECounterfactualLib.model.probe import Calibration, CalibrationMethod, LinearProbe, ProbeKind


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
    z, y = _latents_and_labels(z, labels)
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"binary labels 0/1 with both classes present are required, got {sorted(set(y))}")
    space = _ProbeSpace.of(z, standardize, components)
    clf = _classifier(kind, C, seed).fit(space.features, y, sample_weight=balanced_weights(y, strata))
    return space.probe(clf.coef_.ravel(), float(clf.intercept_[0]), kind, z, y, edit_components)


def fit_ordinal_probe(z: np.ndarray, grades: np.ndarray, positive_min_grade: int, kind: ProbeKind = "svm",
                      standardize: bool = True, C: float = 1.0, seed: int = 0, components: int = 0,
                      strata: np.ndarray | None = None, edit_components: int = 0) -> LinearProbe:
    """A probe whose normal orders every grade, not only the two sides of ``positive_min_grade``.

    A binary probe (grade 1 vs 2-5 for Pfirrmann, as in the paper) leaves the order among the positive grades to
    chance, so its calibration cannot tell them apart and its edits toward the last grade extrapolate past every
    real image of it. Here one hyperplane direction is shared by every threshold "grade >= k" (the
    extended-binary reduction of ordinal regression: each latent once per threshold, with a bias of that
    threshold's own), each threshold's classes balanced as ``fit_probe`` balances them. The probe keeps the
    bias of the ``positive_min_grade`` threshold, so its sign, probability and reflection mean what a binary
    probe's do. Other arguments as ``fit_probe``."""
    z, g = _latents_and_labels(z, grades)
    thresholds = np.unique(g)[1:]
    if positive_min_grade not in thresholds:
        raise ValueError(f"an ordinal probe needs grades on both sides of {positive_min_grade}, got "
                         f"{sorted(set(g))}")
    space = _ProbeSpace.of(z, standardize, components)
    u = space.features
    rows, labels, weights = [], [], []
    for k, threshold in enumerate(thresholds):
        marker = np.zeros((len(u), len(thresholds)))
        marker[:, k] = _THRESHOLD_FEATURE
        rows.append(np.hstack([u, marker]))
        labels.append((g >= threshold).astype(int))
        weights.append(balanced_weights(labels[-1], strata))
    clf = _classifier(kind, C, seed, fit_intercept=False).fit(np.vstack(rows), np.concatenate(labels),
                                                              sample_weight=np.concatenate(weights))
    coef = clf.coef_.ravel()
    bias = float(coef[u.shape[1] + list(thresholds).index(positive_min_grade)] * _THRESHOLD_FEATURE)
    return space.probe(coef[:u.shape[1]], bias, kind, z, g >= positive_min_grade, edit_components)


# Each threshold's bias is learnt as the weight of an indicator feature of this value: a large value leaves the
# biases nearly unpenalised, so the regularisation falls on the direction.
_THRESHOLD_FEATURE = 10.0


def _latents_and_labels(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    y = np.asarray(labels).astype(int).ravel()
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"{z.shape[0]} latents but {y.shape[0]} labels")
    return z, y


def _classifier(kind: ProbeKind, C: float, seed: int, fit_intercept: bool = True):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if kind == "svm":
        return LinearSVC(C=C, dual="auto", max_iter=20000, random_state=seed, fit_intercept=fit_intercept)
    if kind == "logistic":
        return LogisticRegression(C=C, max_iter=5000, fit_intercept=fit_intercept)
    raise ValueError(f"unknown probe kind {kind!r} (svm or logistic)")


@dataclass(frozen=True)
class _ProbeSpace:
    """Where a probe is fitted: the standardised latents u (standardised once, here), optionally restricted to
    their top principal directions (``basis``)."""

    mean: np.ndarray
    scale: np.ndarray
    basis: np.ndarray | None
    u: np.ndarray  # the fitting latents, standardised

    @classmethod
    def of(cls, z: np.ndarray, standardize: bool, components: int) -> "_ProbeSpace":
        mean = z.mean(axis=0) if standardize else np.zeros(z.shape[1])
        scale = z.std(axis=0) if standardize else np.ones(z.shape[1])
        scale = np.where(scale > 1e-8, scale, 1.0)
        u = (z - mean) / scale
        return cls(mean, scale, principal_basis(u, components) if components else None, u)

    @property
    def features(self) -> np.ndarray:
        """The fitting latents as the classifier sees them."""
        return self.u if self.basis is None else self.u @ self.basis

    def probe(self, normal: np.ndarray, bias: float, kind: ProbeKind, z: np.ndarray, y: np.ndarray,
              edit_components: int) -> LinearProbe:
        """The runtime probe of a hyperplane fitted on ``features``, its probability scaled on the binary
        labels ``y`` of ``z``."""
        normal = np.asarray(normal, dtype=np.float64)
        if self.basis is not None:  # n·(Bᵀu) = (Bn)·u: the same hyperplane, written on all of u
            normal = self.basis @ normal
        probe = LinearProbe(normal=normal, bias=bias, mean=self.mean, scale=self.scale, kind=kind)
        if kind == "logistic":
            slope, intercept = float(np.linalg.norm(normal)), 0.0  # sigmoid(n·u + b) = sigmoid(||n|| · dist)
        else:
            slope, intercept = _platt_scaling(probe.distance(z), y)
        edit = None
        if edit_components:
            edit_basis = principal_basis(self.u, edit_components)
            edit = edit_basis @ (edit_basis.T @ probe.unit_normal)
        return LinearProbe(normal=normal, bias=bias, mean=self.mean, scale=self.scale, kind=kind,
                           prob_slope=slope, prob_intercept=intercept, edit_direction=edit)


def _platt_scaling(distance: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e6, max_iter=5000).fit(distance[:, None], y)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


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
