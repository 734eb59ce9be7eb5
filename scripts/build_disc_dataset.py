#!/usr/bin/env python
"""Build the disc training set (dataset.npz + manifest.json) from SPIDER slices with disc centres and grades.

    python scripts/build_disc_dataset.py --out DATA/disc-mri [--data-root ../shared/data] [--augmentations 48]

What the set holds: DAECounterfactualResearch/disc_dataset.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from DAECounterfactualLib import __version__
from DAECounterfactualResearch.dataset_building import input_records, write_outputs
from DAECounterfactualResearch.disc_dataset import AUGMENT, PREPROCESSING, build_discs
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, run_script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for dataset.npz and manifest.json")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the shared data folder")
    parser.add_argument("--size-px", type=int, default=64)
    parser.add_argument("--spacing-mm", type=float, default=1.0)
    parser.add_argument("--augmentations", type=int, default=48, help="augmented copies per training disc")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = args.data_root.resolve()
    arrays, inputs = build_discs(root / "spider_discs", args.size_px, args.spacing_mm, args.augmentations, args.seed)
    manifest = {
        "preset": "spider-discs",
        "library_version": __version__,
        "settings": {"size_px": args.size_px, "spacing_mm": args.spacing_mm,
                     "preprocessing": PREPROCESSING.to_dict(), "augmentations": args.augmentations,
                     "augmentation_ranges": AUGMENT, "seed": args.seed,
                     "patch_convention": "upright slice: columns anterior->posterior, rows superior->inferior"},
        "inputs": input_records(inputs, root),
    }
    npz_path, _ = write_outputs(args.out, arrays, manifest)
    print(f"{npz_path}: {len(arrays['images'])} samples of {len(set(arrays['disc_id']))} discs")
    return 0


if __name__ == "__main__":
    run_script(main)
