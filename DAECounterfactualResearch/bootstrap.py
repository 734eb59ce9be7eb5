"""Percentile bootstrap intervals that resample whole cases.

Patches cut from one patient (several vertebrae, seven lateral offsets each) are not independent: resampling them
one by one would give intervals far too narrow. Each resample draws cases with replacement and keeps all of a
drawn case's samples, so a figure's interval reflects how many patients it rests on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000


def case_resamples(groups: np.ndarray, n_resamples: int, seed: int = 0) -> list[np.ndarray]:
    """Sample indices of ``n_resamples`` bootstrap resamples, each drawing as many cases as there are, with
    replacement, and taking every sample of each drawn case."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(inverse.max() + 1)]
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
            for _ in range(n_resamples)]


def bootstrap_intervals(statistics: Callable[[np.ndarray], dict[str, float]], groups: np.ndarray,
                        n_resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> dict[str, list[float]]:
    """Percentile interval of every figure ``statistics(indices)`` returns, over case resamples. A resample on
    which a figure is undefined (nan: an AUC with one class drawn) is left out of that figure's interval."""
    draws: dict[str, list[float]] = {}
    for indices in case_resamples(groups, n_resamples, seed):
        for name, value in statistics(indices).items():
            draws.setdefault(name, []).append(float(value))
    tails = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    intervals = {}
    for name, values in draws.items():
        finite = np.asarray(values)[np.isfinite(values)]
        if finite.size:
            intervals[name] = [float(v) for v in np.percentile(finite, tails)]
    return intervals
