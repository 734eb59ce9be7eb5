"""Fitting the linear probe and its distance-to-grade calibration (scikit-learn), for the runtime's ``LinearProbe``
and ``Calibration`` (``DAECounterfactualLib.model.probe``), which only read and apply them.
"""

from __future__ import annotations

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
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
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
