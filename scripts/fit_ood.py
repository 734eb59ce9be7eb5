#!/usr/bin/env python
"""Fit the OOD detector chosen on the shift sets (issue 23) and write it into bundles: a Ledoit-Wolf Mahalanobis
distance on each bundle's training latents, flagged above a quantile of its held-out in-distribution scores; the
model card gets a section on it. With --cache (from scripts/ood_shift_sets.py) it is fitted on exactly the
latents that were measured.

    python scripts/fit_ood.py scripts/configs/{vcf-ct,vertebra-mri,disc-mri,dr-retina}.json --data-root DATA \\
        --cache CACHE --out Resources/Models
    python scripts/fit_ood.py scripts/configs/vcf-ct-finetune.json --data-root DATA --out Resources/Models --cross-fit
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from DAECounterfactualLib.bundle.store import load_bundle, set_ood_detector
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.errors import InputError
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, bundle_in, load_data, load_experiment, run_script
from DAECounterfactualResearch.ood_cache import read_cache
from DAECounterfactualResearch.ood_fitting import (fit_detector, fit_detector_cross_fitted, ood_card_section,
                                                   with_ood_section)
from DAECounterfactualResearch.ood_sets import descriptions, in_distribution, target_of

COMMAND = "python scripts/fit_ood.py"


def latents(experiment, bundle, args):
    """(training, held-out) latents: the measured ones from --cache (if cut for the config's fit sources), else
    encoded from the built sets."""
    cached = args.cache and read_cache(args.cache / f"{bundle.config.name}.npz",
                                       fit_sources=experiment.ood_sources)
    if cached:
        return cached["z"]["fit"], cached["z"]["id"]
    fit, held = in_distribution(experiment, bundle.config, args.data_root, args.limit_cases)
    explainer = Explainer(bundle)
    return explainer.encode(fit.images), explainer.encode(held.images)


def cross_fit(experiment, args) -> None:
    """The detector of a bundle whose every patient trained it: fitted on its built training split, the
    threshold from each patient's latents scored by the detector of the others; written into the bundle in --out."""
    if experiment.ood_sources:
        raise InputError(f"{experiment.name}: --cross-fit fits on the whole training split; its config's "
                         "ood.fit_sources cannot be applied")
    target = args.out / experiment.name
    bundle = load_bundle(target)
    train = load_data(experiment, args.data_root)[0].subset(experiment.train_split)
    if "group" not in train.extra:
        raise InputError(f"{experiment.name}: its training set has no group column to cross-fit by patient")
    z = Explainer(bundle).encode(train.images)
    detector = replace(fit_detector_cross_fitted(z, train.extra["group"], args.quantile),
                       fitted_on=experiment.ood_fitted_on)
    patients = len(set(train.extra["group"]))
    section = ood_card_section(detector, f"its {len(z)} training patches (its built training set)",
                               f"out-of-patient scores of the same patches ({patients} patients, each scored by the "
                               "detector of the others)", f"{COMMAND} --cross-fit")
    set_ood_detector(target, detector, with_ood_section(bundle.model_card, section))
    print(f"{load_bundle(target, load_weights=False).bundle_id}: threshold {detector.ood_threshold:.4g} "
          f"(cross-fitted over {patients} patients)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", type=Path, nargs="+", help="experiment configs of the bundles")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder of the bundles to write: each is copied there first unless it is its own source")
    parser.add_argument("--cache", type=Path, default=None, help="the --cache folder of scripts/ood_shift_sets.py")
    parser.add_argument("--quantile", type=float, default=0.995, help="of the held-out scores, for the threshold")
    parser.add_argument("--limit-cases", type=int, default=None, help="as scripts/ood_shift_sets.py (no cache)")
    parser.add_argument("--cross-fit", action="store_true", help="for a bundle trained on every patient of its "
                        "built training set (no held-out split): fit on its training split, threshold from "
                        "out-of-patient scores (the set's group column)")
    args = parser.parse_args(argv)
    for config in args.configs:
        experiment = load_experiment(config)
        if args.cross_fit:
            cross_fit(experiment, args)
            continue
        fit_text, held_text = descriptions(target_of(experiment), experiment.ood_sources)  # before any copy
        target = bundle_in(args.out, experiment.name)
        bundle = load_bundle(target)
        z_fit, z_held = latents(experiment, bundle, args)
        detector = replace(fit_detector(z_fit, z_held, args.quantile), fitted_on=experiment.ood_fitted_on)
        section = ood_card_section(detector, f"{len(z_fit)} training patches ({fit_text})",
                                   f"the scores of {len(z_held)} held-out in-distribution patches ({held_text})",
                                   COMMAND)
        set_ood_detector(target, detector, with_ood_section(bundle.model_card, section))
        print(f"{load_bundle(target, load_weights=False).bundle_id}: threshold {detector.ood_threshold:.4g} "
              f"({len(z_fit)} training, {len(z_held)} held-out latents)")
    return 0


if __name__ == "__main__":
    run_script(main)
