#!/usr/bin/env python
"""How far from the vertebral body does a mask of whole vertebrae put each grading point?

``positions_from_mask`` grades a whole vertebra at its thick part's centroid (``io.bodies``). On every real CT
series with a TPTBox subregion mask, each vertebra's point is compared with its body's centroid there (subregions
49 + 50), before (the whole vertebra's centroid) and after. On masks of bodies only (the MRIs, the TotalSegmentator
example) it measures how far the points moved from the mask's own centroids: they should not move at all.

    python scripts/studies/body_centroids.py --data-root DATA --out docs/results/ct-real/body_centroids.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from DAECounterfactualLib.io.volumes import centroids_from_mask, positions_from_mask, read_volume, vertebral_bodies
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT


def _by_label(positions) -> dict[int, np.ndarray]:
    return {p.label: p.ras for p in positions}


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.linalg.norm(a - b)), 2)


def _summary(distances: list[float]) -> dict:
    values = np.asarray(distances, dtype=np.float64)
    return {"n": int(values.size), "median_mm": round(float(np.median(values)), 2),
            "p90_mm": round(float(np.percentile(values, 90)), 2), "max_mm": round(float(values.max()), 2)}


def whole_vertebra_masks(spine_ct: Path) -> dict:
    """Per CT series with subregions: each vertebra's distance from its body's centroid, whole centroid and ours."""
    series = {}
    for case in sorted(p for p in spine_ct.iterdir() if (p / "subreg_msk.nii.gz").exists()):
        mask = read_volume(case / "vert_msk.nii.gz")
        truth = _by_label(centroids_from_mask(vertebral_bodies(mask, read_volume(case / "subreg_msk.nii.gz")),
                                              skip=lambda label: label >= 100))
        whole = _by_label(centroids_from_mask(mask, skip=lambda label: label >= 100))
        ours = {p.label: (p.level, p.ras) for p in positions_from_mask(mask) if p.label in truth}
        series[case.name] = [
            {"label": label, "level": level, "whole_centroid_mm": _distance(whole[label], truth[label]),
             "positions_from_mask_mm": _distance(ras, truth[label])}
            for label, (level, ras) in sorted(ours.items())]
    return series


def body_masks(paths: list[Path]) -> dict:
    """How far ``positions_from_mask`` moved each body of masks that hold bodies only."""
    moved = []
    for path in paths:
        mask = read_volume(path)
        centroids = _by_label(centroids_from_mask(mask, rank_labels=True, skip=lambda label: label >= 100))
        moved += [float(np.linalg.norm(p.ras - centroids[p.label])) for p in positions_from_mask(mask)
                  if p.label in centroids]
    return {**_summary(moved), "moved": int(sum(d > 1e-6 for d in moved))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)

    spine_ct = args.data_root / "spine_ct"
    series = whole_vertebra_masks(spine_ct)
    rows = [row for rows in series.values() for row in rows]
    with_body = [row for row in rows if row["label"] != 1]  # the atlas has no body
    record = {
        "whole_vertebra_masks": {
            "whole_centroid": _summary([row["whole_centroid_mm"] for row in with_body]),
            "positions_from_mask": _summary([row["positions_from_mask_mm"] for row in with_body]),
            "series": series,
        },
        "body_masks": {
            "totalseg_example": body_masks([spine_ct / "totalseg_example" / "vert_msk.nii.gz"]),
            "spine_mri": body_masks(sorted((args.data_root / "spine_mri").glob("*/*_msk.nii.gz"))),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record["whole_vertebra_masks"].items() if k != "series"}, indent=1))
    print(json.dumps(record["body_masks"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
