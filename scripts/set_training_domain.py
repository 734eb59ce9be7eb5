#!/usr/bin/env python
"""Record what each bundle was trained on (target kind, levels, intensity units: the bundle section's
``trained_on`` of its experiment config) in its config.json and model card, without retraining or refitting; a
bundle made by make_bundle.py has it already. Levels that the config does not list are read from the built
training set's graded patches (--data-root).

    python scripts/set_training_domain.py scripts/configs/{vcf-ct,vertebra-mri,disc-mri,dr-retina}.json \\
        --out Resources/Models
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from DAECounterfactualLib.bundle.store import load_bundle, set_training_domain
from DAECounterfactualResearch.bundle_making import training_domain
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, bundle_in, load_data, load_experiment, run_script
from DAECounterfactualResearch.model_card import DOMAIN_HEADING, INTENDED_USE_HEADING, domain_card_section, with_section
from DAECounterfactualResearch.ood_fitting import OOD_HEADING


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", type=Path, nargs="+", help="experiment configs of the bundles")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="built training sets, for configs whose trained_on lists no levels")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder of the bundles to write: each is copied there first unless it is its own source")
    args = parser.parse_args(argv)
    for path in args.configs:
        experiment = load_experiment(path)
        spec = experiment.bundle.get("trained_on")
        if spec is None:
            parser.error(f"{path}: its bundle section has no trained_on")
        train = None
        if spec.get("levels") is None and spec["target_kind"] != "image":
            train = load_data(experiment, args.data_root)[0].subset(experiment.train_split)
        target = bundle_in(args.out, experiment.name)
        bundle = load_bundle(target, load_weights=False)
        domain = training_domain(experiment, train)
        config = replace(bundle.config, trained_on=domain)
        card = with_section(bundle.model_card, DOMAIN_HEADING, domain_card_section(config),
                            before=(OOD_HEADING, INTENDED_USE_HEADING))
        set_training_domain(target, domain, card)
        print(f"{load_bundle(target, load_weights=False).bundle_id}: {domain.describe()}")
    return 0


if __name__ == "__main__":
    run_script(main)
