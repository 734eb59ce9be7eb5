#!/usr/bin/env python
"""Build a 2D training set (one .npz + manifest.json) of sagittal vertebra patches or 2D images.

    python scripts/build_dataset.py --preset ct --out out/ct          # real CTs (+ simulated fractures) + phantoms
    python scripts/build_dataset.py --preset mri --out out/mri        # lumbar MRIs with their morphometric grades
    python scripts/build_dataset.py --preset retina --out out/retina  # RetinaMNIST as is (train/val)

The format and the splits are described in DAECounterfactualResearch/dataset_building.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from DAECounterfactualLib import __version__
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.model.preprocessing import Preprocessing
from DAECounterfactualResearch.dataset_building import (PRESET_DEFAULTS, Settings, build_retina, build_spine, counts,
                                                        ct_case_specs, input_records, mri_case_specs, parse_floats,
                                                        phantom_case_specs, write_outputs)
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, run_script
from DAECounterfactualResearch.synthesis import FRACTURE_KINDS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESET_DEFAULTS), required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for dataset.npz and manifest.json")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the shared data folder")
    parser.add_argument("--size-px", type=int, default=64)
    parser.add_argument("--spacing-mm", type=float, default=1.0)
    parser.add_argument("--lateral-offsets", default=None, help="comma-separated mm along +x (patient right); write --lateral-offsets=-3,0,3 for negatives")
    parser.add_argument("--superior-offsets", default="0", help="comma-separated mm each point is also moved up the "
                        "spine (RAS), as clicks off a body's centre; write --superior-offsets=-3,0,3 for negatives")
    parser.add_argument("--fracture-losses", default=None, help="height losses simulated on intact real vertebrae")
    parser.add_argument("--fracture-kinds", default=",".join(FRACTURE_KINDS))
    parser.add_argument("--simulations-per-body", type=int, default=0,
                        help="simulated fractures kept per intact real body and offset (0 = every loss x kind)")
    parser.add_argument("--spine-follows", action="store_true",
                        help="in simulated wedge and crush fractures the spine above moves down with the collapse "
                             "(default: the disc above stretches into the lost height, never into the next body)")
    parser.add_argument("--centre-on-body", action="store_true",
                        help="cut each patch at the centroid of its body in the body mask, not at the centroid file's "
                             "point (VerSe/TPTBox centroids are whole vertebrae's, about 10 mm posterior of the body)")
    parser.add_argument("--along-spine", action="store_true",
                        help="rows along the line between the neighbouring vertebrae's centres instead of RAS "
                             "superior-inferior (every body in one pose); vertebrae without a neighbour are left out")
    parser.add_argument("--augmentations", type=int, default=0,
                        help="scanner augmentations (HU offset, noise, row blur, tilt) per patch, the same for a "
                             "body's intact patch and its simulated fractures")
    parser.add_argument("--max-fill", type=float, default=1.0,
                        help="leave out patches with more of their area beyond the scan (e.g. 0.05)")
    parser.add_argument("--intensity-range", default=None,
                        help="LOW,HIGH of the preset's preprocessing (HU window for ct, percentiles for mri), e.g. "
                        "--intensity-range=-200,800 for a bone window")
    parser.add_argument("--phantoms", type=int, default=8, help="number of phantoms (ct preset)")
    parser.add_argument("--phantom-max-fractures", type=int, default=2,
                        help="each phantom fractures 0..N of its three vertebrae (3 = half of them on average)")
    parser.add_argument("--split-fractions", default="0.7,0.15,0.15")
    parser.add_argument("--train-only", default="", help="comma-separated group prefixes kept in the training split "
                        "(groups are ct:CASE, phantom:CASE, VB1:SUBJECT, ...), e.g. ct: to train on every real CT")
    parser.add_argument("--limit-cases", type=int, default=None, help="use only the first N real cases")
    parser.add_argument("--exclude-cases", default="", help="comma-separated real cases left out (e.g. a series "
                        "kept for out-of-region checks)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    defaults = PRESET_DEFAULTS[args.preset]
    args.lateral_offsets = args.lateral_offsets if args.lateral_offsets is not None else defaults["offsets"]
    args.fracture_losses = args.fracture_losses if args.fracture_losses is not None else defaults["losses"]
    return args


def preprocessing_of(args: argparse.Namespace) -> Preprocessing:
    """The preset's preprocessing, with --intensity-range in place of its range when given."""
    kind, low, high = PRESET_DEFAULTS[args.preset]["preprocessing"]
    if args.intensity_range is not None:
        try:
            values = parse_floats(args.intensity_range)
        except ValueError:
            values = []
        if len(values) != 2 or not values[0] < values[1]:
            raise InputError(f"--intensity-range needs LOW,HIGH with LOW < HIGH, got {args.intensity_range!r}")
        low, high = values
    return Preprocessing(kind, low, high)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.data_root.resolve()
    settings = Settings(args.size_px, args.spacing_mm, parse_floats(args.lateral_offsets), preprocessing_of(args),
                        parse_floats(args.fracture_losses), [k for k in args.fracture_kinds.split(",") if k],
                        args.simulations_per_body, args.seed, args.spine_follows, args.augmentations,
                        args.max_fill, tuple(parse_floats(args.superior_offsets)), args.centre_on_body,
                        args.along_spine)
    fractions = tuple(parse_floats(args.split_fractions))
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise InputError(f"--split-fractions needs three non-negative numbers, got {args.split_fractions!r}")
    skipped: list[str] = []
    if args.preset == "retina":
        arrays, inputs = build_retina(root)
        phantoms = []
    else:
        specs = ct_case_specs(root) if args.preset == "ct" else mri_case_specs(root)
        excluded = {c for c in args.exclude_cases.split(",") if c}
        unknown = excluded - {spec.case for spec in specs}
        if unknown:
            raise InputError(f"--exclude-cases: no such case(s) {sorted(unknown)}; cases: "
                             f"{', '.join(spec.case for spec in specs)}")
        specs = [spec for spec in specs if spec.case not in excluded]
        specs = specs[: args.limit_cases] if args.limit_cases is not None else specs
        phantoms = phantom_case_specs(args.phantoms, args.seed, settings.fracture_losses or [0.3],
                                      settings.fracture_kinds,
                                      args.phantom_max_fractures) if args.preset == "ct" else []
        train_only = tuple(p for p in args.train_only.split(",") if p)
        arrays, skipped = build_spine(specs + phantoms, settings, fractions, args.seed, train_only)
        inputs = [p for spec in specs for p in spec.inputs]
    manifest = {
        "preset": args.preset,
        "library_version": __version__,
        "settings": {
            "size_px": settings.size_px, "spacing_mm": settings.spacing_mm,
            "lateral_offsets_mm": settings.lateral_offsets_mm,
            "superior_offsets_mm": list(settings.superior_offsets_mm),
            "preprocessing": settings.preprocessing.to_dict(),
            "fracture_losses": settings.fracture_losses, "fracture_kinds": settings.fracture_kinds,
            "simulations_per_body": settings.simulations_per_body, "spine_follows": settings.spine_follows,
            "augmentations": settings.augmentations, "max_fill": settings.max_fill,
            "fracture_stretch": "disc above, stopped short of the next body",
            "phantom_max_fractures": args.phantom_max_fractures,
            "split_fractions": list(fractions), "train_only": args.train_only, "seed": args.seed,
            "limit_cases": args.limit_cases, "exclude_cases": args.exclude_cases,
            "centre_on_body": settings.centre_on_body, "rows": "spine" if settings.along_spine else "axial",
            "patch_convention": "columns anterior->posterior, rows superior->inferior (tilted along the spine where "
                                "rows is spine: tilt_deg), normal +x (RAS)",
        },
        "inputs": input_records(inputs, root),
        "phantoms": [{"case": p.case} for p in phantoms],
        "skipped": skipped,
    }
    npz_path, _ = write_outputs(args.out, arrays, manifest)
    print(f"{npz_path}: {len(arrays['images'])} samples; counts {json.dumps(counts(arrays))}; {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    run_script(main)
