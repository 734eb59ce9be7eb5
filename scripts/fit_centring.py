#!/usr/bin/env python
"""Fit a vertebra bundle's centring detector and write it into the bundle: the latents of every crop within 9 mm
along the spine of each real body of its training patients (intact, and the simulated fractures its training set
had, cut as the real-data acceptance cuts them), from the data sources its OOD detector is fitted on; the model card
gets a section on it. Clicks are then centred by it (``inference.centring``) instead of by the OOD score.

    python scripts/fit_centring.py scripts/configs/vertebra-mri.json --data-root DATA --out Resources/Models
"""

from __future__ import annotations

import argparse
from pathlib import Path

from DAECounterfactualLib.bundle.store import load_bundle, set_centring_detector
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.centring import REACH_MM
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.centring import (COMPONENTS, OFF_MM, centring_card_section, crop_latents,
                                                        fit_centring_detector, with_centring_section)
from DAECounterfactualResearch.dataset_building import data_source
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, bundle_in, load_experiment, run_script
from DAECounterfactualResearch.ood_sets import target_of, training_cut, vertebra_splits, within_sources
from DAECounterfactualResearch.real_acceptance import real_patches

COMMAND = "python scripts/fit_centring.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="experiment config of a vertebra bundle")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder of the bundle to write: it is copied there first unless it is its own source")
    parser.add_argument("--off-mm", type=float, default=OFF_MM, help="a crop this far from a centroid is off it")
    parser.add_argument("--components", type=int, default=COMPONENTS, help="principal directions of the Gaussians")
    parser.add_argument("--limit-cases", type=int, default=None, help="at most this many training series (tests)")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    if target_of(experiment) != "vertebra":
        raise InputError(f"{experiment.name}: only a vertebra bundle's clicks are centred along the spine")
    target = bundle_in(args.out, experiment.name)
    bundle = load_bundle(target)
    cut = training_cut(experiment, bundle.config)
    train, _ = within_sources(vertebra_splits(cut, args.data_root, args.limit_cases)[0], experiment.ood_sources)
    train = [s for s in train if data_source(s.group) != "phantom"]
    if not train:
        raise InputError(f"{experiment.name}: no real training series under {args.data_root}")
    margin = int(round(REACH_MM / bundle.config.patch_spacing_mm))
    wide = real_patches(bundle, train, tuple(cut.settings.fracture_kinds), margin)
    z = crop_latents(Explainer(bundle), wide.images, margin)
    sources = f"; data sources {', '.join(experiment.ood_sources)} only" if experiment.ood_sources else ""
    patients = len(set(wide.group))
    fit = (f"{len(z)} patches (real bodies and their simulated fractures) of its {patients} training "
           f"patient{'s' if patients != 1 else ''}{sources}")
    detector = fit_centring_detector(z, bundle.config.patch_spacing_mm, args.off_mm, args.components,
                                     experiment.ood_fitted_on)
    set_centring_detector(target, detector, with_centring_section(bundle.model_card,
                                                                  centring_card_section(detector, fit, COMMAND)))
    print(f"{load_bundle(target, load_weights=False).bundle_id}: centring detector fitted on {fit}")
    return 0


if __name__ == "__main__":
    run_script(main)
