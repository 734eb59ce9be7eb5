"""Measuring OOD scores on the shift sets (issue 23).

Per score and set: the AUROC between the held-out in-distribution patches and the shift (and between the shift and
the set it was derived from, which isolates the shift), the share of each shift flagged, and the false flags on
held-out in-distribution patches. Thresholds are quantiles (95 %, 99.5 %) of held-out scores; the false-flag rate
at a threshold is cross-fitted over two folds of cases (each fold flagged by the threshold of the other), so a
threshold never counts the patches it was set on. The shipped score is also read at its shipped threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

QUANTILES = (0.95, 0.995)
PICK_QUANTILE = 0.95  # the choice is made where at most 5 % of in-distribution patches are flagged


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside score exceeds an inside one), ties counted half (Mann-Whitney U / n0 n1)."""
    inside, outside = np.asarray(inside, dtype=np.float64), np.asarray(outside, dtype=np.float64)
    if not len(inside) or not len(outside):
        return float("nan")
    ranks = rankdata(np.concatenate([inside, outside]))
    n0, n1 = len(inside), len(outside)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def case_folds(groups: np.ndarray) -> np.ndarray:
    """Fold 0 or 1 of each item: the sorted cases alternate, so a case lies in one fold."""
    names, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    return (np.arange(len(names)) % 2)[index]


def cross_fitted_flags(scores: np.ndarray, groups: np.ndarray, quantile: float) -> float:
    """Share flagged when each fold of cases is judged by the ``quantile`` of the other fold's scores."""
    folds = case_folds(groups)
    if len(set(folds)) < 2:
        return float("nan")
    flagged = [scores[folds == f] > np.quantile(scores[folds != f], quantile) for f in (0, 1)]
    return float(np.mean(np.concatenate(flagged)))


@dataclass
class ScoredSets:
    """One detector's scores of every set of a bundle; ``records`` as ``PatchSet.record``."""

    scores: dict[str, np.ndarray]
    groups: dict[str, np.ndarray]
    records: dict[str, dict]


def measure(scored: ScoredSets, shipped_threshold: float | None = None) -> dict:
    """The held-out false flags and, per shift, AUROCs and flag rates (see the module docstring)."""
    held = scored.scores["id"]
    thresholds = {q: float(np.quantile(held, q)) for q in QUANTILES}
    fixed = dict(thresholds) | ({"shipped": shipped_threshold} if shipped_threshold is not None else {})
    record = {"thresholds": {str(k): v for k, v in fixed.items()},
              "id": {"n": int(len(held)),
                     "false_flags": {str(q): cross_fitted_flags(held, scored.groups["id"], q) for q in QUANTILES}}}
    if shipped_threshold is not None:
        record["id"]["false_flags"]["shipped"] = float(np.mean(held > shipped_threshold))
    shifts = {}
    for name, info in scored.records.items():
        values = scored.scores[name]
        row = {"auroc": auroc(held, values), "flagged": {str(k): float(np.mean(values > v)) for k, v in fixed.items()}}
        if info["source"] != "id":
            row["auroc_vs_source"] = auroc(scored.scores[info["source"]], values)
        shifts[name] = info | row
    record["shifts"] = shifts
    return record


def shift_auroc(row: dict) -> float:
    """The AUROC of a shift against the set it was made from (the held-out set unless it names another)."""
    return row.get("auroc_vs_source", row["auroc"])


def summary(measured: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per detector over every bundle's counted shifts: mean and smallest AUROC (against each shift's source),
    mean share flagged at the 95 % threshold, and the mean cross-fitted false flags there."""
    out = {}
    detectors = sorted({d for bundle in measured.values() for d in bundle})
    for detector in detectors:
        rows = [row for bundle in measured.values() for row in bundle[detector]["shifts"].values() if row["counted"]]
        aurocs = [shift_auroc(row) for row in rows]
        out[detector] = {
            "shifts": len(rows), "mean_auroc": float(np.mean(aurocs)), "min_auroc": float(np.min(aurocs)),
            "shifts_auroc_0.95": int(np.sum(np.array(aurocs) >= 0.95)),
            "mean_flagged_0.95": float(np.mean([row["flagged"][str(PICK_QUANTILE)] for row in rows])),
            "mean_false_flags_0.95": float(np.mean([bundle[detector]["id"]["false_flags"][str(PICK_QUANTILE)]
                                                    for bundle in measured.values()])),
        }
    return out


def pick(table: dict[str, dict]) -> str:
    """The detector with the best mean AUROC among those that flag at most 5 % of held-out patches (cross-fitted,
    rounded to a percent) at their 95 % threshold; where none does, the best mean AUROC. A bundle's own detector
    is a result of the pick, not a candidate."""
    table = {d: row for d, row in table.items() if d != SHIPPED_DETECTOR}
    allowed = [d for d, row in table.items() if round(row["mean_false_flags_0.95"], 2) <= 0.05] or list(table)
    return max(allowed, key=lambda d: table[d]["mean_auroc"])


def percent(value: float) -> str:
    return "–" if value != value else f"{100 * value:.0f} %"


def markdown_table(bundle: str, measured: dict[str, dict], detectors: list[str]) -> str:
    """One bundle's table: a row per set, a column per detector: AUROC (against the source, where it is not the
    held-out set) and the share flagged at the 95 % threshold; the shipped score also at its shipped threshold."""
    first = measured[detectors[0]]
    header = ["set (n)"] + [f"{d}: AUROC · flagged" for d in detectors]
    lines = [f"**{bundle}**", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]

    def flags(detector: str, values: dict) -> str:
        shipped = f" ({percent(values['shipped'])} at shipped)" if "shipped" in values else ""
        return percent(values[str(PICK_QUANTILE)]) + shipped

    lines.append("| held out, in distribution (" + str(first["id"]["n"]) + ") | " + " | ".join(
        f"false flags {flags(d, measured[d]['id']['false_flags'])}" for d in detectors) + " |")
    for name, row in first["shifts"].items():
        cells = []
        for d in detectors:
            shift = measured[d]["shifts"][name]
            vs = f" ({shift['auroc_vs_source']:.2f})" if "auroc_vs_source" in shift else ""
            cells.append(f"{shift['auroc']:.2f}{vs} · {flags(d, shift['flagged'])}")
        label = name if row["counted"] else f"{name}, not counted"
        lines.append(f"| {label} ({row['n']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def encode_sets(explainer, sets) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, dict]]:
    """z_sem, cases and records of every set of ``ood_sets.BundleSets`` (fit, id, shifts) through the bundle."""
    every = [sets.fit, sets.held_out, *sets.shifts]
    return ({s.name: explainer.encode(s.images) for s in every}, {s.name: s.groups for s in every},
            {s.name: s.record() for s in sets.shifts})


BEFORE = "zscore_shipped"      # the bundle's latent_stats.json at its own threshold: what every bundle flagged with
SHIPPED_DETECTOR = "detector_shipped"  # the detector a bundle carries (ood.json), at its own threshold


def measure_detectors(latents: dict[str, np.ndarray], groups: dict[str, np.ndarray], records: dict[str, dict],
                      stats, candidates: dict, detector=None) -> dict[str, dict]:
    """``measure`` for the bundle's z-score statistics and its detector where it has one (each at its own threshold
    too) and for every candidate of ``ood_detectors.CANDIDATES`` fitted on the ``fit`` latents."""
    shipped = {BEFORE: stats} | ({SHIPPED_DETECTOR: detector} if detector is not None else {})
    fitted = {name: fit(latents["fit"]) for name, (_, fit) in candidates.items()}
    out = {}
    for name, scorer in (shipped | fitted).items():
        scored = ScoredSets({k: scorer.ood_score(v) for k, v in latents.items() if k != "fit"}, groups, records)
        out[name] = measure(scored, scorer.ood_threshold if name in shipped else None)
    return out


def before_after_table(bundle: str, measured: dict[str, dict], after: str, quantile: float = 0.995) -> str:
    """The bundle's z-score at its shipped threshold beside ``after`` at the ``quantile`` threshold it would ship with:
    AUROC (against the source where it is not the held-out set) and the share flagged, per set."""
    before, chosen, key = measured[BEFORE], measured[after], str(quantile)

    def auc(row: dict) -> str:
        return f"{row['auroc']:.2f}" + (f" ({row['auroc_vs_source']:.2f})" if "auroc_vs_source" in row else "")

    lines = [f"**{bundle}**", "", f"| set (n) | before: AUROC | before: flagged | {after}: AUROC | {after}: flagged |",
             "| --- | --- | --- | --- | --- |",
             f"| held out, in distribution ({before['id']['n']}): false flags | | "
             f"{percent(before['id']['false_flags']['shipped'])} | | {percent(chosen['id']['false_flags'][key])} |"]
    for name, row in before["shifts"].items():
        label = name if row["counted"] else f"{name}, not counted"
        lines.append(f"| {label} ({row['n']}) | {auc(row)} | {percent(row['flagged']['shipped'])} | "
                     f"{auc(chosen['shifts'][name])} | {percent(chosen['shifts'][name]['flagged'][key])} |")
    return "\n".join(lines)
