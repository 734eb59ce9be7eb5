"""A cohort of spine phantoms in the BIDS/VerSe layout that ``daecf score-cohort`` reads, for its tests and benchmark:

    rawdata/sub-phantom000/sub-phantom000_ct.nii.gz
    derivatives/sub-phantom000/sub-phantom000_seg-vert_msk.nii.gz
    derivatives/sub-phantom000/sub-phantom000_seg-vert_ctd.json
    derivatives/sub-phantom000/sub-phantom000_grades.csv        (the simulated grades; not read by the scorer)

Each case is written by ``synthesis.export_phantom`` and its files are moved to their BIDS names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .synthesis import FRACTURE_KINDS, export_phantom, make_spine_phantom

BIDS_NAMES = {"ct": ("rawdata", "ct.nii.gz"), "mask": ("derivatives", "seg-vert_msk.nii.gz"),
              "ctd": ("derivatives", "seg-vert_ctd.json"), "grades": ("derivatives", "grades.csv")}


def export_phantom_cohort(folder: str | Path, cases: int, seed: int = 0, fracture_fraction: float = 0.3,
                          **phantom_options) -> list[str]:
    """Write ``cases`` phantoms (seeds ``seed``, ``seed + 1``, ...; each vertebra fractured with probability
    ``fracture_fraction``, random kind and height loss) under ``folder``; returns the subject ids.
    ``phantom_options`` go to ``make_spine_phantom`` (shape, spacing, labels, noise_hu)."""
    folder = Path(folder)
    labels = tuple(phantom_options.pop("labels", (20, 21, 22)))
    subjects = []
    for n in range(cases):
        rng = np.random.default_rng(seed + n)
        subject = f"sub-phantom{n:03d}"
        fractures = {label: (float(rng.uniform(0.15, 0.5)), str(rng.choice(FRACTURE_KINDS)))
                     for label in labels if rng.random() < fracture_fraction}
        phantom = make_spine_phantom(seed=seed + n, fractures=fractures, labels=labels, case=subject,
                                     **phantom_options)
        written = export_phantom(phantom, folder / "derivatives" / subject)
        for role, (tree, name) in BIDS_NAMES.items():
            target = folder / tree / subject / f"{subject}_{name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written[role], target)
        subjects.append(subject)
    return subjects
